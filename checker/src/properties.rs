//! The paper's five safety properties (Figure 3), checked on every state, and
//! the `sometimes` properties that prove the exploration is not vacuous.
//! Definitions and names are those of spec/Raft.tla (see spec/README.md).

use imbl::OrdSet;
use raft_model::{Config, Index, NodeId, Payload, Role, Term};

use crate::state::{
    OBSERVED_BATCH_PARTLY_COVERED, OBSERVED_COMMITTED_AHEAD_OF_LEADER_WRITE,
    OBSERVED_CONFLICT_INSIDE_BATCH, OBSERVED_CONFLICT_OVERWRITTEN, OBSERVED_CONFLICT_TERM_SKIPPED,
    OBSERVED_CRASH_LOST_REPLICATED_ENTRY, OBSERVED_LEADERSHIP_TRANSFERRED,
    OBSERVED_PIPELINE_FELL_BACK, OBSERVED_PRE_CANDIDATE_STOOD_DOWN,
    OBSERVED_PRE_VOTE_REFUSED_IN_LEASE, OBSERVED_READ_FAILED, OBSERVED_SNAPSHOT_DISCARDED_CONFLICT,
    OBSERVED_SNAPSHOT_INSTALLED, OBSERVED_SNAPSHOT_KEPT_SUFFIX, OBSERVED_STALE_SNAPSHOT_IGNORED,
    OBSERVED_STEPPED_DOWN, RaftServer, RaftState, entry_at, log_length, term_at,
};

/// Every `always` property at once.
pub fn all_safety_properties_hold(state: &RaftState) -> bool {
    election_safety(state)
        && leader_append_only(state)
        && log_matching(state)
        && log_terms_monotonic(state)
        && leader_completeness(state)
        && state_machine_safety(state)
        && read_index_safety(state)
        && pre_vote_raises_no_term(state)
        && candidate_knows_no_leader(state)
        && pre_vote_respects_lease(state)
        && timeout_now_campaigns(state)
        && transfer_freezes_log(state)
        && single_uncommitted_change(state)
        && quorums_intersect(state)
        && removed_leader_steps_down(state)
        && transfer_not_during_change(state)
}

/// Election Safety: at most one leader per term, ever (reads `elected`).
pub fn election_safety(state: &RaftState) -> bool {
    two_leaders_of_one_term(state).is_none()
}

/// Where Election Safety fails: a term and two servers elected in it.
pub fn two_leaders_of_one_term(state: &RaftState) -> Option<(Term, NodeId, NodeId)> {
    // `elected` is ordered by (term, id): two leaders of one term are adjacent.
    let elected: Vec<&(Term, NodeId)> = state.elected.iter().collect();
    elected.windows(2).find_map(|pair| {
        let (&(t1, a), &(t2, b)) = (pair[0], pair[1]);
        (t1 == t2 && a != b).then_some((t1, a, b))
    })
}

/// Leader Append-Only: a leader never overwrites or deletes its log entries
/// within its term. The step function records a breach in a history flag.
pub fn leader_append_only(state: &RaftState) -> bool {
    !state.leader_append_only_violated
}

/// Log Matching: if two logs hold an entry with the same index and term, they
/// are identical in every entry up to that index (snapshot-covered prefixes
/// compared through the snapshot image).
pub fn log_matching(state: &RaftState) -> bool {
    logs_that_do_not_match(state).is_none()
}

/// Where Log Matching fails: two servers `a` and `b`, an index at which
/// both hold an entry of the same term, and the first index, at or below
/// it, at which their logs differ.
pub struct LogMismatch {
    pub a: NodeId,
    pub b: NodeId,
    pub index: Index,
    pub term: Term,
    pub first_difference: Index,
}

pub fn logs_that_do_not_match(state: &RaftState) -> Option<LogMismatch> {
    for (i, a) in state.servers.iter().enumerate() {
        for b in &state.servers[i + 1..] {
            let common = log_length(a).min(log_length(b));
            let Some(first_difference) =
                (1..=common).find(|&index| entry_at(a, index) != entry_at(b, index))
            else {
                continue;
            };
            // An entry of the same term at or past the first difference.
            let same_term = (first_difference..=common).find_map(|index| {
                let term = entry_at(a, index)?.term;
                (entry_at(b, index).map(|e| e.term) == Some(term)).then_some((index, term))
            });
            if let Some((index, term)) = same_term {
                return Some(LogMismatch {
                    a: a.id(),
                    b: b.id(),
                    index,
                    term,
                    first_difference,
                });
            }
        }
    }
    None
}

/// Log Terms Monotonic: terms never decrease along a log, snapshot image
/// included. A leader appends only entries of its current term, which is at
/// least every term its log holds; a follower takes a leader's entries after
/// a matching prefix and drops its own from the first conflict on; a
/// snapshot keeps the log after it only if the entry at its last index is of
/// its last term. So every log is a leader's prefix followed by nothing
/// older. (Verdi's proof of Raft calls it `sorted`.) A follower that keeps
/// entries after a conflict breaks it at once, where Log Matching needs a
/// second server holding those entries: five servers, not three.
pub fn log_terms_monotonic(state: &RaftState) -> bool {
    log_term_that_decreases(state).is_none()
}

/// Where Log Terms Monotonic fails: a server, an index, and the terms of
/// the entries at the index before it and at it (the later one lower).
pub fn log_term_that_decreases(state: &RaftState) -> Option<(NodeId, Index, Term, Term)> {
    state.servers.iter().find_map(|server| {
        let mut before = 0;
        (1..=log_length(server)).find_map(|index| {
            let term = term_at(server, index)?;
            let drop = (term < before).then_some((server.id(), index, before, term));
            before = term;
            drop
        })
    })
}

/// Leader Completeness: an entry committed in term `ct` is in the log of every
/// leader of a later term (or inside its snapshot).
pub fn leader_completeness(state: &RaftState) -> bool {
    committed_entry_missing_from_a_leader(state).is_none()
}

/// Where Leader Completeness fails: a committed `(index, term, commit
/// term)` and a leader of a later term whose log lacks it.
pub fn committed_entry_missing_from_a_leader(
    state: &RaftState,
) -> Option<((Index, Term, Term), &RaftServer)> {
    state
        .committed
        .iter()
        .find_map(|&(index, term, commit_term)| {
            state
                .servers
                .iter()
                .filter(|l| l.role() == Role::Leader && l.current_term() > commit_term)
                .find(|l| index > l.log().snapshot_index && l.log().term_at(index) != Some(term))
                .map(|leader| ((index, term, commit_term), &**leader))
        })
}

/// State Machine Safety: servers that applied an index applied the same entry
/// there (applied prefix = snapshot image then entries up to the commit index).
pub fn state_machine_safety(state: &RaftState) -> bool {
    applied_entries_that_differ(state).is_none()
}

/// Where State Machine Safety fails: two servers and an index both applied
/// with different entries (or one the server does not hold).
pub fn applied_entries_that_differ(state: &RaftState) -> Option<(&RaftServer, &RaftServer, Index)> {
    for (i, a) in state.servers.iter().enumerate() {
        for b in &state.servers[i + 1..] {
            let both = a.commit_index().min(b.commit_index());
            if let Some(index) = (1..=both).find(|&index| {
                entry_at(a, index) != entry_at(b, index) || entry_at(a, index).is_none()
            }) {
                return Some((a, b, index));
            }
        }
    }
    None
}

/// ReadIndexSafety (linearizable reads, paper §8): every read released at
/// index `r` has `r >= readBound[id]`, the highest index committed when it
/// was registered, so its answer reflects every write that completed before
/// the read arrived.
pub fn read_index_safety(state: &RaftState) -> bool {
    read_answered_too_early(state).is_none()
}

/// Where ReadIndexSafety fails: a released read `(id, index)` and its bound
/// (`None`: the read was never registered, which a released read must be).
pub fn read_answered_too_early(state: &RaftState) -> Option<(u64, Index, Option<Index>)> {
    state.reads_ready.iter().find_map(|&(id, index)| {
        let bound = usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_sub(1))
            .and_then(|k| state.read_bound.get(k).copied());
        match bound {
            Some(bound) if index >= bound => None,
            _ => Some((id, index, bound)),
        }
    })
}

/// PreVoteRaisesNoTerm (dissertation §9.6): a server's term rises only by
/// its own campaign (to the next term, voting for itself) or to the term of
/// a message it received that is not a pre-vote request or grant, whose
/// term no one holds. The step function records a breach in a history flag.
pub fn pre_vote_raises_no_term(state: &RaftState) -> bool {
    !state.pre_vote_raised_term
}

/// CandidateKnowsNoLeader: a candidate or pre-candidate knows no leader of
/// its term. Its election timeout forgot the leader, and hearing from one
/// ends a candidacy. A pre-candidate that kept it would keep that leader's
/// lease and refuse every other pre-candidate (etcd-io/etcd#9586).
pub fn candidate_knows_no_leader(state: &RaftState) -> bool {
    candidate_with_a_leader(state).is_none()
}

/// Where CandidateKnowsNoLeader fails: the (pre-)candidate.
pub fn candidate_with_a_leader(state: &RaftState) -> Option<&RaftServer> {
    state
        .servers
        .iter()
        .find(|s| {
            matches!(s.role(), Role::Candidate | Role::PreCandidate) && s.leader_id().is_some()
        })
        .map(|s| &**s)
}

/// PreVoteRespectsLease: no server grants a pre-vote while it holds a lease
/// (`InLease`: it heard from the leader of its term, or restarted, since its
/// election timer last fired); a restart gives a lease and an election
/// timeout takes it away. The step function records a breach in a history
/// flag.
pub fn pre_vote_respects_lease(state: &RaftState) -> bool {
    !state.pre_vote_lease_broken
}

/// TimeoutNowCampaigns (dissertation §3.10): a voting member that receives a
/// TimeoutNow of its term (after the term rule), and is not that term's
/// leader, starts an election in the next term in that very step, without
/// a pre-election, which the other followers, still hearing from the old
/// leader, would refuse. The step function records a breach in a history
/// flag.
pub fn timeout_now_campaigns(state: &RaftState) -> bool {
    !state.timeout_now_ignored
}

/// TransferFreezesLog (dissertation §3.10): a leader handing leadership
/// over appends nothing to its log (it refuses client requests), so that
/// the target can catch up with its last entry. The step function records
/// a breach in a history flag.
pub fn transfer_freezes_log(state: &RaftState) -> bool {
    !state.transfer_log_grew
}

/// Sometimes: a leader handing leadership over stepped down for a newer
/// term its transferee started.
pub fn leadership_transferred(state: &RaftState) -> bool {
    state.observed & OBSERVED_LEADERSHIP_TRANSFERRED != 0
}

/// Sometimes (parallel writes): a leader's commit index passed the entries
/// its own storage holds: its followers committed an entry while the
/// leader's write of it was still under way.
pub fn committed_ahead_of_leader_write(state: &RaftState) -> bool {
    state.observed & OBSERVED_COMMITTED_AHEAD_OF_LEADER_WRITE != 0
}

/// Sometimes (parallel writes): a leader crashed before its write of an
/// entry completed and came back without it, while another server holds it.
pub fn crash_lost_replicated_entry(state: &RaftState) -> bool {
    state.observed & OBSERVED_CRASH_LOST_REPLICATED_ENTRY != 0
}

/// Sometimes (pipelining): two AppendEntries requests carrying different
/// entries are on their way from one leader to one follower at once — the
/// second sent before the first was acknowledged.
pub fn requests_pipelined(state: &RaftState) -> bool {
    let mut carrying: Vec<(NodeId, NodeId, Term, Index)> = state
        .network
        .messages()
        .filter_map(|m| match &m.body {
            raft_model::Body::AppendEntriesRequest {
                prev_log_index,
                entries,
                ..
            } if !entries.is_empty() => Some((m.from, m.to, m.term, *prev_log_index)),
            _ => None,
        })
        .collect();
    carrying.sort_unstable();
    carrying.dedup();
    carrying
        .windows(2)
        .any(|pair| pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1 && pair[0].2 == pair[1].2)
}

/// Sometimes (pipelining): a rejection took a leader's `next_index` back
/// over entries it had sent and not had acknowledged.
pub fn pipeline_fell_back(state: &RaftState) -> bool {
    state.observed & OBSERVED_PIPELINE_FELL_BACK != 0
}

/// Sometimes: a server refused a pre-vote only for its lease.
pub fn pre_vote_refused_in_lease(state: &RaftState) -> bool {
    state.observed & OBSERVED_PRE_VOTE_REFUSED_IN_LEASE != 0
}

/// Sometimes: a pre-candidate heard from the leader of its term and
/// followed it (a server back from a partition rejoins without an election).
pub fn pre_candidate_stood_down(state: &RaftState) -> bool {
    state.observed & OBSERVED_PRE_CANDIDATE_STOOD_DOWN != 0
}

/// Sometimes: some server is leader.
pub fn leader_elected(state: &RaftState) -> bool {
    !state.elected.is_empty()
}

/// Sometimes: a client command is applied by some server (committed and
/// known committed there).
pub fn command_committed(state: &RaftState) -> bool {
    state.servers.iter().any(|s| {
        (1..=s.commit_index()).any(|index| {
            entry_at(s, index).is_some_and(|e| matches!(e.payload, Payload::Command(_)))
        })
    })
}

/// Sometimes: a leader was followed by a leader of a higher term.
pub fn leader_replaced(state: &RaftState) -> bool {
    let mut terms = state.elected.iter().map(|(term, _)| *term);
    match terms.next() {
        Some(first) => terms.any(|term| term > first),
        None => false,
    }
}

/// Sometimes: a follower overwrote a conflicting suffix of its log (observed
/// on the step into this state).
pub fn conflict_overwritten(state: &RaftState) -> bool {
    state.observed & OBSERVED_CONFLICT_OVERWRITTEN != 0
}

/// Sometimes: a follower installed a leader's snapshot (observed on the step
/// into this state).
pub fn snapshot_installed(state: &RaftState) -> bool {
    state.observed & OBSERVED_SNAPSHOT_INSTALLED != 0
}

/// Sometimes: a leader released a read (`readsReady` is not empty).
pub fn read_served(state: &RaftState) -> bool {
    !state.reads_ready.is_empty()
}

/// Sometimes: a leader lost its leadership with reads pending and failed
/// them (`reads_failed`, observed on the step into this state).
pub fn read_failed(state: &RaftState) -> bool {
    state.observed & OBSERVED_READ_FAILED != 0
}

/// Sometimes: InstallSnapshot kept the follower's entries past the
/// snapshot, which matched it (observed).
pub fn snapshot_kept_matching_suffix(state: &RaftState) -> bool {
    state.observed & OBSERVED_SNAPSHOT_KEPT_SUFFIX != 0
}

/// Sometimes: InstallSnapshot discarded a follower's log that conflicted
/// with the snapshot (observed).
pub fn snapshot_discarded_conflicting_log(state: &RaftState) -> bool {
    state.observed & OBSERVED_SNAPSHOT_DISCARDED_CONFLICT != 0
}

/// Sometimes: a follower ignored an InstallSnapshot of its term no newer
/// than its commit index (observed).
pub fn stale_snapshot_ignored(state: &RaftState) -> bool {
    state.observed & OBSERVED_STALE_SNAPSHOT_IGNORED != 0
}

/// Sometimes: an AppendEntries of 2+ entries met its first conflict past its
/// first entry (observed).
pub fn conflict_inside_batch(state: &RaftState) -> bool {
    state.observed & OBSERVED_CONFLICT_INSIDE_BATCH != 0
}

/// Sometimes: a leader, on a rejection carrying a conflict term, moved its
/// `next_index` for that peer back by more than one entry (observed).
pub fn conflict_term_skipped(state: &RaftState) -> bool {
    state.observed & OBSERVED_CONFLICT_TERM_SKIPPED != 0
}

/// Sometimes: an AppendEntries of 2+ entries started at or below the
/// follower's snapshot index and ended above it (observed).
pub fn batch_partly_covered_by_snapshot(state: &RaftState) -> bool {
    state.observed & OBSERVED_BATCH_PARTLY_COVERED != 0
}

/// Sometimes: a leader took the CheckQuorum step without a quorum of answers
/// since its last one, and stepped down (observed).
pub fn leader_stepped_down(state: &RaftState) -> bool {
    state.observed & OBSERVED_STEPPED_DOWN != 0
}

// ------------------------------------------------- membership changes

/// The configuration in force at `index` of a server's whole log: the
/// latest configuration entry at or below it, or the initial configuration
/// (spec `ConfigAt`).
fn config_at(state: &RaftState, server: &RaftServer, index: Index) -> Config {
    (1..=index.min(log_length(server)))
        .rev()
        .find_map(|n| entry_at(server, n).and_then(|e| e.config().cloned()))
        .unwrap_or_else(|| state.initial_config.clone())
}

/// Does a server's whole log reach the highest committed index and hold
/// every committed entry as committed (spec `IsLive`)? Only such a log's
/// entries past that index may still commit.
fn is_live(state: &RaftState, server: &RaftServer, committed: Index) -> bool {
    log_length(server) >= committed
        && state
            .committed
            .iter()
            .all(|&(n, t, _)| n > log_length(server) || term_at(server, n) == Some(t))
}

/// The configurations of the live logs' entries past the highest committed
/// index (spec `PendingConfigs`): the changes not yet committed.
fn pending_configs(state: &RaftState) -> OrdSet<Config> {
    let committed = state.committed_index();
    state
        .servers
        .iter()
        .filter(|s| is_live(state, s, committed))
        .flat_map(|s| {
            (committed + 1..=log_length(s)).filter_map(|n| entry_at(s, n)?.config().cloned())
        })
        .collect()
}

/// SingleUncommittedChange: at most one configuration change is
/// uncommitted, cluster-wide — the live logs hold past the highest
/// committed index configuration entries of one configuration at most
/// (copies of C_new that a new leader appends again count once).
pub fn single_uncommitted_change(state: &RaftState) -> bool {
    // Only ChangeConfig and ChangeLearners make configuration entries.
    state.config_changes == 0 && state.learner_changes == 0 || pending_configs(state).len() <= 1
}

/// Do every quorum of `a` and every quorum of `b` share a server (among
/// `universe`)? No quorum of `a` leaves a quorum of `b` outside it (spec
/// `QuorumsOverlap`; quorums are closed upwards, so checking complements
/// is enough).
pub fn quorums_overlap(a: &Config, b: &Config, universe: &[NodeId]) -> bool {
    let n = universe.len() as u32;
    (0u32..(1 << n)).all(|set| {
        let inside: Vec<NodeId> = (0..n)
            .filter(|k| set & (1 << k) != 0)
            .map(|k| universe[k as usize])
            .collect();
        let outside: Vec<NodeId> = universe
            .iter()
            .copied()
            .filter(|id| !inside.contains(id))
            .collect();
        !(a.is_quorum(&inside) && b.is_quorum(&outside))
    })
}

/// The configurations that could decide the next index (spec
/// `DecidingConfigs`): of every live server, the configuration in force at
/// the highest committed index, every configuration of its log past it, and
/// the configuration it holds.
fn deciding_configs(state: &RaftState) -> OrdSet<Config> {
    let committed = state.committed_index();
    let mut configs = pending_configs(state);
    for s in state
        .servers
        .iter()
        .filter(|s| is_live(state, s, committed))
    {
        configs.insert(config_at(state, s, committed));
        configs.insert(s.config().clone());
    }
    configs
}

/// QuorumsIntersect: every two configurations that could decide the same
/// index have intersecting quorums, so no two leaders of one term and no
/// two different entries committed at one index can come from them.
pub fn quorums_intersect(state: &RaftState) -> bool {
    // Without a change every server holds the initial configuration.
    state.config_changes == 0 && state.learner_changes == 0 || disjoint_quorums(state).is_none()
}

/// Where QuorumsIntersect fails: two deciding configurations with disjoint
/// quorums.
pub fn disjoint_quorums(state: &RaftState) -> Option<(Config, Config)> {
    let universe: Vec<NodeId> = state.servers.iter().map(|s| s.id()).collect();
    let configs: Vec<Config> = deciding_configs(state).into_iter().collect();
    for (k, a) in configs.iter().enumerate() {
        for b in &configs[k + 1..] {
            if !quorums_overlap(a, b, &universe) {
                return Some((a.clone(), b.clone()));
            }
        }
    }
    None
}

/// RemovedLeaderStepsDown: no leader is outside its configuration once
/// that configuration has committed (it led without counting itself until
/// then, and steps down in the step that commits it).
pub fn removed_leader_steps_down(state: &RaftState) -> bool {
    state.servers.iter().all(|s| {
        s.role() != Role::Leader
            || s.config().contains(s.id())
            || s.config_of_log().1 > s.commit_index()
    })
}

/// TransferNotDuringChange: no leader hands leadership over while a
/// configuration change is pending in its log.
pub fn transfer_not_during_change(state: &RaftState) -> bool {
    state.servers.iter().all(|s| {
        s.role() != Role::Leader || s.lead_transferee().is_none() || !s.config_change_pending()
    })
}

/// Goal: a configuration change completed — some leader committed a simple
/// configuration other than the initial one.
pub fn config_change_committed(state: &RaftState) -> bool {
    state.servers.iter().any(|s| {
        s.role() == Role::Leader
            && !s.config().is_joint()
            && *s.config() != state.initial_config
            && s.config_of_log().1 <= s.commit_index()
    })
}
