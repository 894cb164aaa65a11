//! The stateright [`Model`]: the spec's initial state, its actions (carried
//! out by the core, see `step.rs`) and its properties.
//!
//! ## Bounds: TLC's CONSTRAINT semantics
//! TLC checks the invariants on a state outside its CONSTRAINT but neither
//! stores it (it is not among the "distinct states") nor expands it.
//! stateright's `within_boundary` alone would drop such a state unchecked.
//! This model reproduces TLC: `within_boundary` checks the safety properties
//! on a state outside `WithinBounds` itself and drops it when they hold, so
//! it is checked, not stored, not expanded. It keeps the few that stateright
//! must see: those violating a property (so that stateright reports the
//! counterexample path) and those whose step is observed by a `sometimes`
//! property. A kept boundary state has no successors (`actions` is empty) and
//! is counted apart, so the report's "distinct states within bounds" is the
//! figure TLC prints for the same bound.

use std::sync::atomic::{AtomicUsize, Ordering};

use imbl::{OrdSet, Vector};
use raft_model::{Bug, Config, NodeId, Server};
use stateright::{Model, Property};

use crate::action::Action;
use crate::bounds::Bounds;
use crate::network::Network;
use crate::properties;
use crate::state::RaftState;
use crate::step;

pub const ELECTION_SAFETY: &str = "ElectionSafety";
pub const LEADER_APPEND_ONLY: &str = "LeaderAppendOnly";
pub const LOG_MATCHING: &str = "LogMatching";
pub const LEADER_COMPLETENESS: &str = "LeaderCompleteness";
pub const STATE_MACHINE_SAFETY: &str = "StateMachineSafety";

pub const LEADER_ELECTED: &str = "LeaderElected";
pub const COMMAND_COMMITTED: &str = "CommandCommitted";
pub const LEADER_REPLACED: &str = "LeaderReplacedByHigherTerm";
pub const CONFLICT_OVERWRITTEN: &str = "ConflictingSuffixOverwritten";
pub const SNAPSHOT_INSTALLED: &str = "FollowerBroughtUpBySnapshot";

/// The `always` properties: the paper's Figure 3.
pub const SAFETY_PROPERTIES: [&str; 5] = [
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
];

/// The `sometimes` properties: evidence that the exploration is not vacuous.
pub const REACHABILITY_PROPERTIES: [&str; 5] = [
    LEADER_ELECTED,
    COMMAND_COMMITTED,
    LEADER_REPLACED,
    CONFLICT_OVERWRITTEN,
    SNAPSHOT_INSTALLED,
];

pub struct RaftModel {
    pub bounds: Bounds,
    pub bugs: Vec<Bug>,
    /// Boundary states (outside `WithinBounds`) stateright kept and stored
    /// (see the module docs); one `actions` call each in an exhaustive search.
    kept_boundary_states: AtomicUsize,
    /// Boundary states generated, checked and dropped (repeats included).
    checked_boundary_states: AtomicUsize,
    /// List only actions that change the state (see [`RaftModel::for_simulation`]).
    only_effective_actions: bool,
}

impl RaftModel {
    pub fn new(bounds: Bounds, bugs: Vec<Bug>) -> Self {
        RaftModel {
            bounds,
            bugs,
            kept_boundary_states: AtomicUsize::new(0),
            checked_boundary_states: AtomicUsize::new(0),
            only_effective_actions: false,
        }
    }

    /// The model for stateright's simulation checker, which replays a walk
    /// from the action indices it recorded, but records a wrong index after
    /// an action whose `next_state` is `None` (it picks again from a shrunk
    /// list). So in simulation the model lists only actions that change the
    /// state, at the price of computing each successor twice.
    pub fn for_simulation(bounds: Bounds, bugs: Vec<Bug>) -> Self {
        RaftModel {
            only_effective_actions: true,
            ..RaftModel::new(bounds, bugs)
        }
    }

    /// Every server new: term 0, empty log, configuration = all servers,
    /// empty image; empty network and histories; counters at 0.
    pub fn initial_state(&self) -> RaftState {
        let ids: Vec<NodeId> = (1..=NodeId::from(self.bounds.servers)).collect();
        let config = Config::new(ids.iter().copied());
        let servers = ids
            .iter()
            .map(|&id| {
                Server::new(id, config.clone(), Vector::new())
                    .with_max_append_entries(usize::from(self.bounds.max_append_entries))
                    .with_bugs(&self.bugs)
            })
            .collect();
        RaftState {
            servers,
            network: Network::new(),
            elected: OrdSet::new(),
            committed: OrdSet::new(),
            client_requests: 0,
            restarts: 0,
            compactions: 0,
            duplicates: 0,
            drops: 0,
            leader_append_only_violated: false,
            observed: 0,
        }
    }

    /// Distinct boundary states stored so far (exhaustive checks only).
    pub fn kept_boundary_states(&self) -> usize {
        self.kept_boundary_states.load(Ordering::Relaxed)
    }

    /// Boundary states checked and dropped so far, repeats included.
    pub fn checked_boundary_states(&self) -> usize {
        self.checked_boundary_states.load(Ordering::Relaxed)
    }
}

impl Model for RaftModel {
    type State = RaftState;
    type Action = Action;

    fn init_states(&self) -> Vec<RaftState> {
        vec![self.initial_state()]
    }

    fn actions(&self, state: &RaftState, actions: &mut Vec<Action>) {
        if !step::within_bounds(&self.bounds, state) {
            self.kept_boundary_states.fetch_add(1, Ordering::Relaxed);
            return;
        }
        step::enabled_actions(&self.bounds, state, actions);
        if self.only_effective_actions {
            actions.retain(|action| step::next_state(state, action).is_some());
        }
    }

    fn next_state(&self, state: &RaftState, action: Action) -> Option<RaftState> {
        step::next_state(state, &action)
    }

    fn within_boundary(&self, state: &RaftState) -> bool {
        if step::within_bounds(&self.bounds, state) {
            return true;
        }
        let keep = state.observed != 0 || !properties::all_safety_properties_hold(state);
        if !keep {
            self.checked_boundary_states.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }

    fn format_action(&self, action: &Action) -> String {
        action.to_string()
    }

    /// The Explorer's view of a step: the state after it, compactly.
    fn format_step(&self, last_state: &RaftState, action: Action) -> Option<String> {
        self.next_state(last_state, action)
            .map(|next| crate::describe::state(&next))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ELECTION_SAFETY, |_, s| properties::election_safety(s)),
            Property::always(LEADER_APPEND_ONLY, |_, s| properties::leader_append_only(s)),
            Property::always(LOG_MATCHING, |_, s| properties::log_matching(s)),
            Property::always(LEADER_COMPLETENESS, |_, s| {
                properties::leader_completeness(s)
            }),
            Property::always(STATE_MACHINE_SAFETY, |_, s| {
                properties::state_machine_safety(s)
            }),
            Property::sometimes(LEADER_ELECTED, |_, s| properties::leader_elected(s)),
            Property::sometimes(COMMAND_COMMITTED, |_, s| properties::command_committed(s)),
            Property::sometimes(LEADER_REPLACED, |_, s| properties::leader_replaced(s)),
            Property::sometimes(CONFLICT_OVERWRITTEN, |_, s| {
                properties::conflict_overwritten(s)
            }),
            Property::sometimes(SNAPSHOT_INSTALLED, |_, s| properties::snapshot_installed(s)),
        ]
    }
}
