//! Symmetry reduction is sound and canonical: renaming the servers of any
//! reachable state does not change its representative, and the reduced search
//! reaches the same verdicts over a fraction of the states.

use raft_checker::bounds::Bounds;
use raft_checker::model::RaftModel;
use raft_checker::run::{RunOptions, run};
use raft_checker::state::RaftState;
use raft_checker::symmetry::{canonical, orbit_fingerprint, rename};
use stateright::Model;

fn bound() -> Bounds {
    Bounds::preset("spec").expect("the spec bound is named")
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
        let fingerprint = orbit_fingerprint(&state);
        for order in ALL_ORDERS {
            let renamed = rename(&state, &order);
            assert_eq!(canonical(&renamed), representative, "order {order:?}");
            assert_eq!(orbit_fingerprint(&renamed), fingerprint, "order {order:?}");
        }
    }
}

/// The orbit fingerprint tells orbits apart exactly as the canonical state
/// does: two reachable states share a fingerprint if and only if they share
/// a representative (no collision among these, and no orbit split).
#[test]
fn orbit_fingerprints_partition_states_as_representatives_do() {
    let model = RaftModel::new(bound(), Vec::new());
    let states = reachable(&model, 1500);
    let mut by_fingerprint = std::collections::HashMap::new();
    for state in &states {
        let representative = canonical(state);
        let previous = by_fingerprint
            .entry(orbit_fingerprint(state))
            .or_insert_with(|| representative.clone());
        assert_eq!(*previous, representative, "one fingerprint, one orbit");
    }
    let orbits: std::collections::BTreeSet<RaftState> = states.iter().map(canonical).collect();
    assert_eq!(
        by_fingerprint.len(),
        orbits.len(),
        "one orbit, one fingerprint"
    );
}

#[test]
fn renaming_rewrites_every_id() {
    let model = RaftModel::new(bound(), Vec::new());
    let states = reachable(&model, 400);
    let state = states
        .iter()
        .find(|s| s.elected.len() == 1 && s.network.copies() >= 3)
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
    // The tiny bound: its unreduced space is six times the reduced one.
    let tiny = Bounds::preset("tiny").expect("the tiny bound is named");
    let with = run(&RunOptions::check(tiny.clone())).report;
    let mut options = RunOptions::check(tiny);
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

/// Durable images (only present when a seeded bug omits a write) are renamed
/// with their servers: the representative is still the same for every
/// renaming, and a swap moves each image to its server's new id.
#[test]
fn durable_images_are_renamed_with_their_servers() {
    let model = RaftModel::new(bound(), vec![raft_model::Bug::OmitPersistLog]);
    let states: Vec<RaftState> = reachable(&model, 3000)
        .into_iter()
        .filter(|s| !s.durable.is_empty())
        .collect();
    assert!(!states.is_empty(), "some state has a durable image");
    for state in &states {
        let representative = canonical(state);
        for order in ALL_ORDERS {
            let renamed = rename(state, &order);
            assert_eq!(canonical(&renamed), representative, "order {order:?}");
            assert_eq!(orbit_fingerprint(&renamed), orbit_fingerprint(state));
            for (new_index, &old_index) in order.iter().enumerate() {
                let (old, new) = (old_index as u64 + 1, new_index as u64 + 1);
                assert_eq!(
                    renamed.durable.get(&new).map(|image| image.log.clone()),
                    state.durable.get(&old).map(|image| image.log.clone()),
                    "the image of server {old} is now server {new}'s"
                );
                assert_eq!(
                    renamed.durable_image(new),
                    state.durable_image(old).rename_ids(&|id| {
                        order
                            .iter()
                            .position(|&o| o as u64 + 1 == id)
                            .map_or(id, |p| p as u64 + 1)
                    }),
                );
            }
        }
    }
}
