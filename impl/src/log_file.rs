//! The append-only record file under `storage`: framing, checksums, and what
//! counts as a torn tail.
//!
//! ```text
//! record = len: u32 LE | !len: u32 LE | crc32(body): u32 LE | body (len bytes)
//! ```
//!
//! A batch of records is appended with one `write` and made durable with one
//! `fdatasync` (group commit); nothing that depends on a batch is sent or
//! acknowledged before that returns.
//!
//! **Reading back.** Records are read front to back. The length is stored
//! twice (the second time inverted), so a flipped bit in a length is caught
//! before it could make a record seem to run past the end of the file.
//! - a record whose body fails its checksum, or whose two lengths disagree,
//!   is **corruption**: reported with the file and byte offset, and the node
//!   refuses to start — acknowledged data is never silently dropped;
//! - an incomplete record at the very end (a header or body cut short), or a
//!   tail of zero bytes, is a **torn final write**: a batch whose fdatasync
//!   never returned, hence never acknowledged to anyone. Raft allows losing
//!   it (paper §5: only acknowledged state must survive), so the tail is cut
//!   off and the node starts from the last complete record.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Header bytes before each body.
pub const HEADER: usize = 12;
/// No record is larger (a snapshot is a separate file; entries are bounded
/// far below this by the client API).
pub const MAX_BODY: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("{path}: {source}")]
    Io {
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
    let len = body.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
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

/// What reading a file back found.
pub struct Contents {
    /// Each complete record's byte offset and body, in order.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Bytes cut off the end as a torn final write (0: the file was clean).
    pub torn_bytes: u64,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Splits a file's bytes into records (see the module docs for the rules).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Contents, LogFileError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let corrupt = |offset: usize, what: String| LogFileError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        what,
    };
    while at < bytes.len() {
        let rest = &bytes[at..];
        let torn = Contents {
            records: Vec::new(),
            torn_bytes: rest.len() as u64,
        };
        if rest.iter().all(|b| *b == 0) || rest.len() < HEADER {
            return Ok(Contents { records, ..torn });
        }
        let len = u32_at(rest, 0);
        if u32_at(rest, 4) != !len {
            return Err(corrupt(
                at,
                format!(
                    "record header damaged (length {len:#010x} and its check {:#010x} disagree)",
                    u32_at(rest, 4)
                ),
            ));
        }
        let len = len as usize;
        if len > MAX_BODY {
            return Err(corrupt(
                at,
                format!("record length {len} exceeds {MAX_BODY}"),
            ));
        }
        if rest.len() < HEADER + len {
            return Ok(Contents { records, ..torn });
        }
        let body = &rest[HEADER..HEADER + len];
        let stored = u32_at(rest, 8);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(corrupt(
                at,
                format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
            ));
        }
        records.push((at as u64, body.to_vec()));
        at += HEADER + len;
    }
    Ok(Contents {
        records,
        torn_bytes: 0,
    })
}

/// The open file, positioned at its end.
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LogFileError + '_ {
    move |source| LogFileError::Io {
        path: path.to_owned(),
        source,
    }
}

impl LogFile {
    /// Opens (creating if absent) and reads `path`; a torn tail is cut off
    /// (and the cut made durable) before appending resumes.
    pub fn open(path: &Path) -> Result<(LogFile, Contents), LogFileError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(path))?;
        let contents = parse(path, &bytes)?;
        if contents.torn_bytes > 0 {
            let keep = bytes.len() as u64 - contents.torn_bytes;
            file.set_len(keep).map_err(io(path))?;
            file.sync_all().map_err(io(path))?;
        }
        let len = file.seek(SeekFrom::End(0)).map_err(io(path))?;
        Ok((
            LogFile {
                path: path.to_owned(),
                file,
                len,
            },
            contents,
        ))
    }

    /// Appends framed records and makes them durable (one fdatasync).
    pub fn append(&mut self, framed: &[u8]) -> Result<(), LogFileError> {
        self.file.write_all(framed).map_err(io(&self.path))?;
        self.len += framed.len() as u64;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// Bytes in the file.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Replaces the whole file by `framed` atomically: written to a
    /// temporary file, fsynced, renamed over, directory fsynced.
    pub fn replace(&mut self, framed: &[u8]) -> Result<(), LogFileError> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut file = File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(framed).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        self.len = file.seek(SeekFrom::End(0)).map_err(io(&self.path))?;
        self.file = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            frame(&mut out, body);
        }
        out
    }

    #[test]
    fn records_round_trip_and_frame_with_matches_frame() {
        let mut a = Vec::new();
        frame(&mut a, b"hello");
        let mut b = Vec::new();
        frame_with(&mut b, |out| out.extend_from_slice(b"hello"));
        assert_eq!(a, b);
        let contents = parse(Path::new("x"), &framed(&[b"one", b"", b"three"])).unwrap();
        let bodies: Vec<&[u8]> = contents.records.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bodies, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(contents.torn_bytes, 0);
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let bytes = framed(&[b"first record", b"second record"]);
        let first_len = HEADER + b"first record".len();
        for cut in first_len + 1..bytes.len() {
            let contents = parse(Path::new("x"), &bytes[..cut]).unwrap();
            assert_eq!(contents.records.len(), 1, "cut at {cut}");
            assert_eq!(contents.torn_bytes as usize, cut - first_len);
        }
        // Zeros after the last record (e.g. a size update without its data).
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0; 100]);
        let contents = parse(Path::new("x"), &zeros).unwrap();
        assert_eq!((contents.records.len(), contents.torn_bytes), (2, 100));
    }

    #[test]
    fn every_flipped_bit_is_corruption_or_a_shorter_tail_never_a_silent_change() {
        let bytes = framed(&[b"first record", b"second record"]);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            match parse(Path::new("log"), &damaged) {
                Err(err) => {
                    let text = err.to_string();
                    assert!(text.contains("log") && text.contains("byte"), "{text}");
                }
                // Only a length flipped in BOTH copies could get here, which a
                // single bit cannot do: a flip must never pass unnoticed.
                Ok(contents) => panic!(
                    "bit {bit}: accepted {} records, torn {}",
                    contents.records.len(),
                    contents.torn_bytes
                ),
            }
        }
    }
}
