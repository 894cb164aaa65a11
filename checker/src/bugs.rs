//! Command-line names of the core's seeded bugs and the safety property each
//! one is designed to break.

use raft_model::Bug;

use crate::bounds::Bounds;
use crate::model;

/// The kebab-case name of a bug (`--bug NAME`).
pub fn name(bug: Bug) -> &'static str {
    match bug {
        Bug::VoteTwice => "vote-twice",
        Bug::SkipUpToDateCheck => "skip-up-to-date-check",
        Bug::CommitOldTerm => "commit-old-term",
        Bug::KeepConflictingSuffix => "keep-conflicting-suffix",
        Bug::CommitBeyondLeader => "commit-beyond-leader",
        Bug::InstallStaleSnapshot => "install-stale-snapshot",
        Bug::AcceptStaleAppend => "accept-stale-append",
        Bug::CountStaleVote => "count-stale-vote",
        Bug::CountStaleAppendSuccess => "count-stale-append-success",
        Bug::SkipPrevTermCheck => "skip-prev-term-check",
        Bug::UpToDateByIndexOnly => "up-to-date-by-index-only",
        Bug::SnapshotKeepsConflictingSuffix => "snapshot-keeps-conflicting-suffix",
        Bug::BatchChecksFirstEntryOnly => "batch-checks-first-entry-only",
        Bug::ReadWithoutQuorum => "read-without-quorum",
        Bug::ReadBeforeTermCommit => "read-before-term-commit",
        Bug::OmitPersistVote => "omit-persist-vote",
        Bug::OmitPersistLog => "omit-persist-log",
        Bug::CheckQuorumNeverStepsDown => "check-quorum-never-steps-down",
        Bug::CommitToConflictIndex => "commit-to-conflict-index",
        Bug::PreVoteRaisesTerm => "pre-vote-raises-term",
        Bug::PreCandidateKeepsLeader => "pre-candidate-keeps-leader",
        Bug::PreVoteIgnoresLease => "pre-vote-ignores-lease",
        Bug::RestartForgetsLease => "restart-forgets-lease",
        Bug::TransferThroughPreVote => "transfer-through-pre-vote",
        Bug::TransferAcceptsProposals => "transfer-accepts-proposals",
        Bug::ChangeBeforeTermCommit => "change-before-term-commit",
        Bug::ConcurrentConfigChanges => "concurrent-config-changes",
        Bug::InstallSnapshotIgnoresConfig => "install-snapshot-ignores-config",
        Bug::RemovedLeaderKeepsLeading => "removed-leader-keeps-leading",
        Bug::TransferDuringConfigChange => "transfer-during-config-change",
        Bug::LearnerCountedInQuorum => "learner-counted-in-quorum",
        Bug::LeaderCountsItselfBeforeDurable => "leader-counts-itself-before-durable",
        Bug::MatchEverythingSent => "match-everything-sent",
    }
}

/// The `--bug NAME` parser: clap lists every bug's name in `--help` and in
/// its error for an unknown one, from [`Bug::ALL`], so no help text can
/// fall behind the list of bugs.
pub fn parser() -> impl clap::builder::TypedValueParser<Value = Bug> {
    use clap::builder::TypedValueParser as _;
    let names: Vec<&'static str> = Bug::ALL.iter().map(|bug| name(*bug)).collect();
    clap::builder::PossibleValuesParser::new(names).try_map(|text| parse(&text))
}

pub fn parse(text: &str) -> Result<Bug, String> {
    Bug::ALL
        .iter()
        .copied()
        .find(|bug| name(*bug) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|bug| name(*bug)).collect();
            format!(
                "unknown bug `{text}`; expected one of: {}",
                names.join(", ")
            )
        })
}

/// The safety property a bug is designed to break (model/src/bugs.rs). Other
/// properties may fall first on some paths; this one must fall eventually.
pub fn target_property(bug: Bug) -> &'static str {
    match bug {
        Bug::VoteTwice => model::ELECTION_SAFETY,
        Bug::SkipUpToDateCheck => model::LEADER_COMPLETENESS,
        Bug::CommitOldTerm => model::STATE_MACHINE_SAFETY,
        Bug::KeepConflictingSuffix => model::LOG_MATCHING,
        Bug::CommitBeyondLeader => model::STATE_MACHINE_SAFETY,
        Bug::InstallStaleSnapshot => model::STATE_MACHINE_SAFETY,
        Bug::AcceptStaleAppend => model::LEADER_APPEND_ONLY,
        Bug::CountStaleVote => model::ELECTION_SAFETY,
        // With parallel writes (three servers): a leader crashes before its
        // entry is durable, a follower's success for it is still in flight,
        // and the leader, elected again, counts that success for its new
        // entry at the same index; the third server, lacking it, is elected
        // next. (Without parallel writes it needs five servers, and State
        // Machine Safety falls: model/tests/seeded_bugs.rs.)
        Bug::CountStaleAppendSuccess => model::LEADER_COMPLETENESS,
        Bug::SkipPrevTermCheck => model::LOG_MATCHING,
        Bug::UpToDateByIndexOnly => model::LEADER_COMPLETENESS,
        // A follower keeps its entries after the snapshot's last index
        // though the entry there conflicts: its log then holds an older
        // term after a newer one at once (three servers). Log Matching
        // needs a second holder of those entries: five servers.
        Bug::SnapshotKeepsConflictingSuffix => model::LOG_TERMS_MONOTONIC,
        // Only with --max-append-entries 2 or more (with 1 it changes
        // nothing); Log Matching falls directly with 3 or more.
        Bug::BatchChecksFirstEntryOnly => model::LOG_MATCHING,
        Bug::ReadWithoutQuorum => model::READ_INDEX_SAFETY,
        Bug::ReadBeforeTermCommit => model::READ_INDEX_SAFETY,
        Bug::OmitPersistVote => model::ELECTION_SAFETY,
        Bug::OmitPersistLog => model::LEADER_COMPLETENESS,
        // Not a safety property: the goal a correct core reaches.
        Bug::CheckQuorumNeverStepsDown => model::LEADER_STEPPED_DOWN,
        Bug::CommitToConflictIndex => model::STATE_MACHINE_SAFETY,
        Bug::PreVoteRaisesTerm => model::PRE_VOTE_RAISES_NO_TERM,
        Bug::PreCandidateKeepsLeader => model::CANDIDATE_KNOWS_NO_LEADER,
        Bug::PreVoteIgnoresLease | Bug::RestartForgetsLease => model::PRE_VOTE_RESPECTS_LEASE,
        Bug::TransferThroughPreVote => model::TIMEOUT_NOW_CAMPAIGNS,
        Bug::TransferAcceptsProposals => model::TRANSFER_FREEZES_LOG,
        Bug::ChangeBeforeTermCommit | Bug::ConcurrentConfigChanges => {
            model::SINGLE_UNCOMMITTED_CHANGE
        }
        Bug::InstallSnapshotIgnoresConfig => model::QUORUMS_INTERSECT,
        Bug::RemovedLeaderKeepsLeading => model::REMOVED_LEADER_STEPS_DOWN,
        Bug::TransferDuringConfigChange => model::TRANSFER_NOT_DURING_CHANGE,
        // An entry only the leader and a learner hold commits; the other
        // voters elect a leader without it.
        Bug::LearnerCountedInQuorum => model::LEADER_COMPLETENESS,
        // A leader and one follower commit an entry the leader's crash
        // takes back; the two servers without it elect a leader.
        Bug::LeaderCountsItselfBeforeDurable => model::LEADER_COMPLETENESS,
        // A leader counts a follower as holding an entry whose request is
        // still in flight, commits it, and the servers without it elect a
        // leader.
        Bug::MatchEverythingSent => model::LEADER_COMPLETENESS,
    }
}

/// A bound of the given constants (three servers, a network that neither
/// loses nor duplicates).
#[allow(clippy::too_many_arguments)]
const fn bound(
    max_term: u8,
    max_log: u8,
    max_requests: u8,
    max_messages: u8,
    max_restarts: u8,
    max_compactions: u8,
    max_append_entries: u8,
    max_reads: u8,
) -> Bounds {
    Bounds {
        servers: 3,
        max_term,
        max_log,
        max_requests,
        max_messages,
        max_restarts,
        max_compactions,
        max_append_entries,
        max_reads,
        max_duplicates: 0,
        max_drops: 0,
        check_quorum: false,
        pre_vote: false,
        max_transfers: 0,
        spare_servers: 0,
        max_config_changes: 0,
        max_learner_changes: 0,
        max_timeouts: None,
        max_heartbeats: None,
        parallel_write: false,
        max_inflight: 0,
    }
}

/// A membership bound: four servers, the first three the initial
/// configuration, one configuration change, three messages in flight.
const fn membership(max_term: u8, max_log: u8, max_compactions: u8) -> Bounds {
    Bounds {
        servers: 4,
        spare_servers: 1,
        max_config_changes: 1,
        ..bound(max_term, max_log, 0, 3, 0, max_compactions, 1, 0)
    }
}

/// A five-server bound (checker/README.md, "Why three servers hide ..."):
/// two terms, logs of two, one command, `max_messages` in flight and
/// `max_drops` lost, and the checker's own guards: `max_timeouts` election
/// timeouts over the run (each campaign of five servers is four requests,
/// and every idle follower could start one) and `max_heartbeats` heartbeat
/// rounds.
const fn five(
    max_messages: u8,
    max_drops: u8,
    max_timeouts: u8,
    max_heartbeats: u8,
    max_compactions: u8,
) -> Bounds {
    Bounds {
        servers: 5,
        max_drops,
        max_timeouts: Some(max_timeouts),
        max_heartbeats: Some(max_heartbeats),
        ..bound(2, 2, 1, max_messages, 0, max_compactions, 1, 0)
    }
}

/// For each bug the checker kills, the bound of the counterexample it found
/// at the default suite: the least bound containing that path (printed by
/// `raft-checker mutants` as "the bound of each counterexample"); for a bug
/// the suite's three servers hide, a five-server bound that contains the
/// path worked out for it and that the correct core passes exhaustively. A
/// search of it finds the bug again in seconds, so CI checks every row
/// (`raft-checker mutants --smallest`). `None`: no bound the checker can
/// exhaust kills the bug yet (checker/README.md, "Seeded bugs", says why).
pub fn smallest_bound(bug: Bug) -> Option<Bounds> {
    //                      term log req msg rst cmp mae rd
    let bounds = match bug {
        Bug::VoteTwice
        | Bug::SkipUpToDateCheck
        | Bug::UpToDateByIndexOnly
        | Bug::CountStaleVote
        | Bug::SkipPrevTermCheck
        | Bug::CommitOldTerm => bound(4, 2, 0, 4, 0, 0, 1, 0),
        Bug::AcceptStaleAppend | Bug::CommitToConflictIndex => bound(3, 2, 0, 4, 0, 0, 1, 0),
        Bug::OmitPersistVote => bound(2, 2, 0, 4, 1, 0, 1, 0),
        Bug::OmitPersistLog => bound(2, 2, 1, 4, 1, 0, 1, 0),
        // One leader, CheckQuorum on: no step-down is ever reached.
        Bug::CheckQuorumNeverStepsDown => Bounds {
            check_quorum: true,
            ..bound(1, 1, 0, 4, 0, 0, 1, 0)
        },
        Bug::InstallStaleSnapshot => bound(2, 2, 1, 3, 0, 1, 1, 0),
        Bug::ReadWithoutQuorum | Bug::ReadBeforeTermCommit => bound(2, 2, 0, 4, 0, 0, 1, 1),
        Bug::BatchChecksFirstEntryOnly => bound(3, 2, 1, 4, 0, 0, 2, 0),
        Bug::CommitBeyondLeader => bound(3, 2, 1, 4, 0, 0, 1, 0),
        // PreVote, one term of Timeout budget: a pre-vote request delivered.
        Bug::PreVoteRaisesTerm => Bounds {
            pre_vote: true,
            ..bound(1, 1, 0, 4, 0, 0, 1, 0)
        },
        // A leader of term 1 heard by a follower, then a pre-election.
        Bug::PreCandidateKeepsLeader | Bug::PreVoteIgnoresLease => Bounds {
            pre_vote: true,
            ..bound(2, 1, 0, 4, 0, 0, 1, 0)
        },
        Bug::RestartForgetsLease => Bounds {
            pre_vote: true,
            ..bound(1, 1, 0, 4, 1, 0, 1, 0)
        },
        // PreVote, one leader, one transfer: the leader's TimeoutNow
        // delivered to its up-to-date target.
        Bug::TransferThroughPreVote => Bounds {
            pre_vote: true,
            max_transfers: 1,
            ..bound(1, 1, 0, 4, 0, 0, 1, 0)
        },
        // One leader, a transfer to a lagging peer, then a command.
        Bug::TransferAcceptsProposals => Bounds {
            max_transfers: 1,
            ..bound(1, 2, 1, 4, 0, 0, 1, 0)
        },
        // Membership bounds: four servers, three of them the initial
        // configuration (checker/README.md, "Seeded bugs").
        // Two leaders, each proposing a change before committing in its term.
        Bug::ChangeBeforeTermCommit => Bounds {
            max_config_changes: 2,
            ..membership(2, 2, 0)
        },
        // One leader proposing twice.
        Bug::ConcurrentConfigChanges => Bounds {
            max_config_changes: 2,
            ..membership(1, 3, 0)
        },
        // A change completed, compacted, and the snapshot installed.
        Bug::InstallSnapshotIgnoresConfig => membership(1, 3, 1),
        // A leader removing itself: C_old,new and C_new committed.
        Bug::RemovedLeaderKeepsLeading => membership(1, 3, 0),
        // A learner added (its configuration entry replicated to it alone
        // and counted), then an election without the leader.
        Bug::LearnerCountedInQuorum => Bounds {
            max_config_changes: 0,
            max_learner_changes: 1,
            max_messages: 4,
            ..membership(2, 2, 0)
        },
        // A change, then a transfer.
        Bug::TransferDuringConfigChange => Bounds {
            max_transfers: 1,
            ..membership(1, 2, 0)
        },
        // Five servers: a leader of term 1 replicates its no-op and the
        // command to one follower only; a leader of term 2, elected by two
        // servers that hold nothing, overwrites that follower's entry 1 and
        // the follower keeps entry 2 of term 1, which the first leader holds
        // after a different entry 1. Two campaigns, no heartbeat, three
        // losses, five messages in flight.
        Bug::KeepConflictingSuffix => five(5, 3, 2, 0, 0),
        // Parallel writes: a leader commits its no-op with one follower
        // before its own write completes, crashes, and votes for the third
        // server, which lacks the no-op.
        Bug::LeaderCountsItselfBeforeDurable => Bounds {
            parallel_write: true,
            ..bound(2, 1, 0, 3, 1, 0, 1, 0)
        },
        // Pipelining (spec/MCRaft_pipeline.cfg): the leader sends its
        // command before its no-op is acknowledged; the no-op's success
        // counts the follower as holding the command too, which commits;
        // the two servers without it elect a leader.
        Bug::MatchEverythingSent => Bounds {
            max_inflight: 2,
            ..bound(2, 2, 1, 3, 0, 0, 1, 0)
        },
        // Parallel writes, three servers: s1, leader of term 1, crashes
        // before its no-op is durable; s3's success for that no-op is still
        // in flight when s1, elected again in term 2, has written its new
        // no-op at index 1, so s1 counts it and commits; s3, which holds
        // the term-1 no-op, is elected in term 3 by s2. Four messages in
        // flight: fewer (3) hold no such path.
        Bug::CountStaleAppendSuccess => Bounds {
            parallel_write: true,
            ..bound(3, 1, 0, 4, 1, 0, 1, 0)
        },
        // A leader of term 1 sends its no-op and command to one follower;
        // the third server elects a leader of term 2, which commits its
        // no-op with it and compacts; the follower refuses that leader's
        // first request (its entry 1 is of term 1), is sent the snapshot,
        // and keeps its command of term 1 after the snapshot's term 2.
        Bug::SnapshotKeepsConflictingSuffix => bound(2, 2, 1, 4, 0, 1, 1, 0),
    };
    Some(bounds)
}
