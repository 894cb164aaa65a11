//! A node's trace as a sequence of files (segments), and reading it back.
//!
//! A node writes `<trace-dir>/node-<id>.<seq>.jsonl.zst` (compact) or
//! `node-<id>.<seq>.jsonl` (JSON), `<seq>` a six-digit number counting from
//! one (`000001`). Every process start opens the next segment (a compact
//! segment of a killed process ends inside its frame, so nothing is ever
//! appended to it), and so does a segment reaching the rotation size;
//! retention deletes the oldest beyond the number kept. The lines of a node
//! are its segments' lines in `<seq>` order. A file of the former
//! single-file naming, `node-<id>.jsonl`, is segment 0.
//!
//! [`Cursor`] reads one node's segments in order, line by line, holding one
//! chunk of the file at a time: a trace of any length is read in bounded
//! memory, and a file still being written is read as it grows (`follow`).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use raft_model::NodeId;

use crate::compact::{Decoder, Format};

/// One segment file of a node's trace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub node: NodeId,
    pub seq: u64,
    pub path: PathBuf,
}

/// The file name of segment `seq` of `node`'s trace.
pub fn file_name(node: NodeId, seq: u64, format: Format) -> String {
    format!("node-{node}.{seq:06}.{}", format.extension())
}

/// The node and sequence number a trace file's name gives, if it is one:
/// `node-<id>.<seq>.jsonl[.zst]`, or `node-<id>.jsonl[.zst]` (segment 0).
pub fn parse_name(name: &str) -> Option<(NodeId, u64)> {
    let rest = name.strip_prefix("node-")?;
    let rest = rest
        .strip_suffix(".jsonl.zst")
        .or_else(|| rest.strip_suffix(".jsonl"))?;
    let (node, seq) = match rest.split_once('.') {
        Some((node, seq)) => (node, seq.parse().ok()?),
        None => (rest, 0),
    };
    if node.is_empty() || !node.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((node.parse().ok()?, seq))
}

/// Every trace segment in `dir`, ordered by node then sequence number.
pub fn list(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some((node, seq)) = name.to_str().and_then(parse_name) {
            segments.push(Segment {
                node,
                seq,
                path: entry.path(),
            });
        }
    }
    segments.sort();
    Ok(segments)
}

/// The segments of one node in `dir`, in order.
pub fn of_node(dir: &Path, node: NodeId) -> io::Result<Vec<Segment>> {
    Ok(list(dir)?.into_iter().filter(|s| s.node == node).collect())
}

/// A line read from a node's segments.
pub struct LineAt<'a> {
    /// The segment's path.
    pub source: &'a str,
    /// Its line number within the segment, from 1.
    pub line: usize,
    pub text: &'a str,
}

/// What reading the next line found.
pub enum Next<'a> {
    Line(LineAt<'a>),
    /// No whole line yet: the file may grow, or a next segment appear
    /// (only when following).
    Pending,
    /// The last segment is read to its end (not when following).
    End,
}

/// Why a node's segments cannot be read on.
#[derive(Debug)]
pub struct ReadError {
    pub source: String,
    pub line: usize,
    pub problem: String,
}

/// Reads one node's segments in order, line by line.
pub struct Cursor {
    dir: PathBuf,
    node: NodeId,
    follow: bool,
    /// The segment being read: its sequence number, path and file.
    seq: u64,
    source: String,
    file: Option<File>,
    decoder: Decoder,
    /// Decoded text not yet returned, from `start`.
    text: Vec<u8>,
    start: usize,
    /// Lines returned from the current segment.
    line: usize,
    chunk: Vec<u8>,
    /// Segments whose end was a partial line (a writer killed mid-write).
    pub torn_tails: usize,
    /// Compressed (or JSON) bytes read so far, over every segment.
    pub bytes_read: u64,
    pub segments_read: usize,
}

impl Cursor {
    /// A cursor at the first segment of `node` in `dir` (`first`); with
    /// `follow`, it waits for the files to grow instead of ending.
    pub fn new(dir: &Path, node: NodeId, first: &Segment, follow: bool) -> io::Result<Cursor> {
        let mut cursor = Cursor {
            dir: dir.to_owned(),
            node,
            follow,
            seq: first.seq,
            source: String::new(),
            file: None,
            decoder: Decoder::new(),
            text: Vec::new(),
            start: 0,
            line: 0,
            chunk: vec![0; 256 * 1024],
            torn_tails: 0,
            bytes_read: 0,
            segments_read: 0,
        };
        cursor.open(first)?;
        Ok(cursor)
    }

    /// The segment being read.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn open(&mut self, segment: &Segment) -> io::Result<()> {
        self.file = Some(File::open(&segment.path)?);
        self.seq = segment.seq;
        self.source = segment.path.display().to_string();
        self.decoder = Decoder::new();
        self.text.clear();
        self.start = 0;
        self.line = 0;
        self.segments_read += 1;
        Ok(())
    }

    fn error(&self, problem: String) -> ReadError {
        ReadError {
            source: self.source.clone(),
            line: self.line + 1,
            problem,
        }
    }

    /// Reads what the file has now; true if it gave any bytes.
    fn fill(&mut self) -> Result<bool, ReadError> {
        let file = self.file.as_mut().expect("a segment is open");
        let n = file.read(&mut self.chunk).map_err(|err| ReadError {
            source: self.source.clone(),
            line: 0,
            problem: format!("cannot read: {err}"),
        })?;
        if n == 0 {
            return Ok(false);
        }
        self.bytes_read += n as u64;
        if self.start > 0 && self.start * 2 >= self.text.len() {
            self.text.drain(..self.start);
            self.start = 0;
        }
        let chunk = std::mem::take(&mut self.chunk);
        let fed = self.decoder.feed(&chunk[..n], &mut self.text);
        self.chunk = chunk;
        fed.map_err(|err| self.error(err.to_string()))?;
        Ok(true)
    }

    /// The next segment of this node after the current one, if any has
    /// appeared; a gap in the numbers is an error (segments removed before
    /// they were read).
    fn next_segment(&self) -> Result<Option<Segment>, ReadError> {
        let segments = match of_node(&self.dir, self.node) {
            Ok(segments) => segments,
            // The directory was removed (the open file stays readable):
            // nothing more will come.
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(ReadError {
                    source: self.dir.display().to_string(),
                    line: 0,
                    problem: format!("cannot list: {err}"),
                });
            }
        };
        let Some(next) = segments.into_iter().find(|s| s.seq > self.seq) else {
            return Ok(None);
        };
        if next.seq != self.seq + 1 && self.seq != 0 {
            return Err(ReadError {
                source: next.path.display().to_string(),
                line: 0,
                problem: format!(
                    "node {}'s segments {} to {} are missing (removed by the trace's retention \
                     before they were read? raise trace_keep_files, or follow the trace while \
                     it is written)",
                    self.node,
                    self.seq + 1,
                    next.seq - 1
                ),
            });
        }
        Ok(Some(next))
    }

    /// The current segment is read to its end: its text must end with a
    /// whole line (a partial one is a writer killed mid-write: counted,
    /// dropped: those events were never persisted nor sent).
    fn close_segment(&mut self) {
        let mut tail = Vec::new();
        self.decoder.finish(&mut tail);
        self.text.extend_from_slice(&tail);
        if self.text[self.start..]
            .iter()
            .any(|b| !b.is_ascii_whitespace())
        {
            self.torn_tails += 1;
        }
        self.text.clear();
        self.start = 0;
        self.file = None;
    }

    /// The next line.
    pub fn next_line(&mut self) -> Result<Next<'_>, ReadError> {
        loop {
            if self.file.is_some() {
                if let Some(end) = memchr(b'\n', &self.text[self.start..]) {
                    let from = self.start;
                    self.start += end + 1;
                    self.line += 1;
                    let raw = &self.text[from..from + end];
                    let text = std::str::from_utf8(raw).map_err(|_| ReadError {
                        source: self.source.clone(),
                        line: self.line,
                        problem: "not UTF-8 text".to_string(),
                    })?;
                    return Ok(Next::Line(LineAt {
                        source: &self.source,
                        line: self.line,
                        text,
                    }));
                }
                if self.fill()? {
                    continue;
                }
                // At the end of what the file holds now. A later segment
                // means this one is finished: its writer wrote all of it
                // before the next one was created, so read it to its end
                // once more, then go on.
                match self.next_segment()? {
                    Some(next) => {
                        while self.fill()? {}
                        if memchr(b'\n', &self.text[self.start..]).is_some() {
                            continue;
                        }
                        self.close_segment();
                        self.open(&next).map_err(|err| ReadError {
                            source: next.path.display().to_string(),
                            line: 0,
                            problem: format!("cannot read: {err}"),
                        })?;
                    }
                    None if self.follow => return Ok(Next::Pending),
                    None => {
                        self.close_segment();
                        return Ok(Next::End);
                    }
                }
            } else {
                return Ok(Next::End);
            }
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr(needle, haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        assert_eq!(
            parse_name(&file_name(3, 12, Format::Compact)),
            Some((3, 12))
        );
        assert_eq!(parse_name(&file_name(3, 12, Format::Json)), Some((3, 12)));
        assert_eq!(file_name(3, 12, Format::Compact), "node-3.000012.jsonl.zst");
        assert_eq!(parse_name("node-7.jsonl"), Some((7, 0)));
        assert_eq!(parse_name("node-7.jsonl.zst"), Some((7, 0)));
        assert_eq!(parse_name("node-x.jsonl"), None);
        assert_eq!(parse_name("node-1.log"), None);
        assert_eq!(parse_name("node-1.2.jsonl.tmp"), None);
    }
}
