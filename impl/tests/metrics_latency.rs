//! The leader's latency histograms on `/metrics`: a write's time inside the
//! leader (`raft_proposal_seconds`) and each follower's AppendEntries round
//! trip (`raft_append_round_trip_seconds{peer}`), with buckets. A test binary
//! of its own: the Prometheus recorder is process-wide, so the three nodes of
//! this in-process cluster share it (their series carry `node="1"` alike;
//! only a leader records either histogram).

use common::{WAIT, fast, http_get};
use raft_node::local::LocalCluster;

mod common;

const WRITES: u64 = 20;

/// The value of the first series whose line starts with `prefix`.
fn value(page: &str, prefix: &str) -> Option<f64> {
    page.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_exports_write_and_append_round_trip_histograms() {
    raft_node::metrics::install_recorder("local-test", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 3, |config| {
        fast(config);
        config.metrics = Some("127.0.0.1:0".into());
    })
    .await
    .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    for i in 0..WRITES {
        client.put(&format!("k{i}"), "v").await.unwrap();
    }
    let address = cluster.node(leader).unwrap().metrics_address.unwrap();
    let (status, page) = http_get(address, "/metrics").await;
    assert_eq!(status, 200, "{page}");

    // Every write answered was timed, each with buckets (a histogram, not a
    // summary: it adds up across nodes and gives means).
    let count = value(&page, "raft_proposal_seconds_count{").expect("proposal count");
    assert!(count >= WRITES as f64, "{count} writes timed: {page}");
    let sum = value(&page, "raft_proposal_seconds_sum{").expect("proposal sum");
    assert!(
        sum > 0.0 && sum / count < WAIT.as_secs_f64(),
        "{sum}: {page}"
    );
    assert!(page.contains("raft_proposal_seconds_bucket{"), "{page}");

    // Each follower's round trips, labelled with its id; the leader has none.
    for peer in cluster.ids().into_iter().filter(|id| *id != leader) {
        let series = format!(
            "raft_append_round_trip_seconds_count{{cluster=\"local-test\",node=\"1\",peer=\"{peer}\"}}"
        );
        let trips = value(&page, &series).unwrap_or_else(|| panic!("{series} missing: {page}"));
        assert!(trips > 0.0, "{series} = {trips}");
    }
    // Followers have senders too (this cluster's nodes share the
    // recorder), but send no AppendEntries: none timed to the leader.
    let to_leader = format!(
        "raft_append_round_trip_seconds_count{{cluster=\"local-test\",node=\"1\",peer=\"{leader}\"}}"
    );
    assert_eq!(value(&page, &to_leader).unwrap_or(0.0), 0.0, "{page}");
    for name in ["raft_proposal_seconds", "raft_append_round_trip_seconds"] {
        assert!(page.contains(&format!("# HELP {name} ")), "{name}: {page}");
    }
    cluster.shutdown().await;
}
