//! The trace format, `raft-trace/1`: one JSON object per line.
//!
//! A node appends to its own file (`<trace-dir>/node-<id>.jsonl`); every
//! process start begins with a `header` line, then one `event` line per call
//! into the core, and a `persisted` line each time the node's storage has
//! made everything before it durable. Three kinds of line:
//!
//! ```text
//! {"kind":"header","schema":"raft-trace/1","node":1,"cluster":"c1",
//!  "members":[1,2,3],"max_append_entries":256,"start":"init"|"restart","unix_ms":...}
//! {"kind":"event","node":1,"action":"HandleAppendEntriesRequest",
//!  "input":{"message":<Message>} | {"command":<C>} | {"read_id":7}
//!          | {"compact_index":40} | {"recovered":<Durable>} | "none",
//!  "state":<State>, "persist":{"hard_state":..,"log_from":..,"snapshot":..},
//!  "written":{"from":41,"terms":[3,3]} | null, "sent":[{"to":2,"kind":"AppendEntriesResponse"}]}
//! {"kind":"persisted","node":1}
//! ```
//!
//! `action` is the spec's action name (spec/Raft.tla). `input` is what the
//! action was given: the message received (raft-model's serde form, with
//! commands and the snapshot image of an InstallSnapshot request left out: the
//! image is the application's state, opaque to the protocol, known by its
//! metadata; a command is recorded once, by the leader's `ClientRequest`, and
//! entries in messages are known by their terms), the client command, the read id, the index compacted to, or for
//! `Restart` the durable state the node recovered from disk. `state` is the
//! server's spec variables after the action; the log is summarized by its
//! bounds, and `written` gives the terms of the entries the action wrote
//! (the log's content is fixed by the inputs, so index and term identify an
//! entry — Log Matching). `sent` names the messages the action produced;
//! their content is what replaying the action produces, which is what a
//! receiver must have recorded.
//!
//! The checker's counterexamples (`raft-checker-trace/1`) convert to the same
//! events (see [`crate::counterexample`]), where `persist`, `written` and
//! `sent` are left out (`null`): the checker records whole states instead.

use raft_model::{
    Body, Entry, Index, Message, NodeId, Payload, Role, Server, Snapshot, SnapshotMeta, Term,
};
use serde::{Deserialize, Serialize};

/// The schema name every header carries.
pub const SCHEMA: &str = "raft-trace/1";

/// One line of a trace file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line<C: Clone> {
    Header(Header),
    Event(Box<Event<C>>),
    Persisted { node: NodeId },
}

/// Written when a node process starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub schema: String,
    pub node: NodeId,
    pub cluster: String,
    /// The configuration a fresh server starts with.
    pub members: Vec<NodeId>,
    pub max_append_entries: usize,
    pub start: Start,
    /// Wall-clock time of the start, for people reading the trace.
    #[serde(default)]
    pub unix_ms: u64,
}

/// How a process started: a fresh server (spec `Init`) or a recovery from
/// disk, which the next line records as a `Restart` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    Init,
    Restart,
}

/// One call into the core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event<C: Clone> {
    pub node: NodeId,
    pub action: Action,
    pub input: Input<C>,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<raft_model::Persist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Vec<Sent>>,
}

/// The spec's actions, from the core's one list.
pub use raft_model::Action;

/// A message as traced: commands and the snapshot image left out. An
/// AppendEntries request keeps its entries' terms: a leader creates one entry
/// per index and term, and every copy of it is equal (Log Matching), so the
/// terms identify the entries, whose commands the leader's `ClientRequest`
/// events recorded once.
pub type TracedMessage = Message<(), ()>;

/// What an action was given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input<C: Clone> {
    /// Timeout and SendAppendEntries take nothing but the server.
    None,
    Message(TracedMessage),
    Command(C),
    ReadId(u64),
    CompactIndex(Index),
    Recovered(Durable),
}

/// A server's persistent state as recovered from disk at a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    pub snapshot: SnapshotMeta,
    /// Terms of the log entries after the snapshot, in index order.
    pub entry_terms: Vec<Term>,
}

impl Durable {
    pub fn of<C: Clone, S>(server: &Server<C, S>) -> Durable {
        Durable {
            current_term: server.current_term(),
            voted_for: server.voted_for(),
            snapshot: server.snapshot().meta.clone(),
            entry_terms: server.log().entries.iter().map(|e| e.term).collect(),
        }
    }
}

/// The log, summarized by its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBounds {
    pub snapshot_index: Index,
    pub snapshot_term: Term,
    pub last_index: Index,
    pub last_term: Term,
}

/// A server's spec variables after an action (spec/README.md names them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    pub role: Role,
    pub commit_index: Index,
    pub leader_id: Option<NodeId>,
    pub log: LogBounds,
    pub snapshot: SnapshotMeta,
    pub votes_granted: Vec<NodeId>,
    /// Maps as `[[peer, value], ...]`, in peer order: JSON objects would
    /// need string keys.
    pub next_index: Vec<(NodeId, Index)>,
    pub match_index: Vec<(NodeId, Index)>,
    pub read_seq: u64,
    pub read_acks: Vec<(NodeId, u64)>,
    pub pending_reads: usize,
}

impl State {
    pub fn of<C: Clone, S>(s: &Server<C, S>) -> State {
        State {
            current_term: s.current_term(),
            voted_for: s.voted_for(),
            role: s.role(),
            commit_index: s.commit_index(),
            leader_id: s.leader_id(),
            log: LogBounds {
                snapshot_index: s.log().snapshot_index,
                snapshot_term: s.log().snapshot_term,
                last_index: s.log().last_index(),
                last_term: s.log().last_term(),
            },
            snapshot: s.snapshot().meta.clone(),
            votes_granted: s.votes_granted().iter().copied().collect(),
            next_index: s.next_index().iter().map(|(k, v)| (*k, *v)).collect(),
            match_index: s.match_index().iter().map(|(k, v)| (*k, *v)).collect(),
            read_seq: s.read_seq(),
            read_acks: s.read_acks().iter().map(|(k, v)| (*k, *v)).collect(),
            pending_reads: s.pending_reads().len(),
        }
    }
}

/// The entries an action wrote: from `from` on, with these terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub from: Index,
    pub terms: Vec<Term>,
}

impl Written {
    pub fn of<C: Clone, S>(
        server: &Server<C, S>,
        persist: &raft_model::Persist,
    ) -> Option<Written> {
        let from = persist.log_from?;
        let terms = server
            .log()
            .iter()
            .filter(|(index, _)| *index >= from)
            .map(|(_, e)| e.term)
            .collect();
        Some(Written { from, terms })
    }
}

/// A message an action produced, by addressee and kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sent {
    pub to: NodeId,
    pub kind: String,
}

impl Sent {
    pub fn of<C: Clone, S>(messages: &[Message<C, S>]) -> Vec<Sent> {
        messages
            .iter()
            .map(|m| Sent {
                to: m.to,
                kind: m.body.kind().to_string(),
            })
            .collect()
    }
}

/// The message as traced: commands and snapshot image left out.
pub fn strip<C: Clone, S>(message: &Message<C, S>) -> TracedMessage {
    let body = match &message.body {
        Body::RequestVoteRequest {
            last_log_index,
            last_log_term,
        } => Body::RequestVoteRequest {
            last_log_index: *last_log_index,
            last_log_term: *last_log_term,
        },
        Body::RequestVoteResponse { vote_granted } => Body::RequestVoteResponse {
            vote_granted: *vote_granted,
        },
        Body::AppendEntriesRequest {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_seq,
        } => Body::AppendEntriesRequest {
            prev_log_index: *prev_log_index,
            prev_log_term: *prev_log_term,
            entries: entries
                .iter()
                .map(|e| Entry {
                    term: e.term,
                    payload: match e.payload {
                        Payload::Noop => Payload::Noop,
                        Payload::Command(_) => Payload::Command(()),
                    },
                })
                .collect(),
            leader_commit: *leader_commit,
            read_seq: *read_seq,
        },
        Body::AppendEntriesResponse {
            success,
            match_index,
            read_seq,
        } => Body::AppendEntriesResponse {
            success: *success,
            match_index: *match_index,
            read_seq: *read_seq,
        },
        Body::InstallSnapshotRequest { snapshot } => Body::InstallSnapshotRequest {
            snapshot: Snapshot {
                meta: snapshot.meta.clone(),
                data: (),
            },
        },
        Body::InstallSnapshotResponse { match_index } => Body::InstallSnapshotResponse {
            match_index: *match_index,
        },
    };
    Message {
        from: message.from,
        to: message.to,
        term: message.term,
        body,
    }
}
