//! Membership changes by joint consensus (paper §6, dissertation ch. 4):
//! ChangeConfig, and the rules that finish a change inside other actions.
//!
//! A change from C_old to C_new goes through the joint configuration
//! C_old,new, whose quorums need a majority of C_old and a majority of
//! C_new:
//!
//! 1. `ChangeConfig(new)` at the leader appends C_old,new. Like every
//!    configuration it takes effect on a server as soon as it is in its log
//!    (dissertation §4.1): from then on the leader replicates to the servers
//!    of both halves and counts both majorities.
//! 2. Once C_old,new commits, the leader appends C_new
//!    ([`Server::leave_joint_config`], inside the commit rule): also a new
//!    leader that finds a committed joint configuration, so that no change
//!    is left half done.
//! 3. Once C_new commits, a leader that is not in it steps down
//!    ([`Server::step_down_if_removed`]); it has led the cluster until then
//!    without counting itself (dissertation §4.2.2).
//!
//! The rules that make this safe, each checked by the checker:
//! - a leader proposes a change only once an entry of its own term has
//!   committed (Ongaro's fix on raft-dev, 2015): every change an earlier
//!   leader left in some log is then either committed or dead, so changes
//!   never overlap across terms (property `SingleUncommittedChange`);
//! - at most one change at a time: none while the configuration is joint or
//!   its entry is not yet committed (properties `SingleUncommittedChange`
//!   and `QuorumsIntersect`);
//! - no change while a leadership transfer is under way, and no transfer
//!   while a change is pending (`TransferNotDuringChange`): the transferee
//!   might not be a voter of the configuration that is about to take over;
//! - a server that is not a voter of its configuration does not campaign
//!   (`Server::may_time_out`), and snapshots carry the configuration in
//!   force at their last index, which InstallSnapshot adopts.
//!
//! Learners (`ChangeLearners`): non-voting members the leader replicates
//! to, whose acknowledgements count in no quorum (property
//! `LearnersNeverDecide`); the operator adds one, lets it catch up, and
//! promotes it with a `ChangeConfig` naming it, which takes it out of the
//! learners in the same joint configuration.
//!
//! A server's configuration is a function of its log and snapshot
//! ([`Server::config_of_log`]); the field `config` caches it, refreshed
//! whenever the log changes, and [`Server::step`] asserts that the two agree.

use imbl::OrdSet;

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::refused::{ConfigChangeError, NotLeader, Refused};
use crate::server::{Role, Server};
use crate::types::{Config, Entry, Index, NodeId, Payload};

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `ChangeConfig`: the leader starts changing its configuration to
    /// `members` by appending the joint configuration C_old,new, which takes
    /// effect at once. Refused (nothing changes) at a server that is not the
    /// leader, during a leadership transfer, for an empty or unchanged set,
    /// before an entry of the leader's term has committed, and while another
    /// change is pending. Replication happens on the next
    /// `send_append_entries`, as for a client request.
    pub fn change_config(&mut self, members: OrdSet<NodeId>) -> Result<Effects<C, S>, Refused> {
        self.may_propose_a_change()?;
        if members.is_empty() {
            return Err(Refused::ConfigChange(ConfigChangeError::NoMembers));
        }
        if !self.config.is_joint() && self.config.members == members {
            return Err(Refused::ConfigChange(ConfigChangeError::Unchanged));
        }
        if !self.committed_in_term() && !self.bugs.has(Bug::ChangeBeforeTermCommit) {
            return Err(Refused::ConfigChange(ConfigChangeError::TermNotCommitted));
        }
        if self.config_change_pending() && !self.bugs.has(Bug::ConcurrentConfigChanges) {
            return Err(Refused::ConfigChange(ConfigChangeError::Pending));
        }
        let mut effects = Effects::default();
        let joint = self.config.change_to(members);
        self.append_config(joint, &mut effects);
        // A cluster of one whose change keeps it alone commits at once.
        self.advance_commit_index(&mut effects);
        Ok(effects)
    }

    /// Spec `ChangeLearners`: the leader replaces its configuration's
    /// learners with `learners`, appending a simple configuration with the
    /// same voters, which takes effect at once (it starts or stops
    /// replicating to them). A learner set changes no quorum, so no joint
    /// stage is needed; it is still a configuration change, refused under
    /// the same rules as `ChangeConfig` (one change at a time, only after an
    /// own-term commit, not during a transfer), and for a learner that is a
    /// voter. A learner becomes a voter through `ChangeConfig`.
    pub fn change_learners(&mut self, learners: OrdSet<NodeId>) -> Result<Effects<C, S>, Refused> {
        self.may_propose_a_change()?;
        if let Some(voter) = learners.iter().find(|id| self.config.contains(**id)) {
            return Err(Refused::ConfigChange(ConfigChangeError::LearnerIsVoter(
                *voter,
            )));
        }
        if !self.config.is_joint() && self.config.learners == learners {
            return Err(Refused::ConfigChange(ConfigChangeError::Unchanged));
        }
        if !self.committed_in_term() {
            return Err(Refused::ConfigChange(ConfigChangeError::TermNotCommitted));
        }
        if self.config_change_pending() {
            return Err(Refused::ConfigChange(ConfigChangeError::Pending));
        }
        let mut effects = Effects::default();
        let config = self.config.with_learners(learners);
        self.append_config(config, &mut effects);
        // A leader alone among the voters commits it at once.
        self.advance_commit_index(&mut effects);
        Ok(effects)
    }

    /// The refusals every configuration change shares, checked first: only
    /// the leader proposes one, and not while it hands leadership over (the
    /// transferee might not be a voter of the configuration about to take
    /// over).
    fn may_propose_a_change(&self) -> Result<(), Refused> {
        if !self.is_leader() {
            return Err(Refused::NotLeader(NotLeader {
                leader_hint: self.leader_id,
            }));
        }
        if let Some(transferee) = self.lead_transferee {
            return Err(Refused::Transferring { transferee });
        }
        Ok(())
    }

    /// Has this leader committed an entry of its own term? (Then its commit
    /// index covers every entry committed before it took office.)
    pub(crate) fn committed_in_term(&self) -> bool {
        self.log.term_at(self.commit_index) == Some(self.current_term)
    }

    /// Is a configuration change under way: joint, or the latest
    /// configuration entry not yet known committed?
    pub fn config_change_pending(&self) -> bool {
        self.config.is_joint() || self.config_of_log().1 > self.commit_index
    }

    /// The configuration a log and snapshot define, with the index of the
    /// entry that carries it: the latest configuration entry in the log, or
    /// the snapshot's configuration (at the snapshot's index) when the log
    /// holds none.
    pub fn config_of_log(&self) -> (Config, Index) {
        self.config_at(self.log.last_index())
    }

    /// The configuration in force at `index` (at most the last index, at
    /// least the snapshot's): the latest configuration entry at or below
    /// it, or the snapshot's. A snapshot the driver takes at `index` carries
    /// this configuration.
    pub fn config_at(&self, index: Index) -> (Config, Index) {
        let mut n = index.min(self.log.last_index());
        while n > self.log.snapshot_index {
            if let Some(config) = self.log.entry(n).and_then(Entry::config) {
                return (config.clone(), n);
            }
            n -= 1;
        }
        (self.snapshot.meta.config.clone(), self.log.snapshot_index)
    }

    /// The log changed other than by appending a non-configuration entry:
    /// the configuration is again the latest one in the log.
    pub(crate) fn refresh_config(&mut self) {
        self.config = self.config_of_log().0;
    }

    /// The leader appends a configuration entry of its term, which takes
    /// effect at once: it starts replicating to the servers it adds (from
    /// the new entry on, backing off as for any peer) and stops tracking
    /// those it drops.
    fn append_config(&mut self, config: Config, effects: &mut Effects<C, S>) {
        debug_assert!(self.is_leader());
        let index = self.leader_append(Payload::Config(config.clone()), effects);
        self.config = config;
        let peers: OrdSet<NodeId> = self.config.replicas(self.id).collect();
        self.next_index = peers
            .iter()
            .map(|p| (*p, self.next_index.get(p).copied().unwrap_or(index)))
            .collect();
        self.match_index = peers
            .iter()
            .map(|p| (*p, self.match_index.get(p).copied().unwrap_or(0)))
            .collect();
    }

    /// The spec's `LeaveJointConfig`, run by the commit rule: a leader whose
    /// joint configuration C_old,new has committed appends C_new. A new
    /// leader that inherits a committed joint configuration does so as soon
    /// as it knows it committed, with or without an entry of its own term
    /// committed: the joint entry is in every later leader's log.
    /// Says whether it appended.
    pub(crate) fn leave_joint_config(&mut self, effects: &mut Effects<C, S>) -> bool {
        if self.role != Role::Leader || !self.config.is_joint() {
            return false;
        }
        let (joint, index) = self.config_of_log();
        if index > self.commit_index {
            return false;
        }
        self.append_config(joint.new_half(), effects);
        true
    }

    /// The spec's `StepDownIfRemoved`, run by the commit rule: a leader that
    /// is not in its (simple) configuration steps down once that
    /// configuration has committed. Until then it led without counting
    /// itself. It knows no leader: the next one comes from C_new, and it will
    /// not campaign, not being a voter.
    pub(crate) fn step_down_if_removed(&mut self, effects: &mut Effects<C, S>) {
        if self.role != Role::Leader
            || self.config.contains(self.id)
            || self.bugs.has(Bug::RemovedLeaderKeepsLeading)
        {
            return;
        }
        if self.config_of_log().1 <= self.commit_index {
            self.become_follower(effects);
            self.leader_id = None;
        }
    }
}
