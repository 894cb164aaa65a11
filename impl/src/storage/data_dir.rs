//! The data directory itself: its layout, whose it is, and who holds it.
//!
//! This file owns the directory's names ([`LOG_FILE`], the snapshot files'
//! names come from `snapshot_file`), `identity.json` (which node of which
//! cluster, with which members, the directory belongs to: checked at every
//! start, so that a node never starts on another node's data), the `LOCK`
//! file (an advisory `flock` held while a node runs, so that two nodes never
//! write the same files), and the rules of a first start. It knows nothing of
//! what the records say: the first record of a new log comes from `records`.
//!
//! **First start.** `--init` writes the log file with its INIT record
//! first, then `identity.json` (temporary file, fsync, rename, directory
//! fsync). A directory with an identity therefore always has its log's
//! beginning; one without an identity but with a log holding nothing but
//! INIT is a first start a crash interrupted, and `--init` may redo it.
//! Anything else without an identity is not ours, and is refused.

use std::fs;
use std::path::Path;

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
/// Temporary files a crash may leave behind during a first start.
const FIRST_START_LEFTOVERS: [&str; 2] = ["raft.tmp", "identity.json.tmp"];

/// What the data directory records about whose data it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: NodeId,
    pub members: Vec<NodeId>,
}

pub(super) fn io(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates the data directory (with `init`) or checks that it is
/// `identity`'s, then takes its lock. The returned file holds the lock for
/// as long as it lives.
pub(super) fn open(dir: &Path, identity: &Identity, init: bool) -> Result<fs::File, StorageError> {
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
    Ok(lock)
}

/// Creates the data directory (with `init`) or checks that it is this node's.
fn check_identity(dir: &Path, identity: &Identity, init: bool) -> Result<(), StorageError> {
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
        LogFile::create(&dir.join(LOG_FILE), &records::init_record())?;
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
