//! Shorter counterexamples: a depth-first search finds a violation fast but
//! along whatever path it happened to walk (often 40 steps or more, with
//! detours). The path itself says how small a bound holds it (its witness
//! bound); a breadth-first search of that small bound, stopped at the first
//! state violating the same property, gives a shortest counterexample in it.

use std::time::{Duration, Instant};

use crate::bounds::Bounds;
use crate::run::{RunOptions, StatePath, Strategy, run};
use crate::state::log_length;

/// The least bound, of the same shape as `bounds`, within which every state
/// of `path` lies (see [`Mutant::witness`]).
pub fn witness_bound(bounds: &Bounds, path: &StatePath) -> Bounds {
    let mut witness = Bounds {
        max_term: 0,
        max_log: 0,
        max_requests: 0,
        max_messages: 0,
        max_restarts: 0,
        max_compactions: 0,
        max_reads: 0,
        max_duplicates: 0,
        max_drops: 0,
        // The checker's guards stay unset where they were; where set, they
        // are raised from 0 to what the path used.
        max_timeouts: bounds.max_timeouts.map(|_| 0),
        max_heartbeats: bounds.max_heartbeats.map(|_| 0),
        ..bounds.clone()
    };
    // The last state may lie outside the bound (a boundary state is still
    // checked): its log and network need not fit.
    let inside = path.len().saturating_sub(1).max(1);
    for (k, (state, _)) in path.iter().enumerate() {
        let term = state
            .servers
            .iter()
            .map(|s| s.current_term())
            .max()
            .unwrap_or(0);
        witness.max_term = witness.max_term.max(u8::try_from(term).unwrap_or(u8::MAX));
        witness.max_requests = witness.max_requests.max(state.client_requests);
        witness.max_restarts = witness.max_restarts.max(state.restarts);
        witness.max_compactions = witness.max_compactions.max(state.compactions);
        witness.max_reads = witness.max_reads.max(state.reads);
        witness.max_duplicates = witness.max_duplicates.max(state.duplicates);
        witness.max_drops = witness.max_drops.max(state.drops);
        for (max, used) in [
            (&mut witness.max_timeouts, state.timeouts),
            (&mut witness.max_heartbeats, state.heartbeats),
        ] {
            if let (Some(max), Some(used)) = (max, used) {
                *max = (*max).max(used);
            }
        }
        if k < inside {
            let log = state
                .servers
                .iter()
                .map(|s| log_length(s))
                .max()
                .unwrap_or(0);
            witness.max_log = witness.max_log.max(u8::try_from(log).unwrap_or(u8::MAX));
            let copies = u8::try_from(state.network.copies()).unwrap_or(u8::MAX);
            witness.max_messages = witness.max_messages.max(copies);
        }
    }
    witness
}

/// The most distinct states a shortening search stores on five servers or
/// more. Breadth-first, stateright keeps whole states in its queue and
/// applies no symmetry (up to 5! = 120 renamings of each state stored
/// apart), so on five servers (issue 14's bounds) memory, not the time
/// budget, ran out first: 23 GB, killed. Past this many the depth-first
/// path is kept. Three and four servers keep the time budget alone: their
/// searches fit in memory, and some need more states than this to find a
/// shortest path (commit-old-term's, from 35 steps to 30).
pub const MAX_STATES: usize = 1_000_000;

/// [`MAX_STATES`] where it applies.
fn state_cap(bounds: &Bounds) -> Option<usize> {
    (bounds.servers >= 5).then_some(MAX_STATES)
}

/// What [`shorten`] did for one counterexample.
#[derive(Clone, Debug)]
pub struct Shortened {
    pub property: &'static str,
    /// Steps of the depth-first counterexample.
    pub from_steps: usize,
    /// Steps of the breadth-first one (equal when it is already shortest).
    pub to_steps: usize,
    /// The bound the breadth-first search explored.
    pub witness: Bounds,
    /// States that search stored, and its wall time.
    pub states: usize,
    pub seconds: f64,
}

/// Searches the witness bound of `path` (a counterexample to the `always`
/// property `property` found with `options`) breadth-first on one thread.
/// One such search is not enough for a shortest path: stateright's BFS
/// checks states in blocks of 1,500 and records a property's discovery by
/// overwriting, so a deeper violation later in the same block replaces a
/// shallower one (seen: `pre-vote-raises-term`, 3 steps reported where 2
/// exist). So the search is repeated with a depth limit below the path it
/// found until none is found: the last path found is a shortest one.
/// Returns it when it is shorter, with a record of the searches; `None` when
/// the first search ran out of `budget` (the caller keeps the path it has).
pub fn shorten(
    options: &RunOptions,
    property: &'static str,
    path: &StatePath,
    budget: Duration,
) -> Option<(StatePath, Shortened)> {
    let witness = witness_bound(&options.bounds, path);
    let mut bfs = RunOptions::check(witness.clone());
    bfs.bug = options.bug;
    bfs.strategy = Strategy::Bfs;
    // Several threads would interleave the levels: only one keeps BFS's
    // promise of a shortest path.
    bfs.threads = 1;
    bfs.symmetry = false;
    bfs.timeout = Some(budget);
    bfs.max_states = state_cap(&witness);
    bfs.stop_at = Some(property);
    let started = Instant::now();
    let outcome = run(&bfs);
    let mut shortest = outcome.discoveries.get(property)?.clone();
    let mut states = outcome.report.distinct_states;
    // Deepening from below the path found: a search limited to fewer steps
    // that finds nothing proves the last path shortest.
    loop {
        let steps = shortest.len().saturating_sub(1);
        let left = budget.saturating_sub(started.elapsed());
        if steps <= 1 || left.is_zero() {
            break;
        }
        bfs.max_steps = Some(steps);
        bfs.timeout = Some(left);
        let shallower = run(&bfs);
        states += shallower.report.distinct_states;
        match shallower.discoveries.get(property) {
            Some(found) if found.len() < shortest.len() => shortest = found.clone(),
            _ => break,
        }
    }
    let from_steps = path.len().saturating_sub(1);
    let to_steps = shortest.len().saturating_sub(1);
    // The DFS path lies in the witness bound, so BFS cannot do worse.
    assert!(
        to_steps <= from_steps,
        "BFS found {to_steps} steps where DFS found {from_steps}"
    );
    let record = Shortened {
        property,
        from_steps,
        to_steps,
        witness,
        states,
        seconds: started.elapsed().as_secs_f64(),
    };
    Some((shortest, record))
}
