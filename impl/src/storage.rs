//! Durable state in the node's data directory.
//!
//! ```text
//! <data-dir>/identity.json                    cluster id, node id, member ids (checked at every start)
//! <data-dir>/raft.redb                        hard state, snapshot pointer, log entries
//! <data-dir>/snapshot-<index>-<term>.snap     the latest snapshot image (see snapshot_file)
//! ```
//!
//! **Why redb.** It is pure Rust (quick to build on a 2-core CI, no C
//! toolchain), ACID, and every `commit` is durable by default (fsync). One
//! write transaction per batch of core transitions gives group commit: the
//! hard state and all entries of the batch become durable with one commit
//! before any message depending on them leaves. A hand-written WAL would have
//! to re-implement the torn-write recovery redb already has; rocksdb takes
//! far too long to build; sled is beta.
//!
//! **Checksums and torn tails.** redb commits are atomic: after a crash in the
//! middle of a commit, redb's recovery (reported through its repair callback,
//! which we log) rolls back to the last complete commit — that lost commit was
//! never fsynced, so nothing depending on it was ever sent or acknowledged, which is exactly what
//! Raft allows to lose. On top of that, every record we store carries its own
//! crc32 and the log must be contiguous: a record that fails either check is
//! reported with its file and index and the node refuses to start — acknowledged
//! data is never silently dropped or accepted corrupted.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use imbl::Vector;
use prost::Message as _;
use raft_model::{Config, Index, Log, NodeId, Snapshot, SnapshotMeta, Term};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::convert::{entry_from_proto, entry_to_proto};
use crate::kv::{KvCommand, KvImage};
use crate::proto::peer as pb;
use crate::snapshot_file::{self, SnapshotError};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HARD_STATE: &str = "hard_state";
const SNAPSHOT: &str = "snapshot";
const DB_FILE: &str = "raft.redb";
const IDENTITY_FILE: &str = "identity.json";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "data directory {0} does not exist; pass --init (or `init = true`) to create a new node there. Only do so on a node's first start: a node that lost its data must not rejoin with an empty log and vote again"
    )]
    Missing(PathBuf),
    #[error("{0} is not a raft-node data directory (it is not empty and has no identity.json)")]
    NotADataDir(PathBuf),
    #[error(
        "data directory {dir} belongs to node {found_node} of cluster {found_cluster:?}, not to node {node} of cluster {cluster:?}: refusing to start on another node's data"
    )]
    Foreign {
        dir: PathBuf,
        found_cluster: String,
        found_node: NodeId,
        cluster: String,
        node: NodeId,
    },
    #[error(
        "data directory {dir} was created for members {found:?}, but the configuration lists {configured:?} (membership changes are not supported)"
    )]
    MembersChanged {
        dir: PathBuf,
        found: Vec<NodeId>,
        configured: Vec<NodeId>,
    },
    #[error("data directory {0} is in use by another running node")]
    Locked(PathBuf),
    #[error("corrupted data in {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage error in {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// What the data directory records about whose data it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: NodeId,
    pub members: Vec<NodeId>,
}

/// The persistent state found at start: what `Server::recover` takes.
pub struct Recovered {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    pub snapshot: Snapshot<KvImage>,
    pub log: Log<KvCommand>,
    /// redb had to recover from an unclean shutdown.
    pub repaired: bool,
}

/// One group commit: everything a batch of transitions asked to persist.
#[derive(Default)]
pub struct WriteBatch {
    pub hard_state: Option<(Term, Option<NodeId>)>,
    /// A new snapshot to make durable; log entries it covers are deleted.
    pub snapshot: Option<Snapshot<KvImage>>,
    /// Entries written (appended or overwritten), in index order.
    pub entries: Vec<(Index, pb::Entry)>,
    /// When set, every stored entry after this index is deleted (the log was
    /// truncated or rewritten from some index on).
    pub last_index: Option<Index>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.snapshot.is_none() && self.last_index.is_none()
    }
}

pub struct Storage {
    dir: PathBuf,
    db_path: PathBuf,
    db: Database,
    /// The highest log index stored, so that the common append-only commit
    /// skips the range deletion of a truncation it does not need.
    stored_last: std::sync::atomic::AtomicU64,
}

fn with_crc(payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(payload.len() + 4);
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    record.extend_from_slice(payload);
    record
}

fn check_crc<'a>(
    record: &'a [u8],
    path: &Path,
    what: impl Fn() -> String,
) -> Result<&'a [u8], StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        path: path.to_owned(),
        what: format!("{}: {detail}", what()),
    };
    if record.len() < 4 {
        return Err(corrupt(format!(
            "record of {} bytes is too short",
            record.len()
        )));
    }
    let (crc, payload) = record.split_at(4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    Ok(payload)
}

fn two_u64(payload: &[u8]) -> Option<(u64, u64)> {
    let a = u64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
    let b = u64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
    (payload.len() == 16).then_some((a, b))
}

fn encode_two_u64(a: u64, b: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(16);
    payload.extend_from_slice(&a.to_le_bytes());
    payload.extend_from_slice(&b.to_le_bytes());
    payload
}

impl Storage {
    /// Opens (or, with `init`, creates) the data directory of `identity`'s
    /// node and loads its persistent state.
    pub fn open(
        dir: &Path,
        identity: &Identity,
        init: bool,
    ) -> Result<(Storage, Recovered), StorageError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StorageError::Io { path, source }
        };
        check_identity(dir, identity, init)?;
        let db_path = dir.join(DB_FILE);
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = repaired.clone();
        let mut builder = Database::builder();
        builder.set_repair_callback(move |_| flag.store(true, Ordering::Relaxed));
        let db = builder.create(&db_path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StorageError::Locked(dir.to_owned()),
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => io(&db_path)(source),
            other => StorageError::Db {
                path: db_path.clone(),
                message: other.to_string(),
            },
        })?;
        let storage = Storage {
            dir: dir.to_owned(),
            db_path,
            db,
            // Unknown until loaded: assume anything may be stored.
            stored_last: u64::MAX.into(),
        };
        let mut recovered = storage.load(identity)?;
        storage
            .stored_last
            .store(recovered.log.last_index(), Ordering::Relaxed);
        recovered.repaired = repaired.load(Ordering::Relaxed);
        storage.remove_stale_snapshot_files(
            recovered.snapshot.meta.last_index,
            recovered.snapshot.meta.last_term,
        );
        Ok((storage, recovered))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db_error(&self, err: impl std::fmt::Display) -> StorageError {
        StorageError::Db {
            path: self.db_path.clone(),
            message: err.to_string(),
        }
    }

    fn load(&self, identity: &Identity) -> Result<Recovered, StorageError> {
        let txn = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let (mut current_term, mut voted_for) = (0, None);
        let mut snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: 0,
                last_term: 0,
                config: Config::new(identity.members.iter().copied()),
            },
            data: KvImage::default(),
        };
        let mut entries = Vector::new();
        // A fresh database has no tables yet.
        let meta = match txn.open_table(META) {
            Ok(table) => Some(table),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(err) => return Err(self.db_error(err)),
        };
        if let Some(meta) = meta {
            if let Some(record) = meta.get(HARD_STATE).map_err(|e| self.db_error(e))? {
                let payload = check_crc(record.value(), &self.db_path, || "hard state".into())?;
                let (term, vote) = two_u64(payload).ok_or_else(|| StorageError::Corrupt {
                    path: self.db_path.clone(),
                    what: "hard state record has the wrong length".into(),
                })?;
                current_term = term;
                voted_for = (vote != 0).then_some(vote);
            }
            if let Some(record) = meta.get(SNAPSHOT).map_err(|e| self.db_error(e))? {
                let payload =
                    check_crc(record.value(), &self.db_path, || "snapshot pointer".into())?;
                let (index, term) = two_u64(payload).ok_or_else(|| StorageError::Corrupt {
                    path: self.db_path.clone(),
                    what: "snapshot pointer record has the wrong length".into(),
                })?;
                snapshot = snapshot_file::read_file(&self.dir, index, term)?;
            }
        }
        let snapshot_index = snapshot.meta.last_index;
        match txn.open_table(LOG) {
            Ok(log) => {
                let first = snapshot_index + 1;
                let range = log.range(first..).map_err(|e| self.db_error(e))?;
                for (expected, item) in (first..).zip(range) {
                    let (key, value) = item.map_err(|e| self.db_error(e))?;
                    let index = key.value();
                    if index != expected {
                        return Err(StorageError::Corrupt {
                            path: self.db_path.clone(),
                            what: format!(
                                "log entry {expected} is missing (next stored entry is {index})"
                            ),
                        });
                    }
                    let payload = check_crc(value.value(), &self.db_path, || {
                        format!("log entry {index}")
                    })?;
                    let entry = pb::Entry::decode(payload)
                        .map_err(|err| err.to_string())
                        .and_then(|entry| entry_from_proto(entry).map_err(|err| err.to_string()))
                        .map_err(|err| StorageError::Corrupt {
                            path: self.db_path.clone(),
                            what: format!("log entry {index} does not decode: {err}"),
                        })?;
                    entries.push_back(entry);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(err) => return Err(self.db_error(err)),
        }
        let log = Log {
            snapshot_index,
            snapshot_term: snapshot.meta.last_term,
            entries,
        };
        Ok(Recovered {
            current_term,
            voted_for,
            snapshot,
            log,
            repaired: false,
        })
    }

    /// Makes one batch durable with a single redb commit (one fsync). A new
    /// snapshot's file is written (and fsynced) first unless it already
    /// exists, so the pointer committed here never names a missing file.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        if let Some(snapshot) = &batch.snapshot {
            let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
            if !self
                .dir
                .join(snapshot_file::file_name(index, term))
                .exists()
            {
                let bytes = snapshot_file::encode(&snapshot.meta, &snapshot.data);
                snapshot_file::write_file(&self.dir, index, term, &bytes)?;
            }
        }
        let txn = self.db.begin_write().map_err(|e| self.db_error(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.db_error(e))?;
            let mut log = txn.open_table(LOG).map_err(|e| self.db_error(e))?;
            if let Some((term, vote)) = batch.hard_state {
                let record = with_crc(&encode_two_u64(term, vote.unwrap_or(0)));
                meta.insert(HARD_STATE, record.as_slice())
                    .map_err(|e| self.db_error(e))?;
            }
            if let Some(snapshot) = &batch.snapshot {
                let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
                let record = with_crc(&encode_two_u64(index, term));
                meta.insert(SNAPSHOT, record.as_slice())
                    .map_err(|e| self.db_error(e))?;
                log.retain_in(..=index, |_, _| false)
                    .map_err(|e| self.db_error(e))?;
            }
            for (index, entry) in &batch.entries {
                let record = with_crc(&entry.encode_to_vec());
                log.insert(*index, record.as_slice())
                    .map_err(|e| self.db_error(e))?;
            }
            if let Some(last) = batch.last_index
                && self.stored_last.load(Ordering::Relaxed) > last
            {
                log.retain_in((last + 1).., |_, _| false)
                    .map_err(|e| self.db_error(e))?;
            }
        }
        txn.commit().map_err(|e| self.db_error(e))?;
        if let Some(last) = batch.last_index {
            self.stored_last.store(last, Ordering::Relaxed);
        }
        if let Some(snapshot) = &batch.snapshot {
            self.remove_stale_snapshot_files(snapshot.meta.last_index, snapshot.meta.last_term);
        }
        Ok(())
    }

    /// Deletes snapshot files other than the current one (older snapshots and
    /// leftovers of interrupted writes). Best effort: a file left behind is
    /// only wasted space.
    fn remove_stale_snapshot_files(&self, index: Index, term: Term) {
        let keep = snapshot_file::file_name(index, term);
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for item in dir.flatten() {
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("snapshot-") && *name != keep {
                let _ = fs::remove_file(item.path());
            }
        }
    }
}

/// Creates the data directory (with `init`) or checks that it is this node's.
fn check_identity(dir: &Path, identity: &Identity, init: bool) -> Result<(), StorageError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StorageError::Io { path, source }
    };
    let path = dir.join(IDENTITY_FILE);
    if !dir.exists() {
        if !init {
            return Err(StorageError::Missing(dir.to_owned()));
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if !path.exists() {
        let empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty {
            return Err(StorageError::NotADataDir(dir.to_owned()));
        }
        if !init {
            return Err(StorageError::Missing(dir.to_owned()));
        }
        let json = serde_json::to_vec_pretty(identity).map_err(|err| StorageError::Io {
            path: path.clone(),
            source: err.into(),
        })?;
        let tmp = dir.join("identity.json.tmp");
        fs::write(&tmp, json).map_err(io(&tmp))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        return Ok(());
    }
    let bytes = fs::read(&path).map_err(io(&path))?;
    let found: Identity = serde_json::from_slice(&bytes).map_err(|err| StorageError::Corrupt {
        path: path.clone(),
        what: format!("identity file does not parse: {err}"),
    })?;
    if found.cluster_id != identity.cluster_id || found.node_id != identity.node_id {
        return Err(StorageError::Foreign {
            dir: dir.to_owned(),
            found_cluster: found.cluster_id,
            found_node: found.node_id,
            cluster: identity.cluster_id.clone(),
            node: identity.node_id,
        });
    }
    let mut found_members = found.members.clone();
    let mut configured = identity.members.clone();
    found_members.sort_unstable();
    configured.sort_unstable();
    if found_members != configured {
        return Err(StorageError::MembersChanged {
            dir: dir.to_owned(),
            found: found_members,
            configured,
        });
    }
    Ok(())
}

/// The batch for entries `from..=last` of `log` (those still held), plus the
/// truncation of anything stored after `last`.
pub fn log_batch(log: &Log<KvCommand>, from: Index, batch: &mut WriteBatch) {
    let start = from.max(log.snapshot_index + 1);
    // entries_from is O(log n): never walk the whole log for a batch.
    batch.entries = (start..)
        .zip(log.entries_from(start, usize::MAX).iter())
        .map(|(index, entry)| (index, entry_to_proto(entry)))
        .collect();
    batch.last_index = Some(log.last_index());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvOp;
    use raft_model::{Entry, Payload};
    use redb::ReadableTable;

    fn identity() -> Identity {
        Identity {
            cluster_id: "test".into(),
            node_id: 1,
            members: vec![1, 2, 3],
        }
    }

    fn entry(term: Term, key: &str) -> Entry<KvCommand> {
        Entry {
            term,
            payload: Payload::Command(KvCommand {
                client_id: 1,
                seq: 1,
                op: KvOp::Put {
                    key: key.into(),
                    value: "v".into(),
                },
            }),
        }
    }

    fn log_of(entries: &[Entry<KvCommand>]) -> Log<KvCommand> {
        let mut log = Log::default();
        for e in entries {
            log.append(e.clone());
        }
        log
    }

    #[test]
    fn state_survives_reopen_and_truncation_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        {
            let (storage, recovered) = Storage::open(&path, &identity(), true).unwrap();
            assert_eq!(recovered.log.last_index(), 0);
            let mut batch = WriteBatch {
                hard_state: Some((3, Some(2))),
                ..Default::default()
            };
            log_batch(
                &log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]),
                1,
                &mut batch,
            );
            storage.write(batch).unwrap();
            // A new leader overwrites entry 2 and drops entry 3.
            let mut batch = WriteBatch::default();
            log_batch(&log_of(&[entry(1, "a"), entry(3, "x")]), 2, &mut batch);
            storage.write(batch).unwrap();
        }
        let (_storage, recovered) = Storage::open(&path, &identity(), false).unwrap();
        assert_eq!((recovered.current_term, recovered.voted_for), (3, Some(2)));
        assert_eq!(recovered.log, log_of(&[entry(1, "a"), entry(3, "x")]));
    }

    #[test]
    fn compaction_keeps_the_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        {
            let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
            let mut batch = WriteBatch::default();
            let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]);
            log_batch(&log, 1, &mut batch);
            storage.write(batch).unwrap();
            let mut image = KvImage::default();
            image.data.insert("a".into(), "v".into());
            let snapshot = Snapshot {
                meta: SnapshotMeta {
                    last_index: 2,
                    last_term: 1,
                    config: Config::new([1, 2, 3]),
                },
                data: image,
            };
            storage
                .write(WriteBatch {
                    snapshot: Some(snapshot),
                    ..Default::default()
                })
                .unwrap();
        }
        let (_storage, recovered) = Storage::open(&path, &identity(), false).unwrap();
        assert_eq!(recovered.snapshot.meta.last_index, 2);
        assert_eq!(recovered.log.snapshot_index, 2);
        assert_eq!(recovered.log.last_index(), 3);
        assert_eq!(recovered.log.entry(3), Some(&entry(2, "c")));
        assert_eq!(
            recovered.snapshot.data.get("a").map(String::as_str),
            Some("v")
        );
    }

    #[test]
    fn refuses_missing_foreign_and_changed_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        assert!(matches!(
            Storage::open(&path, &identity(), false),
            Err(StorageError::Missing(_))
        ));
        drop(Storage::open(&path, &identity(), true).unwrap());
        let other = Identity {
            node_id: 2,
            ..identity()
        };
        let err = Storage::open(&path, &other, true).err().unwrap();
        assert!(matches!(err, StorageError::Foreign { .. }), "{err}");
        let grown = Identity {
            members: vec![1, 2, 3, 4],
            ..identity()
        };
        assert!(matches!(
            Storage::open(&path, &grown, false),
            Err(StorageError::MembersChanged { .. })
        ));
        let stray = dir.path().join("stray");
        fs::create_dir_all(&stray).unwrap();
        fs::write(stray.join("notes.txt"), "hi").unwrap();
        assert!(matches!(
            Storage::open(&stray, &identity(), true),
            Err(StorageError::NotADataDir(_))
        ));
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        let _first = Storage::open(&path, &identity(), true).unwrap();
        assert!(matches!(
            Storage::open(&path, &identity(), false),
            Err(StorageError::Locked(_))
        ));
    }

    /// Writes a few entries and a snapshot, returning the node's directory.
    fn populated(dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("node");
        let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
        let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]);
        let mut batch = WriteBatch::default();
        log_batch(&log, 1, &mut batch);
        storage.write(batch).unwrap();
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: 2,
                last_term: 1,
                config: Config::new([1, 2, 3]),
            },
            data: KvImage::default(),
        };
        storage
            .write(WriteBatch {
                snapshot: Some(snapshot),
                ..Default::default()
            })
            .unwrap();
        path
    }

    #[test]
    fn a_torn_snapshot_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(&dir);
        let file = path.join(snapshot_file::file_name(2, 1));
        let bytes = fs::read(&file).unwrap();
        fs::write(&file, &bytes[..bytes.len() - 3]).unwrap();
        let err = Storage::open(&path, &identity(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("checksum") && err.contains("snapshot-"),
            "{err}"
        );
        fs::remove_file(&file).unwrap();
        let err = Storage::open(&path, &identity(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("snapshot-"),
            "a missing snapshot is named: {err}"
        );
    }

    #[test]
    fn a_torn_database_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(&dir);
        let db = path.join(DB_FILE);
        let bytes = fs::read(&db).unwrap();
        fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
        match Storage::open(&path, &identity(), false) {
            Err(err) => {
                eprintln!("torn database reported: {err}");
                assert!(err.to_string().contains("raft.redb"), "{err}");
            }
            // If redb can recover an intact earlier commit, nothing acknowledged may be missing.
            Ok((_, recovered)) => assert_eq!(recovered.log.last_index(), 3),
        }
    }

    #[test]
    fn a_corrupted_record_is_reported_with_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        {
            let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
            let mut batch = WriteBatch::default();
            log_batch(&log_of(&[entry(1, "a"), entry(1, "b")]), 1, &mut batch);
            storage.write(batch).unwrap();
            // Flip a byte of entry 2's payload behind the checksum's back.
            let txn = storage.db.begin_write().unwrap();
            {
                let mut log = txn.open_table(LOG).unwrap();
                let mut record = log.get(2).unwrap().unwrap().value().to_vec();
                let last = record.len() - 1;
                record[last] ^= 1;
                log.insert(2, record.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let err = Storage::open(&path, &identity(), false).err().unwrap();
        let text = err.to_string();
        assert!(
            text.contains("log entry 2") && text.contains("checksum"),
            "{text}"
        );
        assert!(text.contains("raft.redb"), "{text}");
    }
}
