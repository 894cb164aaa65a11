//! The data directory itself: its layout, whose it is, and who holds it.
//!
//! This file owns the directory's names ([`LOG_FILE`], the snapshot files'
//! names come from `snapshot_file`), `identity.json` (which node of which
//! cluster, with which members, the directory belongs to, and the random
//! incarnation drawn when it was initialised: checked at every start, so
//! that a node never starts on another node's data), the `LOCK` file (an
//! advisory `flock` held while a node runs, so that two nodes never write the
//! same files), and the rules of initialisation. It knows nothing of what the
//! records say: the first record of a new log comes from `records`.
//!
//! **Initialised once.** A data directory is initialised by an explicit,
//! one-time command (`raft-node init`, or `run --init` at a node's first
//! start), never by a setting: a setting is read at every start, and would
//! re-create a node whose directory was lost — back at term 0 with an empty
//! log, free to vote a second time in a term it already voted in, silently.
//! So [`open`] never creates anything: a missing or empty directory, or one
//! holding another node's identity, is refused with what happened and what
//! to do; and [`init`] refuses a directory that is already initialised (or
//! holds anything but the leftovers of an interrupted initialisation).
//!
//! **Initialisation** creates the directory (and any missing parent)
//! and fsyncs each parent, so that the new directory's entry is durable;
//! then writes the log file with its INIT record, then `identity.json`
//! (temporary file, fsync, rename, directory fsync). A directory with an
//! identity therefore always has its log's beginning; one without an
//! identity but with a log holding nothing but INIT is an initialisation a
//! crash interrupted, which [`init`] may redo. Anything else without an
//! identity is not ours, and is refused.
//!
//! **The identity's checksum.** `identity.json` is pretty-printed JSON of
//! the identity plus `"crc32"`, the crc32 of the identity's compact JSON
//! (`{"cluster_id":..,"node_id":..,"members":[..],"incarnation":".."}`). At
//! start the file must parse (unknown fields refused), its checksum must
//! match, and its bytes must be exactly what this code writes for that
//! identity: so a flipped bit anywhere — in a value, a name, the checksum,
//! or the whitespace — is refused, naming the file. A file written before
//! the checksum or the incarnation existed (no `"crc32"`, as in the fixture
//! `tests/fixtures/datadir-v1`; no `"incarnation"`) is read when its bytes
//! are exactly what that code wrote, and is rewritten with them (a fresh
//! incarnation drawn, atomically) once the directory's lock is held.

use std::fs;
use std::path::{Path, PathBuf};

use raft_model::{Index, NodeId, Term};
use serde::{Deserialize, Serialize};

use super::log_file::{self, LogFile};
use super::{StorageError, records, snapshot_file};

/// The record file (see `records` and `log_file`).
pub(super) const LOG_FILE: &str = "raft.log";
/// Held (flock) while a node runs on the directory.
pub(super) const LOCK_FILE: &str = "LOCK";
/// The file of earlier versions (redb); its data is not read.
const OLD_DB_FILE: &str = "raft.redb";
pub(super) const IDENTITY_FILE: &str = "identity.json";
/// Temporary files a crash may leave behind during a first start, and what
/// a freshly made file system holds at its root (a volume mounted as the
/// data directory).
const FIRST_START_LEFTOVERS: [&str; 3] = ["raft.tmp", "identity.json.tmp", "lost+found"];

/// Whose data a directory holds, as the node's configuration says it: the
/// cluster, the node, the members. Checked against `identity.json` at every
/// start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: NodeId,
    pub members: Vec<NodeId>,
}

/// What `identity.json` holds: the identity and the directory's incarnation
/// (None: written before incarnations existed), in the order they are
/// written (the checksum is over this struct's compact JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Stored {
    cluster_id: String,
    node_id: NodeId,
    members: Vec<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incarnation: Option<String>,
}

/// `identity.json` as stored: the identity, its incarnation and its
/// checksum (None: written before the checksum existed).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    cluster_id: String,
    node_id: NodeId,
    members: Vec<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incarnation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32: Option<u32>,
}

fn identity_crc(stored: &Stored) -> u32 {
    // Serializing a struct of strings and integers cannot fail.
    crc32fast::hash(&serde_json::to_vec(stored).unwrap_or_default())
}

/// The bytes of `identity.json` for `stored`, with its checksum (or, with
/// `crc32` None, as the code before the checksum wrote them).
fn identity_bytes(stored: &Stored, crc32: Option<u32>) -> Vec<u8> {
    let file = IdentityFile {
        cluster_id: stored.cluster_id.clone(),
        node_id: stored.node_id,
        members: stored.members.clone(),
        incarnation: stored.incarnation.clone(),
        crc32,
    };
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

/// A fresh incarnation: 128 random bits, in hex.
fn new_incarnation() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Reads and verifies `identity.json`; also returns whether it has its
/// checksum (false: written before the checksum existed).
fn read_identity(path: &Path) -> Result<(Stored, bool), StorageError> {
    let corrupt = |what: String| StorageError::Corrupt {
        path: path.to_owned(),
        what,
    };
    let bytes = fs::read(path).map_err(io(path))?;
    let file: IdentityFile = serde_json::from_slice(&bytes)
        .map_err(|err| corrupt(format!("identity file does not parse: {err}")))?;
    let stored = Stored {
        cluster_id: file.cluster_id,
        node_id: file.node_id,
        members: file.members,
        incarnation: file.incarnation,
    };
    if let Some(crc) = file.crc32 {
        let computed = identity_crc(&stored);
        if crc != computed {
            return Err(corrupt(format!(
                "identity file checksum mismatch (stored {crc:#010x}, computed \
                 {computed:#010x}): the file is corrupted"
            )));
        }
    }
    if bytes != identity_bytes(&stored, file.crc32) {
        return Err(corrupt(
            "identity file is not byte for byte what a node writes for the identity it \
             holds: the file is corrupted"
                .into(),
        ));
    }
    Ok((stored, file.crc32.is_some()))
}

/// Writes `identity.json` with its checksum, atomically: temporary file,
/// fsync, rename, directory fsync.
fn write_identity(dir: &Path, stored: &Stored) -> Result<(), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join("identity.json.tmp");
    fs::write(&tmp, identity_bytes(stored, Some(identity_crc(stored)))).map_err(io(&tmp))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Creates `dir` and any missing parent, and fsyncs the directory holding
/// each one created, so that a crash cannot lose the new directory's entry
/// (and, with it, everything written into it). Returns the directories
/// fsynced, outermost first.
pub(super) fn create_dir_durably(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut created = Vec::new();
    let mut at = dir;
    while !at.exists() {
        created.push(at.to_owned());
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut synced = Vec::new();
    for new in created.iter().rev() {
        let parent = match new.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        sync_dir(&parent)?;
        synced.push(parent);
    }
    Ok(synced)
}

pub(super) fn io(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Takes the directory's lock; the returned file holds it for as long as it
/// lives.
fn lock(dir: &Path) -> Result<fs::File, StorageError> {
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
    Ok(lock)
}

/// Initialises `dir` as `identity`'s data directory (see the module docs),
/// creating it if needed; returns the incarnation drawn for it. Refuses a
/// directory already initialised, or holding anything but the leftovers of
/// an interrupted initialisation.
pub(super) fn init(dir: &Path, identity: &Identity) -> Result<String, StorageError> {
    if !dir.exists() {
        create_dir_durably(dir)?;
    } else if !dir.is_dir() {
        return Err(StorageError::NotADataDir(dir.to_owned()));
    }
    let _lock = lock(dir)?;
    let path = dir.join(IDENTITY_FILE);
    if path.exists() {
        let (found, _) = read_identity(&path)?;
        return Err(StorageError::AlreadyInitialised {
            dir: dir.to_owned(),
            cluster: found.cluster_id,
            node: found.node_id,
            incarnation: found
                .incarnation
                .unwrap_or_else(|| "(none recorded)".into()),
        });
    }
    if dir.join(OLD_DB_FILE).exists() {
        return Err(StorageError::OldFormat(dir.to_owned()));
    }
    if !unfinished_first_start(dir)? {
        return Err(StorageError::NotADataDir(dir.to_owned()));
    }
    // The log (with its INIT record) first, then the identity: so a
    // directory with an identity always has its log's beginning, and one
    // without is an initialisation that can be redone.
    LogFile::create(&dir.join(LOG_FILE), &records::init_record())?;
    let stored = Stored {
        cluster_id: identity.cluster_id.clone(),
        node_id: identity.node_id,
        members: identity.members.clone(),
        incarnation: Some(new_incarnation()),
    };
    write_identity(dir, &stored)?;
    Ok(stored.incarnation.unwrap_or_default())
}

/// Checks that `dir` is `identity`'s data directory, then takes its lock;
/// returns the lock (held for as long as the file lives) and the
/// directory's incarnation. Never creates anything (see [`init`]).
/// Returns the lock, the incarnation and the members the directory was
/// initialised with (empty for a node initialised to join a cluster).
pub(super) fn open(
    dir: &Path,
    identity: &Identity,
) -> Result<(fs::File, String, Vec<NodeId>), StorageError> {
    let (mut stored, checksummed) = check_identity(dir, identity)?;
    let lock = lock(dir)?;
    if dir.join(OLD_DB_FILE).exists() {
        return Err(StorageError::OldFormat(dir.to_owned()));
    }
    if !checksummed || stored.incarnation.is_none() {
        // Written before identity files had a checksum or an incarnation:
        // give it both (the incarnation is drawn once, here).
        stored.incarnation.get_or_insert_with(new_incarnation);
        write_identity(dir, &stored)?;
    }
    let members = stored.members.clone();
    Ok((lock, stored.incarnation.unwrap_or_default(), members))
}

/// Checks that `dir` is this node's data directory; returns what its
/// identity file holds and whether it has its checksum.
fn check_identity(dir: &Path, identity: &Identity) -> Result<(Stored, bool), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    if !dir.exists() {
        return Err(StorageError::Missing(dir.to_owned()));
    }
    if !path.exists() {
        if dir.is_dir() && unfinished_first_start(dir)? {
            return Err(StorageError::Uninitialised(dir.to_owned()));
        }
        return Err(StorageError::NotADataDir(dir.to_owned()));
    }
    let (found, checksummed) = read_identity(&path)?;
    if found.cluster_id != identity.cluster_id || found.node_id != identity.node_id {
        return Err(StorageError::Foreign {
            dir: dir.to_owned(),
            found_cluster: found.cluster_id,
            found_node: found.node_id,
            cluster: identity.cluster_id.clone(),
            node: identity.node_id,
        });
    }
    // A node initialised to join a cluster (no members recorded) takes its
    // configuration from the leader; its config file's member list is only
    // an address book. A node that bootstrapped the cluster must keep
    // naming the members it bootstrapped with: they are its log's starting
    // configuration, which later changes (joint consensus) start from.
    let mut found_members = found.members.clone();
    let mut configured = identity.members.clone();
    found_members.sort_unstable();
    configured.sort_unstable();
    if !found_members.is_empty() && found_members != configured {
        return Err(StorageError::MembersChanged {
            dir: dir.to_owned(),
            found: found_members,
            configured,
        });
    }
    Ok((found, checksummed))
}

/// Whether `dir`, which has no identity file, holds nothing of a node's:
/// at most what an interrupted initialisation leaves (a lock file, temporary
/// files, a log holding only its INIT record) and a new file system's
/// `lost+found`.
fn unfinished_first_start(dir: &Path) -> Result<bool, StorageError> {
    for item in fs::read_dir(dir).map_err(io(dir))? {
        let item = item.map_err(io(dir))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name == LOG_FILE {
            let path = item.path();
            let bytes = fs::read(&path).map_err(io(&path))?;
            let fresh = log_file::parse(&path, &bytes).is_ok_and(
                |contents| matches!(&contents.records[..], [(_, body)] if records::is_init(body)),
            );
            if !fresh {
                return Ok(false);
            }
        } else if name != LOCK_FILE && !FIRST_START_LEFTOVERS.contains(&&*name) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes snapshot files other than the one for (`index`, `term`) (older
/// snapshots and leftovers of interrupted writes). Best effort: a file left
/// behind is only wasted space.
pub(super) fn remove_stale_snapshot_files(dir: &Path, index: Index, term: Term) {
    let keep = snapshot_file::file_name(index, term);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for item in entries.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snapshot-") && *name != keep {
            let _ = fs::remove_file(item.path());
        }
    }
}
