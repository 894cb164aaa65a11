//! The checker's traces and the node's traces are one format: counterexamples
//! and examples of raft-checker convert to node streams and replay through
//! the same validator. A run of the real core validates; a counterexample
//! found with a seeded bug is rejected at the step where the bug acted,
//! because the validator replays the correct core. The ITF export reads back
//! through the `itf` crate, the reference reader.

use std::collections::{BTreeMap, BTreeSet};

use raft_checker::bounds::Bounds;
use raft_checker::model;
use raft_checker::run::{RunOptions, run};
use raft_interop::counterexample;
use raft_interop::format::Action;
use raft_model::Bug;
use serde::Deserialize;

fn checker_json(bug: Option<Bug>, bounds: Bounds, property: &'static str) -> String {
    let mut options = RunOptions::check(bounds);
    options.bug = bug;
    options.stop_at = Some(property);
    let outcome = run(&options);
    outcome
        .trace(property)
        .unwrap_or_else(|| panic!("no trace for {property}"))
        .to_json()
        .expect("serializable")
}

#[test]
fn examples_of_the_real_core_validate() {
    for property in [model::COMMAND_COMMITTED, model::SNAPSHOT_INSTALLED] {
        let json = checker_json(None, Bounds::DEFAULT, property);
        assert!(counterexample::is_checker_trace(&json));
        let streams = counterexample::streams(property, &json).expect("converts");
        let validated = raft_interop::validate(streams)
            .unwrap_or_else(|failure| panic!("{property}: {failure}"));
        assert!(!validated.run.is_empty());
    }
}

#[test]
fn a_seeded_bug_counterexample_is_rejected_where_the_bug_acts() {
    let bounds = Bounds {
        max_messages: 8,
        ..Bounds::DEFAULT
    };
    let json = checker_json(Some(Bug::VoteTwice), bounds, model::ELECTION_SAFETY);
    let streams = counterexample::streams("vote-twice", &json).expect("converts");
    let failure = raft_interop::validate(streams).expect_err("the correct core never votes twice");
    println!("{failure}");
    assert_eq!(
        failure.action,
        Some(Action::HandleRequestVoteRequest),
        "{failure}"
    );
    assert!(failure.to_string().contains("voted_for"), "{failure}");
}

#[test]
fn a_corrupted_checker_trace_is_rejected() {
    let json = checker_json(None, Bounds::DEFAULT, model::COMMAND_COMMITTED);
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let steps = value["steps"].as_array_mut().unwrap();
    // Deliver a message no server ever sent.
    let at = steps
        .iter()
        .position(|s| s["action"] == "HandleAppendEntriesRequest")
        .expect("an append");
    steps[at]["message"]["term"] = serde_json::json!(9);
    let streams = counterexample::streams("corrupt", &value.to_string()).expect("converts");
    let failure = raft_interop::validate(streams).expect_err("corrupted");
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
    config: BTreeMap<u64, BTreeSet<u64>>,
    role: BTreeMap<u64, String>,
    commit_index: BTreeMap<u64, u64>,
    votes_granted: BTreeMap<u64, BTreeSet<u64>>,
    match_index: BTreeMap<u64, BTreeMap<u64, u64>>,
}

#[derive(Deserialize)]
struct ItfEntry {
    term: u64,
    #[allow(dead_code)]
    payload: String,
}

#[test]
fn the_itf_export_reads_back_through_the_itf_crate() {
    let json = checker_json(None, Bounds::DEFAULT, model::SNAPSHOT_INSTALLED);
    let validated =
        raft_interop::validate(counterexample::streams("itf", &json).unwrap()).expect("valid");
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
            assert_eq!(s.config[id].len(), server.config().members.len());
            assert_eq!(s.votes_granted[id].len(), server.votes_granted().len());
            assert_eq!(s.match_index[id].len(), server.match_index().len());
        }
    }
}
