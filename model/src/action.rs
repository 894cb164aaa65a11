//! The spec's server actions by name: the one list, which [`crate::Step`]
//! pairs with each action's input.

use serde::{Deserialize, Serialize};

use crate::message::Body;

/// The spec's server actions, by name (spec/Raft.tla).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    Timeout,
    SendAppendEntries,
    ClientRequest,
    ReadIndex,
    HandleRequestVoteRequest,
    HandleRequestVoteResponse,
    HandleAppendEntriesRequest,
    HandleAppendEntriesResponse,
    HandleInstallSnapshotRequest,
    HandleInstallSnapshotResponse,
    CompactLog,
    Restart,
    CheckQuorum,
    TransferLeadership,
    HandleTimeoutNow,
    AbortTransfer,
    ChangeConfig,
    ChangeLearners,
    LogPersisted,
}

impl Action {
    /// Every action, in the order of spec/Raft.tla's `Next`.
    pub const ALL: [Action; 19] = [
        Action::Timeout,
        Action::SendAppendEntries,
        Action::ClientRequest,
        Action::ReadIndex,
        Action::HandleRequestVoteRequest,
        Action::HandleRequestVoteResponse,
        Action::HandleAppendEntriesRequest,
        Action::HandleAppendEntriesResponse,
        Action::HandleInstallSnapshotRequest,
        Action::HandleInstallSnapshotResponse,
        Action::CompactLog,
        Action::Restart,
        Action::CheckQuorum,
        Action::TransferLeadership,
        Action::HandleTimeoutNow,
        Action::AbortTransfer,
        Action::ChangeConfig,
        Action::ChangeLearners,
        Action::LogPersisted,
    ];

    /// The spec's name of the action.
    pub fn name(self) -> &'static str {
        match self {
            Action::Timeout => "Timeout",
            Action::SendAppendEntries => "SendAppendEntries",
            Action::ClientRequest => "ClientRequest",
            Action::ReadIndex => "ReadIndex",
            Action::HandleRequestVoteRequest => "HandleRequestVoteRequest",
            Action::HandleRequestVoteResponse => "HandleRequestVoteResponse",
            Action::HandleAppendEntriesRequest => "HandleAppendEntriesRequest",
            Action::HandleAppendEntriesResponse => "HandleAppendEntriesResponse",
            Action::HandleInstallSnapshotRequest => "HandleInstallSnapshotRequest",
            Action::HandleInstallSnapshotResponse => "HandleInstallSnapshotResponse",
            Action::CompactLog => "CompactLog",
            Action::Restart => "Restart",
            Action::CheckQuorum => "CheckQuorum",
            Action::TransferLeadership => "TransferLeadership",
            Action::HandleTimeoutNow => "HandleTimeoutNow",
            Action::AbortTransfer => "AbortTransfer",
            Action::ChangeConfig => "ChangeConfig",
            Action::ChangeLearners => "ChangeLearners",
            Action::LogPersisted => "LogPersisted",
        }
    }

    /// The handler action for a message of this kind.
    pub fn receiving<C: Clone, S>(body: &Body<C, S>) -> Action {
        match body {
            Body::RequestVoteRequest { .. } => Action::HandleRequestVoteRequest,
            Body::RequestVoteResponse { .. } => Action::HandleRequestVoteResponse,
            Body::AppendEntriesRequest { .. } => Action::HandleAppendEntriesRequest,
            Body::AppendEntriesResponse { .. } => Action::HandleAppendEntriesResponse,
            Body::InstallSnapshotRequest { .. } => Action::HandleInstallSnapshotRequest,
            Body::InstallSnapshotResponse { .. } => Action::HandleInstallSnapshotResponse,
            Body::TimeoutNow {} => Action::HandleTimeoutNow,
        }
    }

    /// Does this action handle a received message?
    pub fn is_handler(self) -> bool {
        matches!(
            self,
            Action::HandleRequestVoteRequest
                | Action::HandleRequestVoteResponse
                | Action::HandleAppendEntriesRequest
                | Action::HandleAppendEntriesResponse
                | Action::HandleInstallSnapshotRequest
                | Action::HandleInstallSnapshotResponse
                | Action::HandleTimeoutNow
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
