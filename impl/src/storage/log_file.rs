//! The record file under `storage`: framing, checksums, preallocation, and
//! what counts as a torn final write.
//!
//! ```text
//! record = len: u32 LE | !len: u32 LE | crc32(body): u32 LE | body (len bytes)
//! batch record body = 0x00 | BATCH_MAGIC | nonce: u64 | offset: u64 | extent: u64 (LE)
//! end record body   = 0x00 | END_MAGIC (no zero byte in it)
//! ```
//!
//! **Batches.** Each append is one batch: a batch record, the caller's
//! records, an end record; written with `pwrite` and made durable with one
//! `fdatasync` (group commit); nothing that depends on a batch is sent or
//! acknowledged before that returns. Batch and end records are this
//! module's own (storage's record kinds start at 1) and are not handed to
//! the caller. A batch record names the file (a random nonce drawn when the
//! file is created) and its own offset, so that neither a record copied
//! from elsewhere nor bytes a client chose can pass for one, and a file
//! with bytes inserted or removed is refused. The end record puts non-zero
//! bytes at the end of every batch, so that the zeros some records end
//! with (a vote of 0, say) never reach a sector's end and look unwritten.
//!
//! **A batch is all or nothing.** Its records together are one step of the
//! caller's state (storage's hard state, snapshot pointer, entries and
//! truncation of one group commit), and a part of one can be a state no
//! step leads to (a new snapshot followed by the old conflicting entries its
//! truncation would have dropped). So the caller is handed only the records
//! of whole batches, those closed by their end record; a torn final batch is
//! dropped whole, the records of it that did reach the disk included.
//!
//! **Preallocation makes a cut visible.** The file is grown ahead of its
//! records (`fallocate`, then `fsync` of the new size) and the space past the
//! last record is zeros (written as zeros a little ahead of the records, so
//! that an fdatasync has no block map to update: `LogFile::zero_ahead`). Each batch record states the file's length when it
//! was written (its *extent*), and it always lies inside space that already
//! existed before (room for one batch record is kept free), so a later batch
//! that uses new space is preceded by a record claiming it. A file shorter
//! than the extent its last batch record claims has been cut, and is refused
//! — wherever the cut falls, a record boundary included. (With plain
//! appends, a file cut at a record boundary looks exactly like one that
//! ended there, and a node would start from a shorter log than it had
//! acknowledged.)
//!
//! **Reading back.** Records are read front to back until only zeros are
//! left. The length is stored twice (the second time inverted), so a
//! flipped bit in a length is caught before it could make a record seem to
//! run elsewhere. A damaged record — the two lengths disagree, the body fails
//! its checksum, or it runs past the end of the file — is one of two things:
//! - a **torn final write** (a batch whose fdatasync never returned, so
//!   never acknowledged: Raft allows losing it, paper §5) when both hold:
//!   1. it shows a sector that never reached the disk: its header is zeros,
//!      or a sector it touches reads as zeros from where the record starts
//!      in it to the sector's end. The space was zeros before the write, a
//!      crash keeps whole sectors from the disk, a flipped bit zeroes
//!      nothing, and no valid header is zero. (Fewer than 4 zero bytes at
//!      the start of a header count only if the inverted length copy says
//!      they were not zero.)
//!   2. no intact batch record of this file (its nonce, at the offset it
//!      names) starts anywhere after it: batches are written one after
//!      another, each made durable before the next is written, so a later
//!      batch proves that the damaged one was complete and durable.
//!
//!   The whole torn batch is dropped — from its batch record on, its
//!   intact first records too — and those bytes are overwritten with zeros
//!   (and fdatasynced) before appending resumes, so no remnant of that batch
//!   is ever read as records. A final batch whose records are intact but
//!   whose end record is missing (zeros where it belongs) is torn the same
//!   way: its end record's sector never reached the disk.
//! - a batch without its end record followed by another batch, an end
//!   record without a batch record, or a record between batches is
//!   **corruption**.
//! - otherwise **corruption**: reported with the file and byte offset, and
//!   the node refuses to start; acknowledged data is never silently dropped.
//!
//! What no single file can tell: a flipped bit in the *final* batch passes
//! for a torn write when that batch also holds a sector-aligned run of 512
//! zeros (a value of zeros); and sectors holding the last batches that the
//! disk acknowledged but then lost whole (a lying disk cache) read as the
//! file's clean end. Catching those would need the end recorded outside
//! the file.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Header bytes before each body.
pub const HEADER: usize = 12;
/// No record is larger (a snapshot is a separate file; entries are bounded
/// far below this by the client API).
pub const MAX_BODY: usize = 64 << 20;

/// A batch record's body: kind 0, the magic, nonce, offset, extent.
const BATCH_BODY: usize = 33;
/// A whole batch record.
pub const BATCH_RECORD: usize = HEADER + BATCH_BODY;
const BATCH_MAGIC: u64 = 0x3276_2d68_6374_6162; // "batch-v2"
/// An end record's body: kind 0 and the magic.
const END_BODY: usize = 9;
const END_RECORD: usize = HEADER + END_BODY;
const END_MAGIC: u64 = 0x646e_652d_6863_7462; // "btch-end": no zero byte
/// The unit a crash keeps from the disk (or not) as a whole.
const SECTOR: usize = 512;
/// The file grows by its own size, at least this much...
const MIN_GROWTH: u64 = 1 << 20;
/// ...and at most this much at a time (as etcd's WAL segments).
const MAX_GROWTH: u64 = 64 << 20;
/// Zeros written past the records at a time, ahead of the batches (see
/// [`LogFile::zero_ahead`]).
const ZERO_AHEAD: usize = 128 << 10;
static ZEROS: [u8; ZERO_AHEAD] = [0; ZERO_AHEAD];

#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An fsync or fdatasync failed: what the file holds is unknown.
    #[error("fsync of {path} failed: {source}")]
    SyncFailed {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupted data in {path} at byte {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: String,
    },
}

/// Appends one framed record holding `body` to `out`.
pub fn frame(out: &mut Vec<u8>, body: &[u8]) {
    frame_with(out, |out| out.extend_from_slice(body));
}

/// Frames a record whose body is written in place by `write_body` (no
/// intermediate buffer per record).
pub fn frame_with(out: &mut Vec<u8>, write_body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    write_body(out);
    let body = &out[start + HEADER..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&(!len).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// What a batch record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Batch {
    /// The file's nonce.
    nonce: u64,
    /// Where the record was written.
    offset: u64,
    /// The file's length when it was written.
    extent: u64,
}

/// One batch as written: batch record, `framed`, end record.
fn batch_bytes(batch: Batch, framed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_RECORD + framed.len() + END_RECORD);
    frame_with(&mut out, |body| {
        body.push(0);
        for word in [BATCH_MAGIC, batch.nonce, batch.offset, batch.extent] {
            body.extend_from_slice(&word.to_le_bytes());
        }
    });
    out.extend_from_slice(framed);
    frame_with(&mut out, |body| {
        body.push(0);
        body.extend_from_slice(&END_MAGIC.to_le_bytes());
    });
    out
}

/// This module's own records.
enum Own {
    Batch(Batch),
    End,
}

fn own_record(body: &[u8]) -> Option<Own> {
    if body.first() != Some(&0) {
        return None;
    }
    if body.len() == BATCH_BODY && u64_at(body, 1) == BATCH_MAGIC {
        return Some(Own::Batch(Batch {
            nonce: u64_at(body, 9),
            offset: u64_at(body, 17),
            extent: u64_at(body, 25),
        }));
    }
    (body.len() == END_BODY && u64_at(body, 1) == END_MAGIC).then_some(Own::End)
}

/// What reading a file back found.
pub struct Contents {
    /// Each complete record's byte offset and body, in order (this module's
    /// own records left out).
    pub records: Vec<(u64, Vec<u8>)>,
    /// Where the records end: appending resumes here.
    pub end: u64,
    /// Bytes of a torn final write found after `end` (0: the file was clean).
    pub torn_bytes: u64,
    /// The file's nonce (None: no batch record was read).
    nonce: Option<u64>,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Whether the damaged record spanning `at..span_end` shows a sector that
/// never reached the disk: its header is zeros (no valid header is), or a
/// sector it touches is zeros from where the record starts in it to the
/// sector's end (everything the write put there is missing).
fn shows_an_unwritten_sector(bytes: &[u8], at: usize, span_end: usize) -> bool {
    let zero = |piece: &[u8]| piece.iter().all(|b| *b == 0);
    if zero(&bytes[at..(at + 8).min(bytes.len())]) {
        return true;
    }
    let end = span_end.min(bytes.len());
    let mut sector = at / SECTOR * SECTOR;
    while sector < end {
        let from = sector.max(at);
        let piece = &bytes[from..(sector + SECTOR).min(bytes.len())];
        if zero(piece) {
            if from > at || piece.len() >= 4 {
                return true;
            }
            // Fewer than 4 bytes of the length, at the end of a sector: zero
            // low bytes may be a valid length's. The inverted copy, in the
            // next sector, says what they were; if it says non-zero, they
            // were never written.
            if at + 8 <= bytes.len() {
                let length = (!u32_at(bytes, at + 4)).to_le_bytes();
                if length[..piece.len()].iter().any(|b| *b != 0) {
                    return true;
                }
            }
        }
        sector += SECTOR;
    }
    false
}

/// The offset of the first intact batch record of this file (its nonce, if
/// known, and its own offset) starting after `from`, at any byte offset:
/// the damage hides where records start.
fn batch_record_after(bytes: &[u8], from: usize, nonce: Option<u64>) -> Option<usize> {
    let len = (BATCH_BODY as u32).to_le_bytes();
    let check = (!(BATCH_BODY as u32)).to_le_bytes();
    (from + 1..=bytes.len().saturating_sub(BATCH_RECORD)).find(|&at| {
        bytes[at..at + 4] == len && bytes[at + 4..at + 8] == check && {
            let body = &bytes[at + HEADER..at + BATCH_RECORD];
            u32_at(bytes, at + 8) == crc32fast::hash(body)
                && matches!(own_record(body), Some(Own::Batch(batch))
                    if batch.offset == at as u64 && nonce.is_none_or(|n| n == batch.nonce))
        }
    })
}

/// Splits a file's bytes into records (see the module docs for the rules).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Contents, LogFileError> {
    let corrupt = |offset: usize, what: String| LogFileError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        what,
    };
    let mut records = Vec::new();
    let mut nonce = None;
    // The last batch record's extent, and where that record is.
    let mut extent: Option<(u64, usize)> = None;
    let mut at = 0usize;
    // The batch being read (its batch record read, its end record not yet):
    // where it starts, and how many records came before it.
    let mut open: Option<(usize, usize)> = None;
    // A damaged record: where its span ends, and what is wrong with it.
    let damage: Option<(usize, String)> = loop {
        let rest = &bytes[at..];
        if rest.iter().all(|b| *b == 0) {
            break None;
        }
        if rest.len() < HEADER {
            break Some((
                bytes.len(),
                "a record header runs past the end of the file".into(),
            ));
        }
        let len = u32_at(rest, 0);
        if u32_at(rest, 4) != !len {
            break Some((
                at + HEADER,
                format!(
                    "record header damaged (length {len:#010x} and its check {:#010x} disagree)",
                    u32_at(rest, 4)
                ),
            ));
        }
        let len = len as usize;
        if len > MAX_BODY {
            break Some((
                at + HEADER,
                format!("record length {len} exceeds {MAX_BODY}"),
            ));
        }
        if rest.len() < HEADER + len {
            break Some((
                at + HEADER + len,
                format!("a {len}-byte record runs past the end of the file"),
            ));
        }
        let body = &rest[HEADER..HEADER + len];
        let (stored, computed) = (u32_at(rest, 8), crc32fast::hash(body));
        if stored != computed {
            break Some((
                at + HEADER + len,
                format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
            ));
        }
        match own_record(body) {
            Some(Own::Batch(batch)) => {
                if batch.offset != at as u64 {
                    return Err(corrupt(
                        at,
                        format!(
                            "a batch record written at byte {} is found at byte {at}: bytes \
                             were inserted into or removed from the file before it",
                            batch.offset
                        ),
                    ));
                }
                if *nonce.get_or_insert(batch.nonce) != batch.nonce {
                    return Err(corrupt(
                        at,
                        "a batch record of another log file (its nonce differs from the \
                         first batch's): the file was spliced from two"
                            .into(),
                    ));
                }
                if let Some((start, _)) = open {
                    return Err(corrupt(
                        at,
                        format!(
                            "the batch at byte {start} has no end record, yet another batch \
                             follows it: records were lost from the middle of the file"
                        ),
                    ));
                }
                extent = Some((batch.extent, at));
                open = Some((at, records.len()));
            }
            Some(Own::End) => {
                if open.take().is_none() {
                    return Err(corrupt(
                        at,
                        "an end record with no batch record before it: the file is damaged".into(),
                    ));
                }
            }
            None if open.is_none() && extent.is_some() => {
                return Err(corrupt(
                    at,
                    "a record outside any batch (after a batch's end record, before the next \
                     batch record): bytes were inserted into the file, or it is damaged"
                        .into(),
                ));
            }
            None => records.push((at as u64, body.to_vec())),
        }
        at += HEADER + len;
    };
    match extent {
        Some((claimed, record)) if (bytes.len() as u64) < claimed => {
            return Err(corrupt(
                bytes.len(),
                format!(
                    "the file was cut short: it ends at byte {}, but the batch record at byte \
                     {record} had extended it to {claimed} bytes. Records after the cut, \
                     acknowledged ones among them, are gone",
                    bytes.len()
                ),
            ));
        }
        None if !records.is_empty() => {
            return Err(corrupt(
                0,
                "no batch record before the first record: the file lost its beginning, or was \
                 written by a raft-node older than the batch-record format"
                    .into(),
            ));
        }
        _ => {}
    }
    // A torn final write takes its whole batch with it: the records of the
    // batch it tore are dropped too, not only those from the damage on.
    let torn_bytes = match damage {
        None => match open {
            None => 0,
            // The final batch's end record never reached the disk (only
            // zeros follow its records, so no batch came after it): the
            // batch is torn, and dropped whole.
            Some((start, before)) => {
                records.truncate(before);
                let last_nonzero = bytes.iter().rposition(|b| *b != 0).unwrap_or(start);
                let torn = (last_nonzero + 1).saturating_sub(start) as u64;
                at = start;
                torn
            }
        },
        Some((span_end, what)) => {
            if !shows_an_unwritten_sector(bytes, at, span_end) {
                return Err(corrupt(at, what));
            }
            if let Some(later) = batch_record_after(bytes, at, nonce) {
                return Err(corrupt(
                    at,
                    format!(
                        "{what}; a batch written after it (at byte {later}) proves it had been \
                         durable, so this is damage, not a torn final write"
                    ),
                ));
            }
            if let Some((start, before)) = open {
                records.truncate(before);
                at = start;
            }
            let last_nonzero = bytes.iter().rposition(|b| *b != 0).unwrap_or(at);
            (last_nonzero + 1).saturating_sub(at) as u64
        }
    };
    Ok(Contents {
        records,
        end: at as u64,
        torn_bytes,
        nonce,
    })
}

/// The open file: records end at `end`, zeros follow up to `allocated`.
pub struct LogFile {
    path: PathBuf,
    file: File,
    nonce: u64,
    end: u64,
    allocated: u64,
    /// The space up to here is written (records, or zeros written ahead of
    /// them), not merely allocated: `end <= zeroed <= allocated`, except
    /// that it may lag behind `allocated` only.
    zeroed: u64,
    /// A write failed: what is on disk is unknown (a failed fdatasync may
    /// have dropped pages that a retry would not rewrite), so every later
    /// write fails too, until a restart reads the file back.
    failed: bool,
    /// SEEDED BUG (the lab's `skip-fdatasync`, feature `seeded-bugs`
    /// only): appends are written but not fdatasynced.
    #[cfg(feature = "seeded-bugs")]
    pub(crate) skip_fdatasync: bool,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LogFileError + '_ {
    move |source| LogFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A failed fsync/fdatasync: never retried (after a failure the kernel may
/// have marked the pages clean without writing them, so a retry can succeed
/// with the data gone), always fatal to the file (`failed`).
fn sync_failed(path: &Path) -> impl Fn(std::io::Error) -> LogFileError + '_ {
    move |source| LogFileError::SyncFailed {
        path: path.to_owned(),
        source,
    }
}

/// Makes `file` at least `len` bytes long, the new space zeros and the new
/// length durable. `fallocate` reserves the blocks (a later write cannot
/// fail for want of space); only where the file system lacks it does
/// `set_len` give the same zeros without the reservation.
fn grow(file: &File, path: &Path, len: u64) -> Result<(), LogFileError> {
    let started = std::time::Instant::now();
    if let Err(err) = fs4::fs_std::FileExt::allocate(file, len) {
        if !matches!(err.kind(), ErrorKind::Unsupported | ErrorKind::InvalidInput) {
            return Err(io(path)(err));
        }
        file.set_len(len).map_err(io(path))?;
    }
    file.sync_all().map_err(sync_failed(path))?;
    // Part of a write's `Append` phase: a slow write's warning
    // (storage::SLOW_WRITE) says whether growing the file was the slow part.
    tracing::debug!(path = %path.display(), len, ms = started.elapsed().as_secs_f64() * 1e3, "log file grown");
    Ok(())
}

/// The next allocation for a file of `allocated` bytes that must hold
/// `needed`: the file doubles, by 1 to 64 MiB, in whole MiB.
fn next_allocation(allocated: u64, needed: u64) -> u64 {
    let step = allocated.clamp(MIN_GROWTH, MAX_GROWTH);
    needed.max(allocated + step).div_ceil(MIN_GROWTH) * MIN_GROWTH
}

/// Room a batch of `framed` needs at the end of the records: itself and,
/// after it, the next batch's record (which must lie in existing space).
fn room(framed: &[u8]) -> u64 {
    (BATCH_RECORD + framed.len() + END_RECORD + BATCH_RECORD) as u64
}

fn sync_dir_of(path: &Path) -> Result<(), LogFileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .map_err(io(dir))?
        .sync_all()
        .map_err(sync_failed(dir))
}

/// How much of a replaced log file [`release_in_background`] frees at a time.
const RELEASE_STEP: u64 = 8 << 20;

/// Frees the blocks of `file`, a log file of `len` bytes just renamed over
/// (so unlinked, and freed whole when its last descriptor closes), a few MiB
/// at a time on a thread of its own, each step made durable before the next.
///
/// Why: closing it on the write path freed its 64-128 MiB at once, and that
/// took the file system 108-111 ms (measured on a 2-core VM's ext4, mounted
/// with `discard`), during which the write — and every request it carried —
/// waited (issue 17, the p99.9 of puts at 256 clients). Freed in steps, the
/// file system's work is spread over many small commits instead of one. A
/// crash part way loses nothing: the file has no name, and the kernel frees
/// what is left when the process's descriptors close.
fn release_in_background(file: File, len: u64) {
    let spawned = std::thread::Builder::new()
        .name("log-file-release".into())
        .spawn(move || {
            let mut len = len;
            while len > RELEASE_STEP {
                len -= RELEASE_STEP;
                if file.set_len(len).and_then(|()| file.sync_all()).is_err() {
                    break;
                }
            }
        });
    // No thread: the file is dropped with the closure, here, as before.
    drop(spawned);
}

impl LogFile {
    /// Creates `path` holding one batch of `framed` records, atomically
    /// (temporary file, fsync, rename, directory fsync): after a crash the
    /// file is either absent or whole.
    pub fn create(path: &Path, framed: &[u8]) -> Result<LogFile, LogFileError> {
        let (file, end, allocated, nonce) = Self::write_new(path, framed)?;
        fs::rename(path.with_extension("tmp"), path).map_err(io(path))?;
        sync_dir_of(path)?;
        Ok(LogFile {
            path: path.to_owned(),
            file,
            nonce,
            end,
            allocated,
            zeroed: end,
            failed: false,
            #[cfg(feature = "seeded-bugs")]
            skip_fdatasync: false,
        })
    }

    /// Writes a new file next to `path` (its `.tmp` sibling) holding one
    /// batch of `framed`, durable; returns it open, with its end, length
    /// and nonce.
    fn write_new(path: &Path, framed: &[u8]) -> Result<(File, u64, u64, u64), LogFileError> {
        let tmp = path.with_extension("tmp");
        let nonce: u64 = rand::random();
        let allocated = next_allocation(0, room(framed));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        grow(&file, &tmp, allocated)?;
        let batch = Batch {
            nonce,
            offset: 0,
            extent: allocated,
        };
        let bytes = batch_bytes(batch, framed);
        file.write_all_at(&bytes, 0).map_err(io(&tmp))?;
        file.sync_all().map_err(sync_failed(&tmp))?;
        Ok((file, bytes.len() as u64, allocated, nonce))
    }

    /// Opens and reads `path`, which must exist; a torn final write is
    /// overwritten with zeros (and that made durable) before appending
    /// resumes.
    pub fn open(path: &Path) -> Result<(LogFile, Contents), LogFileError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(path))?;
        let contents = parse(path, &bytes)?;
        if contents.torn_bytes > 0 {
            let zeros = vec![0; contents.torn_bytes as usize];
            file.write_all_at(&zeros, contents.end).map_err(io(path))?;
            file.sync_data().map_err(sync_failed(path))?;
        }
        Ok((
            LogFile {
                path: path.to_owned(),
                file,
                nonce: contents.nonce.unwrap_or_else(rand::random),
                end: contents.end,
                allocated: bytes.len() as u64,
                // Not known past the records: written again as appends need.
                zeroed: contents.end,
                failed: false,
                #[cfg(feature = "seeded-bugs")]
                skip_fdatasync: false,
            },
            contents,
        ))
    }

    fn usable(&self) -> Result<(), LogFileError> {
        if self.failed {
            return Err(LogFileError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(
                    "an earlier write to this file failed, so what it holds is unknown; \
                     restart the node to read it back",
                ),
            });
        }
        Ok(())
    }

    /// Appends framed records as one batch and makes them durable (one
    /// fdatasync; two more syscalls when the file must grow first).
    pub fn append(&mut self, framed: &[u8]) -> Result<(), LogFileError> {
        self.usable()?;
        self.failed = true;
        let needed = self.end + room(framed);
        if needed > self.allocated {
            let allocated = next_allocation(self.allocated, needed);
            grow(&self.file, &self.path, allocated)?;
            self.allocated = allocated;
        }
        let batch = Batch {
            nonce: self.nonce,
            offset: self.end,
            extent: self.allocated,
        };
        let bytes = batch_bytes(batch, framed);
        self.file
            .write_all_at(&bytes, self.end)
            .map_err(io(&self.path))?;
        self.zero_ahead(self.end + bytes.len() as u64)?;
        #[cfg(feature = "seeded-bugs")]
        let sync = !self.skip_fdatasync;
        #[cfg(not(feature = "seeded-bugs"))]
        let sync = true;
        if sync {
            self.file.sync_data().map_err(sync_failed(&self.path))?;
        }
        self.end += bytes.len() as u64;
        self.failed = false;
        Ok(())
    }

    /// Writes zeros over allocated space past `records_end` (the end of
    /// the records once the batch being appended is written), some
    /// [`ZERO_AHEAD`] bytes at a time, so that batches land on blocks
    /// already written, not merely allocated.
    ///
    /// Why: `fallocate` leaves its blocks *unwritten* (they read as zeros),
    /// and the first write into one has the fdatasync that follows also
    /// write and wait for the file's block map and inode, to record the
    /// blocks as written: two more device writes, waited for one after the
    /// other, on every batch. Over blocks already written an fdatasync
    /// writes the data and flushes, nothing else. Measured on the
    /// development VM's ext4 (no journal, virtio disk), 2 KiB appends each
    /// fdatasynced, 4,000 each: mean 0.156 ms into fallocated space, 0.126
    /// ms with these zeros written ahead (one batch in some 60 carries them
    /// and pays for the conversion); three such writers at once, as three
    /// nodes on one disk, 0.30-0.33 ms against 0.23-0.26 ms. The zeros
    /// change nothing a reader sees (the space past the records reads as
    /// zeros either way, which is what makes a cut visible: the module's
    /// doc), and a cut that loses or tears them leaves zeros there too.
    fn zero_ahead(&mut self, records_end: u64) -> Result<(), LogFileError> {
        assert!(records_end <= self.allocated, "records past the allocation");
        let ahead = ZERO_AHEAD as u64;
        if self.zeroed >= records_end + ahead / 2 {
            return Ok(());
        }
        let from = self.zeroed.max(records_end);
        let to = (from + ahead).min(self.allocated);
        if to > from {
            // Bounded by ZERO_AHEAD, so it fits in `usize`.
            let len = (to - from) as usize;
            self.file
                .write_all_at(&ZEROS[..len], from)
                .map_err(io(&self.path))?;
        }
        self.zeroed = to.max(records_end);
        Ok(())
    }

    /// Bytes of records in the file (the zeros after them not counted).
    pub fn size(&self) -> u64 {
        self.end
    }

    /// Replaces the whole file by one batch of `framed` records atomically:
    /// written to a temporary file, fsynced, renamed over, directory fsynced.
    pub fn replace(&mut self, framed: &[u8]) -> Result<(), LogFileError> {
        self.usable()?;
        let (file, end, allocated, nonce) = Self::write_new(&self.path, framed)?;
        self.failed = true;
        fs::rename(self.path.with_extension("tmp"), &self.path).map_err(io(&self.path))?;
        // From here on the new file is the log, whatever happens next. The
        // old one, now nameless, is freed off this path.
        let old = std::mem::replace(&mut self.file, file);
        release_in_background(old, self.allocated);
        (self.end, self.allocated, self.nonce) = (end, allocated, nonce);
        self.zeroed = end;
        sync_dir_of(&self.path)?;
        self.failed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_freed_in_steps_off_the_write_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let len = 3 * RELEASE_STEP + 12345;
        file.set_len(len).unwrap();
        // Another descriptor of the same file, to watch it shrink.
        let watch = file.try_clone().unwrap();
        release_in_background(file, len);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while watch.metadata().unwrap().len() > RELEASE_STEP {
            assert!(
                std::time::Instant::now() < deadline,
                "still {} bytes",
                watch.metadata().unwrap().len()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Left at most one step, which the last descriptor's close frees.
        assert_eq!(watch.metadata().unwrap().len(), 12345);
    }

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            frame(&mut out, body);
        }
        out
    }

    fn bodies(contents: &Contents) -> Vec<Vec<u8>> {
        contents.records.iter().map(|(_, b)| b.clone()).collect()
    }

    /// A body of `len` bytes with no zero byte in it (so a zero sector can
    /// only mean an unwritten one) that names its batch and record.
    fn body(batch: u8, record: u8, len: usize) -> Vec<u8> {
        let mut body = vec![batch + 1, record + 1];
        body.extend((0..len.saturating_sub(2)).map(|i| (i % 250) as u8 + 1));
        body
    }

    /// A file of `batches` appended batches, each of `records` bodies of
    /// `len` bytes; returns the file's bytes, each batch's start and the
    /// bodies.
    fn written(
        dir: &tempfile::TempDir,
        batches: u8,
        records: u8,
        len: usize,
    ) -> (Vec<u8>, Vec<u64>, Vec<Vec<u8>>) {
        let path = dir.path().join("raft.log");
        let mut file: Option<LogFile> = None;
        let (mut starts, mut all) = (Vec::new(), Vec::new());
        for b in 0..batches {
            let mut out = Vec::new();
            for r in 0..records {
                let body = body(b, r, len);
                frame(&mut out, &body);
                all.push(body);
            }
            match &mut file {
                None => {
                    starts.push(0);
                    file = Some(LogFile::create(&path, &out).unwrap());
                }
                Some(file) => {
                    starts.push(file.size());
                    file.append(&out).unwrap();
                }
            }
        }
        (fs::read(&path).unwrap(), starts, all)
    }

    #[test]
    fn batches_round_trip_and_the_file_grows_ahead_of_them() {
        let mut a = Vec::new();
        frame(&mut a, b"hello");
        let mut b = Vec::new();
        frame_with(&mut b, |out| out.extend_from_slice(b"hello"));
        assert_eq!(a, b);

        let dir = tempfile::tempdir().unwrap();
        // 3 batches of 40 records of 30 KiB: 3.5 MiB, so the file grows twice.
        let (bytes, _, all) = written(&dir, 3, 40, 30 << 10);
        assert!(bytes.len() as u64 >= 4 * MIN_GROWTH, "{}", bytes.len());
        assert_eq!(bytes.len() as u64 % MIN_GROWTH, 0);
        let contents = parse(Path::new("log"), &bytes).unwrap();
        assert!(bodies(&contents) == all);
        assert_eq!(contents.torn_bytes, 0);

        // Reopened, appending resumes where the records end.
        let path = dir.path().join("raft.log");
        let (mut file, _) = LogFile::open(&path).unwrap();
        file.append(&framed(&[b"one more"])).unwrap();
        let (_, contents) = LogFile::open(&path).unwrap();
        assert_eq!(contents.records.last().unwrap().1, b"one more");
        assert_eq!(contents.records.len(), all.len() + 1);

        // A rewrite keeps only what it is given, and appends follow it.
        file.replace(&framed(&[b"image"])).unwrap();
        file.append(&framed(&[b"after"])).unwrap();
        let (_, contents) = LogFile::open(&path).unwrap();
        assert_eq!(
            bodies(&contents),
            vec![b"image".to_vec(), b"after".to_vec()]
        );
    }

    /// Every append leaves written zeros at least half of ZERO_AHEAD past the
    /// records (or up to the allocation's end), and never a non-zero byte
    /// past them; the file reads back the same.
    #[test]
    fn appends_keep_zeros_written_ahead_of_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.log");
        let mut file = LogFile::create(&path, &framed(&[b"first"])).unwrap();
        let mut zero_writes = 0;
        let mut all = vec![b"first".to_vec()];
        // 600 batches of 3 KiB: some 1.8 MiB, so the file grows on the way.
        for b in 0..600u32 {
            let before = file.zeroed;
            let body = body((b % 200) as u8, 0, 3 << 10);
            file.append(&framed(&[&body])).unwrap();
            all.push(body);
            if file.zeroed != before {
                zero_writes += 1;
            }
            assert!(file.end <= file.zeroed && file.zeroed <= file.allocated);
            let wanted = (file.end + ZERO_AHEAD as u64 / 2).min(file.allocated);
            assert!(file.zeroed >= wanted, "{} < {wanted}", file.zeroed);
        }
        // One write of zeros per ZERO_AHEAD / 2 bytes of records at most.
        assert!(zero_writes <= 600 * 3 / 64 + 2, "{zero_writes}");
        let bytes = fs::read(&path).unwrap();
        assert!(bytes[file.end as usize..].iter().all(|&b| b == 0));
        let contents = parse(Path::new("log"), &bytes).unwrap();
        assert!(bodies(&contents) == all);
        // Reopened, zeros are written ahead again from the records' end.
        let (mut file, _) = LogFile::open(&path).unwrap();
        assert_eq!(file.zeroed, file.end);
        file.append(&framed(&[b"one more"])).unwrap();
        assert!(file.zeroed >= (file.end + ZERO_AHEAD as u64 / 2).min(file.allocated));
    }

    /// A cut anywhere — at a record boundary too — is refused as a cut, once
    /// the file's first batch record survives it; a cut before that leaves
    /// no record at all (storage refuses a log without its first record).
    #[test]
    fn a_file_cut_anywhere_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, starts, _) = written(&dir, 3, 40, 30 << 10);
        let contents = parse(Path::new("log"), &bytes).unwrap();
        let mut cuts: Vec<usize> = contents
            .records
            .iter()
            .map(|(at, _)| *at as usize)
            .collect();
        cuts.extend(starts.iter().map(|at| *at as usize));
        cuts.extend([contents.end as usize, bytes.len() - 1, bytes.len() / 2]);
        cuts.extend((0..8).map(|k| k as usize * MIN_GROWTH as usize));
        cuts.extend((1..=2 * SECTOR).step_by(7));
        for cut in cuts {
            if cut >= bytes.len() {
                continue;
            }
            match parse(Path::new("log"), &bytes[..cut]) {
                Err(err) => {
                    let text = err.to_string();
                    assert!(
                        text.contains("cut short") || cut < BATCH_RECORD,
                        "cut at {cut}: {text}"
                    );
                }
                Ok(contents) => assert!(
                    cut < BATCH_RECORD && contents.records.is_empty(),
                    "cut at {cut}: accepted {} records",
                    contents.records.len()
                ),
            }
        }
    }

    /// A crash during the last batch's write keeps any subset of its sectors
    /// from the disk (they read as the zeros that were there): what is read
    /// back is every earlier batch and nothing of the last one — never an
    /// error, never a part of a batch (a batch is all or nothing: its
    /// records together are one step of the core's state).
    #[test]
    fn every_torn_final_write_drops_its_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        // Records of 700 bytes: the last batch spans 6 sectors, starting
        // mid-sector.
        let (bytes, starts, all) = written(&dir, 3, 4, 700);
        let last = starts[2] as usize;
        let full = parse(Path::new("log"), &bytes).unwrap();
        let end = full.end as usize;
        let sectors: Vec<usize> = (last / SECTOR..end.div_ceil(SECTOR)).collect();
        assert!(sectors.len() >= 6, "{sectors:?}");
        for lost in 1u32..1 << sectors.len() {
            let mut torn = bytes.clone();
            for (k, sector) in sectors.iter().enumerate() {
                if lost & (1 << k) != 0 {
                    let from = (sector * SECTOR).max(last);
                    torn[from..(sector + 1) * SECTOR].fill(0);
                }
            }
            // The records of the first two batches.
            let kept = full.records.len() - 4;
            let contents = parse(Path::new("log"), &torn)
                .unwrap_or_else(|err| panic!("sectors lost {lost:#b}: {err}"));
            assert_eq!(contents.records.len(), kept, "sectors lost {lost:#b}");
            assert!(bodies(&contents) == all[..kept], "sectors lost {lost:#b}");
            assert_eq!(contents.end as usize, last, "sectors lost {lost:#b}");
            let nothing_left = torn[last..].iter().all(|b| *b == 0);
            assert!(
                contents.torn_bytes > 0 || nothing_left,
                "sectors lost {lost:#b}"
            );
        }

        // Opening repairs it: the remnants are zeroed, and the next batch
        // reads back after the earlier ones.
        let path = dir.path().join("raft.log");
        let mut torn = bytes.clone();
        torn[(last / SECTOR + 2) * SECTOR..end].fill(0);
        fs::write(&path, &torn).unwrap();
        let (mut file, contents) = LogFile::open(&path).unwrap();
        assert!(contents.torn_bytes > 0);
        let kept = contents.records.len();
        file.append(&framed(&[b"after the crash"])).unwrap();
        let (_, contents) = LogFile::open(&path).unwrap();
        assert_eq!(contents.torn_bytes, 0);
        assert_eq!(contents.records.len(), kept + 1);
        assert_eq!(contents.records[kept].1, b"after the crash");
    }

    #[test]
    fn every_flipped_bit_in_the_records_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _, _) = written(&dir, 3, 2, 40);
        let end = parse(Path::new("log"), &bytes).unwrap().end as usize;
        for bit in 0..end * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            match parse(Path::new("log"), &damaged) {
                Err(err) => {
                    let text = err.to_string();
                    assert!(text.contains("log") && text.contains("byte"), "{text}");
                }
                Ok(contents) => panic!(
                    "bit {bit}: accepted {} records, torn {}",
                    contents.records.len(),
                    contents.torn_bytes
                ),
            }
        }
    }

    /// Zeros where acknowledged records were (a lost sector in the middle
    /// of the file) are damage, not a torn write: a later batch is intact.
    /// (A sector the last batch shares is its to tear.)
    #[test]
    fn lost_sectors_before_the_last_batch_are_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, starts, _) = written(&dir, 3, 4, 700);
        let shared = starts[2] as usize / SECTOR * SECTOR;
        for sector in (0..shared).step_by(SECTOR) {
            let mut damaged = bytes.clone();
            damaged[sector..sector + SECTOR].fill(0);
            let err = parse(Path::new("log"), &damaged)
                .err()
                .unwrap_or_else(|| panic!("sector at {sector} zeroed: accepted"));
            assert!(err.to_string().contains("byte"), "{err}");
        }
    }

    /// The previous batch ends 1-3 bytes before a sector's end and that
    /// sector is lost while the next one is kept: the zeros cover only the
    /// low bytes of the next batch record's length. Its inverted copy shows
    /// they were not zero: a torn write, not corruption.
    #[test]
    fn a_lost_sector_under_a_header_that_straddles_it_is_a_torn_write() {
        for k in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("raft.log");
            let first = SECTOR - k - BATCH_RECORD - END_RECORD - HEADER;
            let mut file = LogFile::create(&path, &framed(&[&body(0, 0, first)])).unwrap();
            assert_eq!(file.size() as usize, SECTOR - k);
            file.append(&framed(&[&body(1, 0, 700), &body(1, 1, 300)]))
                .unwrap();
            let mut bytes = fs::read(&path).unwrap();
            bytes[SECTOR - k..SECTOR].fill(0);
            let contents = parse(&path, &bytes).unwrap_or_else(|err| panic!("k = {k}: {err}"));
            assert_eq!(contents.records.len(), 1, "k = {k}");
            assert!(contents.torn_bytes > 0);
        }
    }

    /// A flipped bit in the final batch's last record is corruption even
    /// when that record ends in zeros (a hard state's vote of 0) that reach
    /// into a new sector: the end record keeps that sector from looking
    /// unwritten.
    #[test]
    fn a_flip_in_a_final_record_that_ends_in_zeros_is_corruption() {
        let zero_tail = [[1u8; 10].as_slice(), &[0; 7]].concat();
        for pad in 0..24 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("raft.log");
            // The final record ends 0..24 bytes past a sector boundary.
            let first = SECTOR - BATCH_RECORD - END_RECORD - HEADER - BATCH_RECORD + pad
                - (HEADER + zero_tail.len());
            let mut file = LogFile::create(&path, &framed(&[&body(0, 0, first)])).unwrap();
            file.append(&framed(&[&zero_tail])).unwrap();
            let clean = fs::read(&path).unwrap();
            let contents = parse(&path, &clean).unwrap();
            let (at, _) = contents.records[1];
            for byte in [0, 4, 8, HEADER, HEADER + 5] {
                let mut bytes = clean.clone();
                bytes[at as usize + byte] ^= 0x04;
                assert!(
                    parse(&path, &bytes).is_err(),
                    "pad {pad}, byte {byte}: a flip passed for a torn write"
                );
            }
        }
    }

    /// A client's value may hold the image of a batch record; after a torn
    /// write it must not pass for a later batch (which would refuse the
    /// start): a real one names this file's nonce and its own offset.
    #[test]
    fn batch_records_inside_values_prove_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.log");
        let mut file = LogFile::create(&path, &framed(&[b"first"])).unwrap();
        let nonce = parse(&path, &fs::read(&path).unwrap())
            .unwrap()
            .nonce
            .unwrap();
        let start = file.size();
        // Images with the right nonce at a guessed offset, and with a
        // guessed nonce at (each possible) offset.
        let mut value = vec![7u8; 600];
        for offset in 0..4096 {
            for batch in [
                Batch {
                    nonce,
                    offset,
                    extent: 0,
                },
                Batch {
                    nonce: nonce ^ 1,
                    offset,
                    extent: 0,
                },
            ] {
                if offset % 97 == 0 {
                    value.extend(batch_bytes(batch, &[]));
                }
            }
        }
        file.append(&framed(&[&value])).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        // Lose the sector after the value's start: the record is torn.
        let lost = (start as usize / SECTOR + 1) * SECTOR;
        bytes[lost..lost + SECTOR].fill(0);
        let contents = parse(&path, &bytes).unwrap();
        assert_eq!(contents.records.len(), 1);
        assert!(contents.torn_bytes > 0);
    }

    #[test]
    fn bytes_inserted_or_spliced_in_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, starts, _) = written(&dir, 3, 2, 40);
        let at = starts[1] as usize;
        // A whole, valid record slipped in between two batches.
        let slipped = framed(&[b"xyz"]);
        let inserted = [
            &bytes[..at],
            &slipped,
            &bytes[at..bytes.len() - slipped.len()],
        ]
        .concat();
        let err = parse(Path::new("log"), &inserted)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("inserted"), "{err}");

        // The tail of another log file (its own nonce) after this one's head.
        let other = tempfile::tempdir().unwrap();
        let (theirs, _, _) = written(&other, 3, 2, 40);
        let spliced = [&bytes[..at], &theirs[at..]].concat();
        let err = parse(Path::new("log"), &spliced).err().unwrap().to_string();
        assert!(err.contains("another log file"), "{err}");
    }
}
