//! The trace format, `raft-trace/5`: one JSON object per line, five kinds of
//! line (the crate docs show one of each).
//!
//! - `header`: a process of node `node` started, fresh (`init`, spec `Init`)
//!   or from its disk (`restart`: the next event of that node is `Restart`);
//! - `event`: one call into the core, [`Event`]: the model's [`Step`] itself
//!   (its serde form names the spec action and holds its input), for
//!   `Restart` the durable state recovered, the server's state after it, and
//!   what the core asked for (`persist`, `written`, `sent`);
//! - `persisted`: everything the node recorded before this line is durable;
//! - `drop`: the network lost one copy of this message (the checker's
//!   `DropMessage`);
//! - `duplicate`: the network made one more copy of this message (the
//!   checker's `DuplicateMessage`);
//! - `checker`: the context of a checker's counterexample or example
//!   ([`Context`]: bound, seeded bug, property, expectation).
//!
//! A node writes header, event and persisted lines into its own file; the
//! checker writes all five into one file, the servers' lines interleaved in
//! the order of its path. A reader groups the lines by node.
//!
//! What a step holds of its input: the message received with its commands
//! and snapshot image left out ([`TracedMessage`]: the image is the
//! application's state, opaque to the protocol, known by its metadata; a
//! command is recorded once, by the leader's `ClientRequest`, and the entries
//! of a message are known by their terms: index and term identify an entry,
//! Log Matching), the client command, the read id, the index compacted to
//! (its image `()`, written `null`).

use raft_model::{
    Body, Effects, Entry, Index, Message, NodeId, Payload, Role, Server, Snapshot, SnapshotMeta,
    Step, Term,
};
use serde::{Deserialize, Serialize};

/// The schema name every header carries.
pub const SCHEMA: &str = "raft-trace/5";

/// The format before events left out an empty `persist` and `sent` (this
/// version reads an absent one as empty, which every version-4 event spells
/// out) and before nodes recorded a client command by its digest (a command
/// is opaque to the validator, whichever form it has): read unchanged.
pub const SCHEMA_V4: &str = "raft-trace/4";

/// The format before events could carry a `delta` instead of a full
/// `state`: read unchanged (its events all carry `state`, which this version
/// still reads).
pub const SCHEMA_V3: &str = "raft-trace/3";

/// The format before AppendEntries rejections carried a conflict hint
/// (`conflict_term`, `conflict_index`): its rejections lack those fields, and
/// its runs were made by a core that backed off without them, so a replay
/// by this core would not follow them.
pub const SCHEMA_V2: &str = "raft-trace/2";

/// The node's format before the step was the event (its events held an
/// `action` and an `input`).
pub const SCHEMA_V1: &str = "raft-trace/1";

/// The checker's own JSON format before it wrote this one.
pub const CHECKER_SCHEMA_V1: &str = "raft-checker-trace/1";

/// Why a trace of `schema` cannot be read by this version, or `None` if it
/// can.
pub fn refusal(schema: &str) -> Option<String> {
    match schema {
        SCHEMA | SCHEMA_V4 | SCHEMA_V3 => None,
        SCHEMA_V2 => Some(format!(
            "a {SCHEMA_V2} trace: this version reads {SCHEMA} only (its AppendEntries \
             rejections carry the conflicting term and its first index, and the leader backs \
             off by them); record the run again with a raft-node that writes {SCHEMA}, or \
             validate it with the raft-interop of that version"
        )),
        SCHEMA_V1 => Some(format!(
            "a {SCHEMA_V1} trace: this version reads {SCHEMA} only (its events carry the \
             model's Step instead of {SCHEMA_V1}'s action and input); record the run again \
             with a raft-node that writes {SCHEMA}"
        )),
        CHECKER_SCHEMA_V1 => Some(format!(
            "a {CHECKER_SCHEMA_V1} file: this version reads {SCHEMA} only, which the checker \
             now writes itself; run raft-checker again to get the counterexample as {SCHEMA}"
        )),
        other => Some(format!(
            "schema {other:?}: this version reads {SCHEMA} only"
        )),
    }
}

/// One line of a trace file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line<C: Clone> {
    Header(Header),
    Event(Box<Event<C>>),
    Persisted {
        node: NodeId,
    },
    /// The network lost a copy of `message` (checker: `DropMessage`).
    Drop {
        message: TracedMessage,
    },
    /// The network made one more copy of `message` (checker:
    /// `DuplicateMessage`).
    Duplicate {
        message: TracedMessage,
    },
    /// The context of a checker's trace.
    Checker(Context),
}

impl<C: Clone> Line<C> {
    /// The node the line belongs to: a drop or a duplicate belongs to the
    /// message's addressee (it happens at its door); the checker's context
    /// to no node.
    pub fn node(&self) -> Option<NodeId> {
        match self {
            Line::Header(header) => Some(header.node),
            Line::Event(event) => Some(event.node),
            Line::Persisted { node } => Some(*node),
            Line::Drop { message } | Line::Duplicate { message } => Some(message.to),
            Line::Checker(_) => None,
        }
    }
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
    /// The node runs CheckQuorum (absent in traces written before it: off).
    #[serde(default)]
    pub check_quorum: bool,
    /// The node runs PreVote (absent in traces written before it: off).
    #[serde(default)]
    pub pre_vote: bool,
    /// The node's leader writes its own appends in parallel with sending
    /// them (absent in traces written before it: off).
    #[serde(default, skip_serializing_if = "is_false")]
    pub parallel_write: bool,
    /// Pipelined replication's window in requests, 0 for off (absent in
    /// traces written before it: off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_inflight: usize,
    pub start: Start,
    /// Wall-clock time of the start, for people reading the trace.
    #[serde(default)]
    pub unix_ms: u64,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

/// How a process started: a fresh server (spec `Init`) or a recovery from
/// disk, which the next event records as a `Restart` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    Init,
    Restart,
}

/// A step as traced: the model's [`Step`] with the message stripped
/// ([`strip`]) and the snapshot image left out.
pub type TracedStep<C> = Step<C, (), TracedMessage>;

/// A message as traced: commands and the snapshot image left out. An
/// AppendEntries request keeps its entries' terms: a leader creates one entry
/// per index and term, and every copy of it is equal (Log Matching), so the
/// terms identify the entries, whose commands the leader's `ClientRequest`
/// events recorded once.
pub type TracedMessage = Message<(), ()>;

/// One call into the core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event<C: Clone> {
    pub node: NodeId,
    /// The spec action and its input.
    pub step: TracedStep<C>,
    /// For `Restart`: the durable state the server came back with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Durable>,
    /// The server's spec variables after the step.
    pub state: State,
    /// What the step asked to make durable, absent when nothing (most
    /// steps: since raft-trace/5; earlier versions wrote it always).
    #[serde(default, skip_serializing_if = "raft_model::Persist::is_empty")]
    pub persist: raft_model::Persist,
    /// A leader's own entries written in parallel with this step's messages
    /// (`Effects::parallel_log_from`), absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_log_from: Option<Index>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
    /// The messages the step sent, absent when none (since raft-trace/5;
    /// earlier versions wrote `[]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<Sent>,
}

impl<C: Clone> Event<C> {
    /// The event of `server` having taken `step` (for `Restart`, after
    /// recovering `recovered`), which returned `effects`. The step's command
    /// may be of another type than the server's (`C` against `D`): a node
    /// records a summary of each client command ([`traced_with`]).
    pub fn of<D: Clone, S>(
        step: TracedStep<C>,
        recovered: Option<Durable>,
        server: &Server<D, S>,
        effects: &Effects<D, S>,
    ) -> Event<C> {
        Event {
            node: server.id(),
            step,
            recovered,
            state: State::of(server),
            persist: effects.persist.clone(),
            parallel_log_from: effects.parallel_log_from,
            written: Written::of(server, &effects.persist),
            sent: Sent::of(&effects.messages),
        }
    }

    /// The spec action the event took.
    pub fn action(&self) -> raft_model::Action {
        self.step.action()
    }
}

/// `step` as a trace records it: the message stripped, the image left out.
/// Takes the step by reference: a driver records it before the core
/// consumes it, and copies no command but the client's.
pub fn traced<C: Clone, S, M: std::borrow::Borrow<Message<C, S>>>(
    step: &Step<C, S, M>,
) -> TracedStep<C> {
    traced_with(step, C::clone)
}

/// [`traced`], with the client's command recorded as `command` makes it: a
/// node records a digest of each command rather than its data (the command
/// is opaque to the protocol, and the validator replays whatever the trace
/// holds as the command).
pub fn traced_with<C: Clone, T: Clone, S, M: std::borrow::Borrow<Message<C, S>>>(
    step: &Step<C, S, M>,
    command: impl FnOnce(&C) -> T,
) -> TracedStep<T> {
    step.as_ref().map(
        command,
        |_| (),
        |message| strip(<M as std::borrow::Borrow<Message<C, S>>>::borrow(message)),
    )
}

/// The checker's context, in a line of its own at the top of its traces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The bound of the search (the checker's flags, in snake_case).
    pub bound: serde_json::Value,
    /// The seeded bug switched on, if any.
    #[serde(default)]
    pub bug: Option<String>,
    /// The property the trace is a counterexample or an example of.
    pub property: String,
    /// `always` (a counterexample) or `sometimes` (an example).
    pub expectation: String,
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
    /// What a correct driver's storage holds for `server`
    /// (`raft_model::Durable::of`): its persistent state, the log up to its
    /// durable index (a leader's entries past it are still being written in
    /// parallel).
    pub fn of<C: Clone, S>(server: &Server<C, S>) -> Durable {
        Durable::with_log_to(server, server.durable_index())
    }

    /// `server`'s persistent state with its log up to `last` (at most its
    /// last index): what its storage holds once a parallel write up to
    /// `last` has completed.
    pub fn with_log_to<C: Clone, S>(server: &Server<C, S>, last: Index) -> Durable {
        let log = server.log();
        let held = last.saturating_sub(log.snapshot_index);
        Durable {
            current_term: server.current_term(),
            voted_for: server.voted_for(),
            snapshot: server.snapshot().meta.clone(),
            entry_terms: log
                .entries
                .iter()
                .take(usize::try_from(held).unwrap_or(usize::MAX))
                .map(|e| e.term)
                .collect(),
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

/// A server's spec variables after an action (spec/README.md names them;
/// [`crate::vars`] reads them).
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
    /// Spec `durableIndex` (absent in traces written before it, whose
    /// servers' logs were always durable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_index: Option<Index>,
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
            durable_index: Some(s.durable_index()),
        }
    }
}

/// Declares [`StateDelta`] with one optional field per field of [`State`],
/// and the two functions between them, from one list of the fields: a field
/// added to `State` and not here fails to compile (the destructuring in
/// `delta_from` names every field).
macro_rules! state_delta {
    ($($field:ident: $ty:ty),* $(,)?) => {
        /// The spec variables that changed since the node's previous event
        /// (`"delta"`): what a compact trace records instead of the whole
        /// [`State`] once the segment has given one. A field absent is
        /// unchanged. Built by [`State::delta_from`], applied by
        /// [`StateDelta::apply`]; a reader resolves it with [`States`].
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct StateDelta {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
                pub $field: Option<$ty>,
            )*
        }

        impl State {
            /// The fields of `self` that differ from `before`.
            pub fn delta_from(&self, before: &State) -> StateDelta {
                let State { $($field),* } = self;
                StateDelta {
                    $($field: (*$field != before.$field).then(|| $field.clone()),)*
                }
            }
        }

        impl StateDelta {
            /// `before` with the changed fields replaced.
            pub fn apply(self, before: &State) -> State {
                State {
                    $($field: self.$field.unwrap_or_else(|| before.$field.clone()),)*
                }
            }
        }
    };
}

state_delta! {
    current_term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    commit_index: Index,
    leader_id: Option<NodeId>,
    log: LogBounds,
    snapshot: SnapshotMeta,
    votes_granted: Vec<NodeId>,
    next_index: Vec<(NodeId, Index)>,
    match_index: Vec<(NodeId, Index)>,
    read_seq: u64,
    read_acks: Vec<(NodeId, u64)>,
    pending_reads: usize,
    durable_index: Option<Index>,
}

/// A field present in a delta, whatever its value: `"voted_for":null` is a
/// change to no vote, not an unchanged field (serde would read `null` into
/// an `Option<Option<_>>` as absent).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// An event line as written: the state whole (`"state"`), or its change
/// since the node's previous event (`"delta"`). Serializes exactly as
/// [`Line::Event`] does when it carries the state.
#[derive(Serialize)]
#[serde(tag = "kind", rename = "event")]
pub struct EventRecord<'a, C: Clone> {
    pub node: NodeId,
    pub step: &'a TracedStep<C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<&'a Durable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<&'a StateDelta>,
    #[serde(skip_serializing_if = "raft_model::Persist::is_empty")]
    pub persist: &'a raft_model::Persist,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_log_from: Option<Index>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<&'a Written>,
    #[serde(skip_serializing_if = "<[Sent]>::is_empty")]
    pub sent: &'a [Sent],
}

impl<'a, C: Clone> EventRecord<'a, C> {
    /// `event` as written: with its state whole, or with `delta` instead.
    pub fn of(event: &'a Event<C>, delta: Option<&'a StateDelta>) -> EventRecord<'a, C> {
        // Every field of the event named: one added to `Event` and not
        // written here fails to compile, instead of vanishing from every
        // trace the node writes (the merge of `parallel_log_from` nearly did).
        let Event {
            node,
            step,
            recovered,
            state,
            persist,
            parallel_log_from,
            written,
            sent,
        } = event;
        EventRecord {
            node: *node,
            step,
            recovered: recovered.as_ref(),
            state: delta.is_none().then_some(state),
            delta,
            persist,
            parallel_log_from: *parallel_log_from,
            written: written.as_ref(),
            sent,
        }
    }
}

/// An event line as read: [`Event`] with its state whole or as a delta,
/// which [`States::resolve`] turns into the event.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EventWire<C: Clone> {
    pub node: NodeId,
    pub step: TracedStep<C>,
    #[serde(default)]
    pub recovered: Option<Durable>,
    #[serde(default)]
    pub state: Option<State>,
    #[serde(default)]
    pub delta: Option<StateDelta>,
    #[serde(default)]
    pub persist: raft_model::Persist,
    #[serde(default)]
    pub parallel_log_from: Option<Index>,
    #[serde(default)]
    pub written: Option<Written>,
    #[serde(default)]
    pub sent: Vec<Sent>,
}

/// Each node's state after its last event read: what the next delta of
/// that node applies to. A reader keeps one per stream of lines.
#[derive(Clone, Debug, Default)]
pub struct States {
    last: std::collections::BTreeMap<NodeId, State>,
}

impl States {
    /// A process of `node` started (its header): a delta before the next
    /// full state would be a writer's fault.
    pub fn header(&mut self, node: NodeId) {
        self.last.remove(&node);
    }

    /// An event read whole (its state, not a delta).
    pub fn record<C: Clone>(&mut self, event: &Event<C>) {
        self.last.insert(event.node, event.state.clone());
    }

    /// The event `wire` stands for: its state, or its delta applied to the
    /// node's state after its previous event.
    pub fn resolve<C: Clone>(&mut self, wire: EventWire<C>) -> Result<Event<C>, String> {
        let state = match (wire.state, wire.delta) {
            (Some(state), None) => state,
            (None, Some(delta)) => match self.last.get(&wire.node) {
                Some(before) => delta.apply(before),
                None => {
                    return Err(format!(
                        "an event of node {} with a \"delta\" but no full \"state\" of that node \
                         before it since its process started: every trace segment starts with \
                         a full state, so a segment is missing or its lines were cut",
                        wire.node
                    ));
                }
            },
            (Some(_), Some(_)) => {
                return Err("an event with both a \"state\" and a \"delta\"".to_string());
            }
            (None, None) => {
                return Err("an event with neither a \"state\" nor a \"delta\"".to_string());
            }
        };
        self.last.insert(wire.node, state.clone());
        Ok(Event {
            node: wire.node,
            step: wire.step,
            recovered: wire.recovered,
            state,
            persist: wire.persist,
            parallel_log_from: wire.parallel_log_from,
            written: wire.written,
            sent: wire.sent,
        })
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
        // The written suffix only, entry by entry (each O(log n), no
        // allocation but the result's): a scan of the whole log per event
        // made tracing cost grow with the log's length.
        let log = server.log();
        let terms = (from.max(log.snapshot_index + 1)..=log.last_index())
            .filter_map(|index| log.entry(index).map(|e| e.term))
            .collect();
        Some(Written { from, terms })
    }
}

/// A message an action produced, by addressee and kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sent {
    pub to: NodeId,
    /// The message's kind (`Body::kind`): borrowed when written, so that
    /// recording a message allocates nothing for its name.
    pub kind: std::borrow::Cow<'static, str>,
}

impl Sent {
    pub fn of<C: Clone, S>(messages: &[Message<C, S>]) -> Vec<Sent> {
        messages
            .iter()
            .map(|m| Sent {
                to: m.to,
                kind: std::borrow::Cow::Borrowed(m.body.kind()),
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
            pre_vote,
        } => Body::RequestVoteRequest {
            last_log_index: *last_log_index,
            last_log_term: *last_log_term,
            pre_vote: *pre_vote,
        },
        Body::RequestVoteResponse {
            vote_granted,
            pre_vote,
        } => Body::RequestVoteResponse {
            vote_granted: *vote_granted,
            pre_vote: *pre_vote,
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
                    payload: match &e.payload {
                        Payload::Noop => Payload::Noop,
                        Payload::Command(_) => Payload::Command(()),
                        // A configuration is the protocol's, not the
                        // application's: it is kept.
                        Payload::Config(config) => Payload::Config(config.clone()),
                    },
                })
                .collect(),
            leader_commit: *leader_commit,
            read_seq: *read_seq,
        },
        Body::AppendEntriesResponse {
            success,
            match_index,
            conflict_term,
            conflict_index,
            read_seq,
        } => Body::AppendEntriesResponse {
            success: *success,
            match_index: *match_index,
            conflict_term: *conflict_term,
            conflict_index: *conflict_index,
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
        Body::TimeoutNow {} => Body::TimeoutNow {},
    };
    Message {
        from: message.from,
        to: message.to,
        term: message.term,
        body,
    }
}

#[cfg(test)]
mod tests {
    use raft_model::{Action, Config, Effects};

    use super::*;

    fn server() -> Server<u8, ()> {
        Server::new(1, Config::new([1, 2, 3]), ())
    }

    fn event_line(step: TracedStep<u8>, recovered: Option<Durable>) -> String {
        let event = Event::of(step, recovered, &server(), &Effects::default());
        serde_json::to_string(&Line::Event(Box::new(event))).unwrap()
    }

    #[test]
    fn an_event_carries_the_step_in_the_models_serde_form() {
        let line = event_line(Step::Timeout, None);
        assert!(
            line.starts_with(r#"{"kind":"event","node":1,"step":"Timeout","state":{"#),
            "{line}"
        );
        let line = event_line(Step::ClientRequest(7), None);
        assert!(line.contains(r#""step":{"ClientRequest":7}"#), "{line}");
        let line = event_line(Step::CompactLog { index: 4, data: () }, None);
        assert!(
            line.contains(r#""step":{"CompactLog":{"index":4,"data":null}}"#),
            "{line}"
        );
        let line = event_line(Step::Restart, Some(Durable::of(&server())));
        assert!(line.contains(r#""step":"Restart","recovered":{"#), "{line}");
    }

    #[test]
    fn every_kind_of_line_reads_back() {
        let message: Message<u8, ()> = Message {
            from: 2,
            to: 1,
            term: 3,
            body: Body::AppendEntriesRequest {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: [Entry {
                    term: 3,
                    payload: Payload::Command(9),
                }]
                .into_iter()
                .collect(),
                leader_commit: 0,
                read_seq: 0,
            },
        };
        let step: Step<u8, (), Message<u8, ()>> = Step::receive(message.clone());
        let traced_step = traced(&step);
        assert_eq!(traced_step.action(), Action::HandleAppendEntriesRequest);
        assert_eq!(traced_step.message(), Some(&strip(&message)));
        let lines: Vec<Line<u8>> = vec![
            Line::Checker(Context {
                bound: serde_json::json!({ "servers": 3 }),
                bug: None,
                property: "ElectionSafety".to_string(),
                expectation: "always".to_string(),
            }),
            Line::Header(Header {
                schema: SCHEMA.to_string(),
                node: 1,
                cluster: "c1".to_string(),
                members: vec![1, 2, 3],
                max_append_entries: 1,
                check_quorum: false,
                pre_vote: true,
                parallel_write: true,
                max_inflight: 2,
                start: Start::Init,
                unix_ms: 0,
            }),
            Line::Event(Box::new(Event::of(
                traced_step,
                None,
                &server(),
                &Effects::default(),
            ))),
            Line::Persisted { node: 1 },
            Line::Drop {
                message: strip(&message),
            },
            Line::Duplicate {
                message: strip(&message),
            },
        ];
        for line in lines {
            let text = serde_json::to_string(&line).unwrap();
            let back: Line<u8> = serde_json::from_str(&text).unwrap();
            assert_eq!(back, line, "{text}");
        }
    }

    /// A delta holds exactly the changed fields, survives JSON (a vote
    /// withdrawn is `null`, not "unchanged"), and applied to the state
    /// before gives the state after.
    #[test]
    fn a_delta_records_what_changed_and_applies_back() {
        let before = State::of(&server());
        let mut after = before.clone();
        after.current_term = 5;
        after.voted_for = None;
        after.log.last_index = 9;
        after.match_index = vec![(2, 4)];
        let mut voted = before.clone();
        voted.voted_for = Some(3);
        let delta = after.delta_from(&voted);
        let text = serde_json::to_string(&delta).unwrap();
        assert_eq!(
            text,
            r#"{"current_term":5,"voted_for":null,"log":{"snapshot_index":0,"snapshot_term":0,"last_index":9,"last_term":0},"match_index":[[2,4]]}"#
        );
        let back: StateDelta = serde_json::from_str(&text).unwrap();
        assert_eq!(back, delta);
        assert_eq!(back.apply(&voted), after);
        assert_eq!(after.delta_from(&after), StateDelta::default());
        assert_eq!(serde_json::to_string(&StateDelta::default()).unwrap(), "{}");
    }

    /// What a writer writes for a full state is byte for byte the event line
    /// of [`Line::Event`]; a reader resolves deltas against the node's last
    /// state and refuses one it has nothing to apply to.
    #[test]
    fn states_resolve_deltas_per_node() {
        let server = server();
        let event = Event::of(Step::Timeout, None, &server, &Effects::default());
        let full = serde_json::to_string(&EventRecord::of(&event, None)).unwrap();
        assert_eq!(
            full,
            serde_json::to_string(&Line::Event(Box::new(event.clone()))).unwrap()
        );

        let mut later = event.state.clone();
        later.commit_index = 3;
        let delta = later.delta_from(&event.state);
        let text = serde_json::to_string(&EventRecord::of(&event, Some(&delta))).unwrap();
        assert!(text.contains(r#""delta":{"commit_index":3}"#), "{text}");
        assert!(!text.contains(r#""state":"#), "{text}");
        let wire = |text: &str| serde_json::from_str::<EventWire<u8>>(text).unwrap();

        let mut states = States::default();
        let refused = states.resolve(wire(&text)).unwrap_err();
        assert!(
            refused.contains("no full \"state\" of that node"),
            "{refused}"
        );
        assert_eq!(states.resolve(wire(&full)).unwrap(), event);
        assert_eq!(states.resolve(wire(&text)).unwrap().state, later);
        // Another node's delta applies to that node's state only.
        let other = text.replace(r#""node":1"#, r#""node":2"#);
        assert!(states.resolve(wire(&other)).is_err());
        // A process start forgets the state: its segment restarts whole.
        states.header(1);
        assert!(states.resolve(wire(&text)).is_err());
    }

    #[test]
    fn empty_persist_and_sent_are_left_out_and_read_as_empty() {
        let server = server();
        let event = Event::of(Step::Timeout, None, &server, &Effects::default());
        assert!(event.persist.is_empty() && event.sent.is_empty());
        let text = serde_json::to_string(&EventRecord::of(&event, None)).unwrap();
        assert!(
            !text.contains("persist") && !text.contains("sent"),
            "{text}"
        );
        // A raft-trace/4 event spells them out: it reads as the same event.
        let v4 = text.replace(
            r#","state":"#,
            r#","persist":{"hard_state":false,"log_from":null,"snapshot":false},"sent":[],"state":"#,
        );
        assert_ne!(v4, text);
        let read = |text: &str| {
            States::default()
                .resolve(serde_json::from_str::<EventWire<u8>>(text).unwrap())
                .unwrap()
        };
        assert_eq!(read(&v4), event);
        assert_eq!(read(&text), event);
        // A step that persists and sends writes both.
        let mut effects: Effects<u8, ()> = Effects::default();
        effects.persist.hard_state = true;
        let written = Event::of(Step::Timeout, None, &server, &effects);
        let text = serde_json::to_string(&EventRecord::of(&written, None)).unwrap();
        assert!(text.contains(r#""persist":{"hard_state":true"#), "{text}");
        assert_eq!(read(&text), written);
    }

    #[test]
    fn former_formats_are_refused_by_name() {
        assert_eq!(refusal(SCHEMA), None);
        assert_eq!(refusal(SCHEMA_V4), None);
        assert_eq!(
            refusal(SCHEMA_V3),
            None,
            "a raft-trace/3 event is one with a full state"
        );
        for old in [SCHEMA_V2, SCHEMA_V1, CHECKER_SCHEMA_V1] {
            let problem = refusal(old).unwrap();
            assert!(
                problem.contains(old) && problem.contains(SCHEMA),
                "{problem}"
            );
        }
    }
}
