//! The checker's JSON traces (`raft-checker-trace/1`, see checker/src/trace.rs)
//! as node traces: one stream per server, so [`crate::validate`] replays a
//! counterexample exactly as it replays a run of the node. The two formats
//! stay one: a change to either breaks this conversion's tests.
//!
//! The checker records whole states after each step; each step becomes one
//! event of the acting server with its input (the message delivered, the
//! command appended, the index compacted to, the state recovered) and that
//! server's spec variables after it, followed by a `persisted` line (a
//! checker step is atomic: its persistence is done before the next). The
//! network's `DropMessage` steps are not events of any server: the
//! validator's network keeps every message, which only allows more.

use raft_model::{Entry, NodeId, Payload, Server};
use serde::Deserialize;
use serde_json::Value;

use crate::format::{Action, Durable, Event, Header, Input, Line, SCHEMA, Start, State, strip};
use crate::validate::{Failure, Located, Stream};

/// The checker's trace schema this module reads.
pub const CHECKER_SCHEMA: &str = "raft-checker-trace/1";

type CheckerServer = Server<Value, Value>;

#[derive(Deserialize)]
struct CheckerTrace {
    schema: String,
    #[serde(default)]
    property: String,
    init: CheckerState,
    steps: Vec<CheckerStep>,
}

#[derive(Deserialize)]
struct CheckerState {
    servers: Vec<CheckerServer>,
}

#[derive(Deserialize)]
struct CheckerStep {
    step: usize,
    action: String,
    server: Option<NodeId>,
    message: Option<raft_model::Message<Value, Value>>,
    state: CheckerState,
}

/// True if the JSON text is a checker trace (rather than node trace lines).
pub fn is_checker_trace(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains(CHECKER_SCHEMA)
}

/// Converts a checker trace into one stream per server. `source` names the
/// file in error messages; each event's line number is its checker step.
pub fn streams(source: &str, text: &str) -> Result<Vec<Stream>, Failure> {
    let fail = |step: usize, problem: String| Failure {
        source: source.to_string(),
        line: step,
        node: None,
        action: None,
        problem,
        details: Vec::new(),
    };
    let trace: CheckerTrace = serde_json::from_str(text)
        .map_err(|err| fail(0, format!("not a {CHECKER_SCHEMA} trace: {err}")))?;
    if trace.schema != CHECKER_SCHEMA {
        return Err(fail(
            0,
            format!("schema {:?}, expected {CHECKER_SCHEMA:?}", trace.schema),
        ));
    }
    let mut streams: Vec<Stream> = trace
        .init
        .servers
        .iter()
        .map(|s| Stream {
            source: format!("{source}#server{}", s.id()),
            lines: vec![Located {
                source: source.to_string(),
                line: 0,
                content: Line::Header(Header {
                    schema: SCHEMA.to_string(),
                    node: s.id(),
                    cluster: format!("checker:{}", trace.property),
                    members: s.config().members.iter().copied().collect(),
                    max_append_entries: s.max_append_entries(),
                    start: Start::Init,
                    unix_ms: 0,
                }),
            }],
        })
        .collect();
    let mut before = trace.init.servers;
    for step in trace.steps {
        let Some(node) = step.server else {
            before = step.state.servers;
            continue; // DropMessage: the network's step, not a server's
        };
        let action: Action = serde_json::from_value(Value::String(step.action.clone()))
            .map_err(|_| fail(step.step, format!("unknown action {:?}", step.action)))?;
        let position = step
            .state
            .servers
            .iter()
            .position(|s| s.id() == node)
            .ok_or_else(|| fail(step.step, format!("no server {node} in the state")))?;
        let after = &step.state.servers[position];
        let input = match action {
            Action::Timeout | Action::SendAppendEntries => Input::None,
            Action::ClientRequest => match after.log().entries.last() {
                Some(Entry {
                    payload: Payload::Command(command),
                    ..
                }) => Input::Command(command.clone()),
                _ => {
                    return Err(fail(
                        step.step,
                        "ClientRequest without a new command entry".to_string(),
                    ));
                }
            },
            Action::CompactLog => Input::CompactIndex(after.log().snapshot_index),
            Action::Restart => Input::Recovered(Durable::of(&before[position])),
            Action::ReadIndex => {
                return Err(fail(
                    step.step,
                    "the checker has no ReadIndex action".to_string(),
                ));
            }
            _ => match &step.message {
                Some(message) => Input::Message(strip(message)),
                None => return Err(fail(step.step, format!("{action} without a message"))),
            },
        };
        let event = Event {
            node,
            action,
            input,
            state: State::of(after),
            persist: None,
            written: None,
            sent: None,
        };
        let lines = &mut streams[position].lines;
        if action == Action::Restart {
            let Some(Line::Header(first)) = lines.first().map(|l| l.content.clone()) else {
                return Err(fail(
                    step.step,
                    "internal: a stream without its header".to_string(),
                ));
            };
            lines.push(Located {
                source: source.to_string(),
                line: step.step,
                content: Line::Header(Header {
                    start: Start::Restart,
                    ..first
                }),
            });
        }
        lines.push(Located {
            source: source.to_string(),
            line: step.step,
            content: Line::Event(Box::new(event)),
        });
        lines.push(Located {
            source: source.to_string(),
            line: step.step,
            content: Line::Persisted { node },
        });
        before = step.state.servers;
    }
    Ok(streams)
}
