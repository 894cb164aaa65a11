//! Mutation testing with the core's seeded bugs (src/bugs.rs): each bug,
//! switched on in every server, must make a property fail. Random runs of
//! the simulated cluster find most of them (deterministic seeds, so the
//! search and its shrunk counterexample reproduce); the two that need a
//! precise interleaving are shown by targeted scenarios, here and in
//! tests/figures.rs (Figure 8 for CommitOldTerm, Figure 7 for
//! KeepConflictingSuffix).
//!
//! Over seeds 0..5000 random runs found: VoteTwice 165 times, SkipUpToDateCheck
//! 935, KeepConflictingSuffix 44, InstallStaleSnapshot 48, AcceptStaleAppend
//! 333, CommitOldTerm 1, CommitBeyondLeader 0 (6 in 40,000).
//!
//! OmitPersistVote and OmitPersistLog fall to the durability property at
//! once (seed 0). With the safety properties alone, random runs lose an
//! acknowledged entry at a restart by seed 41 (OmitPersistLog); a lost vote
//! needs a term entered without voting, which no seed below 5000 produced,
//! so a scenario shows it.
//!
//! Hand-made source mutations (applied to a scratch copy of src/, never
//! committed) and the first tests that failed on each:
//!
//! | mutation | caught by |
//! | --- | --- |
//! | no up-to-date check in vote granting | election unit tests, Figure 8 (e), properties (committed prefixes, Log Matching) |
//! | follower commit not capped at the last new entry | `commit_index_is_min_of_leader_commit_and_last_new_entry`, committed-prefixes property |
//! | up-to-date check off by one (`last_index + 1 >=`) | `no_vote_for_a_log_less_up_to_date`, committed-prefixes and Log Matching properties |
//! | commit rule counts entries of old terms | Figure 8 tests, `entries_of_earlier_terms_commit_only_with_one_of_the_current_term` |
//! | AppendEntries accepted one term stale | `a_stale_leader_is_refused_and_changes_nothing`, committed-prefixes property |
//! | `voted_for` kept on a new term | election and Figure 8 tests (no one can be elected), non-vacuity test |
//! | granted vote not persisted | `a_vote_granted_within_the_current_term_is_durable_too`, durability property |
//! | restart keeps the commit index | restart unit tests, durability property (restart != recovery) |
//! | success beyond the leader's log trusted | `a_success_claiming_entries_the_leader_never_had_is_ignored` |
//! | back-off below match_index + 1 | `failure_never_backs_off_below_what_the_peer_matches` |
//! | quorum as `2 * votes >= n` | `in_a_four_server_cluster_two_is_no_majority` (same as `>` for odd n) |
//! | InstallSnapshot discarding the log without `log_from` | `a_newer_snapshot_conflicting_with_the_log_replaces_all_of_it` (the durability property, in about 1 run in 500) |
//! | snapshot at exactly the commit index installed | `a_snapshot_ending_exactly_at_the_commit_index_changes_nothing` |
//! | new leader appends no no-op | 28 tests (election, Figures 7 and 8, replication, ReadIndex) |

mod common;

use common::cluster::Cluster;
use common::observer::Property;
use common::sim::{find_violation, run};
use common::{Msg, members, server_with_log};
use raft_model::{Body, Bug, NodeId};

/// Seeds searched per bug: well past the first hit of each (9, 2, 1, 13, 3).
const SEEDS: u64 = 1000;

/// Seeds searched for a safety violation of OmitPersistLog, which needs a
/// restart at the wrong moment (first hit: seed 41).
const OMIT_PERSIST_SEEDS: u64 = 1000;

/// Finds a random run that `bug` makes fail, shrinks it, checks that the
/// same run without the bug passes, and returns the property it broke.
fn caught_by_random_runs(bug: Bug) -> Property {
    let (seed, scenario, violation) = find_violation(&[bug], &Property::ALL, SEEDS)
        .unwrap_or_else(|| panic!("{bug:?}: no violation in {SEEDS} random runs"));
    println!(
        "{bug:?}: seed {seed}, shrunk to {} operations: {violation}\n{scenario:?}",
        scenario.ops.len()
    );
    assert_eq!(
        run(&scenario, &[], &Property::ALL).violation,
        None,
        "{bug:?}: the counterexample must pass without the bug"
    );
    violation.property
}

#[test]
fn vote_twice_breaks_election_safety() {
    assert_eq!(
        caught_by_random_runs(Bug::VoteTwice),
        Property::ElectionSafety
    );
}

#[test]
fn skip_up_to_date_check_breaks_state_machine_safety() {
    // A leader missing committed entries overwrites them elsewhere (it may
    // show first as two logs disagreeing below a common entry).
    let property = caught_by_random_runs(Bug::SkipUpToDateCheck);
    assert!(
        [Property::StateMachineSafety, Property::LogMatching].contains(&property),
        "{property:?}"
    );
}

#[test]
fn keep_conflicting_suffix_breaks_log_matching() {
    let property = caught_by_random_runs(Bug::KeepConflictingSuffix);
    assert!(
        [Property::LogMatching, Property::StateMachineSafety].contains(&property),
        "{property:?}"
    );
}

#[test]
fn install_stale_snapshot_rolls_back_committed_entries() {
    let property = caught_by_random_runs(Bug::InstallStaleSnapshot);
    assert!(
        [
            Property::CommitMonotonic,
            Property::StateMachineSafety,
            Property::Durability
        ]
        .contains(&property),
        "{property:?}"
    );
}

#[test]
fn accept_stale_append_breaks_leader_append_only() {
    let property = caught_by_random_runs(Bug::AcceptStaleAppend);
    assert!(
        [Property::LeaderAppendOnly, Property::StateMachineSafety].contains(&property),
        "{property:?}"
    );
}

/// The safety properties alone: no durability check, so a write a bug
/// omitted is simply missing from the disk at the next restart.
const SAFETY: [Property; 4] = [
    Property::ElectionSafety,
    Property::LeaderAppendOnly,
    Property::LogMatching,
    Property::StateMachineSafety,
];

/// Like [`caught_by_random_runs`], but checking only `checks`.
fn caught_by_random_runs_checking(bug: Bug, checks: &[Property], seeds: u64) -> Property {
    let (seed, scenario, violation) = find_violation(&[bug], checks, seeds)
        .unwrap_or_else(|| panic!("{bug:?}: no violation of {checks:?} in {seeds} random runs"));
    println!(
        "{bug:?}: seed {seed}, shrunk to {} operations: {violation}\n{scenario:?}",
        scenario.ops.len()
    );
    assert_eq!(
        run(&scenario, &[], checks).violation,
        None,
        "{bug:?}: the counterexample must pass without the bug"
    );
    violation.property
}

#[test]
fn omit_persist_vote_breaks_durability() {
    assert_eq!(
        caught_by_random_runs(Bug::OmitPersistVote),
        Property::Durability
    );
}

/// Three fresh servers; S2 reaches term 2 without voting in it, then
/// grants S1 its vote in term 2 (the term does not change, so the seeded
/// bug does not ask for the vote to be persisted); S1 leads term 2. S2
/// crashes and comes back from its disk; S3 asks it for a vote in term 2.
fn omit_persist_vote_scenario(bugs: &[Bug]) -> Cluster {
    let mut c = Cluster::new(3, &SAFETY).with_bugs(bugs);
    c.timeout(1);
    c.network.clear();
    c.timeout(1); // S1: candidate of term 2
    c.timeout(2); // S2: candidate of term 1
    c.deliver_where(from_to(2, 1)); // S1 refuses, in term 2
    c.deliver_where(|m| from_to(1, 2)(m) && matches!(m.body, Body::RequestVoteResponse { .. }));
    assert_eq!(
        (c.server(2).current_term(), c.server(2).voted_for()),
        (2, None)
    );
    c.deliver_where(from_to(1, 2)); // S1's request of term 2: granted
    assert_eq!(c.server(2).voted_for(), Some(1));
    c.deliver_where(from_to(2, 1));
    assert!(c.server(1).is_leader());
    c.network.clear();
    c.restart(2);
    c.timeout(3);
    c.network.clear();
    c.timeout(3); // S3: candidate of term 2
    c.deliver_where(from_to(3, 2));
    c.deliver_where(from_to(2, 3));
    c
}

#[test]
fn omit_persist_vote_breaks_election_safety_after_a_restart() {
    let correct = omit_persist_vote_scenario(&[]);
    assert_eq!(correct.violation, None);
    assert_eq!(
        correct.server(2).voted_for(),
        Some(1),
        "the vote survived the crash"
    );
    assert!(!correct.server(3).is_leader());

    let buggy = omit_persist_vote_scenario(&[Bug::OmitPersistVote]);
    assert!(
        buggy.server(1).is_leader() && buggy.server(3).is_leader(),
        "S2 voted twice in term 2"
    );
    let violation = buggy.violation.expect("two leaders of term 2");
    assert_eq!(violation.property, Property::ElectionSafety, "{violation}");
}

#[test]
fn omit_persist_log_breaks_durability() {
    assert_eq!(
        caught_by_random_runs(Bug::OmitPersistLog),
        Property::Durability
    );
}

#[test]
fn omit_persist_log_breaks_state_machine_safety_after_a_restart() {
    let property = caught_by_random_runs_checking(Bug::OmitPersistLog, &SAFETY, OMIT_PERSIST_SEEDS);
    assert!(
        [Property::StateMachineSafety, Property::LogMatching].contains(&property),
        "{property:?}"
    );
}

fn from_to(from: NodeId, to: NodeId) -> impl Fn(&Msg) -> bool {
    move |m: &Msg| m.from == from && m.to == to
}

/// Three servers holding [1, 1], one entry per request, and a network
/// that duplicates one message:
///
/// 1. S1 leads term 2 (S2's vote), appends its no-op at 3 and a client
///    entry at 4; neither reaches anyone. S1 crashes.
/// 2. S3 leads term 3 (S2's vote) and appends its no-op at 3; it reaches
///    no one either.
/// 3. S1 leads term 4 (S2's vote), brings S2 up to date and commits up to
///    its term-4 no-op at 5 (entries 3 and 4 of term 2 with it).
/// 4. S3 fails S1's consistency check at 4; the failure arrives three
///    times, so S1 steps back three times and sends S3 entry 2 with
///    leader_commit 5. The correct S3 commits only up to 2, the last entry
///    that request vouched for; its own entry 3 (term 3) is not S1's.
fn commit_beyond_leader_scenario(bugs: &[Bug]) -> Cluster {
    let config = members(3);
    let servers = (1..=3)
        .map(|id| server_with_log(id, &config, 1, None, &[1, 1]))
        .collect();
    let mut c = Cluster::of(servers, &Property::ALL)
        .with_bugs(bugs)
        .with_max_append_entries(1);
    // 1.
    c.timeout(1);
    c.deliver_where(from_to(1, 2));
    c.deliver_where(from_to(2, 1));
    assert!(c.server(1).is_leader());
    c.client_request(1, 100);
    c.network.clear();
    c.restart(1);
    // 2.
    c.timeout(3); // term 2: S2 voted for S1 in it
    c.network.clear();
    c.timeout(3); // term 3
    c.deliver_where(from_to(3, 2));
    c.deliver_where(from_to(2, 3));
    assert!(c.server(3).is_leader());
    c.network.clear();
    // 3.
    c.timeout(1); // term 3: S2 voted for S3
    c.network.clear();
    c.timeout(1); // term 4
    c.deliver_where(from_to(1, 2));
    c.deliver_where(from_to(2, 1));
    assert!(c.server(1).is_leader());
    c.drop_where(from_to(1, 3));
    for _ in 0..10 {
        c.deliver_where(from_to(1, 2));
        c.deliver_where(from_to(2, 1));
    }
    assert_eq!(c.server(1).current_term(), 4);
    assert_eq!(c.server(1).commit_index(), 5);
    // 4.
    c.send_append_entries(1);
    c.drop_where(from_to(1, 2));
    c.deliver_where(from_to(1, 3)); // prev 4: S3 has only 3 entries
    let failure = c
        .network
        .iter()
        .find(|m| m.from == 3)
        .cloned()
        .expect("S3 answers");
    assert!(matches!(
        failure.body,
        Body::AppendEntriesResponse { success: false, .. }
    ));
    c.network.push(failure.clone()); // the network duplicates it, twice
    c.network.push(failure);
    c.deliver_where(from_to(3, 1));
    assert_eq!(c.server(1).next_index()[&3], 2);
    // Only the last request (entry 2) is delivered.
    let request = c.network.pop().expect("the retry for entry 2");
    c.network.clear();
    c.deliver_message(request);
    c
}

#[test]
fn commit_beyond_leader_commits_an_entry_the_leader_never_sent() {
    let correct = commit_beyond_leader_scenario(&[]);
    assert_eq!(correct.violation, None);
    assert_eq!(correct.server(3).commit_index(), 2);

    let buggy = commit_beyond_leader_scenario(&[Bug::CommitBeyondLeader]);
    assert_eq!(
        buggy.server(3).commit_index(),
        3,
        "S3 commits its own term-3 entry 3"
    );
    assert_eq!(buggy.server(3).log().term_at(3), Some(3));
    let violation = buggy
        .violation
        .expect("S1 and S2 committed a different entry 3");
    assert_eq!(
        violation.property,
        Property::StateMachineSafety,
        "{violation}"
    );
}

#[test]
fn without_a_seeded_bug_the_same_searches_find_nothing() {
    // The property tests run thousands of random seeds; this pins the exact
    // seeds the searches above use.
    assert!(find_violation(&[], &Property::ALL, SEEDS).is_none());
}
