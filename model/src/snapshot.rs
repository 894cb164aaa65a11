//! Snapshots (paper §7): a state-machine image standing in for a log prefix.

use serde::{Deserialize, Serialize};

use crate::types::{Config, Index, Term};

/// What a snapshot replaces: the last included entry and the configuration in
/// force at that point.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub last_index: Index,
    pub last_term: Term,
    pub config: Config,
}

/// A snapshot: its metadata and an opaque state-machine image `S`.
///
/// The core never looks inside `S`. The checker uses the list of applied
/// commands (so State Machine Safety can compare images); the node uses its
/// key-value map, an `imbl::OrdMap`, which makes taking a snapshot an O(1) clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Snapshot<S> {
    pub meta: SnapshotMeta,
    pub data: S,
}
