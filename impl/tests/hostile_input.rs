//! Hostile input: damaged data files, stale and far-future terms, garbage
//! and oversized gRPC payloads, malformed client requests. Each must end in
//! a clear error (or be harmless), and nothing committed may be lost.
//!
//! The storage cases damage each file of a node's data directory and
//! require, per file, the refusal the storage gives for that file: its name
//! and the check that failed. The one harmless damage is a flipped bit in
//! the log's preallocated zeros past its records (read as a torn final
//! write, and zeroed), where the node must start with every acknowledged
//! write intact.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::bytes::{Buf, BufMut};
use raft_node::config::{FileConfig, Member, NodeConfig};
use raft_node::local::LocalCluster;
use raft_node::proto::kv as pb;
use raft_node::proto::peer as peer_pb;
use raft_node::server::{self, RunningNode};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

const WAIT: Duration = Duration::from_secs(20);

// --- a single-node cluster, restarted from damaged files ---

fn single_config(data_dir: &Path, address: &str) -> NodeConfig {
    NodeConfig::from_file_config(FileConfig {
        cluster_id: Some("hostile".into()),
        id: Some(1),
        data_dir: Some(data_dir.to_owned()),
        election_timeout_ms: Some([150, 300]),
        heartbeat_ms: Some(30),
        snapshot_threshold: Some(u64::MAX),
        members: Some(vec![Member {
            id: 1,
            address: address.to_owned(),
        }]),
        ..FileConfig::default()
    })
    .unwrap()
}

async fn start_single(data_dir: &Path, init: bool) -> anyhow::Result<RunningNode> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let config = single_config(data_dir, &address);
    if init {
        server::init_data_dir(&config)?;
    }
    server::start(config, listener).await
}

fn client_for(node: &RunningNode) -> raft_node::client::KvClient {
    let mut client = raft_node::client::KvClient::new(vec![node.address.to_string()]).unwrap();
    client.op_timeout = Duration::from_secs(10);
    client
}

/// The keys written before the damage, and their values.
fn written(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("key-{i}"), format!("value-{i}")))
        .collect()
}

/// Every acknowledged write reads back.
async fn all_intact(node: &RunningNode, keys: &[(String, String)]) -> Result<(), String> {
    let mut client = client_for(node);
    for (key, value) in keys {
        let got = client.get(key).await.map_err(|e| e.to_string())?;
        if got.value.as_deref() != Some(value.as_str()) {
            return Err(format!("{key} reads {:?}, not {value:?}", got.value));
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        if item.file_type().unwrap().is_file() {
            std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
        }
    }
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.is_file() && std::fs::metadata(path).unwrap().len() > 0)
        .collect();
    files.sort();
    files
}

/// A node with 40 acknowledged writes (a snapshot in the middle, so that
/// there is a snapshot file too), crash-stopped.
async fn populated(root: &Path) -> (PathBuf, Vec<(String, String)>) {
    let dir = root.join("pristine");
    let node = start_single(&dir, true).await.unwrap();
    let keys = written(40);
    let mut client = client_for(&node);
    for (i, (key, value)) in keys.iter().enumerate() {
        client.put(key, value).await.unwrap();
        if i == 19 {
            node.take_snapshot().await.unwrap();
        }
    }
    node.stop().await;
    (dir, keys)
}

/// How a damaged start ended: refused (with the error's text), or started
/// with every acknowledged write intact.
enum Outcome {
    Refused(String),
    Intact,
}

/// Starts on a damaged copy: a refusal, or a start in which nothing
/// acknowledged was lost (anything else fails the test).
async fn start_damaged(dir: &Path, keys: &[(String, String)], what: &str) -> Outcome {
    match start_single(dir, false).await {
        Err(err) => {
            let text = format!("{err:#}");
            println!("{what}: refused: {text}");
            Outcome::Refused(text)
        }
        Ok(node) => {
            let result = all_intact(&node, keys).await;
            node.stop().await;
            if let Err(lost) = result {
                panic!("{what}: started but lost acknowledged data: {lost}");
            }
            println!("{what}: started with every acknowledged write");
            Outcome::Intact
        }
    }
}

/// The refusal each kind of damage must get: the file named, and what is
/// wrong with it in the storage's own words (one of `reasons`).
fn assert_refused(outcome: Outcome, file: &str, reasons: &[&str], what: &str) {
    match outcome {
        Outcome::Intact => panic!("{what}: the node started; it must refuse"),
        Outcome::Refused(text) => assert!(
            text.contains(file) && reasons.iter().any(|reason| text.contains(reason)),
            "{what}: the refusal does not name {file} and one of {reasons:?}: {text}"
        ),
    }
}

/// What each data file's damage is refused with.
fn reasons(name: &str) -> &'static [&'static str] {
    if name == "raft.log" {
        // log_file's refusals: a damaged record, a file cut short, or (cut
        // before its first record) a log that lost its beginning.
        &[
            "checksum mismatch",
            "record header damaged",
            "runs past the end of the file",
            "exceeds",
            "was cut short",
            "lost its beginning",
        ]
    } else if name == "identity.json" {
        &["checksum mismatch", "does not parse", "byte for byte"]
    } else if name.starts_with("snapshot-") {
        &[
            "snapshot image checksum mismatch",
            "snapshot image is too short",
        ]
    } else {
        panic!("an unexpected data file: {name}")
    }
}

/// A bit flipped in each data file — identity.json (at every byte),
/// raft.log and the snapshot file (at a fifth, half, four fifths and the
/// last byte of its data): each
/// is refused, naming the file and the failed check. (LOCK is empty: it
/// holds no data, only its flock.) raft.log's data is its records: past
/// them the file is preallocated zeros, where a flipped bit reads as a torn
/// final write (a non-zero header where no record was written) and is
/// zeroed, with nothing lost — checked here too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_any_data_file_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (pristine, keys) = populated(root.path()).await;
    let files = data_files(&pristine);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "identity, log and snapshot: {names:?}");
    for (n, name) in names.iter().enumerate() {
        let file = pristine.join(name);
        let len = std::fs::metadata(&file).unwrap().len() as usize;
        let data = if name == "raft.log" {
            records_end(&file)
        } else {
            len
        };
        let mut flips: Vec<(usize, bool)> = if name == "identity.json" {
            // Small, and its values are also checked against the
            // configuration: every byte, so that a flip the parser and that
            // check would both let through (a digit of the checksum, the
            // layout) is tried too.
            (0..data).map(|at| (at, true)).collect()
        } else {
            [data / 5, data / 2, data * 4 / 5, data - 1]
                .into_iter()
                .map(|at| (at, true))
                .collect()
        };
        if name == "raft.log" {
            // In the preallocated zeros: harmless.
            flips.extend([
                (data + 100, false),
                ((data + len) / 2, false),
                (len - 1, false),
            ]);
        }
        for (m, (at, refused)) in flips.into_iter().enumerate() {
            let dir = root.path().join(format!("flip-{n}-{m}"));
            copy_dir(&pristine, &dir);
            let path = dir.join(name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at] ^= 0x10;
            std::fs::write(&path, bytes).unwrap();
            let what = format!("{name}: bit flipped at byte {at} of {len}");
            let outcome = start_damaged(&dir, &keys, &what).await;
            if refused {
                assert_refused(outcome, name, reasons(name), &what);
            } else {
                assert!(matches!(outcome, Outcome::Intact), "{what}: refused");
            }
        }
    }
}

/// Every data file cut — to nothing, to half, 3 bytes short — is refused,
/// naming the file. A log file cut anywhere is refused: at a record
/// boundary too, where a cut looks like an end: the log is preallocated,
/// and its batch records say how long it was made, so a shorter file was
/// cut. Starting from the shorter log would drop acknowledged entries from
/// the majority that committed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_data_files_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let (pristine, keys) = populated(root.path()).await;
    let files = data_files(&pristine);
    assert_eq!(files.len(), 3, "identity, log and snapshot: {files:?}");
    for (n, file) in files.into_iter().enumerate() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let len = std::fs::metadata(&file).unwrap().len();
        let mut cuts = vec![0, len / 2, len.saturating_sub(3)];
        if name == "raft.log" {
            // Where the records end, and the boundaries before the last and
            // a middle record: each looks like an end to a reader.
            let bytes = std::fs::read(&file).unwrap();
            let contents = raft_node::storage::log_file::parse(&file, &bytes).unwrap();
            let records = &contents.records;
            cuts.extend([
                contents.end,
                records[records.len() - 1].0,
                records[records.len() / 2].0,
            ]);
        }
        for (m, to) in cuts.into_iter().enumerate() {
            let dir = root.path().join(format!("cut-{n}-{m}"));
            copy_dir(&pristine, &dir);
            let handle = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join(&name))
                .unwrap();
            handle.set_len(to).unwrap();
            drop(handle);
            let what = format!("{name}: cut from {len} to {to} bytes");
            let outcome = start_damaged(&dir, &keys, &what).await;
            assert_refused(outcome, &name, reasons(&name), &what);
        }
    }
}

/// Where the log file's records end (zeros, preallocated, follow them).
fn records_end(log: &Path) -> usize {
    let bytes = std::fs::read(log).unwrap();
    raft_node::storage::log_file::parse(log, &bytes)
        .unwrap()
        .end as usize
}

/// An incomplete record after the last one (a batch whose write a crash cut
/// short, hence never acknowledged: its first sector reached the disk, the
/// rest reads as the preallocated zeros): cut off, nothing lost.
fn append_torn_record(log: &Path) {
    use std::os::unix::fs::FileExt;
    let end = records_end(log);
    let file = std::fs::OpenOptions::new().write(true).open(log).unwrap();
    // The log's framing: length, inverted length, crc32, then a body that
    // here stops after 10 of the announced 1,000 bytes.
    let len: u32 = 1000;
    let mut torn = Vec::new();
    torn.extend_from_slice(&len.to_le_bytes());
    torn.extend_from_slice(&(!len).to_le_bytes());
    torn.extend_from_slice(&0u32.to_le_bytes());
    torn.extend_from_slice(&[0xab; 10]);
    file.write_all_at(&torn, end as u64).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_final_write_is_cut_off_and_nothing_acknowledged_is_lost() {
    let root = tempfile::tempdir().unwrap();
    let (pristine, keys) = populated(root.path()).await;
    let dir = root.path().join("torn");
    copy_dir(&pristine, &dir);
    append_torn_record(&dir.join("raft.log"));
    let outcome = start_damaged(&dir, &keys, "raft.log with a torn final record").await;
    assert!(
        matches!(outcome, Outcome::Intact),
        "a torn final write must not stop the node"
    );
    // And a tail of zeroes (space allocated, never written).
    let dir = root.path().join("zeroes");
    copy_dir(&pristine, &dir);
    let log = dir.join("raft.log");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len + 4096)
        .unwrap();
    let outcome = start_damaged(&dir, &keys, "raft.log with a zero tail").await;
    assert!(matches!(outcome, Outcome::Intact), "a zero tail");
}

/// A follower restarts with a torn final write in its log: it rejoins and
/// catches up, and the cluster loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_a_torn_tail_rejoins_and_the_cluster_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(dir.path(), 3, |c| {
        c.election_timeout_ms = Some([150, 300]);
        c.heartbeat_ms = Some(30);
        c.snapshot_threshold = Some(u64::MAX);
    })
    .await
    .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let keys = written(30);
    let mut client = cluster.client().unwrap();
    for (key, value) in &keys {
        client.put(key, value).await.unwrap();
    }
    cluster.stop_node(follower).await;
    append_torn_record(&dir.path().join(format!("node-{follower}/raft.log")));
    cluster
        .restart_node(follower)
        .await
        .expect("a torn final write does not stop the node");
    let extra = ("after".to_owned(), "damage".to_owned());
    client.put(&extra.0, &extra.1).await.unwrap();
    for (key, value) in keys.iter().chain([&extra]) {
        let got = client.get(key).await.unwrap();
        assert_eq!(got.value.as_deref(), Some(value.as_str()), "{key}");
    }
    let target = cluster
        .node(leader)
        .unwrap()
        .status()
        .await
        .unwrap()
        .commit_index;
    let node = cluster.node(follower).unwrap();
    let started = Instant::now();
    loop {
        // `None`: the follower's event loop has ended — it died, which is a
        // failure, not a reason to stop waiting.
        let status = node
            .status()
            .await
            .unwrap_or_else(|| panic!("follower {follower}'s event loop died after the restart"));
        if status.applied_index >= target {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "follower {follower} did not catch up within {WAIT:?}: applied {} of {target}",
            status.applied_index
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}

// --- raw gRPC: garbage, oversized and malformed payloads ---

/// Sends and receives raw bytes as a gRPC message (no protobuf involved).
#[derive(Clone, Copy, Default)]
struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// tonic refuses an over-limit message with OUT_OF_RANGE ("decoded message
/// length too large") or RESOURCE_EXHAUSTED, depending on where it notices.
fn too_large(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted)
        && status.message().contains("too large")
}

async fn channel(address: &str) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn raw_call(address: &str, method: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel(address).await)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    match grpc
        .unary(
            tonic::Request::new(body),
            PathAndQuery::from_static(method),
            RawCodec,
        )
        .await
    {
        Ok(_) => panic!("{method} accepted a hostile payload"),
        Err(status) => status,
    }
}

/// A 3-node cluster with short timeouts (elections in well under a second).
async fn fast_cluster(dir: &Path) -> LocalCluster {
    LocalCluster::start(dir, 3, |c| {
        c.election_timeout_ms = Some([150, 300]);
        c.heartbeat_ms = Some(30);
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_malformed_requests_are_refused_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = fast_cluster(dir.path()).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let address = cluster.address(leader);
    let mut client = cluster.client().unwrap();
    client.put("kept", "safe").await.unwrap();

    // Garbage where a protobuf message should be.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for method in [
        "/raft.kv.v1.Kv/Put",
        "/raft.kv.v1.Kv/CompareAndSwap",
        "/raft.peer.v1.RaftPeer/AppendEntries",
        "/raft.peer.v1.RaftPeer/AppendEntriesStream",
        "/raft.peer.v1.RaftPeer/RequestVote",
    ] {
        let status = raw_call(&address, method, garbage.clone()).await;
        println!(
            "{method} with garbage: {:?} {}",
            status.code(),
            status.message()
        );
        assert_ne!(status.code(), Code::Ok);
    }
    // A string field that is not UTF-8 (PutRequest.key = 0xff 0xfe).
    let status = raw_call(&address, "/raft.kv.v1.Kv/Put", vec![0x1a, 2, 0xff, 0xfe]).await;
    println!("non-UTF-8 key: {:?} {}", status.code(), status.message());
    assert_ne!(status.code(), Code::Ok);
    // Larger than the client API's message limit (4 MiB).
    let status = raw_call(&address, "/raft.kv.v1.Kv/Put", vec![0x0a; 5 << 20]).await;
    println!(
        "5 MiB client message: {:?} {}",
        status.code(),
        status.message()
    );
    assert!(too_large(&status), "{status:?}");
    // Larger than the peer API's message limit (64 MiB).
    let status = raw_call(
        &address,
        "/raft.peer.v1.RaftPeer/AppendEntries",
        vec![0x0a; 65 << 20],
    )
    .await;
    println!(
        "65 MiB peer message: {:?} {}",
        status.code(),
        status.message()
    );
    assert!(too_large(&status), "{status:?}");

    // Not HTTP/2 at all: the connection is dropped, the node carries on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        socket.write_all(&garbage).await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
    }

    // Well-formed but invalid client requests: clear INVALID_ARGUMENT.
    let mut kv = pb::kv_client::KvClient::new(channel(&address).await);
    let cases = [
        (
            "empty key",
            pb::PutRequest {
                client_id: 0,
                seq: 0,
                key: String::new(),
                value: "v".into(),
            },
        ),
        (
            "key over 4 KiB",
            pb::PutRequest {
                client_id: 0,
                seq: 0,
                key: "k".repeat(5000),
                value: "v".into(),
            },
        ),
        (
            "value over 64 KiB",
            pb::PutRequest {
                client_id: 0,
                seq: 0,
                key: "k".into(),
                value: "v".repeat(70_000),
            },
        ),
        (
            "session without a sequence number",
            pb::PutRequest {
                client_id: 9,
                seq: 0,
                key: "k".into(),
                value: "v".into(),
            },
        ),
    ];
    for (what, request) in cases {
        let status = kv.put(request).await.unwrap_err();
        println!("{what}: {:?} {}", status.code(), status.message());
        assert_eq!(status.code(), Code::InvalidArgument, "{what}");
    }

    // The cluster still serves, and nothing committed was lost.
    assert_eq!(
        client.get("kept").await.unwrap().value.as_deref(),
        Some("safe")
    );
    client.put("after", "garbage").await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_far_future_terms_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = fast_cluster(dir.path()).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    client.put("kept", "safe").await.unwrap();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let other = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .unwrap();
    let term = cluster.node(follower).unwrap().status().await.unwrap().term;
    let mut peer =
        peer_pb::raft_peer_client::RaftPeerClient::new(channel(&cluster.address(follower)).await);
    // Speaking as `other`, with its incarnation (the leader records it).
    let other_incarnation = cluster
        .node(other)
        .unwrap()
        .status()
        .await
        .unwrap()
        .incarnation;
    let header = |term: u64| peer_pb::Header {
        cluster_id: "local-test".into(),
        from: other,
        to: follower,
        term,
        from_incarnation: other_incarnation.clone(),
        ..Default::default()
    };

    // A stale term: refused by the protocol (success = false, our term back),
    // and the follower's term and log are untouched.
    let stale = peer
        .append_entries(peer_pb::AppendEntriesRequest {
            header: Some(header(term.saturating_sub(1))),
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![peer_pb::Entry {
                term: term.saturating_sub(1),
                payload: Some(peer_pb::entry::Payload::Noop(peer_pb::Noop {})),
            }],
            leader_commit: 0,
            read_seq: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!stale.success);
    assert_eq!(stale.header.unwrap().term, term);
    let vote = peer
        .request_vote(peer_pb::RequestVoteRequest {
            header: Some(header(term.saturating_sub(1))),
            last_log_index: 1000,
            last_log_term: 1000,
            pre_vote: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!vote.vote_granted, "a stale candidate got a vote");

    // Beyond any possible term: refused before the core sees it.
    for bad in [u64::MAX, (1 << 62) + 1] {
        let status = peer
            .request_vote(peer_pb::RequestVoteRequest {
                header: Some(header(bad)),
                last_log_index: 0,
                last_log_term: 0,
                pre_vote: false,
            })
            .await
            .unwrap_err();
        println!("term {bad}: {:?} {}", status.code(), status.message());
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    // A far-future term within range is legal Raft (a member may have been
    // partitioned and campaigning for ages): the follower adopts it, the
    // cluster elects a leader in a later term, and keeps its data.
    let future = 1u64 << 40;
    let vote = peer
        .request_vote(peer_pb::RequestVoteRequest {
            header: Some(header(future)),
            last_log_index: 0,
            last_log_term: 0,
            pre_vote: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !vote.vote_granted,
        "a candidate with an empty log got a vote"
    );
    assert!(cluster.node(follower).unwrap().status().await.unwrap().term >= future);
    client.put("after", "future").await.unwrap();
    assert_eq!(
        client.get("kept").await.unwrap().value.as_deref(),
        Some("safe")
    );
    let new_leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let status = cluster.node(new_leader).unwrap().status().await.unwrap();
    assert!(status.term > future, "{status:?}");
    cluster.shutdown().await;
}
