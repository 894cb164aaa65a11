//! The real core (no seeded bug) passes: every safety property holds and every
//! `sometimes` property is reached, exhaustively, on the spec's default bound
//! (spec/MCRaft.cfg) — small enough for the debug test profile.

use raft_checker::bounds::Bounds;
use raft_checker::model::{REACHABILITY_PROPERTIES, SAFETY_PROPERTIES};
use raft_checker::report::Verdict;
use raft_checker::run::{RunOptions, run};

/// spec/MCRaft.cfg's bound.
fn spec_default_bound() -> Bounds {
    Bounds {
        servers: 3,
        max_term: 2,
        max_log: 2,
        max_requests: 1,
        max_messages: 10,
        max_restarts: 1,
        max_compactions: 1,
        max_append_entries: 1,
        lossy: false,
    }
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

#[test]
fn lossy_network_and_larger_batches_also_pass() {
    let bounds = Bounds {
        max_messages: 8,
        max_append_entries: 2,
        lossy: true,
        ..spec_default_bound()
    };
    let mut options = RunOptions::check(bounds);
    options.threads = 2;
    let report = run(&options).report;
    assert!(report.complete);
    for name in SAFETY_PROPERTIES {
        assert_eq!(report.verdict_of(name), Some(Verdict::Holds), "{name}");
    }
}
