//! Fast conflict resolution (paper §5.3, the optimization at the end of the
//! section): a follower that fails the consistency check names the term of
//! its entry at `prev_log_index` and the first index of its run of that
//! term, and the leader skips the whole run in one round trip — never below
//! what the follower is known to match, never above one step back, and
//! through compacted prefixes on either side.

mod common;

use common::{
    TestServer, append_entries, append_request, append_response, append_result, conflict_hint,
    conflict_response, elect, entry, members, only_message, server_with_log, server_with_snapshot,
};
use raft_model::{Body, Config, Index};

fn three() -> Config {
    members(3)
}

/// Server 1 made leader of term `log_terms.last() + 1` over `log_terms`
/// (server 2 votes); its no-op is appended and `next_index` is one past
/// its old last index for both peers.
fn leader(log_terms: &[u64]) -> TestServer {
    let term = log_terms.last().copied().unwrap_or(0);
    let mut l = server_with_log(1, &three(), term, None, log_terms);
    elect(&mut l, &[2]);
    l
}

/// The leader's request to server 2 now.
fn request_to_2(l: &mut TestServer) -> common::Msg {
    l.send_append_entries()
        .messages
        .into_iter()
        .find(|m| m.to == 2)
        .expect("a request to server 2")
}

// ------------------------------------------------------- the follower's hint

#[test]
fn a_conflicting_follower_names_the_term_and_where_its_run_of_it_begins() {
    let mut f = server_with_log(2, &three(), 3, None, &[1, 2, 2, 2]);
    let effects = f.receive(&append_entries(1, 2, 4, (4, 3), vec![entry(5, 4)], 0));
    let reply = only_message(&effects);
    assert_eq!(
        append_result(reply),
        (false, 4),
        "its last index, as before"
    );
    assert_eq!(conflict_hint(reply), (2, 2), "term 2, held from index 2");
}

#[test]
fn a_follower_lacking_the_previous_entry_gives_no_conflict_term() {
    let mut f = server_with_log(2, &three(), 3, None, &[1, 2]);
    let effects = f.receive(&append_entries(1, 2, 4, (4, 3), vec![], 0));
    let reply = only_message(&effects);
    assert_eq!(append_result(reply), (false, 2));
    assert_eq!(conflict_hint(reply), (0, 0));
}

#[test]
fn successes_and_stale_rejections_carry_no_hint() {
    let mut f = server_with_log(2, &three(), 3, None, &[1, 2]);
    let effects = f.receive(&append_entries(1, 2, 2, (2, 2), vec![], 0));
    assert_eq!(conflict_hint(only_message(&effects)), (0, 0), "stale");
    let effects = f.receive(&append_entries(1, 2, 3, (2, 2), vec![], 0));
    let reply = only_message(&effects);
    assert_eq!(append_result(reply), (true, 2));
    assert_eq!(conflict_hint(reply), (0, 0));
}

#[test]
fn the_followers_run_stops_at_its_snapshot() {
    // Entries 1..=3 compacted (the snapshot's last entry, 3, is of term 2):
    // the run of term 2 is known from index 3 only. The hint is then too
    // high, never too low: the leader probes no lower than it must.
    let mut f = server_with_snapshot(2, &three(), 3, &[1, 2, 2, 2, 2], 3);
    let effects = f.receive(&append_entries(1, 2, 4, (5, 3), vec![], 0));
    assert_eq!(conflict_hint(only_message(&effects)), (2, 3));
    // A request whose previous entry lies inside the snapshot is checked at
    // the snapshot (committed entries match): no conflict to name there.
    let mut f = server_with_snapshot(2, &three(), 3, &[1, 2, 2], 3);
    let effects = f.receive(&append_entries(1, 2, 4, (1, 1), vec![entry(2, 2)], 0));
    assert_eq!(append_result(only_message(&effects)), (true, 2));
    assert_eq!(conflict_hint(only_message(&effects)), (0, 0));
}

// ------------------------------------------------------ the leader's back-off

#[test]
fn a_divergent_suffix_of_one_term_is_skipped_in_one_round_trip() {
    // The follower, a deposed leader of term 2, holds four entries of term 2
    // the leader of term 4 never had: one rejection skips all of them (one
    // step at a time it took four round trips).
    let mut l = leader(&[1, 3, 3, 3, 3]); // term 4, no-op at 6, next 6
    let mut f = server_with_log(2, &three(), 2, None, &[1, 2, 2, 2, 2]);
    let rejection = only_message(&f.receive(&request_to_2(&mut l))).clone();
    assert_eq!(conflict_hint(&rejection), (2, 2));
    let effects = l.receive(&rejection);
    assert_eq!(l.next_index()[&2], 2, "past the whole run of term 2");
    let retry = only_message(&effects).clone();
    assert_eq!(append_request(&retry).0, 1, "probing entry 1");
    let answer = only_message(&f.receive(&retry)).clone();
    assert_eq!(
        append_result(&answer),
        (true, 6),
        "matched at the first retry"
    );
    assert_eq!(
        common::terms_of(f.log()),
        vec![1, 3, 3, 3, 3, 4],
        "the conflicting run is replaced"
    );
}

#[test]
fn a_leader_holding_the_conflicting_term_probes_just_past_its_last_entry_of_it() {
    // Both hold term 2 at index 2; the follower's run of term 2 goes on to 5.
    // The leader's last entry of term 2 is 2, which the follower holds too
    // (its run began at or before it): they match there (Log Matching).
    let mut l = leader(&[1, 2, 3, 3, 3]); // term 4, next 6
    let mut f = server_with_log(2, &three(), 2, None, &[1, 2, 2, 2, 2]);
    let rejection = only_message(&f.receive(&request_to_2(&mut l))).clone();
    assert_eq!(conflict_hint(&rejection), (2, 2));
    let effects = l.receive(&rejection);
    assert_eq!(l.next_index()[&2], 3);
    let answer = only_message(&f.receive(only_message(&effects))).clone();
    assert_eq!(append_result(&answer), (true, 6), "entry 2 matched at once");
    assert_eq!(common::terms_of(f.log()), vec![1, 2, 3, 3, 3, 4]);
}

#[test]
fn the_hint_never_backs_off_below_what_the_peer_matches() {
    let mut l = leader(&[1, 1, 3]); // term 4, next 4
    l.receive(&append_response(2, 1, 4, true, 3)); // match 3, next 4
    // A late rejection, sent when the follower held [1, 2, 2], names term 2
    // from index 2, which the leader lacks: alone it would send next_index
    // to 2, below what the follower has since matched.
    let effects = l.receive(&conflict_response(2, 1, 4, 3, (2, 2)));
    assert_eq!((l.match_index()[&2], l.next_index()[&2]), (3, 4));
    assert!(effects.messages.is_empty());
}

#[test]
fn a_late_hint_pointing_higher_is_one_step_back_at_most() {
    let mut l = leader(&[1, 1, 1, 1, 1]); // term 2, next 6
    l.receive(&append_response(2, 1, 2, false, 1)); // short log: next 2
    assert_eq!(l.next_index()[&2], 2);
    // A late conflict rejection, of a request sent when next_index was 6,
    // points at 5: next_index never rises on a rejection.
    l.receive(&conflict_response(2, 1, 2, 5, (1, 4)));
    assert_eq!(l.next_index()[&2], 1);
}

#[test]
fn a_hint_the_leader_cannot_use_is_one_step_back() {
    // A rejection naming the term of the leader's own entry at next - 1
    // cannot come from a correct follower; the leader backs off one step.
    let mut l = leader(&[1, 1, 1]); // term 2, next 4
    l.receive(&conflict_response(2, 1, 2, 5, (1, 4)));
    assert_eq!(l.next_index()[&2], 3);
}

#[test]
fn a_term_compacted_behind_the_leaders_snapshot_sends_the_snapshot() {
    // The leader compacted 1..=4 (its snapshot ends in term 3): it cannot
    // tell where term 2 ended, so it takes the follower's first index, which
    // is compacted here: the follower is sent the snapshot.
    let mut l = leader_with_snapshot(&[1, 2, 3, 3, 3], 4); // term 4, next 6
    let effects = l.receive(&conflict_response(2, 1, 4, 5, (2, 2)));
    assert_eq!(l.next_index()[&2], 2);
    assert!(
        matches!(
            only_message(&effects).body,
            Body::InstallSnapshotRequest { .. }
        ),
        "{effects:?}"
    );
}

#[test]
fn a_conflicting_term_ending_at_the_leaders_snapshot_is_found_there() {
    // The leader's snapshot ends at 3 with term 2: its last entry of term 2
    // is 3, whose term it knows, so it probes there with an AppendEntries.
    let mut l = leader_with_snapshot(&[1, 2, 2, 3, 3], 3); // term 4, next 6
    let effects = l.receive(&conflict_response(2, 1, 4, 5, (2, 2)));
    assert_eq!(l.next_index()[&2], 4);
    assert_eq!(append_request(only_message(&effects)).0, 3);
}

/// Like [`leader`], over a log whose entries up to `snapshot_index` are
/// compacted.
fn leader_with_snapshot(log_terms: &[u64], snapshot_index: Index) -> TestServer {
    let term = log_terms.last().copied().unwrap_or(0);
    let mut l = server_with_snapshot(1, &three(), term, log_terms, snapshot_index);
    elect(&mut l, &[2]);
    l
}
