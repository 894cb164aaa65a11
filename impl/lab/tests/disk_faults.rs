//! Disk faults under a real cluster (three `raft-lab node` processes, each
//! with its data directory on the power-loss file system, `raft_lab::powerfs`):
//!
//! - an fsync failing with EIO stops the node, which says why in its log and
//!   never retries; after a power cut (the failed data really gone) and a
//!   restart it rejoins, and nothing acknowledged is lost;
//! - a full disk: client writes are refused with a clear error, reads are
//!   still served, nothing acknowledged is lost, writes resume once space
//!   is freed;
//! - a disk taking seconds per fsync: writes still complete, no node stops.
//!
//! They need FUSE (/dev/fuse and root); where it is missing each test says
//! why and checks nothing (`RAFT_LAB_REQUIRE_FUSE=1` makes that a failure).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft_lab::chaos::faults;
use raft_lab::chaos::nodes::{NodeSettings, Processes};
use raft_lab::powerfs::{self, DiskFaults};
use raft_model::NodeId;
use raft_node::client::{ClientError, KvClient};
use raft_node::config::Member;
use raft_node::proto::etcdserverpb as etcd_pb;
use raft_node::proto::etcdserverpb::kv_client::KvClient as EtcdKv;

/// The clusters share the machine's two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn fuse_or_skip(test: &str) -> bool {
    match powerfs::available() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("RAFT_LAB_REQUIRE_FUSE").is_none(),
                "RAFT_LAB_REQUIRE_FUSE is set, but FUSE cannot be mounted: {why}"
            );
            eprintln!("SKIPPED {test}: disk faults are injected through FUSE: {why}");
            false
        }
    }
}

struct Cluster {
    processes: Processes,
    addresses: Vec<String>,
    dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<NodeId> = vec![1, 2, 3];
    let listeners: BTreeMap<NodeId, _> = ids
        .iter()
        .copied()
        .zip(raft_node::launch::loopback_listeners(ids.len()).unwrap())
        .collect();
    let members: Vec<Member> = listeners
        .iter()
        .map(|(id, l)| Member {
            id: *id,
            address: l.local_addr().unwrap().to_string(),
        })
        .collect();
    let addresses: Vec<String> = members.iter().map(|m| m.address.clone()).collect();
    let settings = NodeSettings {
        cluster_id: "disk-faults".into(),
        election_timeout_ms: [150, 300],
        heartbeat_ms: 30,
        snapshot_threshold: 1000,
        trace: false,
        check_quorum: true,
        pre_vote: true,
        seeded_bug: None,
        log_level: "info".into(),
        powerfs: true,
    };
    let by_node = ids.iter().map(|id| (*id, members.clone())).collect();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_raft-lab"));
    let mut processes = Processes::new(&bin, dir.path(), settings, &listeners, by_node).unwrap();
    for id in ids {
        processes.start(id).unwrap();
    }
    processes.wait_ready(Duration::from_secs(30)).await.unwrap();
    Cluster {
        processes,
        addresses,
        dir,
    }
}

impl Cluster {
    fn client(&self) -> KvClient {
        let mut client = KvClient::new(self.addresses.clone()).unwrap();
        client.op_timeout = Duration::from_secs(20);
        client
    }

    async fn leader(&self) -> NodeId {
        let started = Instant::now();
        loop {
            if let Some(leader) = faults::find_leader(&self.processes).await {
                return leader;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no leader");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self, id: NodeId) -> String {
        std::fs::read_to_string(self.processes.log_file(id)).unwrap_or_default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_failed_fsync_stops_the_node_which_says_so_and_loses_nothing_acknowledged() {
    if !fuse_or_skip("a_failed_fsync_stops_the_node") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let mut c = cluster().await;
        let mut client = c.client();
        client.put("k", "before").await.unwrap();
        let leader = c.leader().await;
        c.processes.set_disk_faults(
            leader,
            DiskFaults {
                fsync_eio: true,
                ..DiskFaults::default()
            },
        );
        // The next batch's fdatasync fails at the leader; the write is
        // then done by the next leader (same sequence number), or times out.
        let acknowledged = client.put("k", "during").await.is_ok();
        let started = Instant::now();
        while c.processes.unexpected_exits.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the leader kept running after its fsync failed"
            );
            c.processes.reap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(c.processes.unexpected_exits[0].0, leader);
        let log = c.log(leader);
        assert!(
            log.contains("fsync of") && log.contains("stops instead of retrying"),
            "the node's log does not say why it stopped:\n{log}"
        );
        // The other two go on.
        client.put("k", "after").await.unwrap();
        // The failed node's disk loses what it failed to sync, for real;
        // then it restarts, healthy, and catches up.
        c.processes.set_disk_faults(leader, DiskFaults::default());
        c.processes.power_cut(&[leader], 1).unwrap();
        c.processes.start(leader).unwrap();
        c.processes
            .wait_ready(Duration::from_secs(30))
            .await
            .unwrap();
        let value = client.get("k").await.unwrap().value;
        assert_eq!(value.as_deref(), Some("after"));
        let mut direct = KvClient::new(vec![c.processes.address(leader).to_string()]).unwrap();
        let started = Instant::now();
        loop {
            let status = direct
                .status_of(&c.processes.address(leader).to_string())
                .await
                .unwrap();
            let reference = client
                .status_of(&c.addresses[0])
                .await
                .map(|s| s.commit_index)
                .unwrap_or(u64::MAX);
            if status.applied_index >= reference.min(3) && status.applied_index >= 3 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("the write during the failure was acknowledged: {acknowledged}");
        drop(c.dir);
    });
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_keeps_serving_reads() {
    if !fuse_or_skip("a_full_disk_refuses_writes") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let c = cluster().await;
        let mut client = c.client();
        client.put("k", "kept").await.unwrap();
        // Every disk is nearly full: 1 MiB left, under the node's 64 MiB
        // reserve (min_free_bytes).
        for id in c.processes.ids() {
            let disk = c.processes.disk(id).unwrap();
            disk.set_faults(DiskFaults {
                capacity: Some(disk.used_bytes() + (1 << 20)),
                ..DiskFaults::default()
            });
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let refused = client.put("k", "refused").await;
        match refused {
            Err(ClientError::Rejected(status)) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                assert!(status.message().contains("the disk is full"), "{status:?}");
            }
            other => panic!("a write on a full disk was not refused: {other:?}"),
        }
        // The etcd API refuses it the same way, on any member.
        for address in &c.addresses {
            let mut etcd = EtcdKv::connect(format!("http://{address}")).await.unwrap();
            let refused = etcd
                .put(etcd_pb::PutRequest {
                    key: b"k".to_vec(),
                    value: b"refused".to_vec(),
                    ..Default::default()
                })
                .await
                .expect_err("an etcd put on a full disk was not refused");
            assert_eq!(
                refused.code(),
                tonic::Code::ResourceExhausted,
                "{refused:?}"
            );
            assert!(
                refused.message().contains("the disk is full"),
                "{refused:?}"
            );
        }
        // Reads go on, and what was acknowledged is there.
        let value = client.get("k").await.unwrap().value;
        assert_eq!(value.as_deref(), Some("kept"));
        let mut processes = c.processes;
        processes.reap();
        assert!(
            processes.unexpected_exits.is_empty(),
            "{:?}",
            processes.unexpected_exits
        );
        // Space freed: writes resume.
        for id in processes.ids() {
            processes.set_disk_faults(id, DiskFaults::default());
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        client.put("k", "later").await.unwrap();
        let value = client.get("k").await.unwrap().value;
        assert_eq!(value.as_deref(), Some("later"));
        drop(processes);
        drop(c.dir);
    });
}

#[test]
fn a_disk_taking_seconds_per_fsync_slows_writes_but_loses_nothing() {
    if !fuse_or_skip("a_disk_taking_seconds_per_fsync") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let mut c = cluster().await;
        let mut client = c.client();
        client.put("k", "0").await.unwrap();
        let leader = c.leader().await;
        c.processes.set_disk_faults(
            leader,
            DiskFaults {
                fsync_delay: Duration::from_millis(1500),
                ..DiskFaults::default()
            },
        );
        for i in 1..=5 {
            client.put("k", &i.to_string()).await.unwrap();
        }
        let value = client.get("k").await.unwrap().value;
        assert_eq!(value.as_deref(), Some("5"));
        c.processes.reap();
        assert!(
            c.processes.unexpected_exits.is_empty(),
            "{:?}",
            c.processes.unexpected_exits
        );
        c.processes.set_disk_faults(leader, DiskFaults::default());
        client.put("k", "6").await.unwrap();
        assert_eq!(client.get("k").await.unwrap().value.as_deref(), Some("6"));
        drop(c.dir);
    });
}
