//! The types the node's modules share: the core as this node instantiates
//! it, the event loop's inputs, and what the loop answers with. The event
//! loop ([`crate::node`]), the services that feed it, the peer transport and
//! the trace recorder all speak these; none of them needs another's module
//! for them.

use std::time::Duration;

use raft_model::{Index, NodeId, Refused, Role, Server, SnapshotMeta, Term};
use tokio::sync::oneshot;

use crate::convert::Msg;
use crate::kv::{ApplyError, CommandResult, KvCommand, KvImage};

/// The core as this node instantiates it.
pub type Core = Server<KvCommand, KvImage>;

/// Everything the event loop reacts to besides its timers.
pub enum Input {
    /// A request from a peer; the core's reply goes back on `reply` (None:
    /// the core dropped the message).
    PeerRequest {
        message: Msg,
        reply: oneshot::Sender<Option<Msg>>,
    },
    /// A peer's answer to one of our requests.
    PeerResponse(Msg),
    /// A chunk of an InstallSnapshot stream arrived from `from`, whose first
    /// chunk named `term` (the request is handed to the core only once whole;
    /// until then this is how the loop learns the leader is still there).
    SnapshotChunk {
        from: NodeId,
        term: Term,
    },
    /// The transport took another chunk of our InstallSnapshot request of
    /// `term` for `peer`: the peer is reading it (HTTP/2 flow control paces
    /// the sender by the receiver).
    SnapshotProgress {
        peer: NodeId,
        term: Term,
    },
    Propose {
        command: KvCommand,
        reply: oneshot::Sender<Result<Applied, ClientError>>,
    },
    /// One key's entry: the native Get and etcd's single-key Range. Read
    /// in the event loop (no image clone) once a ReadIndex round confirmed
    /// it is current (linearizable), or at once from whatever this node has
    /// applied (`serializable`).
    Read {
        key: Vec<u8>,
        serializable: bool,
        reply: oneshot::Sender<Result<KeyRead, ClientError>>,
    },
    /// A read of the whole state machine (the etcd API's ranges): answered
    /// with an O(1) clone of the image once a ReadIndex round confirmed it
    /// is current (linearizable), or at once from whatever this node has
    /// applied (`serializable`, etcd's option: possibly stale, any role).
    ReadImage {
        serializable: bool,
        reply: oneshot::Sender<Result<ImageRead, ClientError>>,
    },
    /// A backup: the state machine's image with the snapshot metadata of
    /// the index it has applied, once a ReadIndex round confirmed that this
    /// node leads and has applied every write acknowledged before the
    /// request (so the backup holds them all). Leader only.
    Backup {
        reply: oneshot::Sender<Result<Backup, ClientError>>,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
    /// Move leadership to `to` (the admin service's TransferLeader).
    TransferLeader {
        to: NodeId,
        reply: oneshot::Sender<Result<LeaderMoved, ClientError>>,
    },
    /// Change the configuration to `members` through the joint
    /// configuration (the admin service's AddMember, RemoveMember and
    /// ChangeMembers); `addresses` are new members' addresses. Answered once
    /// C_new has committed.
    ChangeMembers {
        members: imbl::OrdSet<NodeId>,
        addresses: Vec<crate::members::MemberAddress>,
        reply: oneshot::Sender<Result<MembersChanged, ClientError>>,
    },
    /// Make `learners` the configuration's learners (the admin service's
    /// AddLearner and RemoveLearner); `addresses` are new learners'
    /// addresses. Answered once the configuration entry has committed.
    ChangeLearners {
        learners: imbl::OrdSet<NodeId>,
        addresses: Vec<crate::members::MemberAddress>,
        reply: oneshot::Sender<Result<MembersChanged, ClientError>>,
    },
    /// A peer's reply carried its incarnation, which the replicated address
    /// book does not record: the leader records it (crate::incarnation).
    PeerIncarnation {
        peer: NodeId,
        incarnation: String,
    },
    /// Peer `from` answered our vote request saying we are not a member of
    /// the cluster's committed configuration (crate::members::Directory::removed).
    NotAMember {
        from: NodeId,
        detail: String,
    },
    /// The configuration in force and the address book (MemberList).
    Members {
        reply: oneshot::Sender<MemberList>,
    },
    /// Take a snapshot now (operators, tests and the bench).
    TakeSnapshot {
        reply: oneshot::Sender<Result<SnapshotReport, String>>,
    },
    /// A background snapshot finished writing its file.
    SnapshotWritten(Result<SnapshotReport, String>, SnapshotMeta, KvImage),
}

/// A write that applied.
#[derive(Clone, Debug)]
pub struct Applied {
    pub index: Index,
    /// The term of the write's entry.
    pub term: Term,
    pub result: CommandResult,
}

/// A client write the leader's core accepted, waiting for its entry to
/// apply (the event loop's `proposals`, by index).
pub(crate) struct WaitingWrite {
    /// The term in which this node, as leader, appended the entry: an entry
    /// of another term at that index is not this write.
    pub term: Term,
    /// When the core accepted it: the start of `raft_proposal_seconds`.
    pub accepted: std::time::Instant,
    pub reply: oneshot::Sender<Result<Applied, ClientError>>,
}

/// The event loop's writes waiting for their entries to apply, by log index.
pub(crate) type WaitingWrites = std::collections::BTreeMap<Index, WaitingWrite>;

/// The state machine as of a read (`Input::ReadImage`).
#[derive(Clone, Debug)]
pub struct ImageRead {
    pub image: KvImage,
    /// The log index the image has applied.
    pub index: Index,
    /// The node's term when it answered.
    pub term: Term,
}

/// A consistent snapshot for a backup ([`Input::Backup`]): what a snapshot
/// file at `meta.last_index` would hold.
#[derive(Clone, Debug)]
pub struct Backup {
    pub meta: SnapshotMeta,
    pub image: KvImage,
}

/// A leadership transfer's outcome: the leader of a later term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderMoved {
    pub leader: NodeId,
    pub term: Term,
}

/// A membership change's outcome: C_new committed at `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembersChanged {
    pub members: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub index: Index,
    pub term: Term,
}

/// The configuration as one node sees it (MemberList).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberList {
    /// The node that answered.
    pub id: NodeId,
    pub term: Term,
    pub leader: Option<NodeId>,
    /// C_new while joint; otherwise the configuration.
    pub members: Vec<NodeId>,
    /// C_old while a change is under way (joint), else empty.
    pub old_members: Vec<NodeId>,
    /// The learners, and at the leader how far each has replicated (its
    /// match index; None elsewhere), against `last_index`, the leader's
    /// last log index.
    pub learners: Vec<NodeId>,
    pub learner_matched: std::collections::BTreeMap<NodeId, Index>,
    pub last_index: Index,
    /// The index of the configuration's entry (the snapshot's when the log
    /// holds none), and whether it is known committed.
    pub config_index: Index,
    pub committed: bool,
    /// Every voter's and learner's address, as this node knows it.
    pub addresses: std::collections::BTreeMap<NodeId, String>,
}

/// A read of one key (`Input::Read`): its entry, value as bytes (the
/// native service decides what a non-UTF-8 value becomes).
#[derive(Clone, Debug)]
pub struct KeyRead {
    pub kv: Option<crate::kv::KeyValue>,
    /// The log index the state machine had applied.
    pub index: Index,
    /// The store's revision then.
    pub revision: crate::kv::Revision,
    /// The node's term when it answered.
    pub term: Term,
}

/// What one snapshot cost.
#[derive(Clone, Debug)]
pub struct SnapshotReport {
    pub index: Index,
    pub keys: usize,
    pub bytes: u64,
    /// Serializing and writing (with fsync) the image, off the event loop.
    pub write_time: Duration,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum ClientError {
    /// Refused: this node is not the leader. Nothing was proposed, so the
    /// request can be sent again anywhere.
    #[error("not the leader")]
    NotLeader { leader: Option<NodeId> },
    /// The node proposed the write as leader and lost leadership before the
    /// entry committed: the next leader may still commit it, or not. A
    /// client with a session retries with the same sequence number (the
    /// session table answers a duplicate); one without (etcd's API) must
    /// treat the outcome as unknown — sending it again could apply it twice.
    #[error("leadership lost before the write committed; its outcome is unknown")]
    LeadershipLost { leader: Option<NodeId> },
    #[error("{0}")]
    Retry(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A request that cannot succeed as asked (retrying will not help).
    #[error("{0}")]
    Invalid(String),
    /// An operation that was started and then given up.
    #[error("{0}")]
    Aborted(String),
    #[error("the node is shutting down")]
    Stopped,
    /// A membership change the core refused by a rule of joint consensus.
    #[error("configuration change refused: {0}")]
    ConfigChange(raft_model::ConfigChangeError),
}

impl ClientError {
    /// A client's request the core refused.
    pub(crate) fn refused(refused: Refused) -> Self {
        match refused {
            Refused::NotLeader(not_leader) => ClientError::NotLeader {
                leader: not_leader.leader_hint,
            },
            bad @ Refused::BadTransferee(_) => ClientError::Invalid(bad.to_string()),
            Refused::ConfigChange(error) => ClientError::ConfigChange(error),
            other => ClientError::Retry(other.to_string()),
        }
    }
}

/// What the status call reports.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub last_log_index: Index,
    pub snapshot_index: Index,
    pub members: Vec<NodeId>,
    /// The configuration's learners (this node among them, if it is one).
    pub learners: Vec<NodeId>,
    /// Ready to serve clients, and why (crate::readiness).
    pub readiness: crate::readiness::Readiness,
    /// This server's incarnation (crate::incarnation).
    pub incarnation: String,
}
