//! Leader election (paper §5.2, §5.4.1; Figure 2 "RequestVote RPC" and
//! "Rules for Servers"): Timeout, HandleRequestVoteRequest,
//! HandleRequestVoteResponse and becoming leader, on hand-built states.

mod common;

use common::{
    TestServer, append_request, elect, members, only_message, request_vote, server,
    server_with_log, vote, vote_granted,
};
use raft_model::{Body, Config, Payload, Role};

fn three() -> Config {
    members(3)
}

// ---------------------------------------------------------------- Timeout

#[test]
fn timeout_makes_a_follower_a_candidate_of_the_next_term() {
    let mut s = server_with_log(1, &three(), 4, Some(2), &[1, 3, 4]);
    let effects = s.timeout();
    assert_eq!(s.role(), Role::Candidate);
    assert_eq!(s.current_term(), 5);
    assert_eq!(s.voted_for(), Some(1), "votes for itself");
    assert_eq!(
        s.votes_granted().iter().copied().collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(s.leader_id(), None);
    // The new term and the self-vote must be durable before anyone is asked.
    assert!(effects.persist.hard_state);
    assert_eq!(effects.persist.log_from, None);
    assert!(effects.reset_election_timer);
    let mut asked: Vec<_> = effects.messages.iter().map(|m| m.to).collect();
    asked.sort_unstable();
    assert_eq!(asked, vec![2, 3], "every peer, not itself");
    for message in &effects.messages {
        assert_eq!((message.from, message.term), (1, 5));
        assert_eq!(
            message.body,
            Body::RequestVoteRequest {
                last_log_index: 3,
                last_log_term: 4,
                pre_vote: false,
            }
        );
    }
}

#[test]
fn a_candidate_that_times_out_starts_a_new_election() {
    let mut s = server(1, &three());
    s.timeout();
    s.receive(&vote(2, 1, 1, false));
    let effects = s.timeout();
    assert_eq!((s.role(), s.current_term()), (Role::Candidate, 2));
    assert_eq!(
        s.votes_granted().len(),
        1,
        "votes of the old term are forgotten"
    );
    assert_eq!(effects.messages.len(), 2);
    assert!(effects.messages.iter().all(|m| m.term == 2));
}

#[test]
fn a_leader_ignores_timeout() {
    let mut s = server(1, &three());
    elect(&mut s, &[2]);
    let before = s.clone();
    let effects = s.timeout();
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(s, before);
}

#[test]
fn a_server_outside_the_configuration_never_stands() {
    let mut s = server(9, &three());
    let before = s.clone();
    assert!(s.timeout().is_empty());
    assert_eq!(s, before);
}

#[test]
fn a_single_server_cluster_elects_itself_and_commits_its_noop() {
    let mut s = server(1, &members(1));
    let effects = s.timeout();
    assert_eq!((s.role(), s.current_term()), (Role::Leader, 1));
    assert_eq!(s.leader_id(), Some(1));
    assert_eq!(s.log().last_index(), 1);
    assert_eq!(
        s.log().entry(1).map(|e| (e.term, &e.payload)),
        Some((1, &Payload::Noop))
    );
    assert_eq!(s.commit_index(), 1);
    assert_eq!(effects.commit_index, Some(1));
    assert!(effects.persist.hard_state);
    assert_eq!(effects.persist.log_from, Some(1));
    assert!(effects.messages.is_empty(), "nobody to talk to");
    // And it commits client commands by itself, at once.
    let (index, effects) = s.client_request(7).expect("leader");
    assert_eq!(
        (index, s.commit_index(), effects.commit_index),
        (2, 2, Some(2))
    );
}

// ------------------------------------------------- HandleRequestVoteRequest

/// Server 1 with a log of terms [1, 2, 2] in term 2, asked by server 2 in
/// term 3 with the given last entry. Returns (granted, server after).
fn ask(last_log_index: u64, last_log_term: u64) -> (bool, TestServer) {
    let mut s = server_with_log(1, &three(), 2, None, &[1, 2, 2]);
    let effects = s.receive(&request_vote(2, 1, 3, last_log_index, last_log_term));
    let reply = only_message(&effects);
    assert_eq!((reply.to, reply.term), (2, 3), "answers in the new term");
    (vote_granted(reply), s)
}

#[test]
fn a_vote_goes_to_a_log_at_least_as_up_to_date() {
    // A later last term wins even with a shorter log.
    assert!(ask(1, 3).0);
    // The same last term needs at least the same length.
    assert!(ask(3, 2).0);
    assert!(ask(5, 2).0);
}

#[test]
fn no_vote_for_a_log_less_up_to_date() {
    // An earlier last term loses even with a longer log.
    let (granted, s) = ask(9, 1);
    assert!(!granted);
    // The same last term but a shorter log loses.
    assert!(!ask(2, 2).0);
    // Refusing still adopts the newer term, with no vote cast in it.
    assert_eq!((s.current_term(), s.voted_for()), (3, None));
}

#[test]
fn a_granted_vote_is_durable_before_the_answer_leaves() {
    let mut s = server(1, &three());
    let effects = s.receive(&request_vote(2, 1, 1, 0, 0));
    assert!(vote_granted(only_message(&effects)));
    assert_eq!(s.voted_for(), Some(2));
    assert!(effects.persist.hard_state, "term and vote before the reply");
    assert!(effects.reset_election_timer);
}

#[test]
fn a_vote_granted_within_the_current_term_is_durable_too() {
    // No term change to piggyback on: the vote alone must be persisted.
    let mut s = server_with_log(1, &three(), 1, None, &[]);
    let effects = s.receive(&request_vote(3, 1, 1, 0, 0));
    assert!(vote_granted(only_message(&effects)));
    assert_eq!(s.voted_for(), Some(3));
    assert!(effects.persist.hard_state, "the vote before the reply");
}

#[test]
fn one_vote_per_term() {
    let mut s = server(1, &members(5));
    assert!(vote_granted(only_message(
        &s.receive(&request_vote(2, 1, 1, 0, 0))
    )));
    let effects = s.receive(&request_vote(3, 1, 1, 5, 1));
    assert!(
        !vote_granted(only_message(&effects)),
        "already voted for 2 in term 1"
    );
    assert_eq!(s.voted_for(), Some(2));
    assert!(!effects.persist.hard_state, "nothing changed");
    assert!(!effects.reset_election_timer);
}

#[test]
fn the_same_candidate_asking_again_gets_the_vote_again() {
    let mut s = server(1, &three());
    let request = request_vote(2, 1, 1, 0, 0);
    s.receive(&request);
    let effects = s.receive(&request);
    assert!(
        vote_granted(only_message(&effects)),
        "a lost answer must not cost the vote"
    );
    assert!(!effects.persist.hard_state, "the vote was already durable");
}

#[test]
fn a_request_of_a_stale_term_is_refused_without_change() {
    let mut s = server_with_log(1, &three(), 5, None, &[1]);
    let before = s.clone();
    let effects = s.receive(&request_vote(2, 1, 4, 10, 4));
    let reply = only_message(&effects);
    assert!(!vote_granted(reply));
    assert_eq!(
        reply.term, 5,
        "the answer tells the candidate the newer term"
    );
    assert_eq!(s, before);
    assert!(effects.persist.is_empty());
}

#[test]
fn a_leader_steps_down_on_a_higher_term_and_votes_if_the_log_allows() {
    let mut s = server(1, &three());
    elect(&mut s, &[2]);
    // Server 3 has seen nothing of term 1: it is not up to date.
    let effects = s.receive(&request_vote(3, 1, 2, 0, 0));
    assert_eq!(
        (s.role(), s.current_term(), s.voted_for()),
        (Role::Follower, 2, None)
    );
    assert!(s.next_index().is_empty() && s.match_index().is_empty());
    assert!(!vote_granted(only_message(&effects)));
    assert!(effects.persist.hard_state, "the new term is durable");
    // Server 2 has the no-op: it gets the vote.
    let effects = s.receive(&request_vote(2, 1, 2, 1, 1));
    assert!(vote_granted(only_message(&effects)));
}

// ------------------------------------------------ HandleRequestVoteResponse

#[test]
fn a_candidate_becomes_leader_on_a_quorum_appends_a_noop_and_sends_it() {
    let mut s = server_with_log(1, &three(), 2, None, &[1, 2]);
    s.timeout();
    let effects = s.receive(&vote(3, 1, 3, true));
    assert_eq!((s.role(), s.leader_id()), (Role::Leader, Some(1)));
    // The no-op of the new term (paper §8) at the end of the log.
    assert_eq!(s.log().last_index(), 3);
    assert_eq!(
        s.log().entry(3).map(|e| (e.term, &e.payload)),
        Some((3, &Payload::Noop))
    );
    assert_eq!(
        effects.persist.log_from,
        Some(3),
        "the no-op is durable before it is sent"
    );
    // next_index starts just past the log as it was; match_index at 0.
    assert_eq!(s.next_index().get(&2), Some(&3));
    assert_eq!(s.next_index().get(&3), Some(&3));
    assert_eq!(s.match_index().get(&2), Some(&0));
    // AppendEntries to every peer at once, carrying the no-op.
    let mut to: Vec<_> = effects.messages.iter().map(|m| m.to).collect();
    to.sort_unstable();
    assert_eq!(to, vec![2, 3]);
    for message in &effects.messages {
        assert_eq!(append_request(message), (2, 2, vec![3], 0));
    }
    assert_eq!(
        s.commit_index(),
        0,
        "not committed before a quorum stores it"
    );
}

#[test]
fn five_servers_need_three_votes_and_a_repeated_vote_counts_once() {
    let mut s = server(1, &members(5));
    s.timeout();
    s.receive(&vote(2, 1, 1, true));
    s.receive(&vote(2, 1, 1, true));
    assert_eq!(s.role(), Role::Candidate, "two distinct votes of five");
    s.receive(&vote(4, 1, 1, false));
    assert_eq!(s.role(), Role::Candidate, "a refusal is no vote");
    s.receive(&vote(3, 1, 1, true));
    assert_eq!(s.role(), Role::Leader);
}

#[test]
fn in_a_four_server_cluster_two_is_no_majority() {
    let mut s = server(1, &members(4));
    s.timeout();
    s.receive(&vote(2, 1, 1, true));
    assert_eq!(
        s.role(),
        Role::Candidate,
        "2 of 4 could tie with another 2 of 4"
    );
    s.receive(&vote(3, 1, 1, true));
    assert_eq!(s.role(), Role::Leader);
}

#[test]
fn votes_of_another_term_do_not_count() {
    let mut s = server(1, &three());
    s.timeout();
    s.timeout(); // now a candidate of term 2
    let effects = s.receive(&vote(2, 1, 1, true));
    assert_eq!(
        s.role(),
        Role::Candidate,
        "a vote from term 1 elects no one in term 2"
    );
    assert!(effects.is_empty());
}

#[test]
fn a_response_of_a_higher_term_ends_the_candidacy() {
    let mut s = server(1, &three());
    s.timeout();
    let effects = s.receive(&vote(2, 1, 7, false));
    assert_eq!(
        (s.role(), s.current_term(), s.voted_for()),
        (Role::Follower, 7, None)
    );
    assert!(effects.persist.hard_state);
}

#[test]
fn votes_reaching_a_follower_or_a_leader_change_nothing() {
    let mut follower = server(1, &three());
    let before = follower.clone();
    assert!(follower.receive(&vote(2, 1, 0, true)).is_empty());
    assert_eq!(follower, before);

    let mut leader = server(1, &members(5));
    elect(&mut leader, &[2, 3]);
    let before = leader.clone();
    assert!(
        leader.receive(&vote(4, 1, 1, true)).is_empty(),
        "a late vote"
    );
    assert_eq!(leader, before);
}
