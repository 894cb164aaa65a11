//! The one list of the spec's actions.
//!
//! [`Action`] names every action of spec/Raft.tla's `Next` that a server
//! takes; [`Step`] is one such action together with its input, and
//! [`Server::step`] dispatches it to the transition function of the same
//! name. The checker's actions, the trace format and the node's calls into
//! the core are all `Step`s, so adding an action (a variant here, a function
//! in `actions/`, a disjunct in the spec) is the whole change: the checker
//! enumerates it, the node calls it and the trace records it through this
//! one type.
//!
//! The network's own actions (a message lost or duplicated) are not here:
//! they change no server, only the checker's model of the network.

use std::borrow::Borrow;

use imbl::OrdSet;
use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::bugs::Bug;
use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::refused::Refused;
use crate::server::{Role, Server};
use crate::types::{Index, NodeId, Term};

/// One spec action with its input: what a driver feeds [`Server::step`].
///
/// `M` is how the received message is held: owned (the node, the trace
/// validator) or shared (`Arc<Message>`, the checker's network); anything
/// that borrows as a [`Message`] will do. A trace records a step with the
/// message stripped of commands and the snapshot image (`M` = a message of
/// `()` commands, `S` = `()`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step<C, S, M> {
    /// The election timer fired.
    Timeout,
    /// The heartbeat is due, or new entries wait to be sent.
    SendAppendEntries,
    /// A client command for the log.
    ClientRequest(C),
    /// A linearizable read, identified by the driver's id.
    ReadIndex(u64),
    HandleRequestVoteRequest(M),
    HandleRequestVoteResponse(M),
    HandleAppendEntriesRequest(M),
    HandleAppendEntriesResponse(M),
    HandleInstallSnapshotRequest(M),
    HandleInstallSnapshotResponse(M),
    /// The state machine applied entries up to `index`; `data` is its image.
    CompactLog {
        index: Index,
        data: S,
    },
    /// The server crashed and came back with its persistent state.
    Restart,
    /// The leader's election timer fired: it checks that a quorum answered
    /// within that timeout (CheckQuorum).
    CheckQuorum,
    /// The operator asks the leader to hand leadership to this peer
    /// (dissertation §3.10).
    TransferLeadership(NodeId),
    HandleTimeoutNow(M),
    /// The leader's election timer fired with a transfer under way: the
    /// transfer failed within an election timeout and is given up.
    AbortTransfer,
    /// The operator asks the leader to change the configuration to these
    /// members, through the joint configuration (dissertation ch. 4).
    ChangeConfig(OrdSet<NodeId>),
    /// The operator asks the leader to make these servers the learners
    /// (non-voting members) of its configuration.
    ChangeLearners(OrdSet<NodeId>),
    /// The driver's write of the server's own log, up to entry `index` of
    /// term `term`, is durable: a leader's parallel write
    /// (`Effects::parallel_log_from`) completed.
    LogPersisted {
        index: Index,
        term: Term,
    },
}

impl<C, S, M> Step<C, S, M> {
    /// The action this step takes.
    pub fn action(&self) -> Action {
        match self {
            Step::Timeout => Action::Timeout,
            Step::SendAppendEntries => Action::SendAppendEntries,
            Step::ClientRequest(_) => Action::ClientRequest,
            Step::ReadIndex(_) => Action::ReadIndex,
            Step::HandleRequestVoteRequest(_) => Action::HandleRequestVoteRequest,
            Step::HandleRequestVoteResponse(_) => Action::HandleRequestVoteResponse,
            Step::HandleAppendEntriesRequest(_) => Action::HandleAppendEntriesRequest,
            Step::HandleAppendEntriesResponse(_) => Action::HandleAppendEntriesResponse,
            Step::HandleInstallSnapshotRequest(_) => Action::HandleInstallSnapshotRequest,
            Step::HandleInstallSnapshotResponse(_) => Action::HandleInstallSnapshotResponse,
            Step::CompactLog { .. } => Action::CompactLog,
            Step::Restart => Action::Restart,
            Step::CheckQuorum => Action::CheckQuorum,
            Step::TransferLeadership(_) => Action::TransferLeadership,
            Step::HandleTimeoutNow(_) => Action::HandleTimeoutNow,
            Step::AbortTransfer => Action::AbortTransfer,
            Step::ChangeConfig(_) => Action::ChangeConfig,
            Step::ChangeLearners(_) => Action::ChangeLearners,
            Step::LogPersisted { .. } => Action::LogPersisted,
        }
    }

    /// The message a handler step receives.
    pub fn message(&self) -> Option<&M> {
        match self {
            Step::HandleRequestVoteRequest(m)
            | Step::HandleRequestVoteResponse(m)
            | Step::HandleAppendEntriesRequest(m)
            | Step::HandleAppendEntriesResponse(m)
            | Step::HandleInstallSnapshotRequest(m)
            | Step::HandleInstallSnapshotResponse(m)
            | Step::HandleTimeoutNow(m) => Some(m),
            _ => None,
        }
    }

    /// The step borrowed: its command, image and message by reference (a
    /// trace records a step, stripped, before the core consumes it).
    pub fn as_ref(&self) -> Step<&C, &S, &M> {
        match self {
            Step::Timeout => Step::Timeout,
            Step::SendAppendEntries => Step::SendAppendEntries,
            Step::ClientRequest(c) => Step::ClientRequest(c),
            Step::ReadIndex(id) => Step::ReadIndex(*id),
            Step::HandleRequestVoteRequest(m) => Step::HandleRequestVoteRequest(m),
            Step::HandleRequestVoteResponse(m) => Step::HandleRequestVoteResponse(m),
            Step::HandleAppendEntriesRequest(m) => Step::HandleAppendEntriesRequest(m),
            Step::HandleAppendEntriesResponse(m) => Step::HandleAppendEntriesResponse(m),
            Step::HandleInstallSnapshotRequest(m) => Step::HandleInstallSnapshotRequest(m),
            Step::HandleInstallSnapshotResponse(m) => Step::HandleInstallSnapshotResponse(m),
            Step::CompactLog { index, data } => Step::CompactLog {
                index: *index,
                data,
            },
            Step::Restart => Step::Restart,
            Step::CheckQuorum => Step::CheckQuorum,
            Step::TransferLeadership(target) => Step::TransferLeadership(*target),
            Step::HandleTimeoutNow(m) => Step::HandleTimeoutNow(m),
            Step::AbortTransfer => Step::AbortTransfer,
            Step::ChangeConfig(members) => Step::ChangeConfig(members.clone()),
            Step::ChangeLearners(learners) => Step::ChangeLearners(learners.clone()),
            Step::LogPersisted { index, term } => Step::LogPersisted {
                index: *index,
                term: *term,
            },
        }
    }

    /// The same step with its command, image and message passed through the
    /// given functions (a trace strips them; a validator restores them).
    pub fn map<C2, S2, M2>(
        self,
        command: impl FnOnce(C) -> C2,
        data: impl FnOnce(S) -> S2,
        message: impl FnOnce(M) -> M2,
    ) -> Step<C2, S2, M2> {
        match self {
            Step::Timeout => Step::Timeout,
            Step::SendAppendEntries => Step::SendAppendEntries,
            Step::ClientRequest(c) => Step::ClientRequest(command(c)),
            Step::ReadIndex(id) => Step::ReadIndex(id),
            Step::HandleRequestVoteRequest(m) => Step::HandleRequestVoteRequest(message(m)),
            Step::HandleRequestVoteResponse(m) => Step::HandleRequestVoteResponse(message(m)),
            Step::HandleAppendEntriesRequest(m) => Step::HandleAppendEntriesRequest(message(m)),
            Step::HandleAppendEntriesResponse(m) => Step::HandleAppendEntriesResponse(message(m)),
            Step::HandleInstallSnapshotRequest(m) => Step::HandleInstallSnapshotRequest(message(m)),
            Step::HandleInstallSnapshotResponse(m) => {
                Step::HandleInstallSnapshotResponse(message(m))
            }
            Step::CompactLog { index, data: d } => Step::CompactLog {
                index,
                data: data(d),
            },
            Step::Restart => Step::Restart,
            Step::CheckQuorum => Step::CheckQuorum,
            Step::TransferLeadership(target) => Step::TransferLeadership(target),
            Step::HandleTimeoutNow(m) => Step::HandleTimeoutNow(message(m)),
            Step::AbortTransfer => Step::AbortTransfer,
            Step::ChangeConfig(members) => Step::ChangeConfig(members),
            Step::ChangeLearners(learners) => Step::ChangeLearners(learners),
            Step::LogPersisted { index, term } => Step::LogPersisted { index, term },
        }
    }

    /// The handler step for a received message: the variant is chosen by
    /// the message's kind, so a step never pairs a handler with a message of
    /// another kind.
    pub fn receive<C2: Clone, S2>(message: M) -> Self
    where
        M: Borrow<Message<C2, S2>>,
    {
        match message.borrow().body {
            Body::RequestVoteRequest { .. } => Step::HandleRequestVoteRequest(message),
            Body::RequestVoteResponse { .. } => Step::HandleRequestVoteResponse(message),
            Body::AppendEntriesRequest { .. } => Step::HandleAppendEntriesRequest(message),
            Body::AppendEntriesResponse { .. } => Step::HandleAppendEntriesResponse(message),
            Body::InstallSnapshotRequest { .. } => Step::HandleInstallSnapshotRequest(message),
            Body::InstallSnapshotResponse { .. } => Step::HandleInstallSnapshotResponse(message),
            Body::TimeoutNow {} => Step::HandleTimeoutNow(message),
        }
    }
}

impl<C: Clone, S: Clone> Server<C, S> {
    /// Takes one spec action: dispatches `step` to the transition function
    /// of the same name and returns its effects. A refused step changes
    /// nothing.
    ///
    /// Checks, after every step, the invariants drivers rely on: the term
    /// never decreases; the commit index never decreases but at a restart
    /// (it is volatile); the snapshot never goes backwards; and the commit
    /// index lies between the snapshot and the log's end. Seeded bugs break
    /// some of these on purpose, and then the checker's properties speak.
    pub fn step<M: Borrow<Message<C, S>>>(
        &mut self,
        step: Step<C, S, M>,
    ) -> Result<Effects<C, S>, Refused> {
        let (term, commit, snapshot) = (
            self.current_term,
            self.commit_index,
            self.log.snapshot_index,
        );
        let restart = matches!(step, Step::Restart);
        let answered = step
            .message()
            .map(|m| m.borrow())
            .filter(|m| m.body.is_response())
            .map(|m| (m.from, m.term));
        let result = self.dispatch(step);
        if let (Ok(_), Some((peer, term))) = (&result, answered) {
            self.record_activity(peer, term);
        }
        assert!(
            self.current_term >= term,
            "term went back from {term} to {}",
            self.current_term
        );
        // What a restart keeps: the snapshot is always durable, and only a
        // leader writing in parallel has entries its storage may lack.
        assert!(
            self.log.snapshot_index <= self.durable_index
                && self.durable_index <= self.log.last_index(),
            "durable index {} outside the log [{}, {}]",
            self.durable_index,
            self.log.snapshot_index,
            self.log.last_index()
        );
        assert!(
            (self.is_leader() && self.parallel_write)
                || self.durable_index == self.log.last_index(),
            "a {:?} (parallel writes {}) speaks with entries {}..={} not durable",
            self.role,
            self.parallel_write,
            self.durable_index + 1,
            self.log.last_index()
        );
        if !self.bugs.any() {
            assert!(
                restart || self.commit_index >= commit,
                "commit index went back from {commit} to {}",
                self.commit_index
            );
            assert!(
                self.log.snapshot_index >= snapshot,
                "snapshot went back from {snapshot} to {}",
                self.log.snapshot_index
            );
            // Spec `CandidateKnowsNoLeader`: an election timeout forgot the
            // leader, and hearing from one ends a (pre-)candidacy.
            assert!(
                !matches!(self.role, Role::Candidate | Role::PreCandidate)
                    || self.leader_id.is_none(),
                "a {:?} knows leader {:?}",
                self.role,
                self.leader_id
            );
            // The configuration is the log's latest (dissertation §4.1).
            debug_assert_eq!(
                self.config,
                self.config_of_log().0,
                "the configuration is not the log's latest"
            );
            debug_assert!(
                self.log.snapshot_index <= self.commit_index
                    && self.commit_index <= self.log.last_index(),
                "commit index {} outside the log [{}, {}]",
                self.commit_index,
                self.log.snapshot_index,
                self.log.last_index()
            );
        }
        result
    }

    fn dispatch<M: Borrow<Message<C, S>>>(
        &mut self,
        step: Step<C, S, M>,
    ) -> Result<Effects<C, S>, Refused> {
        if let Some(message) = step.message() {
            let message = message.borrow();
            let action = step.action();
            if Action::receiving(&message.body) != action {
                return Err(Refused::WrongKind {
                    action,
                    kind: message.body.kind(),
                });
            }
            if !self.accepts(message) {
                return Err(Refused::Misaddressed);
            }
        }
        match step {
            Step::Timeout if !self.may_time_out() => Err(Refused::NotEnabled(Action::Timeout)),
            Step::Timeout => Ok(self.timeout()),
            Step::SendAppendEntries if !self.is_leader() => {
                Err(Refused::NotEnabled(Action::SendAppendEntries))
            }
            Step::SendAppendEntries => Ok(self.send_append_entries()),
            Step::ClientRequest(_)
                if self.is_leader()
                    && self.lead_transferee.is_some()
                    && !self.bugs.has(Bug::TransferAcceptsProposals) =>
            {
                Err(Refused::Transferring {
                    transferee: self.lead_transferee.unwrap_or(self.id),
                })
            }
            Step::ClientRequest(command) => self
                .client_request(command)
                .map(|(_, effects)| effects)
                .map_err(Refused::NotLeader),
            Step::ReadIndex(id) => self.read_index(id).map_err(Refused::NotLeader),
            Step::HandleRequestVoteRequest(m) => Ok(self.handle_request_vote_request(m.borrow())),
            Step::HandleRequestVoteResponse(m) => Ok(self.handle_request_vote_response(m.borrow())),
            Step::HandleAppendEntriesRequest(m) => {
                Ok(self.handle_append_entries_request(m.borrow()))
            }
            Step::HandleAppendEntriesResponse(m) => {
                Ok(self.handle_append_entries_response(m.borrow()))
            }
            Step::HandleInstallSnapshotRequest(m) => {
                Ok(self.handle_install_snapshot_request(m.borrow()))
            }
            Step::HandleInstallSnapshotResponse(m) => {
                Ok(self.handle_install_snapshot_response(m.borrow()))
            }
            Step::CompactLog { index, data } => {
                self.compact_log(index, data).map_err(Refused::Compact)
            }
            Step::Restart => Ok(self.restart()),
            Step::CheckQuorum if !(self.is_leader() && self.check_quorum) => {
                Err(Refused::NotEnabled(Action::CheckQuorum))
            }
            Step::CheckQuorum => Ok(self.check_quorum()),
            Step::TransferLeadership(target) => self.transfer_leadership(target),
            Step::HandleTimeoutNow(m) => Ok(self.handle_timeout_now(m.borrow())),
            Step::AbortTransfer if !(self.is_leader() && self.lead_transferee.is_some()) => {
                Err(Refused::NotEnabled(Action::AbortTransfer))
            }
            Step::AbortTransfer => Ok(self.abort_transfer()),
            Step::ChangeConfig(members) => self.change_config(members),
            Step::ChangeLearners(learners) => self.change_learners(learners),
            Step::LogPersisted { index, term } => self.log_persisted(index, term),
        }
    }
}
