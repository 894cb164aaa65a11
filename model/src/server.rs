//! One server's state: the spec's per-server variables, as fields.

use std::hash::{Hash, Hasher};

use imbl::{OrdMap, OrdSet, Vector};

use crate::types::PendingRead;
use serde::{Deserialize, Serialize};

use crate::bugs::Bugs;
use crate::log::Log;
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::types::{Config, Index, NodeId, RenameIds, Term, hash_sorted};

/// Default cap on entries per AppendEntries request.
pub const DEFAULT_MAX_APPEND_ENTRIES: usize = 256;

/// A server's role (paper §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
    /// PreVote (dissertation §9.6): asking whether it could win an election
    /// before starting one, its term unchanged.
    PreCandidate,
}

/// The complete state of one server.
///
/// Persistent fields (kept across [`Server::restart`]): `current_term`,
/// `voted_for`, `log`, `snapshot`, `config`. Everything else is volatile.
/// Field names are the spec's variable names in snake_case (see spec/README.md).
///
/// The fields are private: only the transition functions change them, and
/// drivers read them through the methods of the same names.
///
/// `C` is the command type, `S` the state-machine image carried by snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Server<C: Clone, S> {
    pub(crate) id: NodeId,
    // --- persistent ---
    pub(crate) current_term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: Log<C>,
    /// The latest snapshot. `snapshot.meta.last_index == log.snapshot_index`.
    pub(crate) snapshot: Snapshot<S>,
    /// The configuration in force. Quorums are computed from it. A function
    /// of `log` and `snapshot` (the latest configuration entry in the log,
    /// else the snapshot's), cached here and refreshed whenever the log
    /// changes; `Server::step` asserts that the two agree.
    pub(crate) config: Config,
    // --- volatile ---
    pub(crate) role: Role,
    pub(crate) commit_index: Index,
    /// The leader of `current_term`, once heard from (a hint for clients).
    pub(crate) leader_id: Option<NodeId>,
    /// Candidate only: who granted a vote in `current_term` (self included).
    pub(crate) votes_granted: OrdSet<NodeId>,
    /// Leader only: next entry to send to each peer.
    pub(crate) next_index: OrdMap<NodeId, Index>,
    /// Leader only: highest entry known replicated on each peer.
    pub(crate) match_index: OrdMap<NodeId, Index>,
    /// Leader only: the latest ReadIndex round; AppendEntries requests carry it.
    pub(crate) read_seq: u64,
    /// Leader only: the highest ReadIndex round each peer has echoed back.
    pub(crate) read_acks: OrdMap<NodeId, u64>,
    /// Leader only: reads waiting for a quorum to confirm leadership.
    pub(crate) pending_reads: Vector<PendingRead>,
    /// Leader only, with CheckQuorum: the peers that answered a request of
    /// this term since the last CheckQuorum step (always empty without it).
    pub(crate) recent_active: OrdSet<NodeId>,
    /// With PreVote, set by a restart past term 0 and cleared by the next
    /// election timeout: a restarted server may have heard from a leader just before
    /// it crashed, so it holds that leader's lease (refuses pre-votes) for a
    /// whole election timeout, as if it had just heard from it. Always false
    /// without PreVote, which alone reads it.
    pub(crate) restart_lease: bool,
    /// Leader only: the peer it is handing leadership to (dissertation
    /// §3.10), set by TransferLeadership and cleared by AbortTransfer or any
    /// step-down. Meanwhile the leader accepts no client request.
    pub(crate) lead_transferee: Option<NodeId>,
    /// How far this server's own log is known durable: its storage holds
    /// every entry up to here. A leader with parallel writes (dissertation
    /// §10.2.1) sends the entries it appends before they are durable and
    /// counts itself in the commit quorum only up to here; every other
    /// server makes each write durable before it speaks, so for it this is
    /// the log's last index (`Server::step` asserts both, and that it never
    /// lies below the snapshot, which is always durable).
    pub(crate) durable_index: Index,
    /// The most entries one AppendEntries request carries: a constant of the
    /// deployment (spec constant `MaxAppendEntries`), not protocol state.
    pub(crate) max_append_entries: usize,
    /// CheckQuorum (dissertation §6.2): a leader that has not heard from a
    /// quorum within an election timeout steps down. A constant of the
    /// deployment (spec constant `CheckQuorumOn`), not protocol state.
    pub(crate) check_quorum: bool,
    /// PreVote (dissertation §9.6): a server whose election timer fires
    /// first asks for pre-votes, its term unchanged, and campaigns only with
    /// a quorum of them. A constant of the deployment (spec constant
    /// `PreVoteOn`), not protocol state.
    pub(crate) pre_vote: bool,
    /// Parallel writes (dissertation §10.2.1): a leader writes the entries
    /// it appends to its own storage in parallel with sending them to its
    /// followers, instead of before. A constant of the deployment (spec
    /// constant `ParallelWriteOn`), not protocol state.
    pub(crate) parallel_write: bool,
    /// Pipelined replication: with `max_inflight` > 0 a leader advances a
    /// peer's `next_index` past the entries it sends, without waiting for
    /// the answer, and keeps at most `max_inflight` full requests' worth of
    /// entries (`max_inflight * max_append_entries`) sent and not yet
    /// acknowledged beyond the peer's `match_index`. 0: off, the paper's
    /// Raft (`next_index` moves on answers only). A constant of the
    /// deployment (spec constant `MaxInflight`), not protocol state.
    pub(crate) max_inflight: usize,
    /// Seeded bugs (always empty outside the checker and tests).
    #[serde(skip)]
    pub(crate) bugs: Bugs,
}

/// The read API: drivers see a server only through these.
impl<C: Clone, S> Server<C, S> {
    /// This server's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// Spec `currentTerm`.
    pub fn current_term(&self) -> Term {
        self.current_term
    }
    /// Spec `votedFor`.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// Spec `log` (with `snapshotIndex`/`snapshotTerm` for its compacted prefix).
    pub fn log(&self) -> &Log<C> {
        &self.log
    }
    /// The latest snapshot: its metadata is the spec's `snapshot`.
    pub fn snapshot(&self) -> &Snapshot<S> {
        &self.snapshot
    }
    /// The configuration in force: the latest configuration entry in the
    /// log, or the snapshot's (spec `config`).
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Spec `state`.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Spec `commitIndex`.
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }
    /// Spec `leaderId`: the leader of the current term, once heard from.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }
    /// Spec `votesGranted`.
    pub fn votes_granted(&self) -> &OrdSet<NodeId> {
        &self.votes_granted
    }
    /// Spec `nextIndex` (leader only).
    pub fn next_index(&self) -> &OrdMap<NodeId, Index> {
        &self.next_index
    }
    /// Spec `matchIndex` (leader only).
    pub fn match_index(&self) -> &OrdMap<NodeId, Index> {
        &self.match_index
    }
    /// Spec `readSeq` (leader only).
    pub fn read_seq(&self) -> u64 {
        self.read_seq
    }
    /// Spec `readAcks` (leader only).
    pub fn read_acks(&self) -> &OrdMap<NodeId, u64> {
        &self.read_acks
    }
    /// Spec `pendingReads` (leader only).
    pub fn pending_reads(&self) -> &Vector<PendingRead> {
        &self.pending_reads
    }
    /// Spec constant `MaxAppendEntries`.
    pub fn max_append_entries(&self) -> usize {
        self.max_append_entries
    }
    /// Spec `recentActive` (leader only, with CheckQuorum).
    pub fn recent_active(&self) -> &OrdSet<NodeId> {
        &self.recent_active
    }
    /// Spec constant `CheckQuorumOn`.
    pub fn check_quorum_enabled(&self) -> bool {
        self.check_quorum
    }
    /// Spec constant `PreVoteOn`.
    pub fn pre_vote_enabled(&self) -> bool {
        self.pre_vote
    }
    /// Spec `restartLease`.
    pub fn restart_lease(&self) -> bool {
        self.restart_lease
    }
    /// Spec `leadTransferee` (leader only): the peer a leadership transfer
    /// under way hands over to.
    pub fn lead_transferee(&self) -> Option<NodeId> {
        self.lead_transferee
    }
    /// Spec `durableIndex`: how far this server's own log is known durable
    /// (its last index, but at a leader with parallel writes whose latest
    /// entries are still being written).
    pub fn durable_index(&self) -> Index {
        self.durable_index
    }
    /// Spec constant `ParallelWriteOn`.
    pub fn parallel_write_enabled(&self) -> bool {
        self.parallel_write
    }
    /// Spec constant `MaxInflight`: pipelined replication's window, in full
    /// requests (0: off).
    pub fn max_inflight(&self) -> usize {
        self.max_inflight
    }
    /// Spec `InLease`: this server heard from the leader of its term (or is
    /// that leader) since its election timer last fired, or restarted since
    /// then. It refuses pre-votes: a leader it may still follow is alive.
    pub fn in_lease(&self) -> bool {
        self.leader_id.is_some() || self.restart_lease
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
}

impl<C: Clone, S: Clone> Server<C, S> {
    /// A fresh server of a new cluster: term 0, empty log, the given members,
    /// and an empty state-machine image `data`. It holds no lease: there has
    /// been no leader to hear from.
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
    /// Like [`Server::restart`], it holds a restart lease until its first
    /// election timeout (with PreVote, and past term 0).
    pub fn recover(
        id: NodeId,
        current_term: Term,
        voted_for: Option<NodeId>,
        snapshot: Snapshot<S>,
        log: Log<C>,
    ) -> Self {
        debug_assert_eq!(log.snapshot_index, snapshot.meta.last_index);
        // Everything it came back with is what its storage holds.
        let durable_index = log.last_index();
        let mut server = Server {
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
            recent_active: OrdSet::new(),
            // `lease_after_restart`, before PreVote is set (`with_pre_vote`
            // keeps it only with PreVote on).
            restart_lease: current_term > 0,
            lead_transferee: None,
            durable_index,
            max_append_entries: DEFAULT_MAX_APPEND_ENTRIES,
            check_quorum: false,
            pre_vote: false,
            parallel_write: false,
            max_inflight: 0,
            bugs: Bugs::default(),
        };
        // The latest configuration entry in the log, if any, is in force.
        server.refresh_config();
        server
    }

    /// This server with a different cap on entries per AppendEntries request
    /// (at least 1).
    pub fn with_max_append_entries(mut self, max: usize) -> Self {
        self.max_append_entries = max.max(1);
        self
    }

    /// This server with CheckQuorum on or off (off by default: the paper's
    /// Raft; the node turns it on).
    pub fn with_check_quorum(mut self, on: bool) -> Self {
        self.check_quorum = on;
        self
    }

    /// Does a server coming back from a crash hold a lease? With PreVote, if
    /// it may have heard from a leader before the crash: past term 0 (a
    /// leader's messages carry a term of 1 or more, and the term rule would
    /// have made it durable). Only PreVote reads the lease; without it,
    /// none, so that it adds no state to tell apart.
    pub(crate) fn lease_after_restart(&self) -> bool {
        self.pre_vote && self.current_term > 0
    }

    /// This server with PreVote on or off (off by default: the paper's Raft;
    /// the node turns it on).
    pub fn with_pre_vote(mut self, on: bool) -> Self {
        self.pre_vote = on;
        // Only PreVote reads the lease: without it, none (as `restart` does).
        self.restart_lease &= on;
        self
    }

    /// This server with parallel writes on or off (off by default: the
    /// paper's Raft, every write durable before the step's messages leave).
    /// With them, a leader's own appends are written while the requests
    /// carrying them are on their way (`Effects::parallel_log_from`), and
    /// the driver reports each completed write with `Step::LogPersisted`.
    pub fn with_parallel_write(mut self, on: bool) -> Self {
        self.parallel_write = on;
        self
    }

    /// This server with pipelined replication's window (0, the default: off,
    /// the paper's Raft). With `max_inflight` = W > 0, a leader sends a peer
    /// its next entries without waiting for the answer to the previous
    /// ones, up to W requests of `max_append_entries` entries beyond what
    /// the peer is known to match, and falls back on a rejection.
    pub fn with_max_inflight(mut self, max_inflight: usize) -> Self {
        self.max_inflight = max_inflight;
        self
    }

    /// This server with seeded bugs switched on (checker and tests only).
    #[cfg(feature = "seeded-bugs")]
    pub fn with_bugs(mut self, bugs: &[crate::bugs::Bug]) -> Self {
        self.bugs = Bugs::of(bugs);
        self
    }

    /// Feeds `h` exactly what `self.rename_ids(f).hash(h)` would, without
    /// building the renamed server: the checker's symmetry reduction only
    /// needs the fingerprint of a renamed state, and building it (cloning,
    /// rebuilding the id-keyed maps, dropping it) was a quarter of its time.
    /// The destructuring has no `..`, so a new field does not compile until
    /// it is hashed here; the checker's debug builds compare the two hashes
    /// on every state they canonicalise.
    pub fn hash_renamed<H: Hasher>(&self, f: &impl Fn(NodeId) -> NodeId, h: &mut H)
    where
        C: Hash,
        S: RenameIds + Hash + Clone,
    {
        let Server {
            id,
            current_term,
            voted_for,
            log,
            snapshot,
            config,
            role,
            commit_index,
            leader_id,
            votes_granted,
            next_index,
            match_index,
            read_seq,
            read_acks,
            pending_reads,
            recent_active,
            restart_lease,
            lead_transferee,
            durable_index,
            max_append_entries,
            check_quorum,
            pre_vote,
            parallel_write,
            max_inflight,
            bugs,
        } = self;
        f(*id).hash(h);
        current_term.hash(h);
        voted_for.map(f).hash(h);
        log.rename_ids(f).hash(h);
        // Snapshot { meta: { last_index, last_term, config }, data }.
        snapshot.meta.last_index.hash(h);
        snapshot.meta.last_term.hash(h);
        snapshot.meta.config.hash_renamed(f, h);
        snapshot.data.rename_ids(f).hash(h);
        config.hash_renamed(f, h);
        role.hash(h);
        commit_index.hash(h);
        leader_id.map(f).hash(h);
        hash_renamed_set(votes_granted, f, h);
        hash_renamed_map(next_index, f, h);
        hash_renamed_map(match_index, f, h);
        read_seq.hash(h);
        hash_renamed_map(read_acks, f, h);
        pending_reads.hash(h);
        hash_renamed_set(recent_active, f, h);
        restart_lease.hash(h);
        lead_transferee.map(f).hash(h);
        durable_index.hash(h);
        max_append_entries.hash(h);
        check_quorum.hash(h);
        pre_vote.hash(h);
        parallel_write.hash(h);
        max_inflight.hash(h);
        bugs.hash(h);
    }

    /// A copy with every server id passed through `f`: the checker's symmetry
    /// reduction needs every id inside a state rewritten consistently.
    /// Configuration entries in the log and the snapshot's image name
    /// servers too, and are rewritten as well.
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Self
    where
        S: RenameIds,
    {
        let mut renamed = self.clone();
        renamed.log = self.log.rename_ids(f);
        renamed.snapshot.data = self.snapshot.data.rename_ids(f);
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
        renamed.recent_active = self.recent_active.iter().map(|id| f(*id)).collect();
        renamed.lead_transferee = self.lead_transferee.map(f);
        renamed
    }
}

/// What `set.iter().map(f).collect::<OrdSet<_>>().hash(h)` feeds `h`,
/// without building the set.
fn hash_renamed_set<H: Hasher>(set: &OrdSet<NodeId>, f: &impl Fn(NodeId) -> NodeId, h: &mut H) {
    hash_sorted(set.len(), set.iter().map(|id| f(*id)), h);
}

/// The same for a map keyed by server id (imbl hashes each `(key, value)`;
/// keys are distinct, so sorting the pairs sorts by key).
fn hash_renamed_map<V: Hash + Copy + Ord + Default, H: Hasher>(
    map: &OrdMap<NodeId, V>,
    f: &impl Fn(NodeId) -> NodeId,
    h: &mut H,
) {
    hash_sorted(map.len(), map.iter().map(|(id, v)| (f(*id), *v)), h);
}
