//! What the in-process cluster tests share: fast timeouts, a 3-node cluster,
//! and the durability check that ends a test under faults.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
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
