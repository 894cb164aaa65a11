//! CheckQuorum (dissertation §6.2): a leader that a partition has cut off
//! from its majority steps down instead of leading on alone.
//!
//! Without it, such a leader keeps its role until a message of a higher term
//! reaches it: it accepts proposals that cannot commit, its clients wait
//! until they time out, and its health said "leader" (see issue 16). The
//! rule needs time ("within an election timeout"), which the core does not
//! have: the driver takes the `CheckQuorum` step each time the leader's
//! election timer fires, and the core remembers which peers answered since
//! the previous step (`recent_active`). Safety does not depend on when the
//! step comes: stepping down is always allowed.

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::server::{Role, Server};
use crate::types::{NodeId, Term};

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `CheckQuorum`: the leader counts itself and the peers that
    /// answered since the last check; without a quorum it becomes a
    /// follower of the same term with no known leader. Either way a new
    /// period of observation begins.
    pub fn check_quorum(&mut self) -> Effects<C, S> {
        let mut effects = Effects::default();
        assert!(
            self.role == Role::Leader && self.check_quorum,
            "CheckQuorum is a step of a leader with CheckQuorum on"
        );
        let mut active = std::mem::take(&mut self.recent_active);
        active.insert(self.id);
        if !self.config.is_quorum(&active) && !self.bugs.has(Bug::CheckQuorumNeverStepsDown) {
            self.become_follower(&mut effects);
            self.leader_id = None;
        }
        effects
    }

    /// A leader with CheckQuorum notes that `peer` answered one of its
    /// requests of `term` (called after any handler of a response). An
    /// answer of another term says nothing about this leadership.
    pub(crate) fn record_activity(&mut self, peer: NodeId, term: Term) {
        if self.check_quorum && self.role == Role::Leader && term == self.current_term {
            self.recent_active.insert(peer);
        }
    }
}
