//! # raft-interop: replay of Raft traces through the model, export to TLA+ tools
//!
//! The format itself, `raft-trace/3`, and its writer live in the crate
//! raft-trace (re-exported here as [`format`], [`writer`] and [`vars`]), which
//! the node and the checker write through; this crate reads it:
//!
//! - [`validate`]: replays every node's events through raft-model, merged in
//!   a causal order, and names the first event the model does not allow. The
//!   node's traces and the checker's counterexamples are read by the same
//!   path ([`read_streams`]);
//! - [`itf`]: a validated run as ITF JSON (Apalache / TLA+ trace tooling);
//! - [`tla`]: a validated run as input for spec/TraceRaft.tla under TLC.
//!
//! The command-line tool `raft-interop` (src/main.rs) drives them.

pub mod itf;
pub mod tla;
pub mod validate;
pub mod view;

use std::path::PathBuf;

pub use raft_trace::{Line, SCHEMA, TraceWriter};
pub use raft_trace::{format, vars, writer};
pub use validate::{Failure, NetworkStep, RunStep, Stream, Validated, validate, validate_with};

/// Reads the traces at `paths`: trace files (a node's, or a checker's
/// counterexample holding every server's lines) and directories of
/// `node-*.jsonl` files (one cluster). One stream per node.
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
                streams.extend(Stream::read(&file)?);
            }
        } else {
            streams.extend(Stream::read(path)?);
        }
    }
    Ok(streams)
}
