//! Leader election (paper §5.2, §5.4.1): Timeout, HandleRequestVoteRequest,
//! HandleRequestVoteResponse, and becoming leader.

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::server::{Role, Server};
use crate::types::{Entry, Payload};

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `Timeout`: the election timer fired. A follower or candidate
    /// starts an election in the next term, votes for itself and asks every
    /// peer for its vote. A leader ignores it (it has no election timer), and
    /// so does a server that is not a voting member.
    pub fn timeout(&mut self) -> Effects<C, S> {
        let mut effects = Effects::default();
        if !self.may_time_out() {
            return effects;
        }
        let next_term = self.current_term + 1;
        self.current_term = next_term;
        self.role = Role::Candidate;
        self.voted_for = Some(self.id);
        self.leader_id = None;
        self.votes_granted = [self.id].into_iter().collect();
        effects.persist.hard_state = true;
        effects.reset_election_timer = true;
        if self.config.is_quorum(&self.votes_granted) {
            // A cluster of one elects itself.
            self.become_leader(&mut effects);
            return effects;
        }
        let body = Body::RequestVoteRequest {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        effects.messages = self
            .config
            .peers(self.id)
            .map(|peer| self.reply(peer, body.clone()))
            .collect();
        effects
    }

    /// Spec `Timeout`'s enabling condition: a voting member that is not the
    /// leader. A peer could have pushed us to the last representable term;
    /// such a server can no longer campaign, but must not wrap around to 0.
    pub(crate) fn may_time_out(&self) -> bool {
        self.role != Role::Leader
            && self.config.contains(self.id)
            && self.current_term.checked_add(1).is_some()
    }

    /// Spec `HandleRequestVoteRequest`: grant the vote if the request is of
    /// our term, we have not voted for someone else in it, and the
    /// candidate's log is at least as up-to-date as ours.
    pub fn handle_request_vote_request(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::RequestVoteRequest {
            last_log_index,
            last_log_term,
        } = message.body
        else {
            return effects;
        };
        self.update_term(message.term, &mut effects);
        let up_to_date = if self.bugs.has(Bug::UpToDateByIndexOnly) {
            last_log_index >= self.log.last_index()
        } else {
            self.log.is_up_to_date(last_log_index, last_log_term)
        };
        let log_ok = up_to_date || self.bugs.has(Bug::SkipUpToDateCheck);
        let free_to_vote = self.voted_for.is_none()
            || self.voted_for == Some(message.from)
            || (self.bugs.has(Bug::VoteTwice) && self.role == Role::Follower);
        let vote_granted = message.term == self.current_term && log_ok && free_to_vote;
        if vote_granted {
            if self.voted_for != Some(message.from) {
                self.voted_for = Some(message.from);
                // A vote must be durable before the reply grants it. (Not so
                // with the seeded bug, unless the term rule above flagged it.)
                if !self.bugs.has(Bug::OmitPersistVote) {
                    effects.persist.hard_state = true;
                }
            }
            effects.reset_election_timer = true;
        }
        effects
            .messages
            .push(self.reply(message.from, Body::RequestVoteResponse { vote_granted }));
        effects
    }

    /// Spec `HandleRequestVoteResponse`: a candidate counts granted votes of
    /// its own term and becomes leader on a quorum.
    pub fn handle_request_vote_response(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::RequestVoteResponse { vote_granted } = message.body else {
            return effects;
        };
        self.update_term(message.term, &mut effects);
        // A vote of an older term was cast for another election: it must not count.
        let of_our_term = message.term == self.current_term
            || (self.bugs.has(Bug::CountStaleVote) && message.term < self.current_term);
        if !of_our_term || self.role != Role::Candidate || !vote_granted {
            return effects;
        }
        self.votes_granted.insert(message.from);
        if self.config.is_quorum(&self.votes_granted) {
            self.become_leader(&mut effects);
        }
        effects
    }

    /// The spec's `BecomeLeader` step, taken inside the action that completed
    /// the quorum: reset replication state, append a no-op of the new term
    /// (paper §8) and send it to every peer at once (which also asserts
    /// leadership, paper §5.2).
    fn become_leader(&mut self, effects: &mut Effects<C, S>) {
        self.role = Role::Leader;
        self.leader_id = Some(self.id);
        self.votes_granted = Default::default();
        let next = self.log.last_index() + 1;
        self.next_index = self
            .config
            .peers(self.id)
            .map(|peer| (peer, next))
            .collect();
        self.match_index = self
            .config
            .peers(self.id)
            .map(|peer| (peer, 0u64))
            .collect();
        let index = self.log.append(Entry {
            term: self.current_term,
            payload: Payload::Noop,
        });
        effects.persist.log_written_from(index);
        // The timer now paces CheckQuorum: its first period starts here, so
        // that the peers have a whole timeout to answer the new leader.
        effects.reset_election_timer = true;
        self.advance_commit_index(effects);
        let peers: Vec<_> = self.config.peers(self.id).collect();
        for peer in peers {
            effects.messages.push(self.append_entries_for(peer));
        }
    }
}
