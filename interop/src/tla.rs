//! Export of a validated run for spec/TraceRaft.tla: the merged events as
//! newline-delimited JSON in the spec's vocabulary, and a TLC config.
//!
//! Each line is `{"node", "action", "msg"?, "index"?, "state"}`: `msg` is the
//! received message with the spec's field names (`entryTerms` for the
//! entries' terms, `lastIndex`/`lastTerm` for a snapshot), `index` the index
//! CompactLog compacted to (or, with `term`, the entry LogPersisted reports
//! durable), `target` the peer TransferLeadership hands
//! leadership to, and `state` the acting server's variables after
//! the step: every scalar variable of raft-trace's table ([`crate::vars`]:
//! `currentTerm`, `votedFor`, `snapshotIndex`, `snapshotTerm`, `role`,
//! `commitIndex`, `leaderId`, `readSeq`, `restartLease`, `leadTransferee`,
//! `durableIndex`;
//! `votedFor`, `leaderId` and `leadTransferee` use 0 for Nil), `lastIndex`, the log's end (`snapshotIndex + Len(log)`),
//! and the configuration as `configMembers`, `configOld` and
//! `configLearners` (lists of servers; `configOld` empty unless joint);
//! `members` is the set ChangeConfig changes the configuration to, and
//! `learners` the set ChangeLearners makes the learners. TLC
//! reads the lines with the standard `Json` module's `ndJsonDeserialize`.

use std::fmt::Write as _;

use raft_model::{Body, Message, Step};
use serde_json::{Value, json};

use crate::validate::Command;

use crate::validate::{NetworkStep, RunStep, Validated};
use crate::vars;

fn message(m: &Message<(), ()>) -> Value {
    let mut r = json!({ "type": m.body.kind(), "from": m.from, "to": m.to, "term": m.term });
    let Value::Object(fields) = &mut r else {
        return r;
    };
    let mut put = |k: &str, v: Value| {
        fields.insert(k.to_string(), v);
    };
    match &m.body {
        Body::RequestVoteRequest {
            last_log_index,
            last_log_term,
            pre_vote,
        } => {
            put("lastLogIndex", json!(last_log_index));
            put("lastLogTerm", json!(last_log_term));
            put("preVote", json!(pre_vote));
        }
        Body::RequestVoteResponse {
            vote_granted,
            pre_vote,
        } => {
            put("voteGranted", json!(vote_granted));
            put("preVote", json!(pre_vote));
        }
        Body::AppendEntriesRequest {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_seq,
        } => {
            put("prevLogIndex", json!(prev_log_index));
            put("prevLogTerm", json!(prev_log_term));
            put(
                "entryTerms",
                json!(entries.iter().map(|e| e.term).collect::<Vec<_>>()),
            );
            put("leaderCommit", json!(leader_commit));
            put("readSeq", json!(read_seq));
        }
        Body::AppendEntriesResponse {
            success,
            match_index,
            conflict_term,
            conflict_index,
            read_seq,
        } => {
            put("success", json!(success));
            put("matchIndex", json!(match_index));
            put("conflictTerm", json!(conflict_term));
            put("conflictIndex", json!(conflict_index));
            put("readSeq", json!(read_seq));
        }
        Body::InstallSnapshotRequest { snapshot } => {
            put("lastIndex", json!(snapshot.meta.last_index));
            put("lastTerm", json!(snapshot.meta.last_term));
        }
        Body::InstallSnapshotResponse { match_index } => put("matchIndex", json!(match_index)),
        Body::TimeoutNow {} => {}
    }
    r
}

/// The acting server's scalar spec variables, and the log's end.
fn state(server: &crate::validate::ReplayServer) -> Value {
    let mut state = serde_json::Map::new();
    for variable in vars::per_server::<Command, ()>() {
        let value = match variable.of(server) {
            vars::Value::Nat(n) => json!(n),
            vars::Value::Server(id) => json!(id.unwrap_or(0)),
            vars::Value::Role(role) => json!(format!("{role:?}")),
            vars::Value::Bool(b) => json!(b),
            _ => continue,
        };
        state.insert(variable.name.to_string(), value);
    }
    state.insert("lastIndex".to_string(), json!(server.log().last_index()));
    let config = server.config();
    let members: Vec<_> = config.members.iter().copied().collect();
    let old: Vec<_> = config.old.iter().flatten().copied().collect();
    state.insert("configMembers".to_string(), json!(members));
    state.insert("configOld".to_string(), json!(old));
    let learners: Vec<_> = config.learners.iter().copied().collect();
    state.insert("configLearners".to_string(), json!(learners));
    Value::Object(state)
}

fn line(step: &RunStep) -> Value {
    let mut r = json!({
        "node": step.node,
        "action": step.action.name(),
        "state": state(&step.server),
    });
    if let Value::Object(fields) = &mut r {
        match &step.step {
            Some(Step::CompactLog { index, .. }) => {
                fields.insert("index".to_string(), json!(index));
            }
            Some(Step::LogPersisted { index, term }) => {
                fields.insert("index".to_string(), json!(index));
                fields.insert("term".to_string(), json!(term));
            }
            Some(Step::TransferLeadership(target)) => {
                fields.insert("target".to_string(), json!(target));
            }
            Some(Step::ChangeConfig(members)) => {
                let members: Vec<_> = members.iter().copied().collect();
                fields.insert("members".to_string(), json!(members));
            }
            Some(Step::ChangeLearners(learners)) => {
                let learners: Vec<_> = learners.iter().copied().collect();
                fields.insert("learners".to_string(), json!(learners));
            }
            Some(traced) => {
                if let Some(m) = traced.message() {
                    fields.insert("msg".to_string(), message(m));
                }
            }
            None => {}
        }
    }
    r
}

/// A network line: `{"action": "DuplicateMessage" | "DropMessage", "msg"}`
/// (TraceRaft.tla's `IsNetworkLine`; no node, no state).
fn network_line(step: &NetworkStep) -> Value {
    json!({ "action": step.action, "msg": message(&step.message) })
}

/// The run as newline-delimited JSON for TraceRaft.tla, the network's own
/// steps in their places.
pub fn ndjson(validated: &Validated) -> String {
    let mut out = String::new();
    let mut network = validated.network_steps.iter().peekable();
    for (k, step) in validated.run.iter().enumerate() {
        while let Some(n) = network.next_if(|n| n.before <= k) {
            let _ = writeln!(out, "{}", network_line(n));
        }
        let _ = writeln!(out, "{}", line(step));
    }
    for n in network {
        let _ = writeln!(out, "{}", network_line(n));
    }
    out
}

/// A TLC config for TraceRaft.tla reading `trace_file` (an absolute path).
pub fn config(validated: &Validated, trace_file: &str) -> String {
    let servers: Vec<String> = validated.initial.keys().map(|id| id.to_string()).collect();
    let max_append_entries = validated
        .initial
        .values()
        .map(|s| s.max_append_entries())
        .max()
        .unwrap_or(1);
    let check_quorum = validated.initial.values().any(|s| s.check_quorum_enabled());
    let check_quorum = if check_quorum { "TRUE" } else { "FALSE" };
    let pre_vote = validated.initial.values().any(|s| s.pre_vote_enabled());
    let pre_vote = if pre_vote { "TRUE" } else { "FALSE" };
    let parallel = validated
        .initial
        .values()
        .any(|s| s.parallel_write_enabled());
    let parallel = if parallel { "TRUE" } else { "FALSE" };
    let max_inflight = validated
        .initial
        .values()
        .map(|s| s.max_inflight())
        .max()
        .unwrap_or(0);
    let steps = validated.run.len() + 1;
    // Every server starts with the configuration of the traces' headers,
    // but a server initialised to join (`init --join`: its header lists no
    // members) starts with none: TraceRaft.tla's `Joiners`.
    let init_members: Vec<String> = validated
        .initial
        .values()
        .find(|s| !s.config().members.is_empty())
        .map(|s| s.config().members.iter().map(|id| id.to_string()).collect())
        .unwrap_or_default();
    let joiners: Vec<String> = validated
        .initial
        .iter()
        .filter(|(_, s)| s.config().members.is_empty())
        .map(|(id, _)| id.to_string())
        .collect();
    format!(
        "\\* Generated by `raft-interop export-tla`: trace validation of one run.\n\
         CONSTANTS\n    Server = {{{servers}}}\n    Nil = 0\n    Noop = Noop\n    \
         MaxAppendEntries = {max_append_entries}\n    MaxTerm = {steps}\n    MaxClientRequests = {steps}\n    \
         MaxRestarts = {steps}\n    MaxCompactions = {steps}\n    MaxReads = {steps}\n    MaxDuplicates = {steps}\n    MaxDrops = {steps}\n    CheckQuorumOn = {check_quorum}\n    PreVoteOn = {pre_vote}\n    MaxTransfers = {steps}\n    \
         InitMembers = {{{init_members}}}\n    MaxConfigChanges = {steps}\n    MaxLearnerChanges = {steps}\n    \
         ParallelWriteOn = {parallel}\n    MaxInflight = {max_inflight}\n    Joiners = {{{joiners}}}\n    InitConfig <- TraceInitConfig\n    \
         TraceFile = \"{trace_file}\"\n\n\
         INIT TraceInit\nNEXT TraceNext\n\n\
         INVARIANTS\n    ElectionSafety\n    LogMatching\n    LogTermsMonotonic\n    LeaderCompleteness\n    StateMachineSafety\n\n\
         \\* A state with no successor before the trace is consumed is a mismatch.\nCHECK_DEADLOCK TRUE\n",
        servers = servers.join(", "),
        init_members = init_members.join(", "),
        joiners = joiners.join(", ")
    )
}
