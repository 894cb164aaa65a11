//! Optional mutual TLS (rustls, through tonic) for peer and client gRPC.
//!
//! Off by default. With `tls_cert`, `tls_key` and `tls_ca` set, a node
//! serves only TLS, *requires* a client certificate signed by `tls_ca` from
//! every connection (peers and clients alike), and presents its own
//! certificate to its peers, whose certificates it checks against the same
//! CA. A peer or client without a certificate of the cluster's CA is refused
//! during the handshake, before any gRPC message is read.
//!
//! A node's certificate must name the host part of its member address (an
//! IP SAN for `10.0.0.1:7001`, a DNS SAN for `node1.example:7001`), since
//! that is what its peers and clients verify, and must allow both server and
//! client authentication (it is used in both roles).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "mutual TLS needs all three of tls_cert, tls_key and tls_ca (--tls-cert, --tls-key, --tls-ca); only {0} given"
    )]
    Incomplete(String),
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} is not PEM (expected a \"-----BEGIN {expected}\" block)")]
    NotPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
}

/// Where the PEM files are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// This node's (or client's) certificate chain.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The cluster's CA: peers and clients must present a certificate it signed.
    pub ca: PathBuf,
}

impl TlsFiles {
    /// All three or none.
    pub fn from_parts(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, TlsError> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles { cert, key, ca })),
            (cert, key, ca) => {
                let given: Vec<&str> = [
                    ("tls_cert", cert.is_some()),
                    ("tls_key", key.is_some()),
                    ("tls_ca", ca.is_some()),
                ]
                .into_iter()
                .filter(|(_, set)| *set)
                .map(|(name, _)| name)
                .collect();
                Err(TlsError::Incomplete(given.join(" and ")))
            }
        }
    }

    /// Reads and sanity-checks the files (rustls reports anything subtler
    /// when the server or channel is built).
    pub fn load(&self) -> Result<Tls, TlsError> {
        let cert = read_pem("certificate", &self.cert, "CERTIFICATE")?;
        let key = read_pem("private key", &self.key, "")?;
        let ca = read_pem("CA certificate", &self.ca, "CERTIFICATE")?;
        Ok(Tls {
            identity: Identity::from_pem(cert, key),
            ca: Certificate::from_pem(ca),
        })
    }
}

fn read_pem(what: &'static str, path: &Path, expected: &'static str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains(&format!("-----BEGIN {expected}")) {
        return Err(TlsError::NotPem {
            what,
            path: path.to_owned(),
            expected: if expected.is_empty() {
                "PRIVATE KEY"
            } else {
                expected
            },
        });
    }
    Ok(bytes)
}

/// The `--tls-cert/--tls-key/--tls-ca` flags (for `run` and `client`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// Mutual TLS: this node's (or client's) certificate chain, PEM.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// Mutual TLS: the private key of --tls-cert, PEM.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: the cluster's CA certificate, PEM; the other side must
    /// present a certificate it signed.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// Loads the files if the flags are given (all three or none).
    pub fn load(&self) -> Result<Option<Tls>, TlsError> {
        TlsFiles::from_parts(
            self.tls_cert.clone(),
            self.tls_key.clone(),
            self.tls_ca.clone(),
        )?
        .map(|files| files.load())
        .transpose()
    }
}

/// Loaded certificates and key.
#[derive(Clone, Debug)]
pub struct Tls {
    identity: Identity,
    ca: Certificate,
}

impl Tls {
    /// The server side: our certificate, and client certificates required.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .client_auth_optional(false)
    }

    /// The client side (peers and clients): verify the server against the
    /// CA, and present our certificate.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
    }
}

/// The URI scheme for an address, with or without TLS.
pub fn uri(address: &str, tls: bool) -> String {
    if tls {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_files_or_none() {
        assert_eq!(TlsFiles::from_parts(None, None, None).unwrap(), None);
        let err = TlsFiles::from_parts(Some("c".into()), None, Some("a".into())).unwrap_err();
        assert!(
            err.to_string().contains("only tls_cert and tls_ca given"),
            "{err}"
        );
    }

    #[test]
    fn missing_and_non_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let files = TlsFiles {
            cert: junk.clone(),
            key: junk.clone(),
            ca: dir.path().join("absent.pem"),
        };
        let err = files.load().unwrap_err().to_string();
        assert!(err.contains("junk.pem") && err.contains("not PEM"), "{err}");
        let files = TlsFiles {
            cert: dir.path().join("absent.pem"),
            ..files
        };
        let err = files.load().unwrap_err().to_string();
        assert!(err.contains("absent.pem"), "{err}");
    }
}
