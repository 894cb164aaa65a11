//! Leader election (paper §5.2, §5.4.1): Timeout, HandleRequestVoteRequest,
//! HandleRequestVoteResponse, and becoming leader; with PreVote
//! (dissertation §9.6) the pre-election that comes first.

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::server::{Role, Server};
use crate::types::{Index, Payload, Term};

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `Timeout`: the election timer fired. A follower, candidate or
    /// pre-candidate forgets the leader it knew and the lease it held, and
    /// either campaigns at once (the paper) or, with PreVote, first asks
    /// for pre-votes: it becomes a pre-candidate of its term, unchanged, and
    /// asks every peer whether it would vote for it in the next term. A
    /// leader ignores it (it has no election timer), and so does a server
    /// that is not a voting member.
    pub fn timeout(&mut self) -> Effects<C, S> {
        let mut effects = Effects::default();
        if self.may_time_out() {
            self.time_out(&mut effects);
        }
        effects
    }

    /// `Timeout`'s body, into `effects` (also taken by HandleTimeoutNow
    /// with the seeded bug `TransferThroughPreVote`).
    pub(crate) fn time_out(&mut self, effects: &mut Effects<C, S>) {
        self.restart_lease = false;
        if !self.pre_vote {
            self.campaign(effects);
            return;
        }
        self.role = Role::PreCandidate;
        if !self.bugs.has(Bug::PreCandidateKeepsLeader) {
            // A leader it still followed would hold its lease, and it would
            // refuse the other followers' pre-votes forever (etcd#9586).
            self.leader_id = None;
        }
        self.votes_granted = [self.id].into_iter().collect();
        effects.reset_election_timer = true;
        if self.config.is_quorum(&self.votes_granted) {
            // A cluster of one needs no one's word.
            self.campaign(effects);
            return;
        }
        let body = Body::RequestVoteRequest {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote: true,
        };
        // The election's term to be; `may_time_out` checked it exists.
        let term = self.current_term + 1;
        let requests: Vec<_> = self
            .config
            .peers(self.id)
            .map(|peer| Message {
                term,
                ..self.reply(peer, body.clone())
            })
            .collect();
        effects.messages.extend(requests);
    }

    /// The spec's `Campaign`, taken by `Timeout` (without PreVote) or by the
    /// pre-vote response that completed a quorum: start an election in the
    /// next term, vote for oneself and ask every peer for its vote.
    pub(crate) fn campaign(&mut self, effects: &mut Effects<C, S>) {
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
            self.become_leader(effects);
            return;
        }
        let body = Body::RequestVoteRequest {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote: false,
        };
        let peers: Vec<_> = self.config.peers(self.id).collect();
        for peer in peers {
            effects.messages.push(self.reply(peer, body.clone()));
        }
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
            pre_vote,
        } = message.body
        else {
            return effects;
        };
        if pre_vote {
            return self.handle_pre_vote_request(message, last_log_index, last_log_term);
        }
        self.update_term(message.term, &mut effects);
        let log_ok = self.candidate_log_ok(last_log_index, last_log_term);
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
        let body = Body::RequestVoteResponse {
            vote_granted,
            pre_vote: false,
        };
        effects.messages.push(self.reply(message.from, body));
        effects
    }

    /// The §5.4.1 check: is a candidate's log at least as up-to-date as ours?
    fn candidate_log_ok(&self, last_log_index: Index, last_log_term: Term) -> bool {
        let up_to_date = if self.bugs.has(Bug::UpToDateByIndexOnly) {
            last_log_index >= self.log.last_index()
        } else {
            self.log.is_up_to_date(last_log_index, last_log_term)
        };
        up_to_date || self.bugs.has(Bug::SkipUpToDateCheck)
    }

    /// The spec's `HandlePreVoteRequest`, the pre-vote branch of
    /// `HandleRequestVoteRequest`: grant the pre-vote if the election's term
    /// to be is past ours, the candidate's log is up to date, and we hold no
    /// lease (we have not heard from a leader since our election timer last
    /// fired, and have not restarted since). Nothing changes here: not the
    /// term (no one holds the request's term yet), not the vote, not the
    /// timer. A grant answers in the request's term, a refusal in ours.
    fn handle_pre_vote_request(
        &mut self,
        message: &Message<C, S>,
        last_log_index: Index,
        last_log_term: Term,
    ) -> Effects<C, S> {
        let mut effects = Effects::default();
        if self.bugs.has(Bug::PreVoteRaisesTerm) {
            self.update_term(message.term, &mut effects);
        }
        let lease_ok = !self.in_lease() || self.bugs.has(Bug::PreVoteIgnoresLease);
        let vote_granted = message.term > self.current_term
            && self.candidate_log_ok(last_log_index, last_log_term)
            && lease_ok;
        let term = if vote_granted {
            message.term
        } else {
            self.current_term
        };
        let body = Body::RequestVoteResponse {
            vote_granted,
            pre_vote: true,
        };
        effects.messages.push(Message {
            term,
            ..self.reply(message.from, body)
        });
        effects
    }

    /// Spec `HandleRequestVoteResponse`: a candidate counts granted votes of
    /// its own term and becomes leader on a quorum.
    pub fn handle_request_vote_response(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::RequestVoteResponse {
            vote_granted,
            pre_vote,
        } = message.body
        else {
            return effects;
        };
        if pre_vote && vote_granted {
            // Granted in our next term, which no one holds: no term rule. A
            // grant for an earlier pre-election of ours counts as well: it
            // is advice, not a vote, and safety rests on the real election.
            let for_us = self.role == Role::PreCandidate
                && message.term.checked_sub(1) == Some(self.current_term);
            if for_us {
                self.votes_granted.insert(message.from);
                if self.config.is_quorum(&self.votes_granted) {
                    self.campaign(&mut effects);
                }
            }
            return effects;
        }
        // A refused pre-vote carries the voter's own term: the term rule
        // applies, and nothing else does.
        self.update_term(message.term, &mut effects);
        if pre_vote {
            return effects;
        }
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
            .replicas(self.id)
            .map(|peer| (peer, next))
            .collect();
        self.match_index = self
            .config
            .replicas(self.id)
            .map(|peer| (peer, 0u64))
            .collect();
        self.leader_append(Payload::Noop, effects);
        // The timer now paces CheckQuorum: its first period starts here, so
        // that the peers have a whole timeout to answer the new leader.
        effects.reset_election_timer = true;
        self.advance_commit_index(effects);
        let replicas: Vec<_> = self.config.replicas(self.id).collect();
        for peer in replicas {
            self.replicate_to(peer, effects);
        }
    }
}
