//! Backup and restore (issues 19 and 21): `raft-node client snapshot save
//! FILE` and `raft-node init --restore FILE`.
//!
//! A backup is a snapshot file (impl/src/storage/snapshot_file.rs: the
//! image, its metadata and a checksum) of the leader's state machine at a
//! linearizable point: the leader serves etcd's `Maintenance.Snapshot` only
//! after a ReadIndex round (impl/src/etcd_service.rs), so the backup holds
//! every write acknowledged before the request. etcdctl's `snapshot save`
//! fetches the same bytes.
//!
//! The file is framed as etcdctl's `snapshot save` expects of etcd's: it
//! refuses a stream whose length is not a multiple of 512 bytes (a disk
//! sector) plus a 32-byte SHA-256 digest. So a backup is the image, zero
//! padding, the image's length (8 bytes, little-endian) and the SHA-256 of
//! everything before it; [`decode`] checks all of it.
//!
//! Restoring seeds a *new* cluster, as etcd's `snapshot restore` does: every
//! member of the new cluster is initialised from the same file, with the new
//! cluster's id, members and addresses from its own configuration. The log
//! starts after the snapshot's index and its term, so all members start
//! from identical state. What belonged to the old cluster is dropped: its
//! configuration, its replicated address book (the new members' addresses
//! come from their config files) and its client sessions (the new cluster
//! has new clients).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use imbl::OrdMap;
use raft_model::{Config, Log, Snapshot};

use crate::client::KvClient;
use crate::config::NodeConfig;
use crate::kv::KvImage;
use crate::storage::{Storage, WriteBatch, snapshot_file};

/// etcd's sector: a backup's length is a multiple of it plus the digest.
const SECTOR: usize = 512;
const DIGEST: usize = 32;

/// A backup of `image` (a snapshot file's bytes): see the module docs.
pub fn encode(image: &[u8]) -> Vec<u8> {
    let framed = image.len() + 8;
    let padded = framed.div_ceil(SECTOR) * SECTOR;
    let mut out = Vec::with_capacity(padded + DIGEST);
    out.extend_from_slice(image);
    out.resize(padded - 8, 0);
    out.extend_from_slice(&(image.len() as u64).to_le_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &out);
    out.extend_from_slice(digest.as_ref());
    debug_assert_eq!(out.len() % SECTOR, DIGEST);
    out
}

/// The snapshot in a backup, every frame and checksum checked.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Snapshot<KvImage>> {
    if bytes.len() % SECTOR != DIGEST || bytes.len() < SECTOR + DIGEST {
        bail!(
            "{} bytes is not the length of a backup (a multiple of {SECTOR} plus {DIGEST})",
            bytes.len()
        );
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST);
    if ring::digest::digest(&ring::digest::SHA256, body).as_ref() != digest {
        bail!("its SHA-256 digest does not match its contents");
    }
    let (padded, length) = body.split_at(body.len() - 8);
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes")) as usize;
    if length > padded.len() {
        bail!("its image length {length} exceeds the file");
    }
    snapshot_file::decode(&padded[..length]).map_err(|err| anyhow::anyhow!("{err}"))
}

/// What `save` wrote.
pub struct Saved {
    pub path: PathBuf,
    pub bytes: u64,
    pub index: u64,
    pub term: u64,
    pub revision: i64,
    pub keys: usize,
    pub members: Vec<u64>,
    pub millis: u128,
}

impl std::fmt::Display for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot saved at {}: {} bytes, log index {} (term {}), revision {}, {} keys, \
             members {:?} ({} ms)",
            self.path.display(),
            self.bytes,
            self.index,
            self.term,
            self.revision,
            self.keys,
            self.members,
            self.millis
        )
    }
}

/// Fetches a consistent snapshot from the cluster and writes it to `path`:
/// streamed to `path.part`, checked (format and checksum) before it is
/// fsynced and renamed into place, so `path` is either a whole, valid
/// backup or absent. An existing `path` is refused, never overwritten.
pub async fn save(client: &mut KvClient, path: &Path) -> anyhow::Result<Saved> {
    let started = Instant::now();
    if path.exists() {
        bail!(
            "{} exists already: choose another file or remove it first (a backup is never overwritten)",
            path.display()
        );
    }
    let part = part_path(path);
    let mut stream = client.snapshot().await?;
    let mut bytes = Vec::new();
    let mut expected_total: Option<u64> = None;
    let deadline = started + client.op_timeout;
    loop {
        let next = tokio::time::timeout_at(deadline.into(), stream.message())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the snapshot stream did not end within {:?}",
                    client.op_timeout
                )
            })?
            .context("the snapshot stream failed")?;
        let Some(chunk) = next else { break };
        bytes.extend_from_slice(&chunk.blob);
        let total = bytes.len() as u64 + chunk.remaining_bytes;
        if *expected_total.get_or_insert(total) != total {
            bail!("the snapshot stream's sizes disagree: the server's chunks are inconsistent");
        }
    }
    if expected_total.is_some_and(|total| total != bytes.len() as u64) {
        bail!(
            "the snapshot stream ended after {} of {} bytes",
            bytes.len(),
            expected_total.unwrap_or(0)
        );
    }
    let snapshot = decode(&bytes)
        .map_err(|err| anyhow::anyhow!("the snapshot received is not valid: {err}"))?;
    snapshot_file::write_durably(&part, path, &bytes)
        .map_err(|(at, err)| anyhow::anyhow!("cannot write {}: {err}", at.display()))?;
    Ok(Saved {
        path: path.to_owned(),
        bytes: bytes.len() as u64,
        index: snapshot.meta.last_index,
        term: snapshot.meta.last_term,
        revision: snapshot.data.revision,
        keys: snapshot.data.data.len(),
        members: snapshot.meta.config.members.iter().copied().collect(),
        millis: started.elapsed().as_millis(),
    })
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// What `restore` seeded.
pub struct Restored {
    pub incarnation: String,
    pub index: u64,
    pub term: u64,
    pub keys: usize,
}

/// Initialises `config`'s data directory (refused if it is initialised
/// already) as a member of a new cluster whose state starts at the backup
/// in `file`: its snapshot, with the configuration `config` names, and its
/// term. The file is checked before anything is created.
pub fn restore(config: &NodeConfig, file: &Path) -> anyhow::Result<Restored> {
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let backup = decode(&bytes)
        .map_err(|err| anyhow::anyhow!("{} is not a valid backup: {err}", file.display()))?;
    let members: Vec<u64> = config.members.keys().copied().collect();
    let image = KvImage {
        sessions: OrdMap::new(),
        addresses: OrdMap::new(),
        ..backup.data
    };
    let snapshot = Snapshot {
        meta: raft_model::SnapshotMeta {
            config: Config::new(members),
            ..backup.meta
        },
        data: image,
    };
    let log = Log {
        snapshot_index: snapshot.meta.last_index,
        snapshot_term: snapshot.meta.last_term,
        ..Log::default()
    };
    let incarnation = crate::server::init_data_dir(config)?;
    let identity = crate::server::identity(config);
    let (storage, _) = Storage::open(&config.data_dir, &identity)?;
    let mut batch = WriteBatch::default();
    // The term never goes below the last entry's: the core asserts it.
    batch.set_hard_state(snapshot.meta.last_term, None);
    batch.set_snapshot(&snapshot, &log);
    storage.write(batch).with_context(|| {
        format!(
            "{} was initialised but the backup could not be written into it: remove the \
             directory and run the restore again",
            config.data_dir.display()
        )
    })?;
    Ok(Restored {
        incarnation,
        index: snapshot.meta.last_index,
        term: snapshot.meta.last_term,
        keys: snapshot.data.data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_model::SnapshotMeta;

    fn image_bytes() -> Vec<u8> {
        let meta = SnapshotMeta {
            last_index: 7,
            last_term: 2,
            config: Config::new([1, 2, 3]),
        };
        snapshot_file::encode(&meta, &KvImage::default())
    }

    #[test]
    fn a_backup_has_etcds_length_and_round_trips() {
        for extra in [0usize, 1, 470, 471, 472, 473, 5000] {
            let mut image = image_bytes();
            // Lengths around a sector boundary: the framing pads correctly.
            image.resize(image.len() + extra, 0);
            let backup = encode(&image);
            assert_eq!(backup.len() % SECTOR, DIGEST, "extra {extra}");
            if extra == 0 {
                let snapshot = decode(&backup).unwrap();
                assert_eq!(snapshot.meta.last_index, 7);
            }
        }
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_refused() {
        let backup = encode(&image_bytes());
        for at in 0..backup.len() {
            let mut bad = backup.clone();
            bad[at] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at {at}");
        }
        for len in 0..backup.len() {
            assert!(decode(&backup[..len]).is_err(), "cut at {len}");
        }
    }
}
