//! The snapshot image format and the snapshot file: the same bytes on disk
//! and in an InstallSnapshot stream.
//!
//! ```text
//! "RAFTSNP2"                       8 bytes of magic (image format 2)
//! ImageHeader                      length-delimited protobuf: meta, counts, revision
//! KeyValue * header.keys           length-delimited protobuf records (with revisions)
//! Session  * header.sessions       length-delimited protobuf records
//! MemberAddress * header.addresses length-delimited protobuf records (0 before issue 15)
//! crc32                            4 bytes, little-endian, of everything above
//! ```
//!
//! The records are messages of the disk format (`proto/raft_disk.proto`).
//! Records are streamed one by one (no second copy of the map is built), and
//! the trailing checksum makes a torn or corrupted file an error, never a
//! silently smaller state machine.
//!
//! **Image format 1** (`RAFTSNP1`, disk format versions 1 and 2) had no
//! revisions, and is refused, with [`SnapshotError::NoRevisions`]: the
//! revisions of the keys it holds cannot be rebuilt the way the other members
//! have them (one member may load such an image at index 100, another replay
//! the log from an image at index 50: inventing revisions for the first
//! would give the two different mod revisions for the same key, and a
//! transaction comparing them would then apply differently on each — a
//! diverged state machine). A node whose directory holds one, or a leader
//! that sends one, must be replaced by a node of this version that catches
//! up from a leader of this version (or the whole cluster restarted from
//! logs that were never compacted).
//!
//! The image names its format in its magic because it also travels: a node
//! checks an image a peer sent as it checks its own file. The data
//! directory's format version (storage's `FORMAT_VERSION`) covers the image
//! too: a new image format is a new version of both.
//!
//! This file owns the image's bytes; only `Storage` writes and reads
//! snapshot files (`write_file` and `read_file` are private to storage),
//! and the peer transport only encodes and decodes images.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message as _;
use raft_model::{Index, Snapshot, SnapshotMeta, Term};

use super::disk::{self, pb, result_from_disk, result_to_disk};
use crate::kv::{KeyValue, KvImage, Session};

const MAGIC: &[u8; 8] = b"RAFTSNP2";
/// Image format 1: no revisions (disk format versions 1 and 2).
const MAGIC_V1: &[u8; 8] = b"RAFTSNP1";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot image is too short ({0} bytes) to be valid")]
    TooShort(usize),
    #[error(
        "snapshot image does not start with the magic bytes {MAGIC:?}: not a snapshot of this format"
    )]
    BadMagic,
    #[error(
        "snapshot image checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the image is torn or corrupted"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error(
        "snapshot image is of format 1 (RAFTSNP1, written by a raft-node before etcd revisions): it holds no revisions, and this node cannot rebuild them as the other members hold them. Start this member from a data directory of this version that catches up from the leader (a new member), or restart the cluster from uncompacted logs; see impl/src/storage/snapshot_file.rs"
    )]
    NoRevisions,
    #[error("snapshot image is malformed: {0}")]
    Malformed(String),
    #[error("cannot read or write snapshot file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Serializes a snapshot (metadata and image) into the format above.
pub fn encode(meta: &SnapshotMeta, image: &KvImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + image.data.len() * 32);
    out.extend_from_slice(MAGIC);
    let header = pb::ImageHeader {
        last_index: meta.last_index,
        last_term: meta.last_term,
        members: meta.config.members.iter().copied().collect(),
        old_members: meta.config.old.iter().flatten().copied().collect(),
        learners: meta.config.learners.iter().copied().collect(),
        keys: image.data.len() as u64,
        sessions: image.sessions.len() as u64,
        addresses: image.addresses.len() as u64,
        revision: image.revision,
    };
    // Encoding into a Vec cannot fail (it grows as needed).
    let _ = header.encode_length_delimited(&mut out);
    for (key, kv) in image.data.iter() {
        let record = pb::KeyValue {
            key: key.clone(),
            value: kv.value.clone(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
        };
        let _ = record.encode_length_delimited(&mut out);
    }
    for (client_id, session) in image.sessions.iter() {
        let record = pb::Session {
            client_id: *client_id,
            last_seq: session.last_seq,
            result: Some(result_to_disk(&session.result)),
            last_index: session.last_index,
        };
        let _ = record.encode_length_delimited(&mut out);
    }
    for (id, address) in image.addresses.iter() {
        let record = pb::MemberAddress {
            id: *id,
            address: address.clone(),
            incarnation: image.incarnations.get(id).cloned().unwrap_or_default(),
        };
        let _ = record.encode_length_delimited(&mut out);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Parses and verifies an image written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Snapshot<KvImage>, SnapshotError> {
    if bytes.len() < MAGIC.len() + 4 {
        return Err(SnapshotError::TooShort(bytes.len()));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    if body.starts_with(MAGIC_V1) {
        return Err(SnapshotError::NoRevisions);
    }
    let Some(mut rest) = body.strip_prefix(MAGIC.as_slice()) else {
        return Err(SnapshotError::BadMagic);
    };
    let malformed =
        |what: &str, err: prost::DecodeError| SnapshotError::Malformed(format!("{what}: {err}"));
    let header = pb::ImageHeader::decode_length_delimited(&mut rest)
        .map_err(|err| malformed("header", err))?;
    if header.revision < crate::kv::FIRST_REVISION {
        return Err(SnapshotError::Malformed(format!(
            "store revision {} is below {}",
            header.revision,
            crate::kv::FIRST_REVISION
        )));
    }
    let mut image = KvImage {
        revision: header.revision,
        ..KvImage::default()
    };
    for _ in 0..header.keys {
        let record = pb::KeyValue::decode_length_delimited(&mut rest)
            .map_err(|err| malformed("key-value record", err))?;
        // Every key was written at a revision in (first, store revision].
        let revisions = crate::kv::FIRST_REVISION + 1..=header.revision;
        if !revisions.contains(&record.create_revision)
            || !revisions.contains(&record.mod_revision)
            || record.create_revision > record.mod_revision
            || record.version < 1
        {
            return Err(SnapshotError::Malformed(format!(
                "key record with create revision {}, mod revision {}, version {} in a store at revision {}",
                record.create_revision, record.mod_revision, record.version, header.revision
            )));
        }
        let kv = KeyValue {
            value: record.value,
            create_revision: record.create_revision,
            mod_revision: record.mod_revision,
            version: record.version,
        };
        image.data.insert(record.key, kv);
    }
    for _ in 0..header.sessions {
        let record = pb::Session::decode_length_delimited(&mut rest)
            .map_err(|err| malformed("session record", err))?;
        let session = Session {
            last_seq: record.last_seq,
            result: result_from_disk(record.result),
            last_index: record.last_index,
        };
        image.sessions.insert(record.client_id, session);
    }
    for _ in 0..header.addresses {
        let record = pb::MemberAddress::decode_length_delimited(&mut rest)
            .map_err(|err| malformed("member address record", err))?;
        crate::incarnation::check(&record.incarnation)
            .map_err(|err| SnapshotError::Malformed(format!("member address record: {err}")))?;
        if !record.incarnation.is_empty() {
            image.incarnations.insert(record.id, record.incarnation);
        }
        image.addresses.insert(record.id, record.address);
    }
    if !rest.is_empty() {
        return Err(SnapshotError::Malformed(format!(
            "{} unexpected bytes after the last record",
            rest.len()
        )));
    }
    if image.data.len() as u64 != header.keys {
        return Err(SnapshotError::Malformed("duplicate keys".into()));
    }
    let meta = SnapshotMeta {
        last_index: header.last_index,
        last_term: header.last_term,
        config: disk::config_from_disk(&header.members, &header.old_members, &header.learners)
            .map_err(SnapshotError::Malformed)?,
    };
    Ok(Snapshot { meta, data: image })
}

/// The file name of the snapshot ending at (`index`, `term`).
pub fn file_name(index: Index, term: Term) -> String {
    format!("snapshot-{index:020}-{term:020}.snap")
}

/// Writes `bytes` as the snapshot file for (`index`, `term`) in `dir`,
/// durably: a temporary file is fsynced, renamed into place, and the
/// directory fsynced, so the file either exists whole or not at all.
pub(super) fn write_file(
    dir: &Path,
    index: Index,
    term: Term,
    bytes: &[u8],
) -> Result<PathBuf, SnapshotError> {
    let path = dir.join(file_name(index, term));
    let tmp = dir.join(format!("{}.tmp", file_name(index, term)));
    write_durably(&tmp, &path, bytes)
        .map_err(|(path, source)| SnapshotError::Io { path, source })?;
    Ok(path)
}

/// Writes `bytes` to `tmp`, fsyncs it, renames it to `path` and fsyncs
/// the directory, so that after a crash `path` is either whole or absent
/// (a snapshot file, a backup). Err names the path that failed.
pub(crate) fn write_durably(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<(), (PathBuf, std::io::Error)> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |source| (path, source)
    };
    let mut file = File::create(tmp).map_err(at(tmp))?;
    file.write_all(bytes).map_err(at(tmp))?;
    file.sync_all().map_err(at(tmp))?;
    drop(file);
    fs::rename(tmp, path).map_err(at(path))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// Reads and verifies the snapshot file for (`index`, `term`) in `dir`.
pub(super) fn read_file(
    dir: &Path,
    index: Index,
    term: Term,
) -> Result<Snapshot<KvImage>, SnapshotError> {
    let path = dir.join(file_name(index, term));
    let bytes = fs::read(&path).map_err(|source| SnapshotError::Io {
        path: path.clone(),
        source,
    })?;
    let snapshot = decode(&bytes).map_err(|err| match err {
        SnapshotError::Io { .. } => err,
        other => SnapshotError::Malformed(format!("{}: {other}", path.display())),
    })?;
    if (snapshot.meta.last_index, snapshot.meta.last_term) != (index, term) {
        return Err(SnapshotError::Malformed(format!(
            "{} holds the snapshot at index {} term {}, not index {index} term {term}",
            path.display(),
            snapshot.meta.last_index,
            snapshot.meta.last_term
        )));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvCommand, KvOp};
    use raft_model::Config;

    fn sample() -> (SnapshotMeta, KvImage) {
        let mut image = KvImage::default();
        for i in 0..100u64 {
            let command = KvCommand::new(
                i % 7,
                i + 1,
                KvOp::Put {
                    key: format!("key{i}"),
                    value: format!("value{i}"),
                },
            );
            image.apply(i + 1, &command).unwrap();
        }
        // The replicated address book travels in the image (issue 15).
        for id in [4u64, 5] {
            let command = KvCommand::new(
                0,
                0,
                KvOp::SetMemberAddress {
                    id,
                    address: format!("10.0.0.{id}:7001"),
                    incarnation: if id == 4 {
                        "4444".into()
                    } else {
                        String::new()
                    },
                },
            );
            image.apply(100 + id, &command).unwrap();
        }
        let meta = SnapshotMeta {
            last_index: 100,
            last_term: 3,
            config: Config::new([1, 2, 3]),
        };
        (meta, image)
    }

    #[test]
    fn round_trip() {
        let (meta, image) = sample();
        let snapshot = decode(&encode(&meta, &image)).unwrap();
        assert_eq!(snapshot.meta, meta);
        assert_eq!(snapshot.data, image);
        assert_eq!(snapshot.data.addresses.len(), 2);
        assert_eq!(
            snapshot.data.incarnations.len(),
            1,
            "the incarnation travels too"
        );
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let (meta, image) = sample();
        let bytes = encode(&meta, &image);
        for at in (0..bytes.len()).step_by(7) {
            let mut corrupted = bytes.clone();
            corrupted[at] ^= 0x40;
            assert!(decode(&corrupted).is_err(), "flip at {at} went unnoticed");
        }
        for len in (0..bytes.len()).step_by(11) {
            assert!(
                decode(&bytes[..len]).is_err(),
                "truncation to {len} went unnoticed"
            );
        }
    }
}
