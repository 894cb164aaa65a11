//! The checker can fail: with a seeded bug of the core switched on, it finds a
//! counterexample to the safety property the bug breaks, and that
//! counterexample is a real path of the model (replayable step by step) that
//! renders as a numbered list, a Mermaid diagram and a `raft-trace/2` trace.
//!
//! Each case uses the smallest bound (found by measurement) whose exhaustive
//! search contains a violation, and stops at the first counterexample to the
//! property under test. Three bugs of raft_model::Bug are missing here:
//! commit-old-term, keep-conflicting-suffix and commit-beyond-leader only
//! break a property after four terms and many messages in flight, beyond what
//! an exhaustive search covers (see checker/README.md). The six added for
//! issue 14 (count-stale-vote through batch-checks-first-entry-only) are not
//! here yet either: their bounds are still to be measured.

use raft_checker::action::Action;
use raft_checker::bounds::Bounds;
use raft_checker::model::{self, RaftModel};
use raft_checker::properties;
use raft_checker::run::{RunOptions, run};
use raft_checker::state::RaftState;
use raft_checker::step;
use raft_model::Bug;

fn bound(max_messages: u8) -> Bounds {
    Bounds {
        max_messages,
        ..Bounds::DEFAULT
    }
}

fn holds(property: &str, state: &RaftState) -> bool {
    match property {
        model::ELECTION_SAFETY => properties::election_safety(state),
        model::LEADER_APPEND_ONLY => properties::leader_append_only(state),
        model::LOG_MATCHING => properties::log_matching(state),
        model::LEADER_COMPLETENESS => properties::leader_completeness(state),
        model::STATE_MACHINE_SAFETY => properties::state_machine_safety(state),
        other => panic!("not a safety property: {other}"),
    }
}

/// Runs the checker with `bug` on `bounds` until `property` has a
/// counterexample, and checks the counterexample thoroughly.
fn assert_caught(bug: Bug, bounds: Bounds, property: &'static str) {
    let mut options = RunOptions::check(bounds.clone());
    options.bug = Some(bug);
    options.stop_at = Some(property);
    let outcome = run(&options);
    assert!(
        outcome.report.violated().contains(&property),
        "{bug:?} on {bounds}: no counterexample to {property}; report:\n{}",
        outcome.report.render()
    );
    assert!(!outcome.report.ok, "a violation fails the run");

    // The path starts at the initial state and every step is the model's
    // own transition; the property holds before the last step and fails after.
    let path = &outcome.discoveries[property];
    let checker_model = RaftModel::new(bounds, vec![bug]);
    assert_eq!(path[0].0, checker_model.initial_state());
    for pair in path.windows(2) {
        let action: &Action = pair[0].1.as_ref().expect("every step has an action");
        let replayed = step::next_state(&pair[0].0, action).expect("the step changes the state");
        assert_eq!(replayed, pair[1].0, "step {action} replays");
    }
    let last = &path[path.len() - 1].0;
    assert!(!holds(property, last), "the last state violates {property}");
    assert!(
        path[..path.len() - 1]
            .iter()
            .all(|(s, _)| holds(property, s)),
        "the first violation ends the path"
    );

    // The three renderings.
    let trace = outcome.trace(property).expect("a trace");
    let numbered = trace.numbered();
    assert!(numbered.starts_with("  1. "), "{numbered}");
    assert!(
        numbered
            .lines()
            .filter(|l| !l.starts_with("       "))
            .count()
            == trace.step_count()
    );
    let mermaid = trace.mermaid();
    assert!(mermaid.starts_with("sequenceDiagram\n"));
    assert!(
        mermaid.contains(&format!("{property} violated")),
        "{mermaid}"
    );
    let lines: Vec<serde_json::Value> = trace
        .to_lines()
        .expect("serialisable")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let context = &lines[0];
    assert_eq!(context["kind"], "checker");
    assert_eq!(context["property"], property);
    assert_eq!(context["bug"], raft_checker::bugs::name(bug));
    let headers: Vec<_> = lines.iter().filter(|l| l["kind"] == "header").collect();
    assert!(headers.len() >= 3, "one header per server");
    assert!(headers.iter().all(|h| h["schema"] == raft_trace::SCHEMA));
    let steps: Vec<_> = lines
        .iter()
        .filter(|l| l["kind"] == "event" || l["kind"] == "drop")
        .collect();
    assert_eq!(steps.len(), trace.step_count(), "one line per step");
    let first = steps
        .iter()
        .find(|l| l["kind"] == "event")
        .expect("an event");
    assert!(!first["step"].is_null());
    assert!(first["state"]["current_term"].is_number());
}

#[test]
fn vote_twice_breaks_election_safety() {
    assert_caught(Bug::VoteTwice, bound(8), model::ELECTION_SAFETY);
}

#[test]
fn skip_up_to_date_check_breaks_leader_completeness() {
    assert_caught(
        Bug::SkipUpToDateCheck,
        bound(10),
        model::LEADER_COMPLETENESS,
    );
}

#[test]
fn accept_stale_append_breaks_leader_append_only() {
    assert_caught(Bug::AcceptStaleAppend, bound(10), model::LEADER_APPEND_ONLY);
}

/// A deposed leader's stale AppendEntries truncates the new leader's log; the
/// new leader then writes a different entry of its own term at the same index.
fn accept_stale_append_bound() -> Bounds {
    Bounds {
        max_messages: 14,
        max_requests: 2,
        max_restarts: 0,
        max_compactions: 0,
        ..Bounds::DEFAULT
    }
}

#[test]
fn accept_stale_append_breaks_log_matching() {
    assert_caught(
        Bug::AcceptStaleAppend,
        accept_stale_append_bound(),
        model::LOG_MATCHING,
    );
}

#[test]
fn accept_stale_append_breaks_state_machine_safety() {
    assert_caught(
        Bug::AcceptStaleAppend,
        accept_stale_append_bound(),
        model::STATE_MACHINE_SAFETY,
    );
}

/// A follower re-installs an old snapshot (a duplicate delivery), drops the
/// committed entry after it and then votes for a leader that lacks it.
#[test]
fn install_stale_snapshot_breaks_leader_completeness() {
    let bounds = Bounds {
        max_messages: 15,
        max_restarts: 0,
        ..Bounds::DEFAULT
    };
    assert_caught(
        Bug::InstallStaleSnapshot,
        bounds,
        model::LEADER_COMPLETENESS,
    );
}

/// The same, carried on until that leader commits its own entry over the lost
/// one: too big for the debug profile.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn install_stale_snapshot_breaks_state_machine_safety() {
    let bounds = Bounds {
        max_messages: 18,
        max_restarts: 0,
        ..Bounds::DEFAULT
    };
    assert_caught(
        Bug::InstallStaleSnapshot,
        bounds,
        model::STATE_MACHINE_SAFETY,
    );
}

#[test]
fn bug_names_round_trip() {
    for bug in Bug::ALL {
        let name = raft_checker::bugs::name(bug);
        assert_eq!(raft_checker::bugs::parse(name), Ok(bug));
    }
    assert!(raft_checker::bugs::parse("no-such-bug").is_err());
}
