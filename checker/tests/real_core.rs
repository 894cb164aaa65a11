//! The real core (no seeded bug) passes: every safety property holds and every
//! `sometimes` property is reached, exhaustively, on the spec's default bound
//! (spec/MCRaft.cfg) — small enough for the debug test profile.

use raft_checker::bounds::Bounds;
use raft_checker::model::{
    self, COMMAND_COMMITTED, LEADER_ELECTED, READ_FAILED, READ_SERVED, SAFETY_PROPERTIES,
    required_goals,
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
    for name in required_goals(&spec_default_bound()) {
        assert_eq!(report.verdict_of(name), Some(Verdict::Reached), "{name}");
    }
    assert!(report.ok);
    // The count, pinned: a change to the core, the network or the bound
    // shows here (tests/tlc_agreement.rs holds the TLC comparisons).
    assert_eq!(report.distinct_states_within_bounds, Some(302_222));
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

/// The tiny bound with one ReadIndex and three terms. Every property,
/// ReadIndexSafety included, holds; a read is served and one fails when its
/// leader is deposed.
#[test]
fn reads_hold_and_are_served_and_failed() {
    let bounds = Bounds {
        max_reads: 1,
        max_term: 3,
        ..Bounds::preset("tiny").expect("the tiny bound is named")
    };
    let mut options = RunOptions::check(bounds.clone());
    options.threads = 2;
    let report = run(&options).report;
    for name in SAFETY_PROPERTIES {
        assert_eq!(report.verdict_of(name), Some(Verdict::Holds), "{name}");
    }
    assert!(required_goals(&bounds).contains(&READ_SERVED));
    for name in [READ_SERVED, READ_FAILED] {
        assert_eq!(report.verdict_of(name), Some(Verdict::Reached), "{name}");
    }
    assert!(report.ok, "{}", report.render());
}

/// The branch goals of InstallSnapshot and batching are reached at small
/// bounds (each search stops at its goal); the default suite reaches them
/// all (checker/README.md, "Figures").
/// An exhaustive search of `bounds` on two threads that stops when `goal`
/// is reached.
fn search_for(goal: &'static str, bounds: &Bounds) -> raft_checker::report::Report {
    let mut options = RunOptions::check(bounds.clone());
    options.threads = 2;
    options.stop_at = Some(goal);
    run(&options).report
}

/// `goal` is reached at `bounds`, with no property violated on the way.
fn assert_reached(goal: &'static str, bounds: &Bounds) {
    let report = search_for(goal, bounds);
    assert_eq!(
        report.verdict_of(goal),
        Some(Verdict::Reached),
        "{goal} on {bounds}"
    );
    assert!(report.violated().is_empty(), "{bounds}");
}

#[test]
fn branch_goals_are_reached_where_measured() {
    let cases = [
        (spec_default_bound(), model::SNAPSHOT_DISCARDED_CONFLICT),
        (spec_default_bound(), model::STALE_SNAPSHOT_IGNORED),
    ];
    for (bounds, goal) in cases {
        assert!(model::applicable_goals(&bounds).contains(&goal), "{goal}");
        assert_reached(goal, &bounds);
    }
}

/// A snapshot reaching a follower that already holds the batch past it
/// (SnapshotKeptMatchingSuffix) needs five messages in flight: the batch,
/// the snapshot, the other follower's answer and the follower's own
/// answers, which must not reach the leader first. It is reached at the
/// `ahead` member of the default suite.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn the_matching_suffix_is_kept_at_the_ahead_bound() {
    let goal = model::SNAPSHOT_KEPT_SUFFIX;
    let bounds = Bounds::preset("ahead").expect("ahead is a named bound");
    assert_reached(goal, &bounds);
    // One fewer message in flight and it is out of reach.
    let report = search_for(
        goal,
        &Bounds {
            max_messages: 4,
            ..bounds
        },
    );
    assert!(report.complete, "the smaller bound is exhausted");
    assert_ne!(report.verdict_of(goal), Some(Verdict::Reached), "{goal}");
}

/// A leader skipping a follower's whole run of a conflicting term in one
/// rejection (ConflictTermSkipped) needs logs of three, two commands and
/// room for three elections: it is reached at the `conflicts` member of the
/// default suite, and without its lost message it is out of reach.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn a_conflicting_run_is_skipped_at_the_conflicts_bound() {
    let goal = model::CONFLICT_TERM_SKIPPED;
    let bounds = Bounds::preset("conflicts").expect("conflicts is a named bound");
    assert!(model::applicable_goals(&bounds).contains(&goal));
    assert_reached(goal, &bounds);
    let report = search_for(
        goal,
        &Bounds {
            max_drops: 0,
            ..bounds
        },
    );
    assert!(report.complete, "the smaller bound is exhausted");
    assert_ne!(report.verdict_of(goal), Some(Verdict::Reached), "{goal}");
    // With logs of two the goal is not even enabled (see `conflict_runs`).
    assert!(!model::applicable_goals(&Bounds::preset("stale").unwrap()).contains(&goal));
}

/// The checker's own guards prune: with one election timeout no leader is
/// ever replaced (that takes a second campaign) though one is elected, and
/// with no heartbeat round a command still commits (a new leader's first
/// round and the answers' follow-ups carry it). Unset, they count nothing:
/// the `tiny` bound keeps TLC's 8,156 states.
#[test]
fn timeout_and_heartbeat_guards_prune_and_unset_count_nothing() {
    let tiny = Bounds::preset("tiny").expect("tiny is a named bound");
    let exhaust = |bounds: Bounds| {
        let mut options = RunOptions::check(bounds);
        options.threads = 2;
        let report = run(&options).report;
        assert!(report.complete, "{}", report.render());
        assert!(report.violated().is_empty());
        report
    };
    let unset = exhaust(tiny.clone());
    assert_eq!(unset.distinct_states_within_bounds, Some(8_156));

    let one_campaign = exhaust(Bounds {
        max_timeouts: Some(1),
        ..tiny.clone()
    });
    assert_eq!(
        one_campaign.verdict_of(LEADER_ELECTED),
        Some(Verdict::Reached)
    );
    assert_eq!(
        one_campaign.verdict_of(model::LEADER_REPLACED),
        Some(Verdict::NotReached)
    );
    assert!(!one_campaign.ok, "a required goal is out of reach");
    let two_campaigns = exhaust(Bounds {
        max_timeouts: Some(2),
        ..tiny.clone()
    });
    assert_eq!(
        two_campaigns.verdict_of(model::LEADER_REPLACED),
        Some(Verdict::Reached)
    );

    let base = Bounds {
        max_heartbeats: Some(0),
        ..Bounds::BASE
    };
    let mut options = RunOptions::check(base);
    options.threads = 2;
    options.stop_at = Some(COMMAND_COMMITTED);
    let report = run(&options).report;
    assert_eq!(report.verdict_of(COMMAND_COMMITTED), Some(Verdict::Reached));
}

/// The recorded five-server bound of `keep-conflicting-suffix`
/// (`bugs::smallest_bound`): the correct core passes it exhaustively, so
/// the counterexample the checker finds there is the bug's, not the bound's.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn the_correct_core_passes_the_five_server_bound_of_keep_conflicting_suffix() {
    let bounds = raft_checker::bugs::smallest_bound(raft_model::Bug::KeepConflictingSuffix)
        .expect("a recorded bound");
    let mut options = RunOptions::check(bounds);
    options.threads = 2;
    let report = run(&options).report;
    assert!(report.complete && report.ok, "{}", report.render());
    assert_eq!(report.distinct_states_within_bounds, Some(1_424_679));
}

/// Parallel writes (issue 17), at the bound of the seeded bug
/// leader-counts-itself-before-durable: the correct core holds every
/// property there, exhaustively, and reaches both branches of the feature
/// (an entry committed before the leader's own write of it completed; a
/// leader's crash losing an entry a follower holds). The `parallel` member
/// of the default suite checks the same with a command and a third message
/// in flight (224,152 states, too many for a debug build).
#[test]
fn parallel_writes_hold_and_reach_both_branches() {
    let bounds =
        raft_checker::bugs::smallest_bound(raft_model::Bug::LeaderCountsItselfBeforeDurable)
            .expect("a killing bound");
    assert!(bounds.parallel_write);
    let mut options = RunOptions::check(bounds.clone());
    options.threads = 2;
    let report = run(&options).report;
    assert!(report.complete, "the search must be exhaustive");
    for name in SAFETY_PROPERTIES {
        assert_eq!(report.verdict_of(name), Some(Verdict::Holds), "{name}");
    }
    let goals = required_goals(&bounds);
    for name in [
        model::COMMITTED_AHEAD_OF_LEADER_WRITE,
        model::CRASH_LOST_REPLICATED_ENTRY,
    ] {
        assert!(goals.contains(&name), "{name} is required here");
        assert_eq!(report.verdict_of(name), Some(Verdict::Reached), "{name}");
    }
    assert!(report.ok);
    assert_eq!(report.distinct_states_within_bounds, Some(8_488));
}

/// Pipelined replication (issue 17), at the bound of the seeded bug
/// match-everything-sent (spec/MCRaft_pipeline.cfg): the correct core holds
/// every property there, exhaustively, and uses the window (two requests
/// on their way to one follower) and its fall-back (a rejection taking
/// next_index back over unacknowledged entries).
#[test]
fn pipelined_replication_holds_and_falls_back() {
    let bounds = raft_checker::bugs::smallest_bound(raft_model::Bug::MatchEverythingSent)
        .expect("a killing bound");
    assert_eq!(bounds.max_inflight, 2);
    let mut options = RunOptions::check(bounds.clone());
    options.threads = 2;
    let report = run(&options).report;
    assert!(report.complete, "the search must be exhaustive");
    for name in SAFETY_PROPERTIES {
        assert_eq!(report.verdict_of(name), Some(Verdict::Holds), "{name}");
    }
    let goals = required_goals(&bounds);
    for name in [model::REQUESTS_PIPELINED, model::PIPELINE_FELL_BACK] {
        assert!(goals.contains(&name), "{name} is required here");
        assert_eq!(report.verdict_of(name), Some(Verdict::Reached), "{name}");
    }
    assert!(report.ok);
    assert_eq!(report.distinct_states_within_bounds, Some(10_062));
}

/// `--timeout` ends a one-thread search too (stateright's own timeout is
/// read only by a thread that runs out of work), and the report says the
/// search proves nothing; a search that ends before its timeout is complete.
#[test]
fn a_timeout_ends_a_one_thread_search_and_the_report_says_so() {
    let mut options = RunOptions::check(Bounds::preset("prevote").expect("a named bound"));
    options.threads = 1;
    options.timeout = Some(std::time::Duration::from_secs(1));
    let started = std::time::Instant::now();
    let report = run(&options).report;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the search ran on past its timeout: {:?}",
        started.elapsed()
    );
    assert!(report.timed_out && !report.complete && !report.ok);
    assert!(
        report.distinct_states < 1_742_183,
        "{}",
        report.distinct_states
    );

    let mut options = RunOptions::check(Bounds::preset("tiny").expect("a named bound"));
    options.threads = 1;
    options.timeout = Some(std::time::Duration::from_secs(600));
    let report = run(&options).report;
    assert!(!report.timed_out && report.complete, "{}", report.render());
}
