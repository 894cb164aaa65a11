//! Smoke test of `raft-lab compare` on our system only (no etcd in CI): the
//! load generator drives a real 3-process cluster through both of its APIs
//! (native, and etcd's with the client compare sends to etcd), and the JSON
//! it writes holds every cell with plausible numbers.

use std::path::PathBuf;
use std::time::Duration;

use raft_lab::compare::load::Api;
use raft_lab::compare::{self, CompareOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_without_etcd_measures_every_cell_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("compare.json");
    let report = compare::run_and_print(CompareOptions {
        ours_binary: PathBuf::from(env!("CARGO_BIN_EXE_raft-lab")),
        etcd_binary: None,
        our_apis: vec![Api::Native, Api::Etcd],
        nodes: 3,
        put_clients: vec![1, 8],
        get_clients: vec![8],
        keys: 200,
        value_bytes: 256,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        rounds: 2,
        clients_per_conn: 4,
        dir: Some(dir.path().to_owned()),
        keep: false,
        json: Some(json.clone()),
        trace: false,
        follow: false,
        snapshot_threshold: None,
        node_log_level: "warn".into(),
    })
    .await
    .unwrap();
    assert!(report.ratios.is_empty(), "no etcd, no ratios");
    assert_eq!(report.api_ratios.len(), 3, "one per workload");
    for ratio in &report.api_ratios {
        assert!(ratio.throughput_etcd_api_over_native > 0.0);
    }

    let text = std::fs::read_to_string(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let results = value["results"].as_array().unwrap();
    let cells: Vec<(String, u64, String)> = results
        .iter()
        .map(|r| {
            (
                r["op"].as_str().unwrap().to_owned(),
                r["clients"].as_u64().unwrap(),
                r["api"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let cell = |op: &str, clients, api: &str| (op.to_owned(), clients, api.to_owned());
    assert_eq!(
        cells,
        vec![
            cell("put", 1, "native"),
            cell("put", 1, "etcd"),
            cell("put", 8, "native"),
            cell("put", 8, "etcd"),
            cell("get", 8, "native"),
            cell("get", 8, "etcd"),
        ]
    );
    for r in results {
        assert_eq!(r["system"], "ours");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        // Two rounds of 0.4 s each.
        assert!((r["seconds"].as_f64().unwrap() - 0.8).abs() < 1e-9, "{r}");
        let (p50, p99, p999) = (
            r["p50_ms"].as_f64().unwrap(),
            r["p99_ms"].as_f64().unwrap(),
            r["p999_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
        // Linux: the nodes' CPU time is accounted from /proc.
        assert!(r["server_cpu_us_per_op"].as_f64().unwrap() >= 0.0, "{r}");
        // The nodes' log syncs are counted from their metrics; every put
        // is written by each of the three nodes, so a put cell makes each
        // node sync at least once.
        let fsyncs = r["fsyncs"].as_u64().unwrap();
        if r["op"] == "put" {
            assert!(fsyncs >= 3, "{r}");
            let per_fsync = r["writes_per_fsync"].as_f64().unwrap();
            assert!(per_fsync > 0.0, "{r}");
        } else {
            assert!(r["writes_per_fsync"].is_null(), "{r}");
        }
    }
    assert!(value["floors"]["fsync_4k_p50_ms"].as_f64().unwrap() > 0.0);
    assert!(value["floors"]["grpc_rtt_p50_ms"].as_f64().unwrap() > 0.0);
    // The run's data directory is removed unless --keep.
    let data_dir = value["data_dir"].as_str().unwrap();
    assert!(!std::path::Path::new(data_dir).exists());
}

/// `--trace`: a traced cluster of ours beside the untraced one, in the same
/// rounds; the ratios and the traces' bytes are reported, and what the
/// traced nodes recorded validates through the model, online (`--follow`)
/// and offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_with_trace_measures_a_traced_cluster_beside_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    let report = compare::run_and_print(CompareOptions {
        ours_binary: PathBuf::from(env!("CARGO_BIN_EXE_raft-lab")),
        etcd_binary: None,
        our_apis: vec![Api::Native],
        nodes: 3,
        put_clients: vec![8],
        get_clients: vec![],
        keys: 100,
        value_bytes: 64,
        duration: Duration::from_millis(400),
        warmup: Duration::from_millis(100),
        rounds: 2,
        clients_per_conn: 4,
        dir: Some(dir.path().to_owned()),
        keep: true,
        json: None,
        trace: true,
        follow: true,
        snapshot_threshold: None,
        node_log_level: "warn".into(),
    })
    .await
    .unwrap();
    let systems: Vec<_> = report.results.iter().map(|r| r.system).collect();
    assert_eq!(
        systems,
        [
            compare::load::System::Ours,
            compare::load::System::OursTraced
        ]
    );
    assert!(report.results.iter().all(|r| r.errors == 0 && r.ops > 0));
    assert_eq!(report.trace_ratios.len(), 1);
    assert!(report.trace_ratios[0].throughput_traced_over_untraced > 0.0);
    let bytes = report.trace_bytes.unwrap();
    assert!(bytes > 0 && report.trace_bytes_per_op.unwrap() > 0.0);
    let traces = PathBuf::from(&report.data_dir)
        .join("ours-traced")
        .join("traces");
    let streams = raft_interop::read_streams(&[traces]).unwrap();
    let validated = raft_interop::validate(streams)
        .unwrap_or_else(|failure| panic!("the traced cluster's run is not valid:\n{failure}"));
    let events = validated.events.values().sum::<usize>();
    assert!(events > 100, "{:?}", validated.events);
    // --follow: the online validator checked the traced cluster's cells as
    // they ran (one per round), caught up with each, and validated events
    // the nodes counted as written.
    assert_eq!(report.follow.len(), 2, "{:?}", report.follow);
    for cell in &report.follow {
        assert_eq!(cell.workload, "put x8");
        assert!(cell.events_written > 0, "{cell:?}");
        assert!(cell.catch_up_ms.is_some(), "{cell:?}");
    }
    let followed = report.follow_events_validated.unwrap();
    let written: u64 = report.follow.iter().map(|c| c.events_written).sum();
    assert!(
        followed >= written && followed as usize <= events,
        "online {followed}, in the cells {written}, offline {events}"
    );
    assert!(
        !PathBuf::from(&report.data_dir)
            .join("ours")
            .join("traces")
            .exists(),
        "the plain cluster records nothing"
    );
}
