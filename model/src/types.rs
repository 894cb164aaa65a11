//! The scalar and small compound types every other module speaks in.

use imbl::OrdSet;
use serde::{Deserialize, Serialize};

/// A server's identity within one cluster. Plain integers keep states small
/// and let the checker rewrite ids for symmetry reduction.
pub type NodeId = u64;
/// A Raft term (paper §5.1). Term 0 is "before any election".
pub type Term = u64;
/// A log index. Index 0 is the empty prefix; the first entry has index 1.
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Payload<C> {
    /// Appended by every new leader in its own term (paper §8), so that it can
    /// commit entries of earlier terms and serve linearizable reads.
    Noop,
    /// An opaque command for the replicated state machine.
    Command(C),
}

/// One log entry: the term in which a leader created it, and its payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    pub term: Term,
    pub payload: Payload<C>,
}

/// The cluster configuration: who votes. Quorums are always computed from
/// this value, never from a constant, so that membership changes can replace
/// it without reshaping the core.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Config {
    pub members: OrdSet<NodeId>,
}

impl Config {
    pub fn new(members: impl IntoIterator<Item = NodeId>) -> Self {
        Config {
            members: members.into_iter().collect(),
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.members.contains(&id)
    }

    /// True when the members among `ids` form a strict majority of the configuration.
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> bool {
        let votes = ids
            .into_iter()
            .filter(|id| self.members.contains(*id))
            .count();
        2 * votes > self.members.len()
    }

    /// Every member except `me`.
    pub fn peers(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied().filter(move |id| *id != me)
    }

    /// This configuration with every id passed through the renaming `f`
    /// (injective). When `f` maps the members onto themselves — always in
    /// the checker, whose configurations hold every server — the set is
    /// shared rather than rebuilt: symmetry reduction renames every state.
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Config {
        if self.members.iter().all(|id| self.members.contains(&f(*id))) {
            return self.clone();
        }
        Config::new(self.members.iter().map(|id| f(*id)))
    }
}

/// A read waiting for its round to be confirmed by a quorum.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingRead {
    /// The driver's identifier for the read.
    pub id: u64,
    /// The round that must be acknowledged by a quorum.
    pub seq: u64,
}

/// A read the driver may now answer, once its state machine has applied `index`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReadReady {
    pub id: u64,
    pub index: Index,
}
