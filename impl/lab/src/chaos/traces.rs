//! The run's own evidence that the nodes ran the verified core: every
//! node's trace (`traces/node-<id>.<seq>.jsonl.zst`, compact segments read in
//! order) replayed through the model by
//! `raft-interop`'s validator once the nodes have stopped. A chaos run whose
//! traces the model does not allow fails, whatever the clients saw.

use std::path::Path;

use serde::Serialize;

/// What validating a run's traces found.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum TraceCheck {
    /// Every event is one the model allows.
    Valid {
        nodes: usize,
        /// Events replayed and kept (those a crash undid are `lost`).
        events: usize,
        lost: usize,
        restarts: usize,
        messages: usize,
    },
    /// The first event the model does not allow (the validator's report),
    /// or why the traces could not be read.
    Invalid { failure: String },
}

impl TraceCheck {
    /// Validates the traces in `dir` (each node's segments, read lazily):
    /// the run's steps are not kept, only what replaying them needs, so
    /// memory is bounded by the cluster's state and the network's window,
    /// not by the run's length (raft-interop's validate module).
    pub fn of(dir: &Path) -> TraceCheck {
        let streams = match raft_interop::read_streams(&[dir.to_owned()]) {
            Ok(streams) => streams,
            Err(failure) => {
                return TraceCheck::Invalid {
                    failure: failure.to_string(),
                };
            }
        };
        match raft_interop::validate_with(streams, false) {
            Ok(validated) => TraceCheck::Valid {
                nodes: validated.events.len(),
                events: validated.events.values().sum(),
                lost: validated.lost,
                restarts: validated.restarts,
                messages: validated.messages,
            },
            Err(failure) => TraceCheck::Invalid {
                failure: failure.to_string(),
            },
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, TraceCheck::Valid { .. })
    }

    /// One line for the run's summary.
    pub fn summary(&self) -> String {
        match self {
            TraceCheck::Valid {
                nodes,
                events,
                lost,
                restarts,
                messages,
            } => format!(
                "traces: {events} core events of {nodes} nodes validated through the model \
                 ({restarts} restarts, {lost} events undone by crashes, {messages} messages)"
            ),
            TraceCheck::Invalid { failure } => {
                let first = failure.lines().next().unwrap_or_default();
                format!("traces: NOT ALLOWED BY THE MODEL: {first}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Traces that cannot be read, or that the model refuses, are a
    /// failure named in the summary, never a pass.
    #[test]
    fn unreadable_or_refused_traces_fail() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TraceCheck::of(&dir.path().join("no-such-dir"));
        assert!(!missing.is_valid(), "{missing:?}");
        std::fs::write(dir.path().join("node-1.jsonl"), "{not json\n").unwrap();
        let garbage = TraceCheck::of(dir.path());
        assert!(!garbage.is_valid(), "{garbage:?}");
        assert!(
            garbage
                .summary()
                .starts_with("traces: NOT ALLOWED BY THE MODEL: ")
        );
    }
}
