//! Why the core refused an input: a refused step changes nothing.

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::types::{Index, NodeId};

/// Why a client request was not appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotLeader {
    /// The leader this server last heard from in its current term, if any.
    pub leader_hint: Option<NodeId>,
}

impl std::fmt::Display for NotLeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.leader_hint {
            Some(leader) => write!(f, "not the leader; the leader is {leader}"),
            None => write!(f, "not the leader; no leader is known"),
        }
    }
}

impl std::error::Error for NotLeader {}

/// Why a compaction request was refused. The driver asked for something the
/// protocol forbids; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CompactError {
    /// Only committed entries may be folded into a snapshot.
    NotCommitted { index: Index, commit_index: Index },
    /// The snapshot already covers this index.
    AlreadyCompacted { index: Index, snapshot_index: Index },
}

impl std::fmt::Display for CompactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompactError::NotCommitted {
                index,
                commit_index,
            } => write!(
                f,
                "cannot compact to index {index}: only entries up to the commit index {commit_index} may be snapshotted"
            ),
            CompactError::AlreadyCompacted {
                index,
                snapshot_index,
            } => write!(
                f,
                "cannot compact to index {index}: the snapshot already covers up to {snapshot_index}"
            ),
        }
    }
}

impl std::error::Error for CompactError {}

/// Why [`Server::step`] took no step. Every refusal leaves the server
/// unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refused {
    /// ClientRequest or ReadIndex at a server that is not the leader.
    NotLeader(NotLeader),
    /// CompactLog to an index that cannot be compacted.
    Compact(CompactError),
    /// A message not addressed to this server, from itself, or from a
    /// non-member: the core never trusts its input.
    Misaddressed,
    /// A handler step holding a message of another kind (see [`Step::receive`]).
    WrongKind { action: Action, kind: &'static str },
    /// The action's enabling condition in the spec does not hold: Timeout
    /// at a leader, at a server outside the configuration or at the last
    /// representable term; SendAppendEntries at a server that is not the
    /// leader. A driver's timers fire regardless of role; the core says
    /// whether the firing is an action.
    NotEnabled(Action),
    /// ClientRequest, or another TransferLeadership, at a leader handing
    /// leadership to `transferee` (dissertation §3.10): the client should
    /// retry at the new leader once the transfer ends.
    Transferring { transferee: NodeId },
    /// TransferLeadership to the leader itself or to a server outside its
    /// configuration.
    BadTransferee(NodeId),
    /// ChangeConfig refused by a rule of membership changes (or
    /// TransferLeadership while a change is pending).
    ConfigChange(ConfigChangeError),
}

/// Why a configuration change was refused (dissertation ch. 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChangeError {
    /// The new configuration has no members.
    NoMembers,
    /// The new configuration is the one in force.
    Unchanged,
    /// The leader has not yet committed an entry of its own term, so an
    /// earlier leader's change may still be in some log, uncommitted.
    TermNotCommitted,
    /// Another change is under way: the configuration is joint, or its entry
    /// has not committed yet (or, for a transfer, a change is under way).
    Pending,
    /// A learner named is a voter of the configuration in force: a voter
    /// leaves the voters by `ChangeConfig`, not by becoming a learner.
    LearnerIsVoter(NodeId),
}

impl std::fmt::Display for ConfigChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConfigChangeError::NoMembers => "a configuration needs at least one member",
            ConfigChangeError::Unchanged => "that is the configuration in force",
            ConfigChangeError::TermNotCommitted => {
                "the leader has not committed an entry of its term yet; retry shortly"
            }
            ConfigChangeError::Pending => {
                "a configuration change is under way; retry when it has committed"
            }
            ConfigChangeError::LearnerIsVoter(id) => {
                return write!(
                    f,
                    "server {id} is a voter; remove it from the voters before making it a learner"
                );
            }
        })
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotLeader(not_leader) => not_leader.fmt(f),
            Refused::Compact(error) => error.fmt(f),
            Refused::Misaddressed => f.write_str(
                "the message is not addressed to this server by another member of its configuration",
            ),
            Refused::WrongKind { action, kind } => {
                write!(f, "{action} cannot handle a {kind}")
            }
            Refused::NotEnabled(action) => {
                write!(f, "{action} is not enabled in this server's state")
            }
            Refused::Transferring { transferee } => write!(
                f,
                "the leader is handing leadership to {transferee}; retry when the transfer ends"
            ),
            Refused::BadTransferee(target) => write!(
                f,
                "cannot hand leadership to {target}: not another member of the configuration"
            ),
            Refused::ConfigChange(error) => write!(f, "configuration change refused: {error}"),
        }
    }
}

impl std::error::Error for Refused {}
