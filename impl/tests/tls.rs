//! Mutual TLS: a cluster whose nodes and clients hold certificates of the
//! cluster's CA works; a client or peer without one — no TLS, TLS without a
//! client certificate, or a certificate of another CA — is refused.
//! Certificates are generated here with rcgen (a CA, node certificates with
//! an IP SAN for 127.0.0.1, and a foreign CA).

use std::path::{Path, PathBuf};
use std::time::Duration;

use raft_node::local::LocalCluster;
use raft_node::proto::kv as pb;
use raft_node::proto::peer as peer_pb;
use raft_node::tls::{TlsFiles, uri};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tonic::transport::{ClientTlsConfig, Endpoint};

const WAIT: Duration = Duration::from_secs(20);

/// A CA that writes its certificate and issues leaf certificates as files.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).unwrap();
        Ca {
            cert,
            key,
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A certificate for 127.0.0.1 usable as server and client.
    fn issue(&self, holder: &str) -> TlsFiles {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, holder);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_file = self.dir.join(format!("{}-{holder}.pem", self.name));
        let key_file = self.dir.join(format!("{}-{holder}.key", self.name));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        TlsFiles {
            cert: cert_file,
            key: key_file,
            ca: self.ca_file(),
        }
    }
}

async fn tls_cluster(dir: &Path, files: &TlsFiles) -> LocalCluster {
    let files = files.clone();
    LocalCluster::start(dir, 3, move |c| {
        c.election_timeout_ms = Some([150, 300]);
        c.heartbeat_ms = Some(30);
        c.tls_cert = Some(files.cert.clone());
        c.tls_key = Some(files.key.clone());
        c.tls_ca = Some(files.ca.clone());
    })
    .await
    .expect("a TLS cluster starts")
}

/// A raw KV call with the given client TLS settings (None: plaintext).
async fn status_with(address: &str, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let mut endpoint = Endpoint::from_shared(uri(address, tls.is_some()))
        .unwrap()
        .connect_timeout(Duration::from_secs(2));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let mut client = pb::kv_client::KvClient::new(channel);
    tokio::time::timeout(Duration::from_secs(5), client.status(pb::StatusRequest {}))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map(|_| ())
        .map_err(|status| format!("{status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_the_cluster_and_refuses_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "cluster");
    let node = ca.issue("node");
    let client_files = ca.issue("client");
    let foreign = Ca::new(dir.path(), "foreign");
    let intruder = foreign.issue("intruder");

    // Nodes talk to each other over mutual TLS: a leader is elected and
    // writes replicate.
    let cluster = tls_cluster(&dir.path().join("data"), &node).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let tls = client_files.load().unwrap();
    let mut client = cluster.client().unwrap().with_tls(Some(tls.clone()));
    client.put("secret", "kept").await.unwrap();
    assert_eq!(
        client.get("secret").await.unwrap().value.as_deref(),
        Some("kept")
    );
    let address = cluster.address(leader);
    status_with(&address, Some(tls.client()))
        .await
        .expect("a client with the cluster's certificate is served");

    // Plaintext: refused.
    let plain = status_with(&address, None).await;
    println!("plaintext client: {plain:?}");
    assert!(plain.is_err());
    // TLS that trusts the cluster's CA but presents no certificate: refused.
    let anonymous = ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(
        std::fs::read(ca.ca_file()).unwrap(),
    ));
    let no_cert = status_with(&address, Some(anonymous)).await;
    println!("client without a certificate: {no_cert:?}");
    assert!(no_cert.is_err());
    // A certificate of another CA (that trusts the cluster's server): refused.
    let intruder_tls = TlsFiles {
        ca: ca.ca_file(),
        ..intruder.clone()
    }
    .load()
    .unwrap();
    let foreign_cert = status_with(&address, Some(intruder_tls.client())).await;
    println!("client with a foreign certificate: {foreign_cert:?}");
    assert!(foreign_cert.is_err());

    // A peer with a foreign certificate cannot deliver Raft messages.
    let mut endpoint = Endpoint::from_shared(uri(&address, true)).unwrap();
    endpoint = endpoint.tls_config(intruder_tls.client()).unwrap();
    let refused = match endpoint.connect().await {
        Err(err) => format!("connect: {err:?}"),
        Ok(channel) => {
            let mut peer = peer_pb::raft_peer_client::RaftPeerClient::new(channel);
            let answer = peer
                .request_vote(peer_pb::RequestVoteRequest {
                    header: Some(peer_pb::Header {
                        cluster_id: "local-test".into(),
                        from: 2,
                        to: leader,
                        term: 1 << 30,
                        ..Default::default()
                    }),
                    last_log_index: 1 << 30,
                    last_log_term: 1 << 30,
                    pre_vote: false,
                })
                .await;
            match answer {
                Ok(vote) => panic!("a foreign peer was heard: {vote:?}"),
                Err(status) => format!("{status:?}"),
            }
        }
    };
    println!("peer with a foreign certificate: {refused}");
    // The intruder's huge term never reached the core.
    let status = cluster.node(leader).unwrap().status().await.unwrap();
    assert!(status.term < 1 << 30, "{status:?}");
    // A client of the foreign CA does not trust the cluster's servers either.
    let wrong_trust = status_with(&address, Some(intruder.load().unwrap().client())).await;
    println!("client trusting only the foreign CA: {wrong_trust:?}");
    assert!(wrong_trust.is_err());
    // The cluster still serves its own.
    client.put("after", "intruders").await.unwrap();
    cluster.shutdown().await;
}

#[test]
fn incomplete_or_unreadable_tls_settings_are_refused_clearly() {
    use raft_node::config::{FileConfig, Member, NodeConfig};
    let dir = tempfile::tempdir().unwrap();
    let base = FileConfig {
        cluster_id: Some("c".into()),
        id: Some(1),
        data_dir: Some(dir.path().join("d")),
        members: Some(vec![Member {
            id: 1,
            address: "127.0.0.1:7001".into(),
        }]),
        ..FileConfig::default()
    };
    let half = FileConfig {
        tls_cert: Some(dir.path().join("cert.pem")),
        ..base.clone()
    };
    let err = NodeConfig::from_file_config(half).unwrap_err().to_string();
    assert!(err.contains("all three"), "{err}");
    let missing = FileConfig {
        tls_cert: Some(dir.path().join("cert.pem")),
        tls_key: Some(dir.path().join("key.pem")),
        tls_ca: Some(dir.path().join("ca.pem")),
        ..base
    };
    let err = NodeConfig::from_file_config(missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cert.pem"), "{err}");
}
