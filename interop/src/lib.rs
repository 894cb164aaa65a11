//! # raft-interop: traces of the Raft core, replay through the model, export to TLA+ tools
//!
//! - [`format`]: the trace format `raft-trace/1`, one JSON line per core
//!   event (the node writes it with `--trace-dir`);
//! - [`writer`]: what the node calls to record its events cheaply;
//! - [`validate`]: replays every node's events through raft-model, merged in
//!   a causal order, and names the first event the model does not allow;
//! - [`counterexample`]: the checker's JSON traces as node traces, so one
//!   validator reads both;
//! - [`itf`]: a validated run as ITF JSON (Apalache / TLA+ trace tooling);
//! - [`tla`]: a validated run as input for spec/TraceRaft.tla under TLC.
//!
//! The command-line tool `raft-interop` (src/main.rs) drives them.

pub mod counterexample;
pub mod format;
pub mod itf;
pub mod tla;
pub mod validate;
pub mod writer;

use std::path::PathBuf;

pub use format::{Action, Input, Line, SCHEMA};
pub use validate::{Failure, Stream, Validated, validate, validate_with};
pub use writer::TraceWriter;

/// Reads the traces at `paths`: trace files, directories of `node-*.jsonl`
/// files (one cluster), or a checker trace (`raft-checker-trace/1` JSON).
pub fn read_streams(paths: &[PathBuf]) -> Result<Vec<Stream>, Failure> {
    let mut streams = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|err| Failure::io(path, &err))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("node-") && n.ends_with(".jsonl"))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Failure::io(
                    path,
                    &std::io::Error::other("no node-*.jsonl trace files in this directory"),
                ));
            }
            for file in files {
                streams.push(Stream::read(&file)?);
            }
            continue;
        }
        let text = std::fs::read_to_string(path).map_err(|err| Failure::io(path, &err))?;
        if counterexample::is_checker_trace(&text) {
            streams.extend(counterexample::streams(&path.display().to_string(), &text)?);
        } else {
            streams.push(Stream::parse(&path.display().to_string(), &text)?);
        }
    }
    Ok(streams)
}
