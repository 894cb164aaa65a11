//! Log compaction and snapshots (paper §7, Figure 13): CompactLog,
//! HandleInstallSnapshotRequest, HandleInstallSnapshotResponse, and
//! AppendEntries meeting a compacted log, on hand-built states.

mod common;

use common::cluster::{Disk, check_disk};
use common::{
    TestServer, append_entries, append_request, append_response, append_result, elect, entry,
    install_snapshot, members, only_message, server_with_log, snapshot_of, snapshot_response,
    terms_of,
};
use raft_model::{Body, CompactError, Config};

fn three() -> Config {
    members(3)
}

/// Server 1 as leader of term 2 over [1, 1, 1], its no-op at 4, with
/// everything up to `committed` known committed (peer 2 matches it).
fn leader_with_commit(committed: u64) -> TestServer {
    let mut l = server_with_log(1, &three(), 1, None, &[1, 1, 1]);
    elect(&mut l, &[2]);
    l.receive(&append_response(2, 1, 2, true, committed));
    l
}

/// The image of the first `index` entries of the leader above.
fn image(index: u64) -> raft_model::Snapshot<common::Image> {
    snapshot_of(&three(), &[1, 1, 1, 2], index)
}

// ----------------------------------------------------------- CompactLog

#[test]
fn only_committed_entries_are_compacted() {
    let mut l = leader_with_commit(0);
    let before = l.clone();
    assert_eq!(
        l.compact_log(2, image(2).data),
        Err(CompactError::NotCommitted {
            index: 2,
            commit_index: 0
        })
    );
    assert_eq!(l, before);
}

#[test]
fn compacting_an_already_compacted_index_is_refused() {
    let mut l = leader_with_commit(4);
    l.compact_log(3, image(3).data).expect("committed");
    let before = l.clone();
    for index in [0, 2, 3] {
        assert_eq!(
            l.compact_log(index, image(index.max(1)).data),
            Err(CompactError::AlreadyCompacted {
                index,
                snapshot_index: 3
            })
        );
    }
    assert_eq!(l, before);
}

#[test]
fn compaction_replaces_the_prefix_and_keeps_the_rest() {
    let mut l = leader_with_commit(4);
    l.client_request(9).expect("leader"); // entry 5, not committed
    let effects = l.compact_log(3, image(3).data).expect("committed");
    assert_eq!(l.snapshot(), &image(3));
    assert_eq!((l.log().snapshot_index, l.log().snapshot_term), (3, 1));
    assert_eq!(terms_of(l.log()), vec![2, 2], "entries 4 and 5 stay");
    assert_eq!(
        l.commit_index(),
        4,
        "compaction does not change what is committed"
    );
    assert!(effects.persist.snapshot);
    assert!(!effects.persist.hard_state && effects.persist.log_from.is_none());
    assert!(effects.messages.is_empty() && effects.commit_index.is_none());
    assert!(
        !effects.snapshot_installed,
        "the state machine already is the image"
    );
}

#[test]
fn a_leader_sends_its_snapshot_to_a_peer_that_needs_compacted_entries() {
    let mut l = leader_with_commit(4);
    l.compact_log(3, image(3).data).expect("committed");
    // Peer 3 has not answered yet: next_index 4, prev entry 3 is compacted
    // but its term is known, so entries still go.
    let to_3 = |effects: &common::TestEffects| {
        effects
            .messages
            .iter()
            .find(|m| m.to == 3)
            .cloned()
            .expect("a message to 3")
    };
    assert_eq!(append_request(&to_3(&l.send_append_entries())).0, 3);
    // Peer 3 turns out to hold nothing: entry 1 is gone, so the snapshot goes.
    let effects = l.receive(&append_response(3, 1, 2, false, 0));
    let message = only_message(&effects);
    assert_eq!(
        message.body,
        Body::InstallSnapshotRequest { snapshot: image(3) }
    );
    assert_eq!(l.next_index()[&3], 1);
}

// ----------------------------------------------- HandleInstallSnapshotRequest

#[test]
fn a_newer_snapshot_matching_the_log_keeps_the_entries_after_it() {
    let mut f = server_with_log(2, &three(), 2, None, &[1, 1, 1, 2, 2]);
    let effects = f.receive(&install_snapshot(1, 2, 2, image(3)));
    assert_eq!(f.snapshot(), &image(3));
    assert_eq!((f.log().snapshot_index, f.log().snapshot_term), (3, 1));
    assert_eq!(
        terms_of(f.log()),
        vec![2, 2],
        "entries 4 and 5 follow the snapshot"
    );
    assert_eq!(f.commit_index(), 3);
    assert_eq!(effects.commit_index, Some(3));
    assert!(effects.persist.snapshot && effects.snapshot_installed);
    assert_eq!(
        effects.persist.log_from, None,
        "the stored suffix stays valid"
    );
    assert_eq!(f.leader_id(), Some(1));
    assert_eq!(
        only_message(&effects).body,
        Body::InstallSnapshotResponse { match_index: 3 }
    );
}

#[test]
fn a_newer_snapshot_conflicting_with_the_log_replaces_all_of_it() {
    // Entry 3 is of term 2 here, of term 1 in the snapshot.
    let mut f = server_with_log(2, &three(), 2, None, &[1, 1, 2, 2]);
    let mut disk = Disk::of(&f);
    let effects = f.receive(&install_snapshot(1, 2, 2, image(3)));
    assert_eq!((f.log().snapshot_index, f.log().last_index()), (3, 3));
    assert!(
        f.log().entries.is_empty(),
        "entry 4 followed a conflicting entry"
    );
    // The driver must learn that the stored entry 4 is gone too.
    assert_eq!(effects.persist.log_from, Some(4));
    disk.apply(&f, &effects.persist)
        .expect("well-formed effects");
    check_disk(&disk, &f).expect("the disk holds exactly the new persistent state");
}

#[test]
fn a_newer_snapshot_replaces_a_shorter_log() {
    let mut f = server_with_log(2, &three(), 2, None, &[1]);
    let effects = f.receive(&install_snapshot(1, 2, 2, image(3)));
    assert_eq!(
        (
            f.log().snapshot_index,
            f.log().last_index(),
            f.commit_index()
        ),
        (3, 3, 3)
    );
    let mut disk = Disk::of(&server_with_log(2, &three(), 2, None, &[1]));
    disk.apply(&f, &effects.persist)
        .expect("well-formed effects");
    check_disk(&disk, &f).expect("durable");
}

#[test]
fn a_snapshot_covering_only_committed_entries_changes_nothing() {
    let mut f = server_with_log(2, &three(), 2, None, &[1, 1, 1, 2]);
    f.receive(&append_entries(1, 2, 2, (4, 2), vec![], 4)); // commit 4
    let before = f.clone();
    let effects = f.receive(&install_snapshot(1, 2, 2, image(3)));
    assert_eq!(f, before, "log, snapshot and commit index are kept");
    assert!(effects.persist.is_empty() && !effects.snapshot_installed);
    assert_eq!(
        only_message(&effects).body,
        Body::InstallSnapshotResponse { match_index: 3 },
        "the leader still learns the follower holds 3"
    );
}

#[test]
fn a_snapshot_ending_exactly_at_the_commit_index_changes_nothing() {
    let mut f = server_with_log(2, &three(), 2, None, &[1, 1, 1, 2]);
    f.receive(&append_entries(1, 2, 2, (4, 2), vec![], 3)); // commit 3
    let before = f.clone();
    let effects = f.receive(&install_snapshot(1, 2, 2, image(3)));
    assert_eq!(
        f, before,
        "entries up to 3 are committed: nothing to install"
    );
    assert!(effects.persist.is_empty() && !effects.snapshot_installed);
}

#[test]
fn a_snapshot_from_a_stale_term_is_refused() {
    let mut f = server_with_log(2, &three(), 5, None, &[1]);
    let before = f.clone();
    let effects = f.receive(&install_snapshot(1, 2, 4, image(3)));
    let reply = only_message(&effects);
    assert_eq!(
        (reply.term, &reply.body),
        (5, &Body::InstallSnapshotResponse { match_index: 0 })
    );
    assert_eq!(f, before);
}

// ---------------------------------------------- HandleInstallSnapshotResponse

#[test]
fn the_answer_to_a_snapshot_moves_the_peer_past_it_and_replication_resumes() {
    let mut l = leader_with_commit(4);
    l.compact_log(3, image(3).data).expect("committed");
    l.receive(&append_response(3, 1, 2, false, 0)); // snapshot sent to 3
    let effects = l.receive(&snapshot_response(3, 1, 2, 3));
    assert_eq!((l.match_index()[&3], l.next_index()[&3]), (3, 4));
    let message = only_message(&effects);
    assert_eq!(
        append_request(message),
        (3, 1, vec![2], 4),
        "entry 4 follows at once"
    );
}

#[test]
fn a_snapshot_answer_claiming_more_than_the_leader_has_is_ignored() {
    let mut l = leader_with_commit(4);
    l.receive(&append_response(3, 1, 2, false, 0));
    let before = l.clone();
    for claim in [5, u64::MAX] {
        assert!(l.receive(&snapshot_response(3, 1, 2, claim)).is_empty());
        assert_eq!(l, before);
    }
    assert!(
        l.receive(&snapshot_response(3, 1, 1, 3)).is_empty(),
        "older term"
    );
    assert_eq!(l, before);
}

// ------------------------------------------ AppendEntries and a compacted log

#[test]
fn entries_below_the_followers_snapshot_are_skipped_not_rechecked() {
    let mut f = server_with_log(2, &three(), 2, None, &[1, 1, 1]);
    f.receive(&append_entries(1, 2, 2, (3, 1), vec![], 3));
    f.compact_log(3, image(3).data).expect("committed");
    // The leader resends 2..=4 after entry 1: 2 and 3 are in the snapshot.
    let effects = f.receive(&append_entries(
        1,
        2,
        2,
        (1, 1),
        vec![entry(2, 1), entry(3, 1), entry(4, 2)],
        4,
    ));
    assert_eq!(append_result(only_message(&effects)), (true, 4));
    assert_eq!((f.log().snapshot_index, terms_of(f.log())), (3, vec![2]));
    assert_eq!(f.commit_index(), 4);
    // A request entirely inside the snapshot is answered with success.
    let effects = f.receive(&append_entries(1, 2, 2, (0, 0), vec![entry(1, 1)], 4));
    assert_eq!(append_result(only_message(&effects)), (true, 1));
    assert!(effects.persist.is_empty());
}
