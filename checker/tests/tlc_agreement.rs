//! The table of spec/README.md ("Measured"), as a test: for every bound on
//! which TLC and the checker were compared, the checker's command with its
//! full flags must still count exactly the distinct states TLC counted.
//!
//! TLC cannot run in CI, so its figures are recorded here beside the exact
//! command they are compared with: TLC built from the public tlaplus/tlaplus
//! sources of 2026-11 (spec/README.md, "Measured"), Java 17, a 2-core machine. A change to the core, the
//! checker's bounds or its defaults changes a count and fails this test;
//! re-run TLC on the named config (command in spec/README.md) and update
//! both the README and this table.

use std::process::Command;

/// Every flag of a bound, so that no row depends on the CLI's defaults.
#[allow(clippy::too_many_arguments)]
fn flags(
    servers: u8,
    max_term: u8,
    max_log: u8,
    max_requests: u8,
    max_messages: u8,
    max_restarts: u8,
    max_compactions: u8,
    max_duplicates: u8,
    max_drops: u8,
) -> Vec<String> {
    [
        ("--servers", servers),
        ("--max-term", max_term),
        ("--max-log", max_log),
        ("--max-requests", max_requests),
        ("--max-messages", max_messages),
        ("--max-restarts", max_restarts),
        ("--max-compactions", max_compactions),
        ("--max-append-entries", 1),
        ("--max-reads", 0),
        ("--max-duplicates", max_duplicates),
        ("--max-drops", max_drops),
    ]
    .iter()
    .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
    .collect()
}

fn checker_distinct_states(extra: &[&str], bound: Vec<String>) -> u64 {
    // The examples it writes go to a scratch directory, not into the
    // package's folder (the test's working directory).
    // One directory per call: the tests of this file run in parallel in one
    // process, and one removing a shared directory while another's checker
    // writes into it made that checker fail (seen on a loaded machine).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!("raft-checker-tlc-{}-{call}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_raft-checker"))
        .arg("check")
        .args(bound)
        .args(extra)
        .args(["--threads", "2"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run raft-checker");
    let _ = std::fs::remove_dir_all(&out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // TLC found no violation on any of these bounds; the small ones are too
    // small to reach every `sometimes` goal, so the run's verdict may be
    // FAILED for that reason alone, never for a safety property.
    let always: Vec<&str> = stdout
        .lines()
        .filter(|line| line.trim_start().starts_with("always "))
        .collect();
    assert_eq!(
        always.len(),
        raft_checker::model::SAFETY_PROPERTIES.len(),
        "{stdout}"
    );
    assert!(
        always.iter().all(|line| line.ends_with(" holds")),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|line| line.starts_with("distinct states: "))
        .unwrap_or_else(|| panic!("no distinct-state count in:\n{stdout}"));
    line["distinct states: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"))
}

// The network is a bag since issue 14 (a delivery consumes its copy), so
// every count measured with the set network is gone; these rows were
// measured with both tools on the bag network (spec/README.md, "Measured":
// TLC distinct / generated, the checker's within-bounds count and its
// generated states plus those outside the bounds, equal on every row).

/// One election term, one entry, three copies in flight.
#[test]
fn bag_term1_log1_messages3_236() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 1, 1, 0, 3, 0, 0, 0, 0)),
        236
    );
}

/// Two terms, a client request, three copies in flight.
#[test]
fn bag_term2_log2_messages3_8156() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 2, 2, 1, 3, 0, 0, 0, 0)),
        8_156
    );
}

/// The same bound with CheckQuorum on (spec/MCRaft_quorum.cfg): leaders
/// step down without a quorum of answers. TLC: 50,597 distinct, 232,299
/// generated, depth 43, 124 s with 2 workers (2026-11-30); the checker
/// 155,776 + 76,523 generated.
#[test]
fn bag_term2_log2_messages3_check_quorum_50597() {
    assert_eq!(
        checker_distinct_states(&["--check-quorum", "on"], flags(3, 2, 2, 1, 3, 0, 0, 0, 0)),
        50_597
    );
}

/// The same bound with CheckQuorum and PreVote on (spec/MCRaft_prevote.cfg,
/// with CandidateKnowsNoLeader, PreVoteRaisesNoTerm and PreVoteRespectsLease
/// checked by TLC too). TLC: 206,491 distinct, 1,150,137 generated, depth
/// 54, 810 s with 1 worker on a loaded machine (2026-11-30).
#[test]
fn bag_term2_log2_messages3_check_quorum_pre_vote_206491() {
    assert_eq!(
        checker_distinct_states(
            &["--check-quorum", "on", "--pre-vote", "on"],
            flags(3, 2, 2, 1, 3, 0, 0, 0, 0)
        ),
        206_491
    );
}

/// The tiny bound with one leadership transfer (spec/MCRaft_transfer.cfg,
/// with TimeoutNowCampaigns and TransferFreezesLog checked by TLC too).
/// TLC: 49,813 distinct, 237,690 generated (the checker's 130,788 +
/// 106,902), depth 41, 114 s with 2 workers on a loaded machine
/// (2026-11-30).
#[test]
fn bag_term2_log2_messages3_one_transfer_49813() {
    assert_eq!(
        checker_distinct_states(&["--max-transfers", "1"], flags(3, 2, 2, 1, 3, 0, 0, 0, 0)),
        49_813
    );
}

/// A restart, a duplicate and a drop (the network's actions and Restart
/// through the durable image).
#[test]
fn bag_term1_restart_duplicate_drop_20617() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 1, 1, 0, 3, 1, 0, 1, 1)),
        20_617
    );
}

/// The `spec` bound's terms, log, request, restart and compaction with three
/// copies in flight: every core action, InstallSnapshot included.
#[test]
fn bag_term2_restart_compaction_messages3_302222() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 2, 2, 1, 3, 1, 1, 0, 0)),
        302_222
    );
}

/// The `spec` bound with one duplication: over a million states. TLC: 1,079,458
/// distinct, 5,816,402 generated, depth 43, 30 min 10 s with 2 workers on the
/// loaded 2-core machine (2026-11-30); the checker about 21 s in release.
#[test]
fn bag_spec_bound_one_duplicate_1079458() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 2, 2, 1, 3, 1, 1, 1, 0)),
        1_079_458
    );
}

/// Logs of three and two commands (issue 16): rejections carry conflict
/// hints and the leader runs `SkipConflictingTerm`, but no skip of more than
/// one entry happens, and the count does not tell the hint apart: measured,
/// the core with the hint's index replaced by the previous entry's, or with
/// no hint at all, counts the same. TLC: 217,498 distinct, 934,359
/// generated, depth 57, 4 min 54 s (2026-11-30); the checker's 529,076
/// generated + 405,283 outside the bounds.
#[test]
fn bag_term3_log3_requests2_messages3_217498() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 3, 3, 2, 3, 0, 0, 0, 0)),
        217_498
    );
}

/// The default suite's `conflicts` member (issue 16): the first pinned bound
/// where the conflict hint changes what a leader does (ConflictTermSkipped
/// is reached). Measured, the core without the hint counts 1,761,934 here.
/// TLC: 1,761,871 distinct, 7,789,971 generated, depth 60, 34 min 6 s with 2
/// workers on the loaded 2-core machine (2026-11-30); the checker's
/// 4,799,591 generated + 2,990,380 outside the bounds, 35 s in release.
#[test]
fn bag_conflicts_bound_one_drop_1761871() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 3, 3, 2, 3, 0, 0, 0, 1)),
        1_761_871
    );
}

/// Membership changes by joint consensus (spec/MCRaft_membership.cfg, with
/// SingleUncommittedChange, QuorumsIntersect, RemovedLeaderStepsDown and
/// TransferNotDuringChange checked by TLC too): four servers, the first
/// three the initial configuration, one ChangeConfig, one term. TLC: 35,043
/// distinct, 117,500 generated, depth 40, 318 s with 2 workers on a loaded
/// machine (2026-11-30). TLC's generated states exceed the checker's
/// 87,116 + 30,103 by 281, unlike the other rows; the likely cause, not yet
/// confirmed, is the self-loops the checker skips (`step::unchanged`) and
/// TLC counts: a leader alone in its configuration heartbeats no one.
#[test]
fn membership_four_servers_one_change_35043() {
    assert_eq!(
        checker_distinct_states(
            &["--spare-servers", "1", "--max-config-changes", "1"],
            flags(4, 1, 3, 0, 3, 0, 0, 0, 0)
        ),
        35_043
    );
}

/// The checker's `membership` bound: the same with two terms. TLC (the cfg
/// with `MaxTerm = 2`): 185,961 distinct, 732,294 generated (the checker's
/// 463,135 + 268,562 + 597, as above), depth 48, 54 min 30 s with 2 workers
/// on a machine loaded to 11-13 (2026-11-30).
#[test]
fn membership_four_servers_one_change_two_terms_185961() {
    assert_eq!(
        checker_distinct_states(
            &["--spare-servers", "1", "--max-config-changes", "1"],
            flags(4, 2, 3, 0, 3, 0, 0, 0, 0)
        ),
        185_961
    );
}

/// Learners (spec/MCRaft_learners.cfg, the checker's `promotion` bound):
/// four servers, the first three the initial configuration, one term, one
/// ChangeLearners and one ChangeConfig (a learner added, then promoted;
/// or the two in any other order). TLC: 75,341 distinct, 280,256
/// generated, depth 40, 138 s with 2 workers (2026-11-30, a checker
/// search beside it).
#[test]
fn learners_four_servers_a_learner_and_a_change_75341() {
    assert_eq!(
        checker_distinct_states(
            &[
                "--spare-servers",
                "1",
                "--max-config-changes",
                "1",
                "--max-learner-changes",
                "1"
            ],
            flags(4, 1, 3, 0, 3, 0, 0, 0, 0)
        ),
        75_341
    );
}

/// Parallel writes (issue 17, spec/MCRaft_parallel.cfg): the tiny bound
/// with a leader's own appends written in parallel with replication
/// (`LogPersisted`, `durableIndex`). TLC: 29,285 distinct, 138,672
/// generated (the checker's 83,420 + 55,252 outside the bounds), depth 41,
/// 2 min 24 s with 1 worker (2026-12-01). Without `--parallel-write` the
/// same bound is the 8,156 above.
#[test]
fn parallel_write_term2_log2_messages3_29285() {
    assert_eq!(
        checker_distinct_states(
            &["--parallel-write", "on"],
            flags(3, 2, 2, 1, 3, 0, 0, 0, 0)
        ),
        29_285
    );
}

/// Pipelined replication (issue 17, spec/MCRaft_pipeline.cfg): the tiny
/// bound with a window of two requests (`MaxInflight = 2`). TLC: 10,062
/// distinct, 42,301 generated (the checker's 24,502 + 17,799 outside the
/// bounds), depth 41, 1 min 41 s with 1 worker (2026-12-01). Without
/// `--max-inflight` the same bound is the 8,156 above.
#[test]
fn pipeline_term2_log2_messages3_10062() {
    assert_eq!(
        checker_distinct_states(&["--max-inflight", "2"], flags(3, 2, 2, 1, 3, 0, 0, 0, 0)),
        10_062
    );
}

/// The default suite's `parallel` member (issue 17): the bound above with a
/// restart, so a leader's crash before its parallel write completes loses
/// entries a follower holds (spec/MCRaft_parallel.cfg with `MaxRestarts =
/// 1`). TLC: 224,152 distinct, 1,039,877 generated (the checker's 704,577 +
/// 335,300 outside the bounds), depth 47, 25 min 10 s with 1 worker on the
/// shared 2-core machine (2026-12-01); the checker about 10 s in release.
#[test]
fn parallel_write_term2_restart_messages3_224152() {
    assert_eq!(
        checker_distinct_states(
            &["--parallel-write", "on"],
            flags(3, 2, 2, 1, 3, 1, 0, 0, 0)
        ),
        224_152
    );
}
