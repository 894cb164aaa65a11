//! Restart (what survives a crash), hostile or misaddressed input (the core
//! never trusts a message), and the `Effects` contract (what must be durable
//! before which messages leave).

mod common;

use common::cluster::Cluster;
use common::observer::Property;
use common::{
    Msg, TestServer, append_entries, append_response, append_result, elect, entry,
    install_snapshot, members, only_message, request_vote, server, server_with_log, snapshot_of,
    snapshot_response, vote,
};
use raft_model::{Body, Effects, Role};

// ---------------------------------------------------------------- Restart

#[test]
fn restart_loses_volatile_state_and_keeps_persistent_state() {
    let mut l = server_with_log(1, &members(3), 1, None, &[1, 1]);
    elect(&mut l, &[2]);
    l.client_request(5).expect("leader");
    l.receive(&append_response(2, 1, 2, true, 4));
    assert_eq!(l.commit_index(), 4);
    let (term, vote, log, snapshot, config) = (
        l.current_term(),
        l.voted_for(),
        l.log().clone(),
        l.snapshot().clone(),
        l.config().clone(),
    );

    let effects = l.restart();
    assert_eq!(l.role(), Role::Follower);
    assert_eq!(l.leader_id(), None);
    assert!(
        l.votes_granted().is_empty() && l.next_index().is_empty() && l.match_index().is_empty()
    );
    assert_eq!(
        l.commit_index(),
        0,
        "nothing is known committed without a snapshot"
    );
    assert_eq!((l.current_term(), l.voted_for()), (term, vote));
    assert_eq!(
        (l.log().clone(), l.snapshot().clone(), l.config().clone()),
        (log, snapshot, config)
    );
    assert!(
        effects.snapshot_installed,
        "the state machine restarts from the snapshot"
    );
    assert!(effects.persist.is_empty() && effects.messages.is_empty());
}

#[test]
fn after_restart_the_commit_index_falls_back_to_the_snapshot() {
    let mut f = server_with_log(2, &members(3), 1, None, &[1, 1, 1]);
    f.receive(&append_entries(1, 2, 1, (3, 1), vec![], 3));
    f.compact_log(2, snapshot_of(&members(3), &[1, 1, 1], 2).data)
        .expect("committed");
    f.restart();
    assert_eq!(f.commit_index(), 2);
    assert_eq!(
        f.log().last_index(),
        3,
        "the uncommitted-looking tail stays"
    );
}

#[test]
fn a_candidate_restarting_forgets_its_votes_but_not_its_own() {
    let mut c = server(1, &members(5));
    c.timeout();
    c.receive(&vote(2, 1, 1, true));
    c.restart();
    assert_eq!(
        (c.role(), c.current_term(), c.voted_for()),
        (Role::Follower, 1, Some(1))
    );
    assert!(c.votes_granted().is_empty());
    // It cannot vote for anyone else in term 1 after the crash.
    let effects = c.receive(&request_vote(3, 1, 1, 0, 0));
    assert_eq!(
        only_message(&effects).body,
        Body::RequestVoteResponse {
            vote_granted: false,
            pre_vote: false,
        }
    );
}

#[test]
fn recovery_from_what_effects_made_durable_equals_restart() {
    // Cluster::restart rebuilds a server from its disk, which only ever
    // received `persist` effects, and reports any difference from restart().
    let mut cluster = Cluster::new(3, &Property::ALL);
    cluster.timeout(1);
    cluster.deliver_all(100);
    assert!(cluster.server(1).is_leader());
    cluster.client_request(1, 7);
    cluster.send_append_entries(1);
    cluster.deliver_all(100);
    cluster.send_append_entries(1); // tells the followers entry 2 is committed
    cluster.deliver_all(100);
    cluster.compact(2);
    for id in 1..=3 {
        cluster.restart(id);
    }
    assert_eq!(cluster.violation, None);
    assert_eq!(
        cluster.server(2).commit_index(),
        2,
        "server 2 compacted up to 2"
    );
}

// ------------------------------------------------------------ rogue input

/// One message of every kind from `from` to `to` in term 1.
fn every_kind(from: u64, to: u64) -> Vec<Msg> {
    vec![
        request_vote(from, to, 1, 10, 1),
        vote(from, to, 1, true),
        append_entries(from, to, 1, (0, 0), vec![entry(1, 1)], 1),
        append_response(from, to, 1, true, 1),
        install_snapshot(from, to, 1, snapshot_of(&members(3), &[1], 1)),
        snapshot_response(from, to, 1, 1),
    ]
}

/// A follower, a candidate and a leader of a 3-server cluster (ids 1).
fn every_role() -> Vec<TestServer> {
    let follower = server(1, &members(3));
    let mut candidate = server(1, &members(3));
    candidate.timeout();
    let mut leader = server(1, &members(3));
    elect(&mut leader, &[2]);
    vec![follower, candidate, leader]
}

fn assert_no_op(s: &mut TestServer, message: &Msg) {
    let before = s.clone();
    let effects = s.receive(message);
    assert_eq!(effects, Effects::default(), "{message:?}");
    assert_eq!(*s, before, "{message:?}");
}

#[test]
fn answers_from_a_non_member_count_for_nothing() {
    // Requests from a server outside the configuration are processed
    // (dissertation §4.2.1: a server being added, or one whose configuration
    // lags, must hear from the leader); its answers change nothing, since
    // quorums count members only and a leader tracks only its peers.
    for mut s in every_role() {
        for message in every_kind(7, 1) {
            let replication_answer = matches!(
                message.body,
                Body::AppendEntriesResponse { .. } | Body::InstallSnapshotResponse { .. }
            );
            if replication_answer && message.term == s.current_term() {
                assert_no_op(&mut s, &message);
            }
        }
    }
    let mut candidate = server(1, &members(3));
    candidate.timeout();
    candidate.receive(&vote(7, 1, 1, true));
    candidate.receive(&vote(9, 1, 1, true));
    assert_eq!(
        candidate.role(),
        Role::Candidate,
        "two outsiders elect no one"
    );
}

#[test]
fn messages_from_itself_are_dropped() {
    for mut s in every_role() {
        for message in every_kind(1, 1) {
            assert_no_op(&mut s, &message);
        }
    }
}

#[test]
fn misaddressed_messages_are_dropped() {
    for mut s in every_role() {
        for message in every_kind(2, 3) {
            assert_no_op(&mut s, &message);
        }
    }
}

#[test]
fn a_message_handed_to_the_wrong_handler_is_a_no_op() {
    let mut s = server(1, &members(3));
    let before = s.clone();
    let rv = request_vote(2, 1, 5, 0, 0);
    assert!(s.handle_append_entries_request(&rv).is_empty());
    assert!(s.handle_append_entries_response(&rv).is_empty());
    assert!(s.handle_install_snapshot_request(&rv).is_empty());
    assert!(s.handle_install_snapshot_response(&rv).is_empty());
    assert!(s.handle_request_vote_response(&rv).is_empty());
    let ae = append_entries(2, 1, 5, (0, 0), vec![], 0);
    assert!(s.handle_request_vote_request(&ae).is_empty());
    assert_eq!(
        s, before,
        "not even the term is taken from a mis-dispatched message"
    );
}

#[test]
fn absurd_indexes_in_append_entries_requests_change_no_log() {
    let mut f = server_with_log(2, &members(3), 1, None, &[1, 1]);
    for prev in [u64::MAX, u64::MAX - 1, 3] {
        let log = f.log().clone();
        let effects = f.receive(&append_entries(
            1,
            2,
            1,
            (prev, 1),
            vec![entry(4, 1)],
            u64::MAX,
        ));
        assert_eq!(
            append_result(only_message(&effects)),
            (false, 2),
            "prev {prev}"
        );
        assert_eq!(f.log(), &log);
        assert_eq!(
            f.commit_index(),
            0,
            "leader_commit is never taken on a failed check"
        );
    }
    // A matching request with an absurd leader_commit commits only what it carries.
    let effects = f.receive(&append_entries(1, 2, 1, (1, 1), vec![], u64::MAX));
    assert_eq!(append_result(only_message(&effects)), (true, 1));
    assert_eq!(f.commit_index(), 1);
}

#[test]
fn a_success_claiming_entries_the_leader_never_had_is_ignored() {
    let mut l = server(1, &members(3));
    elect(&mut l, &[2]); // log [no-op]
    let before = l.clone();
    for claim in [2, 3, u64::MAX] {
        let effects = l.receive(&append_response(2, 1, 1, true, claim));
        assert!(effects.is_empty(), "claim {claim}");
        assert_eq!(l, before, "claim {claim}: no match, no commit");
    }
}

#[test]
fn an_absurd_failure_hint_backs_off_one_step_at_most() {
    let mut l = server_with_log(1, &members(3), 1, None, &[1, 1, 1]);
    elect(&mut l, &[2]); // next_index 4
    l.receive(&append_response(2, 1, 2, false, u64::MAX));
    assert_eq!(l.next_index()[&2], 3);
}

// ------------------------------------------------------ the Effects contract

#[test]
fn effects_name_what_must_be_durable_before_their_messages_leave() {
    // Every transition that changes term or vote and then speaks says
    // hard_state; every one that writes the log and then speaks says
    // log_from. (The property tests check this after every step of random
    // runs, by replaying the effects onto a disk.)
    let mut c = server(1, &members(3));
    let effects = c.timeout();
    assert!(effects.persist.hard_state && !effects.messages.is_empty());

    let mut voter = server(2, &members(3));
    let effects = voter.receive(&effects.messages[0]);
    assert!(effects.persist.hard_state, "term 1 and the vote for 1");
    let effects = c.receive(&effects.messages[0]);
    assert_eq!(
        effects.persist.log_from,
        Some(1),
        "the no-op before it is sent"
    );

    let request = effects
        .messages
        .iter()
        .find(|m| m.to == 2)
        .expect("to 2")
        .clone();
    let effects = voter.receive(&request);
    assert_eq!(
        effects.persist.log_from,
        Some(1),
        "the entry before the success"
    );
    assert!(!effects.persist.hard_state, "term and vote unchanged");
}

#[test]
fn a_transition_that_changes_nothing_durable_asks_nothing_durable() {
    let mut l = server(1, &members(3));
    elect(&mut l, &[2]);
    let effects = l.send_append_entries();
    assert!(effects.persist.is_empty(), "a heartbeat persists nothing");
    let mut f = server_with_log(2, &members(3), 1, None, &[1]);
    let effects = f.receive(&append_entries(1, 2, 1, (1, 1), vec![], 1));
    assert!(
        effects.persist.is_empty(),
        "a heartbeat's answer persists nothing"
    );
    assert_eq!(
        effects.commit_index,
        Some(1),
        "the commit index is volatile"
    );
}

#[test]
fn a_far_future_term_cannot_make_the_term_wrap_around() {
    let mut f = server(1, &members(3));
    f.receive(&request_vote(2, 1, u64::MAX, 0, 0));
    assert_eq!(f.current_term(), u64::MAX);
    let effects = f.timeout();
    assert_eq!(f.current_term(), u64::MAX, "the term never goes back to 0");
    assert_eq!(f.role(), Role::Follower);
    assert!(effects.messages.is_empty());
}
