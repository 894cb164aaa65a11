//! Counterexamples and examples, three ways: a numbered list of spec actions
//! with what each changed, a Mermaid sequence diagram, and a JSON trace.
//!
//! ## JSON trace schema (`raft-checker-trace/1`)
//! ```text
//! {
//!   "schema": "raft-checker-trace/1",
//!   "bound": { "servers": 3, "max_term": 2, ... },   // the Bounds, flag names in snake_case
//!   "bug": "vote-twice" | null,                       // the seeded bug, if any
//!   "property": "ElectionSafety",
//!   "expectation": "always" | "sometimes",            // always: a counterexample
//!   "init": <State>,                                  // the initial state
//!   "steps": [ { "step": 1,
//!                "action": "HandleRequestVoteRequest", // the spec's action name
//!                "server": 2 | null,                   // the server that acted (null: DropMessage)
//!                "message": <Message> | null,          // the message delivered or dropped
//!                "state": <State> } ]                  // the state after the step
//! }
//! <State>   = { "servers": [<Server>...], "network": [<Message>...],
//!               "elected": [[term, id]...], "committed": [[index, term, leader_term]...],
//!               "client_requests", "restarts", "compactions", "leader_append_only_violated" }
//! <Server>, <Message>: raft_model's serde form (field names of the Rust structs).
//! ```

use std::fmt::Write as _;

use serde::Serialize;

use crate::action::Action;
use crate::bounds::Bounds;
use crate::describe;
use crate::state::{Msg, RaftServer, RaftState};

pub const SCHEMA: &str = "raft-checker-trace/1";

/// One discovered path: the states and the action taken from each.
pub struct Trace<'a> {
    pub bounds: &'a Bounds,
    pub bug: Option<&'a str>,
    pub property: &'a str,
    pub expectation: &'a str,
    pub path: &'a [(RaftState, Option<Action>)],
}

#[derive(Serialize)]
struct JsonTrace<'a> {
    schema: &'static str,
    bound: &'a Bounds,
    bug: Option<&'a str>,
    property: &'a str,
    expectation: &'a str,
    init: &'a RaftState,
    steps: Vec<JsonStep<'a>>,
}

#[derive(Serialize)]
struct JsonStep<'a> {
    step: usize,
    action: &'static str,
    server: Option<u64>,
    message: Option<&'a Msg>,
    state: &'a RaftState,
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

    pub fn to_json(&self) -> serde_json::Result<String> {
        let Some((init, _)) = self.path.first() else {
            return Ok("null".to_string());
        };
        let steps = self
            .steps()
            .enumerate()
            .map(|(k, (_, action, after))| JsonStep {
                step: k + 1,
                action: action.name(),
                server: action.server(),
                message: action.message(),
                state: after,
            })
            .collect();
        serde_json::to_string_pretty(&JsonTrace {
            schema: SCHEMA,
            bound: self.bounds,
            bug: self.bug,
            property: self.property,
            expectation: self.expectation,
            init,
            steps,
        })
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
        let mut field = |label: &str, old: String, new: String| {
            if old != new {
                out.push(format!("{name}.{label}: {old} -> {new}"));
            }
        };
        field(
            "currentTerm",
            a.current_term().to_string(),
            b.current_term().to_string(),
        );
        field(
            "votedFor",
            describe::optional_server(a.voted_for()),
            describe::optional_server(b.voted_for()),
        );
        field(
            "role",
            describe::role(a.role()).into(),
            describe::role(b.role()).into(),
        );
        field("log", describe::log(a), describe::log(b));
        field(
            "snapshot.image",
            describe::entries(a.snapshot().data.iter()),
            describe::entries(b.snapshot().data.iter()),
        );
        field(
            "commitIndex",
            a.commit_index().to_string(),
            b.commit_index().to_string(),
        );
        field(
            "leaderId",
            describe::optional_server(a.leader_id()),
            describe::optional_server(b.leader_id()),
        );
        field(
            "votesGranted",
            ids(a.votes_granted().iter()),
            ids(b.votes_granted().iter()),
        );
        field(
            "nextIndex",
            index_map(a.next_index().iter()),
            index_map(b.next_index().iter()),
        );
        field(
            "matchIndex",
            index_map(a.match_index().iter()),
            index_map(b.match_index().iter()),
        );
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
    let counters = [
        (
            "clientRequests",
            before.client_requests,
            after.client_requests,
        ),
        ("restarts", before.restarts, after.restarts),
        ("compactions", before.compactions, after.compactions),
    ];
    for (label, old, new) in counters {
        if old != new {
            out.push(format!("{label}: {old} -> {new}"));
        }
    }
    if after.leader_append_only_violated && !before.leader_append_only_violated {
        out.push("a leader's log lost or changed an entry within its term".to_string());
    }
    for message in after
        .network
        .iter()
        .filter(|m| !before.network.contains(*m))
    {
        out.push(format!("+ {}", describe::message(message)));
    }
    for message in before
        .network
        .iter()
        .filter(|m| !after.network.contains(*m))
    {
        out.push(format!("- {}", describe::message(message)));
    }
    if out.is_empty() {
        out.push("(no change)".to_string());
    }
    out
}

fn ids<'a>(ids: impl Iterator<Item = &'a u64>) -> String {
    let names: Vec<String> = ids.map(|id| describe::server_name(*id)).collect();
    format!("{{{}}}", names.join(", "))
}

fn index_map<'a>(entries: impl Iterator<Item = (&'a u64, &'a u64)>) -> String {
    let items: Vec<String> = entries
        .map(|(id, index)| format!("{}: {index}", describe::server_name(*id)))
        .collect();
    format!("{{{}}}", items.join(", "))
}
