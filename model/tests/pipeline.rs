//! Pipelined replication (issue 17): with `max_inflight` = W > 0 a leader
//! moves a peer's `next_index` past the entries it sends, so the next
//! request carries the entries after them, up to W requests' worth beyond
//! what the peer is known to match; `match_index` still moves on a success
//! alone, and a rejection takes `next_index` back to the peer's last entry.

mod common;

use common::cluster::Cluster;
use common::observer::Property;
use common::{Msg, TestServer, append_response, elect, members, server};
use raft_model::{Body, Bug, Index};

/// A leader of term 1 of three servers, one entry per request, a window of
/// `w` requests; its no-op (entry 1) is on its way to both followers.
fn pipelining_leader(w: usize) -> TestServer {
    let mut l = server(1, &members(3))
        .with_max_append_entries(1)
        .with_max_inflight(w);
    let effects = elect(&mut l, &[2]);
    assert_eq!(effects.messages.len(), 2);
    l
}

/// `(prev_log_index, entries)` of the request to `to` among `messages`.
fn request_to(messages: &[Msg], to: u64) -> (Index, usize) {
    let message = messages
        .iter()
        .find(|m| m.to == to)
        .expect("a request to the peer");
    match &message.body {
        Body::AppendEntriesRequest {
            prev_log_index,
            entries,
            ..
        } => (*prev_log_index, entries.len()),
        other => panic!("not an AppendEntries request: {other:?}"),
    }
}

#[test]
fn a_leader_sends_the_next_entry_before_the_previous_one_is_acknowledged() {
    let mut l = pipelining_leader(2);
    // The no-op went out: next_index already past it.
    assert_eq!(l.next_index()[&2], 2);
    assert_eq!(l.match_index()[&2], 0);
    l.client_request(7).expect("leader");
    let effects = l.send_append_entries();
    // Entry 2, not entry 1 again.
    assert_eq!(request_to(&effects.messages, 2), (1, 1));
    assert_eq!(l.next_index()[&2], 3);
    // The window (two entries beyond match 0) is full: a heartbeat.
    l.client_request(8).expect("leader");
    let effects = l.send_append_entries();
    assert_eq!(request_to(&effects.messages, 2), (2, 0));
    assert_eq!(l.next_index()[&2], 3, "a heartbeat moves nothing");
    // The no-op's success opens the window by one: entry 3 goes at once.
    let effects = l.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(l.match_index()[&2], 1);
    assert_eq!(request_to(&effects.messages, 2), (2, 1));
    assert_eq!(l.next_index()[&2], 4);
}

#[test]
fn without_pipelining_next_index_waits_for_the_answer() {
    let mut l = pipelining_leader(0);
    assert_eq!(l.next_index()[&2], 1);
    l.client_request(7).expect("leader");
    let effects = l.send_append_entries();
    // The no-op again, the paper's Raft.
    assert_eq!(request_to(&effects.messages, 2), (0, 1));
    assert_eq!(l.next_index()[&2], 1);
}

#[test]
fn a_rejection_falls_back_to_the_peer_s_last_entry_and_resends() {
    let mut l = pipelining_leader(4);
    for command in [7, 8, 9] {
        l.client_request(command).expect("leader");
        l.send_append_entries();
    }
    assert_eq!(l.next_index()[&2], 5);
    // The no-op was lost: the peer, holding nothing, refuses entry 2's
    // request (its last index, 0, is the hint).
    let effects = l.receive(&append_response(2, 1, 1, false, 0));
    assert_eq!(request_to(&effects.messages, 2), (0, 1), "entry 1 again");
    assert_eq!(l.next_index()[&2], 2, "the window restarts at the gap");
    assert_eq!(l.match_index()[&2], 0);
}

#[test]
fn a_late_answer_never_moves_match_back_nor_next_below_it() {
    let mut l = pipelining_leader(4);
    for command in [7, 8] {
        l.client_request(command).expect("leader");
        l.send_append_entries();
    }
    assert_eq!(l.next_index()[&2], 4);
    l.receive(&append_response(2, 1, 1, true, 2));
    assert_eq!(l.match_index()[&2], 2);
    assert_eq!(l.next_index()[&2], 4, "entry 3 is still on its way");
    // The no-op's answer, overtaken, arrives last.
    l.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(l.match_index()[&2], 2);
    assert_eq!(l.next_index()[&2], 4);
    // A late rejection (of a request sent before the peer caught up) backs
    // off no lower than match + 1, and entry 3 goes again.
    let effects = l.receive(&append_response(2, 1, 1, false, 0));
    assert_eq!(l.match_index()[&2], 2);
    assert_eq!(request_to(&effects.messages, 2), (2, 1));
    assert_eq!(l.next_index()[&2], 4);
}

#[test]
fn a_new_leader_probes_a_peer_whose_match_is_unknown() {
    // A leader with a long log: next_index starts past it while match is
    // 0, so the whole log counts as in flight and the no-op's request is
    // a heartbeat until a success shows where the peer stands.
    let mut l = common::server_with_log(1, &members(3), 1, None, &[1, 1, 1])
        .with_max_append_entries(1)
        .with_max_inflight(2);
    let effects = elect(&mut l, &[2]);
    assert_eq!(request_to(&effects.messages, 2), (3, 0));
    assert_eq!(l.next_index()[&2], 4);
    let effects = l.receive(&append_response(2, 1, 2, true, 3));
    assert_eq!(l.match_index()[&2], 3);
    assert_eq!(request_to(&effects.messages, 2), (3, 1), "the no-op");
    assert_eq!(l.next_index()[&2], 5);
}

#[test]
fn a_lost_request_is_recovered_by_the_next_heartbeat() {
    let mut cluster = Cluster::new(3, &Property::ALL)
        .with_max_append_entries(1)
        .with_max_inflight(2);
    cluster.timeout(1);
    cluster.deliver_all(100);
    assert!(cluster.server(1).is_leader());
    cluster.client_request(1, 7).expect("leader");
    cluster.send_append_entries(1);
    // Entry 2's requests are lost; nothing else is coming.
    assert_eq!(cluster.drop_where(|m| m.to != 1), 2);
    assert_eq!(cluster.server(1).next_index()[&2], 3);
    cluster.deliver_all(100);
    assert_eq!(cluster.server(2).log().last_index(), 1);
    // The heartbeat at next_index 3 is refused, the leader falls back and
    // resends entry 2.
    cluster.send_append_entries(1);
    cluster.deliver_all(100);
    for id in 1..=3 {
        assert_eq!(cluster.server(id).log().last_index(), 2, "server {id}");
    }
    assert_eq!(cluster.server(1).commit_index(), 2);
    assert!(cluster.violation.is_none(), "{:?}", cluster.violation);
}

#[test]
fn the_seeded_bug_counts_a_follower_as_holding_what_is_still_in_flight() {
    let mut l = pipelining_leader(2).with_bugs(&[Bug::MatchEverythingSent]);
    l.client_request(7).expect("leader");
    l.send_append_entries();
    assert_eq!(l.next_index()[&2], 3);
    // The no-op's success: the peer holds entry 1 only, but the bug takes
    // entry 2, still on its way, for held, and commits it.
    l.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(l.match_index()[&2], 2);
    assert_eq!(l.commit_index(), 2);
    let mut correct = pipelining_leader(2);
    correct.client_request(7).expect("leader");
    correct.send_append_entries();
    correct.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(correct.match_index()[&2], 1);
    assert_eq!(correct.commit_index(), 1);
}
