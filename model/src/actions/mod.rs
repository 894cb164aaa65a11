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

mod check_quorum;
mod election;
mod membership;
mod read_index;
mod replication;
mod restart;
mod snapshot;
mod transfer;

use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::server::{Role, Server};
use crate::types::{Index, NodeId, Term};

impl<C: Clone, S: Clone> Server<C, S> {
    /// The handler step for `message` ([`crate::Step::receive`]), with a
    /// message that is not addressed to this server or comes from itself
    /// dropped without effect: the core never trusts its input.
    pub fn receive(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        self.step(crate::step::Step::receive(message))
            .unwrap_or_default()
    }

    /// Is this message addressed to us, from another server?
    ///
    /// Not "from a member of our configuration": servers process requests
    /// without consulting their configuration (dissertation §4.2.1), or a
    /// server being added would refuse the leader that adds it, and a server
    /// whose configuration lags would refuse a leader added since. Answers
    /// from non-members are harmless: quorums count only the members of the
    /// configuration, and a leader tracks only its peers. Messages from
    /// outside the cluster are the driver's to refuse (the node checks a
    /// cluster id on every message).
    pub fn accepts(&self, message: &Message<C, S>) -> bool {
        message.to == self.id && message.from != self.id
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
    ///
    /// A leader's entries still being written in parallel join this step's
    /// persist: a follower speaks only from durable state (a vote, an
    /// acknowledgement, is a promise about its log), so the whole log is
    /// durable before anything this step sends leaves.
    pub(crate) fn become_follower(&mut self, effects: &mut Effects<C, S>) {
        if self.durable_index < self.log.last_index() {
            effects.persist.log_written_from(self.durable_index + 1);
            self.durable_index = self.log.last_index();
        }
        self.role = Role::Follower;
        self.votes_granted = Default::default();
        self.next_index = Default::default();
        self.match_index = Default::default();
        self.recent_active = Default::default();
        self.lead_transferee = None;
        self.fail_pending_reads(effects);
    }

    /// Raises the commit index to `index` and hands the entries it commits
    /// to the driver (`effects.committed`), after any it was already given.
    pub(crate) fn commit_to(&mut self, index: Index, effects: &mut Effects<C, S>) {
        assert!(
            index > self.commit_index,
            "the commit index only grows: {} -> {index}",
            self.commit_index
        );
        assert!(
            index <= self.log.last_index(),
            "cannot commit entry {index} past the log's end {}",
            self.log.last_index()
        );
        let from = self.commit_index + 1;
        let entries = self
            .log
            .entries_from(from, (index - self.commit_index) as usize);
        debug_assert_eq!(entries.len() as Index, index - self.commit_index);
        let committed = &mut effects.committed;
        if committed.is_empty() {
            committed.first_index = from;
            committed.entries = entries;
        } else {
            debug_assert_eq!(
                committed.last_index() + 1,
                from,
                "committed entries are contiguous"
            );
            committed.entries.append(entries);
        }
        self.commit_index = index;
        effects.commit_index = Some(index);
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
