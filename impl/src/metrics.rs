//! Prometheus metrics: names, and the exporter a `run` node serves over HTTP.
//!
//! Without an installed exporter (tests, the bench, the in-process cluster)
//! the `metrics` macros are no-ops.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

pub const TERM: &str = "raft_term";
/// 0 follower, 1 candidate, 2 leader, 3 pre-candidate.
pub const ROLE: &str = "raft_role";
pub const COMMIT_INDEX: &str = "raft_commit_index";
pub const APPLIED_INDEX: &str = "raft_applied_index";
/// Committed but not yet applied entries.
pub const APPLY_LAG: &str = "raft_apply_lag";
pub const LAST_LOG_INDEX: &str = "raft_last_log_index";
pub const SNAPSHOT_INDEX: &str = "raft_snapshot_index";
/// Client writes accepted by this node as leader; `rate()` gives proposals/s.
pub const PROPOSALS: &str = "raft_proposals_total";
/// Time of one durable write (one append, one fdatasync) per batch.
pub const FSYNC_SECONDS: &str = "raft_fsync_seconds";
pub const SNAPSHOT_BYTES: &str = "raft_snapshot_bytes";
pub const SNAPSHOT_SECONDS: &str = "raft_snapshot_write_seconds";

/// Serves `/metrics` on `address`. Fails clearly if the port is taken.
pub fn install(address: SocketAddr) -> anyhow::Result<()> {
    // Bind first so that "address in use" is reported as such.
    std::net::TcpListener::bind(address)
        .map_err(|err| anyhow::anyhow!("cannot listen for metrics on {address}: {err}"))?;
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(FSYNC_SECONDS.to_owned()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        )?
        .install()
        .map_err(|err| anyhow::anyhow!("cannot start the metrics exporter on {address}: {err}"))?;
    metrics::describe_gauge!(ROLE, "0 follower, 1 candidate, 2 leader, 3 pre-candidate");
    metrics::describe_histogram!(
        FSYNC_SECONDS,
        metrics::Unit::Seconds,
        "one durable commit per batch"
    );
    Ok(())
}
