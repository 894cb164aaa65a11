//! Leadership transfer (dissertation §3.10): the leader stops accepting
//! client requests, brings the target up to date, then sends it TimeoutNow;
//! the target campaigns at once, bypassing PreVote's pre-election. The
//! leader's election timer aborts a transfer that has not completed; any
//! step-down clears it.

mod common;

use common::{Msg, TestServer, append_response, elect, members, server, snapshot_response, vote};
use raft_model::{Action, Body, Bug, Message, NotLeader, Refused, Role, Step};

/// Server 1 of three, CheckQuorum and PreVote on, leader of term 1
/// (elected by 2), its no-op at index 1.
fn leader() -> TestServer {
    let mut s = server(1, &members(3))
        .with_check_quorum(true)
        .with_pre_vote(false);
    elect(&mut s, &[2]);
    s.with_pre_vote(true)
}

fn transfer(s: &mut TestServer, target: u64) -> Result<Vec<Msg>, Refused> {
    s.step::<Msg>(Step::TransferLeadership(target))
        .map(|e| e.messages)
}

fn timeout_now(from: u64, to: u64, term: u64) -> Msg {
    Message {
        from,
        to,
        term,
        body: Body::TimeoutNow {},
    }
}

fn is_timeout_now(m: &Msg, to: u64) -> bool {
    m.to == to && matches!(m.body, Body::TimeoutNow {})
}

#[test]
fn a_transfer_to_a_lagging_peer_replicates_first_then_sends_timeout_now() {
    let mut s = leader();
    let sent = transfer(&mut s, 2).unwrap();
    assert_eq!(s.lead_transferee(), Some(2));
    assert_eq!(sent.len(), 1);
    assert!(
        matches!(sent[0].body, Body::AppendEntriesRequest { .. }) && sent[0].to == 2,
        "the target lacks the no-op: it is sent what it lacks"
    );
    // Another peer catching up does not trigger it.
    let effects = s.receive(&append_response(3, 1, 1, true, 1));
    assert!(!effects.messages.iter().any(|m| is_timeout_now(m, 3)));
    // The target matching the last entry does.
    let effects = s.receive(&append_response(2, 1, 1, true, 1));
    assert!(effects.messages.iter().any(|m| is_timeout_now(m, 2)));
    assert!(
        s.is_leader(),
        "the leader leads until it hears of a new term"
    );
}

#[test]
fn a_transfer_to_an_up_to_date_peer_sends_timeout_now_at_once() {
    let mut s = leader();
    s.receive(&append_response(2, 1, 1, true, 1));
    let sent = transfer(&mut s, 2).unwrap();
    assert_eq!(sent.len(), 1);
    assert!(is_timeout_now(&sent[0], 2));
    assert_eq!(sent[0].term, 1);
}

#[test]
fn an_installed_snapshot_that_catches_the_target_up_sends_timeout_now() {
    let mut s = leader();
    transfer(&mut s, 3).unwrap();
    let effects = s.receive(&snapshot_response(3, 1, 1, 1));
    assert!(effects.messages.iter().any(|m| is_timeout_now(m, 3)));
}

#[test]
fn client_requests_are_refused_during_a_transfer_and_accepted_after_an_abort() {
    let mut s = leader();
    transfer(&mut s, 2).unwrap();
    assert_eq!(
        s.step::<Msg>(Step::ClientRequest(7)),
        Err(Refused::Transferring { transferee: 2 })
    );
    assert_eq!(s.log().last_index(), 1, "nothing appended");
    assert_eq!(
        transfer(&mut s, 3),
        Err(Refused::Transferring { transferee: 2 }),
        "one transfer at a time"
    );
    s.step::<Msg>(Step::AbortTransfer).unwrap();
    assert_eq!(s.lead_transferee(), None);
    assert!(s.is_leader());
    s.step::<Msg>(Step::ClientRequest(7)).unwrap();
    assert_eq!(s.log().last_index(), 2);
    assert_eq!(
        s.step::<Msg>(Step::AbortTransfer),
        Err(Refused::NotEnabled(Action::AbortTransfer)),
        "no transfer to abort"
    );
}

#[test]
fn a_transfer_to_self_to_a_non_member_or_by_a_follower_is_refused() {
    let mut s = leader();
    assert_eq!(transfer(&mut s, 1), Err(Refused::BadTransferee(1)));
    assert_eq!(transfer(&mut s, 9), Err(Refused::BadTransferee(9)));
    assert_eq!(s.lead_transferee(), None);
    let mut f = server(2, &members(3));
    assert_eq!(
        transfer(&mut f, 3),
        Err(Refused::NotLeader(NotLeader { leader_hint: None }))
    );
}

#[test]
fn any_step_down_clears_the_transfer() {
    let mut s = leader();
    transfer(&mut s, 2).unwrap();
    // A newer term (say, the target's own election) deposes the leader.
    s.receive(&vote(3, 1, 2, false));
    assert_eq!((s.role(), s.lead_transferee()), (Role::Follower, None));

    // CheckQuorum with no answers for a whole period.
    let mut s = leader();
    transfer(&mut s, 2).unwrap();
    s.step::<Msg>(Step::CheckQuorum).unwrap();
    s.step::<Msg>(Step::CheckQuorum).unwrap();
    assert_eq!((s.role(), s.lead_transferee()), (Role::Follower, None));

    // A restart.
    let mut s = leader();
    transfer(&mut s, 2).unwrap();
    s.step::<Msg>(Step::Restart).unwrap();
    assert_eq!(s.lead_transferee(), None);
}

/// Server 2 of three, PreVote on, a follower of leader 1 in term 1: in its
/// lease.
fn follower() -> TestServer {
    let mut f = server(2, &members(3)).with_pre_vote(true);
    f.receive(&common::append_entries(1, 2, 1, (0, 0), vec![], 0));
    assert_eq!(f.leader_id(), Some(1));
    f
}

#[test]
fn timeout_now_makes_the_target_campaign_at_once_bypassing_pre_vote() {
    let mut f = follower();
    let effects = f.receive(&timeout_now(1, 2, 1));
    assert_eq!(
        (f.role(), f.current_term(), f.voted_for(), f.leader_id()),
        (Role::Candidate, 2, Some(2), None)
    );
    assert!(effects.persist.hard_state);
    assert!(effects.messages.iter().all(|m| m.term == 2
        && matches!(
            m.body,
            Body::RequestVoteRequest {
                pre_vote: false,
                ..
            }
        )));
    assert_eq!(effects.messages.len(), 2);
}

#[test]
fn a_stale_timeout_now_is_ignored_and_a_newer_one_applies_the_term_rule_first() {
    let mut f = follower();
    f.receive(&common::append_entries(3, 2, 2, (0, 0), vec![], 0));
    let effects = f.receive(&timeout_now(1, 2, 1));
    assert!(effects.messages.is_empty());
    assert_eq!((f.role(), f.current_term()), (Role::Follower, 2));

    let mut f = follower();
    f.receive(&timeout_now(3, 2, 5));
    assert_eq!((f.role(), f.current_term()), (Role::Candidate, 6));
}

#[test]
fn a_non_member_ignores_timeout_now() {
    let mut f = server(4, &members(3)).with_pre_vote(true);
    let effects = f.receive(&Message {
        to: 4,
        ..timeout_now(1, 2, 1)
    });
    assert!(effects.messages.is_empty());
    assert_eq!(f.role(), Role::Follower);
}

#[test]
fn with_the_seeded_bug_a_transferring_leader_appends_commands() {
    let mut s = leader().with_bugs(&[Bug::TransferAcceptsProposals]);
    transfer(&mut s, 2).unwrap();
    s.step::<Msg>(Step::ClientRequest(7)).unwrap();
    assert_eq!(s.log().last_index(), 2);
}

#[test]
fn with_the_seeded_bug_the_target_only_asks_for_pre_votes() {
    let mut f = follower().with_bugs(&[Bug::TransferThroughPreVote]);
    let effects = f.receive(&timeout_now(1, 2, 1));
    assert_eq!((f.role(), f.current_term()), (Role::PreCandidate, 1));
    assert!(
        effects
            .messages
            .iter()
            .all(|m| matches!(m.body, Body::RequestVoteRequest { pre_vote: true, .. }))
    );
}
