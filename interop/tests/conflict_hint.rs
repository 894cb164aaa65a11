//! An AppendEntries rejection carrying a conflict hint (the conflicting term
//! and the first index of the follower's run of it, paper §5.3), recorded as
//! a node records it: the run validates through the model, the TLC export
//! writes the hint's fields, and a trace whose hint was altered is refused
//! with the field named.

use std::path::Path;

use raft_model::{Config, Message, NodeId, Server, Step};
use raft_trace::{Header, SCHEMA, Start, TraceWriter, traced};

type Msg = Message<u8, ()>;

/// Three model servers whose every step is recorded, one trace file per
/// node, as raft-node records them (header, then an event and a
/// `persisted` line per step).
struct Recorded {
    servers: Vec<Server<u8, ()>>,
    writers: Vec<TraceWriter>,
}

impl Recorded {
    fn new(dir: &Path) -> Recorded {
        let config = Config::new([1, 2, 3]);
        let servers: Vec<Server<u8, ()>> = (1..=3)
            .map(|id| Server::new(id, config.clone(), ()))
            .collect();
        let writers = servers
            .iter()
            .map(|server| {
                let mut writer = TraceWriter::open(dir, server.id()).unwrap();
                writer.header(Header {
                    schema: SCHEMA.to_string(),
                    node: server.id(),
                    cluster: "conflict-hint".to_string(),
                    members: vec![1, 2, 3],
                    max_append_entries: server.max_append_entries(),
                    check_quorum: server.check_quorum_enabled(),
                    pre_vote: server.pre_vote_enabled(),
                    parallel_write: server.parallel_write_enabled(),
                    max_inflight: server.max_inflight(),
                    start: Start::Init,
                    unix_ms: 0,
                });
                writer
            })
            .collect();
        Recorded { servers, writers }
    }

    /// Server `id` takes `step`; returns what it sent.
    fn step(&mut self, id: NodeId, step: Step<u8, (), Msg>) -> Vec<Msg> {
        let at = id as usize - 1;
        let recorded = traced(&step);
        let effects = self.servers[at].step(step).expect("the step is enabled");
        self.writers[at].event(recorded, None, &self.servers[at], &effects);
        self.writers[at].persisted();
        self.writers[at].flush().unwrap();
        effects.messages
    }

    /// Delivers `message` to its addressee; returns what it sent.
    fn deliver(&mut self, message: Msg) -> Vec<Msg> {
        let to = message.to;
        self.step(to, Step::receive(message))
    }

    /// Delivers every message of `messages` addressed to `to`, and what
    /// those deliveries send to `to` in turn, until nothing more is.
    fn deliver_all_to(&mut self, to: NodeId, mut messages: Vec<Msg>) -> Vec<Msg> {
        let mut elsewhere = Vec::new();
        while let Some(message) = messages.pop() {
            if message.to == to {
                let replies = self.deliver(message);
                for reply in replies {
                    let back = self.deliver(reply);
                    messages.extend(back);
                }
            } else {
                elsewhere.push(message);
            }
        }
        elsewhere
    }
}

/// s1 leads term 1 and appends three commands no one else receives; s2
/// leads term 2 with s3 and appends two; s3 leads term 3, and its first
/// request to s1 (previous entry 4, of term 2) meets s1's entry of term 1.
/// Returns the directory's trace files written.
fn record_a_conflict(dir: &Path) -> Recorded {
    let mut run = Recorded::new(dir);
    let votes = run.step(1, Step::Timeout);
    let appends = run.deliver_all_to(2, votes);
    run.deliver_all_to(3, appends);
    for command in 1..=3 {
        run.step(1, Step::ClientRequest(command));
    }
    let votes = run.step(2, Step::Timeout);
    let appends = run.deliver_all_to(3, votes);
    for command in 4..=5 {
        run.step(2, Step::ClientRequest(command));
    }
    run.deliver_all_to(3, appends);
    let heartbeat = run.step(2, Step::SendAppendEntries);
    run.deliver_all_to(3, heartbeat);
    assert_eq!(run.servers[2].log().last_index(), 4, "s3 holds s2's log");

    let votes = run.step(3, Step::Timeout);
    let appends = run.deliver_all_to(2, votes);
    assert!(run.servers[2].is_leader());
    let to_s1 = appends.into_iter().find(|m| m.to == 1).expect("to s1");
    let rejection = run.deliver(to_s1).remove(0);
    assert!(
        matches!(
            rejection.body,
            raft_model::Body::AppendEntriesResponse {
                success: false,
                conflict_term: 1,
                conflict_index: 1,
                ..
            }
        ),
        "{rejection:?}"
    );
    run.deliver(rejection);
    assert_eq!(
        run.servers[2].next_index()[&1],
        2,
        "past s1's run of term 1 in one round trip"
    );
    run
}

#[test]
fn a_recorded_conflict_hint_validates_and_is_exported_for_tlc() {
    let dir = tempfile::tempdir().unwrap();
    record_a_conflict(dir.path());
    let streams = raft_interop::read_streams(&[dir.path().to_path_buf()]).unwrap();
    let validated = raft_interop::validate(streams).unwrap_or_else(|f| panic!("{f}"));
    let exported: Vec<serde_json::Value> = raft_interop::tla::ndjson(&validated)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rejection = exported
        .iter()
        .find(|l| l["action"] == "HandleAppendEntriesResponse" && l["msg"]["success"] == false)
        .expect("the rejection's line");
    assert_eq!(rejection["msg"]["conflictTerm"], 1, "{rejection}");
    assert_eq!(rejection["msg"]["conflictIndex"], 1, "{rejection}");
    assert_eq!(rejection["msg"]["matchIndex"], 4, "{rejection}");
}

#[test]
fn a_trace_whose_conflict_hint_was_altered_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let run = record_a_conflict(dir.path());
    // s3's trace: the rejection it received now says s1's run began at 3.
    let path = run.writers[2].path().to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    let needle = "\"conflict_term\":1,\"conflict_index\":1";
    assert_eq!(text.matches(needle).count(), 1, "{text}");
    std::fs::write(
        &path,
        text.replace(needle, "\"conflict_term\":1,\"conflict_index\":3"),
    )
    .unwrap();
    let streams = raft_interop::read_streams(&[dir.path().to_path_buf()]).unwrap();
    let failure = raft_interop::validate(streams).expect_err("altered hint");
    let report = failure.to_string();
    assert!(
        report.contains("receives a message that no event sent before it"),
        "{report}"
    );
    assert!(
        report.contains("conflict_index: sent 1, recorded 3"),
        "{report}"
    );
}
