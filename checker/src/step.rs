//! One step of the spec: the core takes a server's action on a copy of the
//! state ([`raft_model::Server::step`], once, whatever the action), then the
//! step records what the spec's global variables record (messages sent, the
//! `elected` and `committed` histories, the counters).
//!
//! Nothing here decides protocol behaviour: every server change is made by
//! the core. What is here is the environment: which actions are enabled (the
//! guards of the spec's `Next` that belong to the environment, with the
//! inputs the spec gives them) and the network's own actions: a delivery
//! takes one copy of its message out of flight; `DuplicateMessage` adds a
//! copy and `DropMessage` takes one away, each while its counter allows.

use std::sync::Arc;

use raft_model::{Body, Effects, Index, Role, Step};

use crate::action::{Action, ServerStep};
use crate::bounds::Bounds;
use crate::state::{
    Image, Msg, OBSERVED_BATCH_PARTLY_COVERED, OBSERVED_COMMITTED_AHEAD_OF_LEADER_WRITE,
    OBSERVED_CONFLICT_INSIDE_BATCH, OBSERVED_CONFLICT_OVERWRITTEN, OBSERVED_CONFLICT_TERM_SKIPPED,
    OBSERVED_CRASH_LOST_REPLICATED_ENTRY, OBSERVED_LEADERSHIP_TRANSFERRED,
    OBSERVED_PIPELINE_FELL_BACK, OBSERVED_PRE_CANDIDATE_STOOD_DOWN,
    OBSERVED_PRE_VOTE_REFUSED_IN_LEASE, OBSERVED_READ_FAILED, OBSERVED_SNAPSHOT_DISCARDED_CONFLICT,
    OBSERVED_SNAPSHOT_INSTALLED, OBSERVED_SNAPSHOT_KEPT_SUFFIX, OBSERVED_STALE_SNAPSHOT_IGNORED,
    OBSERVED_STEPPED_DOWN, RaftServer, RaftState, applied_prefix, entry_at, log_length, term_at,
};

/// The actions enabled in `state` (the spec's `Next`, guards included), in a
/// fixed order so that stateright can replay a path from action indices.
pub fn enabled_actions(bounds: &Bounds, state: &RaftState, actions: &mut Vec<Action>) {
    for server in &state.servers {
        let id = server.id();
        let leader = server.role() == Role::Leader;
        if !leader
            && server.current_term() < u64::from(bounds.max_term)
            && budget_left(state.timeouts, bounds.max_timeouts)
        {
            actions.push(Action::step(id, Step::Timeout));
        }
        if leader {
            if budget_left(state.heartbeats, bounds.max_heartbeats) {
                actions.push(Action::step(id, Step::SendAppendEntries));
            }
            if bounds.check_quorum {
                actions.push(Action::step(id, Step::CheckQuorum));
            }
            if state.client_requests < bounds.max_requests {
                // The spec numbers client commands: clientRequests + 1.
                let command = state.client_requests + 1;
                actions.push(Action::step(id, Step::ClientRequest(command)));
            }
            if state.reads < bounds.max_reads {
                // The spec numbers reads too: reads + 1.
                let read = u64::from(state.reads) + 1;
                actions.push(Action::step(id, Step::ReadIndex(read)));
            }
            match server.lead_transferee() {
                // The leader's election timer may fire at any time.
                Some(_) => actions.push(Action::step(id, Step::AbortTransfer)),
                None if state.transfers < bounds.max_transfers => {
                    for peer in server.config().peers(id) {
                        actions.push(Action::step(id, Step::TransferLeadership(peer)));
                    }
                }
                None => {}
            }
            if state.config_changes < bounds.max_config_changes {
                // Any non-empty set of servers; the core refuses the change
                // the rules forbid (as the spec's guard does).
                for members in server_sets(state.servers.len()).filter(|set| !set.is_empty()) {
                    actions.push(Action::step(id, Step::ChangeConfig(members)));
                }
            }
            if state.learner_changes < bounds.max_learner_changes {
                // Any set of servers, the empty one too; the core refuses a
                // set naming a voter, and the rules' refusals.
                for learners in server_sets(state.servers.len()) {
                    actions.push(Action::step(id, Step::ChangeLearners(learners)));
                }
            }
        }
        if server.commit_index() > server.log().snapshot_index
            && state.compactions < bounds.max_compactions
        {
            // Always exactly up to the commit index, with the applied prefix
            // as the image.
            let (index, data): (_, Image) = (server.commit_index(), applied_prefix(server));
            actions.push(Action::step(id, Step::CompactLog { index, data }));
        }
        if state.restarts < bounds.max_restarts {
            actions.push(Action::step(id, Step::Restart));
        }
        if server.durable_index() < server.log().last_index() {
            // A leader's parallel write completes: its whole log (a write of
            // a prefix is this one taken before the later appends).
            let log = server.log();
            let (index, term) = (log.last_index(), log.last_term());
            actions.push(Action::step(id, Step::LogPersisted { index, term }));
        }
    }
    for message in state.network.messages() {
        actions.push(Action::deliver(message.clone()));
    }
    if state.duplicates < bounds.max_duplicates {
        for message in state.network.messages() {
            actions.push(Action::DuplicateMessage(message.clone()));
        }
    }
    if state.drops < bounds.max_drops {
        for message in state.network.messages() {
            actions.push(Action::DropMessage(message.clone()));
        }
    }
}

/// May an action counted by one of the checker's own guards
/// (`--max-timeouts`, `--max-heartbeats`) still be taken? Unbounded when
/// the flag is unset (then the state does not count it either).
fn budget_left(used: Option<u8>, max: Option<u8>) -> bool {
    match (used, max) {
        (Some(used), Some(max)) => used < max,
        _ => true,
    }
}

/// The spec's `WithinBounds`: TLC's CONSTRAINT.
pub fn within_bounds(bounds: &Bounds, state: &RaftState) -> bool {
    state.network.copies() <= usize::from(bounds.max_messages)
        && state
            .servers
            .iter()
            .all(|s| log_length(s) <= u64::from(bounds.max_log))
}

/// The state after `action`, or `None` if the step changes nothing (stateright's
/// convention for a self-loop) or the core refuses it (which the guards of
/// [`enabled_actions`] rule out).
pub fn next_state(state: &RaftState, action: &Action) -> Option<RaftState> {
    let mut next = state.clone();
    next.observed = 0;
    let (id, step) = match action {
        Action::DuplicateMessage(message) => {
            next.duplicates = next.duplicates.checked_add(1)?;
            next.network.send(message.clone());
            return Some(next);
        }
        Action::DropMessage(message) => {
            next.drops = next.drops.checked_add(1)?;
            return next.network.take(message).then_some(next);
        }
        Action::Server { server, step } => (*server, step),
    };
    // A delivery consumes the copy it delivers, in the same step.
    if let Some(message) = step.message()
        && !next.network.take(message)
    {
        return None;
    }
    // The parent state is not changed: its server is the one before the step.
    let before = state.server(id);
    if let Step::Restart = step {
        // The crash keeps only the durable image: the server is rebuilt
        // from it, then takes the Restart step (as the trace validator
        // replays a node's restart).
        next.replace_server(id, state.durable_image(id).recover(before));
    }
    let effects = next.server_mut(id).step(step.clone()).ok()?;
    count(state, &mut next, step)?;
    // LogPersisted: the driver's write completed (the storage holds the
    // entries) before the core learns it.
    let written = match step {
        Step::LogPersisted { index, .. } => Some(*index),
        _ => None,
    };
    next.persist(before, &effects.persist, written);
    record(&mut next, step, before, effects);
    if step.message().is_none() && unchanged(state, &next, before) {
        // A duplicate delivery, a repeated heartbeat...: a self-loop. Saying
        // so spares stateright renaming and hashing a state it already has.
        return None;
    }
    Some(next)
}

/// Advances the spec's counters of the bounded environment actions (and,
/// for a read, records its bound: `readBound` grows with `reads`).
fn count(state: &RaftState, next: &mut RaftState, step: &ServerStep) -> Option<()> {
    match step {
        Step::ClientRequest(command) => {
            next.client_requests = next.client_requests.checked_add(1)?;
            debug_assert_eq!(*command, next.client_requests, "command clientRequests + 1");
        }
        Step::CompactLog { .. } => next.compactions = next.compactions.checked_add(1)?,
        Step::Restart => next.restarts = next.restarts.checked_add(1)?,
        Step::TransferLeadership(_) => next.transfers = next.transfers.checked_add(1)?,
        Step::ChangeConfig(_) => next.config_changes = next.config_changes.checked_add(1)?,
        Step::ChangeLearners(_) => next.learner_changes = next.learner_changes.checked_add(1)?,
        // Counted only under their bound (the state holds `None` otherwise).
        Step::Timeout => {
            if let Some(used) = &mut next.timeouts {
                *used = used.checked_add(1)?;
            }
        }
        Step::SendAppendEntries => {
            if let Some(used) = &mut next.heartbeats {
                *used = used.checked_add(1)?;
            }
        }
        Step::ReadIndex(read) => {
            next.reads = next.reads.checked_add(1)?;
            debug_assert_eq!(*read, u64::from(next.reads), "read id reads + 1");
            // `committed` as it was when the read arrived: a read answers
            // with a state containing every entry committed before it.
            next.read_bound.push_back(state.committed_index());
        }
        _ => {}
    }
    Some(())
}

/// Did a step that received nothing leave the state as it was? Only the
/// acting server (`before` is its old state) can have changed, the network
/// only gained copies, and the global sets only grow. (A delivery always
/// changes the state: it consumes its message.)
fn unchanged(state: &RaftState, next: &RaftState, before: &RaftServer) -> bool {
    next.network.copies() == state.network.copies()
        && next.elected.len() == state.elected.len()
        && next.committed.len() == state.committed.len()
        && next.client_requests == state.client_requests
        && next.restarts == state.restarts
        && next.compactions == state.compactions
        && next.reads == state.reads
        && next.transfers == state.transfers
        && next.config_changes == state.config_changes
        && next.learner_changes == state.learner_changes
        && next.timeout_now_ignored == state.timeout_now_ignored
        && next.transfer_log_grew == state.transfer_log_grew
        && next.reads_ready.len() == state.reads_ready.len()
        && next.leader_append_only_violated == state.leader_append_only_violated
        && next.pre_vote_raised_term == state.pre_vote_raised_term
        && next.pre_vote_lease_broken == state.pre_vote_lease_broken
        && next.durable == state.durable
        && next.observed == 0
        && next.server(before.id()) == before
}

/// Updates the global variables after server `before.id` took a step.
fn record(
    next: &mut RaftState,
    step: &ServerStep,
    before: &RaftServer,
    effects: Effects<u8, Image>,
) {
    // Shared, not copied: nothing below changes a server.
    let after = next.shared(before.id());
    if raised_term_by_pre_vote(step, before, &after) {
        next.pre_vote_raised_term = true;
    }
    if broke_lease(step, before, &after, &effects.messages) {
        next.pre_vote_lease_broken = true;
    }
    if ignored_timeout_now(step, before, &after) {
        next.timeout_now_ignored = true;
    }
    if before.role() == Role::Leader
        && before.lead_transferee().is_some()
        && after.role() == Role::Leader
        && after.current_term() == before.current_term()
        && log_length(&after) > log_length(before)
    {
        next.transfer_log_grew = true;
    }
    next.observed |= observe_pre_vote(step, before, &after, &effects.messages);
    next.observed |= observe_transfer(step, before, &after);
    next.observed |= observe_parallel_write(next, step, before, &after);
    next.observed |= observe_pipeline(step, before, &after);
    for message in effects.messages {
        next.network.send(Arc::new(message));
    }
    if after.role() == Role::Leader {
        next.elected.insert((after.current_term(), after.id()));
        if after.commit_index() > before.commit_index() {
            for index in before.commit_index() + 1..=after.commit_index() {
                if let Some(term) = term_at(&after, index) {
                    next.committed.insert((index, term, after.current_term()));
                }
            }
        }
    }
    if before.role() == Role::Leader
        && after.role() == Role::Leader
        && before.current_term() == after.current_term()
        && !extends(&after, before)
    {
        next.leader_append_only_violated = true;
    }
    for ready in &effects.reads_ready {
        next.reads_ready.insert((ready.id, ready.index));
    }
    if !effects.reads_failed.is_empty() {
        next.observed |= OBSERVED_READ_FAILED;
    }
    if let Step::HandleAppendEntriesRequest(_) = step
        && effects
            .persist
            .log_from
            .is_some_and(|from| from <= log_length(before))
    {
        next.observed |= OBSERVED_CONFLICT_OVERWRITTEN;
    }
    if let Step::HandleAppendEntriesRequest(message) = step {
        next.observed |= observe_append_entries(message, before, &after, effects.persist.log_from);
    }
    if let Step::CheckQuorum = step
        && before.role() == Role::Leader
        && after.role() != Role::Leader
    {
        next.observed |= OBSERVED_STEPPED_DOWN;
    }
    if let Step::HandleAppendEntriesResponse(message) = step
        && skipped_conflicting_term(message, before, &after)
    {
        next.observed |= OBSERVED_CONFLICT_TERM_SKIPPED;
    }
    if let Step::HandleInstallSnapshotRequest(message) = step {
        next.observed |=
            observe_install_snapshot(message, before, &after, effects.snapshot_installed);
    }
}

/// Is a message a pre-vote request or grant: its term is one no one holds?
fn is_pre_vote_term(message: &Msg) -> bool {
    matches!(
        message.body,
        Body::RequestVoteRequest { pre_vote: true, .. }
            | Body::RequestVoteResponse {
                pre_vote: true,
                vote_granted: true
            }
    )
}

/// PreVoteRaisesNoTerm's breach on this step: the term rose, and neither
/// by the server's own campaign (the next term, a vote for itself) nor to
/// the term of a real message it received.
fn raised_term_by_pre_vote(step: &ServerStep, before: &RaftServer, after: &RaftServer) -> bool {
    if after.current_term() <= before.current_term() {
        return false;
    }
    let campaign = after.current_term() == before.current_term() + 1
        && after.voted_for() == Some(after.id())
        && matches!(after.role(), Role::Candidate | Role::Leader);
    let by_message = step
        .message()
        .is_some_and(|m| m.term == after.current_term() && !is_pre_vote_term(m));
    !(campaign || by_message)
}

/// TimeoutNowCampaigns' breach on this step: a voting member that is not
/// the leader of the message's term received a TimeoutNow of its term (after
/// the term rule: of its term or a later one) and did not start an election
/// in the next term, voting for itself, in that very step. (Whether the
/// sender was that term's leader is not asked: only the leader of a term
/// sends TimeoutNow in it.)
fn ignored_timeout_now(step: &ServerStep, before: &RaftServer, after: &RaftServer) -> bool {
    let Step::HandleTimeoutNow(m) = step else {
        return false;
    };
    let enabled = m.term >= before.current_term()
        && before.config().contains(before.id())
        && !(before.role() == Role::Leader && m.term == before.current_term())
        && m.term.checked_add(1).is_some();
    let campaigned = after.current_term() == m.term + 1
        && after.voted_for() == Some(after.id())
        && matches!(after.role(), Role::Candidate | Role::Leader);
    enabled && !campaigned
}

/// A leader handing leadership to its transferee learnt a newer term from
/// it and stepped down: the transfer completed on its side.
fn observe_transfer(step: &ServerStep, before: &RaftServer, after: &RaftServer) -> u16 {
    match step.message() {
        Some(m)
            if before.role() == Role::Leader
                && before.lead_transferee() == Some(m.from)
                && m.term > before.current_term()
                && after.role() != Role::Leader =>
        {
            OBSERVED_LEADERSHIP_TRANSFERRED
        }
        _ => 0,
    }
}

/// The two branches of parallel writes: a leader's commit index passing
/// what its own storage holds, and a restart that lost entries the server
/// was still writing as leader while another server holds one of them.
fn observe_parallel_write(
    next: &RaftState,
    step: &ServerStep,
    before: &RaftServer,
    after: &RaftServer,
) -> u16 {
    let mut observed = 0;
    if after.role() == Role::Leader
        && after.commit_index() > before.commit_index()
        && after.commit_index() > after.durable_index()
    {
        observed |= OBSERVED_COMMITTED_AHEAD_OF_LEADER_WRITE;
    }
    if let (Step::Restart, Role::Leader) = (step, before.role()) {
        let lost = (log_length(after) + 1..=log_length(before)).filter_map(|index| {
            let entry = entry_at(before, index)?;
            (entry_at(after, index) != Some(entry)).then_some((index, entry))
        });
        let held_elsewhere = lost.into_iter().any(|(index, entry)| {
            next.servers
                .iter()
                .any(|s| s.id() != before.id() && entry_at(s, index) == Some(entry))
        });
        if held_elsewhere {
            observed |= OBSERVED_CRASH_LOST_REPLICATED_ENTRY;
        }
    }
    observed
}

/// Pipelining's fall-back: a rejection from a peer to which the leader had
/// entries unacknowledged beyond its match (`next_index - 1 > match_index`)
/// took its `next_index` back.
fn observe_pipeline(step: &ServerStep, before: &RaftServer, after: &RaftServer) -> u16 {
    let Step::HandleAppendEntriesResponse(m) = step else {
        return 0;
    };
    let Body::AppendEntriesResponse { success: false, .. } = m.body else {
        return 0;
    };
    let peer = m.from;
    let (Some(&next), Some(&matched)) = (
        before.next_index().get(&peer),
        before.match_index().get(&peer),
    ) else {
        return 0;
    };
    let fell_back = after.is_leader()
        && after.current_term() == before.current_term()
        && after.next_index().get(&peer).is_some_and(|n| *n < next);
    if before.max_inflight() > 0 && next - 1 > matched && fell_back {
        OBSERVED_PIPELINE_FELL_BACK
    } else {
        0
    }
}

/// PreVoteRespectsLease's breach on this step: a pre-vote granted by a
/// server in lease; a restart that left the server without a lease; an
/// election timeout that left it with one.
fn broke_lease(step: &ServerStep, before: &RaftServer, after: &RaftServer, sent: &[Msg]) -> bool {
    match step {
        // A server past term 0 may have heard from a leader before it crashed.
        Step::Restart => after.pre_vote_enabled() && after.current_term() > 0 && !after.in_lease(),
        // (A server alone in its configuration is elected in the same step
        // and holds its own leadership: that is no lease kept.)
        Step::Timeout => after.in_lease() && after.role() != Role::Leader,
        Step::HandleRequestVoteRequest(m) if is_pre_vote_term(m) => {
            before.in_lease() && sent.iter().any(is_pre_vote_term)
        }
        _ => false,
    }
}

/// The pre-vote branches a bound should reach: a refusal for the lease
/// alone (the log and term would have earned a grant), and a pre-candidate
/// following the leader of its term.
fn observe_pre_vote(
    step: &ServerStep,
    before: &RaftServer,
    after: &RaftServer,
    sent: &[Msg],
) -> u16 {
    match step {
        Step::HandleRequestVoteRequest(m) if is_pre_vote_term(m) => {
            let Body::RequestVoteRequest {
                last_log_index,
                last_log_term,
                ..
            } = m.body
            else {
                return 0;
            };
            let refused = !sent.iter().any(is_pre_vote_term);
            let would_grant = m.term > before.current_term()
                && before.log().is_up_to_date(last_log_index, last_log_term);
            if refused && would_grant && before.in_lease() {
                OBSERVED_PRE_VOTE_REFUSED_IN_LEASE
            } else {
                0
            }
        }
        Step::HandleAppendEntriesRequest(m) | Step::HandleInstallSnapshotRequest(m)
            if before.role() == Role::PreCandidate
                && after.role() == Role::Follower
                && m.term == before.current_term() =>
        {
            OBSERVED_PRE_CANDIDATE_STOOD_DOWN
        }
        _ => 0,
    }
}

/// The branches of `handle_append_entries_request` a batch can take that a
/// single entry cannot, told from the request and the follower before and
/// after it (only requests of the follower's term are processed).
fn observe_append_entries(
    message: &Msg,
    before: &RaftServer,
    after: &RaftServer,
    log_from: Option<Index>,
) -> u16 {
    let Body::AppendEntriesRequest {
        prev_log_index,
        ref entries,
        ..
    } = message.body
    else {
        return 0;
    };
    if message.term != after.current_term() || entries.len() < 2 {
        return 0;
    }
    let last = prev_log_index + entries.len() as Index;
    let mut observed = 0;
    // The log was written from `from`, over an entry it held: a conflict,
    // and the batch's first entry (at prev + 1) was not it.
    if log_from.is_some_and(|from| from <= log_length(before) && from > prev_log_index + 1) {
        observed |= OBSERVED_CONFLICT_INSIDE_BATCH;
    }
    let covered = before.log().snapshot_index;
    if prev_log_index < covered && covered < last {
        observed |= OBSERVED_BATCH_PARTLY_COVERED;
    }
    observed
}

/// Did a leader, on a rejection carrying a conflict term, move the peer's
/// `next_index` back by more than one entry (a back-off one step at a time
/// would have taken more round trips)?
fn skipped_conflicting_term(message: &Msg, before: &RaftServer, after: &RaftServer) -> bool {
    let Body::AppendEntriesResponse {
        success: false,
        conflict_term,
        ..
    } = message.body
    else {
        return false;
    };
    let next = |server: &RaftServer| server.next_index().get(&message.from).copied();
    conflict_term > 0
        && after.role() == Role::Leader
        && matches!((next(before), next(after)), (Some(old), Some(new)) if new + 1 < old)
}

/// The outcomes of `handle_install_snapshot_request` for a request of the
/// follower's term: installed (keeping a matching suffix, or discarding a
/// conflicting log) or ignored as stale.
fn observe_install_snapshot(
    message: &Msg,
    before: &RaftServer,
    after: &RaftServer,
    installed: bool,
) -> u16 {
    let Body::InstallSnapshotRequest { ref snapshot } = message.body else {
        return 0;
    };
    if message.term != after.current_term() {
        return 0;
    }
    let last = snapshot.meta.last_index;
    if !installed {
        return if last <= before.commit_index() {
            OBSERVED_STALE_SNAPSHOT_IGNORED
        } else {
            0
        };
    }
    if log_length(after) > last {
        // Entries past the snapshot survived: they matched it.
        return OBSERVED_SNAPSHOT_INSTALLED | OBSERVED_SNAPSHOT_KEPT_SUFFIX;
    }
    // Held entries (past the follower's old snapshot) that the new whole log
    // does not hold as they were: they conflicted with the snapshot.
    let conflicting = (before.log().snapshot_index + 1..=log_length(before))
        .any(|index| entry_at(before, index) != entry_at(after, index));
    if conflicting {
        OBSERVED_SNAPSHOT_INSTALLED | OBSERVED_SNAPSHOT_DISCARDED_CONFLICT
    } else {
        OBSERVED_SNAPSHOT_INSTALLED
    }
}

/// Does `after`'s whole log start with all of `before`'s?
fn extends(after: &RaftServer, before: &RaftServer) -> bool {
    let old = log_length(before);
    log_length(after) >= old
        && (1..=old).all(|index| entry_at(after, index) == entry_at(before, index))
}

/// Every set of the servers 1..=n (`SUBSET Server`), the empty one first,
/// in the order of their bit patterns (the order actions are generated in).
fn server_sets(n: usize) -> impl Iterator<Item = imbl::OrdSet<u64>> {
    let n = n as u32;
    (0u32..(1 << n)).map(move |set| {
        (0..n)
            .filter(|bit| set & (1 << bit) != 0)
            .map(|bit| u64::from(bit) + 1)
            .collect()
    })
}
