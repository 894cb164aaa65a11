//! `Server::step`, the one dispatcher: each step goes to the transition of
//! its action, and a step the spec does not allow is refused without
//! changing the server.

mod common;

use common::*;
use raft_model::{Action, Refused, Step};

type TestStep = Step<Cmd, Image, Msg>;

#[test]
fn every_action_is_listed_once_with_its_spec_name() {
    let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert_eq!(
        Action::ALL.iter().filter(|a| a.is_handler()).count(),
        7,
        "one handler per message kind"
    );
}

#[test]
fn a_handler_step_is_chosen_by_the_message_kind() {
    let request = append_entries(1, 2, 1, (0, 0), vec![], 0);
    let step: TestStep = Step::receive(request.clone());
    assert_eq!(step.action(), Action::HandleAppendEntriesRequest);
    assert_eq!(step.message(), Some(&request));
    assert_eq!(
        Step::<Cmd, Image, _>::receive(vote(2, 1, 1, true)).action(),
        Action::HandleRequestVoteResponse
    );
}

#[test]
fn a_handler_given_a_message_of_another_kind_is_refused_unchanged() {
    let mut s = server(2, &members(3));
    let before = s.clone();
    let refused = s
        .step(TestStep::HandleRequestVoteRequest(append_entries(
            1,
            2,
            1,
            (0, 0),
            vec![],
            0,
        )))
        .unwrap_err();
    assert_eq!(
        refused,
        Refused::WrongKind {
            action: Action::HandleRequestVoteRequest,
            kind: "AppendEntriesRequest"
        }
    );
    assert_eq!(s, before);
}

#[test]
fn misaddressed_messages_are_refused_unchanged() {
    let mut s = server(2, &members(3));
    let before = s.clone();
    for message in [
        append_entries(1, 3, 5, (0, 0), vec![], 0), // to someone else
        append_entries(2, 2, 5, (0, 0), vec![], 0), // from itself
    ] {
        assert_eq!(
            s.step(TestStep::receive(message)).unwrap_err(),
            Refused::Misaddressed
        );
    }
    assert_eq!(s, before, "not even the term moved");
}

#[test]
fn timers_are_actions_only_where_the_spec_enables_them() {
    let mut follower = server(1, &members(3));
    assert_eq!(
        follower.step(TestStep::SendAppendEntries).unwrap_err(),
        Refused::NotEnabled(Action::SendAppendEntries)
    );
    let mut leader = server(1, &members(3));
    elect(&mut leader, &[2]);
    let before = leader.clone();
    assert_eq!(
        leader.step(TestStep::Timeout).unwrap_err(),
        Refused::NotEnabled(Action::Timeout)
    );
    assert_eq!(leader, before);
    assert!(leader.step(TestStep::SendAppendEntries).is_ok());
    assert!(follower.step(TestStep::Timeout).is_ok());
}

#[test]
fn client_steps_at_a_follower_name_the_leader() {
    let mut f = server(2, &members(3));
    f.receive(&append_entries(1, 2, 1, (0, 0), vec![], 0));
    for step in [TestStep::ClientRequest(7), TestStep::ReadIndex(1)] {
        match f.step(step).unwrap_err() {
            Refused::NotLeader(not_leader) => assert_eq!(not_leader.leader_hint, Some(1)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_client_request_says_where_it_was_appended() {
    let mut l = server(1, &members(3));
    elect(&mut l, &[2]);
    let effects = l.step(TestStep::ClientRequest(7)).expect("leader");
    assert_eq!(effects.appended_at, Some(2), "after the leader's no-op");
    assert_eq!(effects.persist.log_from, Some(2));
}

#[test]
fn a_commit_hands_over_exactly_the_entries_it_commits() {
    let mut l = server(1, &members(3));
    elect(&mut l, &[2]);
    l.step(TestStep::ClientRequest(7)).expect("leader");
    l.step(TestStep::ClientRequest(8)).expect("leader");
    let effects = l.receive(&append_response(2, 1, 1, true, 3));
    assert_eq!(effects.commit_index, Some(3));
    assert_eq!(effects.committed.first_index, 1);
    let terms: Vec<_> = effects.committed.iter().map(|(i, e)| (i, e.term)).collect();
    assert_eq!(terms, vec![(1, 1), (2, 1), (3, 1)]);
    let again = l.receive(&append_response(3, 1, 1, true, 3));
    assert!(again.committed.is_empty(), "nothing is handed over twice");
}

#[test]
fn compaction_is_refused_past_the_commit_index() {
    let mut l = server(1, &members(3));
    elect(&mut l, &[2]);
    match l
        .step(TestStep::CompactLog {
            index: 1,
            data: Default::default(),
        })
        .unwrap_err()
    {
        Refused::Compact(error) => assert!(error.to_string().contains("commit index 0")),
        other => panic!("{other:?}"),
    }
}
