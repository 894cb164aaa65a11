//! Leadership transfer (dissertation §3.10): TransferLeadership,
//! HandleTimeoutNow and AbortTransfer.
//!
//! The leader records the target, stops accepting client requests (so that
//! its log stops growing), brings the target up to date through normal
//! replication, and once the target matches its last entry sends it
//! TimeoutNow. The target campaigns at once: it skips PreVote's
//! pre-election, which the other followers, still hearing from the old
//! leader, would refuse. If the transfer has not completed within an
//! election timeout, the leader's timer fires AbortTransfer and it accepts
//! proposals again. Any step-down clears the transfer.
//!
//! Why a step of its own rather than part of CheckQuorum: CheckQuorum is
//! enabled only with CheckQuorum on, while a transfer must end with or
//! without it; and each spec action does one thing. The driver takes both
//! when a leader's election timer fires (the order does not matter: a
//! CheckQuorum step-down clears the transfer anyway).

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::refused::{ConfigChangeError, NotLeader, Refused};
use crate::server::Server;
use crate::types::NodeId;

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `TransferLeadership`: the leader starts handing leadership to
    /// `target`, another member of its configuration. If the target already
    /// matches the leader's last entry, TimeoutNow goes at once; otherwise
    /// the target is sent what it lacks. Refused at a server that is not the
    /// leader, for a target that is the leader itself or not a member,
    /// while another transfer is under way, and while a configuration change
    /// is pending.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<Effects<C, S>, Refused> {
        if !self.is_leader() {
            return Err(Refused::NotLeader(NotLeader {
                leader_hint: self.leader_id,
            }));
        }
        if target == self.id || !self.config.contains(target) {
            return Err(Refused::BadTransferee(target));
        }
        if let Some(transferee) = self.lead_transferee {
            return Err(Refused::Transferring { transferee });
        }
        // The target might not vote in the configuration about to take over.
        if self.config_change_pending() && !self.bugs.has(Bug::TransferDuringConfigChange) {
            return Err(Refused::ConfigChange(ConfigChangeError::Pending));
        }
        let mut effects = Effects::default();
        self.lead_transferee = Some(target);
        if !self.send_timeout_now_if_caught_up(target, &mut effects) {
            self.replicate_to(target, &mut effects);
        }
        Ok(effects)
    }

    /// The leader's half of the transfer, after a response from `peer` (or
    /// the transfer request itself): if `peer` is the transferee and matches
    /// the leader's last entry, send it TimeoutNow. Sent again on every
    /// such response, since the message may be lost.
    pub(crate) fn send_timeout_now_if_caught_up(
        &mut self,
        peer: NodeId,
        effects: &mut Effects<C, S>,
    ) -> bool {
        let caught_up = self.lead_transferee == Some(peer)
            && self.match_index.get(&peer).copied() == Some(self.log.last_index());
        if caught_up {
            effects.messages.push(self.reply(peer, Body::TimeoutNow {}));
        }
        caught_up
    }

    /// Spec `HandleTimeoutNow`: after the term rule, a TimeoutNow of our term
    /// (from its leader) makes a voting member that is not leader campaign
    /// at once, forgetting the leader and its lease, without a pre-election.
    /// A stale one is ignored.
    pub fn handle_timeout_now(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        if !matches!(message.body, Body::TimeoutNow {}) {
            return effects;
        }
        self.update_term(message.term, &mut effects);
        if message.term != self.current_term || !self.may_time_out() {
            return effects;
        }
        if self.bugs.has(Bug::TransferThroughPreVote) {
            // The ordinary election timeout: with PreVote, a pre-election
            // the other followers, in their lease, refuse.
            self.time_out(&mut effects);
            return effects;
        }
        self.restart_lease = false;
        self.campaign(&mut effects);
        effects
    }

    /// Spec `AbortTransfer`: the leader's election timer fired with a
    /// transfer under way; it gives the transfer up and accepts client
    /// requests again.
    pub fn abort_transfer(&mut self) -> Effects<C, S> {
        assert!(
            self.is_leader() && self.lead_transferee.is_some(),
            "AbortTransfer is a step of a leader with a transfer under way"
        );
        self.lead_transferee = None;
        Effects::default()
    }
}
