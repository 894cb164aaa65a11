//! Crash and restart: spec `Restart`.

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::server::Server;

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `Restart`: the server crashes and comes back. Persistent state
    /// (term, vote, log, snapshot, configuration) survives; everything else
    /// is lost, and the commit index falls back to the snapshot, the only
    /// prefix known committed without asking the leader. It holds a restart
    /// lease until its election timer fires: it refuses pre-votes for that
    /// long, as it would have had it not crashed.
    ///
    /// The driver's storage must make this true: everything an earlier
    /// transition asked it to persist was durable before that transition's
    /// messages left, so a restart loses nothing anyone was told about.
    pub fn restart(&mut self) -> Effects<C, S> {
        let mut effects = Effects {
            snapshot_installed: true,
            ..Effects::default()
        };
        // The driver rebuilt this server from its storage
        // (`Durable::recover`): all it holds is durable, and a leader's
        // entries that were still being written in parallel are gone.
        debug_assert_eq!(
            self.durable_index,
            self.log.last_index(),
            "a restart takes the server its storage rebuilt"
        );
        self.become_follower(&mut effects);
        self.commit_index = self.log.snapshot_index;
        self.leader_id = None;
        self.restart_lease = self.lease_after_restart() && !self.bugs.has(Bug::RestartForgetsLease);
        effects
    }
}
