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
//!
//! **The identity's checksum.** `identity.json` is pretty-printed JSON of
//! [`Identity`] plus `"crc32"`, the crc32 of the identity's compact JSON
//! (`{"cluster_id":..,"node_id":..,"members":[..]}`). At start the file must
//! parse (unknown fields refused), its checksum must match, and its bytes
//! must be exactly what this code writes for that identity: so a flipped bit
//! anywhere — in a value, a name, the checksum, or the whitespace — is
//! refused, naming the file. A file written before the checksum existed (no
//! `"crc32"`, as in the fixture `tests/fixtures/datadir-v1`) is read when
//! its bytes are exactly what that code wrote, and is rewritten with its
//! checksum (atomically) once the directory's lock is held.

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

/// `identity.json` as stored: the identity and its checksum (None: written
/// before the checksum existed).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    cluster_id: String,
    node_id: NodeId,
    members: Vec<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crc32: Option<u32>,
}

fn identity_crc(identity: &Identity) -> u32 {
    // Serializing a struct of strings and integers cannot fail.
    crc32fast::hash(&serde_json::to_vec(identity).unwrap_or_default())
}

/// The bytes of `identity.json` for `identity`, with its checksum (or, with
/// `crc32` None, as the code before the checksum wrote them).
fn identity_bytes(identity: &Identity, crc32: Option<u32>) -> Vec<u8> {
    let file = IdentityFile {
        cluster_id: identity.cluster_id.clone(),
        node_id: identity.node_id,
        members: identity.members.clone(),
        crc32,
    };
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

/// Reads and verifies `identity.json`; also returns whether it has its
/// checksum (false: written before the checksum existed).
fn read_identity(path: &Path) -> Result<(Identity, bool), StorageError> {
    let corrupt = |what: String| StorageError::Corrupt {
        path: path.to_owned(),
        what,
    };
    let bytes = fs::read(path).map_err(io(path))?;
    let file: IdentityFile = serde_json::from_slice(&bytes)
        .map_err(|err| corrupt(format!("identity file does not parse: {err}")))?;
    let identity = Identity {
        cluster_id: file.cluster_id,
        node_id: file.node_id,
        members: file.members,
    };
    if let Some(stored) = file.crc32 {
        let computed = identity_crc(&identity);
        if stored != computed {
            return Err(corrupt(format!(
                "identity file checksum mismatch (stored {stored:#010x}, computed \
                 {computed:#010x}): the file is corrupted"
            )));
        }
    }
    if bytes != identity_bytes(&identity, file.crc32) {
        return Err(corrupt(
            "identity file is not byte for byte what a node writes for the identity it \
             holds: the file is corrupted"
                .into(),
        ));
    }
    Ok((identity, file.crc32.is_some()))
}

/// Writes `identity.json` with its checksum, atomically: temporary file,
/// fsync, rename, directory fsync.
fn write_identity(dir: &Path, identity: &Identity) -> Result<(), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join("identity.json.tmp");
    fs::write(&tmp, identity_bytes(identity, Some(identity_crc(identity)))).map_err(io(&tmp))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
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
    let checksummed = check_identity(dir, identity, init)?;
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
    if !checksummed {
        // Written before identity files had a checksum: give it one.
        write_identity(dir, identity)?;
    }
    Ok(lock)
}

/// Creates the data directory (with `init`) or checks that it is this node's;
/// returns whether its identity file has its checksum.
fn check_identity(dir: &Path, identity: &Identity, init: bool) -> Result<bool, StorageError> {
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
        write_identity(dir, identity)?;
        return Ok(true);
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
    Ok(checksummed)
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
