//! The compact form of a trace: the same `raft-trace/5` JSON lines, through a
//! streaming zstd compressor.
//!
//! A compact segment (`node-<id>.<seq>.jsonl.zst`, see [`crate::segments`])
//! is, byte for byte:
//!
//! 1. a zstd *skippable frame* (magic `0x184D2A5A`, little-endian length,
//!    then the ASCII text [`CONTAINER`], `raft-trace-zstd/1`) naming the
//!    container and its version: standard zstd tools skip it, so
//!    `zstdcat node-1.000001.jsonl.zst` prints the JSON lines;
//! 2. one zstd frame holding the segment's lines, compressed as a stream
//!    and *flushed at every batch* (the node's [`crate::TraceWriter::flush`],
//!    once per batch, before the batch is persisted): each flush ends a zstd
//!    block, so everything the node handed to the kernel decodes without what
//!    follows. A segment whose writer was killed ends inside its frame, after
//!    a whole block; a segment closed by rotation ends its frame.
//!
//! Why a compressor over the JSON and not a binary encoding of the events:
//! the lines are the same ones a person, `raft-interop` and TLC read, so every
//! event the core serializes (a new `Step`, a new field) flows into the
//! compact form with no format work, and converting back is decompression.
//! The lines repeat themselves (the same state fields, the same messages
//! sent and received), which is what zstd's window finds: measured figures
//! are in interop/README.md ("Compact traces").
//!
//! Readers detect the form from the first bytes ([`Decoder`]): `{` is JSON
//! lines; the container's skippable frame is compact (another version is
//! refused by name); a bare zstd frame (a JSON trace compressed with the
//! `zstd` tool) is read as compact too.

use std::io::{self, Write};

/// The container and its version, written at the top of every compact
/// segment.
pub const CONTAINER: &str = "raft-trace-zstd/1";

/// The zstd skippable frame's magic number this container uses
/// (0x184D2A50..=0x184D2A5F are skippable; any zstd decoder ignores them).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5A;
/// A zstd frame's magic number.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// The zstd level. 1, not zstd's default 3: on the node's lines, batch by
/// batch with the caches cold between batches (as on an event loop doing
/// everything else), level 1 took 8.9 µs per 5-line batch against 12.5 µs
/// for level 3, for 13.9 bytes per line against 13.8 (`cargo run --release
/// -p raft-trace --example compress_cost`, figures in interop/README.md).
pub const LEVEL: i32 = 1;

/// zstd's hash table, 2^12 entries, and its window, 2^16 bytes (64 KiB),
/// where level 1 by default has 2^13 and 2^19 (512 KiB). A batch is a few
/// hundred bytes to a few KiB, and what it repeats is in the last few
/// batches; the smaller tables stay warmer in the caches of an event loop
/// that does everything else between batches. Measured on 100,000 lines of
/// a leader under `raft-lab compare`'s put x64, five per batch, `COLD=1`
/// (`compress_cost`, two passes): 5.75-7.91 µs per batch against 9.33-9.39
/// with level 1's defaults, 20.5 bytes per line against 21.0; tables of
/// 2^10 and 2^11 (windows 2^14, 2^15) were no faster, 2^13 (window 2^17)
/// no smaller (interop/README.md, "The zstd level").
pub const HASH_LOG: u32 = 12;
pub const WINDOW_LOG: u32 = 16;

/// How a trace file is written: `compact` (zstd over the JSON lines, the
/// node's default) or `json` (plain JSON lines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Compact,
    Json,
}

impl Format {
    /// The file name's ending for a segment of this form.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Compact => "jsonl.zst",
            Format::Json => "jsonl",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "compact" | "zstd" => Ok(Format::Compact),
            "json" | "jsonl" => Ok(Format::Json),
            other => Err(format!(
                "trace format {other:?}: expected \"compact\" or \"json\""
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Compact => "compact",
            Format::Json => "json",
        })
    }
}

/// The first bytes of every compact segment: the skippable frame naming the
/// container.
pub fn preamble() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + CONTAINER.len());
    bytes.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    bytes.extend_from_slice(&(CONTAINER.len() as u32).to_le_bytes());
    bytes.extend_from_slice(CONTAINER.as_bytes());
    bytes
}

/// Compresses one segment's lines, batch by batch.
pub struct Compressor {
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
    /// Whether the output buffer holds a batch already handed out (cleared
    /// at the next batch, keeping its capacity: a batch allocates nothing).
    handed_out: bool,
}

impl Compressor {
    pub fn new() -> io::Result<Compressor> {
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(&preamble());
        let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL)?;
        encoder.set_parameter(zstd::stream::raw::CParameter::HashLog(HASH_LOG))?;
        encoder.set_parameter(zstd::stream::raw::CParameter::WindowLog(WINDOW_LOG))?;
        Ok(Compressor {
            encoder,
            handed_out: false,
        })
    }

    /// Compresses `lines` and ends the block: the bytes returned (to be
    /// written to the file in one write) decode without what follows. The
    /// first batch's bytes start with the segment's preamble.
    pub fn batch(&mut self, lines: &[u8]) -> io::Result<&[u8]> {
        if self.handed_out {
            self.encoder.get_mut().clear();
        }
        self.encoder.write_all(lines)?;
        self.encoder.flush()?;
        self.handed_out = true;
        Ok(self.encoder.get_ref())
    }

    /// Ends the frame (a segment closed by rotation): the last bytes.
    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        if self.handed_out {
            self.encoder.get_mut().clear();
        }
        self.encoder.finish()
    }
}

/// What a file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Fewer than 8 bytes seen yet.
    Unknown,
    Json,
    Compact,
}

/// Decodes a trace file incrementally, whatever its form: bytes in as they
/// are read (a file still being written gives more later), text out.
pub struct Decoder {
    kind: Kind,
    /// Bytes held until the form is known.
    head: Vec<u8>,
    zstd: Option<zstd::stream::raw::Decoder<'static>>,
    /// Inside a zstd frame (its end not yet decoded).
    in_frame: bool,
    scratch: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            kind: Kind::Unknown,
            head: Vec::new(),
            zstd: None,
            in_frame: false,
            scratch: Vec::new(),
        }
    }

    /// Whether the file is compact (known once its first bytes are in).
    pub fn is_compact(&self) -> bool {
        self.kind == Kind::Compact
    }

    /// Whether the input so far ends inside a zstd frame: a compact segment
    /// whose writer is still writing it, or was killed.
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }

    /// Decodes `input`, appending the text to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if self.kind == Kind::Unknown {
            self.head.extend_from_slice(input);
            if self.head.len() < 8 {
                return Ok(());
            }
            let magic = u32::from_le_bytes(self.head[..4].try_into().expect("4 bytes"));
            let head = std::mem::take(&mut self.head);
            if magic == SKIPPABLE_MAGIC {
                let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
                if head.len() < 8 + len {
                    self.head = head;
                    return Ok(());
                }
                let name = String::from_utf8_lossy(&head[8..8 + len]).into_owned();
                if name != CONTAINER {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "a compact trace of container {name:?}: this version reads \
                             {CONTAINER} only"
                        ),
                    ));
                }
                self.start_zstd()?;
                return self.decompress(&head[8 + len..], out);
            } else if magic == ZSTD_MAGIC {
                self.start_zstd()?;
                return self.decompress(&head, out);
            } else {
                self.kind = Kind::Json;
                out.extend_from_slice(&head);
                return Ok(());
            }
        }
        match self.kind {
            Kind::Json => {
                out.extend_from_slice(input);
                Ok(())
            }
            Kind::Compact => self.decompress(input, out),
            Kind::Unknown => unreachable!("handled above"),
        }
    }

    /// The end of the input: a file shorter than 8 bytes is JSON (or empty).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.kind == Kind::Unknown {
            out.append(&mut self.head);
        }
    }

    fn start_zstd(&mut self) -> io::Result<()> {
        self.kind = Kind::Compact;
        self.zstd = Some(zstd::stream::raw::Decoder::new()?);
        self.scratch = vec![0; 128 * 1024];
        Ok(())
    }

    fn decompress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let decoder = self.zstd.as_mut().expect("compact");
        let mut input = InBuffer::around(input);
        loop {
            let mut output = OutBuffer::around(&mut self.scratch[..]);
            let hint = decoder.run(&mut input, &mut output).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt compact trace: {err}"),
                )
            })?;
            let written = output.pos();
            let full = written == self.scratch.len();
            out.extend_from_slice(&self.scratch[..written]);
            self.in_frame = hint != 0;
            if input.pos() == input.src.len() && !full {
                return Ok(());
            }
        }
    }
}

/// Decodes a whole file's bytes (of either form) to its text.
pub fn decode_all(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut decoder = Decoder::new();
    let mut out = Vec::with_capacity(bytes.len());
    decoder.feed(bytes, &mut out)?;
    decoder.finish(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_batch_decodes_without_what_follows() {
        let mut compressor = Compressor::new().unwrap();
        let first = compressor
            .batch(b"{\"kind\":\"persisted\",\"node\":1}\n")
            .unwrap()
            .to_vec();
        assert!(first.starts_with(&preamble()));
        // A reader that has only the first batch (the writer killed after it,
        // or still writing) gets its lines.
        let mut decoder = Decoder::new();
        let mut text = Vec::new();
        decoder.feed(&first, &mut text).unwrap();
        assert!(decoder.is_compact() && decoder.in_frame());
        assert_eq!(text, b"{\"kind\":\"persisted\",\"node\":1}\n");
        // Fed in pieces, byte by byte, as a tail of a growing file sees it.
        let second = compressor
            .batch(b"{\"kind\":\"persisted\",\"node\":1}\n")
            .unwrap()
            .to_vec();
        let last = compressor.finish().unwrap();
        for byte in second.iter().chain(&last) {
            decoder.feed(&[*byte], &mut text).unwrap();
        }
        assert!(!decoder.in_frame(), "the frame was ended");
        assert_eq!(text, b"{\"kind\":\"persisted\",\"node\":1}\n".repeat(2));
    }

    #[test]
    fn json_and_bare_zstd_are_read_and_other_containers_refused() {
        let json = b"{\"kind\":\"persisted\",\"node\":1}\n";
        assert_eq!(decode_all(json).unwrap(), json);
        assert_eq!(decode_all(b"{}\n").unwrap(), b"{}\n");
        let bare = zstd::encode_all(&json[..], 3).unwrap();
        assert_eq!(decode_all(&bare).unwrap(), json);
        let mut other = preamble();
        let at = other.len() - 1;
        other[at] = b'9';
        let err = decode_all(&other).unwrap_err().to_string();
        assert!(
            err.contains("raft-trace-zstd/9") && err.contains(CONTAINER),
            "{err}"
        );
        let mut corrupt = Compressor::new().unwrap().batch(json).unwrap().to_vec();
        let at = corrupt.len() - 3;
        corrupt[at] ^= 0xff;
        corrupt.truncate(at + 1);
        corrupt.extend_from_slice(&[0xff; 16]);
        assert!(decode_all(&corrupt).is_err() || decode_all(&corrupt).unwrap() != json);
    }
}
