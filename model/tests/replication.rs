//! Log replication (paper §5.3, §5.4.2; Figure 2 "AppendEntries RPC" and
//! "Rules for Servers: Leaders"): ClientRequest, SendAppendEntries,
//! HandleAppendEntriesRequest, HandleAppendEntriesResponse and the commit
//! rule, on hand-built states.

mod common;

use common::{
    TestServer, append_entries, append_request, append_response, append_result, elect, entry,
    members, only_message, server_with_log, terms_of,
};
use raft_model::{Config, Role};

fn three() -> Config {
    members(3)
}

/// Server 2, a follower in `term` with a log of `terms`.
fn follower(term: u64, terms: &[u64]) -> TestServer {
    server_with_log(2, &three(), term, None, terms)
}

/// Server 1 made leader of term `log_terms.last() + 1` over a log of
/// `log_terms`, in a cluster of `n`; its no-op is appended.
fn leader(n: u64, log_terms: &[u64]) -> TestServer {
    let term = log_terms.last().copied().unwrap_or(0);
    let mut s = server_with_log(1, &members(n), term, None, log_terms);
    let voters: Vec<u64> = (2..=n).take(n as usize / 2).collect();
    elect(&mut s, &voters);
    s
}

// ---------------------------------------------- ClientRequest, SendAppendEntries

#[test]
fn only_a_leader_takes_client_requests_others_name_the_leader() {
    let mut f = follower(1, &[]);
    assert_eq!(f.client_request(5).unwrap_err().leader_hint, None);
    f.receive(&append_entries(1, 2, 1, (0, 0), vec![], 0));
    assert_eq!(f.client_request(5).unwrap_err().leader_hint, Some(1));

    let mut l = leader(3, &[]);
    let (index, effects) = l.client_request(5).expect("leader");
    assert_eq!(index, 2, "after the no-op");
    assert_eq!(effects.persist.log_from, Some(2));
    assert!(
        effects.messages.is_empty(),
        "replication waits for send_append_entries"
    );
}

#[test]
fn send_append_entries_sends_each_peer_what_it_lacks_capped() {
    let mut l = leader(3, &[1, 1]).with_max_append_entries(2);
    for command in 0..3 {
        l.client_request(command).expect("leader");
    }
    // Log: [1, 1, 2 (no-op), 2, 2, 2]; next_index starts at 3 for both.
    // Server 3 reports it matches up to 4, so it next needs entry 5; with
    // the leader, that is a quorum for entry 4 (of the leader's term).
    l.receive(&append_response(3, 1, 2, true, 4));
    assert_eq!(l.next_index()[&3], 5);
    let effects = l.send_append_entries();
    assert_eq!(effects.messages.len(), 2);
    for message in &effects.messages {
        let expected = if message.to == 2 {
            (2, 1, vec![2, 2], 4)
        } else {
            (4, 2, vec![2, 2], 4)
        };
        assert_eq!(append_request(message), expected, "to {}", message.to);
    }
    let mut f = follower(1, &[]);
    assert!(
        f.send_append_entries().is_empty(),
        "a follower sends nothing"
    );
}

// ------------------------------------------------ HandleAppendEntriesRequest

#[test]
fn the_consistency_check_refuses_a_missing_previous_entry_with_a_hint() {
    let mut f = follower(2, &[1, 1]);
    let before = f.log().clone();
    let effects = f.receive(&append_entries(1, 2, 2, (5, 2), vec![entry(6, 2)], 6));
    assert_eq!(
        append_result(only_message(&effects)),
        (false, 2),
        "hint: my last index"
    );
    assert_eq!(f.log(), &before);
    assert_eq!(f.commit_index(), 0);
    assert_eq!(
        f.leader_id(),
        Some(1),
        "the leader of the term is known all the same"
    );
    assert!(effects.reset_election_timer);
}

#[test]
fn the_consistency_check_refuses_a_previous_entry_of_another_term() {
    let mut f = follower(3, &[1, 1, 2]);
    let effects = f.receive(&append_entries(1, 2, 3, (3, 3), vec![entry(4, 3)], 0));
    assert_eq!(append_result(only_message(&effects)), (false, 3));
    assert_eq!(terms_of(f.log()), vec![1, 1, 2]);
    assert!(effects.persist.log_from.is_none());
}

#[test]
fn matching_entries_are_appended_durably_before_the_answer() {
    let mut f = follower(1, &[1]);
    let effects = f.receive(&append_entries(
        1,
        2,
        1,
        (1, 1),
        vec![entry(2, 1), entry(3, 1)],
        0,
    ));
    assert_eq!(terms_of(f.log()), vec![1, 1, 1]);
    assert_eq!(effects.persist.log_from, Some(2));
    assert_eq!(append_result(only_message(&effects)), (true, 3));
}

#[test]
fn a_conflicting_suffix_is_truncated() {
    let mut f = follower(2, &[1, 1, 2, 2]);
    let effects = f.receive(&append_entries(1, 2, 3, (2, 1), vec![entry(3, 3)], 0));
    assert_eq!(
        terms_of(f.log()),
        vec![1, 1, 3],
        "entry 4 followed the conflict and goes"
    );
    assert_eq!(effects.persist.log_from, Some(3));
    assert_eq!(append_result(only_message(&effects)), (true, 3));
}

#[test]
fn an_old_or_repeated_request_never_truncates_what_follows_it() {
    let mut f = follower(1, &[1, 1, 1, 1]);
    let before = f.log().clone();
    let effects = f.receive(&append_entries(1, 2, 1, (1, 1), vec![entry(2, 1)], 0));
    assert_eq!(
        f.log(),
        &before,
        "entries 3 and 4 may be newer than this request"
    );
    assert!(effects.persist.log_from.is_none(), "nothing written");
    assert_eq!(append_result(only_message(&effects)), (true, 2));
}

#[test]
fn commit_index_is_min_of_leader_commit_and_last_new_entry() {
    // The follower holds entries 2-4 that this request does not vouch for.
    let mut f = follower(1, &[1, 1, 1, 1]);
    let effects = f.receive(&append_entries(1, 2, 1, (0, 0), vec![entry(1, 1)], 4));
    assert_eq!(
        f.commit_index(),
        1,
        "only entry 1 is proved to match the leader"
    );
    assert_eq!(effects.commit_index, Some(1));

    let effects = f.receive(&append_entries(
        1,
        2,
        1,
        (1, 1),
        vec![entry(2, 1), entry(3, 1)],
        2,
    ));
    assert_eq!(
        f.commit_index(),
        2,
        "the leader's commit index when below the last new entry"
    );
    assert_eq!(effects.commit_index, Some(2));

    let effects = f.receive(&append_entries(1, 2, 1, (0, 0), vec![], 1));
    assert_eq!(f.commit_index(), 2, "never goes back");
    assert_eq!(effects.commit_index, None);
}

#[test]
fn a_stale_leader_is_refused_and_changes_nothing() {
    let mut f = follower(5, &[1, 1]);
    let before = f.clone();
    let effects = f.receive(&append_entries(1, 2, 4, (0, 0), vec![entry(1, 4)], 2));
    let reply = only_message(&effects);
    assert_eq!(append_result(reply), (false, 0));
    assert_eq!(reply.term, 5, "tells the stale leader the newer term");
    assert_eq!(f, before);
    assert!(!effects.reset_election_timer, "a stale leader is no leader");
}

#[test]
fn a_candidate_hearing_the_leader_of_its_term_becomes_follower() {
    let mut c = follower(1, &[]);
    c.timeout(); // candidate of term 2
    c.receive(&append_entries(3, 2, 2, (0, 0), vec![], 0));
    assert_eq!(
        (c.role(), c.current_term(), c.leader_id()),
        (Role::Follower, 2, Some(3))
    );
    assert_eq!(c.voted_for(), Some(2), "its vote in term 2 stands");
}

#[test]
fn a_leader_steps_down_on_a_request_of_a_higher_term() {
    let mut l = leader(3, &[1]);
    let effects = l.receive(&append_entries(2, 1, 9, (2, 2), vec![], 2));
    assert_eq!(
        (l.role(), l.current_term(), l.leader_id()),
        (Role::Follower, 9, Some(2))
    );
    assert!(effects.persist.hard_state);
    assert!(l.next_index().is_empty());
}

// ----------------------------------------------- HandleAppendEntriesResponse

#[test]
fn success_advances_match_and_next_and_sends_the_next_batch() {
    let mut l = leader(3, &[1]).with_max_append_entries(1);
    l.client_request(7).expect("leader"); // log [1, 2 (no-op), 2]
    let effects = l.receive(&append_response(2, 1, 2, true, 2));
    assert_eq!((l.match_index()[&2], l.next_index()[&2]), (2, 3));
    assert_eq!(l.commit_index(), 2, "the no-op is on 2 of 3");
    assert_eq!(effects.commit_index, Some(2));
    let message = only_message(&effects);
    assert_eq!(
        (message.to, append_request(message)),
        (2, (2, 2, vec![2], 2))
    );

    let effects = l.receive(&append_response(2, 1, 2, true, 3));
    assert_eq!(
        (l.match_index()[&2], l.next_index()[&2], l.commit_index()),
        (3, 4, 3)
    );
    assert!(effects.messages.is_empty(), "peer 2 is up to date");
}

#[test]
fn an_older_success_never_moves_match_back() {
    let mut l = leader(3, &[1]);
    l.receive(&append_response(2, 1, 2, true, 2));
    let effects = l.receive(&append_response(2, 1, 2, true, 1));
    assert_eq!((l.match_index()[&2], l.next_index()[&2]), (2, 3));
    assert!(effects.commit_index.is_none() && effects.messages.is_empty());
}

#[test]
fn failure_backs_off_with_the_hint_and_retries() {
    let mut l = leader(3, &[1, 1, 1, 1, 1]); // next_index 6 for both
    // Peer 2 holds only 2 entries: jump straight past its log.
    let effects = l.receive(&append_response(2, 1, 2, false, 2));
    assert_eq!(l.next_index()[&2], 3);
    assert_eq!(
        append_request(only_message(&effects)).0,
        2,
        "retry after entry 2"
    );
    // Peer 3's log is long but conflicts: one step back.
    let effects = l.receive(&append_response(3, 1, 2, false, 9));
    assert_eq!(l.next_index()[&3], 5);
    assert_eq!(append_request(only_message(&effects)).0, 4);
}

#[test]
fn failure_never_backs_off_below_what_the_peer_matches() {
    let mut l = leader(3, &[1, 1, 1]);
    l.receive(&append_response(2, 1, 2, true, 3)); // match 3, next 4
    let effects = l.receive(&append_response(2, 1, 2, false, 0)); // a late failure
    assert_eq!((l.match_index()[&2], l.next_index()[&2]), (3, 4));
    assert!(effects.messages.is_empty());
}

#[test]
fn a_response_of_a_higher_term_deposes_the_leader() {
    let mut l = leader(3, &[1]);
    let effects = l.receive(&append_response(2, 1, 5, false, 0));
    assert_eq!(
        (l.role(), l.current_term(), l.voted_for()),
        (Role::Follower, 5, None)
    );
    assert!(effects.persist.hard_state);
}

#[test]
fn responses_of_an_older_term_or_to_a_non_leader_are_ignored() {
    let mut l = leader(3, &[1, 1]); // term 2
    let before = l.clone();
    assert!(l.receive(&append_response(2, 1, 1, true, 3)).is_empty());
    assert_eq!(l, before);
    let mut f = follower(2, &[1]);
    let before = f.clone();
    assert!(f.receive(&append_response(3, 2, 2, true, 1)).is_empty());
    assert_eq!(f, before);
}

// ------------------------------------------------------- the commit rule

#[test]
fn the_leader_commits_the_highest_current_term_entry_on_a_majority() {
    let mut l = leader(5, &[1]); // log [1, 2 (no-op)], term 2
    l.client_request(1).expect("leader");
    l.client_request(2).expect("leader"); // log [1, 2, 2, 2]
    l.receive(&append_response(2, 1, 2, true, 4));
    assert_eq!(l.commit_index(), 0, "2 of 5 is no majority");
    let effects = l.receive(&append_response(3, 1, 2, true, 3));
    assert_eq!(
        (l.commit_index(), effects.commit_index),
        (3, Some(3)),
        "1, 2, 3 hold 3"
    );
    let effects = l.receive(&append_response(4, 1, 2, true, 4));
    assert_eq!((l.commit_index(), effects.commit_index), (4, Some(4)));
}

#[test]
fn entries_of_earlier_terms_commit_only_with_one_of_the_current_term() {
    // The leader of term 3 has entries of terms 1 and 2 and its no-op.
    let mut l = leader(3, &[1, 2]);
    assert_eq!(l.current_term(), 3);
    let effects = l.receive(&append_response(2, 1, 3, true, 2));
    assert_eq!(
        l.commit_index(),
        0,
        "entry 2 (term 2) is on a majority but not committed"
    );
    assert!(effects.commit_index.is_none());
    l.receive(&append_response(2, 1, 3, true, 3));
    assert_eq!(
        l.commit_index(),
        3,
        "the no-op of term 3 commits everything before it"
    );
}
