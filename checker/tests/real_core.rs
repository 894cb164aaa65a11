//! The real core (no seeded bug) passes: every safety property holds and every
//! `sometimes` property is reached, exhaustively, on the spec's default bound
//! (spec/MCRaft.cfg) — small enough for the debug test profile.

use raft_checker::bounds::Bounds;
use raft_checker::model::{
    COMMAND_COMMITTED, LEADER_ELECTED, REACHABILITY_PROPERTIES, SAFETY_PROPERTIES,
};
use raft_checker::report::Verdict;
use raft_checker::run::{RunOptions, Strategy, run};

/// spec/MCRaft.cfg's bound (the named bound `spec`).
fn spec_default_bound() -> Bounds {
    Bounds::preset("spec").expect("the spec bound is named")
}

#[test]
fn real_core_satisfies_every_property_and_reaches_every_goal() {
    let mut options = RunOptions::check(spec_default_bound());
    options.threads = 2;
    let report = run(&options).report;
    assert!(report.complete, "the search must be exhaustive");
    for name in SAFETY_PROPERTIES {
        assert_eq!(report.verdict_of(name), Some(Verdict::Holds), "{name}");
    }
    for name in REACHABILITY_PROPERTIES {
        assert_eq!(report.verdict_of(name), Some(Verdict::Reached), "{name}");
    }
    assert!(report.ok);
    // The same bound under TLC (spec/README.md, "Bounds"): 17,253 distinct
    // states with SYMMETRY. The two tools explore the same state space; if
    // the core or the spec changes, re-run TLC and update both figures.
    assert_eq!(report.distinct_states_within_bounds, Some(17_253));
}

/// A network that loses and duplicates many messages, with batches of two
/// entries, is too big to exhaust in a debug build. Random walks still
/// exercise DropMessage, DuplicateMessage and batches against every
/// property, and they must get somewhere: a walk that never elects a leader
/// or never commits a command checks the safety properties vacuously.
#[test]
fn lossy_network_and_larger_batches_pass_random_walks() {
    let bounds = Bounds {
        max_messages: 12,
        max_append_entries: 2,
        max_drops: 6,
        max_duplicates: 6,
        ..spec_default_bound()
    };
    let mut options = RunOptions::check(bounds);
    options.strategy = Strategy::Simulation {
        seed: 11,
        max_states: Some(20_000),
    };
    let report = run(&options).report;
    for name in SAFETY_PROPERTIES {
        assert_eq!(
            report.verdict_of(name),
            Some(Verdict::NotViolated),
            "{name}"
        );
    }
    for name in [LEADER_ELECTED, COMMAND_COMMITTED] {
        assert_eq!(
            report.verdict_of(name),
            Some(Verdict::Reached),
            "{name}: the walks never got there"
        );
    }
    assert!(report.ok);
    assert!(report.distinct_states >= 20_000);
}
