//! A node's configuration: from a TOML file, flags, or both (flags win), and
//! validated before anything starts.
//!
//! ```toml
//! cluster_id = "demo"
//! id = 1
//! listen = "0.0.0.0:7001"          # optional: defaults to this member's address
//! data_dir = "/var/lib/raft-node"
//! metrics = "0.0.0.0:9001"         # optional HTTP endpoint: /metrics (Prometheus) and /health
//! election_timeout_ms = [300, 600]
//! heartbeat_ms = 75
//! snapshot_threshold = 100000      # compact the log at most this many applied entries past the snapshot (members staggered)
//! check_quorum = true              # a leader without a quorum's answers for an election timeout steps down (default)
//! pre_vote = true                  # ask for pre-votes before raising the term; refuse them while a leader is heard (default)
//! parallel_write = true            # a leader writes its new entries to its disk while sending them, not before (default)
//! max_inflight = 0                 # pipelined replication: AppendEntries in flight per follower (0, the default: one at a time)
//! min_free_bytes = 67108864        # refuse client writes while the data directory's disk has less free (default 64 MiB)
//! trace_dir = "/var/lib/raft-node-trace"  # optional: record core events (raft-trace/5) for raft-interop
//! trace_format = "compact"         # "compact" (zstd over the JSON lines, default) or "json"
//! trace_rotate_mb = 64             # start the next trace segment once one holds this many MiB (0: never)
//! trace_keep_files = 16            # segments kept per node, the oldest deleted (0: all)
//! tls_cert = "/etc/raft-node/node1.pem"    # optional mutual TLS (all three or none; see crate::tls)
//! tls_key = "/etc/raft-node/node1.key"
//! tls_ca = "/etc/raft-node/ca.pem"
//! members = [
//!   { id = 1, address = "10.0.0.1:7001" },
//!   { id = 2, address = "10.0.0.2:7001" },
//!   { id = 3, address = "10.0.0.3:7001" },
//! ]
//! ```
//!
//! **No `init` setting.** A node's data directory is initialised once, by
//! `raft-node init` (or `run --init` at the node's first start), never by a
//! setting: a setting is read at every start, and `init = true` (a key of
//! earlier versions, which `cluster` wrote into every node's file) re-created
//! a node whose data directory was lost, at term 0 with an empty log, free to
//! vote a second time in a term. A file that still has the key loads: the
//! key is ignored with a warning saying to remove it (ignoring it is safe:
//! without it a missing data directory is refused, never created).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raft_model::NodeId;
use serde::{Deserialize, Serialize};

use crate::limits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("missing setting `{0}` (give it in the config file or as a flag)")]
    Missing(&'static str),
    #[error("node id {id} appears more than once among the members")]
    DuplicateId { id: NodeId },
    #[error("address {address} is given to both node {a} and node {b}")]
    DuplicateAddress {
        address: String,
        a: NodeId,
        b: NodeId,
    },
    #[error("node id 0 is reserved (it means \"no node\"); use ids from 1")]
    ZeroId,
    #[error("this node's id {id} is not among the members {members:?}: unknown peer")]
    UnknownSelf { id: NodeId, members: Vec<NodeId> },
    #[error("bad member {0:?}: expected ID=HOST:PORT, e.g. 2=10.0.0.2:7001")]
    BadMember(String),
    #[error("bad address {address:?} for {what}: {message}")]
    BadAddress {
        what: String,
        address: String,
        message: String,
    },
    #[error("bad trace setting: {0}")]
    Trace(String),
    #[error("bad timing: {0}")]
    BadTiming(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cluster id must be 1 to 128 printable characters")]
    BadClusterId,
    #[error(
        "max_append_entries = {max_append_entries} is too large: at most {fits} entries of the largest size fit in one gRPC message"
    )]
    TooManyEntries {
        max_append_entries: usize,
        fits: usize,
    },
    #[error(
        "max_inflight = {0} is too large: at most {MAX_INFLIGHT} AppendEntries requests in flight per follower"
    )]
    TooManyInflight(usize),
}

/// The default of `max_inflight`: pipelined replication off. Measured on
/// loopback (impl/README.md, "Pipelined replication"), two or four
/// requests in flight lose 10-15 % of put throughput against one at a
/// time: with no network round trip to hide, the extra requests (and
/// follower batches) only cost CPU. A deployment whose followers are a
/// real round trip away may turn it on.
pub const DEFAULT_MAX_INFLIGHT: usize = 0;
/// The most `max_inflight` may be: a follower's requests wait in its
/// sender's queue (`limits::PEER_QUEUE`), which must hold a window of them.
pub const MAX_INFLIGHT: usize = 64;

/// One member of the cluster and the address others reach it at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    pub address: String,
}

/// The configuration file's shape. Every field is optional so that flags can
/// supply or override it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub cluster_id: Option<String>,
    pub id: Option<NodeId>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub metrics: Option<String>,
    pub election_timeout_ms: Option<[u64; 2]>,
    pub heartbeat_ms: Option<u64>,
    pub snapshot_threshold: Option<u64>,
    pub max_append_entries: Option<usize>,
    /// CheckQuorum (default on): a leader that has not heard from a quorum
    /// within an election timeout steps down.
    pub check_quorum: Option<bool>,
    /// PreVote (default on): a server whose election timer fires asks for
    /// pre-votes before it raises its term, and refuses pre-votes while it
    /// hears from a leader.
    pub pre_vote: Option<bool>,
    /// Parallel writes (default on; Raft dissertation §10.2.1): a leader
    /// sends its new entries to the followers while it writes them to its
    /// own disk, and counts itself towards their commit only once written.
    pub parallel_write: Option<bool>,
    /// Pipelined replication (issue 17): how many AppendEntries requests a
    /// leader keeps in flight to each follower, the core advancing the
    /// follower's `next_index` as it sends (raft_model's `max_inflight`);
    /// 0: one at a time, `next_index` moved by answers only.
    pub max_inflight: Option<usize>,
    /// Client writes are refused while the data directory's file system has
    /// less than this many bytes free (default 64 MiB: the log file grows by
    /// up to 64 MiB at a time).
    pub min_free_bytes: Option<u64>,
    /// Record every core event to the segments
    /// `<trace_dir>/node-<id>.<seq>.jsonl.zst` (raft-trace/5; see crate::trace).
    pub trace_dir: Option<PathBuf>,
    /// `compact` (default: zstd over the JSON lines, some 20 times smaller)
    /// or `json` (plain lines, `node-<id>.<seq>.jsonl`).
    pub trace_format: Option<String>,
    /// A trace segment is closed and the next opened once it holds this many
    /// MiB on disk (default 64; 0: never; a fraction is allowed).
    pub trace_rotate_mb: Option<f64>,
    /// Trace segments kept per node, the oldest deleted as new ones open
    /// (default 16; 0: all).
    pub trace_keep_files: Option<usize>,
    /// Mutual TLS: this node's certificate, its key, and the cluster's CA.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub members: Option<Vec<Member>>,
}

impl FileConfig {
    /// Reads a config file. A file with the `init` key of earlier versions
    /// loads, the key ignored with a warning (see the module docs).
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (file, init) = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        if let Some(init) = init {
            tracing::warn!(
                "config file {} sets `init = {init}`, which is no longer a setting and is \
                 ignored: remove that line. A setting is read at every start, so `init = true` \
                 re-created a node whose data directory was lost. A new node's data directory \
                 is initialised once, with `raft-node init --config {}` (or `raft-node run \
                 --init` at its first start)",
                path.display(),
                path.display()
            );
        }
        Ok(file)
    }

    /// Parses a config file's text; also returns the value of an `init` key
    /// (no longer a setting), if the file has one.
    pub fn parse(text: &str) -> Result<(FileConfig, Option<toml::Value>), String> {
        let error = match toml::from_str(text) {
            Ok(file) => return Ok((file, None)),
            Err(err) => err.to_string(),
        };
        let Ok(mut table) = toml::from_str::<toml::Table>(text) else {
            return Err(error);
        };
        let Some(init) = table.remove("init") else {
            return Err(error);
        };
        let file = toml::Value::Table(table)
            .try_into()
            .map_err(|err: toml::de::Error| err.to_string())?;
        Ok((file, Some(init)))
    }

    /// Fields set in `over` replace ours.
    pub fn merge(self, over: FileConfig) -> FileConfig {
        FileConfig {
            cluster_id: over.cluster_id.or(self.cluster_id),
            id: over.id.or(self.id),
            listen: over.listen.or(self.listen),
            data_dir: over.data_dir.or(self.data_dir),
            metrics: over.metrics.or(self.metrics),
            election_timeout_ms: over.election_timeout_ms.or(self.election_timeout_ms),
            heartbeat_ms: over.heartbeat_ms.or(self.heartbeat_ms),
            snapshot_threshold: over.snapshot_threshold.or(self.snapshot_threshold),
            max_append_entries: over.max_append_entries.or(self.max_append_entries),
            check_quorum: over.check_quorum.or(self.check_quorum),
            pre_vote: over.pre_vote.or(self.pre_vote),
            parallel_write: over.parallel_write.or(self.parallel_write),
            max_inflight: over.max_inflight.or(self.max_inflight),
            min_free_bytes: over.min_free_bytes.or(self.min_free_bytes),
            trace_dir: over.trace_dir.or(self.trace_dir),
            trace_format: over.trace_format.or(self.trace_format),
            trace_rotate_mb: over.trace_rotate_mb.or(self.trace_rotate_mb),
            trace_keep_files: over.trace_keep_files.or(self.trace_keep_files),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_ca: over.tls_ca.or(self.tls_ca),
            members: over.members.or(self.members),
        }
    }
}

/// Parses `ID=HOST:PORT`.
pub fn parse_member(text: &str) -> Result<Member, ConfigError> {
    let (id, address) = text
        .split_once('=')
        .ok_or_else(|| ConfigError::BadMember(text.to_owned()))?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| ConfigError::BadMember(text.to_owned()))?;
    Ok(Member {
        id,
        address: address.trim().to_owned(),
    })
}

/// A validated node configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub cluster_id: String,
    pub id: NodeId,
    /// Where this node listens for peers and clients (one port serves both).
    pub listen: SocketAddr,
    /// Every member's address, this node's included.
    pub members: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
    pub metrics: Option<SocketAddr>,
    pub election_timeout: (Duration, Duration),
    pub heartbeat: Duration,
    pub snapshot_threshold: u64,
    pub max_append_entries: usize,
    /// CheckQuorum: the leader takes the core's CheckQuorum step each time
    /// its election timer fires (raft_model::Server::check_quorum).
    pub check_quorum: bool,
    /// PreVote (raft_model::Server::with_pre_vote): the core asks for
    /// pre-votes when the election timer fires.
    pub pre_vote: bool,
    /// Parallel writes (raft_model::Server::with_parallel_write): the
    /// leader's own appends are written while the AppendEntries carrying
    /// them are sent (crate::node, "perform").
    pub parallel_write: bool,
    /// Pipelined replication (raft_model::Server::with_max_inflight): the
    /// AppendEntries requests in flight to each follower at once, and the
    /// core's window (crate::peer_client sends that many concurrently).
    pub max_inflight: usize,
    /// Client writes are refused while the data directory's file system has
    /// less free space than this (see crate::disk_space).
    pub min_free_bytes: u64,
    /// Deadline of one peer RPC.
    pub rpc_timeout: Duration,
    /// How long a client call waits for its command to commit or read to be served.
    pub client_timeout: Duration,
    /// Largest snapshot a follower accepts over InstallSnapshot.
    pub max_snapshot_bytes: u64,
    /// Deliberately wrong behaviour, for the lab's chaos harness (feature
    /// `seeded-bugs` only; never from the file or `run`'s flags; see
    /// crate::seeded_bugs).
    #[cfg(feature = "seeded-bugs")]
    pub seeded_bugs: crate::seeded_bugs::SeededBugs,
    /// Where core events are recorded, if anywhere (see crate::trace).
    pub trace_dir: Option<PathBuf>,
    /// How: the form, rotation and retention of the trace's segments.
    pub trace: raft_trace::WriterOptions,
    /// Mutual TLS for every connection (peers and clients), if configured.
    pub tls: Option<crate::tls::Tls>,
    /// This server's incarnation (crate::incarnation): not a setting, but
    /// read from the data directory when the node starts; empty before.
    pub incarnation: String,
}

pub const DEFAULT_ELECTION_TIMEOUT_MS: [u64; 2] = [300, 600];
pub const DEFAULT_HEARTBEAT_MS: u64 = 75;
/// etcd's `--snapshot-count` default. A snapshot writes the whole state
/// machine and syncs it, on the disk the log syncs on: at 10,000 (the old
/// default) a node under 7,000 puts/s wrote a 2.6 MB snapshot every 1.5 s,
/// and the log's fdatasyncs queued behind it made put x16's p99.9 42 ms
/// instead of 14 (impl/lab/README.md, 2026-12-02). The price is memory and
/// disk: up to this many entries in the log, in memory and on disk.
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 100_000;

fn resolve(what: &str, address: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let bad = |message: String| ConfigError::BadAddress {
        what: what.to_owned(),
        address: address.to_owned(),
        message,
    };
    address
        .to_socket_addrs()
        .map_err(|err| bad(err.to_string()))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// A member's address must be HOST:PORT with a valid port; its host is not
/// resolved here. A peer's name may not resolve yet when this node starts
/// (the DNS record of a Kubernetes pod appears once the pod is scheduled),
/// and its address is resolved again at every connection anyway.
fn check_member_address(id: NodeId, address: &str) -> Result<(), ConfigError> {
    let bad = |message: &str| ConfigError::BadAddress {
        what: format!("member {id}"),
        address: address.to_owned(),
        message: message.to_owned(),
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT"))?;
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(bad("expected HOST:PORT (no host)"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(bad("the port must be 1 to 65535")),
    }
}

impl NodeConfig {
    pub fn from_file_config(file: FileConfig) -> Result<NodeConfig, ConfigError> {
        let cluster_id = file.cluster_id.ok_or(ConfigError::Missing("cluster_id"))?;
        if cluster_id.is_empty()
            || cluster_id.len() > 128
            || cluster_id.chars().any(|c| c.is_control())
        {
            return Err(ConfigError::BadClusterId);
        }
        let id = file.id.ok_or(ConfigError::Missing("id"))?;
        let member_list = file.members.ok_or(ConfigError::Missing("members"))?;
        let mut members = BTreeMap::new();
        let mut addresses: BTreeMap<String, NodeId> = BTreeMap::new();
        for member in member_list {
            if member.id == 0 {
                return Err(ConfigError::ZeroId);
            }
            check_member_address(member.id, &member.address)?;
            if let Some(other) = addresses.insert(member.address.clone(), member.id) {
                return Err(ConfigError::DuplicateAddress {
                    address: member.address,
                    a: other,
                    b: member.id,
                });
            }
            if members.insert(member.id, member.address).is_some() {
                return Err(ConfigError::DuplicateId { id: member.id });
            }
        }
        if id == 0 {
            return Err(ConfigError::ZeroId);
        }
        let Some(own_address) = members.get(&id) else {
            return Err(ConfigError::UnknownSelf {
                id,
                members: members.keys().copied().collect(),
            });
        };
        let listen = resolve("listen", file.listen.as_deref().unwrap_or(own_address))?;
        let metrics = file
            .metrics
            .as_deref()
            .map(|address| resolve("metrics", address))
            .transpose()?;
        let [low, high] = file
            .election_timeout_ms
            .unwrap_or(DEFAULT_ELECTION_TIMEOUT_MS);
        let heartbeat_ms = file.heartbeat_ms.unwrap_or(DEFAULT_HEARTBEAT_MS);
        if low == 0 || high <= low {
            return Err(ConfigError::BadTiming(format!(
                "election_timeout_ms = [{low}, {high}] must be a range [low, high) with 0 < low < high"
            )));
        }
        if heartbeat_ms == 0 || heartbeat_ms * 2 > low {
            return Err(ConfigError::BadTiming(format!(
                "heartbeat_ms = {heartbeat_ms} must be positive and at most half the lowest election timeout ({low} ms), or followers time out between heartbeats"
            )));
        }
        let max_append_entries = file
            .max_append_entries
            .unwrap_or(raft_model::DEFAULT_MAX_APPEND_ENTRIES)
            .max(1);
        let fits = limits::MAX_MESSAGE_BYTES / limits::MAX_ENTRY_BYTES;
        if max_append_entries > fits {
            return Err(ConfigError::TooManyEntries {
                max_append_entries,
                fits,
            });
        }
        let max_inflight = file.max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT);
        if max_inflight > MAX_INFLIGHT {
            return Err(ConfigError::TooManyInflight(max_inflight));
        }
        Ok(NodeConfig {
            cluster_id,
            id,
            listen,
            members,
            data_dir: file.data_dir.ok_or(ConfigError::Missing("data_dir"))?,
            metrics,
            election_timeout: (Duration::from_millis(low), Duration::from_millis(high)),
            heartbeat: Duration::from_millis(heartbeat_ms),
            snapshot_threshold: file
                .snapshot_threshold
                .unwrap_or(DEFAULT_SNAPSHOT_THRESHOLD)
                .max(1),
            max_append_entries,
            check_quorum: file.check_quorum.unwrap_or(true),
            pre_vote: file.pre_vote.unwrap_or(true),
            parallel_write: file.parallel_write.unwrap_or(true),
            max_inflight,
            min_free_bytes: file
                .min_free_bytes
                .unwrap_or(crate::disk_space::DEFAULT_MIN_FREE_BYTES),
            rpc_timeout: Duration::from_millis(low.max(200)),
            client_timeout: Duration::from_secs(5),
            max_snapshot_bytes: limits::MAX_SNAPSHOT_BYTES,
            #[cfg(feature = "seeded-bugs")]
            seeded_bugs: Default::default(),
            trace_dir: file.trace_dir,
            trace: raft_trace::WriterOptions {
                format: match file.trace_format.as_deref() {
                    Some(text) => text.parse().map_err(ConfigError::Trace)?,
                    None => raft_trace::Format::Compact,
                },
                rotate_bytes: file
                    .trace_rotate_mb
                    .map_or(raft_trace::WriterOptions::DEFAULT_ROTATE_BYTES, |mb| {
                        (mb.max(0.0) * 1024.0 * 1024.0) as u64
                    }),
                keep_files: file
                    .trace_keep_files
                    .unwrap_or(raft_trace::WriterOptions::DEFAULT_KEEP_FILES),
            },
            tls: crate::tls::TlsFiles::from_parts(file.tls_cert, file.tls_key, file.tls_ca)?
                .map(|files| files.load())
                .transpose()?,
            incarnation: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> FileConfig {
        FileConfig {
            cluster_id: Some("c".into()),
            id: Some(1),
            data_dir: Some("d".into()),
            members: Some(vec![
                parse_member("1=127.0.0.1:7001").unwrap(),
                parse_member("2=127.0.0.1:7002").unwrap(),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_config_validates() {
        let config = NodeConfig::from_file_config(base()).unwrap();
        assert_eq!(config.listen.port(), 7001);
        assert_eq!(config.members.len(), 2);
        assert_eq!(config.max_inflight, DEFAULT_MAX_INFLIGHT);
    }

    /// Pipelining's window: 0 turns it off; more than a sender's queue can
    /// hold a window of is refused.
    #[test]
    fn max_inflight_is_bounded() {
        for (set, ok) in [(0, true), (MAX_INFLIGHT, true), (MAX_INFLIGHT + 1, false)] {
            let config = NodeConfig::from_file_config(FileConfig {
                max_inflight: Some(set),
                ..base()
            });
            assert_eq!(config.is_ok(), ok, "max_inflight = {set}");
        }
    }

    /// A peer's name need not resolve when the node starts (a Kubernetes
    /// pod's DNS record appears once it is scheduled); a malformed address
    /// is still refused.
    #[test]
    fn peer_addresses_are_checked_but_not_resolved() {
        let mut config = base();
        config.members.as_mut().unwrap()[1] =
            parse_member("2=raft-node-1.raft-node-peers.nowhere.invalid:7001").unwrap();
        NodeConfig::from_file_config(config).expect("an unresolvable peer name is accepted");
        for bad in ["2=no-port", "2=:7001", "2=host:0", "2=host:99999"] {
            // Refused when parsed (the flag's form) or when validated.
            let Ok(member) = parse_member(bad) else {
                continue;
            };
            let mut config = base();
            config.members.as_mut().unwrap()[1] = member;
            let err = NodeConfig::from_file_config(config).unwrap_err();
            assert!(err.to_string().contains("member 2"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_configs_are_refused_clearly() {
        let mut dup = base();
        dup.members
            .as_mut()
            .unwrap()
            .push(parse_member("2=127.0.0.1:7003").unwrap());
        let err = NodeConfig::from_file_config(dup).unwrap_err();
        assert!(matches!(err, ConfigError::DuplicateId { id: 2 }), "{err}");

        let unknown = FileConfig {
            id: Some(9),
            ..base()
        };
        let err = NodeConfig::from_file_config(unknown).unwrap_err();
        assert!(err.to_string().contains("unknown peer"), "{err}");

        let timing = FileConfig {
            heartbeat_ms: Some(400),
            ..base()
        };
        assert!(matches!(
            NodeConfig::from_file_config(timing),
            Err(ConfigError::BadTiming(_))
        ));
        assert!(parse_member("two=127.0.0.1:1").is_err());
    }

    #[test]
    fn the_file_format_parses_and_flags_override() {
        let text = r#"
            cluster_id = "demo"
            id = 2
            data_dir = "/tmp/x"
            members = [ { id = 1, address = "127.0.0.1:7001" }, { id = 2, address = "127.0.0.1:7002" } ]
        "#;
        let file: FileConfig = toml::from_str(text).unwrap();
        let merged = file.merge(FileConfig {
            heartbeat_ms: Some(50),
            ..Default::default()
        });
        let config = NodeConfig::from_file_config(merged).unwrap();
        assert_eq!(
            (config.id, config.heartbeat),
            (2, Duration::from_millis(50))
        );
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
    }

    /// `init` is no longer a setting: a file of an earlier version that has
    /// it loads, the key set aside (and warned about by `load`), and a
    /// config written now never has it.
    #[test]
    fn an_init_key_is_set_aside_and_never_written() {
        let text = r#"
            cluster_id = "demo"
            id = 1
            data_dir = "/tmp/x"
            init = true
            members = [ { id = 1, address = "127.0.0.1:7001" } ]
        "#;
        let (file, init) = FileConfig::parse(text).unwrap();
        assert_eq!(init, Some(toml::Value::Boolean(true)));
        assert_eq!(file.id, Some(1));
        let written = toml::to_string_pretty(&file).unwrap();
        assert!(!written.contains("init"), "{written}");
        // Other mistakes are still refused, with or without the key.
        assert!(FileConfig::parse("init = true\nbogus = 1").is_err());
        assert!(FileConfig::parse("bogus = 1").is_err());
        assert_eq!(FileConfig::parse("id = 2").unwrap().1, None);
    }
}
