//! The checker can fail: with a seeded bug of the core switched on, it finds a
//! counterexample to the safety property the bug breaks, and that
//! counterexample is a real path of the model (replayable step by step) that
//! renders as a numbered list, a Mermaid diagram and a `raft-trace/5` trace.
//!
//! Each case uses the bug's own bound from `raft_checker::bugs::smallest_bound`
//! (the bound of the counterexample `raft-checker mutants` found for it at
//! the default suite) and stops at the first counterexample to the property
//! under test. The bugs with no killing bound yet are listed by
//! `every_bug_has_a_killing_bound_or_is_listed_open` (see checker/README.md).

use raft_checker::action::{Action, ServerStep};
use raft_checker::bounds::Bounds;
use raft_checker::model::{self, RaftModel};
use raft_checker::run::{RunOptions, StatePath, run};
use raft_checker::state::RaftState;
use raft_checker::step;
use raft_model::{Bug, NodeId};

fn holds(property: &str, state: &RaftState) -> bool {
    let condition = model::condition(property).unwrap_or_else(|| panic!("no property {property}"));
    assert!(
        model::SAFETY_PROPERTIES.contains(&property),
        "not a safety property: {property}"
    );
    condition(state)
}

/// Whether some server's step on `path` passes `test`, which is given the
/// state before the step, the server, the step and the state after it.
fn some_step(
    path: &StatePath,
    test: impl Fn(&RaftState, NodeId, &ServerStep, &RaftState) -> bool,
) -> bool {
    path.windows(2).any(|pair| match &pair[0].1 {
        Some(Action::Server { server, step }) => test(&pair[0].0, *server, step, &pair[1].0),
        _ => false,
    })
}

/// Runs the checker with `bug` on `bounds` until `property` has a
/// counterexample, checks the counterexample thoroughly and returns it.
fn assert_caught(bug: Bug, bounds: Bounds, property: &'static str) -> StatePath {
    let mut options = RunOptions::check(bounds.clone());
    options.bug = Some(bug);
    options.stop_at = Some(property);
    let outcome = run(&options);
    assert!(
        outcome.report.violated().contains(&property),
        "{bug:?} on {bounds}: no counterexample to {property}; report:\n{}",
        outcome.report.render()
    );
    assert!(!outcome.report.ok, "a violation fails the run");

    // The path starts at the initial state and every step is the model's
    // own transition; the property holds before the last step and fails after.
    let path = &outcome.discoveries[property];
    let checker_model = RaftModel::new(bounds, vec![bug]);
    assert_eq!(path[0].0, checker_model.initial_state());
    for pair in path.windows(2) {
        let action: &Action = pair[0].1.as_ref().expect("every step has an action");
        let replayed = step::next_state(&pair[0].0, action).expect("the step changes the state");
        assert_eq!(replayed, pair[1].0, "step {action} replays");
    }
    let last = &path[path.len() - 1].0;
    assert!(!holds(property, last), "the last state violates {property}");
    let why = raft_checker::violation::explain(property, last);
    assert!(why.is_some(), "the violation of {property} is named");
    let first_violation = path.iter().position(|(s, _)| !holds(property, s));
    assert_eq!(
        first_violation,
        Some(path.len() - 1),
        "the first violation ends the path:\n{}",
        outcome
            .trace(property)
            .map(|t| t.numbered())
            .unwrap_or_default()
    );

    // The three renderings.
    let trace = outcome.trace(property).expect("a trace");
    let numbered = trace.numbered();
    assert!(numbered.starts_with("  1. "), "{numbered}");
    assert!(
        numbered
            .lines()
            .filter(|l| !l.starts_with("       "))
            .count()
            == trace.step_count()
    );
    let mermaid = trace.mermaid();
    assert!(mermaid.starts_with("sequenceDiagram\n"));
    assert!(
        mermaid.contains(&format!("{property} violated")),
        "{mermaid}"
    );
    let lines: Vec<serde_json::Value> = trace
        .to_lines()
        .expect("serialisable")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let context = &lines[0];
    assert_eq!(context["kind"], "checker");
    assert_eq!(context["property"], property);
    assert_eq!(context["bug"], raft_checker::bugs::name(bug));
    let headers: Vec<_> = lines.iter().filter(|l| l["kind"] == "header").collect();
    assert!(headers.len() >= 3, "one header per server");
    assert!(headers.iter().all(|h| h["schema"] == raft_trace::SCHEMA));
    let steps: Vec<_> = lines
        .iter()
        .filter(|l| l["kind"] == "event" || l["kind"] == "drop")
        .collect();
    assert_eq!(steps.len(), trace.step_count(), "one line per step");
    let first = steps
        .iter()
        .find(|l| l["kind"] == "event")
        .expect("an event");
    assert!(!first["step"].is_null());
    assert!(first["state"]["current_term"].is_number());
    path.clone()
}

/// The path restarts a server whose durable image had lost something it
/// held in memory (a write the seeded bug did not ask for), and the trace's
/// Restart carries the image, not the state before the crash.
fn assert_restart_lost_a_write(bug: Bug, bounds: Bounds, property: &'static str) {
    let path = assert_caught(bug, bounds.clone(), property);
    let lossy_restarts: Vec<usize> = path
        .windows(2)
        .enumerate()
        .filter_map(|(k, pair)| match &pair[0].1 {
            Some(Action::Server {
                server,
                step: raft_model::Step::Restart,
            }) if pair[0].0.durable.contains_key(server) => Some(k),
            _ => None,
        })
        .collect();
    assert!(
        !lossy_restarts.is_empty(),
        "{bug:?}: no restart lost a write on the path to {property}"
    );
    let trace = raft_checker::trace::Trace {
        bounds: &bounds,
        bug: Some(raft_checker::bugs::name(bug)),
        property,
        expectation: "always",
        path: &path,
    };
    let restarts: Vec<serde_json::Value> = trace
        .to_lines()
        .expect("serialisable")
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .filter(|line| line["kind"] == "event" && line["step"] == "Restart")
        .collect();
    for (k, line) in lossy_restarts.iter().zip(&restarts) {
        let (before, action) = &path[*k];
        let id = action
            .as_ref()
            .and_then(Action::server)
            .expect("a server's step");
        let image = before.durable_image(id);
        assert_eq!(line["recovered"]["current_term"], image.current_term);
        assert_eq!(
            line["recovered"]["voted_for"],
            serde_json::json!(image.voted_for)
        );
        assert_eq!(
            line["recovered"]["entry_terms"],
            serde_json::json!(image.log.entries.iter().map(|e| e.term).collect::<Vec<_>>())
        );
        assert_ne!(
            raft_model::Durable::of(before.server(id)),
            image,
            "the image differs from the state before the crash"
        );
    }
}

/// The bug's own smallest bound (checker/src/bugs.rs, measured by
/// `raft-checker mutants`).
fn smallest(bug: Bug) -> Bounds {
    raft_checker::bugs::smallest_bound(bug).unwrap_or_else(|| panic!("{bug:?} has a killing bound"))
}

#[test]
fn vote_twice_breaks_election_safety() {
    assert_caught(
        Bug::VoteTwice,
        smallest(Bug::VoteTwice),
        model::ELECTION_SAFETY,
    );
}

#[test]
fn skip_up_to_date_check_breaks_leader_completeness() {
    let bug = Bug::SkipUpToDateCheck;
    assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

#[test]
fn up_to_date_by_index_only_breaks_leader_completeness() {
    let bug = Bug::UpToDateByIndexOnly;
    assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

#[test]
fn accept_stale_append_breaks_leader_append_only() {
    let bug = Bug::AcceptStaleAppend;
    assert_caught(bug, smallest(bug), model::LEADER_APPEND_ONLY);
}

/// A candidate counts a vote granted to its previous candidacy.
#[test]
fn count_stale_vote_breaks_leader_completeness() {
    let bug = Bug::CountStaleVote;
    assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

#[test]
fn read_without_quorum_breaks_read_index_safety() {
    let bug = Bug::ReadWithoutQuorum;
    assert_caught(bug, smallest(bug), model::READ_INDEX_SAFETY);
}

#[test]
fn read_before_term_commit_breaks_read_index_safety() {
    let bug = Bug::ReadBeforeTermCommit;
    assert_caught(bug, smallest(bug), model::READ_INDEX_SAFETY);
}

/// A voter applies the term rule to a pre-vote request and adopts a term
/// no one holds.
#[test]
fn pre_vote_raises_term_breaks_pre_vote_raises_no_term() {
    let bug = Bug::PreVoteRaisesTerm;
    assert_caught(bug, smallest(bug), model::PRE_VOTE_RAISES_NO_TERM);
}

/// The shortener's answer is a shortest path of its witness bound: the
/// depth-first search finds `pre-vote-raises-term` in two or three steps,
/// and two is the least (a pre-candidate's request, and a voter taking its
/// term). One breadth-first search alone answered three: stateright's BFS
/// records a discovery by overwriting, so a deeper violation later in the
/// same block of states replaced the shallower one.
#[test]
fn a_counterexample_is_shortened_to_a_shortest_path() {
    let bug = Bug::PreVoteRaisesTerm;
    let property = model::PRE_VOTE_RAISES_NO_TERM;
    let mut options = RunOptions::check(smallest(bug));
    options.bug = Some(bug);
    options.stop_at = Some(property);
    let outcome = run(&options);
    let path = &outcome.discoveries[property];
    let shortest = raft_checker::shorten::shorten(
        &options,
        property,
        path,
        std::time::Duration::from_secs(60),
    )
    .map_or_else(|| path.clone(), |(shortest, _)| shortest);
    assert_eq!(shortest.len() - 1, 2, "a shortest path has two steps");
}

/// etcd#9586: a pre-candidate keeps the leader it knew.
#[test]
fn pre_candidate_keeps_leader_breaks_candidate_knows_no_leader() {
    let bug = Bug::PreCandidateKeepsLeader;
    assert_caught(bug, smallest(bug), model::CANDIDATE_KNOWS_NO_LEADER);
}

/// A follower that hears its leader grants a pre-vote anyway.
#[test]
fn pre_vote_ignores_lease_breaks_pre_vote_respects_lease() {
    let bug = Bug::PreVoteIgnoresLease;
    assert_caught(bug, smallest(bug), model::PRE_VOTE_RESPECTS_LEASE);
}

/// A restarted server comes back without a lease.
#[test]
fn restart_forgets_lease_breaks_pre_vote_respects_lease() {
    let bug = Bug::RestartForgetsLease;
    assert_caught(bug, smallest(bug), model::PRE_VOTE_RESPECTS_LEASE);
}

/// The target of a leadership transfer asks for pre-votes on TimeoutNow
/// instead of campaigning.
#[test]
fn transfer_through_pre_vote_breaks_timeout_now_campaigns() {
    let bug = Bug::TransferThroughPreVote;
    assert_caught(bug, smallest(bug), model::TIMEOUT_NOW_CAMPAIGNS);
}

/// A leader handing leadership over still appends client commands.
#[test]
fn transfer_accepts_proposals_breaks_transfer_freezes_log() {
    let bug = Bug::TransferAcceptsProposals;
    assert_caught(bug, smallest(bug), model::TRANSFER_FREEZES_LOG);
}

/// A leader proposes a configuration change before an entry of its term
/// has committed, while an earlier leader's change may still commit.
#[test]
fn change_before_term_commit_breaks_single_uncommitted_change() {
    let bug = Bug::ChangeBeforeTermCommit;
    assert_caught(bug, smallest(bug), model::SINGLE_UNCOMMITTED_CHANGE);
}

/// A leader proposes a second change while the first is uncommitted.
#[test]
fn concurrent_config_changes_break_single_uncommitted_change_and_quorums_intersect() {
    let bug = Bug::ConcurrentConfigChanges;
    assert_caught(bug, smallest(bug), model::SINGLE_UNCOMMITTED_CHANGE);
    assert_caught(bug, smallest(bug), model::QUORUMS_INTERSECT);
}

/// InstallSnapshot keeps the follower's former configuration.
#[test]
fn install_snapshot_ignores_config_breaks_quorums_intersect() {
    let bug = Bug::InstallSnapshotIgnoresConfig;
    assert_caught(bug, smallest(bug), model::QUORUMS_INTERSECT);
}

/// A leader removed by a committed change keeps leading.
#[test]
fn removed_leader_keeps_leading_breaks_removed_leader_steps_down() {
    let bug = Bug::RemovedLeaderKeepsLeading;
    assert_caught(bug, smallest(bug), model::REMOVED_LEADER_STEPS_DOWN);
}

/// A leader starts a transfer while a change is pending.
#[test]
fn transfer_during_config_change_breaks_transfer_not_during_change() {
    let bug = Bug::TransferDuringConfigChange;
    assert_caught(bug, smallest(bug), model::TRANSFER_NOT_DURING_CHANGE);
}

/// A leader counts a learner's acknowledgement as a voter's: an entry only
/// it and the learner hold commits, and the other two voters elect a
/// leader without it.
#[test]
fn learner_counted_in_quorum_breaks_leader_completeness() {
    let bug = Bug::LearnerCountedInQuorum;
    assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

/// With parallel writes, a leader counts itself as holding its no-op
/// before its own write of it completes: it commits the no-op with one
/// follower, crashes, comes back without it and votes for the third
/// server, which lacks it too. No write was omitted (the durable images
/// are the correct ones all along): the crash loses only what the core let
/// the leader write in parallel, which it must not have counted.
#[test]
fn leader_counts_itself_before_durable_breaks_leader_completeness() {
    let bug = Bug::LeaderCountsItselfBeforeDurable;
    let path = assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
    let crashed_while_writing = some_step(&path, |before, server, step, _| {
        let s = before.server(server);
        matches!(step, raft_model::Step::Restart)
            && s.is_leader()
            && s.durable_index() < s.log().last_index()
    });
    assert!(crashed_while_writing, "the leader crashed mid-write");
    assert!(
        path.iter().all(|(state, _)| state.durable.is_empty()),
        "every durable image is what the core says is durable"
    );
}

/// With pipelining, a leader takes a success for its no-op as proof that
/// the follower holds everything it has sent, its command included, whose
/// request is still on its way: the command commits on the leader alone,
/// and the two servers without it elect a leader.
#[test]
fn match_everything_sent_breaks_leader_completeness() {
    let bug = Bug::MatchEverythingSent;
    let path = assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
    let counted_in_flight = some_step(&path, |_, _, step, after| {
        let raft_model::Step::HandleAppendEntriesResponse(message) = step else {
            return false;
        };
        let raft_model::Body::AppendEntriesResponse {
            success: true,
            match_index,
            ..
        } = message.body
        else {
            return false;
        };
        let after = after.server(message.to);
        after.is_leader()
            && after
                .match_index()
                .get(&message.from)
                .is_some_and(|m| *m > match_index)
    });
    assert!(
        counted_in_flight,
        "the leader counted more than the answer said"
    );
}

// The searches below visit hundreds of thousands to millions of states
// before the counterexample: release builds only (`cargo test --release -p
// raft-checker -- --ignored`; CI runs the same bounds through
// `raft-checker mutants --smallest`).

/// A leader counts a success of its own earlier term: with parallel writes
/// its crash lost the entry the follower matched, and a new entry of the
/// new term sits at that index, which commits once the leader's own write
/// is durable (about 378,000 states before the find, by thread count).
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn count_stale_append_success_breaks_leader_completeness() {
    let bug = Bug::CountStaleAppendSuccess;
    let path = assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
    let counted_stale = some_step(&path, |before, server, step, after| {
        let raft_model::Step::HandleAppendEntriesResponse(message) = step else {
            return false;
        };
        let (before, after) = (before.server(server), after.server(server));
        let matched = |s: &raft_model::Server<_, _>| s.match_index().get(&message.from).copied();
        before.is_leader()
            && message.term < before.current_term()
            && matched(after) > matched(before)
    });
    assert!(
        counted_stale,
        "a success of an older term raised a leader's match index"
    );
}

/// A follower keeps its log after a snapshot whose last entry its log
/// contradicts (1,049,724 states before the find, depth-first).
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn snapshot_keeps_conflicting_suffix_breaks_log_terms_monotonic() {
    let bug = Bug::SnapshotKeepsConflictingSuffix;
    let path = assert_caught(bug, smallest(bug), model::LOG_TERMS_MONOTONIC);
    let kept_after_conflict = some_step(&path, |before, server, step, after| {
        let raft_model::Step::HandleInstallSnapshotRequest(message) = step else {
            return false;
        };
        let raft_model::Body::InstallSnapshotRequest { snapshot } = &message.body else {
            return false;
        };
        let meta = &snapshot.meta;
        let (before, after) = (before.server(server), after.server(server));
        before
            .log()
            .term_at(meta.last_index)
            .is_some_and(|t| t != meta.last_term)
            && after.log().last_index() > meta.last_index
    });
    assert!(
        kept_after_conflict,
        "a follower kept entries after a snapshot its log contradicted"
    );
}

/// A follower re-installs an old snapshot and drops a committed entry.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn install_stale_snapshot_breaks_leader_completeness() {
    let bug = Bug::InstallStaleSnapshot;
    assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

/// The paper's Figure 8: an entry of an older term committed by counting
/// replicas is overwritten by a later leader.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn commit_old_term_breaks_leader_completeness() {
    let bug = Bug::CommitOldTerm;
    assert_caught(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn skip_prev_term_check_breaks_log_matching() {
    let bug = Bug::SkipPrevTermCheck;
    assert_caught(bug, smallest(bug), model::LOG_MATCHING);
}

/// A vote granted but not persisted is granted again after a restart.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn omit_persist_vote_breaks_election_safety() {
    let bug = Bug::OmitPersistVote;
    assert_restart_lost_a_write(bug, smallest(bug), model::ELECTION_SAFETY);
}

/// An acknowledged entry not persisted is lost by a restart, and a leader
/// without it is elected.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn omit_persist_log_breaks_leader_completeness() {
    let bug = Bug::OmitPersistLog;
    assert_restart_lost_a_write(bug, smallest(bug), model::LEADER_COMPLETENESS);
}

/// Two entries per request, the second conflicting: the follower keeps its
/// own and acknowledges a match it lacks.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn batch_checks_first_entry_only_breaks_state_machine_safety() {
    let bug = Bug::BatchChecksFirstEntryOnly;
    assert_caught(bug, smallest(bug), model::STATE_MACHINE_SAFETY);
}

/// A follower's rejection of a deposed leader's request, sent in the
/// follower's newer term, reaches that term's leader, which takes it for a
/// rejection of its own request and backs off to index 1; its next request
/// proves only the first entry, and the follower commits its own second one.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn commit_beyond_leader_breaks_state_machine_safety() {
    let bug = Bug::CommitBeyondLeader;
    assert_caught(bug, smallest(bug), model::STATE_MACHINE_SAFETY);
}

/// A bug that takes a behaviour away breaks no `always` property: the
/// mutation report kills it by the goal the correct core reaches and it
/// never does (a leader stepping down without a quorum).
#[test]
fn check_quorum_never_steps_down_never_reaches_the_step_down() {
    let bug = Bug::CheckQuorumNeverStepsDown;
    let bounds = smallest(bug);
    assert!(bounds.check_quorum);
    let mutant = raft_checker::mutants::check_mutant(bug, "smallest", &bounds, 2, None, None);
    assert_eq!(mutant.violated, None);
    assert_eq!(mutant.unreached, Some(model::LEADER_STEPPED_DOWN));
    assert!(mutant.killed());

    let correct = run(&RunOptions::check(bounds));
    let goal = correct
        .report
        .properties
        .iter()
        .find(|p| p.name == model::LEADER_STEPPED_DOWN)
        .expect("the goal is checked with CheckQuorum on");
    assert!(goal.steps.is_some(), "the correct core steps down");
    assert!(correct.report.ok);
}

/// A follower that rejects with a conflict hint commits up to the hint's
/// index: its run of the conflicting term, which the new leader never held.
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn commit_to_conflict_index_breaks_state_machine_safety() {
    let bug = Bug::CommitToConflictIndex;
    assert_caught(bug, smallest(bug), model::STATE_MACHINE_SAFETY);
}

/// Five servers (three hide it, checker/README.md): a follower replaces a
/// conflicting entry 1 and keeps the old leader's entry 2 after it, which
/// that leader holds after its own entry 1. The search is exhaustive up to
/// the violation; the correct core passes the whole bound (the test below).
#[test]
#[ignore = "heavy: run with cargo test --release -p raft-checker -- --ignored"]
fn keep_conflicting_suffix_breaks_log_matching_with_five_servers() {
    let bug = Bug::KeepConflictingSuffix;
    let bounds = smallest(bug);
    assert_eq!(bounds.servers, 5);
    let path = assert_caught(bug, bounds, model::LOG_MATCHING);
    // The follower kept an entry of term 1 after overwriting the one before it.
    let last = &path[path.len() - 1].0;
    let mismatch = raft_checker::properties::logs_that_do_not_match(last).expect("a mismatch");
    assert!(mismatch.first_difference < mismatch.index, "a kept suffix");
}

/// Every bug with a known killing bound is tested above; the others are
/// the open ones of checker/README.md, listed here so that a new bug is not
/// forgotten.
#[test]
fn every_bug_has_a_killing_bound_or_is_listed_open() {
    let open: [Bug; 0] = [];
    for bug in Bug::ALL {
        assert_eq!(
            raft_checker::bugs::smallest_bound(bug).is_none(),
            open.contains(&bug),
            "{bug:?}"
        );
    }
}

#[test]
fn bug_names_round_trip() {
    for bug in Bug::ALL {
        let name = raft_checker::bugs::name(bug);
        assert_eq!(raft_checker::bugs::parse(name), Ok(bug));
    }
    assert!(raft_checker::bugs::parse("no-such-bug").is_err());
}

/// The Explorer's model stops the search at the first violation: whatever
/// checker drives it (the Explorer's on-demand one ignores `finish_when`),
/// it keeps the violating state, so the counterexample is recorded, and then
/// no other, where the plain model lets the search go on through the bound.
/// (A breadth-first checker told to look for every property stands in for
/// the Explorer's "run to completion" here.)
#[test]
fn explorer_search_stops_at_the_first_violation() {
    use stateright::{Checker, Model};
    // One term: s2 votes for both candidates of term 1.
    let bounds = Bounds {
        max_term: 1,
        max_requests: 0,
        ..Bounds::BASE
    };
    let count_states = |model: RaftModel| {
        let checker = model
            .checker()
            .finish_when(stateright::HasDiscoveries::All)
            .spawn_bfs()
            .join();
        let found = checker.discovery(model::ELECTION_SAFETY).is_some();
        (
            found,
            checker.unique_state_count(),
            checker.model().stopped_at_violation(),
        )
    };
    let (found, stopping, stopped) = count_states(RaftModel::stopping_at_first_violation(
        bounds.clone(),
        vec![Bug::VoteTwice],
    ));
    assert!(found, "the counterexample is recorded");
    assert!(stopped, "the model says it stopped");
    let (_, whole, _) = count_states(RaftModel::new(bounds.clone(), vec![Bug::VoteTwice]));
    println!("states kept: {stopping} stopping at the violation, {whole} without stopping");
    assert!(
        stopping * 2 < whole,
        "the stopping search kept {stopping} states, the plain one {whole}"
    );
}
