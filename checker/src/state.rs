//! The explored state: exactly the spec's variables (spec/README.md), every
//! server's state as the core holds it plus the network and the histories
//! the safety properties read.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use imbl::{OrdMap, OrdSet, Vector};
use raft_model::{Config, Durable, Entry, Index, Message, NodeId, Persist, Server, Term};

use crate::network::Network;
use crate::shared_server::{SharedServer, fingerprint_hasher};
use serde::Serialize;

/// Client commands are the naturals 1..=MaxClientRequests.
pub type Command = u8;
/// The abstract state machine: every applied entry (noops included), which is
/// what a snapshot carries as its image.
pub type Image = Vector<Entry<Command>>;
pub type RaftServer = Server<Command, Image>;
/// What a server's storage holds: all that survives its crash.
pub type DurableImage = Durable<Command, Image>;
pub type Msg = Message<Command, Image>;
/// Messages are immutable once sent and shared by every state that holds
/// them: the network stores pointers, so copying a set node is cheap.
pub type SharedMsg = Arc<Msg>;

/// What the step into this state did that no spec variable records. Only the
/// `sometimes` properties about transitions read it (see [`RaftState`]).
pub const OBSERVED_CONFLICT_OVERWRITTEN: u16 = 1;
pub const OBSERVED_SNAPSHOT_INSTALLED: u16 = 1 << 1;
/// A leader lost its leadership with reads pending (`reads_failed`).
pub const OBSERVED_READ_FAILED: u16 = 1 << 2;
/// InstallSnapshot: the follower's entries past the snapshot matched it and
/// were kept.
pub const OBSERVED_SNAPSHOT_KEPT_SUFFIX: u16 = 1 << 3;
/// InstallSnapshot: the follower held entries that conflicted with the
/// snapshot, and its log was discarded.
pub const OBSERVED_SNAPSHOT_DISCARDED_CONFLICT: u16 = 1 << 4;
/// InstallSnapshot of the current term not newer than the follower's commit
/// index: ignored.
pub const OBSERVED_STALE_SNAPSHOT_IGNORED: u16 = 1 << 5;
/// AppendEntries with 2+ entries whose first conflict is past its first entry.
pub const OBSERVED_CONFLICT_INSIDE_BATCH: u16 = 1 << 6;
/// AppendEntries whose entries start at or below the follower's snapshot
/// index and end above it.
pub const OBSERVED_BATCH_PARTLY_COVERED: u16 = 1 << 7;
/// A rejection carrying a conflict term moved a leader's `next_index` back
/// by more than one entry (paper §5.3's optimization: a whole term skipped).
pub const OBSERVED_CONFLICT_TERM_SKIPPED: u16 = 1 << 8;
/// CheckQuorum: a leader found no quorum of answers and stepped down.
pub const OBSERVED_STEPPED_DOWN: u16 = 1 << 9;
/// A server refused a pre-vote it would have granted but for its lease.
pub const OBSERVED_PRE_VOTE_REFUSED_IN_LEASE: u16 = 1 << 10;
/// A pre-candidate heard from a leader of its term and became its follower.
pub const OBSERVED_PRE_CANDIDATE_STOOD_DOWN: u16 = 1 << 11;
/// A leader handing leadership to a peer learnt a newer term from that
/// peer (its campaign): the transfer completed on the old leader's side.
pub const OBSERVED_LEADERSHIP_TRANSFERRED: u16 = 1 << 12;
/// Parallel writes: a leader's commit index rose past its durable index
/// (its followers committed an entry its own write had not made durable).
pub const OBSERVED_COMMITTED_AHEAD_OF_LEADER_WRITE: u16 = 1 << 13;
/// Parallel writes: a leader's restart lost an entry it was still writing,
/// which another server holds.
pub const OBSERVED_CRASH_LOST_REPLICATED_ENTRY: u16 = 1 << 14;
/// Pipelining: a rejection took a leader's `next_index` back while entries
/// it had sent beyond the peer's match were unacknowledged (a request lost
/// or overtaken left a gap).
pub const OBSERVED_PIPELINE_FELL_BACK: u16 = 1 << 15;

/// One state of the exploration.
///
/// Server `i` (ids are `1..=n`) lives at `servers[i - 1]`.
///
/// `observed` is deliberately left out of the fingerprint ([`Hash`]): it
/// describes the step that led here, not the system, and keeping it out means
/// the checker counts exactly the spec's distinct states. The price: when a
/// state is first reached by a step that did not do the observed thing, a
/// later arrival that did is deduplicated away, so those two `sometimes`
/// properties can only err towards "not reached" (never a false "reached"),
/// and no safety verdict depends on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RaftState {
    /// Shared with the states that did not step them (`SharedServer`).
    pub servers: Vec<SharedServer>,
    /// `messages`: the bag of messages in flight; a delivery takes one copy.
    pub network: Network,
    /// `elected`: every (term, server) that ever became leader.
    pub elected: OrdSet<(Term, NodeId)>,
    /// `committed`: (index, entry term, leader's term) for every index a
    /// leader's commit index passed.
    pub committed: OrdSet<(Index, Term, Term)>,
    pub client_requests: u8,
    pub restarts: u8,
    pub compactions: u8,
    /// `duplicates`: DuplicateMessage steps so far.
    pub duplicates: u8,
    /// `drops`: DropMessage steps so far.
    pub drops: u8,
    /// `reads`: how many ReadIndex steps happened; the next read's id is
    /// `reads + 1`.
    pub reads: u8,
    /// `transfers`: TransferLeadership steps so far.
    pub transfers: u8,
    /// `configChanges`: ChangeConfig steps so far.
    pub config_changes: u8,
    /// `learnerChanges`: ChangeLearners steps so far.
    pub learner_changes: u8,
    /// Timeout steps so far, counted only under `--max-timeouts` (`None`
    /// otherwise, so that an unbounded run has the spec's states, no more).
    pub timeouts: Option<u8>,
    /// SendAppendEntries steps so far, counted only under `--max-heartbeats`.
    pub heartbeats: Option<u8>,
    /// The constant `InitMembers`: the configuration every server starts
    /// with (the same in every state, so it adds no state), which the
    /// membership properties read where a whole log holds no configuration
    /// entry.
    pub initial_config: Config,
    /// `readBound`: entry `k - 1` is, for read `k`, the highest index in
    /// `committed` when the read was registered (0 if none).
    pub read_bound: Vector<Index>,
    /// `readsReady`: (read id, index) for every read a leader released
    /// (the core's `Effects::reads_ready`).
    pub reads_ready: OrdSet<(u64, Index)>,
    /// History flag for LeaderAppendOnly: some step changed a leader's log
    /// other than by appending. Never set on correct runs, so it adds no state.
    pub leader_append_only_violated: bool,
    /// History flag for PreVoteRaisesNoTerm: some step raised a server's
    /// term other than by its own campaign or to the term of a message it
    /// received that was not a pre-vote (a request, or a grant). Never set
    /// on correct runs.
    pub pre_vote_raised_term: bool,
    /// History flag for PreVoteRespectsLease: some server granted a pre-vote
    /// while in a leader's lease, came back from a restart without a lease,
    /// or kept one through its election timeout. Never set on correct runs.
    pub pre_vote_lease_broken: bool,
    /// History flag for TimeoutNowCampaigns: some voting member, not the
    /// leader, received a TimeoutNow of its term (after the term rule) and
    /// did not campaign in that step. Never set on correct runs.
    pub timeout_now_ignored: bool,
    /// History flag for TransferFreezesLog: a leader's log grew while it
    /// was handing leadership over. Never set on correct runs.
    pub transfer_log_grew: bool,
    /// Each server's durable image — what its storage holds, changed only by
    /// the `persist` effects of its steps and the completion of a leader's
    /// parallel writes (`LogPersisted`), and all that `Restart` keeps —
    /// stored only where it differs from what the core says its storage
    /// holds (`Durable::of`: the persistent state, the log up to the durable
    /// index). That never happens in a correct run (the core names every
    /// write), so this stays empty there and adds no state; a seeded bug
    /// that omits a write makes it differ until the write is done or the
    /// server restarts.
    pub durable: OrdMap<NodeId, DurableImage>,
    /// `OBSERVED_*` bits of the step that produced this state (not hashed).
    #[serde(skip)]
    pub observed: u16,
    /// Set only on the stand-in the symmetry reduction hands stateright as a
    /// state's representative: the fingerprint of the state's orbit, which
    /// is then all that the stand-in hashes (`symmetry::orbit_fingerprint`).
    /// `None` on every explored state.
    #[serde(skip)]
    pub orbit: Option<u64>,
    /// The fingerprint of this state's orbit, once the symmetry reduction
    /// has computed it (`Representative::representative`): from then on the
    /// state hashes as its orbit (see `impl Hash for RaftState`).
    #[serde(skip)]
    pub known_orbit: KnownOrbit,
}

/// The fingerprint of a state's symmetry orbit, kept once computed.
///
/// A copy starts empty: `next_state` copies a state in order to change it.
/// Equal, ordered and printed as nothing, so that it changes no comparison.
#[derive(Default)]
pub struct KnownOrbit(AtomicU64);

/// 0 stands for "not computed"; an orbit whose fingerprint is 0 is only
/// computed again.
const UNKNOWN_HASH: u64 = 0;

impl Clone for KnownOrbit {
    fn clone(&self) -> KnownOrbit {
        KnownOrbit::default()
    }
}

impl PartialEq for KnownOrbit {
    fn eq(&self, _: &KnownOrbit) -> bool {
        true
    }
}

impl Eq for KnownOrbit {}

impl PartialOrd for KnownOrbit {
    fn partial_cmp(&self, other: &KnownOrbit) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KnownOrbit {
    fn cmp(&self, _: &KnownOrbit) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl std::fmt::Debug for KnownOrbit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

/// A state hashes as one `u64`: the orbit's fingerprint on a stand-in and
/// on a state whose orbit the symmetry reduction has computed, its own
/// fingerprint ([`RaftState::own_hash`]) on every other state.
///
/// Why a state whose orbit is known hashes as its orbit: stateright's
/// depth-first search, after inserting a new state's representative into
/// its table, fingerprints the state itself "to extend its path" and then
/// discards the value (stateright 0.31, `dfs.rs`: `_next_fingerprint`; its
/// paths are action indices). Computing the state's own fingerprint there
/// was a second full hash of 86 % of new states (those whose canonical
/// renaming is not the identity). Under symmetry no one else hashes an
/// explored state, and a state's orbit is what stateright's table holds
/// for it, so the orbit is also the right fingerprint to give. Runs
/// without symmetry never compute an orbit and hash states as their own.
impl Hash for RaftState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.orbit {
            Some(orbit) => state.write_u64(orbit),
            None => match self.known_orbit.get() {
                Some(orbit) => {
                    debug_assert_eq!(
                        orbit,
                        crate::symmetry::orbit_fingerprint(self),
                        "a state changed after its orbit was computed"
                    );
                    state.write_u64(orbit)
                }
                None => state.write_u64(self.own_hash()),
            },
        }
    }
}

impl KnownOrbit {
    /// The orbit's fingerprint, if computed.
    pub fn get(&self) -> Option<u64> {
        match self.0.load(AtomicOrdering::Relaxed) {
            UNKNOWN_HASH => None,
            known => Some(known),
        }
    }

    /// Keeps the orbit's fingerprint.
    pub fn set(&self, hash: u64) {
        self.0.store(hash, AtomicOrdering::Relaxed);
    }
}

impl RaftState {
    /// The state's fingerprint: every field but `observed` (which describes
    /// the step, not the system) and `initial_config` (a constant), hashed
    /// in this order; `symmetry::hash_renamed` feeds the same stream for a
    /// renamed state.
    pub fn own_hash(&self) -> u64 {
        debug_assert!(self.orbit.is_none(), "a stand-in has only its orbit");
        let mut hasher = fingerprint_hasher();
        let state = &mut hasher;
        self.servers.hash(state);
        self.network.hash(state);
        self.elected.hash(state);
        self.committed.hash(state);
        self.client_requests.hash(state);
        self.restarts.hash(state);
        self.compactions.hash(state);
        self.duplicates.hash(state);
        self.drops.hash(state);
        self.reads.hash(state);
        self.transfers.hash(state);
        self.config_changes.hash(state);
        self.learner_changes.hash(state);
        self.timeouts.hash(state);
        self.heartbeats.hash(state);
        self.read_bound.hash(state);
        self.reads_ready.hash(state);
        self.leader_append_only_violated.hash(state);
        self.pre_vote_raised_term.hash(state);
        self.pre_vote_lease_broken.hash(state);
        self.timeout_now_ignored.hash(state);
        self.transfer_log_grew.hash(state);
        self.durable.hash(state);
        hasher.finish()
    }
}

impl RaftState {
    /// `servers` with every history empty, every counter at 0, nothing in
    /// flight, no durable image stored apart from the servers, and the
    /// uncounted guards (`timeouts`, `heartbeats`) off: what the initial
    /// state and the orbit stand-in share.
    pub fn fresh(servers: Vec<RaftServer>, initial_config: Config) -> RaftState {
        RaftState {
            servers: servers.into_iter().map(SharedServer::new).collect(),
            network: Network::new(),
            elected: OrdSet::new(),
            committed: OrdSet::new(),
            client_requests: 0,
            restarts: 0,
            compactions: 0,
            duplicates: 0,
            drops: 0,
            reads: 0,
            transfers: 0,
            config_changes: 0,
            learner_changes: 0,
            timeouts: None,
            heartbeats: None,
            initial_config,
            read_bound: Vector::new(),
            reads_ready: OrdSet::new(),
            leader_append_only_violated: false,
            pre_vote_raised_term: false,
            pre_vote_lease_broken: false,
            timeout_now_ignored: false,
            transfer_log_grew: false,
            durable: OrdMap::new(),
            observed: 0,
            orbit: None,
            known_orbit: KnownOrbit::default(),
        }
    }

    /// A state that stands for a whole symmetry orbit in stateright's table
    /// of fingerprints, and is never explored: no servers, no messages,
    /// only the orbit's fingerprint, which is all it hashes.
    pub fn orbit_stand_in(orbit: u64) -> RaftState {
        RaftState {
            orbit: Some(orbit),
            ..RaftState::fresh(Vec::new(), Config::new(std::iter::empty()))
        }
    }

    pub fn server(&self, id: NodeId) -> &RaftServer {
        &self.servers[index_of(id)]
    }

    /// Server `id` itself, shared with this state (a pointer's copy).
    pub fn shared(&self, id: NodeId) -> SharedServer {
        self.servers[index_of(id)].clone()
    }

    /// Puts `server` in server `id`'s place (a new one, not a copy).
    pub fn replace_server(&mut self, id: NodeId, server: RaftServer) {
        self.servers[index_of(id)] = SharedServer::new(server);
    }

    pub fn server_mut(&mut self, id: NodeId) -> &mut RaftServer {
        self.servers[index_of(id)].make_mut()
    }

    /// The spec's `CommittedIndex`: the highest index in `committed` (0 if
    /// none), which a read registered now must be answered at or above.
    pub fn committed_index(&self) -> Index {
        self.committed
            .iter()
            .map(|&(index, _, _)| index)
            .max()
            .unwrap_or(0)
    }

    /// Server `id`'s durable image (see [`RaftState::durable`]).
    pub fn durable_image(&self, id: NodeId) -> DurableImage {
        match self.durable.get(&id) {
            Some(image) => image.clone(),
            None => Durable::of(self.server(id)),
        }
    }

    /// Server `id` took a step asking for `persist`; `before` is its state
    /// before the step, and `written_in_parallel` the index a parallel write
    /// completed up to (the step was `LogPersisted`). Performs exactly those
    /// writes on its durable image, as the node's storage does
    /// (`Durable::complete_parallel_write`, `Durable::apply`), and stores the
    /// image only if it now differs from what the core says is durable.
    pub fn persist(
        &mut self,
        before: &RaftServer,
        persist: &Persist,
        written_in_parallel: Option<Index>,
    ) {
        let id = before.id();
        if persist.is_empty()
            && written_in_parallel.is_none()
            && !self.durable.contains_key(&id)
            && Durable::same_durable_state(before, self.server(id))
        {
            // Most steps: nothing to write, nothing changed; the image was
            // and is the server's persistent state.
            return;
        }
        let mut image = match self.durable.remove(&id) {
            Some(image) => image,
            None => Durable::of(before),
        };
        // A write no storage can do (only a seeded bug that omitted an
        // earlier one asks for it) is refused whole, as the node refuses it:
        // the image stays as it was.
        if let Some(index) = written_in_parallel {
            let _refused = image.complete_parallel_write(self.server(id), index);
        }
        let _refused = image.apply(self.server(id), persist);
        if !image.holds(self.server(id)) {
            self.durable.insert(id, image);
        }
    }
}

fn index_of(id: NodeId) -> usize {
    usize::try_from(id - 1).unwrap_or(usize::MAX)
}

/// The entry at `index` of a server's whole log: from the snapshot image for a
/// compacted prefix, from the log otherwise. (Snapshot-covered prefixes are
/// compared through the image, as the spec does.)
pub fn entry_at(server: &RaftServer, index: Index) -> Option<&Entry<Command>> {
    if index == 0 {
        return None;
    }
    if index <= server.log().snapshot_index {
        server
            .snapshot()
            .data
            .get(usize::try_from(index - 1).unwrap_or(usize::MAX))
    } else {
        server.log().entry(index)
    }
}

/// The term of entry `index` in a server's whole log.
pub fn term_at(server: &RaftServer, index: Index) -> Option<Term> {
    entry_at(server, index).map(|entry| entry.term)
}

/// Length of a server's whole log (snapshot prefix included).
pub fn log_length(server: &RaftServer) -> Index {
    server.log().last_index()
}

/// The applied prefix of a server: snapshot image then held entries, up to its
/// commit index. This is the abstract state machine (and a snapshot's image).
pub fn applied_prefix(server: &RaftServer) -> Image {
    prefix(server, server.commit_index())
}

/// The whole log of a server up to `len` entries.
pub fn prefix(server: &RaftServer, len: Index) -> Image {
    let len = len.min(log_length(server));
    let mut image = server.snapshot().data.clone();
    let covered = server.log().snapshot_index;
    if len <= covered {
        image.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        return image;
    }
    image.append(
        server
            .log()
            .entries_from(covered + 1, (len - covered) as usize),
    );
    image
}
