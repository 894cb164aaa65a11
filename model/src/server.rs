//! One server's state: the spec's per-server variables, as fields.

use imbl::{OrdMap, OrdSet, Vector};

use crate::actions::PendingRead;
use serde::{Deserialize, Serialize};

use crate::bugs::Bugs;
use crate::log::Log;
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::types::{Config, Index, NodeId, Term};

/// Default cap on entries per AppendEntries request.
pub const DEFAULT_MAX_APPEND_ENTRIES: usize = 256;

/// A server's role (paper §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// The complete state of one server.
///
/// Persistent fields (kept across [`Server::restart`]): `current_term`,
/// `voted_for`, `log`, `snapshot`, `config`. Everything else is volatile.
/// Field names are the spec's variable names in snake_case (see spec/README.md).
///
/// `C` is the command type, `S` the state-machine image carried by snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Server<C: Clone, S> {
    pub id: NodeId,
    // --- persistent ---
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    pub log: Log<C>,
    /// The latest snapshot. `snapshot.meta.last_index == log.snapshot_index`.
    pub snapshot: Snapshot<S>,
    /// The configuration in force. Quorums are computed from it.
    pub config: Config,
    // --- volatile ---
    pub role: Role,
    pub commit_index: Index,
    /// The leader of `current_term`, once heard from (a hint for clients).
    pub leader_id: Option<NodeId>,
    /// Candidate only: who granted a vote in `current_term` (self included).
    pub votes_granted: OrdSet<NodeId>,
    /// Leader only: next entry to send to each peer.
    pub next_index: OrdMap<NodeId, Index>,
    /// Leader only: highest entry known replicated on each peer.
    pub match_index: OrdMap<NodeId, Index>,
    /// Leader only: the latest ReadIndex round; AppendEntries requests carry it.
    pub read_seq: u64,
    /// Leader only: the highest ReadIndex round each peer has echoed back.
    pub read_acks: OrdMap<NodeId, u64>,
    /// Leader only: reads waiting for a quorum to confirm leadership.
    pub pending_reads: Vector<PendingRead>,
    /// The most entries one AppendEntries request carries: a constant of the
    /// deployment (spec constant `MaxAppendEntries`), not protocol state.
    pub max_append_entries: usize,
    /// Seeded bugs (always empty outside the checker and tests).
    #[serde(skip)]
    pub(crate) bugs: Bugs,
}

impl<C: Clone, S: Clone> Server<C, S> {
    /// A fresh server of a new cluster: term 0, empty log, the given members,
    /// and an empty state-machine image `data`.
    pub fn new(id: NodeId, config: Config, data: S) -> Self {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: 0,
                last_term: 0,
                config: config.clone(),
            },
            data,
        };
        Self::recover(id, 0, None, snapshot, Log::default())
    }

    /// A server rebuilt from its persistent state, as after a crash: what the
    /// node loads from its data directory. `log` must start at the snapshot.
    pub fn recover(
        id: NodeId,
        current_term: Term,
        voted_for: Option<NodeId>,
        snapshot: Snapshot<S>,
        log: Log<C>,
    ) -> Self {
        debug_assert_eq!(log.snapshot_index, snapshot.meta.last_index);
        Server {
            id,
            current_term,
            voted_for,
            config: snapshot.meta.config.clone(),
            commit_index: snapshot.meta.last_index,
            log,
            snapshot,
            role: Role::Follower,
            leader_id: None,
            votes_granted: OrdSet::new(),
            next_index: OrdMap::new(),
            match_index: OrdMap::new(),
            read_seq: 0,
            read_acks: OrdMap::new(),
            pending_reads: Vector::new(),
            max_append_entries: DEFAULT_MAX_APPEND_ENTRIES,
            bugs: Bugs::default(),
        }
    }

    /// This server with a different cap on entries per AppendEntries request
    /// (at least 1).
    pub fn with_max_append_entries(mut self, max: usize) -> Self {
        self.max_append_entries = max.max(1);
        self
    }

    /// This server with seeded bugs switched on (checker and tests only).
    #[cfg(feature = "seeded-bugs")]
    pub fn with_bugs(mut self, bugs: &[crate::bugs::Bug]) -> Self {
        self.bugs = Bugs::of(bugs);
        self
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// A copy with every server id passed through `f`: the checker's symmetry
    /// reduction needs every id inside a state rewritten consistently.
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Self {
        let mut renamed = self.clone();
        renamed.id = f(self.id);
        renamed.voted_for = self.voted_for.map(f);
        renamed.leader_id = self.leader_id.map(f);
        renamed.config = self.config.rename_ids(f);
        renamed.snapshot.meta.config = self.snapshot.meta.config.rename_ids(f);
        renamed.votes_granted = self.votes_granted.iter().map(|id| f(*id)).collect();
        renamed.next_index = self.next_index.iter().map(|(id, i)| (f(*id), *i)).collect();
        renamed.match_index = self
            .match_index
            .iter()
            .map(|(id, i)| (f(*id), *i))
            .collect();
        renamed.read_acks = self.read_acks.iter().map(|(id, s)| (f(*id), *s)).collect();
        renamed
    }
}
