//! Parallel writes (Raft dissertation §10.2.1): a leader sends the entries
//! it appends before its own write of them is durable, and counts itself in
//! the commit quorum only up to what its storage holds
//! (`Server::durable_index`, raised by `Step::LogPersisted`). Followers keep
//! "durable before reply", and a leader that steps down makes its whole log
//! durable before it speaks again.

mod common;

use common::cluster::Cluster;
use common::observer::Property;
use common::{
    Msg, TestServer, append_response, elect, install_snapshot, members, request_vote, server,
    snapshot_of,
};
use raft_model::{Body, Bug, Durable, Refused, Role, Step};

fn leader_writing_in_parallel() -> TestServer {
    let mut l = server(1, &members(3)).with_parallel_write(true);
    let effects = elect(&mut l, &[2]);
    assert!(
        effects.persist.log_from.is_none(),
        "the no-op is not held back"
    );
    assert_eq!(effects.parallel_log_from, Some(1));
    l
}

fn log_persisted(server: &mut TestServer, index: u64, term: u64) -> Result<(), Refused> {
    server
        .step::<Msg>(Step::LogPersisted { index, term })
        .map(|_| ())
}

#[test]
fn a_leader_sends_what_it_has_not_yet_written() {
    let mut l = leader_writing_in_parallel();
    let (index, effects) = l.client_request(7).expect("leader");
    assert_eq!(index, 2);
    assert!(
        effects.persist.is_empty(),
        "nothing to write before speaking"
    );
    assert_eq!(effects.parallel_log_from, Some(2));
    let effects = l.send_append_entries();
    assert_eq!(effects.messages.len(), 2, "both followers are sent entry 1");
    assert!(effects.persist.is_empty());
    assert_eq!(l.durable_index(), 0);
    // Its storage holds none of it.
    assert_eq!(Durable::of(&l).log.last_index(), 0);
}

#[test]
fn without_parallel_writes_every_append_is_durable_before_it_is_sent() {
    let mut l = server(1, &members(3));
    let effects = elect(&mut l, &[2]);
    assert_eq!(effects.persist.log_from, Some(1));
    assert_eq!(effects.parallel_log_from, None);
    let (_, effects) = l.client_request(7).expect("leader");
    assert_eq!(effects.persist.log_from, Some(2));
    assert_eq!(effects.parallel_log_from, None);
    assert_eq!(l.durable_index(), 2);
    assert_eq!(
        log_persisted(&mut l, 2, 1),
        Err(Refused::NotEnabled(raft_model::Action::LogPersisted)),
        "nothing is written in parallel"
    );
}

#[test]
fn the_followers_commit_an_entry_the_leader_has_not_written() {
    let mut l = leader_writing_in_parallel();
    let effects = l.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(l.commit_index(), 0, "one follower and an undurable leader");
    assert!(effects.committed.is_empty());
    let effects = l.receive(&append_response(3, 1, 1, true, 1));
    assert_eq!(l.commit_index(), 1, "two followers of three are a quorum");
    assert_eq!(effects.committed.last_index(), 1);
    assert_eq!(l.durable_index(), 0, "still being written");
}

#[test]
fn the_leader_counts_itself_once_its_write_is_durable() {
    let mut l = leader_writing_in_parallel();
    l.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(l.commit_index(), 0);
    let effects = l
        .step::<Msg>(Step::LogPersisted { index: 1, term: 1 })
        .expect("a completed write");
    assert_eq!(l.durable_index(), 1);
    assert_eq!(l.commit_index(), 1, "the leader and one follower");
    assert!(effects.persist.is_empty() && effects.messages.is_empty());
    assert_eq!(effects.committed.last_index(), 1);
}

#[test]
fn a_report_that_tells_nothing_new_is_refused() {
    let mut l = leader_writing_in_parallel();
    l.client_request(7).expect("leader");
    let not_enabled = Err(Refused::NotEnabled(raft_model::Action::LogPersisted));
    assert_eq!(log_persisted(&mut l, 2, 2), not_enabled, "wrong term");
    assert_eq!(log_persisted(&mut l, 3, 1), not_enabled, "past the log");
    assert_eq!(log_persisted(&mut l, 1, 1), Ok(()), "a prefix");
    assert_eq!(l.durable_index(), 1);
    assert_eq!(log_persisted(&mut l, 1, 1), not_enabled, "again");
    assert_eq!(log_persisted(&mut l, 2, 1), Ok(()));
    assert_eq!(l.durable_index(), 2);
}

#[test]
fn a_leader_that_steps_down_writes_its_log_before_it_votes() {
    let mut l = leader_writing_in_parallel();
    l.client_request(7).expect("leader");
    let effects = l.receive(&request_vote(3, 1, 2, 2, 1));
    assert_eq!(l.role(), Role::Follower);
    assert_eq!(
        effects.persist.log_from,
        Some(1),
        "the entries still being written join the step's write"
    );
    assert!(effects.persist.hard_state);
    assert_eq!(l.durable_index(), 2);
    assert!(matches!(
        effects.messages[..],
        [ref m] if matches!(m.body, Body::RequestVoteResponse { vote_granted: true, .. })
    ));
    // The write it started as leader may still report: it is stale now.
    assert!(log_persisted(&mut l, 2, 1).is_err());
}

/// Three servers whose leaders write in parallel. S1 leads term 1; its
/// no-op reaches S2, whose acknowledgement S1 counts; S1 crashes before its
/// own write completes, and S3 leads term 2 with S1's vote (S1 lost the
/// no-op), committing its own no-op at index 1 with S1 once its own write
/// of it is durable.
fn crash_before_the_leader_s_write(bugs: &[Bug]) -> Cluster {
    let mut c = Cluster::new(3, &Property::ALL)
        .with_parallel_write(true)
        .with_bugs(bugs);
    c.timeout(1);
    c.deliver_where(|m| m.from == 1 && m.to == 2);
    c.deliver_where(|m| m.from == 2 && m.to == 1);
    assert!(c.server(1).is_leader());
    c.deliver_where(|m| m.from == 1 && m.to == 2); // the no-op
    c.deliver_where(|m| m.from == 2 && m.to == 1); // S2's acknowledgement
    c.network.clear();
    assert_eq!(c.server(2).log().last_index(), 1);
    c.restart(1);
    assert_eq!(
        c.server(1).log().last_index(),
        0,
        "the crash lost the no-op"
    );
    c.timeout(3); // term 1, where S1 voted for itself
    c.network.clear();
    c.timeout(3); // term 2
    c.deliver_where(|m| m.from == 3 && m.to == 1);
    c.deliver_where(|m| m.from == 1 && m.to == 3);
    assert!(c.server(3).is_leader(), "S1, holding nothing, voted for S3");
    c.deliver_where(|m| m.from == 3 && m.to == 1); // S3's no-op of term 2
    c.deliver_where(|m| m.from == 1 && m.to == 3);
    c.log_persisted(3);
    c
}

#[test]
fn a_crash_loses_only_entries_the_leader_never_counted() {
    let c = crash_before_the_leader_s_write(&[]);
    assert_eq!(c.violation, None);
    assert_eq!(c.server(3).commit_index(), 1, "term 2's no-op committed");
    assert_eq!(
        c.server(2).log().term_at(1),
        Some(1),
        "S2 still holds the lost no-op"
    );
}

#[test]
fn leader_counts_itself_before_durable_breaks_state_machine_safety() {
    let c = crash_before_the_leader_s_write(&[Bug::LeaderCountsItselfBeforeDurable]);
    let violation = c.violation.expect("index 1 committed twice");
    assert_eq!(
        violation.property,
        Property::StateMachineSafety,
        "{violation}"
    );
}

#[test]
fn a_cluster_of_one_commits_once_its_write_is_durable() {
    let mut c = Cluster::new(1, &Property::ALL).with_parallel_write(true);
    c.timeout(1);
    assert!(c.server(1).is_leader());
    assert_eq!(c.server(1).commit_index(), 0);
    c.client_request(1, 5);
    assert_eq!(c.server(1).commit_index(), 0);
    c.log_persisted(1);
    assert_eq!(c.server(1).commit_index(), 2);
    assert_eq!(c.violation, None);
}

/// A deposed leader whose no-op and command are still being written learns
/// of a newer leader from its snapshot: the write joins the step's persist,
/// but the snapshot covers what it wrote up to its index, so only the kept
/// entries after it are written. (Found by the random runs: asking to write
/// from index 1 under a snapshot of index 2 is a write no storage can do.)
#[test]
fn a_snapshot_covers_the_entries_a_deposed_leader_was_still_writing() {
    for (terms, kept) in [(&[1, 1, 1][..], 3), (&[2, 2][..], 2)] {
        let mut l = leader_writing_in_parallel();
        l.client_request(7).expect("leader");
        l.client_request(8).expect("leader");
        let before = Durable::of(&l);
        assert_eq!(before.log.last_index(), 0);
        let snapshot = snapshot_of(&members(3), terms, 2);
        let effects = l.receive(&install_snapshot(2, 1, 2, snapshot));
        assert!(effects.snapshot_installed);
        assert_eq!(l.log().last_index(), kept, "a matching suffix is kept");
        assert_eq!(effects.persist.log_from, Some(3), "past the snapshot only");
        let mut disk = before;
        disk.apply(&l, &effects.persist)
            .expect("a write storage can do");
        assert!(disk.holds(&l), "all it holds is durable");
    }
}
