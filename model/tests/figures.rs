//! The paper's Figure 7 and Figure 8, replayed through the core's own
//! transition functions with messages delivered between the servers.

mod common;

use std::collections::BTreeMap;

use common::cluster::Cluster;
use common::observer::Property;
use common::{Msg, members, server_with_log, terms_of};
use raft_model::{Body, Bug, NodeId, Term};

// --------------------------------------------------------------- Figure 7

/// Figure 7: the leader's log, and followers (a)–(f) as the paper draws them.
const LEADER: [Term; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FOLLOWERS: [(&str, &[Term]); 6] = [
    ("a", &[1, 1, 1, 4, 4, 5, 5, 6, 6]),
    ("b", &[1, 1, 1, 4]),
    ("c", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
    ("d", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
    ("e", &[1, 1, 1, 4, 4, 4, 4]),
    ("f", &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
];

/// A 7-server cluster: the Figure 7 leader (server 1, in term 7 before it
/// times out) and followers (a)–(f) as servers 2–7, each in the term of its
/// last entry. Server 1 wins the election of term 8, then all messages are
/// delivered in order until the network is quiet. Returns the cluster and,
/// per follower, the number of AppendEntries requests it needed.
fn figure_7(bugs: &[Bug]) -> (Cluster, BTreeMap<&'static str, usize>) {
    let config = members(7);
    let mut servers = vec![server_with_log(1, &config, 7, None, &LEADER)];
    for (position, (_, terms)) in FOLLOWERS.iter().enumerate() {
        let term = terms.last().copied().unwrap_or(0);
        servers.push(server_with_log(
            position as NodeId + 2,
            &config,
            term,
            None,
            terms,
        ));
    }
    let mut cluster = Cluster::of(servers, &Property::ALL).with_bugs(bugs);
    cluster.timeout(1);
    let mut rounds = BTreeMap::new();
    let mut delivered = 0;
    while let Some(message) = cluster.network.first().cloned() {
        assert!(delivered < 500, "Figure 7 does not converge");
        if let Body::AppendEntriesRequest { .. } = message.body {
            *rounds
                .entry(FOLLOWERS[message.to as usize - 2].0)
                .or_insert(0) += 1;
        }
        cluster.deliver(0);
        delivered += 1;
    }
    // One heartbeat tells every follower how far the leader has committed.
    cluster.send_append_entries(1);
    cluster.deliver_all(100);
    (cluster, rounds)
}

#[test]
fn figure_7_every_follower_ends_with_exactly_the_leaders_log() {
    let (cluster, rounds) = figure_7(&[]);
    let leader = cluster.server(1);
    assert!(leader.is_leader());
    assert_eq!(leader.current_term(), 8);
    // The leader's log is Figure 7's plus the no-op of its term 8 (§8).
    let mut expected = LEADER.to_vec();
    expected.push(8);
    assert_eq!(terms_of(leader.log()), expected);
    for (position, (name, _)) in FOLLOWERS.iter().enumerate() {
        let id = position as NodeId + 2;
        let follower = cluster.server(id);
        assert_eq!(follower.log(), leader.log(), "follower ({name})");
        assert_eq!(leader.match_index()[&id], 11, "follower ({name})");
        assert_eq!(leader.next_index()[&id], 12, "follower ({name})");
        assert_eq!(follower.commit_index(), 11, "follower ({name})");
    }
    assert_eq!(leader.commit_index(), 11);
    assert_eq!(cluster.violation, None);
    // Each request/response round moves next_index back past a short log
    // in one step (the follower's last index), or past the follower's whole
    // run of a conflicting term (paper §5.3's optimization): (e) meets term
    // 4 at 7, which the leader holds up to 5 (3 rounds, 4 one entry at a
    // time); (f) meets its run of term 3 from 7, then of term 2 from 4,
    // neither of which the leader holds (3 rounds, where one entry at a time
    // took 8).
    let expected_rounds: BTreeMap<_, _> =
        [("a", 2), ("b", 2), ("c", 1), ("d", 1), ("e", 3), ("f", 3)].into();
    assert_eq!(rounds, expected_rounds);
}

#[test]
fn figure_7_with_keep_conflicting_suffix_leaves_follower_d_with_extra_entries() {
    // The seeded bug overwrites a conflicting entry but keeps what follows
    // it: follower (d) keeps its second term-7 entry after the leader's.
    let (cluster, _) = figure_7(&[Bug::KeepConflictingSuffix]);
    let (leader, d) = (cluster.server(1), cluster.server(5));
    assert_ne!(d.log(), leader.log());
    assert_eq!(
        terms_of(d.log()),
        vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8, 7],
        "a term-7 entry after a term-8 entry: the log is no longer a leader's"
    );
}

// --------------------------------------------------------------- Figure 8

fn from_to(from: NodeId, to: &'static [NodeId]) -> impl Fn(&Msg) -> bool {
    move |m: &Msg| m.from == from && to.contains(&m.to)
}

fn from(from: NodeId) -> impl Fn(&Msg) -> bool {
    move |m: &Msg| m.from == from
}

fn to(to: NodeId) -> impl Fn(&Msg) -> bool {
    move |m: &Msg| m.to == to
}

/// The term of entry `index` on server `id`.
fn term_at(cluster: &Cluster, id: NodeId, index: u64) -> Option<Term> {
    cluster.server(id).log().term_at(index)
}

/// Figure 8 up to its state (c): five servers S1–S5 holding entry 1 of
/// term 1; every leader sends one entry per request.
///
/// (a) S1 leads term 2 and replicates its entry 2 (the term-2 no-op) to S2
///     only. (b) S1 crashes; S5 leads term 3 with the votes of S3 and S4 and
///     appends a different entry 2, replicated nowhere; S5 crashes.
/// (c) S1 restarts and leads term 4 (votes of S2, S3), appends its term-4
///     no-op at 3, sends it to S2, and brings S3 up to entry 2: the term-2
///     entry is now on S1, S2, S3 — a majority.
fn figure_8_up_to_c(bugs: &[Bug]) -> Cluster {
    let config = members(5);
    let servers = (1..=5)
        .map(|id| server_with_log(id, &config, 1, None, &[1]))
        .collect();
    let mut c = Cluster::of(servers, &Property::ALL)
        .with_bugs(bugs)
        .with_max_append_entries(1);

    // (a)
    c.timeout(1); // term 2
    c.deliver_where(from_to(1, &[2, 3]));
    c.drop_where(from(1));
    c.deliver_where(to(1)); // votes of S2 and S3
    assert!(c.server(1).is_leader());
    c.deliver_where(from_to(1, &[2]));
    c.drop_where(from(1));
    c.deliver_where(to(1));
    assert_eq!(term_at(&c, 2, 2), Some(2));

    // (b)
    c.restart(1);
    c.timeout(5); // term 2: S2, S3 already voted in it
    c.drop_where(from(5));
    c.timeout(5); // term 3
    c.deliver_where(from_to(5, &[3, 4]));
    c.drop_where(from(5));
    c.deliver_where(to(5));
    assert!(c.server(5).is_leader());
    assert_eq!(c.server(5).current_term(), 3);
    c.drop_where(from(5)); // its entry 2 (term 3) reaches no one
    c.restart(5);

    // (c)
    c.timeout(1); // term 3: S3 and S4 voted for S5 in it
    c.drop_where(from(1));
    c.timeout(1); // term 4
    c.deliver_where(from_to(1, &[2, 3]));
    c.drop_where(from(1));
    c.deliver_where(to(1));
    assert!(c.server(1).is_leader());
    assert_eq!(c.server(1).current_term(), 4);
    c.deliver_where(from_to(1, &[2, 3])); // S2 takes entry 3; S3 lacks entry 2
    c.drop_where(from_to(1, &[4, 5]));
    c.deliver_where(to(1)); // S1 steps back for S3 and sends it entry 2
    c.deliver_where(from_to(1, &[3]));
    c.deliver_where(to(1)); // S3 matches 2; S1 queues entry 3 for it
    for id in [1, 2, 3] {
        assert_eq!(term_at(&c, id, 2), Some(2), "S{id} holds the term-2 entry");
    }
    c
}

/// (d) S1 crashes before entry 3 reaches S3; S5 restarts, wins term 5 with
/// the votes of S3 and S4 (its last entry, of term 3, is more up to date
/// than their term-2 and term-1 entries) and replicates its log to everyone.
fn figure_8_d(mut c: Cluster) -> Cluster {
    c.restart(1);
    c.drop_where(from(1));
    c.timeout(5); // term 4: everyone but S4 voted in it
    c.drop_where(from(5));
    c.timeout(5); // term 5
    c.deliver_where(from_to(5, &[2, 3, 4]));
    c.drop_where(from(5));
    c.deliver_where(to(5));
    assert!(c.server(5).is_leader(), "S5 wins term 5");
    c.deliver_all(500);
    c.send_append_entries(5);
    c.deliver_all(500);
    c
}

#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    let c = figure_8_up_to_c(&[]);
    let s1 = c.server(1);
    assert_eq!(s1.match_index()[&2], 3);
    assert_eq!(s1.match_index()[&3], 2);
    assert_eq!(
        s1.commit_index(),
        0,
        "entry 2 is of term 2, not S1's term 4"
    );
    assert_eq!(c.violation, None);
}

#[test]
fn figure_8_d_s5_may_still_win_and_overwrite_entry_2_and_that_is_safe() {
    let c = figure_8_d(figure_8_up_to_c(&[]));
    for id in 1..=5 {
        assert_eq!(term_at(&c, id, 2), Some(3), "S{id}: entry 2 is S5's now");
        assert_eq!(c.server(id).commit_index(), 3, "S{id}");
    }
    assert_eq!(c.violation, None, "entry 2 of term 2 was never committed");
}

#[test]
fn figure_8_e_once_a_term_4_entry_is_on_a_majority_it_commits_and_s5_cannot_win() {
    let mut c = figure_8_up_to_c(&[]);
    c.deliver_where(from_to(1, &[3])); // entry 3 (term 4) reaches S3
    c.deliver_where(to(1));
    assert_eq!(
        c.server(1).commit_index(),
        3,
        "entry 3, and with it entry 2, commit"
    );
    c.restart(1);
    c.drop_where(from(1));
    c.restart(5);
    for _ in 0..2 {
        c.timeout(5);
        c.deliver_all(100);
        assert!(
            !c.server(5).is_leader(),
            "S1, S2, S3 hold term 4: only S4 votes"
        );
    }
    assert_eq!(c.violation, None);
}

#[test]
fn figure_8_with_commit_old_term_a_committed_entry_is_lost() {
    // The seeded bug commits entry 2 in state (c) by counting replicas ...
    let c = figure_8_up_to_c(&[Bug::CommitOldTerm]);
    assert_eq!(c.server(1).commit_index(), 2);
    assert_eq!(c.violation, None);
    // ... and then S5 wins term 5 and overwrites it everywhere.
    let c = figure_8_d(c);
    let violation = c.violation.expect("a committed entry was overwritten");
    assert_eq!(
        violation.property,
        Property::StateMachineSafety,
        "{violation}"
    );
}
