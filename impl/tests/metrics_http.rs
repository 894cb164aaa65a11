//! `/metrics` and `/health` on a node's metrics port with the Prometheus
//! recorder installed, as `raft-node run` does (a test binary of its own: the
//! recorder is process-wide).

use std::time::{Duration, Instant};

use common::http_get as get;
use raft_node::local::LocalCluster;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_port_serves_prometheus_metrics_and_health() {
    raft_node::metrics::install_recorder("local-test", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 1, |config| {
        config.election_timeout_ms = Some([150, 300]);
        config.heartbeat_ms = Some(30);
        config.metrics = Some("127.0.0.1:0".into());
    })
    .await
    .unwrap();
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    let address = cluster.node(1).unwrap().metrics_address.unwrap();
    let started = Instant::now();
    loop {
        let (status, answer) = get(address, "/health").await;
        if status == 200 {
            assert!(answer.contains(r#""status":"SERVING""#), "{answer}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, answer) = get(address, "/metrics").await;
    assert_eq!(status, 200, "{answer}");
    // Each series labelled with its cluster and node (LocalCluster's
    // cluster id is "local-test"), each metric with a HELP line.
    for metric in [
        r#"raft_term{cluster="local-test",node="1"} 1"#,
        r#"raft_role{cluster="local-test",node="1"} 2"#,
        r#"raft_ready{cluster="local-test",node="1"} 1"#,
        r#"raft_voters{cluster="local-test",node="1"} 1"#,
        r#"raft_learners{cluster="local-test",node="1"} 0"#,
    ] {
        assert!(answer.contains(metric), "{metric} missing: {answer}");
    }
    for line in answer.lines().filter(|line| line.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(
            answer.contains(&format!("# HELP {name} ")),
            "no HELP line for {name}: {answer}"
        );
    }
    cluster.shutdown().await;
}
