//! The explored state: exactly the spec's variables (spec/README.md), every
//! server's state as the core holds it plus the network and the histories
//! the safety properties read.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use imbl::{OrdSet, Vector};

use crate::network::Network;
use raft_model::{Entry, Index, Message, NodeId, Server, Term};
use serde::Serialize;

/// Client commands are the naturals 1..=MaxClientRequests.
pub type Command = u8;
/// The abstract state machine: every applied entry (noops included), which is
/// what a snapshot carries as its image.
pub type Image = Vector<Entry<Command>>;
pub type RaftServer = Server<Command, Image>;
pub type Msg = Message<Command, Image>;
/// Messages are immutable once sent and shared by every state that holds
/// them: the network stores pointers, so copying a set node is cheap.
pub type SharedMsg = Arc<Msg>;

/// What the step into this state did that no spec variable records. Only the
/// two `sometimes` properties about transitions read it (see [`RaftState`]).
pub const OBSERVED_CONFLICT_OVERWRITTEN: u8 = 1;
pub const OBSERVED_SNAPSHOT_INSTALLED: u8 = 2;

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
    pub servers: Vec<RaftServer>,
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
    /// History flag for LeaderAppendOnly: some step changed a leader's log
    /// other than by appending. Never set on correct runs, so it adds no state.
    pub leader_append_only_violated: bool,
    /// `OBSERVED_*` bits of the step that produced this state (not hashed).
    #[serde(skip)]
    pub observed: u8,
}

impl Hash for RaftState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.servers.hash(state);
        self.network.hash(state);
        self.elected.hash(state);
        self.committed.hash(state);
        self.client_requests.hash(state);
        self.restarts.hash(state);
        self.compactions.hash(state);
        self.duplicates.hash(state);
        self.drops.hash(state);
        self.leader_append_only_violated.hash(state);
    }
}

impl RaftState {
    pub fn server(&self, id: NodeId) -> &RaftServer {
        &self.servers[index_of(id)]
    }

    pub fn server_mut(&mut self, id: NodeId) -> &mut RaftServer {
        &mut self.servers[index_of(id)]
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
