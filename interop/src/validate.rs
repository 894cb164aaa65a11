//! Trace validation: replays every node's events through raft-model.
//!
//! Each node's events are replayed in file order on a fresh model server;
//! the streams are merged greedily: a node runs until its next event receives
//! a message no event has produced yet, then another node runs. The network
//! (like the spec's `messages`) is the set of every message produced, so the
//! merge never has to undo a choice: if some causal order exists, it finds
//! one. For every event, the model must allow the action on the recorded
//! input, and the model's resulting state (and, when recorded, its persist
//! request, written entries and messages) must equal the recorded ones.
//!
//! A crash undoes the events whose batch was not yet durable. At a `Restart`
//! the recovered durable state must equal the model's durable state after
//! some event at or after the node's last `persisted` line; the events after
//! that one are *lost*, and no node may have received a message that only a
//! lost event produced (it can never have been sent: durability before
//! speech). The validated events, lost ones removed, form a linear run of the
//! spec: [`Validated::run`], which the ITF and TLA+ exports read.
//!
//! Every event is replayed the same way, whatever its action: its step's
//! input is restored (the full message from the network, for a handler; the
//! recovered durable state, for a restart) and the model's one dispatcher,
//! [`Server::step`], takes it.
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

use raft_model::{Action, Config, Effects, Message, NodeId, Server};
use serde_json::Value;

use crate::format::{
    Context, Durable, Event, Header, Line, Sent, Start, State, TracedMessage, TracedStep, Written,
    refusal, strip,
};

/// The replay's server: commands kept as JSON, snapshot images left out.
pub type ReplayServer = Server<Value, ()>;

/// One line of a trace with where it came from.
#[derive(Clone, Debug)]
pub struct Located {
    pub source: String,
    pub line: usize,
    pub content: Line<Value>,
}

/// One node's lines, in order.
#[derive(Clone, Debug)]
pub struct Stream {
    pub source: String,
    pub lines: Vec<Located>,
    /// The checker's context, when the stream comes from a checker's trace.
    pub context: Option<Context>,
}

impl Stream {
    /// Reads a trace file: one stream per node whose lines it holds (a
    /// node's file holds one node, a checker's every server). Every line must
    /// parse; a node never writes a partial line (see [`crate::writer`]), so
    /// a bad line is corruption.
    pub fn read(path: &Path) -> Result<Vec<Stream>, Failure> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| Failure::io(path, &err))?;
        Stream::parse(&source, &text)
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
        for (n, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let content: Line<Value> = match serde_json::from_str(raw) {
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
                }),
            }
        }
        if streams.is_empty() {
            streams.push(Stream {
                source: source.to_string(),
                lines: Vec::new(),
                context: None,
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
        self.lines.first().and_then(|l| l.content.node())
    }
}

fn abbreviate(text: &str) -> String {
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
    /// Distinct messages produced.
    pub messages: usize,
    /// Messages the network lost (`drop` lines of a checker's trace).
    pub dropped: usize,
    /// Messages the network duplicated (`duplicate` lines of a checker's trace).
    pub duplicated: usize,
    /// The checker's context, for a checker's trace.
    pub context: Option<Context>,
    /// The network's own steps (a checker's `duplicate` and `drop` lines),
    /// each placed before the step of [`Validated::run`] at its `before`
    /// index (`run.len()`: after the last), for the exports: TraceRaft.tla
    /// must copy a message before a second delivery consumes it.
    pub network_steps: Vec<NetworkStep>,
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

/// Validates the streams of one cluster (one stream per node).
pub fn validate(streams: Vec<Stream>) -> Result<Validated, Failure> {
    validate_with(streams, true)
}

/// Validates; with `keep_run` false, [`Validated::run`] stays empty and a
/// long trace needs far less memory (no server state is kept per step).
pub fn validate_with(streams: Vec<Stream>, keep_run: bool) -> Result<Validated, Failure> {
    let mut cluster = Cluster {
        keep_run,
        ..Cluster::default()
    };
    let context = streams.iter().find_map(|s| s.context.clone());
    let mut nodes: Vec<NodeReplay> = Vec::new();
    for stream in streams {
        nodes.push(NodeReplay::new(stream)?);
    }
    let mut seen = BTreeMap::new();
    for node in &nodes {
        if let Some(other) = seen.insert(node.node, node.source.clone()) {
            return Err(Failure {
                source: node.source.clone(),
                line: 1,
                node: Some(node.node),
                action: None,
                problem: format!("node {} also has the trace {other}", node.node),
                details: Vec::new(),
            });
        }
    }
    loop {
        let mut progressed = false;
        for node in nodes.iter_mut() {
            progressed |= node.run(&mut cluster)?;
        }
        if nodes.iter().all(NodeReplay::done) {
            break;
        }
        if !progressed {
            return Err(deadlock(&nodes, &cluster));
        }
    }
    cluster.check_no_lost_message_received()?;
    let mut events = BTreeMap::new();
    for node in &nodes {
        events.insert(node.node, node.events);
    }
    let initial = nodes
        .iter()
        .filter_map(|n| n.initial.clone().map(|s| (n.node, s)))
        .collect();
    let run: Vec<RunStep> = cluster
        .steps
        .iter()
        .filter(|s| !s.lost && s.kept)
        .map(|s| s.step.clone())
        .collect();
    // A network line recorded when `merged` steps had been merged goes
    // before the first of those steps that is still in the run.
    let network_steps = if keep_run {
        cluster
            .network_lines
            .iter()
            .map(|(merged, action, message)| NetworkStep {
                before: cluster.steps[..*merged]
                    .iter()
                    .filter(|s| !s.lost && s.kept)
                    .count(),
                action,
                message: message.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Validated {
        initial,
        run,
        lost: cluster.steps.iter().filter(|s| s.lost).count(),
        restarts: nodes.iter().map(|n| n.restarts).sum(),
        events,
        messages: cluster.network.len(),
        dropped: cluster.network_count("DropMessage"),
        duplicated: cluster.network_count("DuplicateMessage"),
        context,
        network_steps,
    })
}

/// No node can take its next step: each waits for a message nobody sent.
fn deadlock(nodes: &[NodeReplay], cluster: &Cluster) -> Failure {
    let mut waiting: Vec<(&Located, NodeId)> = nodes
        .iter()
        .filter_map(|n| n.lines.get(n.next).map(|l| (l, n.node)))
        .collect();
    // The earliest line is the likeliest culprit (e.g. a receive moved up).
    waiting.sort_by_key(|(l, node)| (l.line, *node));
    let (first, node) = waiting[0];
    let message = awaited(&first.content)
        .map(|m| serde_json::to_string(m).unwrap_or_default())
        .unwrap_or_default();
    let mut details = vec![format!("message: {}", abbreviate(&message))];
    if let Some(wanted) = awaited(&first.content) {
        details.extend(near_misses(cluster, wanted));
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
        action: match &first.content {
            Line::Event(e) => Some(e.action()),
            _ => None,
        },
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
        .map(|(full, _)| strip(full))
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

#[derive(Default)]
struct Cluster {
    /// Every message produced, by the canonical JSON of its traced form:
    /// the full message (to deliver) and the steps that produced it.
    network: HashMap<String, (Message<Value, ()>, Vec<usize>)>,
    steps: Vec<MergedStep>,
    /// (message key, receiving step) for the lost-message check.
    receipts: Vec<(String, usize)>,
    /// Keep every step's input and server (for the exports).
    keep_run: bool,
    /// The network lines, in order: (merged steps before it, spec action,
    /// message); they also give the counts of messages lost and duplicated.
    network_lines: Vec<(usize, &'static str, raft_trace::TracedMessage)>,
}

struct MergedStep {
    /// The step; its input and server only when the run is kept
    /// ([`validate_with`]): a server per step is what costs memory.
    step: RunStep,
    kept: bool,
    lost: bool,
}

impl Cluster {
    /// Records a network line at the current point of the merged run.
    fn network_line(&mut self, action: &'static str, message: &raft_trace::TracedMessage) {
        let at = self.steps.len();
        self.network_lines.push((at, action, message.clone()));
    }

    /// How many network lines of `action` the run had.
    fn network_count(&self, action: &str) -> usize {
        self.network_lines
            .iter()
            .filter(|(_, a, _)| *a == action)
            .count()
    }

    fn check_no_lost_message_received(&self) -> Result<(), Failure> {
        for (key, receiver) in &self.receipts {
            let producers = &self.network[key].1;
            if producers.iter().all(|p| self.steps[*p].lost) {
                let step = &self.steps[*receiver].step;
                let producer = &self.steps[producers[0]].step;
                return Err(Failure {
                    source: step.source.clone(),
                    line: step.line,
                    node: Some(step.node),
                    action: Some(step.action),
                    problem: format!(
                        "receives a message that only {}:{} (node {}, {}) produced, an event its \
                         node's crash undid: it was never durable, so it can never have been sent",
                        producer.source, producer.line, producer.node, producer.action
                    ),
                    details: vec![format!("message: {}", abbreviate(key))],
                });
            }
        }
        Ok(())
    }
}

fn key(message: &TracedMessage) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

struct NodeReplay {
    node: NodeId,
    source: String,
    lines: Vec<Located>,
    next: usize,
    header: Option<Header>,
    server: Option<ReplayServer>,
    initial: Option<ReplayServer>,
    /// Stands in for the server in steps whose state is not kept.
    placeholder: ReplayServer,
    /// The states the node may recover at its next restart, oldest first:
    /// the state at its last `persisted` line (or process start) and after
    /// every later event, each with the merged step that made it.
    durable_candidates: Vec<(ReplayServer, Option<usize>)>,
    /// A `Restart` event must follow a header that says so.
    expect_restart: bool,
    events: usize,
    restarts: usize,
}

impl NodeReplay {
    fn new(stream: Stream) -> Result<NodeReplay, Failure> {
        let Some(first) = stream.lines.first() else {
            return Err(Failure {
                source: stream.source.clone(),
                line: 0,
                node: None,
                action: None,
                problem: "the trace is empty".to_string(),
                details: Vec::new(),
            });
        };
        let node = match &first.content {
            Line::Header(h) => h.node,
            _ => {
                return Err(Failure {
                    source: stream.source.clone(),
                    line: first.line,
                    node: None,
                    action: None,
                    problem: "a trace must begin with a header line".to_string(),
                    details: Vec::new(),
                });
            }
        };
        Ok(NodeReplay {
            node,
            source: stream.source,
            lines: stream.lines,
            next: 0,
            header: None,
            server: None,
            initial: None,
            placeholder: Server::new(node, Config::new([node]), ()),
            durable_candidates: Vec::new(),
            expect_restart: false,
            events: 0,
            restarts: 0,
        })
    }

    fn done(&self) -> bool {
        self.next >= self.lines.len()
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
            node: Some(self.node),
            action,
            problem,
            details,
        }
    }

    /// Runs as far as possible; true if it took at least one line.
    fn run(&mut self, cluster: &mut Cluster) -> Result<bool, Failure> {
        let mut progressed = false;
        while let Some(next) = self.lines.get(self.next) {
            if let Some(message) = awaited(&next.content)
                && !cluster.network.contains_key(&key(message))
            {
                return Ok(progressed);
            }
            // Taken out, not cloned: a processed line is not needed again.
            let at = std::mem::replace(
                &mut self.lines[self.next],
                Located {
                    source: String::new(),
                    line: 0,
                    content: Line::Persisted { node: self.node },
                },
            );
            match &at.content {
                Line::Header(header) => self.start(&at, header)?,
                Line::Persisted { node } => {
                    self.check_node(&at, *node, None)?;
                    if let Some(server) = &self.server {
                        let step = self.durable_candidates.last().and_then(|(_, s)| *s);
                        self.durable_candidates = vec![(server.clone(), step)];
                    }
                }
                Line::Event(event) => self.event(&at, event, cluster)?,
                // The message was sent (the wait above): the network lost it.
                Line::Drop { message } => cluster.network_line("DropMessage", message),
                // Likewise: the network copied a message that was sent.
                Line::Duplicate { message } => cluster.network_line("DuplicateMessage", message),
                Line::Checker(_) => {}
            }
            self.next += 1;
            progressed = true;
        }
        Ok(progressed)
    }

    fn check_node(
        &self,
        at: &Located,
        node: NodeId,
        action: Option<Action>,
    ) -> Result<(), Failure> {
        if node != self.node {
            return Err(self.fail(
                at,
                action,
                format!("a line of node {node} in the trace of node {}", self.node),
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
                        .with_pre_vote(header.pre_vote);
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
        let Some(mut server) = self.server.clone() else {
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
        let mut delivered = match event.step.message() {
            Some(message) => {
                let key = key(message);
                let Some((full, _)) = cluster.network.get(&key) else {
                    return Err(self.fail(
                        at,
                        Some(action),
                        "internal: a receive ran before its send".to_string(),
                        Vec::new(),
                    ));
                };
                let full = full.clone();
                cluster.receipts.push((key, cluster.steps.len()));
                Some(full)
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
            |command| command,
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
        let step_index = cluster.steps.len();
        for message in &effects.messages {
            cluster
                .network
                .entry(key(&strip(message)))
                .or_insert_with(|| (message.clone(), Vec::new()))
                .1
                .push(step_index);
        }
        let keep = cluster.keep_run;
        cluster.steps.push(MergedStep {
            step: RunStep {
                node: self.node,
                action,
                step: keep.then(|| event.step.clone()),
                server: if keep {
                    server.clone()
                } else {
                    self.placeholder.clone()
                },
                source: at.source.clone(),
                line: at.line,
            },
            kept: keep,
            lost: false,
        });
        self.durable_candidates
            .push((server.clone(), Some(step_index)));
        self.server = Some(server);
        self.events += 1;
        Ok(())
    }

    /// Picks the durable state the node came back with, marking the events
    /// after it lost.
    fn recover(
        &mut self,
        at: &Located,
        recovered: &Durable,
        cluster: &mut Cluster,
    ) -> Result<ReplayServer, Failure> {
        let found = self
            .durable_candidates
            .iter()
            .rposition(|(candidate, _)| Durable::of(candidate) == *recovered);
        let Some(position) = found else {
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
        for (_, step) in &self.durable_candidates[position + 1..] {
            if let Some(step) = step {
                cluster.steps[*step].lost = true;
            }
        }
        Ok(self.durable_candidates[position].0.clone())
    }

    fn compare(
        &self,
        at: &Located,
        event: &Event<Value>,
        server: &ReplayServer,
        effects: &Effects<Value, ()>,
    ) -> Result<(), Failure> {
        let action = Some(event.action());
        let state = State::of(server);
        if state != event.state {
            return Err(self.fail(
                at,
                action,
                "the recorded state differs from the model's".to_string(),
                diff(&state, &event.state, "model"),
            ));
        }
        if let Some(persist) = &event.persist
            && *persist != effects.persist
        {
            return Err(self.fail(
                at,
                action,
                "the recorded persist request differs from the model's".to_string(),
                diff(&effects.persist, persist, "model"),
            ));
        }
        if let Some(written) = &event.written {
            let model = Written::of(server, &effects.persist);
            if model.as_ref() != Some(written) {
                return Err(self.fail(
                    at,
                    action,
                    "the recorded entries written differ from the model's".to_string(),
                    diff(&model, written, "model"),
                ));
            }
        }
        if let Some(sent) = &event.sent {
            let model = Sent::of(&effects.messages);
            if model != *sent {
                return Err(self.fail(
                    at,
                    action,
                    "the recorded messages sent differ from the model's".to_string(),
                    diff(&model, sent, "model"),
                ));
            }
        }
        Ok(())
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
