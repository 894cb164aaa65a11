//! Leadership transfer over real gRPC on loopback (the admin service's
//! TransferLeader, the peers' TimeoutNow): in-process nodes, every wait
//! bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_model::Role;
use raft_node::client::ClientError;
use raft_node::local::LocalCluster;

mod common;
use common::{WAIT, assert_all_readable, cluster};

async fn term_of(cluster: &LocalCluster, id: u64) -> u64 {
    cluster.node(id).unwrap().status().await.unwrap().term
}

/// The operator's move before maintenance: leadership goes to the chosen
/// node while writers keep writing, and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_chosen_node_under_a_write_load() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir).await;
    let old_leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let old_term = term_of(&cluster, old_leader).await;
    let target = cluster
        .ids()
        .into_iter()
        .find(|id| *id != old_leader)
        .unwrap();

    let writers: Vec<_> = (0..3)
        .map(|w| {
            let mut client = cluster.client().unwrap();
            tokio::spawn(async move {
                let mut acknowledged = BTreeMap::new();
                let mut longest_gap = Duration::ZERO;
                let mut last = Instant::now();
                for i in 0..60 {
                    let (key, value) = (format!("w{w}-{i}"), format!("v{i}"));
                    client.put(&key, &value).await.expect("write acknowledged");
                    longest_gap = longest_gap.max(last.elapsed());
                    last = Instant::now();
                    acknowledged.insert(key, value);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (acknowledged, longest_gap)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut admin = cluster.client().unwrap();
    let moved = admin
        .transfer_leader(target)
        .await
        .expect("transfer succeeds");
    assert_eq!(moved.leader_id, target, "the chosen node leads");
    assert!(moved.term > old_term, "a later term: {moved:?}");
    assert_eq!(moved.leader_address, cluster.address(target));
    let status = cluster.node(target).unwrap().status().await.unwrap();
    assert_eq!(status.role, Role::Leader);

    let mut acknowledged = BTreeMap::new();
    let mut longest_gap = Duration::ZERO;
    for writer in writers {
        let (writes, gap) = writer.await.unwrap();
        acknowledged.extend(writes);
        longest_gap = longest_gap.max(gap);
    }
    eprintln!(
        "leadership moved {old_leader} -> {target}; longest gap between a writer's acknowledged writes: {} ms",
        longest_gap.as_millis()
    );
    assert_all_readable(&cluster, &acknowledged).await;
    cluster.shutdown().await;
}

/// A transfer to the leader itself is done already (an operator's retry
/// after a lost answer must not fail); one to a stranger is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_to_the_leader_succeeds_and_to_a_stranger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let term = term_of(&cluster, leader).await;
    let mut admin = cluster.client().unwrap();
    let same = admin.transfer_leader(leader).await.expect("no-op succeeds");
    assert_eq!((same.leader_id, same.term), (leader, term));

    match admin.transfer_leader(9).await {
        Err(ClientError::Rejected(status)) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().contains("not a member"),
                "says why: {}",
                status.message()
            );
        }
        other => panic!("a transfer to a stranger must be refused: {other:?}"),
    }
    cluster.shutdown().await;
}

/// A target that is down never takes over: the leader gives the transfer up
/// after an election timeout, says so, and accepts writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_dead_node_is_aborted_and_writes_resume() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let term = term_of(&cluster, leader).await;
    let target = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.stop_node(target).await;

    let mut admin = cluster.client().unwrap();
    match admin.transfer_leader(target).await {
        Err(ClientError::Rejected(status)) => {
            assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
            assert!(
                status.message().contains("did not take over"),
                "says why: {}",
                status.message()
            );
        }
        other => panic!("a transfer to a dead node must be aborted: {other:?}"),
    }
    let status = cluster.node(leader).unwrap().status().await.unwrap();
    assert_eq!((status.role, status.term), (Role::Leader, term));
    let mut client = cluster.client().unwrap();
    client.put("after", "abort").await.expect("writes resume");
    cluster.shutdown().await;
}
