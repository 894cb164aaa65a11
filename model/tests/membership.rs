//! Membership changes by joint consensus (paper §6, dissertation ch. 4):
//! ChangeConfig appends C_old,new, in force at once; once it commits the
//! leader appends C_new; once C_new commits a leader outside it steps down.
//! A configuration is the latest one in the log (or the snapshot's), so a
//! truncation reverts it, and InstallSnapshot adopts the snapshot's.

mod common;

use common::{
    Msg, TestServer, append_entries, append_response, elect, install_snapshot, members, server,
    snapshot_of,
};
use imbl::OrdSet;
use raft_model::{Config, ConfigChangeError, Entry, Payload, Refused, Role, Step};

fn set(ids: &[u64]) -> OrdSet<u64> {
    ids.iter().copied().collect()
}

/// Server 1 of {1, 2, 3}, leader of term 1 with its no-op committed (2
/// matched it).
fn leader() -> TestServer {
    let mut s = server(1, &members(3));
    elect(&mut s, &[2]);
    s.receive(&append_response(2, 1, 1, true, 1));
    assert_eq!(s.commit_index(), 1);
    s
}

fn change(s: &mut TestServer, ids: &[u64]) -> Result<(), Refused> {
    s.step::<Msg>(Step::ChangeConfig(set(ids))).map(|_| ())
}

fn config_entry(term: u64, config: Config) -> Entry<u32> {
    Entry {
        term,
        payload: Payload::Config(config),
    }
}

#[test]
fn joint_quorums_need_a_majority_of_both_halves() {
    let joint = Config::joint(set(&[1, 2, 3]), set(&[3, 4, 5]));
    assert!(joint.is_quorum(&set(&[1, 2, 3, 4])));
    assert!(!joint.is_quorum(&set(&[1, 2, 4])), "no majority of C_new");
    assert!(!joint.is_quorum(&set(&[3, 4, 5])), "no majority of C_old");
    assert!(joint.is_quorum(&set(&[2, 3, 4])));
    assert_eq!(joint.peers(3).collect::<Vec<_>>(), vec![1, 2, 4, 5]);
    assert!(joint.contains(1) && joint.contains(5) && !joint.contains(6));
}

#[test]
fn a_change_goes_through_the_joint_configuration_to_the_new_one() {
    let mut s = leader();
    change(&mut s, &[1, 2, 4]).unwrap();
    let joint = Config::joint(set(&[1, 2, 3]), set(&[1, 2, 4]));
    assert_eq!(*s.config(), joint, "in force as soon as appended");
    assert_eq!(s.log().last_index(), 2);
    assert_eq!(
        s.next_index().keys().copied().collect::<Vec<_>>(),
        vec![2, 3, 4],
        "the leader replicates to the added server"
    );
    // 2 matches the joint entry: {1, 2} is a majority of both halves.
    s.receive(&append_response(2, 1, 1, true, 2));
    assert_eq!(s.commit_index(), 2);
    assert_eq!(
        *s.config(),
        Config::new([1, 2, 4]),
        "C_new appended once C_old,new committed"
    );
    assert_eq!(s.log().last_index(), 3);
    assert_eq!(
        s.next_index().keys().copied().collect::<Vec<_>>(),
        vec![2, 4],
        "the removed server is no longer replicated to"
    );
    s.receive(&append_response(2, 1, 1, true, 3));
    assert_eq!(s.commit_index(), 3, "{{1, 2}} is a majority of {{1, 2, 4}}");
    assert!(s.is_leader());
}

#[test]
fn a_change_needs_an_entry_of_the_leaders_term_committed() {
    let mut s = server(1, &members(3));
    elect(&mut s, &[2]);
    assert_eq!(
        change(&mut s, &[1, 2]),
        Err(Refused::ConfigChange(ConfigChangeError::TermNotCommitted))
    );
    assert_eq!(s.log().last_index(), 1, "nothing appended");
}

#[test]
fn one_change_at_a_time_and_none_during_a_transfer() {
    let mut s = leader();
    change(&mut s, &[1, 2, 4]).unwrap();
    assert_eq!(
        change(&mut s, &[1, 2]),
        Err(Refused::ConfigChange(ConfigChangeError::Pending))
    );
    assert_eq!(
        s.step::<Msg>(Step::TransferLeadership(2)).map(|_| ()),
        Err(Refused::ConfigChange(ConfigChangeError::Pending)),
        "no transfer while a change is pending"
    );
    let mut s = leader();
    s.step::<Msg>(Step::TransferLeadership(2)).unwrap();
    assert_eq!(
        change(&mut s, &[1, 2]),
        Err(Refused::Transferring { transferee: 2 })
    );
    let mut s = leader();
    assert_eq!(
        change(&mut s, &[1, 2, 3]),
        Err(Refused::ConfigChange(ConfigChangeError::Unchanged))
    );
    assert_eq!(
        change(&mut s, &[]),
        Err(Refused::ConfigChange(ConfigChangeError::NoMembers))
    );
}

#[test]
fn a_leader_removed_by_a_change_leads_until_c_new_commits_then_steps_down() {
    let mut s = leader();
    change(&mut s, &[2, 3]).unwrap();
    s.receive(&append_response(2, 1, 1, true, 2));
    // {1, 2} is a majority of C_old but not of C_new = {2, 3}.
    assert_eq!(s.commit_index(), 1);
    s.receive(&append_response(3, 1, 1, true, 2));
    assert_eq!(s.commit_index(), 2);
    assert_eq!(*s.config(), Config::new([2, 3]));
    assert!(s.is_leader(), "it manages the cluster until C_new commits");
    s.receive(&append_response(2, 1, 1, true, 3));
    assert_eq!(s.commit_index(), 2, "it does not count itself in C_new");
    s.receive(&append_response(3, 1, 1, true, 3));
    assert_eq!(s.commit_index(), 3);
    assert_eq!(s.role(), Role::Follower, "removed: it steps down");
    assert_eq!(s.leader_id(), None);
    assert_eq!(
        s.step::<Msg>(Step::Timeout).map(|_| ()),
        Err(Refused::NotEnabled(raft_model::Action::Timeout)),
        "and, not a voter, never campaigns"
    );
}

#[test]
fn a_new_leader_inheriting_a_committed_joint_configuration_leaves_it() {
    let joint = Config::joint(set(&[1, 2, 3]), set(&[1, 2, 4]));
    let mut s = server(2, &members(3));
    // From leader 1 of term 1: its no-op and the joint entry, both committed.
    s.receive(&append_entries(
        1,
        2,
        1,
        (0, 0),
        vec![
            Entry {
                term: 1,
                payload: Payload::Noop,
            },
            config_entry(1, joint.clone()),
        ],
        2,
    ));
    assert_eq!(*s.config(), joint);
    assert_eq!(s.commit_index(), 2);
    // 2 is elected in term 2 by 3 (C_old) and 4 (C_new).
    s.step::<Msg>(Step::Timeout).unwrap();
    s.receive(&common::vote(3, 2, 2, true));
    assert!(!s.is_leader(), "a majority of C_old only");
    s.receive(&common::vote(4, 2, 2, true));
    assert!(s.is_leader());
    assert_eq!(
        *s.config(),
        Config::new([1, 2, 4]),
        "C_new appended with the no-op"
    );
    assert_eq!(s.log().last_index(), 4);
}

#[test]
fn a_truncated_configuration_entry_takes_its_configuration_with_it() {
    let joint = Config::joint(set(&[1, 2, 3]), set(&[1, 2, 4]));
    let mut s = server(3, &members(3));
    s.receive(&append_entries(
        1,
        3,
        1,
        (0, 0),
        vec![common::entry(1, 1), config_entry(1, joint.clone())],
        0,
    ));
    assert_eq!(*s.config(), joint);
    // The leader of term 2 holds another entry at index 2.
    s.receive(&append_entries(
        2,
        3,
        2,
        (1, 1),
        vec![common::entry(2, 2)],
        0,
    ));
    assert_eq!(*s.config(), members(3), "back to the snapshot's");
}

#[test]
fn install_snapshot_adopts_the_snapshots_configuration() {
    let mut s = server(4, &members(3));
    let snapshot = snapshot_of(&Config::new([1, 2, 4]), &[1, 1, 1], 3);
    s.receive(&install_snapshot(1, 4, 1, snapshot));
    assert_eq!(*s.config(), Config::new([1, 2, 4]));
    assert_eq!(s.commit_index(), 3);
}

#[test]
fn a_snapshot_carries_the_configuration_in_force_at_its_index() {
    let mut s = leader();
    change(&mut s, &[1, 2, 4]).unwrap();
    s.receive(&append_response(2, 1, 1, true, 2));
    // Committed: no-op, joint. C_new at index 3 is not.
    s.step::<Msg>(Step::CompactLog {
        index: 2,
        data: Default::default(),
    })
    .unwrap();
    assert_eq!(
        s.snapshot().meta.config,
        Config::joint(set(&[1, 2, 3]), set(&[1, 2, 4]))
    );
    assert_eq!(
        *s.config(),
        Config::new([1, 2, 4]),
        "C_new is still in the log"
    );
}

#[test]
fn recovery_takes_the_configuration_from_the_log() {
    let mut s = leader();
    change(&mut s, &[1, 2, 4]).unwrap();
    let recovered = TestServer::recover(
        1,
        s.current_term(),
        s.voted_for(),
        s.snapshot().clone(),
        s.log().clone(),
    );
    assert_eq!(recovered.config(), s.config());
}

fn learners(s: &mut TestServer, ids: &[u64]) -> Result<(), Refused> {
    s.step::<Msg>(Step::ChangeLearners(set(ids))).map(|_| ())
}

#[test]
fn a_learner_is_replicated_to_but_counts_in_no_quorum() {
    let mut s = leader();
    learners(&mut s, &[4]).unwrap();
    assert_eq!(*s.config(), Config::new([1, 2, 3]).with_learners(set(&[4])));
    assert_eq!(s.log().last_index(), 2, "one simple configuration entry");
    assert_eq!(
        s.next_index().keys().copied().collect::<Vec<_>>(),
        vec![2, 3, 4],
        "the leader replicates to the learner"
    );
    let heartbeat = s.step::<Msg>(Step::SendAppendEntries).unwrap();
    let to: Vec<u64> = heartbeat.messages.iter().map(|m| m.to).collect();
    assert_eq!(to, vec![2, 3, 4]);
    // The learner holds entry 2: the leader and it are not a majority of
    // the voters {1, 2, 3}.
    s.receive(&append_response(4, 1, 1, true, 2));
    assert_eq!(
        s.commit_index(),
        1,
        "a learner's acknowledgement decides nothing"
    );
    s.receive(&append_response(3, 1, 1, true, 2));
    assert_eq!(s.commit_index(), 2);
    // A learner never campaigns, and is no transfer target.
    let mut l = server(4, &members(3));
    l.receive(&append_entries(
        1,
        4,
        1,
        (0, 0),
        vec![config_entry(
            1,
            Config::new([1, 2, 3]).with_learners(set(&[4])),
        )],
        0,
    ));
    assert!(l.config().is_learner(4));
    assert!(
        l.step::<Msg>(Step::Timeout).is_err(),
        "a learner does not campaign"
    );
    assert!(s.step::<Msg>(Step::TransferLeadership(4)).is_err());
}

#[test]
fn promoting_a_learner_makes_it_a_voter_in_the_same_change() {
    let mut s = leader();
    learners(&mut s, &[4, 5]).unwrap();
    s.receive(&append_response(2, 1, 1, true, 2));
    change(&mut s, &[1, 2, 3, 4]).unwrap();
    let joint = s.config().clone();
    assert_eq!(joint.members, set(&[1, 2, 3, 4]));
    assert_eq!(joint.old, Some(set(&[1, 2, 3])));
    assert_eq!(joint.learners, set(&[5]), "4 left the learners, 5 stayed");
    s.receive(&append_response(2, 1, 1, true, 3));
    s.receive(&append_response(4, 1, 1, true, 3));
    assert_eq!(s.commit_index(), 3);
    assert_eq!(
        *s.config(),
        Config::new([1, 2, 3, 4]).with_learners(set(&[5])),
        "C_new keeps the learners"
    );
}

#[test]
fn learner_changes_follow_the_rules_of_configuration_changes() {
    let mut s = server(1, &members(3));
    elect(&mut s, &[2]);
    assert_eq!(
        learners(&mut s, &[4]),
        Err(Refused::ConfigChange(ConfigChangeError::TermNotCommitted))
    );
    let mut s = leader();
    assert_eq!(
        learners(&mut s, &[3, 4]),
        Err(Refused::ConfigChange(ConfigChangeError::LearnerIsVoter(3)))
    );
    assert_eq!(
        learners(&mut s, &[]),
        Err(Refused::ConfigChange(ConfigChangeError::Unchanged))
    );
    learners(&mut s, &[4]).unwrap();
    assert_eq!(
        learners(&mut s, &[]),
        Err(Refused::ConfigChange(ConfigChangeError::Pending))
    );
    assert_eq!(
        change(&mut s, &[1, 2, 3, 4]),
        Err(Refused::ConfigChange(ConfigChangeError::Pending))
    );
    s.receive(&append_response(2, 1, 1, true, 2));
    learners(&mut s, &[]).unwrap();
    assert!(s.config().learners.is_empty(), "the learner removed");
    assert_eq!(
        s.next_index().keys().copied().collect::<Vec<_>>(),
        vec![2, 3]
    );
    let mut s = leader();
    s.step::<Msg>(Step::TransferLeadership(2)).unwrap();
    assert_eq!(
        learners(&mut s, &[4]),
        Err(Refused::Transferring { transferee: 2 })
    );
}
