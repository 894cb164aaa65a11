//! Seeded bugs: deliberate mutations of the core that prove the checker and
//! the tests can fail.
//!
//! They are runtime switches on a server, not a `cfg` fork of the logic: the
//! code that runs with no bug set is exactly the code the node runs. The
//! switches can only be turned on through [`crate::Server::with_bugs`], which
//! exists only with the `seeded-bugs` cargo feature (the checker and tests
//! enable it; the node never calls it). Without the feature, [`Bugs::has`] is
//! a constant `false` and the branches compile away.

use serde::{Deserialize, Serialize};

/// One mutation of the protocol, each breaking a safety property of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bug {
    /// Grant a vote even after voting for another candidate in this term
    /// (breaks Election Safety).
    VoteTwice,
    /// Grant votes without the §5.4.1 up-to-date check (breaks Leader
    /// Completeness and then State Machine Safety).
    SkipUpToDateCheck,
    /// Commit an entry of an earlier term by counting replicas: the paper's
    /// Figure 8 (breaks State Machine Safety).
    CommitOldTerm,
    /// On a conflict, overwrite the conflicting entry but keep the rest of the
    /// old suffix (breaks Log Terms Monotonic at once, and Log Matching once
    /// another server holds that suffix: five servers).
    KeepConflictingSuffix,
    /// A follower sets its commit index to the leader's without capping it at
    /// the last entry the request proved to match (breaks State Machine Safety).
    CommitBeyondLeader,
    /// Install a snapshot even when it is older than what the log already
    /// holds, throwing committed entries away (breaks State Machine Safety).
    InstallStaleSnapshot,
    /// Process an AppendEntries request from a stale term instead of
    /// rejecting it, so a deposed leader can truncate the new leader's log
    /// (breaks Leader Append-Only).
    AcceptStaleAppend,
    /// A candidate counts a granted vote from a RequestVote response of an
    /// older term (say, of its own previous candidacy) instead of ignoring
    /// it, so a vote cast for another term elects it (breaks Election Safety).
    CountStaleVote,
    /// A leader takes a successful AppendEntries response of an older term
    /// into `match_index`/`next_index`, hence into its commit rule: the
    /// follower matched the log of that term's leader, not necessarily this
    /// one's (breaks Leader Completeness and State Machine Safety). With
    /// parallel writes three servers show it: the leader's crash lost the
    /// entry the follower matched, and the answer is counted for the new
    /// entry the re-elected leader wrote at that index.
    CountStaleAppendSuccess,
    /// Weakened consistency check: a follower accepts an AppendEntries
    /// request when it holds an entry at `prev_log_index`, whatever that
    /// entry's term (breaks Log Matching).
    SkipPrevTermCheck,
    /// Weakened §5.4.1 check: a voter finds a candidate's log up to date when
    /// its last index is at least the voter's, terms ignored (breaks Leader
    /// Completeness and then State Machine Safety).
    UpToDateByIndexOnly,
    /// InstallSnapshot keeps the log entries after the snapshot's last index
    /// even when the log's entry at that index is not of the snapshot's last
    /// term, where paper §7 keeps them only if that entry matches (breaks Log
    /// Terms Monotonic at once: an entry of an older term after the
    /// snapshot's; Log Matching, with five servers, once another holds them).
    SnapshotKeepsConflictingSuffix,
    /// In an AppendEntries request carrying several entries, the follower
    /// checks only the first new entry against its log; a later entry at an
    /// index it already holds is skipped, kept as it is, even when the terms
    /// differ. Harmless when every request carries one entry
    /// (`max_append_entries` = 1). With three or more the follower appends
    /// the leader's entries after the one it kept (breaks Log Matching);
    /// with two it answers a match it lacks and may commit the entry it kept
    /// (breaks State Machine Safety).
    BatchChecksFirstEntryOnly,
    /// A leader releases a read as soon as it is registered, without waiting
    /// for a quorum to acknowledge its round, so a deposed leader answers
    /// from a stale state (breaks ReadIndexSafety).
    ReadWithoutQuorum,
    /// A leader releases confirmed reads before it has committed an entry of
    /// its own term, at a commit index that may lag entries its predecessors
    /// committed (breaks ReadIndexSafety).
    ReadBeforeTermCommit,
    /// Grant a vote in the current term without asking for it to be
    /// persisted (`hard_state` is not flagged when the term did not change
    /// as well): after a restart the server has forgotten it voted and can
    /// vote again in that term (breaks Election Safety).
    OmitPersistVote,
    /// A follower appends the new entries of an AppendEntries request
    /// without asking for them to be persisted (`log_from` is not flagged
    /// for them): it acknowledges entries a restart loses, so an entry the
    /// leader counted as committed can vanish from a majority (breaks
    /// Leader Completeness, then State Machine Safety).
    OmitPersistLog,
    /// CheckQuorum counts the answers but never steps the leader down: a
    /// leader cut off from its majority leads on alone, accepting writes
    /// that cannot commit (breaks no safety property; the checker finds it
    /// by the goal LeaderSteppedDownWithoutQuorum never being reached, and
    /// model/tests/check_quorum.rs by the isolated leader staying leader).
    CheckQuorumNeverStepsDown,
    /// A follower that rejects an AppendEntries request with a conflict hint
    /// (paper §5.3's optimization) takes the hint's index, the first of its
    /// run of the conflicting term, for the point up to which it matches the
    /// leader — the follower's twin of a leader taking the hint as a match —
    /// and learns the leader's commit index up to there. Nothing proved it:
    /// only a success does, and the run is of a term the leader may not hold
    /// at all, so the follower applies at that index an entry the cluster
    /// never committed (breaks State Machine Safety).
    CommitToConflictIndex,
    /// A server receiving a pre-vote request applies the term rule to it, as
    /// to a vote request, and so adopts the pre-candidate's next term, which
    /// no one holds: the disruption PreVote exists to prevent (breaks
    /// PreVoteRaisesNoTerm).
    PreVoteRaisesTerm,
    /// A follower whose election timer fires becomes a pre-candidate but
    /// keeps the leader it knew, hence its lease, and refuses the others'
    /// pre-votes as if that leader were alive: with the leader gone, every
    /// follower refuses every other and no one is elected (etcd-io/etcd#9586;
    /// breaks CandidateKnowsNoLeader).
    PreCandidateKeepsLeader,
    /// A server grants a pre-vote without the lease check: though it heard
    /// from a leader within an election timeout, it helps a server that
    /// merely lost touch with that leader depose it (breaks
    /// PreVoteRespectsLease).
    PreVoteIgnoresLease,
    /// A restarted server holds no lease: it grants pre-votes at once, though
    /// it may have heard from a live leader just before it crashed (breaks
    /// PreVoteRespectsLease).
    RestartForgetsLease,
    /// The target of a leadership transfer, on TimeoutNow, times out as its
    /// election timer would: with PreVote it asks for pre-votes, which the
    /// other followers, still hearing from the old leader, refuse, so the
    /// transfer fails (breaks TimeoutNowCampaigns; the checker also finds
    /// it by the goal LeadershipTransferred never being reached).
    TransferThroughPreVote,
    /// A leader handing leadership over keeps accepting client requests:
    /// its log keeps growing, so the target may never match its last entry
    /// and the transfer never completes (breaks TransferFreezesLog).
    TransferAcceptsProposals,
    /// A leader proposes a configuration change before it has committed an
    /// entry of its own term: a change an earlier leader left uncommitted in
    /// some log may still commit, and two changes overlap (Ongaro's 2015
    /// raft-dev bug; breaks SingleUncommittedChange).
    ChangeBeforeTermCommit,
    /// A leader proposes a configuration change while the previous one has
    /// not committed: the second joint configuration drops C_old while it
    /// may still decide (breaks SingleUncommittedChange and
    /// QuorumsIntersect, then Election or State Machine Safety).
    ConcurrentConfigChanges,
    /// InstallSnapshot replaces the log but keeps the server's former
    /// configuration instead of the snapshot's (breaks QuorumsIntersect).
    InstallSnapshotIgnoresConfig,
    /// A leader removed by a change keeps leading once the change has
    /// committed (breaks RemovedLeaderStepsDown).
    RemovedLeaderKeepsLeading,
    /// A leader starts a leadership transfer while a configuration change
    /// is pending (breaks TransferNotDuringChange).
    TransferDuringConfigChange,
    /// The commit rule counts a learner's acknowledgement as a voter's: a
    /// leader and a learner "hold a majority" of three voters, and an entry
    /// only they hold commits (breaks State Machine Safety and Leader
    /// Completeness once the other voters elect a leader without it).
    LearnerCountedInQuorum,
    /// With parallel writes, the commit rule counts the leader as holding
    /// every entry it appended, not only those its storage holds: an entry
    /// the leader and one follower of three hold commits while the leader's
    /// own write is still under way, a crash of the leader loses it, and the
    /// two servers without it elect a leader (breaks Leader Completeness,
    /// then State Machine Safety). Without parallel writes every entry is
    /// durable before it is sent, and the bug changes nothing.
    LeaderCountsItselfBeforeDurable,
    /// With pipelined replication, a leader receiving a success takes
    /// everything it has sent the peer (`next_index - 1`) for matched, not
    /// the response's `match_index`: the requests after the one answered
    /// may still be on their way, or lost. An entry only the leader holds
    /// (its request to the follower still in flight) commits, and the
    /// servers without it elect a leader (breaks Leader Completeness, then
    /// State Machine Safety). Without pipelining `next_index` moves up only
    /// on a success (or starts past the log at an election, before any
    /// success of the term), so the bug should change nothing there: the
    /// checker does not find it at `tiny` with `--max-inflight 0`.
    MatchEverythingSent,
}

impl Bug {
    pub const ALL: [Bug; 33] = [
        Bug::VoteTwice,
        Bug::SkipUpToDateCheck,
        Bug::CommitOldTerm,
        Bug::KeepConflictingSuffix,
        Bug::CommitBeyondLeader,
        Bug::InstallStaleSnapshot,
        Bug::AcceptStaleAppend,
        Bug::CountStaleVote,
        Bug::CountStaleAppendSuccess,
        Bug::SkipPrevTermCheck,
        Bug::UpToDateByIndexOnly,
        Bug::SnapshotKeepsConflictingSuffix,
        Bug::BatchChecksFirstEntryOnly,
        Bug::ReadWithoutQuorum,
        Bug::ReadBeforeTermCommit,
        Bug::OmitPersistVote,
        Bug::OmitPersistLog,
        Bug::CheckQuorumNeverStepsDown,
        Bug::CommitToConflictIndex,
        Bug::PreVoteRaisesTerm,
        Bug::PreCandidateKeepsLeader,
        Bug::PreVoteIgnoresLease,
        Bug::RestartForgetsLease,
        Bug::TransferThroughPreVote,
        Bug::TransferAcceptsProposals,
        Bug::ChangeBeforeTermCommit,
        Bug::ConcurrentConfigChanges,
        Bug::InstallSnapshotIgnoresConfig,
        Bug::RemovedLeaderKeepsLeading,
        Bug::TransferDuringConfigChange,
        Bug::LearnerCountedInQuorum,
        Bug::LeaderCountsItselfBeforeDurable,
        Bug::MatchEverythingSent,
    ];

    /// The bug's bit in [`Bugs`]: one per variant, so at most 64 variants.
    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

const _: () = assert!(Bug::ALL.len() <= u64::BITS as usize, "a bit per bug");

/// The set of bugs switched on for a server (empty in production).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bugs {
    #[cfg(feature = "seeded-bugs")]
    bits: u64,
}

impl Bugs {
    #[inline(always)]
    pub fn has(self, bug: Bug) -> bool {
        #[cfg(feature = "seeded-bugs")]
        {
            self.bits & bug.bit() != 0
        }
        #[cfg(not(feature = "seeded-bugs"))]
        {
            let _ = bug.bit();
            false
        }
    }

    /// Is any bug switched on? (Assertions of the invariants a seeded bug
    /// breaks on purpose give way to the checker's properties.)
    #[inline(always)]
    pub fn any(self) -> bool {
        #[cfg(feature = "seeded-bugs")]
        {
            self.bits != 0
        }
        #[cfg(not(feature = "seeded-bugs"))]
        {
            false
        }
    }

    #[cfg(feature = "seeded-bugs")]
    pub fn of(bugs: &[Bug]) -> Self {
        Bugs {
            bits: bugs.iter().fold(0, |bits, bug| bits | bug.bit()),
        }
    }
}
