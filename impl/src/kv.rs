//! The replicated state machine: a key-value map with etcd's revision data,
//! plus the client session table that makes retried writes exactly-once.
//!
//! Both live in `imbl::OrdMap`s, so a snapshot of the whole state machine is
//! an O(1) clone that can be serialized on another thread while the node
//! keeps applying: a persistent structure shares everything unchanged with
//! its clone, so taking a snapshot never stops the event loop. The sessions
//! are part of the image, so exactly-once survives snapshots and
//! InstallSnapshot.
//!
//! **Keys and values are bytes**, with etcd's revision data (etcd's
//! `mvccpb.KeyValue`, without its history):
//! - the image's `revision` is the cluster-wide revision: 1 for an empty
//!   store, as in etcd, and raised by one for every applied command that
//!   changes something (a put, even of the same value; a delete or a delete
//!   range that removed at least one key; a transaction whose executed branch
//!   did either). A delete of an absent key, a failed compare-and-swap, a
//!   transaction of only reads and a range leave it as it is.
//! - per key, `create_revision` (the revision that created it since it was
//!   last absent), `mod_revision` (the revision of its last change) and
//!   `version` (1 at creation, +1 per put; a delete removes the key, so a
//!   re-creation starts again at 1). All the writes of one transaction share
//!   one revision; two puts of one key in a transaction raise its version
//!   twice, as in etcd.
//!
//! The native API (`raft.kv.v1.Kv`) has UTF-8 string keys and values: they
//! map onto the bytes of their UTF-8 encoding, so a key written through one
//! API is the same key in the other. A value written through the etcd API
//! need not be UTF-8: a native `Get` of such a value is refused
//! (`FAILED_PRECONDITION`, see `kv_service`) rather than answered with a
//! lossy copy, while the `previous` value that native writes return, and
//! that their sessions cache, is converted lossily (U+FFFD for each invalid
//! sequence): the write has happened by then, and a compare-and-swap against
//! that lossy text fails instead of matching the wrong value.
//!
//! No history is kept: a read at an older `revision` and `Compact` are not
//! served (see `etcd_service`).

use imbl::OrdMap;
use raft_model::{Index, NodeId};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_SESSIONS;

/// etcd's revisions are `int64`.
pub type Revision = i64;

/// A write, as stored in the log (`crate::command`: shared, and encoded once).
pub use crate::command::KvCommand;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOp {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Replace the value of `key` if it currently is `expected` (`None`: the
    /// key is absent); `new_value: None` deletes it.
    Cas {
        key: String,
        expected: Option<String>,
        new_value: Option<String>,
    },
    /// Record the address at which the other servers reach member `id`
    /// (the replicated address book, see `crate::members`). Not a client
    /// operation: only the leader appends it, just before the
    /// configuration change that adds `id`.
    SetMemberAddress {
        id: NodeId,
        address: String,
        /// The incarnation of the server added as `id`, when known (empty:
        /// none recorded, and any recorded before is forgotten: a server
        /// re-added under an old id is not the old one).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        incarnation: String,
    },
    /// An etcd write (`Put`, `DeleteRange` or `Txn`), as one transaction:
    /// evaluated atomically when it applies.
    Txn(Txn),
}

/// An etcd transaction: if every comparison holds, `success` runs, else
/// `failure`; the operations of the branch run in order, each seeing the
/// writes of those before it. A lone put or delete is a transaction with no
/// comparisons and one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// A key range as etcd names one: `range_end` empty is the key alone;
/// `[0]` is every key from `key` on; otherwise `[key, range_end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyRange {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

impl KeyRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        if self.range_end.is_empty() {
            return key == self.key.as_slice();
        }
        key >= self.key.as_slice() && (self.range_end == [0] || key < self.range_end.as_slice())
    }

    /// The keys of `data` in the range, in key order.
    pub fn iter<'a>(
        &'a self,
        data: &'a OrdMap<Vec<u8>, KeyValue>,
    ) -> Box<dyn Iterator<Item = (&'a Vec<u8>, &'a KeyValue)> + 'a> {
        use std::ops::Bound;
        if self.range_end.is_empty() {
            return Box::new(data.get_key_value(&self.key).into_iter());
        }
        let end = if self.range_end == [0] {
            Bound::Unbounded
        } else if self.range_end.as_slice() <= self.key.as_slice() {
            return Box::new(std::iter::empty());
        } else {
            Bound::Excluded(self.range_end.clone())
        };
        Box::new(data.range((Bound::Included(self.key.clone()), end)))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TxnOp {
    Range(RangeQuery),
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        prev_kv: bool,
    },
    DeleteRange {
        range: KeyRange,
        prev_kv: bool,
    },
}

/// How a range read is shaped (etcd's `RangeRequest` without `revision`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RangeQuery {
    pub range: KeyRange,
    /// 0: no limit.
    pub limit: u64,
    pub keys_only: bool,
    pub count_only: bool,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// One comparison of a transaction, on every key of `range` (all must hold;
/// an absent single key compares as version, create and mod revision 0 and
/// fails a value comparison, as in etcd).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Compare {
    pub range: KeyRange,
    pub target: CompareTarget,
    pub result: CompareResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(i64),
    Create(Revision),
    Mod(Revision),
    Value(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

impl CompareResult {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CompareResult::Equal => ordering == Equal,
            CompareResult::Greater => ordering == Greater,
            CompareResult::Less => ordering == Less,
            CompareResult::NotEqual => ordering != Equal,
        }
    }
}

/// A key's value and revision data (etcd's `mvccpb.KeyValue`, without a lease).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyValue {
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
}

/// A key with its value and revision data, as a read or a `prev_kv` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub key: Vec<u8>,
    pub kv: KeyValue,
}

/// What a range read found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RangeResult {
    /// Up to `limit` keys, sorted as asked (none when `count_only`; values
    /// empty when `keys_only`).
    pub kvs: Vec<Entry>,
    /// More keys were in the range than returned.
    pub more: bool,
    /// How many keys the range holds.
    pub count: u64,
}

/// What one operation of a transaction produced.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpResult {
    Range(RangeResult),
    Put { prev_kv: Option<Entry> },
    DeleteRange { deleted: u64, prev_kvs: Vec<Entry> },
}

/// What a transaction produced: the branch taken and its operations' results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxnResult {
    pub succeeded: bool,
    pub responses: Vec<OpResult>,
}

/// What applying a command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandResult {
    /// The key's value before the command (native commands; converted
    /// lossily if it was not UTF-8).
    pub previous: Option<String>,
    /// Whether the command took effect (always true except for a failed CAS
    /// or a transaction that took its failure branch).
    pub succeeded: bool,
    /// The store's revision after the command.
    pub revision: Revision,
    /// An etcd transaction's results (`None` for native commands). Never
    /// cached in a session: etcd writes carry none.
    pub txn: Option<TxnResult>,
}

/// One client's session: its last applied sequence number and that
/// command's result, returned again if the command is retried.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    pub last_seq: u64,
    pub result: CommandResult,
    /// The log index at which `last_seq` was applied (for eviction order).
    pub last_index: Index,
}

/// Why a command was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "sequence number {seq} of client {client_id} is older than its last applied one ({last_seq}); a client must not reuse or reorder sequence numbers"
    )]
    StaleSequence {
        client_id: u64,
        seq: u64,
        last_seq: u64,
    },
}

/// The revision of an empty store (etcd's too).
pub const FIRST_REVISION: Revision = 1;

/// The state-machine image: what a snapshot carries (`S` of the core).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvImage {
    pub data: OrdMap<Vec<u8>, KeyValue>,
    /// The cluster-wide revision: that of the last change.
    pub revision: Revision,
    pub sessions: OrdMap<u64, Session>,
    /// The replicated address book: the address of every member added at
    /// runtime (the starting members' addresses are in the config files).
    pub addresses: OrdMap<NodeId, String>,
    /// The incarnation recorded with each address, where one is known.
    pub incarnations: OrdMap<NodeId, String>,
}

impl Default for KvImage {
    fn default() -> Self {
        KvImage {
            data: OrdMap::new(),
            revision: FIRST_REVISION,
            sessions: OrdMap::new(),
            addresses: OrdMap::new(),
            incarnations: OrdMap::new(),
        }
    }
}

/// A lossy UTF-8 copy of a value, for the native API's `previous`.
fn lossy(value: &[u8]) -> String {
    // Valid text (nearly every value) through `from_utf8`, whose check runs a
    // word at a time; `from_utf8_lossy` walks it byte by byte, and that walk
    // was 0.8 % of a leader's CPU at 256 clients (every put returns the
    // previous value, on every node).
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

impl KvImage {
    /// A key's value and revision data.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.data.get(key)
    }

    /// Applies the command committed at log `index`. A retried command of a
    /// session (same sequence number as the last applied) is not applied
    /// again: its first result is returned.
    pub fn apply(
        &mut self,
        index: Index,
        command: &KvCommand,
    ) -> Result<CommandResult, ApplyError> {
        let (client_id, seq) = (command.client_id(), command.seq());
        if client_id != 0
            && let Some(session) = self.sessions.get(&client_id)
        {
            if seq == session.last_seq {
                return Ok(session.result.clone());
            }
            if seq < session.last_seq {
                return Err(ApplyError::StaleSequence {
                    client_id,
                    seq,
                    last_seq: session.last_seq,
                });
            }
        }
        let result = self.execute(command.op());
        if client_id != 0 {
            let session = Session {
                last_seq: seq,
                result: CommandResult {
                    txn: None,
                    ..result.clone()
                },
                last_index: index,
            };
            if self.sessions.insert(client_id, session).is_none() {
                self.evict_sessions();
            }
        }
        Ok(result)
    }

    fn execute(&mut self, op: &KvOp) -> CommandResult {
        let next = self.revision + 1;
        let mut changed = false;
        let mut result = match op {
            KvOp::Put { key, value } => {
                changed = true;
                let previous = self.put(key.as_bytes(), value.as_bytes(), next);
                CommandResult {
                    previous: previous.map(|kv| lossy(&kv.value)),
                    succeeded: true,
                    ..CommandResult::default()
                }
            }
            KvOp::Delete { key } => {
                let previous = self.data.remove(key.as_bytes());
                changed = previous.is_some();
                CommandResult {
                    previous: previous.map(|kv| lossy(&kv.value)),
                    succeeded: true,
                    ..CommandResult::default()
                }
            }
            KvOp::SetMemberAddress {
                id,
                address,
                incarnation,
            } => {
                if incarnation.is_empty() {
                    self.incarnations.remove(id);
                } else {
                    self.incarnations.insert(*id, incarnation.clone());
                }
                CommandResult {
                    previous: self.addresses.insert(*id, address.clone()),
                    succeeded: true,
                    ..CommandResult::default()
                }
            }
            KvOp::Cas {
                key,
                expected,
                new_value,
            } => {
                let current = self.data.get(key.as_bytes()).map(|kv| kv.value.clone());
                let previous = current.as_deref().map(lossy);
                if current.as_deref() != expected.as_deref().map(str::as_bytes) {
                    return CommandResult {
                        previous,
                        succeeded: false,
                        revision: self.revision,
                        txn: None,
                    };
                }
                match new_value {
                    Some(value) => {
                        changed = true;
                        self.put(key.as_bytes(), value.as_bytes(), next);
                    }
                    None => changed = self.data.remove(key.as_bytes()).is_some(),
                };
                CommandResult {
                    previous,
                    succeeded: true,
                    ..CommandResult::default()
                }
            }
            KvOp::Txn(txn) => {
                let succeeded = txn.compares.iter().all(|compare| self.compare(compare));
                let branch = if succeeded {
                    &txn.success
                } else {
                    &txn.failure
                };
                let responses = branch
                    .iter()
                    .map(|op| self.txn_op(op, next, &mut changed))
                    .collect();
                CommandResult {
                    succeeded,
                    txn: Some(TxnResult {
                        succeeded,
                        responses,
                    }),
                    ..CommandResult::default()
                }
            }
        };
        if changed {
            self.revision = next;
        }
        result.revision = self.revision;
        result
    }

    /// Writes `key` at revision `revision`; returns what it held.
    /// One lookup, and the previous value moved out rather than cloned: an
    /// existing key is replaced in place (imbl copies the path it shares
    /// with a snapshot either way). Was a `get`, a clone and an `insert`:
    /// 5-6 % of a follower's CPU at 16 clients (issue 17).
    fn put(&mut self, key: &[u8], value: &[u8], revision: Revision) -> Option<KeyValue> {
        if let Some(kv) = self.data.get_mut(key) {
            let next = KeyValue {
                value: value.to_vec(),
                create_revision: kv.create_revision,
                mod_revision: revision,
                version: kv.version + 1,
            };
            return Some(std::mem::replace(kv, next));
        }
        let kv = KeyValue {
            value: value.to_vec(),
            create_revision: revision,
            mod_revision: revision,
            version: 1,
        };
        self.data.insert(key.to_vec(), kv);
        None
    }

    fn txn_op(&mut self, op: &TxnOp, revision: Revision, changed: &mut bool) -> OpResult {
        match op {
            TxnOp::Range(query) => OpResult::Range(self.range(query)),
            TxnOp::Put {
                key,
                value,
                prev_kv,
            } => {
                *changed = true;
                let previous = self.put(key, value, revision);
                OpResult::Put {
                    prev_kv: previous.filter(|_| *prev_kv).map(|kv| Entry {
                        key: key.clone(),
                        kv,
                    }),
                }
            }
            TxnOp::DeleteRange { range, prev_kv } => {
                let keys: Vec<Vec<u8>> = range.iter(&self.data).map(|(k, _)| k.clone()).collect();
                let mut prev_kvs = Vec::new();
                for key in &keys {
                    if let Some(kv) = self.data.remove(key)
                        && *prev_kv
                    {
                        prev_kvs.push(Entry {
                            key: key.clone(),
                            kv,
                        });
                    }
                }
                *changed |= !keys.is_empty();
                OpResult::DeleteRange {
                    deleted: keys.len() as u64,
                    prev_kvs,
                }
            }
        }
    }

    /// Whether a transaction's comparison holds now.
    pub fn compare(&self, compare: &Compare) -> bool {
        let check = |kv: Option<&KeyValue>| -> bool {
            let ordering = match &compare.target {
                CompareTarget::Value(value) => match kv {
                    Some(kv) => kv.value.as_slice().cmp(value.as_slice()),
                    None => return false,
                },
                CompareTarget::Version(v) => kv.map_or(0, |kv| kv.version).cmp(v),
                CompareTarget::Create(r) => kv.map_or(0, |kv| kv.create_revision).cmp(r),
                CompareTarget::Mod(r) => kv.map_or(0, |kv| kv.mod_revision).cmp(r),
            };
            compare.result.holds(ordering)
        };
        if compare.range.range_end.is_empty() {
            check(self.data.get(&compare.range.key))
        } else {
            compare
                .range
                .iter(&self.data)
                .all(|(_, kv)| check(Some(kv)))
        }
    }

    /// A range read of the current state.
    pub fn range(&self, query: &RangeQuery) -> RangeResult {
        range_of(query.range.iter(&self.data).collect(), query)
    }

    /// Keeps the session table within [`MAX_SESSIONS`]. The scan is O(n) but
    /// runs only when a new client arrives at a full table.
    fn evict_sessions(&mut self) {
        while self.sessions.len() > MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, session)| session.last_index)
                .map(|(client, _)| *client);
            match oldest {
                Some(client) => {
                    self.sessions.remove(&client);
                }
                None => break,
            }
        }
    }
}

/// A range's answer from the entries in it (in key order): etcd's count,
/// sort, limit, keys-only and count-only.
pub fn range_of(mut entries: Vec<(&Vec<u8>, &KeyValue)>, query: &RangeQuery) -> RangeResult {
    let count = entries.len() as u64;
    if query.count_only {
        return RangeResult {
            kvs: Vec::new(),
            more: false,
            count,
        };
    }
    // etcd: a sort on the key ascending is the natural order; NONE with
    // a target other than KEY sorts ascending.
    let order = match (query.sort_order, query.sort_target) {
        (SortOrder::None, SortTarget::Key) => SortOrder::None,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    if order != SortOrder::None {
        let key = |(k, kv): &(&Vec<u8>, &KeyValue)| -> (i64, Vec<u8>) {
            match query.sort_target {
                SortTarget::Key => (0, (*k).clone()),
                SortTarget::Version => (kv.version, Vec::new()),
                SortTarget::Create => (kv.create_revision, Vec::new()),
                SortTarget::Mod => (kv.mod_revision, Vec::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        // Stable: keys in key order among equals.
        entries.sort_by_key(key);
        if order == SortOrder::Descend {
            entries.reverse();
        }
    }
    let limit = if query.limit == 0 {
        usize::MAX
    } else {
        usize::try_from(query.limit).unwrap_or(usize::MAX)
    };
    let more = entries.len() > limit;
    let kvs = entries
        .into_iter()
        .take(limit)
        .map(|(key, kv)| Entry {
            key: key.clone(),
            kv: if query.keys_only {
                KeyValue {
                    value: Vec::new(),
                    ..kv.clone()
                }
            } else {
                kv.clone()
            },
        })
        .collect();
    RangeResult { kvs, more, count }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client_id: u64, seq: u64, key: &str, value: &str) -> KvCommand {
        KvCommand::new(
            client_id,
            seq,
            KvOp::Put {
                key: key.into(),
                value: value.into(),
            },
        )
    }

    #[test]
    fn a_retried_write_is_applied_once() {
        let mut image = KvImage::default();
        let first = image.apply(1, &put(7, 1, "k", "a")).unwrap();
        assert_eq!(first.previous, None);
        // Someone else overwrites the key; the retry must not write "a" again.
        image.apply(2, &put(8, 1, "k", "b")).unwrap();
        let retry = image.apply(3, &put(7, 1, "k", "a")).unwrap();
        assert_eq!(retry, first, "the retry gets the first answer");
        assert_eq!(
            image.get(b"k").map(|kv| kv.value.as_slice()),
            Some(&b"b"[..])
        );
        assert!(matches!(
            image.apply(4, &put(7, 0, "k", "c")),
            Err(ApplyError::StaleSequence { .. })
        ));
    }

    #[test]
    fn writes_without_a_session_apply_every_time() {
        let mut image = KvImage::default();
        image.apply(1, &put(0, 0, "k", "a")).unwrap();
        let again = image.apply(2, &put(0, 0, "k", "a")).unwrap();
        assert_eq!(again.previous.as_deref(), Some("a"));
        assert!(image.sessions.is_empty());
    }

    #[test]
    fn previous_values_are_copied_as_text_with_invalid_bytes_replaced() {
        assert_eq!(lossy(b"plain"), "plain");
        assert_eq!(lossy("h\u{e9}".as_bytes()), "h\u{e9}");
        assert_eq!(lossy(&[b'a', 0xff, b'b']), "a\u{fffd}b");
        assert_eq!(lossy(&[]), "");
    }

    #[test]
    fn compare_and_swap() {
        let mut image = KvImage::default();
        let cas = |expected: Option<&str>, new_value: Option<&str>| KvOp::Cas {
            key: "k".into(),
            expected: expected.map(Into::into),
            new_value: new_value.map(Into::into),
        };
        assert!(image.execute(&cas(None, Some("1"))).succeeded);
        let failed = image.execute(&cas(Some("0"), Some("2")));
        assert!(!failed.succeeded);
        assert_eq!(failed.previous.as_deref(), Some("1"));
        assert!(image.execute(&cas(Some("1"), None)).succeeded);
        assert_eq!(image.get(b"k"), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let mut image = KvImage::default();
        for client in 1..=(MAX_SESSIONS as u64 + 5) {
            image.apply(client, &put(client, 1, "k", "v")).unwrap();
        }
        assert_eq!(image.sessions.len(), MAX_SESSIONS);
        assert!(
            !image.sessions.contains_key(&1),
            "the oldest session goes first"
        );
    }

    fn txn_put(key: &str, value: &[u8]) -> TxnOp {
        TxnOp::Put {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            prev_kv: true,
        }
    }

    fn single(key: &str) -> KeyRange {
        KeyRange {
            key: key.as_bytes().to_vec(),
            range_end: Vec::new(),
        }
    }

    fn etcd(txn: Txn) -> KvCommand {
        KvCommand::new(0, 0, KvOp::Txn(txn))
    }

    fn kv_of(image: &KvImage, key: &str) -> (Revision, Revision, i64) {
        let kv = image.get(key.as_bytes()).expect("the key exists");
        (kv.create_revision, kv.mod_revision, kv.version)
    }

    #[test]
    fn revisions_follow_etcd() {
        let mut image = KvImage::default();
        assert_eq!(image.revision, 1, "an empty store is at revision 1");
        image.apply(1, &put(0, 0, "a", "1")).unwrap();
        assert_eq!(image.revision, 2);
        assert_eq!(kv_of(&image, "a"), (2, 2, 1));
        image.apply(2, &put(0, 0, "a", "1")).unwrap();
        assert_eq!(image.revision, 3, "a put of the same value is a change");
        assert_eq!(kv_of(&image, "a"), (2, 3, 2));
        // Deleting an absent key changes nothing.
        let absent = KvCommand::new(0, 0, KvOp::Delete { key: "zz".into() });
        assert_eq!(image.apply(3, &absent).unwrap().revision, 3);
        // A failed CAS changes nothing.
        let cas = KvCommand::new(
            0,
            0,
            KvOp::Cas {
                key: "a".into(),
                expected: Some("0".into()),
                new_value: Some("2".into()),
            },
        );
        assert!(!image.apply(4, &cas).unwrap().succeeded);
        assert_eq!(image.revision, 3);
        // A transaction's writes share one revision; the version counts puts.
        let txn = Txn {
            compares: vec![Compare {
                range: single("a"),
                target: CompareTarget::Mod(3),
                result: CompareResult::Equal,
            }],
            success: vec![
                txn_put("a", b"x"),
                txn_put("a", b"y"),
                txn_put("b", &[0xff]),
            ],
            failure: vec![],
        };
        let result = image.apply(5, &etcd(txn.clone())).unwrap();
        assert!(result.succeeded);
        assert_eq!(result.revision, 4);
        assert_eq!(kv_of(&image, "a"), (2, 4, 4));
        assert_eq!(kv_of(&image, "b"), (4, 4, 1));
        let responses = result.txn.unwrap().responses;
        let OpResult::Put {
            prev_kv: Some(prev),
        } = &responses[1]
        else {
            panic!("a prev_kv: {responses:?}")
        };
        assert_eq!(prev.kv.value, b"x", "the second put sees the first");
        // The same transaction again: mod revision is 4 now, so it fails,
        // and its empty failure branch changes nothing.
        let again = image.apply(6, &etcd(txn)).unwrap();
        assert!(!again.succeeded);
        assert_eq!(image.revision, 4);
        // A deleted and re-created key starts over.
        let delete = Txn {
            success: vec![TxnOp::DeleteRange {
                range: KeyRange {
                    key: b"a".to_vec(),
                    range_end: vec![0],
                },
                prev_kv: true,
            }],
            ..Txn::default()
        };
        let deleted = image.apply(7, &etcd(delete)).unwrap();
        assert_eq!(deleted.revision, 5);
        let OpResult::DeleteRange { deleted, prev_kvs } = &deleted.txn.unwrap().responses[0] else {
            panic!("a delete range result")
        };
        assert_eq!((*deleted, prev_kvs.len()), (2, 2));
        image.apply(8, &put(0, 0, "a", "again")).unwrap();
        assert_eq!(kv_of(&image, "a"), (6, 6, 1));
    }

    #[test]
    fn compares_cover_every_target_and_operator() {
        let mut image = KvImage::default();
        image.apply(1, &put(0, 0, "k", "m")).unwrap(); // revision 2, version 1
        let holds = |image: &KvImage, target: CompareTarget, result: CompareResult| {
            image.compare(&Compare {
                range: single("k"),
                target,
                result,
            })
        };
        use CompareResult::*;
        for (target, equal) in [
            (CompareTarget::Value(b"m".to_vec()), true),
            (CompareTarget::Version(1), true),
            (CompareTarget::Create(2), true),
            (CompareTarget::Mod(2), true),
        ] {
            assert_eq!(holds(&image, target.clone(), Equal), equal, "{target:?}");
            assert!(!holds(&image, target.clone(), NotEqual), "{target:?}");
            assert!(!holds(&image, target.clone(), Greater), "{target:?}");
            assert!(!holds(&image, target, Less));
        }
        assert!(holds(&image, CompareTarget::Value(b"a".to_vec()), Greater));
        assert!(holds(&image, CompareTarget::Value(b"z".to_vec()), Less));
        assert!(holds(&image, CompareTarget::Version(2), Less));
        assert!(holds(&image, CompareTarget::Mod(1), Greater));
        assert!(holds(&image, CompareTarget::Create(3), NotEqual));
        // An absent key: version and revisions 0, and no value to compare.
        let absent = |target, result| {
            image.compare(&Compare {
                range: single("nope"),
                target,
                result,
            })
        };
        assert!(absent(CompareTarget::Version(0), Equal));
        assert!(absent(CompareTarget::Create(0), Equal));
        assert!(!absent(CompareTarget::Value(Vec::new()), Equal));
    }

    #[test]
    fn ranges_limit_sort_and_count() {
        let mut image = KvImage::default();
        for (i, key) in ["b", "a", "c", "ab"].iter().enumerate() {
            image
                .apply(i as u64 + 1, &put(0, 0, key, &format!("v{i}")))
                .unwrap();
        }
        let query = |range_end: &[u8], limit, order, target| RangeQuery {
            range: KeyRange {
                key: b"a".to_vec(),
                range_end: range_end.to_vec(),
            },
            limit,
            sort_order: order,
            sort_target: target,
            ..RangeQuery::default()
        };
        let keys = |result: RangeResult| -> Vec<String> {
            result
                .kvs
                .iter()
                .map(|e| String::from_utf8(e.key.clone()).unwrap())
                .collect()
        };
        // Prefix "a": range_end "b".
        let prefix = image.range(&query(b"b", 0, SortOrder::None, SortTarget::Key));
        assert_eq!(prefix.count, 2);
        assert_eq!(keys(prefix), ["a", "ab"]);
        let all = image.range(&query(&[0], 2, SortOrder::Descend, SortTarget::Key));
        assert_eq!((all.count, all.more), (4, true));
        assert_eq!(keys(all), ["c", "b"]);
        let by_mod = image.range(&query(&[0], 0, SortOrder::Descend, SortTarget::Mod));
        assert_eq!(keys(by_mod), ["ab", "c", "a", "b"]);
        let mut counted = query(&[0], 0, SortOrder::None, SortTarget::Key);
        counted.count_only = true;
        let counted = image.range(&counted);
        assert_eq!((counted.count, counted.kvs.len()), (4, 0));
        // A non-UTF-8 value is kept as bytes.
        image
            .apply(
                9,
                &etcd(Txn {
                    success: vec![txn_put("bin", &[0, 159, 146, 150])],
                    ..Txn::default()
                }),
            )
            .unwrap();
        assert_eq!(image.get(b"bin").unwrap().value, [0, 159, 146, 150]);
    }
}
