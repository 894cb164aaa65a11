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
    /// old suffix (breaks Log Matching).
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
}

impl Bug {
    pub const ALL: [Bug; 9] = [
        Bug::VoteTwice,
        Bug::SkipUpToDateCheck,
        Bug::CommitOldTerm,
        Bug::KeepConflictingSuffix,
        Bug::CommitBeyondLeader,
        Bug::InstallStaleSnapshot,
        Bug::AcceptStaleAppend,
        Bug::OmitPersistVote,
        Bug::OmitPersistLog,
    ];

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The set of bugs switched on for a server (empty in production).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bugs {
    #[cfg(feature = "seeded-bugs")]
    bits: u32,
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
