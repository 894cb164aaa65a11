//! CheckQuorum (dissertation §6.2): a leader steps down when no quorum has
//! answered it since its previous check. The driver takes the step each
//! time the leader's election timer fires; the core counts who answered.

mod common;

use common::{TestServer, append_response, elect, members, server, vote};
use raft_model::{Action, Refused, Role, Step};

/// Server 1 of `n`, CheckQuorum on, elected leader of term 1 by `voters`.
fn leader(n: u64, voters: &[u64]) -> TestServer {
    let mut s = server(1, &members(n)).with_check_quorum(true);
    elect(&mut s, voters);
    s
}

fn check(s: &mut TestServer) -> Result<(), Refused> {
    s.step::<common::Msg>(Step::CheckQuorum).map(|_| ())
}

#[test]
fn a_leader_that_heard_from_no_one_steps_down() {
    let mut s = leader(3, &[2]);
    // The vote that completed the quorum was an answer of this term.
    assert_eq!(
        s.recent_active().iter().copied().collect::<Vec<_>>(),
        vec![2]
    );
    check(&mut s).unwrap();
    assert!(s.is_leader(), "node 2 answered since the election");

    // A whole timeout without an answer: the leader steps down, keeps its
    // term and forgets that it led.
    check(&mut s).unwrap();
    assert_eq!(s.role(), Role::Follower);
    assert_eq!(s.current_term(), 1);
    assert_eq!(s.leader_id(), None);
    assert!(s.recent_active().is_empty());
    assert_eq!(
        check(&mut s),
        Err(Refused::NotEnabled(Action::CheckQuorum)),
        "a follower has no quorum to check"
    );
}

#[test]
fn each_check_needs_answers_from_its_own_period() {
    let mut s = leader(5, &[2, 3]);
    // Only the vote that made it leader counts (2's came while a candidate).
    assert_eq!(
        s.recent_active().iter().copied().collect::<Vec<_>>(),
        vec![3]
    );
    s.receive(&append_response(4, 1, 1, true, 1));
    check(&mut s).unwrap();
    assert!(s.is_leader(), "1, 3 and 4: three of five");
    // The next period: one peer of four answers, with the leader two of five.
    s.receive(&append_response(4, 1, 1, true, 1));
    check(&mut s).unwrap();
    assert_eq!(s.role(), Role::Follower, "two of five is no quorum");
}

#[test]
fn answers_of_an_earlier_term_do_not_count() {
    let mut s = server(1, &members(3)).with_check_quorum(true);
    elect(&mut s, &[2]);
    // Re-elected in term 2 after stepping down.
    check(&mut s).unwrap();
    check(&mut s).unwrap();
    assert_eq!(s.role(), Role::Follower);
    elect(&mut s, &[3]);
    assert_eq!(s.current_term(), 2);
    check(&mut s).unwrap();
    s.receive(&append_response(2, 1, 1, true, 1));
    s.receive(&vote(2, 1, 1, true));
    assert!(
        s.recent_active().is_empty(),
        "answers of term 1 say nothing of term 2"
    );
    check(&mut s).unwrap();
    assert_eq!(s.role(), Role::Follower);
}

#[test]
fn without_check_quorum_the_step_is_not_enabled() {
    let mut s = server(1, &members(3));
    elect(&mut s, &[2]);
    assert_eq!(check(&mut s), Err(Refused::NotEnabled(Action::CheckQuorum)));
    s.receive(&append_response(2, 1, 1, true, 1));
    assert!(
        s.recent_active().is_empty(),
        "nothing is recorded without it"
    );
    assert!(s.is_leader());
}

#[test]
fn a_single_server_is_its_own_quorum() {
    let mut s = server(1, &members(1)).with_check_quorum(true);
    s.timeout();
    assert!(s.is_leader());
    check(&mut s).unwrap();
    check(&mut s).unwrap();
    assert!(s.is_leader());
}

/// The seeded bug: the leader counts, but never steps down. The scenario of
/// the first test, with the bug, leaves an isolated leader leading.
#[test]
fn the_seeded_bug_leaves_an_isolated_leader_leading() {
    let mut s = server(1, &members(3))
        .with_check_quorum(true)
        .with_bugs(&[raft_model::Bug::CheckQuorumNeverStepsDown]);
    elect(&mut s, &[2]);
    for _ in 0..3 {
        check(&mut s).unwrap();
    }
    assert!(
        s.is_leader(),
        "with the bug, no quorum for three periods changes nothing"
    );
}

/// Winning an election restarts the timer, which now paces CheckQuorum: the
/// peers get a whole timeout to answer the new leader before the first
/// check (etcd resets its election clock on becoming leader likewise).
#[test]
fn becoming_leader_restarts_the_timer() {
    let mut s = server(1, &members(5)).with_check_quorum(true);
    let effects = elect(&mut s, &[2, 3]);
    assert!(s.is_leader());
    assert!(effects.reset_election_timer);
}
