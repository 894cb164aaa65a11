//! Counterexamples and examples, three ways: a numbered list of spec actions
//! with what each changed, a Mermaid sequence diagram, and a trace in the
//! format the node records, `raft-trace/5` (raft-trace's crate docs and
//! interop/README.md define it), which `raft-interop validate` replays
//! through the correct core exactly as it replays a run of the node.
//!
//! ## The trace file
//! One JSON object per line:
//! ```text
//! {"kind":"checker","bound":{"servers":3,...},"bug":"vote-twice"|null,
//!  "property":"ElectionSafety","expectation":"always"|"sometimes"}   // the context
//! {"kind":"header","schema":"raft-trace/5","node":1,...,"start":"init"}  // one per server
//! {"kind":"event","node":2,"step":{"HandleRequestVoteRequest":<message>},"state":...,
//!  "persist":...,"written":...,"sent":[...]}                         // one per step
//! {"kind":"persisted","node":2}                                      // after each event
//! {"kind":"drop","message":<message>}                                // DropMessage
//! {"kind":"duplicate","message":<message>}                           // DuplicateMessage
//! ```
//! A step is atomic, so each event is followed by a `persisted` line; a
//! `Restart` is preceded by a header that says so and carries the durable
//! state the server came back with (its durable image, which a seeded bug
//! that omits a write makes differ from its state before the crash), as a
//! node's restart does. `state` is
//! the acting server's spec variables after the step; the network and the
//! histories are not written (they follow from the steps).

use std::fmt::Write as _;

use raft_model::Step;
use raft_trace::format::{Context, Durable, Event, Header, Line, SCHEMA, Start, strip, traced};
use raft_trace::vars::{self, Value};

use crate::action::Action;
use crate::bounds::Bounds;
use crate::describe;
use crate::state::{Command, Image, RaftServer, RaftState};

/// One discovered path: the states and the action taken from each.
pub struct Trace<'a> {
    pub bounds: &'a Bounds,
    pub bug: Option<&'a str>,
    pub property: &'a str,
    pub expectation: &'a str,
    pub path: &'a [(RaftState, Option<Action>)],
}

impl Trace<'_> {
    /// (state before, action, state after) for each step.
    fn steps(&self) -> impl Iterator<Item = (&RaftState, &Action, &RaftState)> {
        self.path.windows(2).filter_map(|pair| {
            let action = pair[0].1.as_ref()?;
            Some((&pair[0].0, action, &pair[1].0))
        })
    }

    pub fn step_count(&self) -> usize {
        self.path.len().saturating_sub(1)
    }

    /// The trace as `raft-trace/5` lines (see the module docs).
    pub fn to_lines(&self) -> serde_json::Result<String> {
        let mut out = String::new();
        let Some((init, _)) = self.path.first() else {
            return Ok(out);
        };
        let mut push = |line: &Line<Command>| -> serde_json::Result<()> {
            out += &serde_json::to_string(line)?;
            out.push('\n');
            Ok(())
        };
        push(&Line::Checker(Context {
            bound: serde_json::to_value(self.bounds)?,
            bug: self.bug.map(str::to_string),
            property: self.property.to_string(),
            expectation: self.expectation.to_string(),
        }))?;
        let header = |server: &RaftServer, start| Header {
            schema: SCHEMA.to_string(),
            node: server.id(),
            cluster: format!("checker:{}", self.property),
            members: server.config().members.iter().copied().collect(),
            max_append_entries: server.max_append_entries(),
            check_quorum: server.check_quorum_enabled(),
            pre_vote: server.pre_vote_enabled(),
            parallel_write: server.parallel_write_enabled(),
            max_inflight: server.max_inflight(),
            start,
            unix_ms: 0,
        };
        for server in &init.servers {
            push(&Line::Header(header(server, Start::Init)))?;
        }
        for (before, action, after) in self.steps() {
            let (id, step) = match action {
                Action::DropMessage(message) => {
                    push(&Line::Drop {
                        message: strip(message),
                    })?;
                    continue;
                }
                Action::DuplicateMessage(message) => {
                    push(&Line::Duplicate {
                        message: strip(message),
                    })?;
                    continue;
                }
                Action::Server { server, step } => (*server, step),
            };
            let (server_before, server_after) = (before.server(id), after.server(id));
            // A Restart: the server comes back from its durable image (what
            // its storage holds, not what it held in memory), as on the path.
            let mut acting = match step {
                Step::Restart => before.durable_image(id).recover(server_before),
                _ => server_before.clone(),
            };
            let recovered = matches!(step, Step::Restart).then(|| Durable::of(&acting));
            if recovered.is_some() {
                push(&Line::Header(header(server_before, Start::Restart)))?;
            }
            // The step's effects: the core takes it again on the state before
            // (it took it on the path, so it does not refuse).
            let effects = acting.step(step.clone()).unwrap_or_default();
            let event = Event::of(traced(step), recovered, server_after, &effects);
            push(&Line::Event(Box::new(event)))?;
            push(&Line::Persisted { node: id })?;
        }
        Ok(out)
    }

    /// The numbered list: each spec action, then what it changed.
    pub fn numbered(&self) -> String {
        let mut out = String::new();
        for (k, (before, action, after)) in self.steps().enumerate() {
            let _ = writeln!(out, "{:>3}. {action}", k + 1);
            for change in changes(before, action, after) {
                let _ = writeln!(out, "       {change}");
            }
        }
        out
    }

    /// A Mermaid `sequenceDiagram`: deliveries as arrows from sender to
    /// receiver, local actions as notes, the property at the end.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        let Some((init, _)) = self.path.first() else {
            return out;
        };
        for server in &init.servers {
            let _ = writeln!(
                out,
                "    participant {}",
                describe::server_name(server.id())
            );
        }
        for (k, (before, action, after)) in self.steps().enumerate() {
            let n = k + 1;
            let headline = action
                .server()
                .map(|id| server_headline(before.server(id), after.server(id)))
                .unwrap_or_default();
            match (action, action.message()) {
                (Action::DropMessage(m), _) => {
                    let _ = writeln!(
                        out,
                        "    {}-x{}: {n}. dropped {} t{}",
                        describe::server_name(m.from),
                        describe::server_name(m.to),
                        m.body.kind(),
                        m.term
                    );
                }
                (Action::DuplicateMessage(m), _) => {
                    let _ = writeln!(
                        out,
                        "    Note over {},{}: {n}. network duplicated {} t{}",
                        describe::server_name(m.from),
                        describe::server_name(m.to),
                        m.body.kind(),
                        m.term
                    );
                }
                (_, Some(m)) => {
                    let _ = writeln!(
                        out,
                        "    {}->>{}: {n}. {} t{} {}",
                        describe::server_name(m.from),
                        describe::server_name(m.to),
                        m.body.kind(),
                        m.term,
                        mermaid_text(&describe::body(&m.body))
                    );
                    if !headline.is_empty() {
                        let _ = writeln!(
                            out,
                            "    Note right of {}: {}",
                            describe::server_name(m.to),
                            mermaid_text(&headline)
                        );
                    }
                }
                (_, None) => {
                    let id = action.server().unwrap_or(1);
                    let _ = writeln!(
                        out,
                        "    Note over {}: {n}. {} {}",
                        describe::server_name(id),
                        action.name(),
                        mermaid_text(&headline)
                    );
                }
            }
        }
        let first = init.servers.first().map_or(1, |s| s.id());
        let last = init.servers.last().map_or(1, |s| s.id());
        let verdict = if self.expectation == "always" {
            "violated"
        } else {
            "reached"
        };
        let _ = writeln!(
            out,
            "    Note over {},{}: {} {verdict}",
            describe::server_name(first),
            describe::server_name(last),
            self.property
        );
        out
    }
}

/// Mermaid treats `;` and `#` specially in message text.
fn mermaid_text(text: &str) -> String {
    text.replace(';', ",").replace('#', "no.")
}

/// The fields a diagram note shows when they change: role, term, commit, log.
fn server_headline(before: &RaftServer, after: &RaftServer) -> String {
    let mut parts = Vec::new();
    if before.role() != after.role() || before.current_term() != after.current_term() {
        parts.push(format!(
            "{} t{}",
            describe::role(after.role()),
            after.current_term()
        ));
    }
    if before.voted_for() != after.voted_for() {
        parts.push(format!(
            "votedFor {}",
            describe::optional_server(after.voted_for())
        ));
    }
    if before.log() != after.log() || before.snapshot() != after.snapshot() {
        parts.push(format!("log {}", describe::log(after)));
    }
    if before.commit_index() != after.commit_index() {
        parts.push(format!("commit {}", after.commit_index()));
    }
    parts.join(", ")
}

/// Every change a step made, one line each: server fields, histories,
/// counters, messages added and removed.
pub fn changes(before: &RaftState, action: &Action, after: &RaftState) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(id) = action.server() {
        let (a, b) = (before.server(id), after.server(id));
        let name = describe::server_name(id);
        // The durable index is news only where it is not the log's end
        // (a leader writing in parallel): elsewhere it follows the log.
        let writing = |s: &crate::state::RaftServer| s.durable_index() < s.log().last_index();
        let durable_news = writing(a) || writing(b);
        for variable in vars::per_server::<Command, Image>() {
            if variable.name == "durableIndex" && !durable_news {
                continue;
            }
            let (old, new) = (variable.of(a), variable.of(b));
            if old != new {
                out.push(format!(
                    "{name}.{}: {} -> {}",
                    variable.name,
                    render(&old),
                    render(&new)
                ));
            }
        }
    }
    for (term, id) in after
        .elected
        .iter()
        .filter(|e| !before.elected.contains(*e))
    {
        out.push(format!(
            "elected += (t{term}, {})",
            describe::server_name(*id)
        ));
    }
    for (index, term, leader_term) in after
        .committed
        .iter()
        .filter(|c| !before.committed.contains(*c))
    {
        out.push(format!(
            "committed += (index {index}, t{term}, by leader of t{leader_term})"
        ));
    }
    for (k, bound) in after
        .read_bound
        .iter()
        .enumerate()
        .skip(before.read_bound.len())
    {
        out.push(format!(
            "readBound += (read {}, committed up to {bound})",
            k + 1
        ));
    }
    for (id, index) in after
        .reads_ready
        .iter()
        .filter(|r| !before.reads_ready.contains(*r))
    {
        out.push(format!("readsReady += (read {id}, index {index})"));
    }
    let counters = [
        (
            "clientRequests",
            before.client_requests,
            after.client_requests,
        ),
        ("restarts", before.restarts, after.restarts),
        ("compactions", before.compactions, after.compactions),
        ("duplicates", before.duplicates, after.duplicates),
        ("drops", before.drops, after.drops),
        ("reads", before.reads, after.reads),
        ("transfers", before.transfers, after.transfers),
        ("configChanges", before.config_changes, after.config_changes),
        (
            "learnerChanges",
            before.learner_changes,
            after.learner_changes,
        ),
    ];
    // The checker's own guards, counted only when bounded.
    let guarded = [
        ("timeouts", before.timeouts, after.timeouts),
        ("heartbeats", before.heartbeats, after.heartbeats),
    ]
    .into_iter()
    .filter_map(|(label, old, new)| Some((label, old?, new?)));
    for (label, old, new) in counters.into_iter().chain(guarded) {
        if old != new {
            out.push(format!("{label}: {old} -> {new}"));
        }
    }
    if after.leader_append_only_violated && !before.leader_append_only_violated {
        out.push("a leader's log lost or changed an entry within its term".to_string());
    }
    if after.pre_vote_raised_term && !before.pre_vote_raised_term {
        out.push("a term rose by a pre-vote (not by a campaign or a real message)".to_string());
    }
    if after.transfer_log_grew && !before.transfer_log_grew {
        out.push("a leader's log grew while it was handing leadership over".to_string());
    }
    if after.timeout_now_ignored && !before.timeout_now_ignored {
        out.push("a TimeoutNow of its term did not make a voting member campaign".to_string());
    }
    if after.pre_vote_lease_broken && !before.pre_vote_lease_broken {
        out.push("PreVote's lease broken (a grant in lease, a restart without one, or a timeout keeping one)".to_string());
    }
    // The network's change, copy by copy: a delivery takes one (`-`), a send
    // or a duplication adds one (`+`).
    for (message, copies) in after.network.iter() {
        for _ in before.network.count(message)..copies {
            out.push(format!("+ {}", describe::message(message)));
        }
    }
    for (message, copies) in before.network.iter() {
        for _ in after.network.count(message)..copies {
            out.push(format!("- {}", describe::message(message)));
        }
    }
    if out.is_empty() {
        out.push("(no change)".to_string());
    }
    out
}

/// A spec variable's value, for people: servers as `s1`, entries as `t2:c1`.
fn render(value: &Value<'_, Command, Image>) -> String {
    match value {
        Value::Nat(n) => n.to_string(),
        Value::Server(id) => describe::optional_server(*id),
        Value::Role(role) => describe::role(*role).to_string(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Value::Servers(ids) => {
            let names: Vec<String> = ids.iter().map(|id| describe::server_name(*id)).collect();
            format!("{{{}}}", names.join(", "))
        }
        Value::Function(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(id, n)| format!("{}: {n}", describe::server_name(*id)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Log(log) => describe::entries(log.entries.iter()),
        Value::Snapshot(snapshot) => format!(
            "1..{} @t{} image {}",
            snapshot.meta.last_index,
            snapshot.meta.last_term,
            describe::entries(snapshot.data.iter())
        ),
        Value::Config(config) => describe::config(config),
        Value::Reads(reads) => {
            let items: Vec<String> = reads
                .iter()
                .map(|r| format!("read {} round {}", r.id, r.seq))
                .collect();
            format!("[{}]", items.join(", "))
        }
    }
}
