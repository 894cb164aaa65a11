//! The checker's traces and the node's traces are one format, raft-trace/5:
//! counterexamples and examples of raft-checker are read and replayed by the
//! same path as a node's traces. A run of the real core validates; a
//! counterexample found with a seeded bug is rejected at the step where the
//! bug acted, because the validator replays the correct core. The ITF export
//! reads back through the `itf` crate, the reference reader.

use std::collections::{BTreeMap, BTreeSet};

use raft_checker::bounds::Bounds;
use raft_checker::model;
use raft_checker::run::{RunOptions, run};
use raft_interop::Stream;
use raft_model::{Action, Bug};
use serde::Deserialize;

fn checker_trace(bug: Option<Bug>, bounds: Bounds, property: &'static str) -> String {
    let mut options = RunOptions::check(bounds);
    options.bug = bug;
    options.stop_at = Some(property);
    let outcome = run(&options);
    outcome
        .trace(property)
        .unwrap_or_else(|| panic!("no trace for {property}"))
        .to_lines()
        .expect("serializable")
}

fn streams(source: &str, text: &str) -> Vec<Stream> {
    Stream::parse(source, text).expect("parses")
}

#[test]
fn examples_of_the_real_core_validate() {
    for property in [model::COMMAND_COMMITTED, model::SNAPSHOT_INSTALLED] {
        let text = checker_trace(None, Bounds::DEFAULT, property);
        let streams = streams(property, &text);
        assert_eq!(streams.len(), 3, "one stream per server");
        let validated = raft_interop::validate(streams)
            .unwrap_or_else(|failure| panic!("{property}: {failure}"));
        assert!(!validated.run.is_empty());
        let context = validated.context.expect("the checker's context");
        assert_eq!(context.property, property);
        assert_eq!(context.expectation, "sometimes");
    }
}

#[test]
fn a_checker_file_and_a_directory_of_node_files_read_alike() {
    let text = checker_trace(None, Bounds::DEFAULT, model::COMMAND_COMMITTED);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("CommandCommitted.jsonl");
    std::fs::write(&file, &text).unwrap();
    let from_file = raft_interop::validate(raft_interop::read_streams(&[file]).unwrap()).unwrap();
    // The same lines split into one file per node, as a cluster records them.
    let nodes = dir.path().join("nodes");
    std::fs::create_dir(&nodes).unwrap();
    for stream in streams("split", &text) {
        let node = stream.lines[0].content.node().unwrap();
        let lines: Vec<String> = stream
            .lines
            .iter()
            .map(|l| serde_json::to_string(&l.content).unwrap())
            .collect();
        std::fs::write(
            nodes.join(format!("node-{node}.jsonl")),
            lines.join("\n") + "\n",
        )
        .unwrap();
    }
    let from_dir = raft_interop::validate(raft_interop::read_streams(&[nodes]).unwrap()).unwrap();
    assert_eq!(from_file.run.len(), from_dir.run.len());
    assert_eq!(from_file.events, from_dir.events);
}

#[test]
fn a_drop_must_name_a_message_some_event_sent() {
    let text = checker_trace(None, Bounds::DEFAULT, model::COMMAND_COMMITTED);
    // The network loses a message that was delivered once already.
    let delivered = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find_map(|l| l["step"]["HandleRequestVoteRequest"].as_object().cloned())
        .expect("a vote request delivered");
    let drop = serde_json::json!({ "kind": "drop", "message": delivered });
    let lossy = format!("{text}{drop}\n");
    let validated =
        raft_interop::validate(streams("lossy", &lossy)).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(validated.dropped, 1);
    // A drop of a message nobody sent is rejected.
    let mut forged = drop.clone();
    forged["message"]["term"] = serde_json::json!(9);
    let forged = format!("{text}{forged}\n");
    let failure = raft_interop::validate(streams("forged", &forged)).expect_err("forged drop");
    assert!(
        failure
            .to_string()
            .contains("drops a message that no event sent"),
        "{failure}"
    );
}

#[test]
fn former_formats_are_refused_by_name() {
    let v1 = "{\"kind\":\"header\",\"schema\":\"raft-trace/1\",\"node\":1,\"cluster\":\"c\",\"members\":[1],\"max_append_entries\":1,\"start\":\"init\"}\n";
    let failure = Stream::parse("old.jsonl", v1).expect_err("raft-trace/1");
    assert!(
        failure.problem.contains("raft-trace/1") && failure.problem.contains("raft-trace/5"),
        "{failure}"
    );
    let checker_v1 = "{\n  \"schema\": \"raft-checker-trace/1\",\n  \"steps\": []\n}\n";
    let failure = Stream::parse("old.json", checker_v1).expect_err("raft-checker-trace/1");
    assert!(
        failure.problem.contains("raft-checker-trace/1")
            && failure.problem.contains("raft-trace/5"),
        "{failure}"
    );
}

#[test]
fn a_seeded_bug_counterexample_is_rejected_where_the_bug_acts() {
    let bounds = raft_checker::bugs::smallest_bound(Bug::VoteTwice).expect("a killing bound");
    let text = checker_trace(Some(Bug::VoteTwice), bounds, model::ELECTION_SAFETY);
    let failure = raft_interop::validate(streams("vote-twice", &text))
        .expect_err("the correct core never votes twice");
    println!("{failure}");
    assert_eq!(
        failure.action,
        Some(Action::HandleRequestVoteRequest),
        "{failure}"
    );
    assert!(failure.to_string().contains("voted_for"), "{failure}");
}

/// PreVote through the trace layer: the checker's examples of the real core
/// with PreVote and CheckQuorum on (a pre-election refused for a lease, a
/// pre-candidate following the leader it hears) validate, header
/// `pre_vote` and all.
#[test]
fn pre_vote_examples_of_the_real_core_validate() {
    let bounds = Bounds {
        pre_vote: true,
        check_quorum: true,
        ..Bounds::DEFAULT
    };
    for property in [
        model::PRE_VOTE_REFUSED_IN_LEASE,
        model::PRE_CANDIDATE_STOOD_DOWN,
    ] {
        let text = checker_trace(None, bounds.clone(), property);
        assert!(text.contains("\"pre_vote\":true"), "{property}: {text}");
        let validated = raft_interop::validate(streams(property, &text))
            .unwrap_or_else(|failure| panic!("{property}: {failure}"));
        assert!(!validated.run.is_empty());
    }
}

/// PreVote seeded bugs' counterexamples are rejected by the validator,
/// which replays the correct core, at the step where the bug acted. (Not
/// `pre-vote-ignores-lease`: its counterexample ends at the wrong grant, and
/// a step's sent messages are compared by addressee and kind; the grant's
/// content would be caught where it is received. Nor
/// `restart-forgets-lease`: the lease is not among a trace's recorded
/// variables, and the replay makes the restart right.)
#[test]
fn pre_vote_bug_counterexamples_are_rejected_where_the_bug_acts() {
    for (bug, property, action) in [
        (
            Bug::PreVoteRaisesTerm,
            model::PRE_VOTE_RAISES_NO_TERM,
            Action::HandleRequestVoteRequest,
        ),
        (
            Bug::PreCandidateKeepsLeader,
            model::CANDIDATE_KNOWS_NO_LEADER,
            Action::Timeout,
        ),
    ] {
        let bounds = raft_checker::bugs::smallest_bound(bug).expect("a killing bound");
        let text = checker_trace(Some(bug), bounds, property);
        let failure = raft_interop::validate(streams(property, &text))
            .expect_err("the correct core does not do what the bug does");
        assert_eq!(failure.action, Some(action), "{bug:?}: {failure}");
    }
}

/// Leadership transfer through the trace layer: the checker's example of
/// a transfer completed by the real core validates (TransferLeadership with
/// its target, TimeoutNow, the target's campaign); the counterexample of
/// `transfer-through-pre-vote` is rejected at the HandleTimeoutNow where
/// the target asked for pre-votes instead of campaigning.
#[test]
fn transfer_example_validates_and_the_bug_counterexample_is_rejected() {
    let bounds = Bounds {
        pre_vote: true,
        max_transfers: 1,
        max_requests: 0,
        max_restarts: 0,
        max_compactions: 0,
        ..Bounds::DEFAULT
    };
    let text = checker_trace(None, bounds, model::LEADERSHIP_TRANSFERRED);
    assert!(text.contains("TransferLeadership"), "{text}");
    let validated = raft_interop::validate(streams("transfer", &text))
        .unwrap_or_else(|failure| panic!("transfer: {failure}"));
    assert!(!validated.run.is_empty());

    let bug = Bug::TransferThroughPreVote;
    let bounds = raft_checker::bugs::smallest_bound(bug).expect("a killing bound");
    let text = checker_trace(Some(bug), bounds, model::TIMEOUT_NOW_CAMPAIGNS);
    let failure = raft_interop::validate(streams("transfer-through-pre-vote", &text))
        .expect_err("the correct core campaigns on TimeoutNow");
    assert_eq!(failure.action, Some(Action::HandleTimeoutNow), "{failure}");

    // A leader appending a command during a transfer: the correct core
    // refuses that ClientRequest.
    let bug = Bug::TransferAcceptsProposals;
    let bounds = raft_checker::bugs::smallest_bound(bug).expect("a killing bound");
    let text = checker_trace(Some(bug), bounds, model::TRANSFER_FREEZES_LOG);
    let failure = raft_interop::validate(streams("transfer-accepts-proposals", &text))
        .expect_err("the correct core refuses commands during a transfer");
    assert_eq!(failure.action, Some(Action::ClientRequest), "{failure}");
}

/// Membership changes through the trace layer: the checker's example of a
/// change committed by the real core (four servers, C_old,new then C_new)
/// validates, and its TLC export gives ChangeConfig its members and every
/// state its configuration; the counterexample of
/// `removed-leader-keeps-leading` is rejected at the step where the correct
/// core steps the removed leader down, and that of
/// `concurrent-config-changes` at the second ChangeConfig.
#[test]
fn membership_example_validates_and_the_bug_counterexamples_are_rejected() {
    let bounds = raft_checker::bugs::smallest_bound(Bug::RemovedLeaderKeepsLeading)
        .expect("a killing bound");
    let text = checker_trace(None, bounds.clone(), model::CONFIG_CHANGE_COMMITTED);
    assert!(text.contains("ChangeConfig"), "{text}");
    let validated = raft_interop::validate(streams("membership", &text))
        .unwrap_or_else(|failure| panic!("membership: {failure}"));
    assert_eq!(validated.initial.len(), 4, "four servers, one spare");
    let ndjson = raft_interop::tla::ndjson(&validated);
    assert!(ndjson.contains("\"members\":["), "{ndjson}");
    assert!(ndjson.contains("\"configOld\":[1,2,3]"), "{ndjson}");
    let config = raft_interop::tla::config(&validated, "/tmp/trace.ndjson");
    assert!(config.contains("InitMembers = {1, 2, 3}"), "{config}");

    let bug = Bug::RemovedLeaderKeepsLeading;
    let text = checker_trace(Some(bug), bounds, model::REMOVED_LEADER_STEPS_DOWN);
    let failure = raft_interop::validate(streams("removed-leader-keeps-leading", &text))
        .expect_err("the correct core steps the removed leader down");
    assert_eq!(
        failure.action,
        Some(Action::HandleAppendEntriesResponse),
        "{failure}"
    );

    let bug = Bug::ConcurrentConfigChanges;
    let bounds = raft_checker::bugs::smallest_bound(bug).expect("a killing bound");
    let text = checker_trace(Some(bug), bounds, model::SINGLE_UNCOMMITTED_CHANGE);
    let failure = raft_interop::validate(streams("concurrent-config-changes", &text))
        .expect_err("the correct core refuses a second change");
    assert_eq!(failure.action, Some(Action::ChangeConfig), "{failure}");
}

#[test]
fn a_corrupted_checker_trace_is_rejected() {
    let text = checker_trace(None, Bounds::DEFAULT, model::COMMAND_COMMITTED);
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Deliver a message no server ever sent.
    let at = lines
        .iter()
        .position(|l| !l["step"]["HandleAppendEntriesRequest"].is_null())
        .expect("an append");
    lines[at]["step"]["HandleAppendEntriesRequest"]["term"] = serde_json::json!(9);
    let corrupted: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let failure = raft_interop::validate(streams("corrupt", &corrupted)).expect_err("corrupted");
    assert!(
        failure.to_string().contains("no event sent before it"),
        "{failure}"
    );
}

/// The ITF variables as the itf crate decodes them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItfState {
    current_term: BTreeMap<u64, u64>,
    voted_for: BTreeMap<u64, u64>,
    log: BTreeMap<u64, Vec<ItfEntry>>,
    snapshot_index: BTreeMap<u64, u64>,
    config: BTreeMap<u64, ItfConfig>,
    role: BTreeMap<u64, String>,
    commit_index: BTreeMap<u64, u64>,
    votes_granted: BTreeMap<u64, BTreeSet<u64>>,
    match_index: BTreeMap<u64, BTreeMap<u64, u64>>,
}

#[derive(Deserialize)]
struct ItfConfig {
    members: BTreeSet<u64>,
    old: BTreeSet<u64>,
}

#[derive(Deserialize)]
struct ItfEntry {
    term: u64,
    #[allow(dead_code)]
    payload: String,
}

#[test]
fn the_itf_export_reads_back_through_the_itf_crate() {
    let text = checker_trace(None, Bounds::DEFAULT, model::SNAPSHOT_INSTALLED);
    let validated = raft_interop::validate(streams("itf", &text)).expect("valid");
    let exported = raft_interop::itf::export(&validated, "test");
    let trace: itf::Trace<ItfState> = itf::trace_from_value(exported).expect("ITF parses");
    assert_eq!(trace.states.len(), validated.run.len() + 1);
    let mut servers = validated.initial.clone();
    for (state, step) in trace.states.iter().skip(1).zip(&validated.run) {
        servers.insert(step.node, step.server.clone());
        let s = &state.value;
        for (id, server) in &servers {
            assert_eq!(s.current_term[id], server.current_term());
            assert_eq!(s.voted_for[id], server.voted_for().unwrap_or(0));
            assert_eq!(s.snapshot_index[id], server.log().snapshot_index);
            assert_eq!(
                s.log[id].iter().map(|e| e.term).collect::<Vec<_>>(),
                server
                    .log()
                    .entries
                    .iter()
                    .map(|e| e.term)
                    .collect::<Vec<_>>()
            );
            assert_eq!(s.commit_index[id], server.commit_index());
            assert_eq!(s.role[id], format!("{:?}", server.role()));
            assert_eq!(s.config[id].members.len(), server.config().members.len());
            assert_eq!(s.config[id].old.is_empty(), !server.config().is_joint());
            assert_eq!(s.votes_granted[id].len(), server.votes_granted().len());
            assert_eq!(s.match_index[id].len(), server.match_index().len());
        }
    }
}

/// The network's own steps reach the TLC export in their places: a
/// `duplicate` line (which TraceRaft.tla needs before a second delivery
/// consumes the copy) comes after the step that sent the message and before
/// the receiver's next step, and a `drop` at the end of the receiver's stream
/// after the receiver's last step.
#[test]
fn the_tlc_export_writes_the_network_steps_in_place() {
    let text = checker_trace(None, Bounds::DEFAULT, model::COMMAND_COMMITTED);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The first vote request delivered, and the line of the Timeout that sent it.
    let (delivery, request) = lines
        .iter()
        .enumerate()
        .find_map(|(k, l)| {
            Some((
                k,
                l["step"]["HandleRequestVoteRequest"].as_object()?.clone(),
            ))
        })
        .expect("a vote request delivered");
    let duplicate = serde_json::json!({ "kind": "duplicate", "message": request });
    let drop = serde_json::json!({ "kind": "drop", "message": request });
    let mut edited: Vec<String> = text.lines().map(str::to_string).collect();
    edited.insert(delivery, duplicate.to_string());
    edited.push(drop.to_string());
    let validated = raft_interop::validate(streams("network", &(edited.join("\n") + "\n")))
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((validated.duplicated, validated.dropped), (1, 1));

    let exported: Vec<serde_json::Value> = raft_interop::tla::ndjson(&validated)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        exported.len(),
        validated.run.len() + 2,
        "{:?}",
        validated.network_steps
    );
    let position = |action: &str| {
        exported
            .iter()
            .position(|l| l["action"] == action)
            .unwrap_or_else(|| panic!("no {action} line"))
    };
    let copied = position("DuplicateMessage");
    assert_eq!(exported[copied]["msg"]["type"], "RequestVoteRequest");
    assert_eq!(exported[copied]["msg"]["from"], request["from"]);
    assert!(position("Timeout") < copied, "sent before it is copied");
    let received = exported
        .iter()
        .position(|l| l["action"] == "HandleRequestVoteRequest" && l["node"] == request["to"])
        .expect("the receiver's step");
    assert!(copied < received, "copied before the receiver's next step");
    // The drop, recorded last in the receiver's stream, comes after the
    // receiver's last step (other servers' steps may be merged after it).
    let lost = position("DropMessage");
    let receiver_last = exported
        .iter()
        .rposition(|l| l["node"] == request["to"])
        .expect("the receiver's steps");
    assert!(
        receiver_last < lost,
        "dropped after the receiver's last step"
    );
}

/// Parallel writes through the trace layer (issue 17): the checker's
/// examples of the real core with a leader writing in parallel validate,
/// among them a leader's crash that loses an entry a follower holds (the
/// restart recovers the durable image, not the leader's memory); the TLC
/// export carries `ParallelWriteOn` and `durableIndex`. A leader that came
/// back with more than it knew durable (its write completed, and it crashed
/// before it learnt so) validates too, the run taking that `LogPersisted`
/// before the restart. The counterexample of
/// `leader-counts-itself-before-durable` is rejected where the leader
/// counted itself.
#[test]
fn parallel_write_examples_validate_and_the_bug_counterexample_is_rejected() {
    let bug = Bug::LeaderCountsItselfBeforeDurable;
    let bounds = raft_checker::bugs::smallest_bound(bug).expect("a killing bound");
    assert!(bounds.parallel_write);
    for property in [
        model::COMMITTED_AHEAD_OF_LEADER_WRITE,
        model::CRASH_LOST_REPLICATED_ENTRY,
    ] {
        let text = checker_trace(None, bounds.clone(), property);
        assert!(
            text.contains("\"parallel_write\":true"),
            "{property}: {text}"
        );
        let validated = raft_interop::validate(streams(property, &text))
            .unwrap_or_else(|failure| panic!("{property}: {failure}"));
        assert!(!validated.run.is_empty());
        let ndjson = raft_interop::tla::ndjson(&validated);
        assert!(ndjson.contains("\"durableIndex\":"), "{ndjson}");
        let config = raft_interop::tla::config(&validated, "/tmp/trace.ndjson");
        assert!(config.contains("ParallelWriteOn = TRUE"), "{config}");
    }

    // The crash example ends at the leader's restart, which lost an entry.
    let text = checker_trace(None, bounds.clone(), model::CRASH_LOST_REPLICATED_ENTRY);
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let restart = lines
        .iter()
        .rposition(|l| l["kind"] == "event" && l["step"] == "Restart")
        .expect("a restart");
    let node = lines[restart]["node"].clone();
    let before = lines[..restart]
        .iter()
        .rposition(|l| l["kind"] == "event" && l["node"] == node)
        .expect("the leader's last event before the crash");
    let held = lines[before]["state"]["log"].clone();
    assert!(
        held["last_index"].as_u64() > lines[restart]["state"]["log"]["last_index"].as_u64(),
        "the restart lost entries"
    );
    // As if the leader's write had completed before the crash: it comes back
    // holding its whole log.
    lines[restart]["recovered"]["entry_terms"] = serde_json::json!(
        (0..held["last_index"].as_u64().unwrap())
            .map(|_| held["last_term"].clone())
            .collect::<Vec<_>>()
    );
    lines[restart]["state"]["log"]["last_index"] = held["last_index"].clone();
    lines[restart]["state"]["log"]["last_term"] = held["last_term"].clone();
    lines[restart]["state"]["durable_index"] = held["last_index"].clone();
    let written: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let validated = raft_interop::validate(streams("written", &written))
        .unwrap_or_else(|failure| panic!("a completed write: {failure}"));
    let last = validated.run.len() - 1;
    assert_eq!(validated.run[last].action, Action::Restart);
    assert_eq!(
        validated.run[last - 1].action,
        Action::LogPersisted,
        "the write the recovered log implies is taken before the restart"
    );
    // A log the leader never held is still refused.
    lines[restart]["recovered"]["entry_terms"] = serde_json::json!([9]);
    let invented: String = lines.iter().map(|l| format!("{l}\n")).collect();
    raft_interop::validate(streams("invented", &invented)).expect_err("an invented entry");

    let text = checker_trace(Some(bug), bounds, model::LEADER_COMPLETENESS);
    let failure = raft_interop::validate(streams("leader-counts-itself-before-durable", &text))
        .expect_err("the correct core does not count the leader's unwritten entries");
    assert_eq!(
        failure.action,
        Some(Action::HandleAppendEntriesResponse),
        "{failure}"
    );
    assert!(failure.to_string().contains("commit_index"), "{failure}");
}

/// Pipelined replication (issue 17): the checker's examples of two requests
/// on their way to one follower and of a rejection taking the leader back
/// over a gap, both with the correct core at the seeded bug's bound,
/// validate (their headers say `max_inflight`, which the validator's
/// servers take); the counterexample of `match-everything-sent` is
/// rejected at the response the bug counted too much from.
#[test]
fn pipelined_examples_validate_and_the_bug_counterexample_is_rejected() {
    let bug = Bug::MatchEverythingSent;
    let bounds = raft_checker::bugs::smallest_bound(bug).expect("a killing bound");
    assert!(bounds.max_inflight > 0);
    for property in [model::REQUESTS_PIPELINED, model::PIPELINE_FELL_BACK] {
        let text = checker_trace(None, bounds.clone(), property);
        assert!(
            text.contains(&format!("\"max_inflight\":{}", bounds.max_inflight)),
            "{property}: {text}"
        );
        let validated = raft_interop::validate(streams(property, &text))
            .unwrap_or_else(|failure| panic!("{property}: {failure}"));
        assert!(!validated.run.is_empty());
        assert!(
            validated.initial.values().all(|s| s.max_inflight() > 0),
            "the header's window"
        );
        let config = raft_interop::tla::config(&validated, "/tmp/trace.ndjson");
        assert!(
            config.contains(&format!("MaxInflight = {}", bounds.max_inflight)),
            "{config}"
        );
    }
    // Replayed without pipelining, the same run no longer validates: the
    // core the header names decides what each request carries.
    let text = checker_trace(None, bounds.clone(), model::REQUESTS_PIPELINED);
    let unpipelined = text.replace(&format!(",\"max_inflight\":{}", bounds.max_inflight), "");
    assert_ne!(unpipelined, text);
    raft_interop::validate(streams("unpipelined", &unpipelined))
        .expect_err("without pipelining the leader resends its first entry");

    let text = checker_trace(Some(bug), bounds, model::LEADER_COMPLETENESS);
    let failure = raft_interop::validate(streams("match-everything-sent", &text))
        .expect_err("the correct core counts only what the response says");
    assert_eq!(
        failure.action,
        Some(Action::HandleAppendEntriesResponse),
        "{failure}"
    );
}
