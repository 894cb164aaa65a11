//! PreVote (dissertation §9.6): a server whose election timer fires first
//! asks whether it could win, its term unchanged; it campaigns only with a
//! quorum of pre-votes. A voter grants one only if the election's term to be
//! is past its own, the candidate's log is up to date, and it holds no lease
//! (it has not heard from a leader since its own timer last fired, and has
//! not restarted since).

mod common;

use common::{
    TestServer, append_entries, members, only_message, pre_vote, pre_vote_request, server,
    server_with_log, vote_granted,
};
use raft_model::{Body, Role, Step};

/// Server `id` of three, PreVote on.
fn pv(id: u64) -> TestServer {
    server(id, &members(3)).with_pre_vote(true)
}

#[test]
fn a_timeout_makes_a_pre_candidate_that_keeps_its_term_and_vote() {
    let mut s = pv(1);
    let effects = s.timeout();
    assert_eq!(
        (s.role(), s.current_term(), s.voted_for()),
        (Role::PreCandidate, 0, None)
    );
    assert!(effects.persist.is_empty(), "a pre-election writes nothing");
    assert!(effects.reset_election_timer);
    let mut asked: Vec<_> = effects.messages.iter().map(|m| m.to).collect();
    asked.sort_unstable();
    assert_eq!(asked, vec![2, 3]);
    for m in &effects.messages {
        assert_eq!(m.term, 1, "the election's term to be");
        assert!(matches!(
            m.body,
            Body::RequestVoteRequest { pre_vote: true, .. }
        ));
    }
}

#[test]
fn a_quorum_of_pre_votes_starts_the_real_election() {
    let mut s = pv(1);
    s.timeout();
    let effects = s.receive(&pre_vote(2, 1, 1, true));
    assert_eq!(
        (s.role(), s.current_term(), s.voted_for()),
        (Role::Candidate, 1, Some(1))
    );
    assert!(effects.persist.hard_state);
    assert!(effects.messages.iter().all(|m| m.term == 1
        && matches!(
            m.body,
            Body::RequestVoteRequest {
                pre_vote: false,
                ..
            }
        )));
}

#[test]
fn granting_a_pre_vote_changes_nothing() {
    let mut s = pv(2);
    let before = s.clone();
    let effects = s.receive(&pre_vote_request(1, 2, 1, 0, 0));
    let reply = only_message(&effects);
    assert!(vote_granted(reply));
    assert_eq!(reply.term, 1, "a grant answers in the requested term");
    assert_eq!(s, before, "no term, no vote, no role changed");
    assert!(effects.persist.is_empty() && !effects.reset_election_timer);
}

#[test]
fn a_server_that_hears_its_leader_refuses_pre_votes() {
    let mut s = pv(2);
    // Leader 1 of term 1 is heard from.
    s.receive(&append_entries(1, 2, 1, (0, 0), vec![], 0));
    assert!(s.in_lease());
    let effects = s.receive(&pre_vote_request(3, 2, 2, 0, 0));
    let reply = only_message(&effects);
    assert!(!vote_granted(reply), "a live leader holds the lease");
    assert_eq!(reply.term, 1, "a refusal answers in the voter's term");
    // Its own election timer fires: the lease is gone with the leader.
    s.timeout();
    assert_eq!((s.role(), s.leader_id()), (Role::PreCandidate, None));
    assert!(vote_granted(only_message(
        &s.receive(&pre_vote_request(3, 2, 2, 0, 0))
    )));
}

#[test]
fn a_restarted_server_waits_a_timeout_before_granting() {
    let mut s = pv(2);
    // Leader 1 of term 1 is heard from; then a crash.
    s.receive(&append_entries(1, 2, 1, (0, 0), vec![], 0));
    s.step::<common::Msg>(Step::Restart).unwrap();
    assert!(s.in_lease() && s.leader_id().is_none());
    let ask = pre_vote_request(3, 2, 2, 0, 0);
    assert!(!vote_granted(only_message(&s.receive(&ask))));
    s.timeout();
    assert!(vote_granted(only_message(&s.receive(&ask))));
}

#[test]
fn a_server_restarted_at_term_zero_has_heard_no_leader_and_holds_no_lease() {
    let mut s = pv(2);
    s.step::<common::Msg>(Step::Restart).unwrap();
    assert!(!s.in_lease());
    let ask = pre_vote_request(3, 2, 1, 0, 0);
    assert!(vote_granted(only_message(&s.receive(&ask))));
}

#[test]
fn a_pre_vote_needs_an_up_to_date_log_and_a_later_term() {
    // Server 2 holds entries of term 2; it is at term 2.
    let mut s = server_with_log(2, &members(3), 2, None, &[1, 2]).with_pre_vote(true);
    s.timeout(); // leave the restart lease
    let behind = pre_vote_request(3, 2, 3, 1, 1);
    assert!(
        !vote_granted(only_message(&s.receive(&behind))),
        "a shorter log"
    );
    let same_term = pre_vote_request(3, 2, 2, 2, 2);
    assert!(
        !vote_granted(only_message(&s.receive(&same_term))),
        "no later term"
    );
    let ok = pre_vote_request(3, 2, 3, 2, 2);
    assert!(vote_granted(only_message(&s.receive(&ok))));
}

#[test]
fn a_refused_pre_vote_of_a_higher_term_makes_a_follower() {
    let mut s = pv(1);
    s.timeout();
    s.receive(&pre_vote(2, 1, 4, false));
    assert_eq!((s.role(), s.current_term()), (Role::Follower, 4));
}

#[test]
fn a_granted_pre_vote_does_not_raise_the_term() {
    // Server 1 of five: one grant is no quorum.
    let mut s = server(1, &members(5)).with_pre_vote(true);
    s.timeout();
    s.receive(&pre_vote(2, 1, 1, true));
    assert_eq!((s.role(), s.current_term()), (Role::PreCandidate, 0));
    // A grant for another term than our next is not ours to count.
    s.receive(&pre_vote(3, 1, 7, true));
    assert_eq!((s.role(), s.current_term()), (Role::PreCandidate, 0));
    assert_eq!(s.votes_granted().len(), 2);
}

#[test]
fn hearing_the_leader_ends_a_pre_candidacy() {
    let mut s = pv(2);
    s.timeout();
    s.receive(&append_entries(1, 2, 0, (0, 0), vec![], 0));
    assert_eq!((s.role(), s.leader_id()), (Role::Follower, Some(1)));
}

#[test]
fn a_leader_refuses_pre_votes() {
    let mut s = pv(1);
    s.timeout();
    s.receive(&pre_vote(2, 1, 1, true));
    s.receive(&common::vote(2, 1, 1, true));
    assert!(s.is_leader());
    assert!(!vote_granted(only_message(
        &s.receive(&pre_vote_request(3, 1, 2, 1, 1))
    )));
}
