//! # raft-trace: the trace format of the Raft core and its writer
//!
//! What the node records (`raft-node run --trace-dir`), what the checker
//! writes for its counterexamples, and what `raft-interop validate` replays
//! through raft-model: one format, `raft-trace/5`, apart from the validator,
//! so that the node depends on this crate only (raft-model, serde and
//! serde_json), not on the validator or a command-line library.
//!
//! - [`format`]: the lines and their serde types;
//! - [`writer`]: what the node calls to record its events cheaply;
//! - [`vars`]: the spec's per-server variables, named once, and how to read
//!   each from a server;
//! - [`compact`]: the compact form (the container `raft-trace-zstd/1`: zstd
//!   over the lines, flushed per batch) and the reader of either form;
//! - [`segments`]: a node's trace as numbered files, rotation's and
//!   retention's unit, and the cursor that reads them in order.
//!
//! ## The format
//!
//! One JSON object per line. A node appends to its own segments
//! (`<trace-dir>/node-<id>.<seq>.jsonl.zst`, zstd over the lines:
//! [`compact`]; [`segments`]); the checker writes one file per
//! counterexample holding every server's lines. One line of each kind:
//!
//! ```text
//! {"kind":"checker","bound":{"servers":3,"max_term":3,...},"bug":"vote-twice","property":"ElectionSafety","expectation":"always"}
//! {"kind":"header","schema":"raft-trace/5","node":1,"cluster":"c1","members":[1,2,3],"max_append_entries":256,"start":"init","unix_ms":1795000000000}
//! {"kind":"event","node":1,"step":{"HandleAppendEntriesRequest":{"from":2,"to":1,"term":3,"body":{"AppendEntriesRequest":{"prev_log_index":7,"prev_log_term":3,"entries":[{"term":3,"payload":{"Command":null}}],"leader_commit":7,"read_seq":0}}}},
//!  "state":{"current_term":3,"voted_for":2,"role":"Follower","commit_index":7,"leader_id":2,"log":{"snapshot_index":0,"snapshot_term":0,"last_index":8,"last_term":3},"snapshot":{"last_index":0,"last_term":0,"config":{"members":[1,2,3]}},"votes_granted":[],"next_index":[],"match_index":[],"read_seq":0,"read_acks":[],"pending_reads":0},
//!  "persist":{"hard_state":false,"log_from":8,"snapshot":false},"written":{"from":8,"terms":[3]},"sent":[{"to":2,"kind":"AppendEntriesResponse"}]}
//! {"kind":"persisted","node":1}
//! {"kind":"drop","message":{"from":1,"to":3,"term":2,"body":{"RequestVoteRequest":{"last_log_index":0,"last_log_term":0}}}}
//! ```
//!
//! (The event is one line; it is broken here to be read.) An event's `step`
//! is raft-model's [`raft_model::Step`] in its serde form: `"Timeout"`,
//! `"SendAppendEntries"`, `{"ClientRequest":<command>}`, `{"ReadIndex":7}`,
//! `{"Handle…":<message>}` for the seven handlers (`HandleTimeoutNow`'s
//! message a `{"TimeoutNow":{}}` body), `{"CompactLog":{"index":4,
//! "data":null}}`, `"Restart"`, `"CheckQuorum"`, `{"TransferLeadership":2}`,
//! `"AbortTransfer"`; a `Restart` event also carries
//! `"recovered":{"current_term":..,"voted_for":..,"snapshot":..,
//! "entry_terms":[..]}`, the durable state read back from disk. Adding an
//! action to the model adds it to the format.
//!
//! `state` is the server's spec variables after the step, the log summarized
//! by its bounds; `written` the terms of the entries the step wrote (index
//! and term identify an entry: Log Matching); `persist` what the core asked
//! to make durable; `sent` the messages it produced, by addressee and kind
//! (their content is what replaying the step produces). A `persisted` line
//! says everything before it is durable; a `drop` line that the network lost
//! a message; a `checker` line gives a checker trace's context.
//!
//! In a compact segment ([`compact`]), an event after the segment's first
//! (and after a header) records `delta` instead of `state`: the fields that
//! changed since the node's previous event ([`format::StateDelta`]), which a
//! reader resolves with [`format::States`]; so every segment starts whole
//! and reads without the ones before it. JSON segments always carry the
//! state whole. A `raft-trace/3` trace (no deltas) reads unchanged.
//!
//! A `raft-trace/1` file (events with `action` and `input`) or a checker
//! file of the former `raft-checker-trace/1` format is refused with a message
//! naming both versions ([`format::refusal`]).

pub mod compact;
pub mod format;
pub mod segments;
pub mod vars;
pub mod writer;

pub use compact::Format;

pub use format::{
    Context, Durable, Event, EventWire, Header, Line, SCHEMA, Start, State, StateDelta, States,
    TracedMessage, TracedStep, strip, traced,
};
pub use writer::{TraceWriter, WriterOptions};
