//! Test support shared by every test file of raft-model.
//!
//! - this file: hand-built servers, logs and messages, so a unit test can set
//!   up exactly the state a rule of the paper talks about;
//! - [`observer`]: the paper's safety properties and the durability contract
//!   of [`raft_model::Persist`], as checks run after every step;
//! - [`cluster`]: servers, their disks and a network, driven step by step
//!   through the real transition functions (the figure tests use it by hand);
//! - [`sim`]: random operation sequences over a cluster, for quickcheck.

// Every test file is its own crate and uses a different part of this module.
#![allow(dead_code)]

pub mod cluster;
pub mod observer;
pub mod sim;

use imbl::Vector;
use raft_model::{
    Body, Config, Effects, Entry, Index, Log, Message, NodeId, Payload, Server, Snapshot,
    SnapshotMeta, Term,
};

/// Client commands are numbers: the simulation hands out each value once.
pub type Cmd = u32;
/// A snapshot's state-machine image: the committed entries it replaces, in
/// order. Carrying the entries themselves lets the safety checks compare a
/// snapshot with what other servers committed.
pub type Image = Vector<Entry<Cmd>>;
pub type TestServer = Server<Cmd, Image>;
pub type Msg = Message<Cmd, Image>;
pub type TestEffects = Effects<Cmd, Image>;

/// The configuration `{1, ..., n}`.
pub fn members(n: u64) -> Config {
    Config::new(1..=n)
}

/// The entry a leader of `term` created at `index`. Entries with the same
/// index and term are the same entry (Log Matching), so the payload is a
/// function of both and hand-built logs compare equal exactly when they should.
pub fn entry(index: Index, term: Term) -> Entry<Cmd> {
    Entry {
        term,
        payload: Payload::Command((index * 100 + term) as Cmd),
    }
}

/// A log (no snapshot) whose entry `i` has term `terms[i - 1]`.
pub fn log_of_terms(terms: &[Term]) -> Log<Cmd> {
    let mut log = Log::default();
    for (offset, &term) in terms.iter().enumerate() {
        log.append(entry(offset as Index + 1, term));
    }
    log
}

/// The terms of the entries a log holds (after its snapshot).
pub fn terms_of(log: &Log<Cmd>) -> Vec<Term> {
    log.entries.iter().map(|entry| entry.term).collect()
}

/// The empty snapshot of a new cluster.
pub fn empty_snapshot(config: &Config) -> Snapshot<Image> {
    Snapshot {
        meta: SnapshotMeta {
            last_index: 0,
            last_term: 0,
            config: config.clone(),
        },
        data: Vector::new(),
    }
}

/// A fresh server of a new cluster.
pub fn server(id: NodeId, config: &Config) -> TestServer {
    Server::new(id, config.clone(), Vector::new())
}

/// A server recovered (as a follower) with the given term, vote and log.
pub fn server_with_log(
    id: NodeId,
    config: &Config,
    current_term: Term,
    voted_for: Option<NodeId>,
    terms: &[Term],
) -> TestServer {
    Server::recover(
        id,
        current_term,
        voted_for,
        empty_snapshot(config),
        log_of_terms(terms),
    )
}

/// Like [`server_with_log`], with entries `1..=snapshot_index` of `terms`
/// compacted into a snapshot (committed, as every snapshot is).
pub fn server_with_snapshot(
    id: NodeId,
    config: &Config,
    current_term: Term,
    terms: &[Term],
    snapshot_index: Index,
) -> TestServer {
    let snapshot = snapshot_of(config, terms, snapshot_index);
    let mut log = log_of_terms(terms);
    log.compact_to(snapshot_index, snapshot.meta.last_term);
    Server::recover(id, current_term, None, snapshot, log)
}

/// Makes `candidate` the leader of its next term: it times out and receives
/// granted votes from `voters`. Returns the effects of the step that made it
/// leader.
pub fn elect(candidate: &mut TestServer, voters: &[NodeId]) -> TestEffects {
    let mut effects = candidate.timeout();
    for &voter in voters {
        if candidate.is_leader() {
            break;
        }
        effects = candidate.receive(&vote(voter, candidate.id(), candidate.current_term(), true));
    }
    assert!(candidate.is_leader(), "{voters:?} are not a quorum");
    effects
}

pub fn request_vote(
    from: NodeId,
    to: NodeId,
    term: Term,
    last_log_index: Index,
    last_log_term: Term,
) -> Msg {
    vote_request(from, to, term, (last_log_index, last_log_term), false)
}

/// A pre-vote request for the election of `term` (the sender's term + 1).
pub fn pre_vote_request(
    from: NodeId,
    to: NodeId,
    term: Term,
    last_log_index: Index,
    last_log_term: Term,
) -> Msg {
    vote_request(from, to, term, (last_log_index, last_log_term), true)
}

fn vote_request(
    from: NodeId,
    to: NodeId,
    term: Term,
    (last_log_index, last_log_term): (Index, Term),
    pre_vote: bool,
) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::RequestVoteRequest {
            last_log_index,
            last_log_term,
            pre_vote,
        },
    }
}

pub fn vote(from: NodeId, to: NodeId, term: Term, vote_granted: bool) -> Msg {
    vote_response(from, to, term, vote_granted, false)
}

pub fn pre_vote(from: NodeId, to: NodeId, term: Term, vote_granted: bool) -> Msg {
    vote_response(from, to, term, vote_granted, true)
}

fn vote_response(from: NodeId, to: NodeId, term: Term, vote_granted: bool, pre_vote: bool) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::RequestVoteResponse {
            vote_granted,
            pre_vote,
        },
    }
}

/// An AppendEntries request carrying `entries` after `prev_log_index`.
pub fn append_entries(
    from: NodeId,
    to: NodeId,
    term: Term,
    (prev_log_index, prev_log_term): (Index, Term),
    entries: Vec<Entry<Cmd>>,
    leader_commit: Index,
) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::AppendEntriesRequest {
            prev_log_index,
            prev_log_term,
            entries: entries.into_iter().collect(),
            leader_commit,
            read_seq: 0,
        },
    }
}

pub fn append_response(
    from: NodeId,
    to: NodeId,
    term: Term,
    success: bool,
    match_index: Index,
) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::AppendEntriesResponse {
            success,
            match_index,
            conflict_term: 0,
            conflict_index: 0,
            read_seq: 0,
        },
    }
}

/// A rejection from a follower whose last index is `last` and whose entry
/// at the request's `prev_log_index` is of `conflict_term`, in a run that
/// begins at `conflict_index`.
pub fn conflict_response(
    from: NodeId,
    to: NodeId,
    term: Term,
    last: Index,
    (conflict_term, conflict_index): (Term, Index),
) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::AppendEntriesResponse {
            success: false,
            match_index: last,
            conflict_term,
            conflict_index,
            read_seq: 0,
        },
    }
}

/// `(conflict_term, conflict_index)` of an AppendEntries response.
pub fn conflict_hint(message: &Msg) -> (Term, Index) {
    match message.body {
        Body::AppendEntriesResponse {
            conflict_term,
            conflict_index,
            ..
        } => (conflict_term, conflict_index),
        ref other => panic!("expected an AppendEntries response, got {other:?}"),
    }
}

pub fn install_snapshot(from: NodeId, to: NodeId, term: Term, snapshot: Snapshot<Image>) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::InstallSnapshotRequest { snapshot },
    }
}

pub fn snapshot_response(from: NodeId, to: NodeId, term: Term, match_index: Index) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::InstallSnapshotResponse { match_index },
    }
}

/// A snapshot covering entries `1..=last_index` of `log_terms` (as built by
/// [`log_of_terms`]), with the image a state machine would hand over.
pub fn snapshot_of(config: &Config, log_terms: &[Term], last_index: Index) -> Snapshot<Image> {
    let data: Image = (1..=last_index)
        .map(|index| entry(index, log_terms[index as usize - 1]))
        .collect();
    Snapshot {
        meta: SnapshotMeta {
            last_index,
            last_term: log_terms[last_index as usize - 1],
            config: config.clone(),
        },
        data,
    }
}

/// The single message of `effects`, which must hold exactly one.
pub fn only_message(effects: &TestEffects) -> &Msg {
    assert_eq!(effects.messages.len(), 1, "{:?}", effects.messages);
    &effects.messages[0]
}

/// `(success, match_index)` of an AppendEntries response.
pub fn append_result(message: &Msg) -> (bool, Index) {
    match message.body {
        Body::AppendEntriesResponse {
            success,
            match_index,
            ..
        } => (success, match_index),
        ref other => panic!("expected an AppendEntries response, got {other:?}"),
    }
}

/// `(prev_log_index, prev_log_term, entry terms, leader_commit)` of an
/// AppendEntries request.
pub fn append_request(message: &Msg) -> (Index, Term, Vec<Term>, Index) {
    match message.body {
        Body::AppendEntriesRequest {
            prev_log_index,
            prev_log_term,
            ref entries,
            leader_commit,
            ..
        } => (
            prev_log_index,
            prev_log_term,
            entries.iter().map(|entry| entry.term).collect(),
            leader_commit,
        ),
        ref other => panic!("expected an AppendEntries request, got {other:?}"),
    }
}

/// Whether a RequestVote response granted the vote.
pub fn vote_granted(message: &Msg) -> bool {
    match message.body {
        Body::RequestVoteResponse { vote_granted, .. } => vote_granted,
        ref other => panic!("expected a RequestVote response, got {other:?}"),
    }
}
