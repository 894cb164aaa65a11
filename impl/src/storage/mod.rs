//! Durable state in the node's data directory.
//!
//! ```text
//! <data-dir>/identity.json                    cluster id, node id, member ids (checked at every start)
//! <data-dir>/LOCK                             held (flock) while a node runs on the directory
//! <data-dir>/raft.log                         hard state, snapshot pointer, log entries (log_file records)
//! <data-dir>/snapshot-<index>-<term>.snap     the latest snapshot image (see snapshot_file)
//! ```
//!
//! **Why an append-only file.** Each batch of core transitions becomes one
//! append of framed records and one `fdatasync` (group commit), the cheapest
//! durable write the disk offers: the etcd comparison measured a redb commit
//! at 1-4 ms where a bare fdatasync cost 0.1-0.2 ms, and that cost sits on
//! every write's path twice (leader, then follower). The records are
//! replayed in order at start:
//!
//! - `HardState(term, vote)`: the latest one wins;
//! - `Snapshot(index, term)`: the snapshot file now in force; entries up to
//!   `index` are dropped;
//! - `Entry(index, entry)`: entries from `index` on are dropped, then the
//!   entry is appended — so an overwrite needs no separate record; an index
//!   beyond the end + 1 is a gap: corruption;
//! - `Truncate(last)`: entries after `last` are dropped.
//!
//! A new snapshot is one more record, appended like any other (so taking a
//! snapshot costs one fdatasync, not a stall of the event loop). Once the
//! file holds more than [`REWRITE_BYTES`] of dead records, the next
//! snapshot rewrites it (atomically: temporary file, fsync, rename, directory
//! fsync) with only the hard state, the snapshot pointer and the entries
//! after it, so it does not grow forever. The storage keeps the framed
//! records of the live entries in memory for that (the core holds the same
//! entries anyway).
//!
//! **Checksums, cuts and torn tails** (rules in `log_file`): every record has
//! a crc32 and a doubly stored length, and the file is preallocated with its
//! length recorded in each batch; a damaged record anywhere, or a file
//! shorter than it was made, is reported with the file and offset and the
//! node refuses to start. Only a torn final write (a batch whose fdatasync
//! never returned, so nothing depending on it was ever sent or acknowledged)
//! is cut off — what Raft allows to lose. A file cut at a record boundary is
//! not taken for a shorter log: that would drop acknowledged entries from
//! the majority that committed them.

use std::collections::VecDeque;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use imbl::Vector;
use prost::Message as _;
use raft_model::{Config, Index, Log, NodeId, Snapshot, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

use crate::convert::{entry_from_proto, entry_to_proto};
use crate::kv::{KvCommand, KvImage};
use crate::proto::peer as pb;
use log_file::{LogFile, LogFileError};
use snapshot_file::SnapshotError;

pub mod log_file;
pub mod snapshot_file;

const LOG_FILE: &str = "raft.log";
const LOCK_FILE: &str = "LOCK";
/// The file of earlier versions (redb); its data is not read.
const OLD_DB_FILE: &str = "raft.redb";
const IDENTITY_FILE: &str = "identity.json";

/// A snapshot rewrites the log file once it holds this many bytes of dead
/// records (entries a snapshot covers, overwritten entries, old hard states).
pub const REWRITE_BYTES: u64 = 64 << 20;

/// Record kinds (the first byte of a record's body).
const HARD_STATE: u8 = 1;
const SNAPSHOT: u8 = 2;
const ENTRY: u8 = 3;
const TRUNCATE: u8 = 4;
/// The first record of every log file, written (and fdatasynced) when the
/// node's data directory is created. A log file without it has lost its
/// beginning — emptied or cut at a record boundary — which no torn final
/// write can explain: the node's term, vote and log are gone, and starting
/// as a fresh node could make it vote twice in a term.
const INIT: u8 = 5;
/// The INIT record's payload, so that a stray byte pattern is not taken for it.
const INIT_MAGIC: u64 = 0x7261_6674_2d6e_6f64; // "raft-nod"

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
    #[error(
        "data directory {0} holds raft.redb, the storage format of an earlier version, which this version does not read"
    )]
    OldFormat(PathBuf),
    #[error("corrupted data in {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl From<LogFileError> for StorageError {
    fn from(err: LogFileError) -> Self {
        match err {
            LogFileError::Io { path, source } => StorageError::Io { path, source },
            LogFileError::Corrupt { path, offset, what } => StorageError::Corrupt {
                path,
                what: format!("record at byte {offset}: {what}"),
            },
        }
    }
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
    /// A torn final write (never acknowledged) was cut off the log file.
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

/// What is stored, as the file's records say; kept so that a compaction can
/// rewrite the file without reading it back.
struct Durable {
    file: LogFile,
    hard_state: (Term, Option<NodeId>),
    snapshot: Option<(Index, Term)>,
    /// Framed `Entry` records of indexes `first..`, in order.
    first: Index,
    entries: VecDeque<Vec<u8>>,
    /// [`REWRITE_BYTES`] (tests lower it).
    rewrite_bytes: u64,
}

impl Durable {
    fn last(&self) -> Index {
        self.first + self.entries.len() as Index - 1
    }

    /// Drops stored entries after `last`.
    fn truncate_after(&mut self, last: Index) {
        let keep = (last + 1).saturating_sub(self.first) as usize;
        self.entries.truncate(keep);
    }

    /// Drops stored entries up to `index` (covered by a snapshot).
    fn compact_to(&mut self, index: Index) {
        if index >= self.last() {
            self.entries.clear();
        } else {
            let drop = (index + 1).saturating_sub(self.first) as usize;
            self.entries.drain(..drop);
        }
        self.first = self.first.max(index + 1);
    }

    /// Whether the file holds more than `rewrite_bytes` of dead records.
    fn worth_rewriting(&self) -> bool {
        let live: u64 = self.entries.iter().map(|r| r.len() as u64).sum::<u64>() + 64;
        self.file.size().saturating_sub(live) > self.rewrite_bytes
    }

    /// Every live record, for a rewrite of the whole file.
    fn image(&self) -> Vec<u8> {
        let size: usize = self.entries.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(size + 96);
        out.extend_from_slice(&init_record());
        hard_state_record(&mut out, self.hard_state);
        if let Some((index, term)) = self.snapshot {
            two_u64_record(&mut out, SNAPSHOT, index, term);
        }
        for record in &self.entries {
            out.extend_from_slice(record);
        }
        out
    }
}

fn two_u64_record(out: &mut Vec<u8>, kind: u8, a: u64, b: u64) {
    log_file::frame_with(out, |body| {
        body.push(kind);
        body.extend_from_slice(&a.to_le_bytes());
        body.extend_from_slice(&b.to_le_bytes());
    });
}

fn hard_state_record(out: &mut Vec<u8>, (term, vote): (Term, Option<NodeId>)) {
    two_u64_record(out, HARD_STATE, term, vote.unwrap_or(0));
}

fn entry_record(index: Index, entry: &pb::Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(log_file::HEADER + 9 + entry.encoded_len());
    log_file::frame_with(&mut out, |body| {
        body.push(ENTRY);
        body.extend_from_slice(&index.to_le_bytes());
        entry.encode_raw(body);
    });
    out
}

fn u64_at(body: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
}

pub struct Storage {
    dir: PathBuf,
    log_path: PathBuf,
    durable: Mutex<Durable>,
    /// Held for the node's lifetime: a second node on the directory is refused.
    _lock: fs::File,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Storage {
    /// Opens (or, with `init`, creates) the data directory of `identity`'s
    /// node and loads its persistent state.
    pub fn open(
        dir: &Path,
        identity: &Identity,
        init: bool,
    ) -> Result<(Storage, Recovered), StorageError> {
        check_identity(dir, identity, init)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        // An advisory flock held as long as `lock` lives (fs4: std's own
        // File::try_lock is newer than the crate's minimum Rust version).
        let locked = fs4::fs_std::FileExt::try_lock_exclusive(&lock).map_err(io(&lock_path))?;
        if !locked {
            return Err(StorageError::Locked(dir.to_owned()));
        }
        if dir.join(OLD_DB_FILE).exists() {
            return Err(StorageError::OldFormat(dir.to_owned()));
        }
        let log_path = dir.join(LOG_FILE);
        let lost_beginning = || StorageError::Corrupt {
            path: log_path.clone(),
            what: "the log file has lost its beginning (it is missing, empty or was cut short, \
                   not just torn at its end): this node's term, vote and log entries are gone. \
                   It must not rejoin as a fresh node, which could vote twice in a term: \
                   restore the data directory from a backup"
                .to_owned(),
        };
        let (file, contents) = match LogFile::open(&log_path) {
            Err(LogFileError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Err(lost_beginning());
            }
            opened => opened?,
        };
        if !contents
            .records
            .first()
            .is_some_and(|(_, body)| is_init(body))
        {
            return Err(lost_beginning());
        }
        let (durable, recovered) = replay(dir, &log_path, identity, file, contents)?;
        let storage = Storage {
            dir: dir.to_owned(),
            log_path,
            durable: Mutex::new(durable),
            _lock: lock,
        };
        storage.remove_stale_snapshot_files(
            recovered.snapshot.meta.last_index,
            recovered.snapshot.meta.last_term,
        );
        Ok((storage, recovered))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes one batch durable: one append and one fdatasync, or — when it
    /// carries a new snapshot — one atomic rewrite of the file. A new
    /// snapshot's file is written (and fsynced) first unless it already
    /// exists, so the pointer written here never names a missing file.
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
        let mut durable = self.durable.lock().map_err(|_| StorageError::Corrupt {
            path: self.log_path.clone(),
            what: "an earlier write panicked; the in-memory view of the file is unknown".into(),
        })?;
        let mut appended = Vec::new();
        if let Some(hard_state) = batch.hard_state {
            durable.hard_state = hard_state;
            hard_state_record(&mut appended, hard_state);
        }
        if let Some(snapshot) = &batch.snapshot {
            let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
            durable.snapshot = Some((index, term));
            durable.compact_to(index);
            two_u64_record(&mut appended, SNAPSHOT, index, term);
        }
        for (index, entry) in &batch.entries {
            let index = *index;
            if index <= durable.snapshot.map_or(0, |(s, _)| s) {
                continue;
            }
            durable.truncate_after(index - 1);
            if index != durable.last() + 1 {
                // The core hands over contiguous entries; a gap is a bug here.
                return Err(StorageError::Corrupt {
                    path: self.log_path.clone(),
                    what: format!(
                        "refusing to write log entry {index} after entry {}: the log would have a gap",
                        durable.last()
                    ),
                });
            }
            let record = entry_record(index, entry);
            if record.len() > log_file::HEADER + log_file::MAX_BODY {
                // It would be written, then refused at the next start.
                return Err(StorageError::Corrupt {
                    path: self.log_path.clone(),
                    what: format!(
                        "refusing to write log entry {index} of {} bytes: a record holds at most {}",
                        record.len(),
                        log_file::MAX_BODY
                    ),
                });
            }
            appended.extend_from_slice(&record);
            durable.entries.push_back(record);
        }
        if let Some(last) = batch.last_index
            && durable.last() > last
        {
            durable.truncate_after(last);
            two_u64_record(&mut appended, TRUNCATE, last, 0);
        }
        if batch.snapshot.is_some() && durable.worth_rewriting() {
            let image = durable.image();
            durable.file.replace(&image)?;
        } else if !appended.is_empty() {
            durable.file.append(&appended)?;
        }
        drop(durable);
        if let Some(snapshot) = &batch.snapshot {
            // Only now is the pointer to the new snapshot durable.
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

/// Rebuilds the persistent state from the file's records (rules in the
/// module docs).
fn replay(
    dir: &Path,
    path: &Path,
    identity: &Identity,
    file: LogFile,
    contents: log_file::Contents,
) -> Result<(Durable, Recovered), StorageError> {
    let corrupt = |offset: u64, what: String| StorageError::Corrupt {
        path: path.to_owned(),
        what: format!("record at byte {offset}: {what}"),
    };
    let mut durable = Durable {
        file,
        hard_state: (0, None),
        snapshot: None,
        first: 1,
        entries: VecDeque::new(),
        rewrite_bytes: REWRITE_BYTES,
    };
    let mut entries: VecDeque<raft_model::Entry<KvCommand>> = VecDeque::new();
    for (n, (offset, body)) in contents.records.into_iter().enumerate() {
        let first = n == 0;
        let kind = body.first().copied().unwrap_or(0);
        let (a, b) = (u64_at(&body, 1), u64_at(&body, 9));
        match (kind, a, b) {
            _ if first && is_init(&body) => {}
            (HARD_STATE, Some(term), Some(vote)) if body.len() == 17 => {
                durable.hard_state = (term, (vote != 0).then_some(vote));
            }
            (SNAPSHOT, Some(index), Some(term)) if body.len() == 17 => {
                durable.snapshot = Some((index, term));
                let before = durable.first;
                durable.compact_to(index);
                let dropped = (durable.first - before) as usize;
                entries.drain(..dropped.min(entries.len()));
            }
            (TRUNCATE, Some(last), Some(_)) if body.len() == 17 => {
                durable.truncate_after(last);
                entries.truncate(durable.entries.len());
            }
            (ENTRY, Some(index), _) => {
                let next = durable.last() + 1;
                let floor = durable.snapshot.map_or(0, |(s, _)| s);
                if index <= floor {
                    continue;
                }
                if index > next || index < durable.first {
                    return Err(corrupt(
                        offset,
                        format!("log entry {next} is missing (the next record is entry {index})"),
                    ));
                }
                let entry = pb::Entry::decode(&body[9..])
                    .map_err(|err| err.to_string())
                    .and_then(|entry| entry_from_proto(entry).map_err(|err| err.to_string()))
                    .map_err(|err| {
                        corrupt(offset, format!("log entry {index} does not decode: {err}"))
                    })?;
                durable.truncate_after(index - 1);
                entries.truncate(durable.entries.len());
                let mut record = Vec::with_capacity(log_file::HEADER + body.len());
                log_file::frame(&mut record, &body);
                durable.entries.push_back(record);
                entries.push_back(entry);
            }
            _ => {
                return Err(corrupt(
                    offset,
                    format!(
                        "unknown or malformed record (kind {kind}, {} bytes)",
                        body.len()
                    ),
                ));
            }
        }
    }
    let mut snapshot = Snapshot {
        meta: SnapshotMeta {
            last_index: 0,
            last_term: 0,
            config: Config::new(identity.members.iter().copied()),
        },
        data: KvImage::default(),
    };
    if let Some((index, term)) = durable.snapshot {
        snapshot = snapshot_file::read_file(dir, index, term)?;
    }
    let (current_term, voted_for) = durable.hard_state;
    let log = Log {
        snapshot_index: snapshot.meta.last_index,
        snapshot_term: snapshot.meta.last_term,
        entries: entries.into_iter().collect::<Vector<_>>(),
    };
    let recovered = Recovered {
        current_term,
        voted_for,
        snapshot,
        log,
        repaired: contents.torn_bytes > 0,
    };
    Ok((durable, recovered))
}

/// Whether `dir`, which has no identity file, holds nothing but what an
/// interrupted first start leaves: a lock file, temporary files, and a log
/// holding only its INIT record.
fn unfinished_first_start(dir: &Path) -> Result<bool, StorageError> {
    for item in fs::read_dir(dir).map_err(io(dir))? {
        let item = item.map_err(io(dir))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name == LOG_FILE {
            let path = item.path();
            let bytes = fs::read(&path).map_err(io(&path))?;
            let fresh = log_file::parse(&path, &bytes).is_ok_and(
                |contents| matches!(&contents.records[..], [(_, body)] if is_init(body)),
            );
            if !fresh {
                return Ok(false);
            }
        } else if ![LOCK_FILE, "raft.tmp", "identity.json.tmp"].contains(&&*name) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The framed INIT record.
fn init_record() -> Vec<u8> {
    let mut out = Vec::new();
    two_u64_record(&mut out, INIT, INIT_MAGIC, 0);
    out
}

fn is_init(body: &[u8]) -> bool {
    body.len() == 17
        && body[0] == INIT
        && u64_at(body, 1) == Some(INIT_MAGIC)
        && u64_at(body, 9) == Some(0)
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
        if !unfinished_first_start(dir)? {
            return Err(StorageError::NotADataDir(dir.to_owned()));
        }
        if !init {
            return Err(StorageError::Missing(dir.to_owned()));
        }
        // The log (with its INIT record) first, then the identity: so a
        // directory with an identity always has its log's beginning, and
        // one without is a first start that can be redone.
        LogFile::create(&dir.join(LOG_FILE), &init_record())?;
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

    /// A crash during a first start leaves a log holding only INIT and no
    /// identity: `--init` finishes the job. Anything more in the log (or
    /// anything else in the directory) is not a first start, and is refused.
    #[test]
    fn an_interrupted_first_start_can_be_redone_with_init_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        fs::create_dir_all(&path).unwrap();
        LogFile::create(&path.join(LOG_FILE), &init_record()).unwrap();
        fs::write(path.join("identity.json.tmp"), b"{").unwrap();
        assert!(matches!(
            Storage::open(&path, &identity(), false),
            Err(StorageError::Missing(_))
        ));
        let (storage, recovered) = Storage::open(&path, &identity(), true).unwrap();
        assert_eq!((recovered.current_term, recovered.voted_for), (0, None));
        storage
            .write(WriteBatch {
                hard_state: Some((3, Some(2))),
                ..Default::default()
            })
            .unwrap();
        drop(storage);
        // A log with state in it, but its identity gone: not a first start.
        fs::remove_file(path.join(IDENTITY_FILE)).unwrap();
        fs::remove_file(path.join(LOCK_FILE)).unwrap();
        assert!(matches!(
            Storage::open(&path, &identity(), true),
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
    fn a_log_file_that_lost_its_beginning_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(&dir);
        let log = path.join(LOG_FILE);
        // Emptied: before the INIT record, this started a fresh node (term 0,
        // no vote) that could vote twice.
        std::fs::write(&log, b"").unwrap();
        let err = Storage::open(&path, &identity(), true)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("lost its beginning"), "{err}");
        // Deleted: the same.
        std::fs::remove_file(&log).unwrap();
        let err = Storage::open(&path, &identity(), true)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("lost its beginning"), "{err}");

        // Cut so that INIT itself is gone: refused.
        let dir = tempfile::tempdir().unwrap();
        let path = populated(&dir);
        let log = path.join(LOG_FILE);
        let bytes = std::fs::read(&log).unwrap();
        let records = log_file::parse(&log, &bytes).unwrap().records;
        std::fs::write(&log, &bytes[records[1].0 as usize..]).unwrap();
        let err = Storage::open(&path, &identity(), true)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("corrupt"), "{err}");

        // Cut at any later record boundary: refused too (the file is shorter
        // than its batch records say), not taken for a shorter log.
        for (at, _) in &records[1..] {
            std::fs::write(&log, &bytes[..*at as usize]).unwrap();
            let err = Storage::open(&path, &identity(), false)
                .err()
                .expect("refused");
            assert!(err.to_string().contains("cut short"), "{err}");
        }
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
    fn a_torn_final_write_is_cut_off_and_reported_as_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        {
            let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
            let mut batch = WriteBatch::default();
            log_batch(&log_of(&[entry(1, "a"), entry(1, "b")]), 1, &mut batch);
            storage.write(batch).unwrap();
            // A second batch, one sector of which a crash keeps from the disk.
            let mut batch = WriteBatch::default();
            // (Entry 3 is long enough to span two sectors.)
            let long = "c".repeat(700);
            log_batch(
                &log_of(&[entry(1, "a"), entry(1, "b"), entry(1, &long)]),
                3,
                &mut batch,
            );
            storage.write(batch).unwrap();
        }
        let file = path.join(LOG_FILE);
        let mut bytes = fs::read(&file).unwrap();
        let contents = log_file::parse(&file, &bytes).unwrap();
        let (third, body) = contents.records.last().unwrap();
        let middle = *third as usize + body.len() / 2;
        let lost = middle / 512 * 512;
        bytes[lost.max(*third as usize)..(lost + 512).min(contents.end as usize)].fill(0);
        fs::write(&file, &bytes).unwrap();
        let (storage, recovered) = Storage::open(&path, &identity(), false).unwrap();
        assert!(recovered.repaired);
        assert_eq!(recovered.log, log_of(&[entry(1, "a"), entry(1, "b")]));
        // Appending resumes after the cut, and the result reads back cleanly.
        let mut batch = WriteBatch::default();
        log_batch(
            &log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "d")]),
            3,
            &mut batch,
        );
        storage.write(batch).unwrap();
        drop(storage);
        let (_, recovered) = Storage::open(&path, &identity(), false).unwrap();
        assert!(!recovered.repaired);
        assert_eq!(
            recovered.log,
            log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "d")])
        );
    }

    #[test]
    fn a_corrupted_record_is_reported_with_its_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        {
            let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
            let mut batch = WriteBatch::default();
            log_batch(&log_of(&[entry(1, "a"), entry(1, "b")]), 1, &mut batch);
            storage.write(batch).unwrap();
        }
        // Flip a bit in the first (batch) record's header or body: damage
        // to acknowledged data, never a torn write.
        let file = path.join(LOG_FILE);
        let clean = fs::read(&file).unwrap();
        for at in [log_file::HEADER + 3, 1, 5, 9] {
            let mut bytes = clean.clone();
            bytes[at] ^= 0x10;
            fs::write(&file, &bytes).unwrap();
            let text = Storage::open(&path, &identity(), false)
                .err()
                .unwrap()
                .to_string();
            assert!(
                text.contains("raft.log") && text.contains("byte 0"),
                "{text}"
            );
        }
        // Damage in the last record is reported too, not taken for a torn write.
        let mut bytes = clean.clone();
        let last = log_file::parse(&file, &clean).unwrap().end as usize - 1;
        bytes[last] ^= 1;
        fs::write(&file, &bytes).unwrap();
        let text = Storage::open(&path, &identity(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(text.contains("checksum"), "{text}");
    }

    /// Where the log file's records end (the zeros after them not counted).
    fn records_end(dir: &Path) -> u64 {
        let path = dir.join(LOG_FILE);
        log_file::parse(&path, &fs::read(&path).unwrap())
            .unwrap()
            .end
    }

    #[test]
    fn compaction_rewrites_the_file_and_overwrites_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        {
            let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
            let mut batch = WriteBatch::default();
            let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c"), entry(1, "d")]);
            log_batch(&log, 1, &mut batch);
            storage.write(batch).unwrap();
            let before = records_end(&path);
            // Any dead record is worth a rewrite here.
            storage.durable.lock().unwrap().rewrite_bytes = 0;
            let snapshot = Snapshot {
                meta: SnapshotMeta {
                    last_index: 3,
                    last_term: 1,
                    config: Config::new([1, 2, 3]),
                },
                data: KvImage::default(),
            };
            storage
                .write(WriteBatch {
                    snapshot: Some(snapshot),
                    hard_state: Some((2, Some(3))),
                    ..Default::default()
                })
                .unwrap();
            assert!(records_end(&path) < before);
            // Entry 4 is overwritten by a new leader's entry, then 5 added.
            let mut log = Log {
                snapshot_index: 3,
                snapshot_term: 1,
                ..Log::default()
            };
            log.append(entry(2, "x"));
            log.append(entry(2, "y"));
            let mut batch = WriteBatch::default();
            log_batch(&log, 4, &mut batch);
            storage.write(batch).unwrap();
        }
        let (_, recovered) = Storage::open(&path, &identity(), false).unwrap();
        assert_eq!((recovered.current_term, recovered.voted_for), (2, Some(3)));
        assert_eq!(recovered.log.snapshot_index, 3);
        assert_eq!(recovered.log.last_index(), 5);
        assert_eq!(recovered.log.entry(4), Some(&entry(2, "x")));
        assert_eq!(recovered.log.entry(5), Some(&entry(2, "y")));
    }
}
