//! Export of a validated run as ITF JSON, the Informal Trace Format that
//! Apalache writes and the TLA+ trace tooling reads
//! (<https://apalache-mc.org/docs/adr/015adr-trace.html>).
//!
//! One ITF state per step (the first is `Init`), holding the spec's
//! per-server variables as maps from server id: `currentTerm`, `votedFor`,
//! `log` (the entries after the snapshot, `[term, payload]` records),
//! `snapshotIndex`, `snapshotTerm`, `config`, `role`, `commitIndex`,
//! `leaderId`, `votesGranted`, `nextIndex`, `matchIndex`, `readSeq`. `Nil`
//! is 0 (no server has id 0); a payload is `"Noop"` or the command's JSON
//! text. Each state's `#meta` names the action and the server that took it.
//! The network is not exported: it is every message ever sent, and it
//! follows from the actions.

use std::collections::BTreeMap;

use raft_model::{NodeId, Payload};
use serde_json::{Value, json};

use crate::validate::{ReplayServer, Validated};

/// The ITF variables, in the order they are listed.
pub const VARIABLES: [&str; 13] = [
    "currentTerm",
    "votedFor",
    "log",
    "snapshotIndex",
    "snapshotTerm",
    "config",
    "role",
    "commitIndex",
    "leaderId",
    "votesGranted",
    "nextIndex",
    "matchIndex",
    "readSeq",
];

fn map<T>(servers: &BTreeMap<NodeId, ReplayServer>, f: impl Fn(&ReplayServer) -> T) -> Value
where
    T: Into<Value>,
{
    let pairs: Vec<Value> = servers
        .iter()
        .map(|(id, s)| json!([id, f(s).into()]))
        .collect();
    json!({ "#map": pairs })
}

fn set(ids: impl Iterator<Item = NodeId>) -> Value {
    json!({ "#set": ids.collect::<Vec<_>>() })
}

fn index_map(m: &imbl::OrdMap<NodeId, u64>) -> Value {
    let pairs: Vec<Value> = m.iter().map(|(k, v)| json!([k, v])).collect();
    json!({ "#map": pairs })
}

fn payload(p: &Payload<Value>) -> Value {
    match p {
        Payload::Noop => json!("Noop"),
        Payload::Command(c) => json!(c.to_string()),
    }
}

fn state(servers: &BTreeMap<NodeId, ReplayServer>, index: usize, meta: Value) -> Value {
    let mut object = serde_json::Map::new();
    let mut meta = meta;
    if let Value::Object(m) = &mut meta {
        m.insert("index".to_string(), json!(index));
    }
    object.insert("#meta".to_string(), meta);
    object.insert("currentTerm".into(), map(servers, |s| s.current_term()));
    object.insert(
        "votedFor".into(),
        map(servers, |s| s.voted_for().unwrap_or(0)),
    );
    object.insert(
        "log".into(),
        map(servers, |s| {
            s.log()
                .entries
                .iter()
                .map(|e| json!({ "term": e.term, "payload": payload(&e.payload) }))
                .collect::<Vec<_>>()
        }),
    );
    object.insert(
        "snapshotIndex".into(),
        map(servers, |s| s.log().snapshot_index),
    );
    object.insert(
        "snapshotTerm".into(),
        map(servers, |s| s.log().snapshot_term),
    );
    object.insert(
        "config".into(),
        map(servers, |s| set(s.config().members.iter().copied())),
    );
    object.insert("role".into(), map(servers, |s| format!("{:?}", s.role())));
    object.insert("commitIndex".into(), map(servers, |s| s.commit_index()));
    object.insert(
        "leaderId".into(),
        map(servers, |s| s.leader_id().unwrap_or(0)),
    );
    object.insert(
        "votesGranted".into(),
        map(servers, |s| set(s.votes_granted().iter().copied())),
    );
    object.insert(
        "nextIndex".into(),
        map(servers, |s| index_map(s.next_index())),
    );
    object.insert(
        "matchIndex".into(),
        map(servers, |s| index_map(s.match_index())),
    );
    object.insert("readSeq".into(), map(servers, |s| s.read_seq()));
    Value::Object(object)
}

/// The run as an ITF trace. `source` names where it came from.
pub fn export(validated: &Validated, source: &str) -> Value {
    let mut servers = validated.initial.clone();
    let mut states = vec![state(&servers, 0, json!({ "action": "Init" }))];
    for (k, step) in validated.run.iter().enumerate() {
        servers.insert(step.node, step.server.clone());
        let meta = json!({
            "action": step.action.name(),
            "server": step.node.to_string(),
            "source": format!("{}:{}", step.source, step.line),
        });
        states.push(state(&servers, k + 1, meta));
    }
    json!({
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": source,
            "description": "a run validated against raft-model by raft-interop (spec/Raft.tla variables)",
        },
        "vars": VARIABLES,
        "states": states,
    })
}
