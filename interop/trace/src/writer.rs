//! Writing a trace: what a node calls around each call into its core.
//!
//! Lines are formatted into a memory buffer and handed to the kernel by
//! [`TraceWriter::flush`], which the node calls once per batch, *before* it
//! persists the batch. So a `kill -9` can lose only events whose effects were
//! never made durable nor sent — exactly the events a crash undoes — and a
//! line is never torn, since each flush is one `write` of whole lines. There
//! is no fsync: a trace survives a process crash, not a power cut.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use raft_model::{Effects, NodeId, Server};
use serde::Serialize;

use crate::format::{Durable, Event, Header, Line, TracedStep};

/// Appends one node's trace to `<dir>/node-<id>.jsonl`.
pub struct TraceWriter {
    node: NodeId,
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
}

impl TraceWriter {
    /// The file a node's trace goes to.
    pub fn path_for(dir: &Path, node: NodeId) -> PathBuf {
        dir.join(format!("node-{node}.jsonl"))
    }

    /// Opens (creating the directory and file if needed) for appending.
    pub fn open(dir: &Path, node: NodeId) -> io::Result<TraceWriter> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path_for(dir, node);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(TraceWriter {
            node,
            path,
            file,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first line of a process's part of the trace.
    pub fn header(&mut self, header: Header) {
        self.line(&Line::<()>::Header(header));
    }

    /// Records that the core took `step` (see [`crate::traced`]), leaving
    /// `server` in its new state with `effects`; for a `Restart`, `recovered`
    /// is the durable state it came back with.
    pub fn event<C: Clone + Serialize, S>(
        &mut self,
        step: TracedStep<C>,
        recovered: Option<Durable>,
        server: &Server<C, S>,
        effects: &Effects<C, S>,
    ) {
        debug_assert_eq!(server.id(), self.node, "an event of another node");
        let event = Event::of(step, recovered, server, effects);
        self.line(&Line::Event(Box::new(event)));
    }

    /// Everything recorded before this line is durable on the node's disk.
    pub fn persisted(&mut self) {
        self.line(&Line::<()>::Persisted { node: self.node });
    }

    fn line<C: Clone + Serialize>(&mut self, line: &Line<C>) {
        // Serializing these types into memory cannot fail: every map key is
        // an integer and every value a plain serde type.
        if serde_json::to_writer(&mut self.buffer, line).is_ok() {
            self.buffer.push(b'\n');
        }
    }

    /// Hands the buffered lines to the kernel in one write.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buffer);
        self.buffer.clear();
        result
    }
}
