//! The spec's actions, named as in spec/Raft.tla. Each one (except the
//! network's DropMessage) is carried out by the raft-model function of the
//! same name in snake_case.

use std::fmt;

use raft_model::{Body, NodeId};

use crate::describe;
use crate::state::{Msg, SharedMsg};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Timeout(NodeId),
    SendAppendEntries(NodeId),
    ClientRequest(NodeId),
    CompactLog(NodeId),
    Restart(NodeId),
    HandleRequestVoteRequest(SharedMsg),
    HandleRequestVoteResponse(SharedMsg),
    HandleAppendEntriesRequest(SharedMsg),
    HandleAppendEntriesResponse(SharedMsg),
    HandleInstallSnapshotRequest(SharedMsg),
    HandleInstallSnapshotResponse(SharedMsg),
    DropMessage(SharedMsg),
}

impl Action {
    /// The action that delivers `message` to its addressee: the handler for
    /// its kind.
    pub fn deliver(message: SharedMsg) -> Action {
        match message.body {
            Body::RequestVoteRequest { .. } => Action::HandleRequestVoteRequest(message),
            Body::RequestVoteResponse { .. } => Action::HandleRequestVoteResponse(message),
            Body::AppendEntriesRequest { .. } => Action::HandleAppendEntriesRequest(message),
            Body::AppendEntriesResponse { .. } => Action::HandleAppendEntriesResponse(message),
            Body::InstallSnapshotRequest { .. } => Action::HandleInstallSnapshotRequest(message),
            Body::InstallSnapshotResponse { .. } => Action::HandleInstallSnapshotResponse(message),
        }
    }

    /// The spec's name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Timeout(_) => "Timeout",
            Action::SendAppendEntries(_) => "SendAppendEntries",
            Action::ClientRequest(_) => "ClientRequest",
            Action::CompactLog(_) => "CompactLog",
            Action::Restart(_) => "Restart",
            Action::HandleRequestVoteRequest(_) => "HandleRequestVoteRequest",
            Action::HandleRequestVoteResponse(_) => "HandleRequestVoteResponse",
            Action::HandleAppendEntriesRequest(_) => "HandleAppendEntriesRequest",
            Action::HandleAppendEntriesResponse(_) => "HandleAppendEntriesResponse",
            Action::HandleInstallSnapshotRequest(_) => "HandleInstallSnapshotRequest",
            Action::HandleInstallSnapshotResponse(_) => "HandleInstallSnapshotResponse",
            Action::DropMessage(_) => "DropMessage",
        }
    }

    /// The server whose state the action changes (none for DropMessage).
    pub fn server(&self) -> Option<NodeId> {
        match self {
            Action::Timeout(id)
            | Action::SendAppendEntries(id)
            | Action::ClientRequest(id)
            | Action::CompactLog(id)
            | Action::Restart(id) => Some(*id),
            Action::DropMessage(_) => None,
            Action::HandleRequestVoteRequest(m)
            | Action::HandleRequestVoteResponse(m)
            | Action::HandleAppendEntriesRequest(m)
            | Action::HandleAppendEntriesResponse(m)
            | Action::HandleInstallSnapshotRequest(m)
            | Action::HandleInstallSnapshotResponse(m) => Some(m.to),
        }
    }

    /// The message the action delivers or drops.
    pub fn message(&self) -> Option<&Msg> {
        match self {
            Action::Timeout(_)
            | Action::SendAppendEntries(_)
            | Action::ClientRequest(_)
            | Action::CompactLog(_)
            | Action::Restart(_) => None,
            Action::DropMessage(m)
            | Action::HandleRequestVoteRequest(m)
            | Action::HandleRequestVoteResponse(m)
            | Action::HandleAppendEntriesRequest(m)
            | Action::HandleAppendEntriesResponse(m)
            | Action::HandleInstallSnapshotRequest(m)
            | Action::HandleInstallSnapshotResponse(m) => Some(&**m),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.message(), self.server()) {
            (Some(message), _) => write!(f, "{}({})", self.name(), describe::message(message)),
            (None, Some(id)) => write!(f, "{}({})", self.name(), describe::server_name(id)),
            (None, None) => write!(f, "{}", self.name()),
        }
    }
}
