//! Core-event traces (`--trace-dir`): the node's side of interop/.
//!
//! Every call into the core is recorded as one `raft-trace/4` line holding
//! the model's `Step` itself (format and guarantees: the crate raft-trace,
//! its `format` and `writer`), so a run can be replayed through raft-model
//! (`raft-interop validate DIR`) and
//! checked against spec/Raft.tla with TLC. Calls the core ignores by
//! definition are not recorded: an election timeout of a leader, a heartbeat
//! tick of a non-leader, a message the core does not accept.
//!
//! Recording costs one serialization per event and one compressed `write`
//! per batch (no fsync); when the trace cannot be written the node logs why
//! and goes on without it — a trace is evidence, not a durability promise.
//!
//! The lines go to segments `<trace_dir>/node-<id>.<seq>.jsonl.zst`: zstd
//! over the JSON lines by default (`trace_format = "json"` for plain lines),
//! a new segment at every process start and once one holds
//! `trace_rotate_mb` MiB (default 64), the newest `trace_keep_files` kept
//! (default 16). `raft-interop validate DIR` reads them in order, whichever
//! their form; `raft-interop validate --follow DIR` checks them as they are
//! written, so a trace whose old segments retention deletes is still checked
//! whole.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use raft_model::{Effects, Step};
use raft_trace::format::{Durable, Header, SCHEMA, Start, TracedStep, traced};
use raft_trace::{TraceWriter, WriterOptions};
use tracing::{error, info};

use crate::convert::Msg;
use crate::kv::{KvCommand, KvImage};
use crate::metrics as m;
use crate::types::Core;

/// A step as the trace records it: the message stripped, the image left out.
pub struct Traced(TracedStep<KvCommand>);

/// Time spent recording trace lines (capturing the step and state, and
/// formatting them) and flushing them (compressing and writing each batch),
/// events recorded, and batches flushed, by every node of this process:
/// `raft-lab bench --trace` reports the cost per event from these.
static RECORD_NANOS: AtomicU64 = AtomicU64::new(0);
static FLUSH_NANOS: AtomicU64 = AtomicU64::new(0);
static TRACE_EVENTS: AtomicU64 = AtomicU64::new(0);
static TRACE_FLUSHES: AtomicU64 = AtomicU64::new(0);

/// What tracing cost the event loops of this process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    pub events: u64,
    pub flushes: u64,
    /// Seconds spent capturing and formatting events.
    pub record_seconds: f64,
    /// Seconds spent compressing and writing batches.
    pub flush_seconds: f64,
}

/// What tracing has cost in this process so far.
pub fn cost() -> Cost {
    Cost {
        events: TRACE_EVENTS.load(Ordering::Relaxed),
        flushes: TRACE_FLUSHES.load(Ordering::Relaxed),
        record_seconds: RECORD_NANOS.load(Ordering::Relaxed) as f64 / 1e9,
        flush_seconds: FLUSH_NANOS.load(Ordering::Relaxed) as f64 / 1e9,
    }
}

fn account(started: Instant, nanos: &AtomicU64, count: &AtomicU64) {
    nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    count.fetch_add(1, Ordering::Relaxed);
}

/// The node's trace, if tracing is on.
#[derive(Default)]
pub struct Tracer {
    writer: Option<TraceWriter>,
    /// The writer's events and bytes already added to the node's metrics.
    counted: (u64, u64),
    /// The two counters, looked up once (the recorder is installed before
    /// the node opens its trace: cli::run_node).
    counters: Option<[metrics::Counter; 2]>,
}

impl Tracer {
    /// Opens the node's next trace segment in `dir` (`node-<id>.<seq>.jsonl.zst`
    /// by default; see raft_trace::segments) and writes the process-start
    /// lines: a header, and for a node that has run before, its recovery as
    /// spec `Restart`. The header names `initial_members`, the configuration
    /// the node's data directory was initialised with (none for a node that
    /// joined): the validator starts the node's model from it, and every
    /// later header names the same, whatever changes the log has made since.
    pub fn open(
        dir: &Path,
        options: WriterOptions,
        cluster_id: &str,
        initial_members: &[raft_model::NodeId],
        core: &Core,
    ) -> std::io::Result<Tracer> {
        let mut writer = TraceWriter::open_with(dir, core.id(), options)?;
        let had_lines = writer.had_segments();
        let pristine = core.current_term() == 0
            && core.voted_for().is_none()
            && core.log().last_index() == 0
            && core.log().snapshot_index == 0;
        let start = if had_lines || !pristine {
            Start::Restart
        } else {
            Start::Init
        };
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        writer.header(Header {
            schema: SCHEMA.to_string(),
            node: core.id(),
            cluster: cluster_id.to_string(),
            members: initial_members.to_vec(),
            max_append_entries: core.max_append_entries(),
            check_quorum: core.check_quorum_enabled(),
            pre_vote: core.pre_vote_enabled(),
            parallel_write: core.parallel_write_enabled(),
            max_inflight: core.max_inflight(),
            start,
            unix_ms,
        });
        if start == Start::Restart {
            // Server::recover is Server::restart applied to the durable state.
            let effects: Effects<KvCommand, KvImage> = Effects::default();
            writer.event(Step::Restart, Some(Durable::of(core)), core, &effects);
        }
        writer.flush()?;
        info!(path = %writer.path().display(), ?start, "recording core events");
        let mut tracer = Tracer {
            writer: Some(writer),
            counted: (0, 0),
            counters: Some([
                metrics::counter!(m::TRACE_EVENTS),
                metrics::counter!(m::TRACE_BYTES),
            ]),
        };
        tracer.count();
        Ok(tracer)
    }

    /// What to record of `step`, taken before the core consumes it; `None`
    /// when tracing is off (nothing is copied then).
    pub fn capture(&self, step: &Step<KvCommand, KvImage, Msg>) -> Option<Traced> {
        self.writer.as_ref()?;
        Some(Traced(traced(step)))
    }

    /// Records a step the core took, which returned `effects`.
    pub fn record(
        &mut self,
        traced: Option<Traced>,
        core: &Core,
        effects: &Effects<KvCommand, KvImage>,
    ) {
        if let (Some(writer), Some(traced)) = (&mut self.writer, traced) {
            let started = Instant::now();
            writer.event(traced.0, None, core, effects);
            account(started, &RECORD_NANOS, &TRACE_EVENTS);
        }
    }

    /// Hands the batch's lines to the kernel: called before the batch is persisted.
    pub fn flush(&mut self) {
        let started = Instant::now();
        let result = self.writer.as_mut().map(TraceWriter::flush);
        if result.is_some() {
            account(started, &FLUSH_NANOS, &TRACE_FLUSHES);
            self.count();
        }
        if let Some(Err(err)) = result
            && let Some(writer) = &self.writer
        {
            error!(path = %writer.path().display(), %err, "cannot write the trace; tracing stops");
            self.writer = None;
        }
    }

    /// Adds what the writer handed to the kernel since the last call to the
    /// node's metrics (once per batch, not per event).
    fn count(&mut self) {
        if let (Some(writer), Some([events_total, bytes_total])) = (&self.writer, &self.counters) {
            let (events, bytes) = (writer.events, writer.bytes_written);
            events_total.increment(events - self.counted.0);
            bytes_total.increment(bytes - self.counted.1);
            self.counted = (events, bytes);
        }
    }

    /// The batch is durable.
    pub fn persisted(&mut self) {
        if let Some(writer) = &mut self.writer {
            writer.persisted();
        }
    }
}
