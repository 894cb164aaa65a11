//! Export of a validated run as ITF JSON, the Informal Trace Format that
//! Apalache writes and the TLA+ trace tooling reads
//! (<https://apalache-mc.org/docs/adr/015adr-trace.html>).
//!
//! One ITF state per step (the first is `Init`), holding the spec's
//! per-server variables as maps from server id, every one of raft-trace's
//! table ([`crate::vars`], spec/Raft.tla's names): `currentTerm`, `votedFor`,
//! `log` (the entries after the snapshot, `[term, payload]` records),
//! `snapshotIndex`, `snapshotTerm`, `snapshot` (`[lastIndex, lastTerm,
//! config]`: a trace does not hold the image), `config`, `role`,
//! `commitIndex`, `leaderId`, `votesGranted`, `nextIndex`, `matchIndex`,
//! `readSeq`, `readAcks`, `pendingReads` (`[id, seq]` records). `Nil` is 0
//! (no server has id 0); a payload is `"Noop"` or the command's JSON text.
//! Each state's `#meta` names the action and the server that took it. The
//! network is not exported: it is every message ever sent, and it follows
//! from the actions.

use std::collections::BTreeMap;

use raft_model::{Config, NodeId, Payload};
use serde_json::{Value, json};

use crate::validate::{Command, ReplayServer, Validated};
use crate::vars::{self, Variable};

/// The ITF variables, in the order they are listed: raft-trace's table.
pub fn variables() -> Vec<&'static str> {
    vars::per_server::<Command, ()>()
        .iter()
        .map(|v| v.name)
        .collect()
}

fn map(servers: &BTreeMap<NodeId, ReplayServer>, variable: &Variable<Command, ()>) -> Value {
    let pairs: Vec<Value> = servers
        .iter()
        .map(|(id, s)| json!([id, itf(&variable.of(s))]))
        .collect();
    json!({ "#map": pairs })
}

fn set(ids: &[NodeId]) -> Value {
    json!({ "#set": ids })
}

fn payload(p: &Payload<Command>) -> Value {
    match p {
        Payload::Noop => json!("Noop"),
        Payload::Command(c) => json!(c.to_string()),
        Payload::Config(c) => config(c),
    }
}

/// A configuration as the spec's record `[members, old, learners]`.
fn config(c: &Config) -> Value {
    let members: Vec<NodeId> = c.members.iter().copied().collect();
    let old: Vec<NodeId> = c.old.iter().flatten().copied().collect();
    let learners: Vec<NodeId> = c.learners.iter().copied().collect();
    json!({ "members": set(&members), "old": set(&old), "learners": set(&learners) })
}

/// A variable's value in ITF: sets as `#set`, functions as `#map`, `Nil` 0.
fn itf(value: &vars::Value<'_, Command, ()>) -> Value {
    match value {
        vars::Value::Nat(n) => json!(n),
        vars::Value::Server(id) => json!(id.unwrap_or(0)),
        vars::Value::Role(role) => json!(format!("{role:?}")),
        vars::Value::Bool(b) => json!(b),
        vars::Value::Servers(ids) => set(ids),
        vars::Value::Function(pairs) => {
            let pairs: Vec<Value> = pairs.iter().map(|(k, v)| json!([k, v])).collect();
            json!({ "#map": pairs })
        }
        vars::Value::Log(log) => log
            .entries
            .iter()
            .map(|e| json!({ "term": e.term, "payload": payload(&e.payload) }))
            .collect(),
        vars::Value::Snapshot(snapshot) => {
            json!({
                "lastIndex": snapshot.meta.last_index,
                "lastTerm": snapshot.meta.last_term,
                "config": config(&snapshot.meta.config),
            })
        }
        vars::Value::Reads(reads) => reads
            .iter()
            .map(|r| json!({ "id": r.id, "seq": r.seq }))
            .collect(),
        vars::Value::Config(c) => config(c),
    }
}

fn state(servers: &BTreeMap<NodeId, ReplayServer>, index: usize, meta: Value) -> Value {
    let mut object = serde_json::Map::new();
    let mut meta = meta;
    if let Value::Object(m) = &mut meta {
        m.insert("index".to_string(), json!(index));
    }
    object.insert("#meta".to_string(), meta);
    for variable in vars::per_server::<Command, ()>() {
        object.insert(variable.name.to_string(), map(servers, &variable));
    }
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
        "vars": variables(),
        "states": states,
    })
}
