//! Durable state in the node's data directory.
//!
//! ```text
//! <data-dir>/identity.json                    cluster id, node id, member ids, their crc32 (checked at every start)
//! <data-dir>/LOCK                             held (flock) while a node runs on the directory
//! <data-dir>/raft.log                         format version, hard state, snapshot pointer, log entries
//! <data-dir>/snapshot-<index>-<term>.snap     the latest snapshot image (see snapshot_file)
//! ```
//!
//! One file per concern:
//!
//! - this file: the [`Storage`] API, the only code that writes the log and
//!   snapshot files (one group commit per batch, compaction, the snapshot
//!   file a background snapshot writes), and the assertions that a batch
//!   loses nothing that must be kept;
//! - `data_dir`: the directory's layout, `identity.json`, the lock, the
//!   rules of a first start;
//! - `records`: what the log file's records say (their codec), the
//!   in-memory mirror of the live ones, and the replay at start;
//! - `disk`: the disk format's messages (`proto/raft_disk.proto`, its own,
//!   not the wire's) and their conversion to the core's types;
//! - [`log_file`]: the record file (framing, checksums, batches,
//!   preallocation, what counts as a torn write);
//! - [`snapshot_file`]: the snapshot image format and its file.
//!
//! **One format version** ([`FORMAT_VERSION`]) covers everything in the
//! directory. It is recorded in the log file's first record and checked at
//! every start: an older version is read and upgraded, a newer one refused
//! by name; nothing is read under a format it was not written in. The
//! committed fixture `tests/fixtures/datadir-v1`, written by the code of
//! version 1, is read back by a test of this module.
//!
//! **Why an append-only file.** Each batch of core transitions becomes one
//! append of framed records and one `fdatasync` (group commit), the cheapest
//! durable write the disk offers: the etcd comparison measured a redb commit
//! at 1-4 ms where a bare fdatasync cost 0.1-0.2 ms, and that cost sits on
//! every write's path twice (leader, then follower). The records (hard
//! state, snapshot pointer, entries, truncations; see `records`) are
//! replayed in order at start.
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
//! **A checksum on every file holding data**: `identity.json` (see
//! `data_dir`), each record of the log, the snapshot image. `LOCK` is empty
//! (only its flock matters); temporary files are never read (a start
//! deletes or ignores them).
//!
//! **Checksums, cuts and torn tails** (rules in `log_file`): every record has
//! a crc32 and a doubly stored length, and the file is preallocated with its
//! length recorded in each batch; a damaged record anywhere, or a file
//! shorter than it was made, is reported with the file and offset and the
//! node refuses to start. Only a torn final write (a batch whose fdatasync
//! never returned, so nothing depending on it was ever sent or acknowledged)
//! is cut off — what Raft allows to lose — and it is cut off whole: a batch
//! is all or nothing, never recovered as a prefix of its records (which
//! could be, say, a new snapshot followed by the old conflicting entries
//! its truncation record would have dropped). A file cut at a record boundary is
//! not taken for a shorter log: that would drop acknowledged entries from
//! the majority that committed them.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use raft_model::{Index, Log, NodeId, Snapshot, SnapshotMeta, Term};

use crate::command::EntryMessage;
use crate::kv::{KvCommand, KvImage};
use log_file::{LogFile, LogFileError};
use records::Durable;
use snapshot_file::SnapshotError;
use tracing::info;

pub use data_dir::Identity;

mod data_dir;
mod disk;
pub mod log_file;
mod records;
pub mod snapshot_file;

/// The version of the disk format this node writes, recorded in the log
/// file's first (INIT) record and checked at every start:
///
/// - 1: the version was not recorded (the INIT record holds a 0 there); log
///   entries were the peer protocol's `Entry` message. Read, and upgraded
///   to version 2 at start (the INIT record is rewritten; version 1's
///   entry records are valid version 2 records).
/// - 2: the disk has its own messages (`proto/raft_disk.proto`).
/// - 3: etcd's revisions: log commands may be etcd transactions
///   (`Command.etcd_txn`), and snapshot images are of format 2
///   (`RAFTSNP2`: bytes keys and values, each key's create and mod revision
///   and version, the store's revision). A version 1 or 2 directory is read
///   and upgraded as before when it holds no snapshot: its log records are
///   valid version 3 records, and replaying the log from the start rebuilds
///   the revisions exactly as every other member does. One whose snapshot is
///   of image format 1 is refused at start (`snapshot_file` says why and
///   what to do).
///
/// A directory of a later version is refused, naming both versions.
pub const FORMAT_VERSION: u64 = 3;

/// What a node whose data directory is missing or empty is told: why it
/// must not simply start afresh, and what to do instead.
pub const REJOIN_ADVICE: &str = "If this node's disk was wiped or replaced, it must not rejoin \
    as the same member: starting afresh at term 0 with an empty log, it could vote a second \
    time in a term it already voted in, and lose entries it acknowledged. Remove it from the \
    cluster (`raft-node client member remove --id N`) and add it back as a new member with a \
    new id (`raft-node init --join`, then `raft-node client member add`). If the directory is on a volume, check that the volume is mounted. \
    If this is a new node that has never run, initialise its data directory once with \
    `raft-node init --config FILE` (or start it the first time with `raft-node run --init`)";

/// A snapshot rewrites the log file once it holds this many bytes of dead
/// records (entries a snapshot covers, overwritten entries, old hard states).
pub const REWRITE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("data directory {0} does not exist. {advice}", advice = REJOIN_ADVICE)]
    Missing(PathBuf),
    #[error(
        "data directory {0} is empty: it holds no node's data (no identity.json). {advice}",
        advice = REJOIN_ADVICE
    )]
    Uninitialised(PathBuf),
    #[error(
        "{0} is not a raft-node data directory (it is not empty and has no identity.json): \
         check `data_dir` in the configuration"
    )]
    NotADataDir(PathBuf),
    #[error(
        "cannot initialise data directory {dir}: it is already initialised, for node {node} of \
         cluster {cluster:?} (incarnation {incarnation}). A data directory is initialised once, \
         before a node's first start; start the node without initialising (`raft-node run \
         --config FILE`, no --init). To start over as a new member, remove the member from \
         the cluster first, then the directory"
    )]
    AlreadyInitialised {
        dir: PathBuf,
        cluster: String,
        node: NodeId,
        incarnation: String,
    },
    #[error(
        "data directory {dir} belongs to node {found_node} of cluster {found_cluster:?}, not to \
         node {node} of cluster {cluster:?}: refusing to start on another node's data. Check \
         `id`, `cluster_id` and `data_dir` in the configuration"
    )]
    Foreign {
        dir: PathBuf,
        found_cluster: String,
        found_node: NodeId,
        cluster: String,
        node: NodeId,
    },
    #[error(
        "data directory {dir} was created for members {found:?}, but the configuration lists {configured:?} (a node that bootstrapped a cluster keeps its starting members in its config file; change membership with `raft-node client member add|remove`)"
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
    #[error(
        "{path} is in disk format version {found}, but this raft-node reads versions 1 to {expected} (and writes version {expected}): it was written by a newer raft-node, so run that version on this data directory"
    )]
    FormatVersion {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("corrupted data in {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "fsync of {path} failed ({source}): what the disk holds of the batch being written is \
         unknown, and a retried fsync could succeed with the data never written (the kernel may \
         have dropped the pages it failed to write), so this node stops instead of retrying. \
         Nothing in that batch was sent or acknowledged. Check the disk (kernel log), then \
         restart the node: it reads back what the disk really holds"
    )]
    SyncFailed {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: the disk is full ({source}): the batch being written was not made durable, so \
         nothing in it was sent or acknowledged, and this node stops rather than act on it. Free \
         space on the data directory's file system, then restart the node (it refuses client \
         writes while less than min_free_bytes is free)"
    )]
    NoSpace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl From<LogFileError> for StorageError {
    fn from(err: LogFileError) -> Self {
        match err {
            LogFileError::Io { path, source } if source.kind() == ErrorKind::StorageFull => {
                StorageError::NoSpace { path, source }
            }
            LogFileError::Io { path, source } => StorageError::Io { path, source },
            LogFileError::SyncFailed { path, source } => StorageError::SyncFailed { path, source },
            LogFileError::Corrupt { path, offset, what } => StorageError::Corrupt {
                path,
                what: format!("record at byte {offset}: {what}"),
            },
        }
    }
}

/// The persistent state found at start: what `Server::recover` takes.
pub struct Recovered {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    pub snapshot: Snapshot<KvImage>,
    pub log: Log<KvCommand>,
    /// A torn final write (never acknowledged) was cut off the log file.
    pub repaired: bool,
    /// The data directory's incarnation: drawn at random when it was
    /// initialised (see `data_dir`).
    pub incarnation: String,
    /// The configuration the directory was initialised with: the starting
    /// members, or none for a node initialised to join a cluster.
    pub initial_members: Vec<NodeId>,
}

/// One group commit: what a batch of the core's transitions asked to
/// persist (its `Persist` effect), taken from the core's state after them.
#[derive(Default)]
pub struct WriteBatch {
    hard_state: Option<(Term, Option<NodeId>)>,
    /// A new snapshot to make durable; log entries it covers are deleted.
    snapshot: Option<Snapshot<KvImage>>,
    /// Entries written (appended or overwritten), in index order.
    entries: Vec<(Index, EntryMessage)>,
    /// When set, every stored entry after this index is deleted (the log was
    /// truncated or rewritten from some index on).
    last_index: Option<Index>,
    /// The core's commit index: not stored, but no later batch may change
    /// an entry at or below it.
    commit_index: Index,
}

impl WriteBatch {
    /// The core's term or vote changed: these are its new ones.
    pub fn set_hard_state(&mut self, term: Term, voted_for: Option<NodeId>) {
        self.hard_state = Some((term, voted_for));
    }

    /// The core's snapshot changed: `snapshot` is its new one and `log` its
    /// log (an installed snapshot may have discarded all of it).
    pub fn set_snapshot(&mut self, snapshot: &Snapshot<KvImage>, log: &Log<KvCommand>) {
        // The pointer written names this snapshot, and the log kept is the
        // one after it: if they disagreed, the entries between would be lost.
        assert_eq!(
            (snapshot.meta.last_index, snapshot.meta.last_term),
            (log.snapshot_index, log.snapshot_term),
            "storage: the snapshot to persist is not the one the log starts after"
        );
        self.snapshot = Some(snapshot.clone());
        self.last_index = Some(log.last_index());
    }

    /// The core wrote its log from index `from` on: the batch holds entries
    /// `from..=last` of `log` (those after its snapshot), and anything stored
    /// after `last` goes.
    pub fn set_log_from(&mut self, log: &Log<KvCommand>, from: Index) {
        let start = from.max(log.snapshot_index + 1);
        debug_assert!(
            start <= log.last_index() + 1,
            "storage: the core reports writing entries from {from}, past its last entry {}",
            log.last_index()
        );
        // `Log::iter_from` reads the entries through a focus, O(log n):
        // never walk the whole log for a batch, and build no persistent
        // vector of them only to read it once (`Log::entries_from` does:
        // 4.5 % of a follower's CPU at 16 clients, issue 17). The commands
        // are shared, not copied: the record is written from each one's
        // encoding in `Storage::write`, off the event loop.
        self.entries = log
            .iter_from(start)
            .map(|(index, entry)| (index, EntryMessage(entry.clone())))
            .collect();
        // Exactly start..=last, none missing at either end.
        debug_assert_eq!(
            self.entries.len() as Index,
            (log.last_index() + 1).saturating_sub(start),
            "storage: the batch does not cover entries {start}..={}",
            log.last_index()
        );
        self.last_index = Some(log.last_index());
    }

    /// The core's commit index after the batch (see [`Storage::write`]).
    pub fn set_commit_index(&mut self, commit_index: Index) {
        self.commit_index = commit_index;
    }

    /// Whether the batch carries a new snapshot (whose file it may write).
    pub fn has_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.snapshot.is_none() && self.last_index.is_none()
    }

    /// Asserts that writing this batch over `durable` loses nothing that
    /// must be kept: a node must never vote twice in a term, nor lose or
    /// change an entry it has committed. Checked before anything is changed
    /// or written; a violation is a bug in the caller (or the core), and the
    /// node must stop rather than write it.
    fn assert_keeps(&self, durable: &Durable) {
        if let Some((term, vote)) = self.hard_state {
            let (old_term, old_vote) = durable.hard_state;
            assert!(
                term >= old_term,
                "storage: refusing to write term {term} over term {old_term}: a term never decreases"
            );
            assert!(
                term > old_term || old_vote.is_none() || vote == old_vote,
                "storage: refusing to write vote {vote:?} over vote {old_vote:?} in term {term}: a node votes once in a term"
            );
        }
        if let Some(snapshot) = &self.snapshot {
            let new = (snapshot.meta.last_index, snapshot.meta.last_term);
            let old = durable.snapshot_point();
            assert!(
                new.0 > old.0 || new == old,
                "storage: refusing to replace the snapshot at (index, term) {old:?} with {new:?}: a snapshot never goes backwards"
            );
        }
        // Entries at or below the commit point of earlier batches are never
        // rewritten with other contents. (The batch's entries are contiguous,
        // so those are a prefix of them; normally there are none.)
        for (index, entry) in self
            .entries
            .iter()
            .take_while(|(index, _)| *index <= durable.committed)
        {
            if let Some(stored) = durable.record(*index) {
                assert!(
                    *stored == records::entry_record(*index, entry),
                    "storage: refusing to overwrite log entry {index}, committed (commit index {}), with a different entry",
                    durable.committed
                );
            }
        }
        if let Some(last) = self.last_index {
            assert!(
                last >= durable.committed,
                "storage: refusing to truncate the log after entry {last}: entries up to {} are committed",
                durable.committed
            );
        }
    }
}

/// [`Storage::disk_usage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskUsage {
    /// Every file of the data directory, the log's allocated room included.
    pub bytes: u64,
    /// The same without the room the log file holds ahead of its records.
    pub in_use: u64,
}

pub struct Storage {
    dir: PathBuf,
    log_path: PathBuf,
    durable: Mutex<Durable>,
    /// Held for the node's lifetime: a second node on the directory is refused.
    _lock: fs::File,
    /// Tests only: while closed, every write waits (to see what the node
    /// does before a batch is durable).
    #[cfg(test)]
    pub(crate) write_gate: WriteGate,
}

/// Tests only: a gate that [`Storage::write`] waits at while it is closed.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct WriteGate {
    closed: Mutex<bool>,
    opened: std::sync::Condvar,
}

#[cfg(test)]
impl WriteGate {
    pub(crate) fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    pub(crate) fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
    }
}

impl Storage {
    /// Initialises `dir` as the data directory of `identity`'s node, once:
    /// creates it (durably) if it does not exist, writes its first log
    /// record and its identity with a fresh incarnation, which it returns.
    /// Refuses a directory already initialised, or holding anything else.
    /// Call it before a node's first start only, never at every start (see
    /// `data_dir`).
    pub fn init(dir: &Path, identity: &Identity) -> Result<String, StorageError> {
        data_dir::init(dir, identity)
    }

    /// Opens the data directory of `identity`'s node, which [`Storage::init`]
    /// initialised, and loads its persistent state. A missing or empty
    /// directory, or another node's, is refused: it is never created here.
    pub fn open(dir: &Path, identity: &Identity) -> Result<(Storage, Recovered), StorageError> {
        let (lock, incarnation, members) = data_dir::open(dir, identity)?;
        // The starting configuration is the one the directory was
        // initialised with (none for a node that joins).
        let identity = &Identity {
            members,
            ..identity.clone()
        };
        let log_path = dir.join(data_dir::LOG_FILE);
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
        let Some(version) = contents
            .records
            .first()
            .and_then(|(_, body)| records::init_version(body))
        else {
            return Err(lost_beginning());
        };
        if version > FORMAT_VERSION {
            return Err(StorageError::FormatVersion {
                path: log_path,
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let (mut durable, mut recovered) =
            records::replay(dir, &log_path, identity, file, contents)?;
        recovered.incarnation = incarnation;
        if version < FORMAT_VERSION {
            // Versions 1 and 2 are older, and their records are valid records
            // of this version (an old snapshot image was refused above): rewriting the file (atomically, as a compaction
            // does) with the current INIT record upgrades it. From here on
            // the version the file names holds for every record in it.
            let image = durable.image();
            durable.file.replace(&image)?;
            info!(
                path = %log_path.display(),
                from = version,
                to = FORMAT_VERSION,
                "upgraded the log file's disk format"
            );
        }
        let storage = Storage {
            dir: dir.to_owned(),
            log_path,
            durable: Mutex::new(durable),
            _lock: lock,
            #[cfg(test)]
            write_gate: WriteGate::default(),
        };
        data_dir::remove_stale_snapshot_files(
            &storage.dir,
            recovered.snapshot.meta.last_index,
            recovered.snapshot.meta.last_term,
        );
        Ok((storage, recovered))
    }

    /// SEEDED BUG (the lab's `skip-fdatasync`; feature `seeded-bugs`
    /// only): from now on the log file's appends are not fdatasynced.
    #[cfg(feature = "seeded-bugs")]
    pub fn seed_skip_fdatasync(&self) {
        if let Ok(mut durable) = self.durable.lock() {
            durable.file.skip_fdatasync = true;
        }
    }

    /// What the data directory takes on disk: every file's length, and the
    /// same less the room the log file holds allocated ahead of its records
    /// (etcd's Status `db_size` and `db_size_in_use`: a bbolt file's length
    /// and its pages in use). Reads the directory: call it off the event
    /// loop.
    pub fn disk_usage(&self) -> std::io::Result<DiskUsage> {
        // The size of a write under way is harmless to read: a poisoned lock
        // still holds the file's last size.
        let records = match self.durable.lock() {
            Ok(durable) => durable.file.size(),
            Err(poisoned) => poisoned.into_inner().file.size(),
        };
        let (mut bytes, mut log_len) = (0, 0);
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() {
                bytes += meta.len();
                if entry.path() == self.log_path {
                    log_len = meta.len();
                }
            }
        }
        Ok(DiskUsage {
            bytes,
            in_use: bytes - log_len.saturating_sub(records).min(bytes),
        })
    }

    /// Writes the snapshot file of `meta` and `image`, durably (temporary
    /// file, fsync, rename, directory fsync), ahead of the batch whose
    /// snapshot pointer will name it; returns its size in bytes. Serializing
    /// a large image takes a while: call this on a blocking thread, off the
    /// event loop. Until a batch points at it, the file is not in force (a
    /// restart ignores and deletes it).
    pub fn write_snapshot_file(
        &self,
        meta: &SnapshotMeta,
        image: &KvImage,
    ) -> Result<u64, StorageError> {
        let bytes = snapshot_file::encode(meta, image);
        snapshot_file::write_file(&self.dir, meta.last_index, meta.last_term, &bytes)?;
        Ok(bytes.len() as u64)
    }

    /// Asserts that what is durable is the core's persistent state: its term
    /// and vote, its snapshot point and its last log index — or, for a
    /// leader writing its own entries in parallel, a log that ends between
    /// the core's durable index (what it knows written) and its last index.
    /// The event loop calls this after every batch: a core that changed one
    /// of them without asking for it to be persisted would come back from a
    /// crash with less than it acted on (a second vote in a term, an
    /// acknowledged entry gone). O(1).
    pub fn assert_durable(
        &self,
        term: Term,
        voted_for: Option<NodeId>,
        log: &Log<KvCommand>,
        durable_index: Index,
    ) {
        // A poisoned lock: a write failed, and the node is stopping anyway.
        let Ok(durable) = self.durable.lock() else {
            return;
        };
        assert_eq!(
            durable.hard_state,
            (term, voted_for),
            "storage: the durable (term, vote) is not the core's"
        );
        assert_eq!(
            durable.snapshot_point(),
            (log.snapshot_index, log.snapshot_term),
            "storage: the durable snapshot point is not the core's"
        );
        let last = durable.last();
        assert!(
            durable_index <= last && last <= log.last_index(),
            "storage: the durable log ends at {last}, outside the core's durable index {durable_index} and last index {}",
            log.last_index()
        );
    }

    /// Makes one batch durable: one append and one fdatasync, or — when it
    /// carries a new snapshot — one atomic rewrite of the file. A new
    /// snapshot's file is written (and fsynced) first unless it already
    /// exists, so the pointer written here never names a missing file.
    ///
    /// Panics, before writing anything, if the batch would lose what must
    /// be kept: a term going down, a second vote in a term, a snapshot going
    /// backwards, a committed entry (at or below the commit index of an
    /// earlier batch) changed or truncated away.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        #[cfg(test)]
        self.write_gate.pass();
        let mut timing = WriteTiming::start();
        if let Some(snapshot) = &batch.snapshot {
            let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
            if !self
                .dir
                .join(snapshot_file::file_name(index, term))
                .exists()
            {
                self.write_snapshot_file(&snapshot.meta, &snapshot.data)?;
            }
            timing.lap(WritePhase::SnapshotFile);
        }
        let mut durable = self.durable.lock().map_err(|_| StorageError::Corrupt {
            path: self.log_path.clone(),
            what: "an earlier write panicked; the in-memory view of the file is unknown".into(),
        })?;
        timing.lap(WritePhase::Lock);
        batch.assert_keeps(&durable);
        let mut appended = Vec::new();
        if let Some(hard_state) = batch.hard_state {
            durable.hard_state = hard_state;
            records::hard_state_record(&mut appended, hard_state);
        }
        if let Some(snapshot) = &batch.snapshot {
            let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
            durable.snapshot = Some((index, term));
            durable.compact_to(index);
            records::snapshot_record(&mut appended, index, term);
            timing.lap(WritePhase::Compact);
        }
        for (index, entry) in &batch.entries {
            let index = *index;
            // The batch starts after the snapshot (set_log_from): the
            // snapshot covers such an entry, and there is nothing to write.
            debug_assert!(
                index > durable.snapshot_point().0,
                "storage: log entry {index} is covered by the snapshot"
            );
            if index <= durable.snapshot_point().0 {
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
            let record = records::entry_record(index, entry);
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
            records::truncate_record(&mut appended, last);
        }
        // Whatever the batch did, the log still reaches the commit point.
        assert!(
            durable.last() >= durable.committed,
            "storage: refusing to write a log that ends at {}, before the commit index {}",
            durable.last(),
            durable.committed
        );
        if batch.snapshot.is_some() && durable.worth_rewriting() {
            let image = durable.image();
            durable.file.replace(&image)?;
            timing.lap(WritePhase::Rewrite);
            timing.bytes = image.len();
        } else if !appended.is_empty() {
            durable.file.append(&appended)?;
            timing.lap(WritePhase::Append);
            timing.bytes = appended.len();
        }
        debug_assert!(
            batch.commit_index <= durable.last(),
            "storage: commit index {} is past the last stored entry {}",
            batch.commit_index,
            durable.last()
        );
        // Entries a snapshot covers are committed too.
        durable.committed = durable
            .committed
            .max(batch.commit_index)
            .max(durable.snapshot_point().0);
        drop(durable);
        if let Some(snapshot) = &batch.snapshot {
            // Only now is the pointer to the new snapshot durable.
            data_dir::remove_stale_snapshot_files(
                &self.dir,
                snapshot.meta.last_index,
                snapshot.meta.last_term,
            );
            timing.lap(WritePhase::RemoveStale);
        }
        timing.report(&self.log_path);
        Ok(())
    }
}

/// A write slower than this is logged with where its time went: a write
/// sits on the path of every request it carries, so an operator seeing a
/// latency spike needs to know whether the disk stalled and on what.
pub const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(100);

/// The parts of [`Storage::write`], timed separately.
#[derive(Clone, Copy, Debug)]
enum WritePhase {
    SnapshotFile,
    Lock,
    Compact,
    Append,
    Rewrite,
    RemoveStale,
}

/// Where one write's time went, for the slow-write warning.
struct WriteTiming {
    started: std::time::Instant,
    last: std::time::Instant,
    phases: [(WritePhase, std::time::Duration); 6],
    count: usize,
    bytes: usize,
}

impl WriteTiming {
    fn start() -> WriteTiming {
        let now = std::time::Instant::now();
        WriteTiming {
            started: now,
            last: now,
            phases: [(WritePhase::Lock, std::time::Duration::ZERO); 6],
            count: 0,
            bytes: 0,
        }
    }

    /// `phase` ended now.
    fn lap(&mut self, phase: WritePhase) {
        let now = std::time::Instant::now();
        debug_assert!(self.count < self.phases.len(), "a phase timed twice");
        if let Some(slot) = self.phases.get_mut(self.count) {
            *slot = (phase, now - self.last);
            self.count += 1;
        }
        self.last = now;
    }

    fn report(&self, log_path: &Path) {
        let total = self.started.elapsed();
        if total < SLOW_WRITE {
            return;
        }
        let phases: Vec<String> = self.phases[..self.count]
            .iter()
            .map(|(phase, took)| format!("{phase:?} {:.1} ms", took.as_secs_f64() * 1e3))
            .collect();
        tracing::warn!(
            path = %log_path.display(),
            ms = format!("{:.1}", total.as_secs_f64() * 1e3),
            bytes = self.bytes,
            phases = phases.join(", "),
            "slow disk write: every request it carries waited for it"
        );
    }
}

#[cfg(test)]
mod tests;
