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

use raft_model::{Effects, Role, Step};

use crate::action::{Action, ServerStep};
use crate::bounds::Bounds;
use crate::state::{
    Image, OBSERVED_CONFLICT_OVERWRITTEN, OBSERVED_SNAPSHOT_INSTALLED, RaftServer, RaftState,
    applied_prefix, entry_at, log_length, term_at,
};

/// The actions enabled in `state` (the spec's `Next`, guards included), in a
/// fixed order so that stateright can replay a path from action indices.
pub fn enabled_actions(bounds: &Bounds, state: &RaftState, actions: &mut Vec<Action>) {
    for server in &state.servers {
        let id = server.id();
        let leader = server.role() == Role::Leader;
        if !leader && server.current_term() < u64::from(bounds.max_term) {
            actions.push(Action::step(id, Step::Timeout));
        }
        if leader {
            actions.push(Action::step(id, Step::SendAppendEntries));
            if state.client_requests < bounds.max_requests {
                // The spec numbers client commands: clientRequests + 1.
                let command = state.client_requests + 1;
                actions.push(Action::step(id, Step::ClientRequest(command)));
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
    let before = state.server(id).clone();
    let effects = next.server_mut(id).step(step.clone()).ok()?;
    count(&mut next, step)?;
    record(&mut next, step, &before, effects);
    if step.message().is_none() && unchanged(state, &next, &before) {
        // A duplicate delivery, a repeated heartbeat...: a self-loop. Saying
        // so spares stateright renaming and hashing a state it already has.
        return None;
    }
    Some(next)
}

/// Advances the spec's counters of the bounded environment actions.
fn count(next: &mut RaftState, step: &ServerStep) -> Option<()> {
    match step {
        Step::ClientRequest(command) => {
            next.client_requests = next.client_requests.checked_add(1)?;
            debug_assert_eq!(*command, next.client_requests, "command clientRequests + 1");
        }
        Step::CompactLog { .. } => next.compactions = next.compactions.checked_add(1)?,
        Step::Restart => next.restarts = next.restarts.checked_add(1)?,
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
        && next.leader_append_only_violated == state.leader_append_only_violated
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
    let after = next.server(before.id()).clone();
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
    if let Step::HandleAppendEntriesRequest(_) = step
        && effects
            .persist
            .log_from
            .is_some_and(|from| from <= log_length(before))
    {
        next.observed |= OBSERVED_CONFLICT_OVERWRITTEN;
    }
    if let Step::HandleInstallSnapshotRequest(_) = step
        && effects.snapshot_installed
    {
        next.observed |= OBSERVED_SNAPSHOT_INSTALLED;
    }
}

/// Does `after`'s whole log start with all of `before`'s?
fn extends(after: &RaftServer, before: &RaftServer) -> bool {
    let old = log_length(before);
    log_length(after) >= old
        && (1..=old).all(|index| entry_at(after, index) == entry_at(before, index))
}
