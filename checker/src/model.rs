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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imbl::Vector;
use raft_model::{Bug, Config, NodeId, Server};
use stateright::{Model, Property};

use crate::action::Action;
use crate::bounds::Bounds;
use crate::properties;
use crate::state::RaftState;
use crate::step;

pub const ELECTION_SAFETY: &str = "ElectionSafety";
pub const LEADER_APPEND_ONLY: &str = "LeaderAppendOnly";
pub const LOG_MATCHING: &str = "LogMatching";
pub const LOG_TERMS_MONOTONIC: &str = "LogTermsMonotonic";
pub const LEADER_COMPLETENESS: &str = "LeaderCompleteness";
pub const STATE_MACHINE_SAFETY: &str = "StateMachineSafety";
pub const READ_INDEX_SAFETY: &str = "ReadIndexSafety";
pub const PRE_VOTE_RAISES_NO_TERM: &str = "PreVoteRaisesNoTerm";
pub const CANDIDATE_KNOWS_NO_LEADER: &str = "CandidateKnowsNoLeader";
pub const PRE_VOTE_RESPECTS_LEASE: &str = "PreVoteRespectsLease";
pub const TIMEOUT_NOW_CAMPAIGNS: &str = "TimeoutNowCampaigns";
pub const TRANSFER_FREEZES_LOG: &str = "TransferFreezesLog";
pub const SINGLE_UNCOMMITTED_CHANGE: &str = "SingleUncommittedChange";
pub const QUORUMS_INTERSECT: &str = "QuorumsIntersect";
pub const REMOVED_LEADER_STEPS_DOWN: &str = "RemovedLeaderStepsDown";
pub const TRANSFER_NOT_DURING_CHANGE: &str = "TransferNotDuringChange";
pub const CONFIG_CHANGE_COMMITTED: &str = "ConfigChangeCommitted";

pub const LEADER_ELECTED: &str = "LeaderElected";
pub const COMMAND_COMMITTED: &str = "CommandCommitted";
pub const LEADER_REPLACED: &str = "LeaderReplacedByHigherTerm";
pub const CONFLICT_OVERWRITTEN: &str = "ConflictingSuffixOverwritten";
pub const SNAPSHOT_INSTALLED: &str = "FollowerBroughtUpBySnapshot";
pub const READ_SERVED: &str = "ReadServed";
pub const READ_FAILED: &str = "ReadFailedByLostLeadership";
pub const SNAPSHOT_KEPT_SUFFIX: &str = "SnapshotKeptMatchingSuffix";
pub const SNAPSHOT_DISCARDED_CONFLICT: &str = "SnapshotDiscardedConflictingLog";
pub const STALE_SNAPSHOT_IGNORED: &str = "StaleSnapshotIgnored";
pub const CONFLICT_INSIDE_BATCH: &str = "ConflictInsideBatch";
pub const BATCH_PARTLY_COVERED: &str = "BatchPartlyCoveredBySnapshot";
pub const LEADER_STEPPED_DOWN: &str = "LeaderSteppedDownWithoutQuorum";
pub const CONFLICT_TERM_SKIPPED: &str = "ConflictTermSkipped";
pub const PRE_VOTE_REFUSED_IN_LEASE: &str = "PreVoteRefusedInLease";
pub const PRE_CANDIDATE_STOOD_DOWN: &str = "PreCandidateStoodDown";
pub const LEADERSHIP_TRANSFERRED: &str = "LeadershipTransferred";
pub const COMMITTED_AHEAD_OF_LEADER_WRITE: &str = "CommittedAheadOfLeaderWrite";
pub const CRASH_LOST_REPLICATED_ENTRY: &str = "LeaderCrashLostReplicatedEntry";
pub const REQUESTS_PIPELINED: &str = "RequestsPipelined";
pub const PIPELINE_FELL_BACK: &str = "PipelineFellBack";

/// The `always` properties: the paper's Figure 3, the spec's
/// ReadIndexSafety (which holds vacuously when `--max-reads` is 0), and
/// PreVote's three (vacuous without `--pre-vote on`, but for
/// CandidateKnowsNoLeader, which the paper's candidates keep too), and
/// leadership transfer's TimeoutNowCampaigns and TransferFreezesLog (vacuous
/// without `--max-transfers`), and the membership changes' four (vacuous
/// without `--max-config-changes`).
pub const SAFETY_PROPERTIES: [&str; 16] = [
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LOG_TERMS_MONOTONIC,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    READ_INDEX_SAFETY,
    PRE_VOTE_RAISES_NO_TERM,
    CANDIDATE_KNOWS_NO_LEADER,
    PRE_VOTE_RESPECTS_LEASE,
    TIMEOUT_NOW_CAMPAIGNS,
    TRANSFER_FREEZES_LOG,
    SINGLE_UNCOMMITTED_CHANGE,
    QUORUMS_INTERSECT,
    REMOVED_LEADER_STEPS_DOWN,
    TRANSFER_NOT_DURING_CHANGE,
];

/// Every `sometimes` property: evidence that the exploration is not vacuous
/// and reaches the core's branches. A bound checks those it makes possible
/// ([`applicable_goals`]) and requires those it is known to reach
/// ([`required_goals`]).
pub const REACHABILITY_PROPERTIES: [&str; 22] = [
    LEADER_ELECTED,
    COMMAND_COMMITTED,
    LEADER_REPLACED,
    CONFLICT_OVERWRITTEN,
    SNAPSHOT_INSTALLED,
    READ_SERVED,
    READ_FAILED,
    SNAPSHOT_KEPT_SUFFIX,
    SNAPSHOT_DISCARDED_CONFLICT,
    STALE_SNAPSHOT_IGNORED,
    CONFLICT_INSIDE_BATCH,
    BATCH_PARTLY_COVERED,
    LEADER_STEPPED_DOWN,
    CONFLICT_TERM_SKIPPED,
    PRE_VOTE_REFUSED_IN_LEASE,
    PRE_CANDIDATE_STOOD_DOWN,
    LEADERSHIP_TRANSFERRED,
    CONFIG_CHANGE_COMMITTED,
    COMMITTED_AHEAD_OF_LEADER_WRITE,
    CRASH_LOST_REPLICATED_ENTRY,
    REQUESTS_PIPELINED,
    PIPELINE_FELL_BACK,
];

/// The `sometimes` properties whose branch a bound's flags make possible at
/// all: CommandCommitted needs a client request, the read goals
/// `--max-reads` > 0, the batch goals `--max-append-entries` > 1, the
/// snapshot goals a compaction, and a replaced leader, a conflict or a read
/// failed by a lost leadership two terms. The others are left out of the
/// search and the report.
pub fn applicable_goals(bounds: &Bounds) -> Vec<&'static str> {
    let reads = bounds.max_reads > 0;
    let snapshots = bounds.max_compactions > 0;
    let batches = bounds.max_append_entries > 1;
    // Two leaders of different terms: a replaced leader, a conflict, a read
    // failed by a lost leadership.
    let terms = bounds.max_term >= 2;
    REACHABILITY_PROPERTIES
        .into_iter()
        .filter(|name| match *name {
            COMMAND_COMMITTED => bounds.max_requests > 0,
            LEADER_REPLACED | CONFLICT_OVERWRITTEN => terms,
            READ_SERVED => reads,
            READ_FAILED => reads && terms,
            SNAPSHOT_INSTALLED | SNAPSHOT_KEPT_SUFFIX | STALE_SNAPSHOT_IGNORED => snapshots,
            SNAPSHOT_DISCARDED_CONFLICT => snapshots && terms,
            CONFLICT_INSIDE_BATCH => batches && terms,
            BATCH_PARTLY_COVERED => batches && snapshots,
            LEADER_STEPPED_DOWN => bounds.check_quorum,
            // A leader heard, then another server's pre-election: two terms
            // of Timeout budget.
            PRE_VOTE_REFUSED_IN_LEASE | PRE_CANDIDATE_STOOD_DOWN => {
                bounds.pre_vote && bounds.max_term >= 2
            }
            CONFLICT_TERM_SKIPPED => conflict_runs(bounds),
            // A leader, a transfer, and the target's campaign: two terms.
            LEADERSHIP_TRANSFERRED => bounds.max_transfers > 0 && bounds.max_term >= 2,
            // A leader's no-op, C_old,new and C_new: logs of three.
            CONFIG_CHANGE_COMMITTED => bounds.max_config_changes > 0 && bounds.max_log >= 3,
            // Parallel writes: a leader's entry committed by two followers
            // (three servers or more) before its own write completes; and a
            // crash of a leader still writing an entry a follower holds.
            COMMITTED_AHEAD_OF_LEADER_WRITE => bounds.parallel_write && bounds.servers >= 3,
            CRASH_LOST_REPLICATED_ENTRY => bounds.parallel_write && bounds.max_restarts > 0,
            // Pipelining: two requests carrying entries on their way to one
            // follower (a no-op and a command); and a rejection taking a
            // leader's optimistic next_index back over a gap.
            REQUESTS_PIPELINED | PIPELINE_FELL_BACK => {
                bounds.max_inflight > 0 && bounds.max_requests > 0 && bounds.max_log >= 2
            }
            _ => true,
        })
        .collect()
}

/// Can a leader meet a follower's run of two or more entries of a term it
/// lacks (or ends sooner), so that one rejection skips more than one entry?
/// The leader's first request goes to `next_index` = its last index at
/// election + 1, and a conflict lies below its own no-op, so its log must
/// hold two entries before that no-op (`--max-log` ≥ 3), and the follower
/// two entries of one term, which takes a client command beside a no-op.
/// With three terms the leader's own two earlier entries need a second
/// command; with four, a second no-op will do.
fn conflict_runs(bounds: &Bounds) -> bool {
    bounds.max_log >= 3
        && ((bounds.max_term >= 3 && bounds.max_requests >= 2)
            || (bounds.max_term >= 4 && bounds.max_requests >= 1))
}

/// Goals that show a particular branch of the core was taken (a snapshot
/// against a matching, conflicting or newer log; a conflict inside a batch;
/// a read failed by a lost leadership). Each needs a precise interleaving,
/// so a single bound is not required to reach them: the default suite is
/// (each must be reached by some member of it, `raft-checker check`).
pub const BRANCH_GOALS: [&str; 7] = [
    READ_FAILED,
    SNAPSHOT_KEPT_SUFFIX,
    SNAPSHOT_DISCARDED_CONFLICT,
    STALE_SNAPSHOT_IGNORED,
    CONFLICT_INSIDE_BATCH,
    BATCH_PARTLY_COVERED,
    CONFLICT_TERM_SKIPPED,
];

/// The applicable goals an exhaustive check of one bound must reach to pass:
/// all but the [`BRANCH_GOALS`], which the suite requires together.
pub fn required_goals(bounds: &Bounds) -> Vec<&'static str> {
    applicable_goals(bounds)
        .into_iter()
        .filter(|name| !BRANCH_GOALS.contains(name))
        .collect()
}

/// The condition of a property by name: for an `always` property, "holds";
/// for a `sometimes` one, "reached here".
pub fn condition(name: &str) -> Option<fn(&RaftState) -> bool> {
    let condition: fn(&RaftState) -> bool = match name {
        ELECTION_SAFETY => properties::election_safety,
        LEADER_APPEND_ONLY => properties::leader_append_only,
        LOG_MATCHING => properties::log_matching,
        LOG_TERMS_MONOTONIC => properties::log_terms_monotonic,
        LEADER_COMPLETENESS => properties::leader_completeness,
        STATE_MACHINE_SAFETY => properties::state_machine_safety,
        READ_INDEX_SAFETY => properties::read_index_safety,
        PRE_VOTE_RAISES_NO_TERM => properties::pre_vote_raises_no_term,
        CANDIDATE_KNOWS_NO_LEADER => properties::candidate_knows_no_leader,
        PRE_VOTE_RESPECTS_LEASE => properties::pre_vote_respects_lease,
        TIMEOUT_NOW_CAMPAIGNS => properties::timeout_now_campaigns,
        TRANSFER_FREEZES_LOG => properties::transfer_freezes_log,
        SINGLE_UNCOMMITTED_CHANGE => properties::single_uncommitted_change,
        QUORUMS_INTERSECT => properties::quorums_intersect,
        REMOVED_LEADER_STEPS_DOWN => properties::removed_leader_steps_down,
        TRANSFER_NOT_DURING_CHANGE => properties::transfer_not_during_change,
        CONFIG_CHANGE_COMMITTED => properties::config_change_committed,
        LEADER_ELECTED => properties::leader_elected,
        COMMAND_COMMITTED => properties::command_committed,
        LEADER_REPLACED => properties::leader_replaced,
        CONFLICT_OVERWRITTEN => properties::conflict_overwritten,
        SNAPSHOT_INSTALLED => properties::snapshot_installed,
        READ_SERVED => properties::read_served,
        READ_FAILED => properties::read_failed,
        SNAPSHOT_KEPT_SUFFIX => properties::snapshot_kept_matching_suffix,
        SNAPSHOT_DISCARDED_CONFLICT => properties::snapshot_discarded_conflicting_log,
        STALE_SNAPSHOT_IGNORED => properties::stale_snapshot_ignored,
        CONFLICT_INSIDE_BATCH => properties::conflict_inside_batch,
        BATCH_PARTLY_COVERED => properties::batch_partly_covered_by_snapshot,
        LEADER_STEPPED_DOWN => properties::leader_stepped_down,
        CONFLICT_TERM_SKIPPED => properties::conflict_term_skipped,
        PRE_VOTE_REFUSED_IN_LEASE => properties::pre_vote_refused_in_lease,
        PRE_CANDIDATE_STOOD_DOWN => properties::pre_candidate_stood_down,
        LEADERSHIP_TRANSFERRED => properties::leadership_transferred,
        COMMITTED_AHEAD_OF_LEADER_WRITE => properties::committed_ahead_of_leader_write,
        CRASH_LOST_REPLICATED_ENTRY => properties::crash_lost_replicated_entry,
        REQUESTS_PIPELINED => properties::requests_pipelined,
        PIPELINE_FELL_BACK => properties::pipeline_fell_back,
        _ => return None,
    };
    Some(condition)
}

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
    /// Stop expanding states once one violates an `always` property (see
    /// [`RaftModel::stopping_at_first_violation`]).
    stop_at_violation: bool,
    /// Set when a state violating an `always` property has been generated.
    violation_seen: AtomicBool,
    /// `--timeout`: past this instant no successor is kept, so the search
    /// drains what it holds and ends. stateright's own timeout is
    /// read only when a thread runs out of work, which one thread never
    /// does before the end (`check --timeout 40 --threads 1` ran on to the
    /// end).
    deadline: Option<Instant>,
    /// Set when a successor was dropped because the deadline had passed:
    /// the search did not finish.
    deadline_hit: AtomicBool,
}

impl RaftModel {
    pub fn new(bounds: Bounds, bugs: Vec<Bug>) -> Self {
        RaftModel {
            bounds,
            bugs,
            kept_boundary_states: AtomicUsize::new(0),
            checked_boundary_states: AtomicUsize::new(0),
            only_effective_actions: false,
            stop_at_violation: false,
            violation_seen: AtomicBool::new(false),
            deadline: None,
            deadline_hit: AtomicBool::new(false),
        }
    }

    /// The model ends the search `timeout` from now (see `deadline`).
    pub fn with_timeout(self, timeout: Option<Duration>) -> Self {
        RaftModel {
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            ..self
        }
    }

    /// The model for the Explorer. Its background search (stateright's
    /// on-demand checker) ignores `finish_when` and would go on after a
    /// violation until every property had a discovery. This model keeps the
    /// first violating state (so the checker records it as the
    /// counterexample) and then keeps no other state, which ends the search.
    pub fn stopping_at_first_violation(bounds: Bounds, bugs: Vec<Bug>) -> Self {
        RaftModel {
            stop_at_violation: true,
            ..RaftModel::new(bounds, bugs)
        }
    }

    /// Whether [`RaftModel::stopping_at_first_violation`] has stopped.
    pub fn stopped_at_violation(&self) -> bool {
        self.violation_seen.load(Ordering::Relaxed)
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
        // The spare servers start with the initial configuration too, as
        // non-voters: a change can add them.
        let members = self
            .bounds
            .servers
            .saturating_sub(self.bounds.spare_servers);
        let config = Config::new(1..=NodeId::from(members));
        let servers = ids
            .iter()
            .map(|&id| {
                Server::new(id, config.clone(), Vector::new())
                    .with_max_append_entries(usize::from(self.bounds.max_append_entries))
                    .with_check_quorum(self.bounds.check_quorum)
                    .with_pre_vote(self.bounds.pre_vote)
                    .with_parallel_write(self.bounds.parallel_write)
                    .with_max_inflight(usize::from(self.bounds.max_inflight))
                    .with_bugs(&self.bugs)
            })
            .collect();
        RaftState {
            // Counted only where a bound limits them.
            timeouts: self.bounds.max_timeouts.map(|_| 0),
            heartbeats: self.bounds.max_heartbeats.map(|_| 0),
            ..RaftState::fresh(servers, config)
        }
    }

    /// Whether `--timeout` cut the search short (a successor was dropped
    /// past the deadline).
    pub fn timed_out(&self) -> bool {
        self.deadline_hit.load(Ordering::Relaxed)
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
        // Here rather than in `actions`, which stateright also calls to
        // rebuild the paths of its discoveries after the search.
        if self.deadline_hit.load(Ordering::Relaxed) {
            return false;
        }
        if self
            .deadline
            .is_some_and(|deadline| clock_due() && Instant::now() >= deadline)
        {
            self.deadline_hit.store(true, Ordering::Relaxed);
            return false;
        }
        if self.stop_at_violation {
            if self.violation_seen.load(Ordering::Relaxed) {
                return false;
            }
            if !properties::all_safety_properties_hold(state) {
                self.violation_seen.store(true, Ordering::Relaxed);
                return true;
            }
        }
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
        let enabled = applicable_goals(&self.bounds);
        let mut all = vec![
            Property::always(ELECTION_SAFETY, |_, s| properties::election_safety(s)),
            Property::always(LEADER_APPEND_ONLY, |_, s| properties::leader_append_only(s)),
            Property::always(LOG_MATCHING, |_, s| properties::log_matching(s)),
            Property::always(LOG_TERMS_MONOTONIC, |_, s| {
                properties::log_terms_monotonic(s)
            }),
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
            Property::always(READ_INDEX_SAFETY, |_, s| properties::read_index_safety(s)),
            Property::always(PRE_VOTE_RAISES_NO_TERM, |_, s| {
                properties::pre_vote_raises_no_term(s)
            }),
            Property::always(CANDIDATE_KNOWS_NO_LEADER, |_, s| {
                properties::candidate_knows_no_leader(s)
            }),
            Property::always(PRE_VOTE_RESPECTS_LEASE, |_, s| {
                properties::pre_vote_respects_lease(s)
            }),
            Property::always(TIMEOUT_NOW_CAMPAIGNS, |_, s| {
                properties::timeout_now_campaigns(s)
            }),
            Property::always(TRANSFER_FREEZES_LOG, |_, s| {
                properties::transfer_freezes_log(s)
            }),
            Property::sometimes(SNAPSHOT_INSTALLED, |_, s| properties::snapshot_installed(s)),
            Property::sometimes(READ_SERVED, |_, s| properties::read_served(s)),
            Property::sometimes(READ_FAILED, |_, s| properties::read_failed(s)),
            Property::sometimes(SNAPSHOT_KEPT_SUFFIX, |_, s| {
                properties::snapshot_kept_matching_suffix(s)
            }),
            Property::sometimes(SNAPSHOT_DISCARDED_CONFLICT, |_, s| {
                properties::snapshot_discarded_conflicting_log(s)
            }),
            Property::sometimes(STALE_SNAPSHOT_IGNORED, |_, s| {
                properties::stale_snapshot_ignored(s)
            }),
            Property::sometimes(CONFLICT_INSIDE_BATCH, |_, s| {
                properties::conflict_inside_batch(s)
            }),
            Property::sometimes(BATCH_PARTLY_COVERED, |_, s| {
                properties::batch_partly_covered_by_snapshot(s)
            }),
            Property::sometimes(LEADER_STEPPED_DOWN, |_, s| {
                properties::leader_stepped_down(s)
            }),
            Property::sometimes(CONFLICT_TERM_SKIPPED, |_, s| {
                properties::conflict_term_skipped(s)
            }),
            Property::sometimes(PRE_VOTE_REFUSED_IN_LEASE, |_, s| {
                properties::pre_vote_refused_in_lease(s)
            }),
            Property::sometimes(PRE_CANDIDATE_STOOD_DOWN, |_, s| {
                properties::pre_candidate_stood_down(s)
            }),
            Property::sometimes(LEADERSHIP_TRANSFERRED, |_, s| {
                properties::leadership_transferred(s)
            }),
            Property::always(SINGLE_UNCOMMITTED_CHANGE, |_, s| {
                properties::single_uncommitted_change(s)
            }),
            Property::always(QUORUMS_INTERSECT, |_, s| properties::quorums_intersect(s)),
            Property::always(REMOVED_LEADER_STEPS_DOWN, |_, s| {
                properties::removed_leader_steps_down(s)
            }),
            Property::always(TRANSFER_NOT_DURING_CHANGE, |_, s| {
                properties::transfer_not_during_change(s)
            }),
            Property::sometimes(CONFIG_CHANGE_COMMITTED, |_, s| {
                properties::config_change_committed(s)
            }),
            Property::sometimes(COMMITTED_AHEAD_OF_LEADER_WRITE, |_, s| {
                properties::committed_ahead_of_leader_write(s)
            }),
            Property::sometimes(CRASH_LOST_REPLICATED_ENTRY, |_, s| {
                properties::crash_lost_replicated_entry(s)
            }),
            Property::sometimes(REQUESTS_PIPELINED, |_, s| properties::requests_pipelined(s)),
            Property::sometimes(PIPELINE_FELL_BACK, |_, s| properties::pipeline_fell_back(s)),
        ];
        all.retain(|p| {
            p.expectation != stateright::Expectation::Sometimes || enabled.contains(&p.name)
        });
        all
    }
}

/// True on one call in 256 per thread: how often `within_boundary` reads
/// the clock (reading it on every successor was 1 % of the search). A search
/// generates hundreds of thousands of successors a second, so a timeout is
/// still honoured within a millisecond or so; once it has passed,
/// `deadline_hit` says so to every later call.
fn clock_due() -> bool {
    thread_local! {
        static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    CALLS.with(|calls| {
        let count = calls.get();
        calls.set(count.wrapping_add(1));
        count % 256 == 0
    })
}
