//! A follower far behind catches up by an InstallSnapshot whose transfer
//! takes several election timeouts, and nobody campaigns meanwhile (issue
//! 16, "Liveness under partial failure"): not the follower (each chunk from
//! its leader restarts its election timer), and not the leader by
//! CheckQuorum when that follower is its quorum (a peer reading its snapshot
//! puts the check off).
//!
//! The transfer is made slow by the test alone: the other nodes reach the
//! lagging follower through a TCP proxy of this file that paces the bytes
//! they send it (the follower's own messages and every other link go at
//! loopback speed). Nothing in the node is throttled or told it is tested.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_model::{NodeId, Role};
use raft_node::config::FileConfig;
use raft_node::local::LocalCluster;
use raft_node::types::NodeStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(40);
/// The lagging follower: the others reach it through the proxy.
const LAGGING: NodeId = 3;
const ELECTION_MS: [u64; 2] = [400, 800];
/// Leader → follower bytes per second through the proxy (a 64 KiB snapshot
/// chunk every 16 ms).
const RATE: f64 = 4.0 * 1024.0 * 1024.0;
/// Values written while the follower is away: about 12 MB of state, three
/// seconds of transfer at `RATE`, several election timeouts.
const WRITES: usize = 200;
const VALUE_BYTES: usize = 60_000;

/// A TCP proxy in front of the lagging follower that paces the bytes sent
/// to it at `RATE` (per connection) and forwards its answers as they come.
struct Throttle {
    address: String,
    /// The follower's real address, known once the cluster has bound it.
    target: Arc<Mutex<Option<String>>>,
}

impl Throttle {
    async fn start() -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let target: Arc<Mutex<Option<String>>> = Arc::default();
        let to = target.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let Some(address) = to.lock().unwrap().clone() else {
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&address).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let paced = tokio::spawn(async move {
                        // Each read is paced from when it arrives or the last
                        // one's slot ends, whichever is later: idle time earns
                        // no credit. (Paced from the connection's start, one
                        // made while the node restarted, which waits in its
                        // socket's backlog, carried a whole snapshot at once
                        // when the node came back: CI saw 12 MB in 88 ms.)
                        let mut due = tokio::time::Instant::now();
                        let mut buffer = vec![0u8; 16 << 10];
                        while let Ok(read) = in_read.read(&mut buffer).await {
                            if read == 0 || out_write.write_all(&buffer[..read]).await.is_err() {
                                break;
                            }
                            due = due.max(tokio::time::Instant::now())
                                + Duration::from_secs_f64(read as f64 / RATE);
                            tokio::time::sleep_until(due).await;
                        }
                        let _ = out_write.shutdown().await;
                    });
                    let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                    let _ = in_write.shutdown().await;
                    paced.abort();
                });
            }
        });
        Throttle { address, target }
    }

    /// Cluster settings: the nodes other than [`LAGGING`] send to it through
    /// the proxy.
    fn route(&self, config: &mut FileConfig) {
        let Some(members) = config.members.as_mut() else {
            return;
        };
        for member in members.iter_mut().filter(|m| m.id == LAGGING) {
            *self.target.lock().unwrap() = Some(member.address.clone());
            if config.id != Some(LAGGING) {
                member.address = self.address.clone();
            }
        }
    }
}

fn tune(config: &mut FileConfig) {
    config.election_timeout_ms = Some(ELECTION_MS);
    config.heartbeat_ms = Some(50);
    config.snapshot_threshold = Some(u64::MAX);
}

async fn statuses(cluster: &LocalCluster) -> Vec<NodeStatus> {
    let mut all = Vec::new();
    for id in cluster.ids() {
        if let Some(node) = cluster.node(id)
            && let Some(status) = node.status().await
        {
            all.push(status);
        }
    }
    all
}

/// Stops the lagging follower, writes about 12 MB through the leader and
/// compacts its log: the follower can only catch up by a snapshot. Returns
/// (leader, its term, the snapshot's index and size in bytes).
async fn leave_the_follower_behind(cluster: &mut LocalCluster) -> (NodeId, u64, u64, u64) {
    // The lagging node leaves as a follower of the leader's term, so that it
    // comes back in that term: then a campaign of its own would depose the
    // leader (from an older term it would only catch up to the leader's).
    let started = Instant::now();
    loop {
        let leader = cluster.wait_for_leader(WAIT).await.unwrap();
        if leader == LAGGING {
            cluster.restart_node(LAGGING).await.unwrap();
            continue;
        }
        let term = cluster.node(leader).unwrap().status().await.unwrap().term;
        let lagging = cluster.node(LAGGING).unwrap().status().await.unwrap();
        if lagging.term == term && lagging.leader == Some(leader) {
            break;
        }
        assert!(started.elapsed() < WAIT, "{lagging:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop_node(LAGGING).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    let value = "v".repeat(VALUE_BYTES);
    for i in 0..WRITES {
        client.put(&format!("key{i:04}"), &value).await.unwrap();
    }
    let leader_now = cluster.wait_for_leader(WAIT).await.unwrap();
    assert_eq!(leader, leader_now, "the leader changed while writing");
    let report = cluster.node(leader).unwrap().take_snapshot().await.unwrap();
    let term = cluster.node(leader).unwrap().status().await.unwrap().term;
    (leader, term, report.index, report.bytes)
}

/// Restarts the lagging follower and waits until it has installed the
/// snapshot, asserting all along that no node's term moves past `term`, that
/// no node campaigns or asks for pre-votes, and that `leader` stays leader. Returns how long the catch-up took.
async fn catch_up_without_an_election(
    cluster: &mut LocalCluster,
    leader: NodeId,
    term: u64,
    snapshot_index: u64,
) -> Duration {
    cluster.restart_node(LAGGING).await.unwrap();
    let started = Instant::now();
    loop {
        let all = statuses(cluster).await;
        for status in &all {
            assert!(
                status.term == term,
                "node {} is in term {} after {:?}, the leader's term was {term}: an election \
                 happened while the snapshot streamed ({all:?})",
                status.id,
                status.term,
                started.elapsed()
            );
            // With PreVote a fired timer leaves the term alone: the
            // pre-candidacy itself is the sign that the follower's timer
            // ran out while the snapshot streamed.
            assert!(
                !matches!(status.role, Role::Candidate | Role::PreCandidate),
                "node {} became a {:?} after {:?}: its election timer fired while the snapshot \
                 streamed ({all:?})",
                status.id,
                status.role,
                started.elapsed()
            );
        }
        let leader_status = all.iter().find(|s| s.id == leader).unwrap();
        assert_eq!(
            leader_status.role,
            Role::Leader,
            "node {leader} stopped leading after {:?}: {leader_status:?}",
            started.elapsed()
        );
        if let Some(lagging) = all.iter().find(|s| s.id == LAGGING)
            && lagging.snapshot_index >= snapshot_index
            && lagging.applied_index >= snapshot_index
        {
            assert_eq!(lagging.leader, Some(leader), "{lagging:?}");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "node {LAGGING} did not catch up in time: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The follower's election timer: every snapshot chunk from the leader of
/// its term restarts it, so the follower does not campaign while the
/// snapshot streams, and the leader is not deposed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catching_up_by_a_slow_snapshot_does_not_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let throttle = Throttle::start().await;
    let mut cluster = LocalCluster::start(dir.path(), 3, |config| {
        tune(config);
        throttle.route(config);
    })
    .await
    .unwrap();
    let (leader, term, index, bytes) = leave_the_follower_behind(&mut cluster).await;
    let took = catch_up_without_an_election(&mut cluster, leader, term, index).await;
    let timeout = Duration::from_millis(ELECTION_MS[1]);
    eprintln!(
        "snapshot of {bytes} bytes at index {index}: caught up in {took:?}, \
         election timeout {ELECTION_MS:?} ms ({:.1} times its upper end)",
        took.as_secs_f64() / timeout.as_secs_f64()
    );
    assert!(
        took >= timeout * 2,
        "the transfer ({took:?}) was not slow enough to prove anything"
    );
    // And the data is there.
    let status = cluster.node(LAGGING).unwrap().status().await.unwrap();
    assert!(status.applied_index >= index, "{status:?}");
    cluster.shutdown().await;
}

/// The leader's CheckQuorum: its only reachable follower is the one reading
/// the snapshot, which answers only once the whole snapshot is installed.
/// The leader keeps its leadership meanwhile (the follower is reading, so
/// it is reachable), and the follower's answer then makes its quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_quorum_is_reading_its_snapshot_keeps_leading() {
    let dir = tempfile::tempdir().unwrap();
    let throttle = Throttle::start().await;
    let mut cluster = LocalCluster::start(dir.path(), 3, |config| {
        tune(config);
        throttle.route(config);
    })
    .await
    .unwrap();
    let (leader, term, index, bytes) = leave_the_follower_behind(&mut cluster).await;
    let other = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != LAGGING)
        .unwrap();
    // The other follower goes away as the lagging one comes back: the
    // leader's quorum is the lagging follower, whose answer takes seconds.
    cluster.stop_node(other).await;
    let took = catch_up_without_an_election(&mut cluster, leader, term, index).await;
    eprintln!(
        "snapshot of {bytes} bytes at index {index}, node {other} stopped: caught up in {took:?}, \
         election timeout {ELECTION_MS:?} ms"
    );
    assert!(
        took >= Duration::from_millis(ELECTION_MS[1]) * 2,
        "{took:?}"
    );
    // The quorum is back: a write commits with the two nodes.
    let mut client = cluster.client().unwrap();
    client.put("after", "snapshot").await.unwrap();
    cluster.shutdown().await;
}
