//! Trace validation: replays every node's events through raft-model.
//!
//! Each node's events are replayed in file order on a fresh model server;
//! the streams are merged greedily: a node runs until its next event receives
//! a message no event has produced yet (or for at most [`TURN`] events), then
//! another node runs. The network (like the spec's `messages`) is the set of
//! every message produced, so the merge never has to undo a choice: if some
//! causal order exists, it finds one. For every event, the model must allow
//! the action on the recorded input, and the model's resulting state (and,
//! when recorded, its persist request, written entries and messages) must
//! equal the recorded ones.
//!
//! A crash undoes the events whose batch was not yet durable. At a `Restart`
//! the recovered durable state must equal the model's durable state after
//! some event at or after the node's last `persisted` line; the events after
//! that one are *lost*, and no node may have received a message that only a
//! lost event produced (it can never have been sent: durability before
//! speech). With [`Options::keep_run`], the validated events, lost ones
//! removed, form a linear run of the spec: [`Validated::run`], which the ITF
//! and TLA+ exports read.
//!
//! Every event is replayed the same way, whatever its action: its step's
//! input is restored (the full message from the network, for a handler; the
//! recovered durable state, for a restart) and the model's one dispatcher,
//! [`Server::step`], takes it.
//!
//! **Memory.** A trace directory is read lazily, one chunk of each node's
//! current segment at a time ([`raft_trace::segments::Cursor`]); without
//! `keep_run` the validator holds per node its server and the states since
//! its last `persisted` line, and the network. The network forgets a message
//! no event has produced for [`Options::window`] merged steps (a message
//! still in flight after that long is not one a Raft node's transport
//! delivers): memory is bounded by the cluster's state and the messages of
//! the window, not by the trace's length. Forgetting only ever makes the
//! validator stricter: a receive of a forgotten message is reported (with the
//! window named), never accepted on its account.
//!
//! A checker's trace holds every server's lines in one file, and `drop` and
//! `duplicate` lines for the copies of messages the network lost or made.
//! Each is the network's step: it must name a message some event sent (it
//! waits for it, as a receive does), and is counted. The validator's network
//! keeps every message produced, never consuming one, whatever the drops
//! and duplicates: that only allows more runs (a delivery of a copy the
//! checker's network no longer held is not refused here; the checker's own
//! step rule guarantees it held one) and keeps the greedy merge from ever
//! having to undo a choice.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use raft_model::{Action, Config, Effects, Message, NodeId, Server};
use raft_trace::segments::{Cursor, Next, Segment};
use serde_json::Value;

use crate::format::{
    Context, Durable, Event, EventWire, Header, Line, Sent, Start, State, States, TracedMessage,
    TracedStep, Written, refusal, strip,
};

/// A client command as the replay holds it: its JSON, shared. A log entry
/// is cloned whenever a copy-on-write chunk of a log is (64 entries at a
/// time, at every append to a log some saved state shares), so a command
/// must be cheap to clone: a reference count, not a JSON tree.
pub type Command = std::sync::Arc<Value>;

/// The replay's server: commands kept as shared JSON, snapshot images left
/// out.
pub type ReplayServer = Server<Command, ()>;

/// Events a node replays in a row before the next node's turn: keeps the
/// nodes' progress (and so the network's window) even when one of them
/// could run far ahead.
pub const TURN: usize = 4096;

/// One line of a trace with where it came from.
#[derive(Clone, Debug)]
pub struct Located {
    pub source: String,
    pub line: usize,
    pub content: Line<Value>,
}

/// One node's lines, in order: held in memory (a trace file read whole,
/// such as a checker's) or read lazily from the node's segments in a trace
/// directory.
pub struct Stream {
    pub source: String,
    /// The lines of a stream held in memory (empty for a lazy one).
    pub lines: Vec<Located>,
    /// The checker's context, when the stream comes from a checker's trace.
    pub context: Option<Context>,
    /// A node's segments, read as the replay needs them.
    cursor: Option<(NodeId, Box<Cursor>)>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("source", &self.source)
            .field("lines", &self.lines.len())
            .field("lazy", &self.cursor.is_some())
            .finish()
    }
}

/// Parses one line (either form's text: a compact file is decoded first).
/// An event, the common line, is read straight into its type; one that
/// records a delta of the state is resolved against `states`, the node's
/// state after its previous event in the same stream of lines.
pub fn parse_line(raw: &str, states: &mut States) -> Result<Line<Value>, serde_json::Error> {
    let wire = if raw.starts_with(r#"{"kind":"event","#) {
        // `kind` is an unknown field to the event, which serde skips.
        serde_json::from_str::<EventWire<Value>>(raw)?
    } else {
        match serde_json::from_str::<Line<Value>>(raw) {
            Ok(line) => {
                match &line {
                    Line::Header(header) => states.header(header.node),
                    Line::Event(event) => states.record(event),
                    _ => {}
                }
                return Ok(line);
            }
            // An event with a delta, its keys in another order than the
            // writer's (edited by hand): not a `Line`, which holds a state.
            Err(err) => match serde_json::from_str::<EventWire<Value>>(raw) {
                Ok(wire) if wire.delta.is_some() => wire,
                _ => return Err(err),
            },
        }
    };
    states
        .resolve(wire)
        .map(|event| Line::Event(Box::new(event)))
        .map_err(serde::de::Error::custom)
}

impl Stream {
    /// Reads a trace file whole (of either form, detected from its first
    /// bytes): one stream per node whose lines it holds (a node's segment
    /// holds one node, a checker's file every server). Every line must
    /// parse; a node never writes a partial line (see [`crate::writer`]), so
    /// a bad line is corruption.
    pub fn read(path: &Path) -> Result<Vec<Stream>, Failure> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| Failure::io(path, &err))?;
        let text = raft_trace::compact::decode_all(&bytes).map_err(|err| Failure {
            source: source.clone(),
            line: 0,
            node: None,
            action: None,
            problem: err.to_string(),
            details: Vec::new(),
        })?;
        let text = String::from_utf8(text).map_err(|_| Failure {
            source: source.clone(),
            line: 0,
            node: None,
            action: None,
            problem: "not UTF-8 text".to_string(),
            details: Vec::new(),
        })?;
        Stream::parse(&source, &text)
    }

    /// A node's trace in `dir`, read lazily from its segments starting at
    /// `first`; with `follow`, the stream waits for the files to grow.
    pub fn segments(
        dir: &Path,
        node: NodeId,
        first: &Segment,
        follow: bool,
    ) -> Result<Stream, Failure> {
        let cursor =
            Cursor::new(dir, node, first, follow).map_err(|err| Failure::io(&first.path, &err))?;
        Ok(Stream {
            source: first.path.display().to_string(),
            lines: Vec::new(),
            context: None,
            cursor: Some((node, Box::new(cursor))),
        })
    }

    /// Parses the text of a trace file (`source` names it in failures): one
    /// stream per node, in the order the nodes first appear.
    pub fn parse(source: &str, text: &str) -> Result<Vec<Stream>, Failure> {
        let fail = |line: usize, problem: String, raw: &str| Failure {
            source: source.to_string(),
            line,
            node: None,
            action: None,
            problem,
            details: if raw.is_empty() {
                Vec::new()
            } else {
                vec![format!("line: {}", abbreviate(raw))]
            },
        };
        let mut streams: Vec<Stream> = Vec::new();
        let mut context = None;
        let mut states = States::default();
        for (n, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let content: Line<Value> = match parse_line(raw, &mut states) {
                Ok(content) => content,
                Err(err) => {
                    // A whole-file JSON document of another format (the
                    // checker's former one) names its schema at the top.
                    let schema = serde_json::from_str::<Value>(text)
                        .ok()
                        .and_then(|v| v.get("schema").and_then(Value::as_str).map(str::to_string));
                    return Err(match schema.as_deref().and_then(refusal) {
                        Some(problem) => fail(0, problem, ""),
                        None => fail(n + 1, format!("not a {} line: {err}", crate::SCHEMA), raw),
                    });
                }
            };
            // Line 0, as for a file that cannot be read: not the trace's
            // fault, and the command exits with 2 (usage), not 1 (invalid).
            if let Line::Header(header) = &content
                && let Some(problem) = refusal(&header.schema)
            {
                return Err(fail(0, problem, ""));
            }
            let Some(node) = content.node() else {
                if let Line::Checker(c) = content {
                    context = Some(c);
                }
                continue;
            };
            let located = Located {
                source: source.to_string(),
                line: n + 1,
                content,
            };
            match streams.iter_mut().find(|s| s.node() == Some(node)) {
                Some(stream) => stream.lines.push(located),
                None => streams.push(Stream {
                    source: source.to_string(),
                    lines: vec![located],
                    context: None,
                    cursor: None,
                }),
            }
        }
        if streams.is_empty() {
            streams.push(Stream {
                source: source.to_string(),
                lines: Vec::new(),
                context: None,
                cursor: None,
            });
        }
        if streams.len() > 1 {
            for stream in &mut streams {
                if let Some(node) = stream.node() {
                    stream.source = format!("{source}#node-{node}");
                }
            }
        }
        for stream in &mut streams {
            stream.context.clone_from(&context);
        }
        Ok(streams)
    }

    /// The node whose lines these are (of the first line).
    fn node(&self) -> Option<NodeId> {
        match &self.cursor {
            Some((node, _)) => Some(*node),
            None => self.lines.first().and_then(|l| l.content.node()),
        }
    }
}

pub(crate) fn abbreviate(text: &str) -> String {
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Why a trace is not a run of the model: the first bad line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub source: String,
    pub line: usize,
    pub node: Option<NodeId>,
    pub action: Option<Action>,
    pub problem: String,
    /// Expected-versus-recorded lines, one per differing field.
    pub details: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(node) = self.node {
            write!(f, " (node {node}")?;
            if let Some(action) = self.action {
                write!(f, ", {action}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.problem)?;
        for detail in &self.details {
            write!(f, "\n    {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// A segment of `node`'s trace that cannot be read or decoded.
    pub fn segment(node: NodeId, err: raft_trace::segments::ReadError) -> Failure {
        Failure {
            source: err.source,
            line: err.line,
            node: Some(node),
            action: None,
            problem: err.problem,
            details: Vec::new(),
        }
    }

    /// A file or directory that cannot be read (line 0: not a trace's fault).
    pub fn io(path: &Path, err: &std::io::Error) -> Failure {
        Failure {
            source: path.display().to_string(),
            line: 0,
            node: None,
            action: None,
            problem: format!("cannot read: {err}"),
            details: Vec::new(),
        }
    }
}

/// One validated step of the merged run.
#[derive(Clone, Debug)]
pub struct RunStep {
    pub node: NodeId,
    pub action: Action,
    /// The step as traced (only when the run is kept, see [`validate_with`]).
    pub step: Option<TracedStep<Value>>,
    /// The node's server after the step.
    pub server: ReplayServer,
    pub source: String,
    pub line: usize,
}

/// A validated trace.
#[derive(Clone, Debug)]
pub struct Validated {
    /// Every node's server at the start of the run (spec `Init`).
    pub initial: BTreeMap<NodeId, ReplayServer>,
    /// The merged run, lost events removed.
    pub run: Vec<RunStep>,
    /// Events a crash undid (recorded, replayed, then dropped at a restart).
    pub lost: usize,
    pub restarts: usize,
    /// Per node: events validated.
    pub events: BTreeMap<NodeId, usize>,
    /// Distinct messages produced (a message produced again after the
    /// network forgot it counts again).
    pub messages: usize,
    /// Messages the network lost (`drop` lines of a checker's trace).
    pub dropped: usize,
    /// Messages the network duplicated (`duplicate` lines of a checker's trace).
    pub duplicated: usize,
    /// The checker's context, for a checker's trace.
    pub context: Option<Context>,
    /// Segments whose last line was partial (a writer killed mid-write:
    /// those events were never persisted nor sent, so nothing is lost).
    pub torn_tails: usize,
    /// Trace bytes read (compressed, for compact segments) and segments,
    /// over the node streams read lazily.
    pub bytes_read: u64,
    pub segments: usize,
    /// The network's own steps (a checker's `duplicate` and `drop` lines),
    /// each placed before the step of [`Validated::run`] at its `before`
    /// index (`run.len()`: after the last), for the exports: TraceRaft.tla
    /// must copy a message before a second delivery consumes it.
    pub network_steps: Vec<NetworkStep>,
}

impl Validated {
    /// One line saying what was validated (what `raft-interop validate`
    /// prints for a valid run).
    pub fn summary(&self) -> String {
        let validated = self;
        let events: usize = validated.events.values().sum();
        let mut text = format!(
            "valid: {} nodes, {events} events ({}), {} restarts, {} events undone by crashes, \
             {} distinct messages ({} copies dropped, {} duplicated), a merged run of {} steps",
            validated.events.len(),
            validated
                .events
                .iter()
                .map(|(node, n)| format!("node {node}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            validated.restarts,
            validated.lost,
            validated.messages,
            validated.dropped,
            validated.duplicated,
            events - validated.lost
        );
        if validated.segments > 0 {
            text.push_str(&format!(
                "; {} segments, {:.1} MiB read ({:.0} bytes/event)",
                validated.segments,
                validated.bytes_read as f64 / (1024.0 * 1024.0),
                validated.bytes_read as f64 / events.max(1) as f64
            ));
        }
        if validated.torn_tails > 0 {
            text.push_str(&format!(
                "; {} segments ended in a partial line (a writer killed mid-write: never persisted nor sent)",
                validated.torn_tails
            ));
        }
        text
    }
}

/// A step of the network itself in a validated run.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkStep {
    /// The index in [`Validated::run`] of the step it precedes.
    pub before: usize,
    /// `DuplicateMessage` or `DropMessage`, as the spec names them.
    pub action: &'static str,
    pub message: raft_trace::TracedMessage,
}

/// How to validate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Keep every step's input and server ([`Validated::run`], for the
    /// exports): memory then grows with the trace.
    pub keep_run: bool,
    /// Merged steps after which the network forgets a message no event has
    /// produced since (0: never forget).
    pub window: u64,
}

impl Options {
    /// The default window: a message is kept for 100,000 merged steps after
    /// its last production: tens of seconds of a busy 3-node cluster (the
    /// 90 s chaos run of issue 22 merged some 5,000 steps a second), far
    /// beyond the node's RPC timeouts and the chaos harness's pauses (its
    /// 240 s run, seed 99, validates with a window of 20,000). The network
    /// then holds some 200 MB at most (interop/README.md, "Cost").
    pub const DEFAULT_WINDOW: u64 = 100_000;
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_run: true,
            window: Self::DEFAULT_WINDOW,
        }
    }
}

/// Validates the streams of one cluster (one stream per node), keeping the
/// run for the exports.
pub fn validate(streams: Vec<Stream>) -> Result<Validated, Failure> {
    validate_with(streams, true)
}

/// Validates; with `keep_run` false, [`Validated::run`] stays empty and the
/// memory needed does not grow with the trace (see the module's docs).
pub fn validate_with(streams: Vec<Stream>, keep_run: bool) -> Result<Validated, Failure> {
    validate_opts(
        streams,
        Options {
            keep_run,
            ..Options::default()
        },
    )
}

/// Validates with `options`.
pub fn validate_opts(streams: Vec<Stream>, options: Options) -> Result<Validated, Failure> {
    let mut validator = Validator::new(options);
    for stream in streams {
        validator.add(stream)?;
    }
    loop {
        let round = validator.round()?;
        if round.done {
            break;
        }
        if !round.progressed {
            return Err(validator.deadlock());
        }
    }
    validator.finish()
}

/// What one round of the merge did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Round {
    /// Some node took a line.
    pub progressed: bool,
    /// Every node's stream is at its end.
    pub done: bool,
    /// Nodes waiting for a message no event has produced yet.
    pub blocked: usize,
    /// Nodes at the end of what their files hold now (following).
    pub pending: usize,
}

/// The merge of a cluster's streams through the model, round by round
/// (what [`validate_opts`] runs to the end and `validate --follow` runs as
/// the files grow).
pub struct Validator {
    nodes: Vec<NodeReplay>,
    cluster: Cluster,
    context: Option<Context>,
}

impl Validator {
    pub fn new(options: Options) -> Validator {
        Validator {
            nodes: Vec::new(),
            cluster: Cluster {
                options,
                ..Cluster::default()
            },
            context: None,
        }
    }

    /// Adds a node's stream (a node may have one only).
    pub fn add(&mut self, stream: Stream) -> Result<(), Failure> {
        if self.context.is_none() {
            self.context.clone_from(&stream.context);
        }
        let mut node = NodeReplay::new(stream)?;
        let id = node.node()?;
        if let Some(other) = self.nodes.iter_mut().find(|n| n.node == Some(id)) {
            return Err(Failure {
                source: node.source.clone(),
                line: 1,
                node: Some(id),
                action: None,
                problem: format!("node {id} also has the trace {}", other.source),
                details: Vec::new(),
            });
        }
        self.nodes.push(node);
        Ok(())
    }

    /// The nodes added.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().filter_map(|n| n.node).collect()
    }

    /// Events validated so far (lost ones included).
    pub fn events(&self) -> usize {
        self.nodes.iter().map(|n| n.events).sum()
    }

    /// Per node: (events validated, the segment or file being read).
    pub fn positions(&self) -> Vec<(NodeId, usize, String)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.node?, n.events, n.position())))
            .collect()
    }

    /// Every node runs as far as it can (at most [`TURN`] events each).
    pub fn round(&mut self) -> Result<Round, Failure> {
        let round = self.round_once()?;
        if round.progressed || round.blocked == 0 {
            return Ok(round);
        }
        // Every node waits: let one take a copy already consumed.
        self.cluster.relaxed = true;
        let round = self.round_once();
        self.cluster.relaxed = false;
        round
    }

    fn round_once(&mut self) -> Result<Round, Failure> {
        let mut round = Round {
            done: true,
            ..Round::default()
        };
        for node in self.nodes.iter_mut() {
            let (progressed, state) = node.run(&mut self.cluster)?;
            round.progressed |= progressed;
            match state {
                NodeState::Done => {}
                NodeState::Blocked => {
                    round.done = false;
                    round.blocked += 1;
                }
                NodeState::Pending => {
                    round.done = false;
                    round.pending += 1;
                }
                NodeState::Turn => round.done = false,
            }
        }
        Ok(round)
    }

    /// No node can take its next step: the earliest waiting receive.
    pub fn deadlock(&self) -> Failure {
        deadlock(&self.nodes, &self.cluster)
    }

    /// The checks at the end of the streams, and the summary.
    pub fn finish(self) -> Result<Validated, Failure> {
        let Validator {
            nodes,
            cluster,
            context,
        } = self;
        cluster.check_no_lost_message_received()?;
        let mut events = BTreeMap::new();
        for node in &nodes {
            if let Some(id) = node.node {
                events.insert(id, node.events);
            }
        }
        let initial = nodes
            .iter()
            .filter_map(|n| Some((n.node?, n.initial.clone()?)))
            .collect();
        let run: Vec<RunStep> = cluster
            .steps
            .iter()
            .filter(|s| !s.lost)
            .map(|s| s.step.clone())
            .collect();
        // A network line recorded when `merged` steps had been merged goes
        // before the first of those steps that is still in the run.
        let network_steps = cluster
            .network_lines
            .iter()
            .map(|(merged, action, message)| NetworkStep {
                before: cluster.steps[..*merged].iter().filter(|s| !s.lost).count(),
                action,
                message: message.clone(),
            })
            .collect();
        let (torn_tails, bytes_read, segments) = nodes
            .iter()
            .filter_map(|n| n.cursor_stats())
            .fold((0, 0, 0), |(t, b, s), (t2, b2, s2)| {
                (t + t2, b + b2, s + s2)
            });
        Ok(Validated {
            initial,
            run,
            lost: cluster.lost,
            restarts: nodes.iter().map(|n| n.restarts).sum(),
            events,
            messages: cluster.distinct,
            dropped: cluster.dropped,
            duplicated: cluster.duplicated,
            context,
            network_steps,
            torn_tails,
            bytes_read,
            segments,
        })
    }
}

/// No node can take its next step: each waits for a message nobody sent.
fn deadlock(nodes: &[NodeReplay], cluster: &Cluster) -> Failure {
    let mut waiting: Vec<(&Located, NodeId)> = nodes
        .iter()
        .filter_map(|n| Some((n.peeked()?, n.node?)))
        .collect();
    // The earliest line is the likeliest culprit (e.g. a receive moved up).
    waiting.sort_by_key(|(l, node)| (l.line, *node));
    let Some((first, node)) = waiting.first().copied() else {
        return Failure {
            source: String::new(),
            line: 0,
            node: None,
            action: None,
            problem: "internal: no node waits".to_string(),
            details: Vec::new(),
        };
    };
    let message = awaited(&first.content)
        .map(|m| serde_json::to_string(m).unwrap_or_default())
        .unwrap_or_default();
    let mut details = vec![format!("message: {}", abbreviate(&message))];
    let action = match &first.content {
        Line::Event(e) => Some(e.action()),
        _ => None,
    };
    if let Some(wanted) = awaited(&first.content) {
        // Produced, but only by events a crash undid.
        if let Some(entry) = cluster.network.get(wanted)
            && entry.alive == 0
        {
            let producer = &entry.producer;
            return Failure {
                source: first.source.clone(),
                line: first.line,
                node: Some(node),
                action,
                problem: format!(
                    "receives a message that only {}:{} (node {}, {}) produced, an event its \
                     node's crash undid: it was never durable, so it can never have been sent",
                    producer.source, producer.line, producer.node, producer.action
                ),
                details,
            };
        }
        details.extend(near_misses(cluster, wanted));
        if cluster.options.window > 0 && cluster.forgotten > 0 {
            details.push(format!(
                "(or it was sent more than {} merged steps earlier, beyond the network's window: \
                 --window)",
                cluster.options.window
            ));
        }
    }
    for (other, other_node) in waiting.iter().skip(1) {
        details.push(format!(
            "also waiting: node {other_node} at {}:{}",
            other.source, other.line
        ));
    }
    Failure {
        source: first.source.clone(),
        line: first.line,
        node: Some(node),
        action,
        problem: match &first.content {
            Line::Drop { .. } => "drops a message that no event sent before it",
            Line::Duplicate { .. } => "duplicates a message that no event sent before it",
            _ => {
                "receives a message that no event sent before it (no causal order of the traces \
                 delivers it after its send)"
            }
        }
        .to_string(),
        details,
    }
}

/// The messages sent with the awaited message's sender, addressee, term and
/// kind, each with the fields in which it differs: a field corrupted in a
/// recorded message (say an AppendEntries rejection's `conflict_index`) is
/// named here, beside the message the model did send.
fn near_misses(cluster: &Cluster, wanted: &TracedMessage) -> Vec<String> {
    // A body serializes as {"Kind": {fields}}: compare the fields.
    let fields = |message: &TracedMessage| {
        serde_json::to_value(&message.body)
            .ok()
            .and_then(|body| body.as_object()?.values().next().cloned())
            .unwrap_or(Value::Null)
    };
    let wanted_fields = fields(wanted);
    let mut misses: Vec<String> = cluster
        .network
        .values()
        .filter(|sent| sent.alive > 0)
        .map(|sent| strip(&sent.full))
        .filter(|sent| {
            (sent.from, sent.to, sent.term, sent.body.kind())
                == (wanted.from, wanted.to, wanted.term, wanted.body.kind())
        })
        .map(|sent| {
            format!(
                "sent instead: a {} from {} to {} in term {}, differing in {}",
                sent.body.kind(),
                sent.from,
                sent.to,
                sent.term,
                diff(&fields(&sent), &wanted_fields, "sent").join("; ")
            )
        })
        .collect();
    misses.sort();
    misses.truncate(3);
    misses
}

/// The message a line waits for: the one an event receives or a drop loses.
fn awaited(line: &Line<Value>) -> Option<&TracedMessage> {
    match line {
        Line::Event(event) => event.step.message(),
        Line::Drop { message } | Line::Duplicate { message } => Some(message),
        _ => None,
    }
}

/// Where an event is, for reports.
#[derive(Clone, Debug)]
struct Origin {
    source: Rc<str>,
    line: usize,
    node: NodeId,
    action: Action,
}

/// A message in the network.
struct InFlight {
    /// The full message, to deliver.
    full: Message<Command, ()>,
    /// Producing events not undone by a crash (0: only lost events produced
    /// it, so it was never sent).
    alive: u32,
    /// The merged step that last produced it (for the window).
    last_step: u64,
    /// An event that produced it (the last).
    producer: Origin,
    /// The first event that received it.
    received: Option<Origin>,
    /// Copies taken off the network: deliveries and `drop` lines. While
    /// `consumed < alive + copied` a copy is still in flight, as in the
    /// spec's bag; the merge prefers such a delivery (see `Cluster::relaxed`).
    consumed: u32,
    /// Copies the network made: `duplicate` lines, and the DuplicateMessage
    /// the export inserts for a delivery of a message with no copy left.
    copied: u32,
}

#[derive(Default)]
struct Cluster {
    options: Options,
    /// Every message produced (within the window), by its traced form.
    network: HashMap<TracedMessage, InFlight>,
    /// Merged steps so far (lost ones included).
    merged: u64,
    /// The merged run, when kept (`options.keep_run`), indexed by step.
    steps: Vec<MergedStep>,
    /// The network lines, in order (kept with the run): (merged steps
    /// before it, spec action, message).
    network_lines: Vec<(usize, &'static str, raft_trace::TracedMessage)>,
    dropped: usize,
    duplicated: usize,
    lost: usize,
    distinct: usize,
    /// Messages the window made the network forget.
    forgotten: u64,
    /// The merged step of the last sweep of the window.
    swept: u64,
    /// Deliver a message whose every copy has been consumed (a round in
    /// which no node could otherwise progress): the run then gets a
    /// DuplicateMessage line before that delivery, so that TraceRaft.tla's
    /// consuming bag follows the same order.
    relaxed: bool,
}

struct MergedStep {
    step: RunStep,
    lost: bool,
}

impl Cluster {
    /// Records a network line at the current point of the merged run.
    fn network_line(&mut self, action: &'static str, message: &raft_trace::TracedMessage) {
        if action == "DropMessage" {
            self.dropped += 1;
        } else {
            self.duplicated += 1;
        }
        if self.options.keep_run {
            let at = self.steps.len();
            self.network_lines.push((at, action, message.clone()));
        }
    }

    /// Whether `message` can be delivered now.
    fn deliverable(&self, message: &TracedMessage) -> bool {
        self.network
            .get(message)
            .is_some_and(|m| m.alive > 0 && (self.relaxed || m.consumed < m.alive + m.copied))
    }

    /// A copy of `message` leaves the network (a delivery or a drop); with
    /// none left, the network duplicated one first.
    fn consume(&mut self, message: &TracedMessage) {
        let Some(sent) = self.network.get_mut(message) else {
            return;
        };
        let none_left = sent.consumed >= sent.alive + sent.copied;
        sent.consumed += 1;
        if none_left {
            sent.copied += 1;
            // One such delivery per relaxed round: the rest stays strict.
            self.relaxed = false;
            self.network_line("DuplicateMessage", message);
        }
    }

    /// Records the messages a step produced.
    fn produce(
        &mut self,
        messages: &[Message<Command, ()>],
        origin: &Origin,
    ) -> Vec<TracedMessage> {
        let step = self.merged;
        let mut keys = Vec::with_capacity(messages.len());
        for message in messages {
            let key = strip(message);
            match self.network.get_mut(&key) {
                Some(sent) => {
                    sent.alive += 1;
                    sent.last_step = step;
                    sent.producer = origin.clone();
                }
                None => {
                    self.distinct += 1;
                    self.network.insert(
                        key.clone(),
                        InFlight {
                            full: message.clone(),
                            alive: 1,
                            last_step: step,
                            producer: origin.clone(),
                            received: None,
                            consumed: 0,
                            copied: 0,
                        },
                    );
                }
            }
            keys.push(key);
        }
        keys
    }

    /// A crash undid the step that produced `keys`.
    fn undo(&mut self, step: u64, keys: &[TracedMessage]) {
        self.lost += 1;
        if let Some(merged) = self.steps.get_mut(step as usize) {
            merged.lost = true;
        }
        for key in keys {
            if let Some(sent) = self.network.get_mut(key) {
                sent.alive = sent.alive.saturating_sub(1);
            }
        }
    }

    /// Forgets the messages no event produced within the window; a message
    /// only lost events produced and some event received is reported.
    fn sweep(&mut self) -> Result<(), Failure> {
        let window = self.options.window;
        if window == 0 || self.merged < self.swept + (window / 4).max(1024) {
            return Ok(());
        }
        self.swept = self.merged;
        let horizon = self.merged.saturating_sub(window);
        let before = self.network.len();
        let mut failure = None;
        self.network.retain(|_, sent| {
            if sent.last_step >= horizon {
                return true;
            }
            if sent.alive == 0
                && let Some(receiver) = &sent.received
                && failure.is_none()
            {
                failure = Some(lost_received(receiver, &sent.producer, &sent.full));
            }
            false
        });
        self.forgotten += (before - self.network.len()) as u64;
        match failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    fn check_no_lost_message_received(&self) -> Result<(), Failure> {
        let mut failures: Vec<Failure> = self
            .network
            .values()
            .filter(|sent| sent.alive == 0)
            .filter_map(|sent| {
                let receiver = sent.received.as_ref()?;
                Some(lost_received(receiver, &sent.producer, &sent.full))
            })
            .collect();
        failures.sort_by(|a, b| (&a.source, a.line).cmp(&(&b.source, b.line)));
        match failures.into_iter().next() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

fn lost_received(receiver: &Origin, producer: &Origin, message: &Message<Command, ()>) -> Failure {
    Failure {
        source: receiver.source.to_string(),
        line: receiver.line,
        node: Some(receiver.node),
        action: Some(receiver.action),
        problem: format!(
            "receives a message that only {}:{} (node {}, {}) produced, an event its node's \
             crash undid: it was never durable, so it can never have been sent",
            producer.source, producer.line, producer.node, producer.action
        ),
        details: vec![format!(
            "message: {}",
            abbreviate(&serde_json::to_string(&strip(message)).unwrap_or_default())
        )],
    }
}

/// Where a node's replay stands after its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeState {
    /// Its stream is at its end.
    Done,
    /// Its next line waits for a message no event has produced.
    Blocked,
    /// Its files hold no more lines yet (following).
    Pending,
    /// It used its turn.
    Turn,
}

/// A node's lines: in memory, or read from its segments.
enum Lines {
    Memory(std::vec::IntoIter<Located>),
    Segments(NodeId, Box<Cursor>),
}

enum Peek {
    Line,
    Pending,
    End,
}

/// A step since the node's last `persisted` line: a crash may undo it.
struct Tentative {
    step: u64,
    produced: Vec<TracedMessage>,
}

struct NodeReplay {
    /// The node (known from the first line, read when the stream is added).
    node: Option<NodeId>,
    source: String,
    lines: Lines,
    /// The next line, read but not yet taken.
    next: Option<Located>,
    /// The node's state after its last event read, for the next delta.
    states: States,
    /// The segment source as shared by the origins of its events.
    origin_source: Rc<str>,
    header: Option<Header>,
    server: Option<ReplayServer>,
    initial: Option<ReplayServer>,
    /// The states the node may recover at its next restart, oldest first:
    /// the state at its last `persisted` line (or process start) and after
    /// every later event, each with the merged step that made it.
    durable_candidates: Vec<(ReplayServer, Option<Tentative>)>,
    /// A `Restart` event must follow a header that says so.
    expect_restart: bool,
    events: usize,
    restarts: usize,
}

impl NodeReplay {
    fn new(stream: Stream) -> Result<NodeReplay, Failure> {
        let lines = match stream.cursor {
            Some((node, cursor)) => Lines::Segments(node, cursor),
            None => Lines::Memory(stream.lines.into_iter()),
        };
        Ok(NodeReplay {
            node: None,
            origin_source: Rc::from(stream.source.as_str()),
            source: stream.source,
            lines,
            next: None,
            states: States::default(),
            header: None,
            server: None,
            initial: None,
            durable_candidates: Vec::new(),
            expect_restart: false,
            events: 0,
            restarts: 0,
        })
    }

    /// Reads the first line to learn the node: it must be a header. A lazy
    /// stream whose first segment is not there yet waits for it.
    fn node(&mut self) -> Result<NodeId, Failure> {
        let fail = |source: &str, line: usize, problem: String| Failure {
            source: source.to_string(),
            line,
            node: None,
            action: None,
            problem,
            details: Vec::new(),
        };
        match self.peek()? {
            Peek::Line => {}
            Peek::Pending | Peek::End => {
                if let Lines::Segments(node, _) = &self.lines {
                    self.node = Some(*node);
                    return Ok(*node);
                }
                return Err(fail(&self.source, 0, "the trace is empty".to_string()));
            }
        }
        let first = self.next.as_ref().expect("peeked");
        match &first.content {
            Line::Header(h) => {
                self.node = Some(h.node);
                Ok(h.node)
            }
            _ => Err(fail(
                &first.source,
                first.line,
                match &self.lines {
                    Lines::Segments(node, _) if first.line == 1 => format!(
                        "node {node}'s trace begins without a header: its earlier segments were \
                         removed (the trace's retention, trace_keep_files); only a trace kept \
                         from the node's first start validates, or one followed as it is \
                         written (validate --follow)"
                    ),
                    _ => "a trace must begin with a header line".to_string(),
                },
            )),
        }
    }

    /// The line read ahead, if any.
    fn peeked(&self) -> Option<&Located> {
        self.next.as_ref()
    }

    /// The file being read, and how far.
    fn position(&self) -> String {
        match &self.lines {
            Lines::Segments(_, cursor) => cursor.source().to_string(),
            Lines::Memory(_) => self.source.clone(),
        }
    }

    fn cursor_stats(&self) -> Option<(usize, u64, usize)> {
        match &self.lines {
            Lines::Segments(_, c) => Some((c.torn_tails, c.bytes_read, c.segments_read)),
            Lines::Memory(_) => None,
        }
    }

    /// Reads the next line into `self.next`, if there is one now.
    fn peek(&mut self) -> Result<Peek, Failure> {
        if self.next.is_some() {
            return Ok(Peek::Line);
        }
        match &mut self.lines {
            Lines::Memory(lines) => match lines.next() {
                Some(line) => {
                    self.next = Some(line);
                    Ok(Peek::Line)
                }
                None => Ok(Peek::End),
            },
            Lines::Segments(node, cursor) => {
                let node = *node;
                loop {
                    let at = match cursor.next_line() {
                        Ok(Next::Line(at)) => at,
                        Ok(Next::Pending) => return Ok(Peek::Pending),
                        Ok(Next::End) => return Ok(Peek::End),
                        Err(err) => return Err(Failure::segment(node, err)),
                    };
                    if at.text.trim().is_empty() {
                        continue;
                    }
                    let content = parse_line(at.text, &mut self.states).map_err(|err| Failure {
                        source: at.source.to_string(),
                        line: at.line,
                        node: Some(node),
                        action: None,
                        problem: format!("not a {} line: {err}", crate::SCHEMA),
                        details: vec![format!("line: {}", abbreviate(at.text))],
                    })?;
                    if let Line::Header(header) = &content
                        && let Some(problem) = refusal(&header.schema)
                    {
                        return Err(Failure {
                            source: at.source.to_string(),
                            line: 0,
                            node: Some(node),
                            action: None,
                            problem,
                            details: Vec::new(),
                        });
                    }
                    if *self.origin_source != *at.source {
                        self.origin_source = Rc::from(at.source);
                    }
                    self.next = Some(Located {
                        source: at.source.to_string(),
                        line: at.line,
                        content,
                    });
                    return Ok(Peek::Line);
                }
            }
        }
    }

    fn fail(
        &self,
        at: &Located,
        action: Option<Action>,
        problem: String,
        details: Vec<String>,
    ) -> Failure {
        Failure {
            source: at.source.clone(),
            line: at.line,
            node: self.node,
            action,
            problem,
            details,
        }
    }

    /// Runs as far as possible, for at most [`TURN`] lines; whether it took
    /// at least one, and where it stands.
    fn run(&mut self, cluster: &mut Cluster) -> Result<(bool, NodeState), Failure> {
        let mut taken = 0;
        loop {
            if taken >= TURN {
                return Ok((true, NodeState::Turn));
            }
            match self.peek()? {
                Peek::Line => {}
                Peek::Pending => return Ok((taken > 0, NodeState::Pending)),
                Peek::End => return Ok((taken > 0, NodeState::Done)),
            }
            let next = self.next.as_ref().expect("peeked");
            if let Some(message) = awaited(&next.content)
                && !cluster.deliverable(message)
            {
                return Ok((taken > 0, NodeState::Blocked));
            }
            let at = self.next.take().expect("peeked");
            if self.node.is_none() {
                self.node = at.content.node();
            }
            match &at.content {
                Line::Header(header) => self.start(&at, header)?,
                Line::Persisted { node } => {
                    self.check_node(&at, *node, None)?;
                    if let Some(server) = &self.server {
                        self.durable_candidates = vec![(server.clone(), None)];
                    }
                }
                Line::Event(event) => self.event(&at, event, cluster)?,
                // The message was sent (the wait above): the network lost it.
                Line::Drop { message } => {
                    cluster.consume(message);
                    cluster.network_line("DropMessage", message);
                }
                // Likewise: the network copied a message that was sent.
                Line::Duplicate { message } => {
                    if let Some(sent) = cluster.network.get_mut(message) {
                        sent.copied += 1;
                    }
                    cluster.network_line("DuplicateMessage", message);
                }
                Line::Checker(_) => {}
            }
            taken += 1;
        }
    }

    fn check_node(
        &self,
        at: &Located,
        node: NodeId,
        action: Option<Action>,
    ) -> Result<(), Failure> {
        if Some(node) != self.node {
            return Err(self.fail(
                at,
                action,
                format!(
                    "a line of node {node} in the trace of node {}",
                    self.node.unwrap_or_default()
                ),
                Vec::new(),
            ));
        }
        Ok(())
    }

    fn start(&mut self, at: &Located, header: &Header) -> Result<(), Failure> {
        self.check_node(at, header.node, None)?;
        if let Some(problem) = refusal(&header.schema) {
            return Err(self.fail(at, None, problem, Vec::new()));
        }
        if self.expect_restart {
            return Err(self.fail(
                at,
                None,
                "a process start after a restart header without a Restart event".to_string(),
                Vec::new(),
            ));
        }
        match (header.start, &self.server) {
            (Start::Init, None) => {
                let server =
                    Server::new(header.node, Config::new(header.members.iter().copied()), ())
                        .with_max_append_entries(header.max_append_entries)
                        .with_check_quorum(header.check_quorum)
                        .with_pre_vote(header.pre_vote)
                        .with_parallel_write(header.parallel_write)
                        .with_max_inflight(header.max_inflight);
                self.initial = Some(server.clone());
                self.durable_candidates = vec![(server.clone(), None)];
                self.server = Some(server);
            }
            (Start::Init, Some(_)) => {
                return Err(self.fail(
                    at,
                    None,
                    "the node started fresh (init) although it already had state: it lost its \
                     data and may vote twice"
                        .to_string(),
                    Vec::new(),
                ));
            }
            (Start::Restart, None) => {
                return Err(self.fail(
                    at,
                    None,
                    "the trace begins at a restart: the run before it is missing (record traces \
                     from the node's first start)"
                        .to_string(),
                    Vec::new(),
                ));
            }
            (Start::Restart, Some(_)) => self.expect_restart = true,
        }
        if let Some(previous) = &self.header
            && (previous.cluster != header.cluster || previous.members != header.members)
        {
            return Err(self.fail(
                at,
                None,
                format!(
                    "cluster {:?} members {:?}, but the trace began as cluster {:?} members {:?}",
                    header.cluster, header.members, previous.cluster, previous.members
                ),
                Vec::new(),
            ));
        }
        self.header = Some(header.clone());
        Ok(())
    }

    fn event(
        &mut self,
        at: &Located,
        event: &Event<Value>,
        cluster: &mut Cluster,
    ) -> Result<(), Failure> {
        let action = event.action();
        self.check_node(at, event.node, Some(action))?;
        // Taken, not cloned: a failure ends the replay anyway.
        let Some(mut server) = self.server.take() else {
            return Err(self.fail(
                at,
                Some(action),
                "an event before any header".to_string(),
                Vec::new(),
            ));
        };
        let restart = action == Action::Restart;
        if self.expect_restart != restart {
            let problem = if self.expect_restart {
                "the process restarted, but the next event is not Restart"
            } else {
                "a Restart event without a process start (header) before it"
            };
            return Err(self.fail(at, Some(action), problem.to_string(), Vec::new()));
        }
        // Restore the step's whole input. A received message: the network's
        // copy, with its commands and snapshot image (the run above waited
        // until some event had sent it).
        let origin = Origin {
            source: self.origin_source.clone(),
            line: at.line,
            node: self.node.unwrap_or_default(),
            action,
        };
        if let Some(message) = event.step.message() {
            cluster.consume(message);
        }
        let mut delivered = match event.step.message() {
            Some(message) => {
                let Some(sent) = cluster.network.get_mut(message) else {
                    return Err(self.fail(
                        at,
                        Some(action),
                        "internal: a receive ran before its send".to_string(),
                        Vec::new(),
                    ));
                };
                if sent.received.is_none() {
                    sent.received = Some(origin.clone());
                }
                Some(sent.full.clone())
            }
            None => None,
        };
        // A restart: the durable state the node came back with.
        match (&event.recovered, restart) {
            (Some(recovered), true) => {
                server = self.recover(at, recovered, cluster)?;
                self.restarts += 1;
                self.expect_restart = false;
            }
            (None, true) => {
                return Err(self.fail(
                    at,
                    Some(action),
                    "a Restart event without the durable state it recovered".to_string(),
                    Vec::new(),
                ));
            }
            (Some(_), false) => {
                return Err(self.fail(
                    at,
                    Some(action),
                    "a recovered durable state on an event that is not Restart".to_string(),
                    Vec::new(),
                ));
            }
            (None, false) => {}
        }
        let step = event.step.clone().map(
            std::sync::Arc::new,
            |image| image,
            |_| {
                delivered
                    .take()
                    .expect("a handler step's message was looked up above")
            },
        );
        // The one dispatch: the model takes the step, whatever its action.
        let effects = server.step(step).map_err(|refused| {
            self.fail(
                at,
                Some(action),
                format!("the model refuses the step: {refused}"),
                Vec::new(),
            )
        })?;
        self.compare(at, event, &server, &effects)?;
        let step_index = cluster.merged;
        let produced = cluster.produce(&effects.messages, &origin);
        if cluster.options.keep_run {
            cluster.steps.push(MergedStep {
                step: RunStep {
                    node: origin.node,
                    action,
                    step: Some(event.step.clone()),
                    server: server.clone(),
                    source: at.source.clone(),
                    line: at.line,
                },
                lost: false,
            });
        }
        cluster.merged += 1;
        self.durable_candidates.push((
            server.clone(),
            Some(Tentative {
                step: step_index,
                produced,
            }),
        ));
        self.server = Some(server);
        self.events += 1;
        cluster.sweep()
    }

    /// Picks the durable state the node came back with, marking the events
    /// after it lost. A leader writing in parallel may have come back with
    /// more of its log than it knew durable: its write completed, and it
    /// crashed before it learnt so. The run then takes that `LogPersisted`
    /// just before the crash (a step of the spec's behaviour the trace could
    /// not record).
    fn recover(
        &mut self,
        at: &Located,
        recovered: &Durable,
        cluster: &mut Cluster,
    ) -> Result<ReplayServer, Failure> {
        let found = self
            .durable_candidates
            .iter()
            .rposition(|(candidate, _)| Durable::of(candidate) == *recovered)
            .map(|position| (position, None))
            .or_else(|| {
                self.durable_candidates.iter().enumerate().rev().find_map(
                    |(position, (candidate, _))| {
                        let log = candidate.log();
                        (candidate.durable_index() + 1..=log.last_index())
                            .find(|&k| Durable::with_log_to(candidate, k) == *recovered)
                            .map(|k| (position, Some(k)))
                    },
                )
            });
        let Some((position, written)) = found else {
            let expected = self.durable_candidates.first().map(|(s, _)| Durable::of(s));
            return Err(self.fail(
                at,
                Some(Action::Restart),
                "the node recovered a durable state that matches no state since its last \
                 persisted point (it lost or invented durable state)"
                    .to_string(),
                diff(
                    &expected,
                    recovered,
                    "durable state at the last persisted point",
                ),
            ));
        };
        for (_, tentative) in self.durable_candidates.drain(position + 1..) {
            if let Some(tentative) = tentative {
                cluster.undo(tentative.step, &tentative.produced);
            }
        }
        let (mut recovered, _) = self.durable_candidates.pop().expect("the position found");
        if let Some(index) = written {
            recovered = self.completed_write(at, recovered, index, cluster)?;
        }
        // What a crash keeps: the persistent state, the log up to what is
        // durable (a leader's unwritten entries are gone).
        if recovered.durable_index() < recovered.log().last_index() {
            recovered = raft_model::Durable::of(&recovered).recover(&recovered);
        }
        // What it recovered is durable: a later crash cannot go back before it.
        self.durable_candidates = vec![(recovered.clone(), None)];
        Ok(recovered)
    }

    /// The `LogPersisted` up to `index` of a write that completed before a
    /// crash the node learnt it: taken by the model and kept in the run.
    fn completed_write(
        &self,
        at: &Located,
        mut server: ReplayServer,
        index: raft_model::Index,
        cluster: &mut Cluster,
    ) -> Result<ReplayServer, Failure> {
        let term = server.log().term_at(index).unwrap_or_default();
        let step =
            raft_model::Step::<Command, (), Message<Command, ()>>::LogPersisted { index, term };
        server.step(step).map_err(|refused| {
            self.fail(
                at,
                Some(Action::LogPersisted),
                format!("the model refuses the write the recovered log implies: {refused}"),
                Vec::new(),
            )
        })?;
        if cluster.options.keep_run {
            cluster.steps.push(MergedStep {
                step: RunStep {
                    node: self.node.unwrap_or_default(),
                    action: Action::LogPersisted,
                    step: Some(raft_model::Step::LogPersisted { index, term }),
                    server: server.clone(),
                    source: at.source.clone(),
                    line: at.line,
                },
                lost: false,
            });
        }
        cluster.merged += 1;
        Ok(server)
    }

    fn compare(
        &self,
        at: &Located,
        event: &Event<Value>,
        server: &ReplayServer,
        effects: &Effects<Command, ()>,
    ) -> Result<(), Failure> {
        let action = Some(event.action());
        let mut state = State::of(server);
        if event.state.durable_index.is_none() {
            // A trace written before the durable index was recorded.
            state.durable_index = None;
        }
        self.expect_same(at, action, "state differs", &state, &event.state)?;
        self.expect_same(
            at,
            action,
            "persist request differs",
            &effects.persist,
            &event.persist,
        )?;
        if event.parallel_log_from != effects.parallel_log_from {
            return Err(self.fail(
                at,
                action,
                "the recorded parallel write differs from the model's".to_string(),
                vec![format!(
                    "parallel_log_from: model {:?}, recorded {:?}",
                    effects.parallel_log_from, event.parallel_log_from
                )],
            ));
        }
        if let Some(written) = &event.written {
            let model = Written::of(server, &effects.persist);
            self.expect_same(
                at,
                action,
                "entries written differ",
                &model.as_ref(),
                &Some(written),
            )?;
        }
        let sent = Sent::of(&effects.messages);
        self.expect_same(at, action, "messages sent differ", &sent, &event.sent)?;
        Ok(())
    }

    /// Fails, naming `what` ("state differs"), when the recorded value is not
    /// what replaying the step through the model gave.
    fn expect_same<T: PartialEq + serde::Serialize>(
        &self,
        at: &Located,
        action: Option<Action>,
        what: &str,
        model: &T,
        recorded: &T,
    ) -> Result<(), Failure> {
        if model == recorded {
            return Ok(());
        }
        Err(self.fail(
            at,
            action,
            format!("the recorded {what} from the model's"),
            diff(model, recorded, "model"),
        ))
    }
}

/// Field-by-field differences of two serializable values.
fn diff<A: serde::Serialize, B: serde::Serialize>(
    expected: &A,
    recorded: &B,
    expected_name: &str,
) -> Vec<String> {
    let a = serde_json::to_value(expected).unwrap_or(Value::Null);
    let b = serde_json::to_value(recorded).unwrap_or(Value::Null);
    match (&a, &b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = Vec::new();
            for (field, xv) in x {
                let yv = y.get(field).unwrap_or(&Value::Null);
                if xv != yv {
                    out.push(format!("{field}: {expected_name} {xv}, recorded {yv}"));
                }
            }
            for (field, yv) in y {
                if !x.contains_key(field) {
                    out.push(format!("{field}: {expected_name} (absent), recorded {yv}"));
                }
            }
            out
        }
        _ => vec![format!("{expected_name} {a}, recorded {b}")],
    }
}
