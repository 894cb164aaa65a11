//! What a transition asks its driver to do, in order: persist, then send.
//! (With parallel writes, a leader's own new entries are the exception: they
//! are written while the messages carrying them are on their way,
//! [`Effects::parallel_log_from`].)

use serde::{Deserialize, Serialize};

use imbl::Vector;

use crate::message::Message;
use crate::types::ReadReady;
use crate::types::{Entry, Index};

/// What changed in persistent state and must be durable **before** any of the
/// transition's messages leave ("durability before speech": a restart must
/// lose nothing a message already told another server).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persist {
    /// `current_term` or `voted_for` changed.
    pub hard_state: bool,
    /// Log entries from this index on were written (appended or overwritten);
    /// anything the driver stored past the log's new last index is gone.
    pub log_from: Option<Index>,
    /// The snapshot changed (compaction or InstallSnapshot); the log prefix up
    /// to the snapshot's last index may be discarded once it is durable.
    pub snapshot: bool,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        !self.hard_state && self.log_from.is_none() && !self.snapshot
    }

    /// Records that entries from `index` on were written, keeping the lowest.
    pub fn log_written_from(&mut self, index: Index) {
        self.log_from = Some(self.log_from.map_or(index, |from| from.min(index)));
    }
}

/// Entries newly committed, in index order: what the driver applies to its
/// state machine (etcd-raft's `Ready.CommittedEntries`). Shares structure
/// with the log, so delivering them copies no command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Committed<C: Clone> {
    /// The index of `entries[0]`.
    pub first_index: Index,
    pub entries: Vector<Entry<C>>,
}

impl<C: Clone> Default for Committed<C> {
    fn default() -> Self {
        Committed {
            first_index: 1,
            entries: Vector::new(),
        }
    }
}

impl<C: Clone> Committed<C> {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index of the last entry (`first_index - 1` when empty).
    pub fn last_index(&self) -> Index {
        self.first_index + self.entries.len() as Index - 1
    }

    /// `(index, entry)` in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Index, &Entry<C>)> {
        let first = self.first_index;
        self.entries
            .iter()
            .enumerate()
            .map(move |(offset, entry)| (first + offset as Index, entry))
    }
}

/// The effects of one transition. The driver performs them in field order:
/// `persist`, then `messages` (with `parallel_log_from`'s write started, but
/// not awaited, before or beside them); then it applies: the state machine
/// becomes the snapshot's image if `snapshot_installed`, then `committed`
/// entries are applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Effects<C: Clone, S> {
    pub persist: Persist,
    /// Leader only, with parallel writes (dissertation §10.2.1): the leader
    /// appended its own entries from this index on, which need **not** be
    /// durable before this step's messages leave. The driver writes them
    /// after every write it was asked for before and before any it is asked
    /// for later (one ordered storage), and once they are durable feeds
    /// [`crate::Step::LogPersisted`] with the index and term of the last
    /// entry written. Meanwhile the leader does not count itself as holding
    /// them. A later `persist.log_from` at or below this index covers them
    /// (a leader that steps down makes its whole log durable before it
    /// speaks again).
    #[serde(default)]
    pub parallel_log_from: Option<Index>,
    pub messages: Vec<Message<C, S>>,
    /// The new commit index, when it changed.
    pub commit_index: Option<Index>,
    /// Entries this transition committed, to apply after any installed
    /// snapshot. Empty when a snapshot covers the new commit index.
    pub committed: Committed<C>,
    /// ClientRequest: the index the command was appended at.
    pub appended_at: Option<Index>,
    /// The state machine must be reset to the server's (new) snapshot.
    pub snapshot_installed: bool,
    /// Reads confirmed by a quorum: answer each once the state machine has
    /// applied its `index`.
    pub reads_ready: Vec<ReadReady>,
    /// Reads that can no longer be confirmed (leadership lost): the client retries.
    pub reads_failed: Vec<u64>,
    /// A current leader or a granted vote was heard from: restart the
    /// election timer (paper §5.2).
    pub reset_election_timer: bool,
}

impl<C: Clone, S> Default for Effects<C, S> {
    fn default() -> Self {
        Effects {
            persist: Persist::default(),
            parallel_log_from: None,
            messages: Vec::new(),
            commit_index: None,
            committed: Committed::default(),
            appended_at: None,
            snapshot_installed: false,
            reads_ready: Vec::new(),
            reads_failed: Vec::new(),
            reset_election_timer: false,
        }
    }
}

impl<C: Clone, S> Effects<C, S> {
    /// Records that the leader appended entries from `index` on to be
    /// written in parallel, keeping the lowest.
    pub fn log_written_in_parallel_from(&mut self, index: Index) {
        self.parallel_log_from = Some(self.parallel_log_from.map_or(index, |from| from.min(index)));
    }

    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.parallel_log_from.is_none()
            && self.messages.is_empty()
            && self.commit_index.is_none()
            && self.committed.is_empty()
            && self.appended_at.is_none()
            && !self.snapshot_installed
            && self.reads_ready.is_empty()
            && self.reads_failed.is_empty()
            && !self.reset_election_timer
    }
}
