//! Trace validation of real runs (issue 6): three `raft-node run` processes
//! record their core events (`--trace-dir`) while clients write and read,
//! with faults: a follower paused past the election timeout (its messages
//! time out and are lost), the leader killed with SIGKILL and restarted, a
//! follower killed and restarted, log compaction and InstallSnapshot. The
//! traces must validate through raft-model; deliberately corrupted copies
//! (an event removed, a term changed, a receive moved before its send, a
//! state field altered) must each be rejected with a clear message.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_node::client::KvClient;
use raft_node::config::{FileConfig, Member};
use raft_node::launch::{Launch, NodeProcess};

const BIN: &str = env!("CARGO_BIN_EXE_raft-node");

/// Three `raft-node run` processes, started through the launcher (a dropped
/// process is killed).
struct Cluster {
    dir: PathBuf,
    members: Vec<Member>,
    /// The nodes' listening sockets, bound here (port 0) and handed to
    /// every process of that node: no port is released while the test runs.
    listeners: Vec<Arc<TcpListener>>,
    processes: Vec<Option<NodeProcess>>,
    rotate_mb: f64,
    keep_files: usize,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        Cluster::start_with(dir, 3.0 / 1024.0, 0)
    }

    /// Segments rotated at `rotate_mb` MiB, `keep_files` of them kept.
    fn start_with(dir: &Path, rotate_mb: f64, keep_files: usize) -> Cluster {
        let (listeners, members) = common::loopback_members(3);
        let mut cluster = Cluster {
            dir: dir.to_owned(),
            members,
            listeners,
            processes: vec![None, None, None],
            rotate_mb,
            keep_files,
        };
        for id in 1..=3 {
            cluster.spawn(id, true);
        }
        cluster
    }

    fn spawn(&mut self, id: usize, init: bool) {
        let config = FileConfig {
            cluster_id: Some("trace-test".into()),
            id: Some(id as u64),
            data_dir: Some(self.dir.join(format!("node-{id}"))),
            trace_dir: Some(self.dir.join("traces")),
            // Compact (the default), in segments of about 3 KiB: the run
            // rotates, and the validator reads each node's sequence in order.
            trace_rotate_mb: Some(self.rotate_mb),
            trace_keep_files: Some(self.keep_files),
            election_timeout_ms: Some([150, 300]),
            heartbeat_ms: Some(30),
            snapshot_threshold: Some(25),
            // Pipelined replication (off by default): the validator replays
            // next_index advanced as requests leave, and the fall-backs.
            max_inflight: Some(4),
            members: Some(self.members.clone()),
            ..FileConfig::default()
        };
        let launch = Launch::new(
            Path::new(BIN),
            "run",
            config,
            &self.dir.join(format!("node-{id}.toml")),
        )
        .log_to(&self.dir.join(format!("node-{id}.log")))
        .log_level("warn")
        .listener(self.listeners[id - 1].clone())
        .init(init);
        self.processes[id - 1] = Some(launch.spawn().expect("raft-node starts"));
    }

    fn kill(&mut self, id: usize) {
        if let Some(mut process) = self.processes[id - 1].take() {
            process.kill();
        }
    }

    fn signal(&mut self, id: usize, signal: &str) {
        let process = self.processes[id - 1].as_mut().expect("running");
        assert!(process.signal(signal), "SIG{signal} to node {id}");
    }

    fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.address.clone()).collect()
    }
}

async fn leader(client: &mut KvClient, endpoints: &[String]) -> usize {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        for (i, address) in endpoints.iter().enumerate() {
            if let Ok(status) = client.status_of(address).await
                && status.role == "leader"
            {
                return i + 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader within 20 s");
}

async fn write(client: &mut KvClient, from: usize, to: usize) {
    for i in from..to {
        client
            .put(&format!("k{}", i % 7), &format!("v{i}"))
            .await
            .unwrap_or_else(|err| panic!("put {i}: {err}"));
        if i % 5 == 0 {
            client.get(&format!("k{}", i % 7)).await.expect("get");
        }
    }
}

/// Until every node has applied `index` (bounded).
async fn wait_all_applied(client: &mut KvClient, endpoints: &[String]) {
    let started = Instant::now();
    loop {
        let mut applied = Vec::new();
        for address in endpoints {
            if let Ok(status) = client.status_of(address).await {
                applied.push((status.applied_index, status.commit_index));
            }
        }
        let max = applied.iter().map(|a| a.1).max().unwrap_or(0);
        if applied.len() == endpoints.len() && applied.iter().all(|a| a.0 >= max) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nodes did not converge: {applied:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records a faulty run; returns the trace directory and the follower that
/// was killed and restarted behind a compacted log (it must have caught up
/// by InstallSnapshot).
async fn record(dir: &Path) -> (PathBuf, u64) {
    let mut cluster = Cluster::start(dir);
    let endpoints = cluster.endpoints();
    let mut client = KvClient::new(endpoints.clone()).unwrap();
    client.op_timeout = Duration::from_secs(20);
    client.rpc_timeout = Duration::from_secs(2);
    let first = leader(&mut client, &endpoints).await;
    write(&mut client, 0, 30).await;

    // A follower paused past the election timeout: messages to it are lost.
    let follower = first % 3 + 1;
    cluster.signal(follower, "STOP");
    write(&mut client, 30, 40).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.signal(follower, "CONT");
    write(&mut client, 40, 50).await;

    // The leader killed mid-traffic, then restarted.
    let old = leader(&mut client, &endpoints).await;
    cluster.kill(old);
    write(&mut client, 50, 80).await;
    cluster.spawn(old, false);
    write(&mut client, 80, 90).await;

    // A follower killed, the log compacted past it, then restarted: it
    // catches up by InstallSnapshot.
    let current = leader(&mut client, &endpoints).await;
    let victim = current % 3 + 1;
    cluster.kill(victim);
    write(&mut client, 90, 140).await;
    cluster.spawn(victim, false);
    write(&mut client, 140, 150).await;
    wait_all_applied(&mut client, &endpoints).await;

    // Leadership moved by the operator: TransferLeadership at the leader,
    // TimeoutNow at the target, which campaigns without a pre-election. The
    // leader aborts a transfer whose target has not won within an election
    // timeout (300 ms at most here), which a loaded CI machine can cause
    // (seen once, 2026-12-01); an operator would try again, and so does this
    // test, three attempts at most.
    for attempt in 1..=3 {
        let from = leader(&mut client, &endpoints).await;
        let to = from % 3 + 1;
        match client.transfer_leader(to as u64).await {
            Ok(moved) => {
                assert_eq!(moved.leader_id, to as u64);
                break;
            }
            Err(err) if attempt < 3 => eprintln!("transfer to {to} aborted, again: {err:?}"),
            Err(err) => panic!("transfer to {to}, attempt {attempt}: {err:?}"),
        }
    }
    write(&mut client, 150, 160).await;
    wait_all_applied(&mut client, &endpoints).await;

    // The leader left alone: CheckQuorum steps it down within an election
    // timeout or two (at most 300 ms each here).
    let last = leader(&mut client, &endpoints).await;
    for id in (1..=3).filter(|id| *id != last) {
        cluster.kill(id);
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for id in 1..=3 {
        cluster.kill(id);
    }
    (dir.join("traces"), victim as u64)
}

/// The snapshots `node` installed from a leader's InstallSnapshot: for each
/// HandleInstallSnapshotRequest event that asked to persist a snapshot, the
/// index its snapshot ends at afterwards.
fn installed_snapshots(traces: &Path, node: u64) -> Vec<u64> {
    lines(traces, node)
        .iter()
        .filter(|line| line.contains("\"step\":{\"HandleInstallSnapshotRequest\""))
        .filter_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let installed = event["persist"]["snapshot"].as_bool() == Some(true);
            let index = event["state"]["snapshot"]["last_index"].as_u64()?;
            (installed && index > 0).then_some(index)
        })
        .collect()
}

/// The lowest node id whose trace has a line containing `pattern`.
fn first_node_with(traces: &Path, pattern: &str) -> Option<u64> {
    (1..=3u64).find(|id| lines(traces, *id).iter().any(|l| l.contains(pattern)))
}

/// The JSON lines of `node` in a directory written by `raft-interop convert
/// --to json` (one file per node).
fn lines(dir: &Path, node: u64) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("node-{node}.000001.jsonl")))
        .expect("trace file")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn validate(dir: &Path) -> Result<raft_interop::Validated, raft_interop::Failure> {
    let streams = raft_interop::read_streams(&[dir.to_owned()])?;
    raft_interop::validate(streams)
}

/// A copy of the traces with node `node`'s lines replaced.
fn corrupted(
    traces: &Path,
    into: &Path,
    node: u64,
    mut edit: impl FnMut(&mut Vec<String>),
) -> PathBuf {
    let out = into.join(format!("corrupt-{}", rand_suffix()));
    std::fs::create_dir_all(&out).unwrap();
    for id in 1..=3u64 {
        let mut text = lines(traces, id);
        if id == node {
            edit(&mut text);
        }
        std::fs::write(
            out.join(format!("node-{id}.000001.jsonl")),
            text.join("\n") + "\n",
        )
        .unwrap();
    }
    out
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn position(lines: &[String], what: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_of_a_faulty_run_validate_and_corrupted_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (compact, behind) = record(dir.path()).await;

    // The nodes wrote compact segments, rotated: more segments than
    // process starts (3 + 2 restarts), each a zstd stream.
    let segments = raft_trace::segments::list(&compact).unwrap();
    assert!(segments.len() > 5 + 3, "no rotation: {segments:?}");
    assert!(
        segments
            .iter()
            .all(|s| s.path.to_string_lossy().ends_with(".jsonl.zst"))
    );
    let validated = validate(&compact)
        .unwrap_or_else(|failure| panic!("the real run is not valid:\n{failure}"));
    // The same trace as JSON lines, one file per node: the same run, and
    // more than ten times the bytes (issue 22 asks for a tenth; measured
    // 18 to 20 times here, where 3 KiB segments restart zstd's window often).
    let traces = dir.path().join("json");
    raft_interop::convert(&compact, &traces, raft_interop::Format::Json).unwrap();
    // The compact segments record most states as deltas; the JSON form
    // carries every event's state whole.
    let text_of = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        String::from_utf8(raft_trace::compact::decode_all(&bytes).unwrap()).unwrap()
    };
    let compact_text: String = segments.iter().map(|s| text_of(&s.path)).collect();
    let deltas = compact_text.matches(r#""delta":{"#).count();
    let wholes = compact_text.matches(r#""state":{"#).count();
    assert!(
        deltas > 10 * wholes,
        "{deltas} deltas, {wholes} whole states"
    );
    for entry in std::fs::read_dir(&traces).unwrap() {
        let text = text_of(&entry.unwrap().path());
        assert!(!text.contains(r#""delta":"#));
        assert!(
            text.lines()
                .filter(|l| l.starts_with(r#"{"kind":"event""#))
                .all(|l| l.contains(r#""state":{"#))
        );
    }
    let as_json = validate(&traces).unwrap_or_else(|f| panic!("converted: {f}"));
    assert_eq!(as_json.events, validated.events);
    assert_eq!(as_json.lost, validated.lost);
    let size = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let (compact_bytes, json_bytes) = (size(&compact), size(&traces));
    println!(
        "{} events: {compact_bytes} bytes compact in {} segments, {json_bytes} as JSON",
        validated.events.values().sum::<usize>(),
        segments.len()
    );
    assert!(
        compact_bytes * 10 < json_bytes,
        "compact {compact_bytes} bytes, JSON {json_bytes}"
    );
    assert!(
        validated.restarts >= 2,
        "two processes restarted: {validated:?}",
        validated = validated.restarts
    );
    let actions: std::collections::BTreeSet<&str> =
        validated.run.iter().map(|s| s.action.name()).collect();
    for expected in [
        "Timeout",
        "HandleRequestVoteRequest",
        "ClientRequest",
        "HandleAppendEntriesRequest",
        "HandleAppendEntriesResponse",
        "ReadIndex",
        "CompactLog",
        "Restart",
        "HandleInstallSnapshotRequest",
        "CheckQuorum",
        "TransferLeadership",
        "HandleTimeoutNow",
        // The leader writes its entries in parallel with replication
        // (parallel_write, the default) and learns each write done.
        "LogPersisted",
    ] {
        assert!(
            actions.contains(expected),
            "no {expected} in the run: {actions:?}"
        );
    }

    // The isolated leader stepped down by CheckQuorum, and that validated.
    let stepped_down = validated.run.iter().any(|step| {
        step.action.name() == "CheckQuorum" && step.server.role() == raft_model::Role::Follower
    });
    assert!(stepped_down, "no CheckQuorum step-down in the run");

    // The node runs PreVote: its elections began with pre-candidates whose
    // pre-vote requests were answered, and that validated too.
    let pre_candidates = validated
        .run
        .iter()
        .any(|step| step.server.role() == raft_model::Role::PreCandidate);
    let pre_votes_answered = validated.run.iter().any(|step| {
        matches!(
            step.step
                .as_ref()
                .and_then(|s| s.message())
                .map(|m| &m.body),
            Some(raft_model::Body::RequestVoteRequest { pre_vote: true, .. })
        )
    });
    assert!(
        pre_candidates && pre_votes_answered,
        "no pre-election in the run"
    );

    // The follower that was behind caught up by installing a snapshot.
    let installed = installed_snapshots(&traces, behind);
    assert!(
        !installed.is_empty(),
        "node {behind}, restarted behind a compacted log, installed no snapshot from an \
         InstallSnapshot (no HandleInstallSnapshotRequest event persisting a snapshot)"
    );
    println!("node {behind} installed snapshots ending at {installed:?}");

    // Which node led first: the one whose trace has the first ClientRequest.
    let leader = first_node_with(&traces, "\"ClientRequest\"").expect("a leader");
    let follower = leader % 3 + 1;

    // 1. An event removed: a follower's first append of entries.
    let out = corrupted(&traces, dir.path(), follower, |lines| {
        let at = position(lines, "\"step\":{\"HandleAppendEntriesRequest\":{\"from\"");
        let at = at
            + lines[at..]
                .iter()
                .position(|l| l.contains("\"written\":{"))
                .unwrap();
        lines.remove(at);
    });
    let failure = validate(&out).expect_err("an event removed");
    println!("event removed -> {failure}");
    // Either the follower's next event no longer matches, or the response
    // the removed event produced is missing for the leader.
    let text = failure.to_string();
    assert!(
        text.contains("differ") || text.contains("no event sent before it"),
        "{failure}"
    );

    // 2. A term changed: the first Timeout's new term (of a node that timed
    // out; the first leader did).
    let timed_out = first_node_with(&traces, "\"step\":\"Timeout\"").expect("an election");
    let out = corrupted(&traces, dir.path(), timed_out, |lines| {
        let at = position(lines, "\"step\":\"Timeout\"");
        let line = lines[at].clone();
        let term_at = line.find("\"current_term\":").unwrap() + "\"current_term\":".len();
        let end = term_at + line[term_at..].find(',').unwrap();
        let term: u64 = line[term_at..end].parse().unwrap();
        lines[at] = format!("{}{}{}", &line[..term_at], term + 7, &line[end..]);
    });
    let failure = validate(&out).expect_err("a term changed");
    println!("term changed -> {failure}");
    assert!(failure.to_string().contains("current_term"), "{failure}");

    // 3. A receive moved before its send: the leader's first AppendEntries
    // response, moved to just after its process start.
    let out = corrupted(&traces, dir.path(), leader, |lines| {
        let at = position(lines, "\"step\":{\"HandleAppendEntriesResponse\"");
        let line = lines.remove(at);
        lines.insert(1, line);
    });
    let failure = validate(&out).expect_err("a receive before its send");
    println!("receive moved -> {failure}");
    assert!(
        failure.to_string().contains("no event sent before it"),
        "{failure}"
    );

    // 4. A state field altered: a commit index raised.
    let out = corrupted(&traces, dir.path(), leader, |lines| {
        let at = position(lines, "\"step\":{\"ClientRequest\"");
        lines[at] = lines[at].replacen("\"commit_index\":", "\"commit_index\":1000", 1);
    });
    let failure = validate(&out).expect_err("a state field altered");
    println!("field altered -> {failure}");
    assert!(failure.to_string().contains("commit_index"), "{failure}");

    // 5. A lost durable state: a restart that recovered less than was persisted.
    let restarted = (1..=3u64)
        .find(|id| {
            lines(&traces, *id)
                .iter()
                .any(|l| l.contains("\"step\":\"Restart\""))
        })
        .expect("a restart");
    let out = corrupted(&traces, dir.path(), restarted, |lines| {
        let at = position(lines, "\"step\":\"Restart\"");
        lines[at] = lines[at].replacen("\"entry_terms\":[", "\"entry_terms\":[0,", 1);
    });
    let failure = validate(&out).expect_err("a recovery that matches nothing");
    println!("recovery altered -> {failure}");
    assert!(
        failure.to_string().contains("recovered a durable state"),
        "{failure}"
    );

    // The export of the real run reads back through the ITF reference reader.
    let itf = raft_interop::itf::export(&validated, "test");
    assert_eq!(
        itf["states"].as_array().unwrap().len(),
        validated.run.len() + 1
    );
}

/// Appends `line` to the compact segment at `path` as a zstd *raw* block
/// (3-byte header: not the last block, type raw, the size; then the bytes):
/// a writer's segment ends after a whole block (it flushes one per batch),
/// so a reader decodes the line as the next one of the node's trace, exactly
/// as if the node had written it.
fn inject_line(path: &Path, line: &str) {
    use std::io::Write;
    let bytes = format!("{line}\n").into_bytes();
    let header = (bytes.len() as u32) << 3; // last = 0, type = 0 (raw)
    let mut block = header.to_le_bytes()[..3].to_vec();
    block.extend_from_slice(&bytes);
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(&block).unwrap();
}

/// `raft-interop validate --follow` (issue 22) tails a running cluster whose
/// segments rotate every 2 KiB, 8 kept per node: it validates the events
/// as the nodes write them, through a follower's kill and restart, while
/// retention deletes segments it has read; then a corrupted event injected
/// into the leader's current segment is reported within seconds, naming the
/// field. The batch validator refuses the same directory: its first
/// segments are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_validates_a_running_cluster_and_reports_an_injected_corruption() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicUsize::new(0));
    let follower = {
        let (traces, stop, events) = (traces.clone(), stop.clone(), events.clone());
        std::thread::spawn(move || {
            let options = raft_interop::follow::FollowOptions {
                grace: Duration::from_secs(5),
                progress: Duration::from_millis(200),
                poll: Duration::from_millis(50),
                ..Default::default()
            };
            raft_interop::follow::follow(&[traces], &options, &stop, |progress| {
                events.store(progress.events, Ordering::Relaxed);
            })
        })
    };
    let mut cluster = Cluster::start_with(dir.path(), 2.0 / 1024.0, 8);
    let endpoints = cluster.endpoints();
    let mut client = KvClient::new(endpoints.clone()).unwrap();
    client.op_timeout = Duration::from_secs(20);
    client.rpc_timeout = Duration::from_secs(2);
    let first = leader(&mut client, &endpoints).await;
    write(&mut client, 0, 100).await;
    let follower_node = first % 3 + 1;
    cluster.kill(follower_node);
    write(&mut client, 100, 150).await;
    cluster.spawn(follower_node, false);
    write(&mut client, 150, 250).await;
    wait_all_applied(&mut client, &endpoints).await;

    // The follow validates as the nodes write (that it keeps up shows
    // below: the injected line comes after everything written so far).
    let started = Instant::now();
    let mut seen = 0;
    while seen <= 1000 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = events.load(Ordering::Relaxed);
    }
    if follower.is_finished() {
        panic!(
            "the follow stopped early: {:?}",
            follower.join().unwrap().err()
        );
    }
    assert!(seen > 1000, "{seen} events validated while following");
    let left = raft_trace::segments::list(&traces).unwrap();
    for node in 1..=3 {
        let of_node = left.iter().filter(|s| s.node == node).count();
        assert!(of_node <= 8, "retention keeps 8: {left:?}");
    }
    assert!(left.iter().any(|s| s.seq > 8), "rotated: {left:?}");

    // The leader's latest heartbeat tick, its term raised, injected into its
    // segment while it is paused (so nothing it writes follows the line).
    let victim = leader(&mut client, &endpoints).await as u64;
    cluster.signal(victim as usize, "STOP");
    let segment = raft_trace::segments::of_node(&traces, victim)
        .unwrap()
        .pop()
        .unwrap();
    let text = raft_trace::compact::decode_all(&std::fs::read(&segment.path).unwrap()).unwrap();
    let text = String::from_utf8(text).unwrap();
    // Its state read as the validator reads it: most events of a compact
    // segment record a delta of the state, not the term itself.
    let mut states = raft_trace::States::default();
    let (tick, term) = text
        .lines()
        .filter_map(
            |l| match raft_interop::validate::parse_line(l, &mut states) {
                Ok(raft_interop::Line::Event(e)) => Some((l, e.state.current_term)),
                _ => None,
            },
        )
        .filter(|(l, _)| l.contains("\"step\":\"SendAppendEntries\""))
        .last()
        .expect("a heartbeat tick in the leader's segment");
    let corrupted = match tick.find("\"current_term\":") {
        Some(at) => {
            let at = at + "\"current_term\":".len();
            let end = at + tick[at..].find(',').unwrap();
            format!("{}{}{}", &tick[..at], term + 7, &tick[end..])
        }
        None => {
            let at = tick.find("\"delta\":{").expect("a state or a delta") + "\"delta\":{".len();
            let comma = if tick[at..].starts_with('}') { "" } else { "," };
            format!(
                "{}\"current_term\":{}{comma}{}",
                &tick[..at],
                term + 7,
                &tick[at..]
            )
        }
    };
    let injected = Instant::now();
    inject_line(&segment.path, &corrupted);
    while !follower.is_finished() && injected.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reported = injected.elapsed();
    stop.store(true, Ordering::Relaxed);
    cluster.signal(victim as usize, "CONT");
    let failure = follower
        .join()
        .unwrap()
        .expect_err("the injected corruption is reported");
    println!("reported in {reported:?}: {failure}");
    assert!(reported < Duration::from_secs(5), "{reported:?}");
    assert_eq!(failure.node, Some(victim), "{failure}");
    assert!(
        failure.to_string().contains(&format!(
            "current_term: model {term}, recorded {}",
            term + 7
        )),
        "{failure}"
    );
    for id in 1..=3 {
        cluster.kill(id);
    }

    // Offline, the same directory no longer holds the nodes' first segments.
    let failure = validate(&traces).expect_err("first segments removed");
    assert!(failure.to_string().contains("removed"), "{failure}");
}
