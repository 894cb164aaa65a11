//! The scalar and small compound types every other module speaks in.

use std::hash::{Hash, Hasher};

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
    /// A configuration (paper §6, dissertation §4.3): the joint C_old,new a
    /// leader appends for a change, or the C_new it appends once that joint
    /// configuration commits. It takes effect on every server as soon as it
    /// is in its log (see [`Config`]); the state machine ignores it.
    Config(Config),
}

/// One log entry: the term in which a leader created it, and its payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    pub term: Term,
    pub payload: Payload<C>,
}

impl<C: Clone> Entry<C> {
    /// The configuration this entry carries, if it is a configuration entry.
    pub fn config(&self) -> Option<&Config> {
        match &self.payload {
            Payload::Config(config) => Some(config),
            _ => None,
        }
    }

    /// This entry with the server ids of its configuration, if any, passed
    /// through `f` (the checker's symmetry reduction).
    pub fn rename_ids(&self, f: &dyn Fn(NodeId) -> NodeId) -> Self {
        match &self.payload {
            Payload::Config(config) => Entry {
                term: self.term,
                payload: Payload::Config(config.rename_ids(&f)),
            },
            _ => self.clone(),
        }
    }
}

/// The cluster configuration: who votes (paper §6, dissertation ch. 4).
///
/// Either a simple configuration, `members`, or the joint configuration
/// C_old,new of a change in progress: `members` is C_new and `old` is
/// C_old. A quorum of a joint configuration is a majority of C_old *and* a
/// majority of C_new, so that neither half can decide alone while servers
/// may be in either (dissertation §4.3).
///
/// A server's configuration is the latest configuration entry in its log,
/// or its snapshot's when the log holds none: it takes effect when it is
/// appended, not when it commits (dissertation §4.1), and a truncated
/// suffix takes its configuration away with it. Why appended, not applied
/// (etcd): a leader must count the new servers the moment it proposes a
/// change, and every server must judge votes and commits by the same rule
/// whatever its commit index; with "applied" a leader would commit C_new
/// under the quorums of C_old,new, which the dissertation's proof does not
/// cover, and a follower's configuration would depend on when its driver
/// applies. Quorums are always computed from this value, never from a
/// constant.
///
/// `learners` receive the log and snapshots like any follower but never
/// vote, campaign or count in a quorum; a learner becomes a voter by a
/// change whose C_new names it (and leaves `learners` then).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Config {
    /// C_new while joint; otherwise the configuration itself.
    pub members: OrdSet<NodeId>,
    /// C_old while joint (never empty then); `None` otherwise. Spec
    /// `config.old`, `{}` for `None`.
    #[serde(default)]
    pub old: Option<OrdSet<NodeId>>,
    /// Non-voting members, never voters of either half. Spec
    /// `config.learners`. Left out of the serde form when empty, so that
    /// configurations without learners read and write as before.
    #[serde(default, skip_serializing_if = "OrdSet::is_empty")]
    pub learners: OrdSet<NodeId>,
}

impl Config {
    /// A simple (not joint) configuration.
    pub fn new(members: impl IntoIterator<Item = NodeId>) -> Self {
        Config {
            members: members.into_iter().collect(),
            old: None,
            learners: OrdSet::new(),
        }
    }

    /// The joint configuration C_old,new of a change from `old` to `new`,
    /// with no learners.
    pub fn joint(old: OrdSet<NodeId>, new: OrdSet<NodeId>) -> Self {
        assert!(!old.is_empty(), "a joint configuration's C_old has members");
        Config {
            members: new,
            old: Some(old),
            learners: OrdSet::new(),
        }
    }

    /// The joint configuration of a change from this (simple)
    /// configuration to the voters `new`: the learners it promotes leave
    /// `learners`, the others stay learners.
    pub fn change_to(&self, new: OrdSet<NodeId>) -> Self {
        let learners = self.learners.clone().relative_complement(new.clone());
        Config {
            learners,
            ..Config::joint(self.members.clone(), new)
        }
    }

    /// This configuration with `learners` as its learners.
    pub fn with_learners(&self, learners: OrdSet<NodeId>) -> Self {
        Config {
            learners,
            ..self.clone()
        }
    }

    /// Is this the joint configuration of a change in progress?
    pub fn is_joint(&self) -> bool {
        self.old.is_some()
    }

    /// C_new of a joint configuration, as a simple one: what the leader
    /// appends once the joint configuration has committed.
    pub fn new_half(&self) -> Config {
        Config::new(self.members.iter().copied()).with_learners(self.learners.clone())
    }

    /// Does `id` vote in this configuration (in C_old or in C_new)?
    pub fn contains(&self, id: NodeId) -> bool {
        self.members.contains(&id) || self.old.as_ref().is_some_and(|old| old.contains(&id))
    }

    /// True when `ids` hold a strict majority of the members, and, while
    /// joint, of C_old as well.
    /// `ids` must not repeat an id.
    pub fn is_quorum<'a, I>(&self, ids: I) -> bool
    where
        I: IntoIterator<Item = &'a NodeId>,
        I::IntoIter: Clone,
    {
        let ids = ids.into_iter();
        let majority = |set: &OrdSet<NodeId>| {
            let votes = ids.clone().filter(|id| set.contains(*id)).count();
            2 * votes > set.len()
        };
        majority(&self.members) && self.old.as_ref().is_none_or(majority)
    }

    /// Every voter (of C_old or C_new) except `me`: whom a candidate asks
    /// for votes.
    pub fn peers(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.voters().filter(move |id| *id != me)
    }

    /// Every voter and learner, in increasing order, once each.
    pub fn servers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let mut all: Vec<NodeId> = self.voters().chain(self.learners.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
    }

    /// Every voter and learner except `me`: whom a leader replicates to.
    pub fn replicas(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.servers().filter(move |id| *id != me)
    }

    /// Is `id` a learner of this configuration?
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Every voter, of C_old or C_new, in increasing order, once each.
    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        let old = self.old.iter().flat_map(|old| old.iter().copied());
        let only_old: Vec<NodeId> = old.filter(|id| !self.members.contains(id)).collect();
        let mut all: Vec<NodeId> = self.members.iter().copied().chain(only_old).collect();
        all.sort_unstable();
        all.into_iter()
    }

    /// This configuration with every id passed through the renaming `f`
    /// (injective). When `f` maps the members onto themselves the sets are
    /// shared rather than rebuilt: symmetry reduction renames every state.
    /// Feeds `h` exactly what `self.rename_ids(f).hash(h)` would, without
    /// building or looking anything up (the checker's orbit fingerprint).
    pub fn hash_renamed<H: Hasher>(&self, f: &impl Fn(NodeId) -> NodeId, h: &mut H) {
        let Config {
            members,
            old,
            learners,
        } = self;
        let renamed = |set: &OrdSet<NodeId>, h: &mut H| {
            hash_sorted(set.len(), set.iter().map(|id| f(*id)), h);
        };
        renamed(members, h);
        // An `Option` hashes its discriminant, then what it holds.
        old.as_ref().map(|_| ()).hash(h);
        if let Some(old) = old {
            renamed(old, h);
        }
        renamed(learners, h);
    }

    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Config {
        let rename = |set: &OrdSet<NodeId>| {
            if set.iter().all(|id| set.contains(&f(*id))) {
                set.clone()
            } else {
                set.iter().map(|id| f(*id)).collect()
            }
        };
        Config {
            members: rename(&self.members),
            old: self.old.as_ref().map(rename),
            learners: rename(&self.learners),
        }
    }
}

/// Server ids inside a snapshot's state-machine image, renamed for the
/// checker's symmetry reduction. The node's images hold none (`()`-like);
/// the checker's image is the list of applied entries, whose configuration
/// entries name servers.
pub trait RenameIds {
    fn rename_ids(&self, f: &dyn Fn(NodeId) -> NodeId) -> Self;
}

impl RenameIds for () {
    fn rename_ids(&self, _: &dyn Fn(NodeId) -> NodeId) -> Self {}
}

impl<C: Clone> RenameIds for imbl::Vector<Entry<C>> {
    fn rename_ids(&self, f: &dyn Fn(NodeId) -> NodeId) -> Self {
        if self.iter().all(|entry| entry.config().is_none()) {
            return self.clone();
        }
        self.iter().map(|entry| entry.rename_ids(f)).collect()
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

/// Feeds `h` the `len` items of `items` in ascending order, as imbl's
/// ordered sets and maps hash their elements (in order, no length), without
/// allocating for up to 16 of them: what the checker's orbit fingerprint
/// needs for a set or map of server ids after renaming them.
pub fn hash_sorted<T, H>(len: usize, items: impl Iterator<Item = T>, h: &mut H)
where
    T: Ord + Hash + Copy + Default,
    H: Hasher,
{
    const INLINE: usize = 16;
    if len <= INLINE {
        let mut buffer = [T::default(); INLINE];
        let mut n = 0;
        for item in items.take(INLINE) {
            buffer[n] = item;
            n += 1;
        }
        let sorted = &mut buffer[..n];
        sorted.sort_unstable();
        for item in sorted.iter() {
            item.hash(h);
        }
    } else {
        let mut sorted: Vec<T> = items.collect();
        sorted.sort_unstable();
        for item in &sorted {
            item.hash(h);
        }
    }
}
