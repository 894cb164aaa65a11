//! Server identity between peers (crate::incarnation): every member's
//! incarnation is recorded in the replicated address book, and a server
//! whose data was wiped and re-initialised under an old id — the KRaft and
//! CCF wiped-disk split brain — is refused by its peers until it is removed
//! and added again as the new server it is. In-process nodes on loopback,
//! every wait bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_model::NodeId;
use raft_node::local::LocalCluster;

mod common;
use common::WAIT;

/// The incarnations the cluster's member list records, once it records
/// one for every member.
async fn recorded_incarnations(cluster: &LocalCluster) -> BTreeMap<NodeId, String> {
    let mut admin = cluster.client().unwrap();
    let started = Instant::now();
    loop {
        let list = admin.member_list().await.unwrap();
        let recorded: BTreeMap<NodeId, String> = list
            .members
            .iter()
            .filter(|member| !member.incarnation.is_empty())
            .map(|member| (member.id, member.incarnation.clone()))
            .collect();
        if recorded.len() == list.members.len() {
            return recorded;
        }
        assert!(
            started.elapsed() < WAIT,
            "incarnations never recorded: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn incarnation_of(cluster: &LocalCluster, id: NodeId) -> String {
    cluster
        .node(id)
        .unwrap()
        .status()
        .await
        .unwrap()
        .incarnation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_server_under_an_old_id_is_refused_until_added_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = common::cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    client.put("before", "v").await.unwrap();

    // The starting members' incarnations (their config files hold only
    // addresses) are recorded by the leader as it hears from them.
    let recorded = recorded_incarnations(&cluster).await;
    for id in cluster.ids() {
        assert_eq!(
            recorded[&id],
            incarnation_of(&cluster, id).await,
            "node {id}"
        );
    }

    // A follower's disk is wiped and the operator initialises it again as
    // a starting member: same id, same address, empty log at term 0.
    let wiped = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let config = cluster.config(wiped).unwrap().clone();
    cluster.stop_node(wiped).await;
    std::fs::remove_dir_all(&config.data_dir).unwrap();
    raft_node::server::init_data_dir(&config).unwrap();
    cluster.restart_node(wiped).await.unwrap();
    let new_incarnation = incarnation_of(&cluster, wiped).await;
    assert_ne!(new_incarnation, recorded[&wiped]);

    // Its peers refuse it: writes go on with the other two, and it never
    // receives an entry (without the check it would catch up and count).
    let mut last = 0;
    for i in 0..20 {
        last = client.put(&format!("k{i}"), "v").await.unwrap().index;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = cluster.node(wiped).unwrap().status().await.unwrap();
    assert_eq!(
        (status.last_log_index, status.term),
        (0, 0),
        "the wiped server was taken for the old one"
    );
    let list = client.member_list().await.unwrap();
    assert!(
        list.members
            .iter()
            .any(|m| m.id == wiped && m.incarnation == recorded[&wiped])
    );

    // Removed and added again, it is the new server: its incarnation is
    // recorded (read from its status) and it catches up.
    client.remove_member(wiped).await.unwrap();
    client
        .add_member(wiped, &cluster.address(wiped))
        .await
        .unwrap();
    let list = client.member_list().await.unwrap();
    let member = list.members.iter().find(|m| m.id == wiped).unwrap();
    assert_eq!(member.incarnation, new_incarnation);
    let started = Instant::now();
    while cluster
        .node(wiped)
        .unwrap()
        .status()
        .await
        .unwrap()
        .applied_index
        < last
    {
        assert!(
            started.elapsed() < WAIT,
            "the re-added server never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}
