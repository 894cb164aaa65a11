//! Writing a trace: what a node calls around each call into its core.
//!
//! Lines are formatted into a memory buffer and handed to the kernel by
//! [`TraceWriter::flush`], which the node calls once per batch, *before* it
//! persists the batch. So a `kill -9` can lose only events whose effects were
//! never made durable nor sent — exactly the events a crash undoes — and a
//! line is never torn, since each flush is one `write` of whole lines. There
//! is no fsync: a trace survives a process crash, not a power cut.
//!
//! The lines go to the node's segments (see [`crate::segments`]): a new one
//! at every process start and whenever the open one reaches
//! [`WriterOptions::rotate_bytes`], the oldest deleted beyond
//! [`WriterOptions::keep_files`]; compressed ([`crate::compact`]) unless the
//! options ask for JSON.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use raft_model::{Effects, NodeId, Server};
use serde::Serialize;

use crate::compact::{Compressor, Format};
use crate::format::{Durable, Event, EventRecord, Header, Line, State, TracedStep};
use crate::segments;

/// How a node writes its trace: the form, when a segment is rotated and how
/// many are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    pub format: Format,
    /// A segment is closed and the next one opened once it holds at least
    /// this many bytes (on disk, compressed for `compact`), at the end of a
    /// batch; 0: never.
    pub rotate_bytes: u64,
    /// Segments of the node kept in the directory (the oldest are deleted
    /// when a new one opens); 0: all.
    pub keep_files: usize,
}

impl WriterOptions {
    /// The node's defaults: compact, 64 MiB segments, the newest 16 kept
    /// (at most about 1 GiB per node on disk, some tens of hours of a busy
    /// node's events at the measured rates: interop/README.md).
    pub const DEFAULT_ROTATE_BYTES: u64 = 64 * 1024 * 1024;
    pub const DEFAULT_KEEP_FILES: usize = 16;

    /// Plain JSON lines in one segment per process start, none deleted:
    /// for people and tests that edit the lines.
    pub fn json() -> WriterOptions {
        WriterOptions {
            format: Format::Json,
            rotate_bytes: 0,
            keep_files: 0,
        }
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            format: Format::Compact,
            rotate_bytes: Self::DEFAULT_ROTATE_BYTES,
            keep_files: Self::DEFAULT_KEEP_FILES,
        }
    }
}

/// Appends one node's trace to its segments `<dir>/node-<id>.<seq>.jsonl[.zst]`.
pub struct TraceWriter {
    node: NodeId,
    dir: PathBuf,
    options: WriterOptions,
    seq: u64,
    path: PathBuf,
    file: File,
    /// The compact form's compressor of the open segment.
    compressor: Option<Compressor>,
    /// Bytes written to the open segment.
    written: u64,
    /// Whether the directory held segments of this node when it opened.
    had_segments: bool,
    buffer: Vec<u8>,
    /// The node's state after the last event written to the open segment,
    /// when the segment records deltas (the compact form): the next event
    /// records only what changed since (see [`crate::format::StateDelta`]).
    /// `None` at the top of every segment and after a header, so that each
    /// segment, and each process's part, starts with a full state: a
    /// segment can be read without the ones before it.
    last_state: Option<State>,
    /// Bytes written to disk, lines and events recorded since the writer
    /// opened.
    pub bytes_written: u64,
    pub lines: u64,
    pub events: u64,
}

impl TraceWriter {
    /// Opens the node's next segment in `dir` as JSON lines, with no
    /// rotation (see [`TraceWriter::open_with`]).
    pub fn open(dir: &Path, node: NodeId) -> io::Result<TraceWriter> {
        Self::open_with(dir, node, WriterOptions::json())
    }

    /// Opens (creating the directory if needed) the node's next segment:
    /// the one after the highest already in `dir`.
    pub fn open_with(dir: &Path, node: NodeId, options: WriterOptions) -> io::Result<TraceWriter> {
        std::fs::create_dir_all(dir)?;
        let existing = segments::of_node(dir, node)?;
        let seq = existing.last().map_or(1, |s| s.seq + 1);
        let (path, file, compressor) = Self::create(dir, node, seq, options.format)?;
        let mut writer = TraceWriter {
            node,
            dir: dir.to_owned(),
            options,
            seq,
            path,
            file,
            compressor,
            written: 0,
            had_segments: !existing.is_empty(),
            buffer: Vec::with_capacity(64 * 1024),
            last_state: None,
            bytes_written: 0,
            lines: 0,
            events: 0,
        };
        writer.retain()?;
        Ok(writer)
    }

    fn create(
        dir: &Path,
        node: NodeId,
        seq: u64,
        format: Format,
    ) -> io::Result<(PathBuf, File, Option<Compressor>)> {
        let path = dir.join(segments::file_name(node, seq, format));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let compressor = match format {
            Format::Compact => Some(Compressor::new()?),
            Format::Json => None,
        };
        Ok((path, file, compressor))
    }

    /// Whether the node had traced into this directory before (a process
    /// that recovered, or one whose data directory was wiped).
    pub fn had_segments(&self) -> bool {
        self.had_segments
    }

    /// The segment being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first line of a process's part of the trace.
    pub fn header(&mut self, header: Header) {
        self.last_state = None;
        self.record(&Line::<()>::Header(header));
    }

    /// Records that the core took `step` (see [`crate::traced`]), leaving
    /// `server` in its new state with `effects`; for a `Restart`, `recovered`
    /// is the durable state it came back with.
    /// The step's command may differ in type from the server's: a node
    /// records a summary of each client command
    /// ([`crate::format::traced_with`]).
    pub fn event<T: Clone + Serialize, C: Clone, S>(
        &mut self,
        step: TracedStep<T>,
        recovered: Option<Durable>,
        server: &Server<C, S>,
        effects: &Effects<C, S>,
    ) {
        debug_assert_eq!(server.id(), self.node, "an event of another node");
        let event = Event::of(step, recovered, server, effects);
        // The compact form records what changed since the segment's previous
        // event: a client request, the common event, changes the log's
        // bounds alone, and its full state was most of its line.
        let delta = match (&self.last_state, self.options.format) {
            (Some(before), Format::Compact) => Some(event.state.delta_from(before)),
            _ => None,
        };
        self.record(&EventRecord::of(&event, delta.as_ref()));
        self.events += 1;
        if self.options.format == Format::Compact {
            self.last_state = Some(event.state);
        }
    }

    /// Everything recorded before this line is durable on the node's disk.
    pub fn persisted(&mut self) {
        self.record(&Line::<()>::Persisted { node: self.node });
    }

    fn record(&mut self, line: &impl Serialize) {
        // Serializing these types into memory cannot fail: every map key is
        // an integer and every value a plain serde type.
        if serde_json::to_writer(&mut self.buffer, line).is_ok() {
            self.buffer.push(b'\n');
            self.lines += 1;
        }
    }

    /// Hands the buffered lines to the kernel in one write (compressed, for
    /// the compact form: one zstd block ended, see [`crate::compact`]);
    /// then, if the segment reached the rotation size, opens the next one.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // Not `self.write`: the bytes borrow the compressor or the buffer.
        let result = match &mut self.compressor {
            Some(compressor) => compressor.batch(&self.buffer),
            None => Ok(self.buffer.as_slice()),
        }
        .and_then(|bytes| self.file.write_all(bytes).map(|()| bytes.len()));
        self.buffer.clear();
        self.count_written(result?);
        if self.options.rotate_bytes > 0 && self.written >= self.options.rotate_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.count_written(bytes.len());
        Ok(())
    }

    /// `n` more bytes are in the open segment.
    fn count_written(&mut self, n: usize) {
        self.written += n as u64;
        self.bytes_written += n as u64;
    }

    /// Closes the open segment (a compact one ends its frame) and opens the
    /// next; then applies retention.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(compressor) = self.compressor.take() {
            let last = compressor.finish()?;
            self.write(&last)?;
        }
        let (path, file, compressor) =
            Self::create(&self.dir, self.node, self.seq + 1, self.options.format)?;
        self.seq += 1;
        self.path = path;
        self.file = file;
        self.compressor = compressor;
        self.written = 0;
        self.last_state = None;
        self.retain()
    }

    /// Deletes the node's oldest segments beyond the number kept.
    fn retain(&mut self) -> io::Result<()> {
        if self.options.keep_files == 0 {
            return Ok(());
        }
        let segments = segments::of_node(&self.dir, self.node)?;
        let excess = segments.len().saturating_sub(self.options.keep_files);
        for old in &segments[..excess] {
            if old.seq < self.seq {
                std::fs::remove_file(&old.path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::{self, Cursor, Next};

    fn persisted_lines(cursor: &mut Cursor) -> Vec<String> {
        let mut lines = Vec::new();
        while let Next::Line(at) = cursor.next_line().unwrap() {
            lines.push(at.text.to_string());
        }
        lines
    }

    /// A node's lines, written through rotation, retention and a killed
    /// process, read back in order by one cursor.
    #[test]
    fn rotated_segments_read_back_in_order_and_retention_bounds_them() {
        let dir = tempfile::tempdir().unwrap();
        let options = WriterOptions {
            format: Format::Compact,
            rotate_bytes: 200,
            keep_files: 0,
        };
        let mut writer = TraceWriter::open_with(dir.path(), 4, options).unwrap();
        assert!(!writer.had_segments());
        for _ in 0..50 {
            writer.persisted();
            writer.flush().unwrap();
        }
        // A process killed without ending its segment's frame, then a new one.
        drop(writer);
        let mut writer = TraceWriter::open_with(dir.path(), 4, options).unwrap();
        assert!(writer.had_segments());
        for _ in 0..50 {
            writer.persisted();
            writer.flush().unwrap();
        }
        drop(writer);
        let written = segments::of_node(dir.path(), 4).unwrap();
        assert!(written.len() > 4, "rotated: {written:?}");
        let seqs: Vec<u64> = written.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, (1..=written.len() as u64).collect::<Vec<_>>());
        let mut cursor = Cursor::new(dir.path(), 4, &written[0], false).unwrap();
        let lines = persisted_lines(&mut cursor);
        assert_eq!(lines.len(), 100);
        assert!(
            lines
                .iter()
                .all(|l| l == r#"{"kind":"persisted","node":4}"#)
        );
        assert_eq!(cursor.torn_tails, 0);

        // Retention: with 3 kept, a new writer leaves the newest 3.
        let keep = WriterOptions {
            keep_files: 3,
            ..options
        };
        let mut writer = TraceWriter::open_with(dir.path(), 4, keep).unwrap();
        for _ in 0..20 {
            writer.persisted();
            writer.flush().unwrap();
        }
        let left = segments::of_node(dir.path(), 4).unwrap();
        assert_eq!(left.len(), 3, "{left:?}");
        assert_eq!(left.last().unwrap().path, writer.path());
    }

    /// A JSON segment whose last line is partial (a write cut short) reads
    /// as its whole lines, the partial one counted.
    #[test]
    fn a_partial_last_line_is_counted_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TraceWriter::open(dir.path(), 1).unwrap();
        writer.persisted();
        writer.flush().unwrap();
        let path = writer.path().to_owned();
        drop(writer);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"kind":"persis"#).unwrap();
        let first = &segments::of_node(dir.path(), 1).unwrap()[0];
        let mut cursor = Cursor::new(dir.path(), 1, first, false).unwrap();
        assert_eq!(persisted_lines(&mut cursor).len(), 1);
        assert_eq!(cursor.torn_tails, 1);
    }

    /// The compact form records the state whole at the top of each segment
    /// and after a header, deltas between; the JSON form always whole; a
    /// reader gives the same events either way.
    #[test]
    fn compact_segments_start_whole_and_record_deltas_between() {
        use crate::format::{EventWire, States};
        use raft_model::{Config, Step};

        let write = |format: Format, rotate_bytes: u64| {
            let dir = tempfile::tempdir().unwrap();
            let options = WriterOptions {
                format,
                rotate_bytes,
                keep_files: 0,
            };
            let mut writer = TraceWriter::open_with(dir.path(), 1, options).unwrap();
            let mut server: Server<u8, ()> = Server::new(1, Config::new([1, 2, 3]), ());
            for _ in 0..6 {
                let step: Step<u8, (), raft_model::Message<u8, ()>> = Step::Timeout;
                let effects = server.step(step).unwrap();
                writer.event::<u8, _, _>(Step::Timeout, None, &server, &effects);
                writer.flush().unwrap();
            }
            drop(writer);
            let written = segments::of_node(dir.path(), 1).unwrap();
            let mut cursor = Cursor::new(dir.path(), 1, &written[0], false).unwrap();
            (persisted_lines(&mut cursor), written.len(), dir)
        };
        let kinds = |lines: &[String]| -> Vec<&str> {
            lines
                .iter()
                .map(|l| {
                    if l.contains(r#""delta":"#) {
                        "delta"
                    } else {
                        "state"
                    }
                })
                .collect()
        };
        let events = |lines: &[String]| {
            let mut states = States::default();
            lines
                .iter()
                .map(|l| {
                    let wire: EventWire<u8> = serde_json::from_str(l).unwrap();
                    states.resolve(wire).unwrap()
                })
                .collect::<Vec<_>>()
        };

        let (compact, segments, _dir) = write(Format::Compact, 0);
        assert_eq!(segments, 1);
        assert_eq!(
            kinds(&compact),
            ["state", "delta", "delta", "delta", "delta", "delta"]
        );
        let (json, _, _dir) = write(Format::Json, 0);
        assert_eq!(kinds(&json), ["state"; 6]);
        assert_eq!(events(&compact), events(&json));
        assert!(
            compact.iter().map(String::len).sum::<usize>()
                < json.iter().map(String::len).sum::<usize>()
        );

        // Rotated after every batch: each segment starts whole.
        let (rotated, segments, _dir) = write(Format::Compact, 1);
        assert_eq!(segments, 7, "six full segments and the open one");
        assert_eq!(kinds(&rotated), ["state"; 6]);
        assert_eq!(events(&rotated), events(&json));
    }
}
