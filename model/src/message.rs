//! Messages between servers (paper Figure 2 and §7).

use imbl::Vector;
use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;
use crate::types::{Entry, Index, NodeId, Term};

/// A message from one server to another. Every message carries its sender's
/// term, so that any receiver can apply the paper's term rule before anything else.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Message<C: Clone, S> {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: Body<C, S>,
}

/// The seven message kinds. Field names follow the paper.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Body<C: Clone, S> {
    /// A vote request, or with `pre_vote` a pre-vote request (dissertation
    /// §9.6): then the message's term is the election's term to be, one past
    /// the sender's own, and no receiver adopts it.
    RequestVoteRequest {
        last_log_index: Index,
        last_log_term: Term,
        /// Absent (false) in traces written before PreVote.
        #[serde(default)]
        pre_vote: bool,
    },
    /// The answer to a (pre-)vote request. A granted pre-vote carries the
    /// request's term (the pre-candidate's next term, held by no one); a
    /// refused one the voter's own term.
    RequestVoteResponse { vote_granted: bool, pre_vote: bool },
    AppendEntriesRequest {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vector<Entry<C>>,
        leader_commit: Index,
        /// The leader's ReadIndex round when it sent this (0 if none).
        read_seq: u64,
    },
    AppendEntriesResponse {
        success: bool,
        /// On success, the index of the last entry the follower now knows to
        /// match the leader's log. On failure, the follower's last log index,
        /// a hint that lets the leader skip back past a short log at once.
        match_index: Index,
        /// On a failure of the consistency check where the follower holds an
        /// entry at `prev_log_index` of another term: that entry's term (paper
        /// §5.3's optimization), so that the leader can skip the whole term in
        /// one round trip. 0 otherwise: on success, when the follower lacks
        /// `prev_log_index` (then `match_index`, its last index, is the hint),
        /// and on the stale-term rejection. No entry has term 0.
        conflict_term: Term,
        /// With a `conflict_term`: the first index of the follower's run of
        /// entries of that term that ends at `prev_log_index` (never below
        /// its snapshot's index: compacted entries are not known). 0 when
        /// `conflict_term` is 0.
        conflict_index: Index,
        /// Echo of the request's `read_seq`: the follower acknowledges the
        /// sender as leader of this term as of that round.
        read_seq: u64,
    },
    /// The whole snapshot in one message. The node streams `data` in chunks
    /// over gRPC and hands the core the reassembled snapshot.
    InstallSnapshotRequest { snapshot: Snapshot<S> },
    /// Leadership transfer (dissertation §3.10): the leader of the message's
    /// term tells a peer it has brought up to date to campaign at once.
    TimeoutNow {},
    InstallSnapshotResponse {
        /// The snapshot's last index once installed (or already covered);
        /// 0 when the request was rejected for its stale term.
        match_index: Index,
    },
}

impl<C: Clone, S> Body<C, S> {
    /// The spec's name for the kind of message, used in traces and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::RequestVoteRequest { .. } => "RequestVoteRequest",
            Body::RequestVoteResponse { .. } => "RequestVoteResponse",
            Body::AppendEntriesRequest { .. } => "AppendEntriesRequest",
            Body::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            Body::InstallSnapshotRequest { .. } => "InstallSnapshotRequest",
            Body::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            Body::TimeoutNow {} => "TimeoutNow",
        }
    }
}

impl<C: Clone, S> Body<C, S> {
    /// Is this the answer to a request (the reply of a handler's RPC)?
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Body::RequestVoteResponse { .. }
                | Body::AppendEntriesResponse { .. }
                | Body::InstallSnapshotResponse { .. }
        )
    }
}

impl<C: Clone, S: Clone> Message<C, S> {
    /// A copy with every server id passed through `f` (for symmetry reduction).
    /// Snapshot configurations are ids too and are rewritten as well.
    /// So are configuration entries, in requests and in snapshot images.
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Self
    where
        S: crate::types::RenameIds,
    {
        let mut renamed = self.clone();
        renamed.from = f(self.from);
        renamed.to = f(self.to);
        match &mut renamed.body {
            Body::InstallSnapshotRequest { snapshot } => {
                snapshot.meta.config = snapshot.meta.config.rename_ids(f);
                snapshot.data = snapshot.data.rename_ids(f);
            }
            Body::AppendEntriesRequest { entries, .. }
                if entries.iter().any(|e| e.config().is_some()) =>
            {
                *entries = entries.iter().map(|e| e.rename_ids(f)).collect();
            }
            _ => {}
        }
        renamed
    }
}
