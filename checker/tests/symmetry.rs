//! Symmetry reduction is sound and canonical: renaming the servers of any
//! reachable state does not change its representative, and the reduced search
//! reaches the same verdicts over a fraction of the states.

use raft_checker::bounds::Bounds;
use raft_checker::model::RaftModel;
use raft_checker::run::{RunOptions, run};
use raft_checker::state::RaftState;
use raft_checker::symmetry::{canonical, rename};
use stateright::Model;

fn bound() -> Bounds {
    Bounds {
        max_messages: 10,
        ..Bounds::DEFAULT
    }
}

/// Every state reachable within a few steps, breadth first (no checker).
fn reachable(model: &RaftModel, limit: usize) -> Vec<RaftState> {
    let mut seen = vec![model.initial_state()];
    let mut next = 0;
    while next < seen.len() && seen.len() < limit {
        let state = seen[next].clone();
        next += 1;
        for successor in model.next_states(&state) {
            if !seen.contains(&successor) {
                seen.push(successor);
            }
        }
    }
    seen
}

const ALL_ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

#[test]
fn representative_is_the_same_for_every_renaming() {
    let model = RaftModel::new(bound(), Vec::new());
    for state in reachable(&model, 400) {
        let representative = canonical(&state);
        assert_eq!(canonical(&representative), representative, "idempotent");
        for order in ALL_ORDERS {
            let renamed = rename(&state, &order);
            assert_eq!(canonical(&renamed), representative, "order {order:?}");
        }
    }
}

#[test]
fn renaming_rewrites_every_id() {
    let model = RaftModel::new(bound(), Vec::new());
    let states = reachable(&model, 400);
    let state = states
        .iter()
        .find(|s| s.elected.len() == 1 && s.network.copies() > 3)
        .expect("some state has a leader and messages");
    let swapped = rename(state, &[1, 0, 2]);
    assert_eq!(
        rename(&swapped, &[1, 0, 2]),
        *state,
        "a swap is its own inverse"
    );
    for (position, server) in swapped.servers.iter().enumerate() {
        assert_eq!(server.id(), position as u64 + 1, "servers sit at their id");
    }
    let leader = state.elected.iter().next().map(|(_, id)| *id).unwrap_or(0);
    let swapped_leader = swapped
        .elected
        .iter()
        .next()
        .map(|(_, id)| *id)
        .unwrap_or(0);
    assert_eq!(swapped_leader, [2, 1, 3][leader as usize - 1]);
}

#[test]
fn reduction_keeps_verdicts_and_shrinks_the_space() {
    let with = run(&RunOptions::check(bound())).report;
    let mut options = RunOptions::check(bound());
    options.symmetry = false;
    let without = run(&options).report;
    for name in raft_checker::model::SAFETY_PROPERTIES
        .iter()
        .chain(raft_checker::model::REACHABILITY_PROPERTIES.iter())
    {
        assert_eq!(with.verdict_of(name), without.verdict_of(name), "{name}");
    }
    assert!(with.complete && without.complete);
    let (reduced, full) = (
        with.distinct_states_within_bounds.unwrap_or(0),
        without.distinct_states_within_bounds.unwrap_or(0),
    );
    // Three servers: at most 3! = 6 states per orbit, and nearly every orbit
    // has six members (only states symmetric in some servers have fewer).
    assert!(
        reduced > 0 && full > 5 * reduced && full <= 6 * reduced,
        "{full} vs {reduced}"
    );
}
