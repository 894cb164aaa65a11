//! Symmetry reduction over server ids.
//!
//! The spec is symmetric in its servers, so a state and any renaming of its
//! ids behave alike. The representative of a state is the smallest (by `Ord`)
//! renaming among those that list the servers in order of an id-free key; all
//! permutations of servers with equal keys are tried, so the result is the
//! same for every member of the orbit (a canonical form, like TLC's SYMMETRY),
//! and the count of distinct states under symmetry is the count of orbits.
//!
//! Every id in the state is rewritten: the servers (through
//! `Server::rename_ids`), the messages (`Message::rename_ids`), the
//! `elected` history and the durable images (`Durable::rename_ids`). The
//! read histories (`read_bound`, `reads_ready`) hold read ids and log
//! indices only, so they are carried over unchanged. stateright keeps
//! exploring from the original state, so counterexamples keep the ids of
//! the path that found them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use imbl::OrdSet;
use raft_model::{NodeId, Role, hash_sorted};
use stateright::Representative;

use crate::shared_server::{SharedServer, fingerprint_hasher};
use crate::state::{KnownOrbit, RaftServer, RaftState};

/// stateright only fingerprints the representative it is given (it keeps
/// exploring from the original state), so the representative is a stand-in
/// that carries the orbit's fingerprint and nothing else
/// ([`RaftState::orbit_stand_in`]): building the canonical state itself,
/// renamed servers, messages and maps, then hashing and dropping it, was
/// over a third of the checker's time.
impl Representative for RaftState {
    fn representative(&self) -> Self {
        debug_assert!(self.orbit.is_none(), "a stand-in has no orbit to compute");
        let orbit = orbit_fingerprint(self);
        self.known_orbit.set(orbit);
        RaftState::orbit_stand_in(orbit)
    }
}

/// An id-free summary of a server: equal under any renaming of ids. The more
/// it tells servers apart, the fewer renamings `canonical` has to compare;
/// servers it leaves equal are told apart by their [`Traffic`] next.
///
/// Its first element keeps the servers of the initial configuration apart
/// from the spare ones (`--spare-servers`): the spec's symmetry permutes
/// each group among itself only (`Permutations(InitMembers)`), since only
/// renamings that keep the initial configuration map initial states onto
/// initial states. Configuration entries in the log name servers, so the
/// log enters with every id replaced by 0.
fn key<'a>(server: &'a RaftServer, initial: &imbl::OrdSet<NodeId>) -> impl Ord + 'a {
    let vote = match server.voted_for() {
        None => 0u8,
        Some(id) if id == server.id() => 1,
        Some(_) => 2,
    };
    let log = if server.log().iter().any(|(_, e)| e.config().is_some()) {
        Cow::Owned(server.log().rename_ids(&|_| 0))
    } else {
        Cow::Borrowed(server.log())
    };
    (
        !initial.contains(&server.id()),
        server.current_term(),
        role_rank(server.role()),
        server.commit_index(),
        log,
        vote,
        server.votes_granted().len(),
    )
}

/// Per server, an order-independent digest of the messages it sent and of
/// those addressed to it, ids left out (the configurations in message
/// bodies, in snapshots and configuration entries, enter with every id 0).
struct Traffic(Vec<(u64, u64)>);

impl Traffic {
    fn of(state: &RaftState) -> Traffic {
        let mut digests = vec![(0u64, 0u64); state.servers.len() + 1];
        for (message, copies) in state.network.iter() {
            let mut hasher = Mix::default();
            // Configurations in the body name servers: hashed with every id
            // 0, so that the digest is the same under any renaming.
            if crate::network::names_servers(message) {
                (message.term, &message.rename_ids(&|_| 0).body).hash(&mut hasher);
            } else {
                (message.term, &message.body).hash(&mut hasher);
            }
            let digest = hasher.finish().wrapping_mul(u64::from(copies));
            if let Some(slot) = digests.get_mut(message.from as usize) {
                slot.0 = slot.0.wrapping_add(digest);
            }
            if let Some(slot) = digests.get_mut(message.to as usize) {
                slot.1 = slot.1.wrapping_add(digest);
            }
        }
        Traffic(digests)
    }

    fn get(&self, id: NodeId) -> (u64, u64) {
        self.0.get(id as usize).copied().unwrap_or_default()
    }
}

fn role_rank(role: Role) -> u8 {
    match role {
        Role::Follower => 0,
        Role::Candidate => 1,
        Role::Leader => 2,
        Role::PreCandidate => 3,
    }
}

/// The canonical member of `state`'s symmetry orbit: the smallest (by `Ord`)
/// of its candidate renamings. The checker itself uses
/// [`orbit_fingerprint`]; this form is for tests and for reading.
pub fn canonical(state: &RaftState) -> RaftState {
    let mut best: Option<RaftState> = None;
    for candidate in candidate_orders(state) {
        let renamed = if is_identity(&candidate) {
            state.clone()
        } else {
            rename(state, &candidate)
        };
        if best.as_ref().is_none_or(|b| renamed < *b) {
            best = Some(renamed);
        }
    }
    best.unwrap_or_else(|| state.clone())
}

/// The fingerprint of `state`'s symmetry orbit: the smallest hash of its
/// candidate renamings. The candidates of every member of an orbit rename
/// it onto the same set of states (see [`candidate_orders`]), so every
/// member gets the same fingerprint, and two orbits share one only if two
/// different states collide in 64 bits, the risk every fingerprint takes.
pub fn orbit_fingerprint(state: &RaftState) -> u64 {
    candidate_orders(state)
        .iter()
        .map(|order| renamed_hash(state, order))
        .min()
        .unwrap_or_else(|| state.own_hash())
}

/// The hash of `rename(state, order)`, computed without building it. Debug
/// builds (every test run) build it as well and check the two agree, so a
/// field the streaming hash forgot cannot merge states unnoticed.
fn renamed_hash(state: &RaftState, order: &[usize]) -> u64 {
    if is_identity(order) {
        return state.own_hash();
    }
    let mut hasher = fingerprint_hasher();
    hash_renamed(state, order, &mut hasher);
    let hash = hasher.finish();
    debug_assert_eq!(
        hash,
        rename(state, order).own_hash(),
        "the streaming hash of a renamed state differs from the renamed state's hash"
    );
    hash
}

fn is_identity(order: &[usize]) -> bool {
    order.iter().enumerate().all(|(new, old)| new == *old)
}

/// The renamings that may be canonical: the servers listed in order of
/// their id-free [`key`], every order tried within a run of equal keys.
/// Keys do not depend on ids, so for every member of an orbit these rename
/// it onto the same set of states.
fn candidate_orders(state: &RaftState) -> Vec<Vec<usize>> {
    let n = state.servers.len();
    let initial = &state.initial_config.members;
    let keys: Vec<_> = state.servers.iter().map(|s| key(s, initial)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    if order.windows(2).all(|pair| keys[pair[0]] != keys[pair[1]]) {
        // The keys alone order the servers (nearly every state): the
        // traffic, which would only break ties, need not be computed.
        return vec![order];
    }
    // The key, then the traffic: servers of equal keys ordered by it.
    let traffic = Traffic::of(state);
    let keys: Vec<_> = keys
        .into_iter()
        .zip(&state.servers)
        .map(|(key, s)| (key, traffic.get(s.id())))
        .collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));

    // Runs of servers with equal keys: every order within a run is a candidate.
    let mut candidates = vec![order.clone()];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && keys[order[end]].cmp(&keys[order[start]]) == Ordering::Equal {
            end += 1;
        }
        if end - start > 1 {
            candidates = candidates
                .into_iter()
                .flat_map(|candidate| permutations_of_range(candidate, start, end))
                .collect();
        }
        start = end;
    }
    candidates
}

/// Every reordering of `order[start..end]`, the rest kept.
fn permutations_of_range(order: Vec<usize>, start: usize, end: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut slice: Vec<usize> = order[start..end].to_vec();
    slice.sort_unstable();
    loop {
        let mut candidate = order.clone();
        candidate[start..end].copy_from_slice(&slice);
        out.push(candidate);
        if !next_permutation(&mut slice) {
            return out;
        }
    }
}

/// Lexicographic successor permutation; false after the last one.
fn next_permutation(items: &mut [usize]) -> bool {
    let Some(pivot) = (1..items.len()).rev().find(|&i| items[i - 1] < items[i]) else {
        return false;
    };
    let pivot = pivot - 1;
    let Some(successor) = (pivot + 1..items.len())
        .rev()
        .find(|&i| items[i] > items[pivot])
    else {
        return false;
    };
    items.swap(pivot, successor);
    items[pivot + 1..].reverse();
    true
}

/// `state` with its servers placed in `order` (`order[k]` is the index of the
/// server that becomes server `k + 1`) and every id rewritten to match.
pub fn rename(state: &RaftState, order: &[usize]) -> RaftState {
    let new_id = new_ids(order);
    let f = |id: NodeId| renamed_id(&new_id, id);
    RaftState {
        servers: order
            .iter()
            .map(|&old| SharedServer::new(state.servers[old].rename_ids(&f)))
            .collect(),
        network: state.network.rename_ids(&f),
        elected: state
            .elected
            .iter()
            .map(|&(term, id)| (term, f(id)))
            .collect::<OrdSet<_>>(),
        committed: state.committed.clone(),
        client_requests: state.client_requests,
        restarts: state.restarts,
        compactions: state.compactions,
        duplicates: state.duplicates,
        drops: state.drops,
        // Read ids and log indices: no server id to rename.
        reads: state.reads,
        read_bound: state.read_bound.clone(),
        reads_ready: state.reads_ready.clone(),
        leader_append_only_violated: state.leader_append_only_violated,
        pre_vote_raised_term: state.pre_vote_raised_term,
        timeout_now_ignored: state.timeout_now_ignored,
        transfer_log_grew: state.transfer_log_grew,
        transfers: state.transfers,
        config_changes: state.config_changes,
        learner_changes: state.learner_changes,
        timeouts: state.timeouts,
        heartbeats: state.heartbeats,
        // Renamings keep the initial configuration's members among
        // themselves (`key`), so it maps onto itself.
        initial_config: state.initial_config.clone(),
        pre_vote_lease_broken: state.pre_vote_lease_broken,
        durable: state
            .durable
            .iter()
            .map(|(id, image)| (f(*id), image.rename_ids(&f)))
            .collect(),
        observed: state.observed,
        orbit: None,
        known_orbit: KnownOrbit::default(),
    }
}

/// `new_id[old id]` = new id for the renaming `order`; ids are 1..=n (slot
/// 0 unused).
fn new_ids(order: &[usize]) -> Vec<NodeId> {
    let mut new_id: Vec<NodeId> = (0..=order.len() as NodeId).collect();
    for (new_index, &old_index) in order.iter().enumerate() {
        new_id[old_index + 1] = new_index as NodeId + 1;
    }
    new_id
}

pub(crate) fn renamed_id(new_id: &[NodeId], id: NodeId) -> NodeId {
    usize::try_from(id)
        .ok()
        .and_then(|i| new_id.get(i).copied())
        .unwrap_or(id)
}

/// Feeds `h` exactly what `rename(state, order).hash(h)` would (the fields
/// in the order of `impl Hash for RaftState`), without building the renamed
/// state. The destructuring has no `..`: a new field does not compile until
/// it is placed here.
fn hash_renamed<H: Hasher>(state: &RaftState, order: &[usize], h: &mut H) {
    let RaftState {
        servers,
        network,
        elected,
        committed,
        client_requests,
        restarts,
        compactions,
        duplicates,
        drops,
        reads,
        transfers,
        config_changes,
        learner_changes,
        timeouts,
        heartbeats,
        initial_config: _,
        read_bound,
        reads_ready,
        leader_append_only_violated,
        pre_vote_raised_term,
        pre_vote_lease_broken,
        timeout_now_ignored,
        transfer_log_grew,
        durable,
        observed: _,
        orbit,
        known_orbit: _,
    } = state;
    debug_assert!(orbit.is_none(), "a stand-in has no servers to rename");
    let new_id = new_ids(order);
    let f = |id: NodeId| renamed_id(&new_id, id);
    // A Vec hashes its length, then its elements.
    servers.len().hash(h);
    for &old in order {
        h.write_u64(servers[old].renamed_hash(&new_id));
    }
    network.hash_renamed(&f, h);
    // imbl's ordered sets and maps hash their elements in order.
    hash_sorted(
        elected.len(),
        elected.iter().map(|&(term, id)| (term, f(id))),
        h,
    );
    committed.hash(h);
    client_requests.hash(h);
    restarts.hash(h);
    compactions.hash(h);
    duplicates.hash(h);
    drops.hash(h);
    reads.hash(h);
    transfers.hash(h);
    config_changes.hash(h);
    learner_changes.hash(h);
    timeouts.hash(h);
    heartbeats.hash(h);
    read_bound.hash(h);
    reads_ready.hash(h);
    leader_append_only_violated.hash(h);
    pre_vote_raised_term.hash(h);
    pre_vote_lease_broken.hash(h);
    timeout_now_ignored.hash(h);
    transfer_log_grew.hash(h);
    if !durable.is_empty() {
        let mut images: Vec<_> = durable
            .iter()
            .map(|(id, image)| (f(*id), image.rename_ids(&f)))
            .collect();
        images.sort_unstable_by_key(|(id, _)| *id);
        for (id, image) in images {
            id.hash(h);
            image.hash(h);
        }
    }
}

/// A small, fast, deterministic hasher for the traffic digests (FxHash's
/// multiply-rotate step); collisions only cost reduction, never soundness.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
