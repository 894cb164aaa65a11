//! The event loop's side of membership changes (issue 15): starting a
//! change at the leader, answering once it is done, keeping the peer
//! senders and the address book in step with the configuration in force,
//! and saying so when this node joins or leaves the configuration.
//!
//! The core decides everything about the change itself (joint consensus,
//! its refusals, leaving the joint configuration, a removed leader stepping
//! down: `raft_model::Server::change_config`; learners:
//! `raft_model::Server::change_learners`); this file only feeds it
//! `Step::ChangeConfig` or `Step::ChangeLearners` and watches the outcome.

use std::sync::Arc;

use imbl::OrdSet;
use raft_model::{NodeId, Step};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{EventLoop, PendingChange, Ready};
use crate::kv::KvCommand;
use crate::members::{self, Directory};
use crate::types::{ClientError, MemberList, MembersChanged};

/// What a membership change changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// The voters, through the joint configuration (`Step::ChangeConfig`).
    Voters(OrdSet<NodeId>),
    /// The learners, in one simple configuration (`Step::ChangeLearners`).
    Learners(OrdSet<NodeId>),
}

impl Target {
    fn step(&self) -> Step<KvCommand, crate::kv::KvImage, crate::convert::Msg> {
        match self {
            Target::Voters(members) => Step::ChangeConfig(members.clone()),
            Target::Learners(learners) => Step::ChangeLearners(learners.clone()),
        }
    }

    fn servers(&self) -> &OrdSet<NodeId> {
        match self {
            Target::Voters(ids) | Target::Learners(ids) => ids,
        }
    }
}

impl EventLoop {
    /// Starts changing the voters or the learners (the leader only).
    ///
    /// The core's refusal is found first on a copy of the core (an O(1)
    /// clone: imbl), so that nothing is appended for a change it refuses.
    /// Then, in this one batch: an address command for every member whose
    /// address the replicated book lacks (crate::members), and
    /// `ChangeConfig`, which appends C_old,new. The answer waits for C_new
    /// to commit ([`Self::settle_change`]).
    pub(super) fn change_members(
        &mut self,
        target: Target,
        new_addresses: Vec<members::MemberAddress>,
        reply: oneshot::Sender<Result<MembersChanged, ClientError>>,
        ready: &mut Ready,
    ) {
        if self.change.is_some() {
            let _ = reply.send(Err(ClientError::ConfigChange(
                raft_model::ConfigChangeError::Pending,
            )));
            return;
        }
        let mut trial = self.core.clone();
        if let Err(refused) = trial.step(target.step()) {
            let _ = reply.send(Err(ClientError::refused(refused)));
            return;
        }
        let replicated = members::replicated(&self.image, self.core.log(), self.applied);
        let commands = match members::addresses_to_replicate(
            target.servers().iter().copied(),
            &self.addresses,
            &replicated,
            &new_addresses,
        ) {
            Ok(commands) => commands,
            Err(id) => {
                let _ = reply.send(Err(ClientError::Invalid(format!(
                    "the address of node {id} is not known: add a new member with its address"
                ))));
                return;
            }
        };
        for record in commands {
            match self.step(Step::ClientRequest(record.command())) {
                Ok(effects) => ready.absorb(effects),
                Err(refused) => {
                    // The trial says the leader accepts requests.
                    let _ = reply.send(Err(ClientError::refused(refused)));
                    return;
                }
            }
        }
        let old = self.core.config().clone();
        match self.step(target.step()) {
            Ok(effects) => {
                let joint_index = self.core.log().last_index();
                match &target {
                    Target::Voters(members) => info!(
                        old = ?old.members.iter().collect::<Vec<_>>(),
                        new = ?members.iter().collect::<Vec<_>>(),
                        index = joint_index,
                        term = self.core.current_term(),
                        "membership change started: the joint configuration is appended"
                    ),
                    Target::Learners(learners) => info!(
                        old = ?old.learners.iter().collect::<Vec<_>>(),
                        new = ?learners.iter().collect::<Vec<_>>(),
                        index = joint_index,
                        term = self.core.current_term(),
                        "learner change started: the configuration is appended"
                    ),
                }
                ready.absorb(effects);
                ready.replicate = true;
                // The new members' senders start with this batch.
                self.refresh_members();
                self.change = Some(PendingChange {
                    target,
                    term: self.core.current_term(),
                    joint_index,
                    reply,
                });
            }
            Err(refused) => {
                let _ = reply.send(Err(ClientError::refused(refused)));
            }
        }
    }

    /// Answers the change's requester once it has an outcome: C_new (a
    /// simple configuration of the requested members, after the joint one)
    /// has committed — also at a removed leader, which has stepped down by
    /// then; or this node lost leadership first, and the change's fate is
    /// the next leader's (it finishes a committed joint configuration).
    pub(super) fn settle_change(&mut self) {
        let Some(change) = &self.change else {
            return;
        };
        let (config, index) = self.core.config_at(self.core.commit_index());
        let done = !config.is_joint()
            && match &change.target {
                Target::Voters(members) => index > change.joint_index && config.members == *members,
                Target::Learners(learners) => {
                    index >= change.joint_index && config.learners == *learners
                }
            };
        let outcome = if done {
            let members: Vec<NodeId> = config.members.iter().copied().collect();
            let learners: Vec<NodeId> = config.learners.iter().copied().collect();
            info!(?members, ?learners, index, "membership change committed");
            Ok(MembersChanged {
                members,
                learners,
                index,
                term: self.core.current_term(),
            })
        } else if self.core.current_term() != change.term || !self.core.is_leader() {
            warn!(
                term = self.core.current_term(),
                leader = ?self.core.leader_id(),
                "leadership changed during a membership change; its outcome is the next leader's"
            );
            Err(ClientError::Retry(
                "leadership changed during the membership change: it may still complete \
                 (the next leader finishes a committed joint configuration); check with \
                 `member list` before retrying"
                    .into(),
            ))
        } else {
            return;
        };
        if let Some(change) = self.change.take() {
            let _ = change.reply.send(outcome);
        }
    }

    /// After every batch: the address book from the config file and the
    /// replicated addresses, the peer senders for exactly the voters of the
    /// configuration in force, the directory the services read, and a log
    /// line when this node enters or leaves the configuration — all skipped
    /// when nothing they are made from changed (`MembersInputs`).
    pub(super) fn refresh_members(&mut self) {
        let config_index = self.config_index.get(&self.core);
        let committed = config_index <= self.core.commit_index();
        if !self.members_inputs.changed(
            &self.image,
            self.core.log(),
            self.applied,
            self.core.config(),
            config_index,
            committed,
        ) {
            // Nothing it reads has changed: the book, the senders and the
            // directory stand (crate::node::members_inputs).
            #[cfg(debug_assertions)]
            {
                let book = members::derive(
                    &self.config.members,
                    &self.image,
                    self.core.log(),
                    self.applied,
                );
                assert!(
                    book.addresses == self.addresses && book.incarnations == self.incarnations,
                    "the address book changed while its inputs did not"
                );
            }
            return;
        }
        let book = members::derive(
            &self.config.members,
            &self.image,
            self.core.log(),
            self.applied,
        );
        self.addresses = book.addresses;
        self.incarnations = book.incarnations;
        let config = self.core.config().clone();
        let me = self.core.id();
        let mut targets = members::Addresses::new();
        // Learners too: a leader replicates to them (`Config::replicas`).
        for peer in config.replicas(me) {
            match self.addresses.get(&peer) {
                Some(address) => {
                    targets.insert(peer, address.clone());
                }
                None => warn!(
                    peer,
                    "a voter or learner whose address this node does not know: nothing is sent to it"
                ),
            }
        }
        self.peers.update(&targets);
        let member = config.contains(me);
        match (self.was_member, member) {
            (None, false) if config.voters().next().is_none() => info!(
                "this node knows no configuration yet (it was initialised to join a cluster): \
                 it will not campaign, and waits for the leader to add it \
                 (`raft-node client member add --id {me} --address ...`)"
            ),
            (None, false) | (Some(true), false) if !config.is_learner(me) => warn!(
                members = ?config.voters().collect::<Vec<_>>(),
                "this node is not a member of its configuration (it was removed): it will \
                 not campaign and takes no part in decisions; stop it, and remove its data \
                 directory before reusing the machine"
            ),
            (Some(false), true) => info!(
                members = ?config.voters().collect::<Vec<_>>(),
                "this node is now a member of the configuration"
            ),
            _ => {}
        }
        let learner = config.is_learner(me);
        if learner != self.was_learner {
            if learner {
                info!(
                    members = ?config.voters().collect::<Vec<_>>(),
                    "this node is a learner: it receives the log and takes no part in votes or \
                     commits until promoted (`raft-node client member promote --id {me}`)"
                );
            }
            self.was_learner = learner;
        }
        self.was_member = Some(member);
        let directory = Directory {
            config: Some(config),
            config_index,
            committed,
            addresses: self.addresses.clone(),
            incarnations: self.incarnations.clone(),
        };
        self.directory.send_if_modified(|published| {
            let changed = published.config != directory.config
                || published.config_index != directory.config_index
                || published.committed != directory.committed
                || published.addresses != directory.addresses
                || published.incarnations != directory.incarnations;
            if changed {
                *published = Arc::new(directory);
            }
            changed
        });
    }

    /// A peer's reply carried an incarnation the replicated book does not
    /// record for it: a starting member (config files hold addresses only),
    /// or a server added while it did not answer its status. The leader
    /// records the first incarnation it hears from each voter and learner,
    /// and its own, as address records in the log (crate::incarnation);
    /// from then on every server holds them to it. Followers ignore it; a
    /// refused append (a transfer under way) is retried at the sender's
    /// next report.
    pub(super) fn record_incarnation(
        &mut self,
        peer: NodeId,
        incarnation: String,
        ready: &mut Ready,
    ) {
        let me = self.core.id();
        let config = self.core.config();
        if !self.core.is_leader() || !config.servers().any(|id| id == peer) {
            return;
        }
        let mut records = Vec::new();
        for (id, incarnation) in [(peer, incarnation), (me, self.config.incarnation.clone())] {
            if incarnation.is_empty() || self.incarnations.contains_key(&id) {
                continue;
            }
            let Some(address) = self.addresses.get(&id) else {
                continue;
            };
            records.push(members::MemberAddress {
                id,
                address: address.clone(),
                incarnation,
            });
        }
        for record in records {
            let (id, incarnation) = (record.id, record.incarnation.clone());
            match self.step(Step::ClientRequest(record.command())) {
                Ok(effects) => {
                    info!(
                        node = id,
                        %incarnation,
                        index = self.core.log().last_index(),
                        "recording this member's incarnation: from now on its peers refuse any \
                         other server under its id"
                    );
                    ready.absorb(effects);
                    ready.replicate = true;
                }
                Err(refused) => {
                    tracing::debug!(node = id, ?refused, "incarnation not recorded now");
                    return;
                }
            }
        }
        self.refresh_members();
    }

    /// A member answered our vote request saying that the cluster's
    /// committed configuration, beyond our log, does not include us: this
    /// server was removed while the leader no longer replicated to it (it
    /// stops once C_new is appended), so its own log still holds the joint
    /// configuration and the core lets it ask for (pre-)votes, which the
    /// members refuse. Said once, as a warning.
    pub(super) fn told_not_a_member(&mut self, from: NodeId, detail: &str) {
        if self.told_removed {
            return;
        }
        self.told_removed = true;
        warn!(
            by = from,
            %detail,
            "this node was removed from the cluster: its requests for votes are refused and it \
             takes no part in decisions; stop it, and remove its data directory before reusing \
             the machine"
        );
    }

    /// The configuration in force and every voter's address.
    pub(super) fn member_list(&self) -> MemberList {
        let config = self.core.config();
        let (_, config_index) = self.core.config_of_log();
        MemberList {
            id: self.core.id(),
            term: self.core.current_term(),
            leader: self.core.leader_id(),
            members: config.members.iter().copied().collect(),
            old_members: config.old.iter().flatten().copied().collect(),
            learners: config.learners.iter().copied().collect(),
            learner_matched: config
                .learners
                .iter()
                .filter_map(|id| Some((*id, *self.core.match_index().get(id)?)))
                .collect(),
            last_index: self.core.log().last_index(),
            config_index,
            committed: config_index <= self.core.commit_index(),
            addresses: config
                .servers()
                .filter_map(|id| Some((id, self.addresses.get(&id)?.clone())))
                .collect(),
        }
    }
}
