//! What the log file's records say: their codec, the in-memory mirror of
//! the live ones, and the replay that rebuilds both at start.
//!
//! `log_file` frames, checksums and batches opaque record bodies; this file
//! gives the bodies their meaning. A body's first byte is its kind:
//!
//! ```text
//! INIT       5 | INIT_MAGIC: u64 | version: u64      the file's first record
//! HARD_STATE 1 | term: u64 | vote: u64 (0: none)
//! SNAPSHOT   2 | index: u64 | term: u64              the snapshot file in force
//! ENTRY      3 | index: u64 | Entry (raft_disk.proto, protobuf)
//! TRUNCATE   4 | last: u64 | 0: u64
//! ```
//!
//! (integers little-endian). The INIT record names the disk format version
//! (`FORMAT_VERSION`; version 1 wrote 0 there). Replay takes them in order:
//!
//! - `HardState(term, vote)`: the latest one wins;
//! - `Snapshot(index, term)`: the snapshot file now in force; entries up to
//!   `index` are dropped;
//! - `Entry(index, entry)`: entries from `index` on are dropped, then the
//!   entry is appended — so an overwrite needs no separate record; an index
//!   beyond the end + 1 is a gap: corruption;
//! - `Truncate(last)`: entries after `last` are dropped.
//!
//! **The mirror** ([`Durable`]) is what the file holds, as replay or the
//! last write left it: the hard state, the snapshot pointer and the framed
//! records of the live entries (the core holds the same entries anyway).
//! A compaction rewrites the file from it, without reading the file back.

use std::collections::VecDeque;
use std::path::Path;

use imbl::Vector;
use prost::Message as _;
use raft_model::{Config, Index, Log, NodeId, Snapshot, SnapshotMeta, Term};

use super::disk::{self, pb};
use super::log_file::{self, LogFile};
use super::{FORMAT_VERSION, Identity, REWRITE_BYTES, Recovered, StorageError, snapshot_file};
use crate::command::EntryMessage;
use crate::kv::{KvCommand, KvImage};

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
/// The length of an INIT record's body: kind, magic, format version. A
/// later format may make it longer, but keeps these 17 bytes as they are,
/// so that an older node can still say which version it refuses.
const INIT_BODY: usize = 17;

fn two_u64_record(out: &mut Vec<u8>, kind: u8, a: u64, b: u64) {
    log_file::frame_with(out, |body| {
        body.push(kind);
        body.extend_from_slice(&a.to_le_bytes());
        body.extend_from_slice(&b.to_le_bytes());
    });
}

pub(super) fn hard_state_record(out: &mut Vec<u8>, (term, vote): (Term, Option<NodeId>)) {
    two_u64_record(out, HARD_STATE, term, vote.unwrap_or(0));
}

pub(super) fn snapshot_record(out: &mut Vec<u8>, index: Index, term: Term) {
    two_u64_record(out, SNAPSHOT, index, term);
}

pub(super) fn truncate_record(out: &mut Vec<u8>, last: Index) {
    two_u64_record(out, TRUNCATE, last, 0);
}

/// The framed `Entry` record of `entry` at `index`. The entry is the disk
/// format's `Entry` message, written from its command's encoding (the
/// peer protocol's `Entry` is the same bytes, crate::command; a test in
/// `disk` pins them to `raft_disk.proto`'s generated type).
pub(super) fn entry_record(index: Index, entry: &EntryMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(log_file::HEADER + 9 + entry.encoded_len());
    log_file::frame_with(&mut out, |body| {
        body.push(ENTRY);
        body.extend_from_slice(&index.to_le_bytes());
        entry.encode_raw(body);
    });
    out
}

/// The framed INIT record of the current format.
pub(super) fn init_record() -> Vec<u8> {
    init_record_of(FORMAT_VERSION)
}

/// The framed INIT record of format `version` (1 is written as 0: version 1
/// did not record its version, and its INIT record held a 0 there).
pub(super) fn init_record_of(version: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let word = if version == 1 { 0 } else { version };
    two_u64_record(&mut out, INIT, INIT_MAGIC, word);
    out
}

/// The format version an INIT record's body names; None when `body` is not
/// an INIT record. Versions this node does not know are returned too, so
/// that they can be refused by name.
pub(super) fn init_version(body: &[u8]) -> Option<u64> {
    if body.len() < INIT_BODY || body[0] != INIT || u64_at(body, 1) != Some(INIT_MAGIC) {
        return None;
    }
    let word = u64_at(body, 9)?;
    Some(word.max(1))
}

/// Whether `body` is the INIT record of a format this node reads.
pub(super) fn is_init(body: &[u8]) -> bool {
    init_version(body).is_some_and(|version| (1..=FORMAT_VERSION).contains(&version))
        && body.len() == INIT_BODY
}

fn u64_at(body: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
}

/// What is stored, as the file's records say; kept so that a compaction can
/// rewrite the file without reading it back.
pub(super) struct Durable {
    pub(super) file: LogFile,
    pub(super) hard_state: (Term, Option<NodeId>),
    pub(super) snapshot: Option<(Index, Term)>,
    /// Framed `Entry` records of indexes `first..`, in order.
    first: Index,
    pub(super) entries: VecDeque<Vec<u8>>,
    /// Not stored: the highest commit index an earlier batch carried (the
    /// snapshot point after a start), below which `Storage::write` lets no
    /// entry change.
    pub(super) committed: Index,
    /// [`REWRITE_BYTES`] (tests lower it).
    pub(super) rewrite_bytes: u64,
}

impl Durable {
    pub(super) fn last(&self) -> Index {
        self.first + self.entries.len() as Index - 1
    }

    /// The framed record of entry `index`, if it is stored.
    pub(super) fn record(&self, index: Index) -> Option<&Vec<u8>> {
        let offset = index.checked_sub(self.first)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// The snapshot point: (0, 0) before the first snapshot.
    pub(super) fn snapshot_point(&self) -> (Index, Term) {
        self.snapshot.unwrap_or((0, 0))
    }

    /// Drops stored entries after `last`.
    pub(super) fn truncate_after(&mut self, last: Index) {
        let keep = (last + 1).saturating_sub(self.first) as usize;
        self.entries.truncate(keep);
    }

    /// Drops stored entries up to `index` (covered by a snapshot).
    pub(super) fn compact_to(&mut self, index: Index) {
        if index >= self.last() {
            self.entries.clear();
        } else {
            let drop = (index + 1).saturating_sub(self.first) as usize;
            self.entries.drain(..drop);
        }
        self.first = self.first.max(index + 1);
    }

    /// Whether the file holds more than `rewrite_bytes` of dead records.
    pub(super) fn worth_rewriting(&self) -> bool {
        let live: u64 = self.entries.iter().map(|r| r.len() as u64).sum::<u64>() + 64;
        self.file.size().saturating_sub(live) > self.rewrite_bytes
    }

    /// Every live record, for a rewrite of the whole file.
    pub(super) fn image(&self) -> Vec<u8> {
        let size: usize = self.entries.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(size + 96);
        out.extend_from_slice(&init_record());
        hard_state_record(&mut out, self.hard_state);
        if let Some((index, term)) = self.snapshot {
            snapshot_record(&mut out, index, term);
        }
        for record in &self.entries {
            out.extend_from_slice(record);
        }
        out
    }
}

/// Rebuilds the persistent state from the file's records (rules in the
/// module docs).
pub(super) fn replay(
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
        committed: 0,
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
                    .and_then(disk::entry_from_disk)
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
        // Its configuration is the one in force at its index, whatever
        // the starting configuration was (membership changes).
        snapshot = snapshot_file::read_file(dir, index, term)?;
    }
    durable.committed = durable.snapshot_point().0;
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
        incarnation: String::new(),
        initial_members: identity.members.clone(),
    };
    Ok((durable, recovered))
}
