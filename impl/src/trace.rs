//! Core-event traces (`--trace-dir`): the node's side of interop/.
//!
//! Every call into the core is recorded as one `raft-trace/5` line holding
//! the model's `Step` itself, a client's command by its digest
//! ([`TracedCommand`]; format and guarantees: the crate raft-trace, its
//! `format` and `writer`), so a run can be replayed through raft-model
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
use raft_trace::format::{Durable, Header, SCHEMA, Start, TracedStep, traced_with};
use raft_trace::{TraceWriter, WriterOptions};
use tracing::{error, info};

use crate::convert::Msg;
use crate::kv::{KvCommand, KvImage, KvOp};
use crate::metrics as m;
use crate::types::Core;

/// A step as the trace records it: the message stripped, the image left
/// out, a client's command by its digest.
pub struct Traced(TracedStep<TracedCommand>);

/// A client's command as the trace records it: the session and sequence
/// number, the kind of write and, for the node's own API, the key; then the
/// size and a digest of the command's encoding (as the log file and the
/// peers hold it) instead of its data.
///
/// Why not the command whole: its value was most of a put's trace (half of
/// the JSON and of the compressor's input with the 256-byte values of
/// `raft-lab compare`), grew with the values clients write, and copied
/// their data into files kept for weeks. The protocol never looks into a
/// command: the validator replays whatever the trace holds as the command,
/// and messages are traced without theirs (entries by their terms), so a
/// digest checks as much as the data did and keeps commands apart in the
/// viewer and the ITF export. The digest is `rapidhash` v3, whose output
/// that crate keeps stable across versions and platforms.
///
/// Holds the command itself (a reference count): the summary is computed
/// when the event is written, not when it is captured.
#[derive(Clone)]
pub struct TracedCommand(KvCommand);

impl serde::Serialize for TracedCommand {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let command = &self.0;
        let (op, key) = match command.op() {
            KvOp::Put { key, .. } => ("put", Some(key)),
            KvOp::Delete { key } => ("delete", Some(key)),
            KvOp::Cas { key, .. } => ("cas", Some(key)),
            KvOp::SetMemberAddress { .. } => ("set_member_address", None),
            KvOp::Txn(_) => ("txn", None),
        };
        let encoded = command.encoded();
        let digest = rapidhash::v3::rapidhash_v3(encoded);
        let mut fields = serializer.serialize_struct("TracedCommand", 6)?;
        fields.serialize_field("client_id", &command.client_id())?;
        fields.serialize_field("seq", &command.seq())?;
        fields.serialize_field("op", op)?;
        match key {
            Some(key) => fields.serialize_field("key", key)?,
            None => fields.skip_field("key")?,
        }
        fields.serialize_field("bytes", &encoded.len())?;
        fields.serialize_field("digest", &Digest(digest))?;
        fields.end()
    }
}

/// A 64-bit digest as 16 hex digits: a JSON number that large would lose
/// precision in most JSON readers.
struct Digest(u64);

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:016x}", self.0))
    }
}

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
            let restart: TracedStep<TracedCommand> = Step::Restart;
            writer.event(restart, Some(Durable::of(core)), core, &effects);
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
        Some(Traced(traced_with(step, |command| {
            TracedCommand(command.clone())
        })))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn json(command: KvCommand) -> serde_json::Value {
        serde_json::to_value(TracedCommand(command)).unwrap()
    }

    #[test]
    fn a_command_is_recorded_by_its_digest_not_its_value() {
        let value = "v".repeat(256);
        let put = KvCommand::new(
            7,
            42,
            KvOp::Put {
                key: "k1".into(),
                value: value.clone(),
            },
        );
        let recorded = json(put.clone());
        assert!(!recorded.to_string().contains(&value), "{recorded}");
        assert_eq!(recorded["client_id"], 7);
        assert_eq!(recorded["seq"], 42);
        assert_eq!(recorded["op"], "put");
        assert_eq!(recorded["key"], "k1");
        assert_eq!(recorded["bytes"], put.encoded().len());
        // The digest is rapidhash v3 of the command's encoding, which that
        // crate keeps stable: pinned, so a change to either shows here.
        assert_eq!(
            recorded["digest"],
            format!("{:016x}", rapidhash::v3::rapidhash_v3(put.encoded()))
        );
        assert_eq!(
            rapidhash::v3::rapidhash_v3(b"raft-trace/5"),
            0x25b4_1276_32e1_17c1,
            "rapidhash v3's output changed"
        );
        // Another value, another digest; the same command, the same one.
        let other = KvCommand::new(
            7,
            42,
            KvOp::Put {
                key: "k1".into(),
                value: "w".repeat(256),
            },
        );
        assert_ne!(json(other)["digest"], recorded["digest"]);
        assert_eq!(json(put)["digest"], recorded["digest"]);
        // An etcd transaction has no key of the node's own API.
        let txn = json(KvCommand::new(0, 0, KvOp::Txn(Default::default())));
        assert_eq!(txn["op"], "txn");
        assert!(txn.get("key").is_none(), "{txn}");
    }
}
