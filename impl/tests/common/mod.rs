//! What the in-process cluster tests share: fast timeouts, a 3-node cluster,
//! and the durability check that ends a test under faults.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::time::Duration;

use raft_node::config::FileConfig;
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
