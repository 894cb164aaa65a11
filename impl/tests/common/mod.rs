//! What the cluster tests share: fast timeouts, a 3-node in-process
//! cluster, the durability check that ends a test under faults, a signal to
//! a process a test started, a GET on a node's metrics port and etcd's
//! Status of a node.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use raft_node::config::{FileConfig, Member};
use raft_node::launch::Launch;
use raft_node::local::LocalCluster;

/// The bound on every wait of these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Short timeouts keep the suite fast; snapshots only when a test asks.
pub fn fast(config: &mut FileConfig) {
    config.election_timeout_ms = Some([150, 300]);
    config.heartbeat_ms = Some(30);
    config.snapshot_threshold = Some(u64::MAX);
}

/// A 3-node cluster with [`fast`] settings in `dir`.
pub async fn cluster(dir: &tempfile::TempDir) -> LocalCluster {
    LocalCluster::start(dir.path(), 3, fast)
        .await
        .expect("cluster starts")
}

/// Every acknowledged write reads back (linearizably) as acknowledged.
pub async fn assert_all_readable(cluster: &LocalCluster, acknowledged: &BTreeMap<String, String>) {
    let mut reader = cluster.client().unwrap();
    for (key, value) in acknowledged {
        assert_eq!(
            reader.get(key).await.unwrap().value.as_ref(),
            Some(value),
            "acknowledged write {key} lost"
        );
    }
}

/// `count` listeners bound on loopback at ports the OS chose (the caller
/// holds them until the test ends, so no other process takes the ports) and
/// members 1..=count at their addresses.
pub fn loopback_members(count: usize) -> (Vec<Arc<TcpListener>>, Vec<Member>) {
    let listeners = raft_node::launch::loopback_listeners(count).expect("loopback listeners");
    let members = (1..)
        .zip(&listeners)
        .map(|(id, listener)| Member {
            id,
            address: listener.local_addr().unwrap().to_string(),
        })
        .collect();
    (listeners, members)
}

/// The launcher of a `raft-node run` process for node `id` of `members` in
/// cluster `cluster_id`, with [`fast`]'s timers and its data, config and
/// log under `dir`.
pub fn launcher(dir: &std::path::Path, cluster_id: &str, id: u64, members: &[Member]) -> Launch {
    let config = FileConfig {
        cluster_id: Some(cluster_id.into()),
        id: Some(id),
        data_dir: Some(dir.join(format!("node-{id}"))),
        election_timeout_ms: Some([150, 300]),
        heartbeat_ms: Some(30),
        members: Some(members.to_vec()),
        ..FileConfig::default()
    };
    Launch::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_raft-node")),
        "run",
        config,
        &dir.join(format!("node-{id}.toml")),
    )
    .log_to(&dir.join(format!("node-{id}.log")))
    .log_level("warn")
}

/// Sends signal `name` to process `pid` (a process this test started).
pub fn signal(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// `GET path` on an HTTP endpoint (a node's metrics port): the status code
/// and the whole answer, headers included.
pub async fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (status, answer)
}

/// etcd's Maintenance Status of the node at `address`.
pub async fn etcd_status(address: &str) -> raft_node::proto::etcdserverpb::StatusResponse {
    use raft_node::proto::etcdserverpb::maintenance_client::MaintenanceClient;
    let mut maintenance = MaintenanceClient::connect(format!("http://{address}"))
        .await
        .expect("connect");
    maintenance
        .status(raft_node::proto::etcdserverpb::StatusRequest {})
        .await
        .expect("etcd Status")
        .into_inner()
}
