//! The transition functions: one per spec action, named as in spec/Raft.tla.
//!
//! Every function mutates the server in place and returns its [`Effects`]:
//! semantically, `(state, input) -> (state', effects)` — the checker clones
//! the state (O(1) with imbl) before calling. Nothing here reads a clock,
//! draws a random number or touches I/O.
//!
//! Shared rules live in this module: the term rule every message handler
//! applies first (the spec's `UpdateTerm`), and the sanity checks on a
//! message's addressing, which make a rogue or misaddressed message a no-op.

mod election;
mod read_index;
mod replication;
mod restart;
mod snapshot;

pub use read_index::{PendingRead, ReadReady};
pub use snapshot::CompactError;

use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::server::{Role, Server};
use crate::types::{NodeId, Term};

/// Why a client request was not appended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotLeader {
    /// The leader this server last heard from in its current term, if any.
    pub leader_hint: Option<NodeId>,
}

impl std::fmt::Display for NotLeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.leader_hint {
            Some(leader) => write!(f, "not the leader; the leader is {leader}"),
            None => write!(f, "not the leader; no leader is known"),
        }
    }
}

impl std::error::Error for NotLeader {}

impl<C: Clone, S: Clone> Server<C, S> {
    /// Dispatches a received message to its handler. A message that is not
    /// addressed to this server, comes from itself or from a non-member is
    /// dropped without effect: the core never trusts its input.
    pub fn receive(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        if !self.accepts(message) {
            return Effects::default();
        }
        match message.body {
            Body::RequestVoteRequest { .. } => self.handle_request_vote_request(message),
            Body::RequestVoteResponse { .. } => self.handle_request_vote_response(message),
            Body::AppendEntriesRequest { .. } => self.handle_append_entries_request(message),
            Body::AppendEntriesResponse { .. } => self.handle_append_entries_response(message),
            Body::InstallSnapshotRequest { .. } => self.handle_install_snapshot_request(message),
            Body::InstallSnapshotResponse { .. } => self.handle_install_snapshot_response(message),
        }
    }

    /// Is this message addressed to us, from another member of our configuration?
    pub fn accepts(&self, message: &Message<C, S>) -> bool {
        message.to == self.id && message.from != self.id && self.config.contains(message.from)
    }

    /// The spec's `UpdateTerm`: any message with a newer term makes us a
    /// follower of that term with no vote cast (paper Figure 2, "All Servers").
    fn update_term(&mut self, term: Term, effects: &mut Effects<C, S>) {
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            self.become_follower(effects);
            self.leader_id = None;
            effects.persist.hard_state = true;
        }
    }

    /// Drops candidate/leader volatile state. Reads waiting for leadership
    /// confirmation fail: this server can no longer vouch for them.
    pub(crate) fn become_follower(&mut self, effects: &mut Effects<C, S>) {
        self.role = Role::Follower;
        self.votes_granted = Default::default();
        self.next_index = Default::default();
        self.match_index = Default::default();
        self.fail_pending_reads(effects);
    }

    fn reply(&self, to: NodeId, body: Body<C, S>) -> Message<C, S> {
        Message {
            from: self.id,
            to,
            term: self.current_term,
            body,
        }
    }
}
