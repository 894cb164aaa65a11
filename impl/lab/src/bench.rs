//! `raft-lab bench`: put throughput and latency at several client
//! concurrencies on a 3-node loopback cluster, and the time and size of a
//! snapshot of many keys.
//!
//! The cluster runs in this process (real gRPC sockets, real fsyncs, one
//! data directory per node in a temporary directory) so the bench needs no
//! ports or processes set up by hand.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use raft_node::local::LocalCluster;

pub struct BenchOptions {
    pub nodes: u64,
    /// Puts per concurrency level.
    pub requests: usize,
    pub concurrency: Vec<usize>,
    pub value_bytes: usize,
    /// Keys loaded before measuring the snapshot (0: skip).
    pub snapshot_keys: usize,
    /// Where the data directories go (a fresh subdirectory is created).
    pub dir: Option<PathBuf>,
    /// Record core-event traces during the latency runs (to measure their
    /// overhead), then validate them through the model.
    pub trace: bool,
    /// The trace's form.
    pub trace_format: raft_interop::Format,
    /// The nodes' `max_inflight` (pipelined replication; `None`: the
    /// node's default).
    pub max_inflight: Option<usize>,
}

pub struct LatencyReport {
    pub clients: usize,
    pub requests: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl LatencyReport {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs `requests` puts spread over `clients` concurrent clients.
pub async fn measure_puts(
    cluster: &LocalCluster,
    clients: usize,
    requests: usize,
    value_bytes: usize,
    prefix: &str,
) -> anyhow::Result<LatencyReport> {
    let clients = clients.max(1);
    let per_client = requests.div_ceil(clients);
    let value = "x".repeat(value_bytes);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = cluster.client()?;
        let value = value.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let key = format!("{prefix}-{c}-{i}");
                let sent = Instant::now();
                client.put(&key, &value).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(per_client * clients);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(LatencyReport {
        clients,
        requests: latencies.len(),
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    })
}

pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let base = options.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("raft-bench-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    // Compaction only when the bench asks for it, so it does not skew latencies.
    let max_inflight = options.max_inflight;
    let tune = |config: &mut raft_node::config::FileConfig| {
        config.snapshot_threshold = Some(u64::MAX);
        config.max_inflight = max_inflight.or(config.max_inflight);
    };
    let traces = dir.join("traces");
    let traced = |config: &mut raft_node::config::FileConfig| {
        tune(config);
        config.trace_dir = Some(traces.clone());
        config.trace_format = Some(options.trace_format.to_string());
    };
    let cluster = if options.trace {
        LocalCluster::start(&dir.join("latency"), options.nodes, traced).await?
    } else {
        LocalCluster::start(&dir.join("latency"), options.nodes, tune).await?
    };
    let mut result = latency(&cluster, &options).await.map(|_| ());
    let puts = result_puts(&options);
    cluster.shutdown().await;
    if result.is_ok() && options.trace {
        result = validate_traces(&traces, puts);
    }
    if result.is_ok() && options.snapshot_keys > 0 {
        // A fresh cluster, so the snapshot holds exactly the keys loaded.
        let cluster = LocalCluster::start(&dir.join("snapshot"), options.nodes, tune).await?;
        result = snapshot(&cluster, &options).await;
        cluster.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The puts the latency runs make (the warm-up's and every level's).
fn result_puts(options: &BenchOptions) -> usize {
    200 + options
        .concurrency
        .iter()
        .map(|&c| options.requests.div_ceil(c.max(1)) * c.max(1))
        .sum::<usize>()
}

/// Replays the recorded traces through the model and prints what it cost.
/// The bytes of the files directly in `dir` (the traces of a run).
pub(crate) fn dir_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum())
}

fn validate_traces(traces: &std::path::Path, puts: usize) -> anyhow::Result<()> {
    let bytes = dir_bytes(traces)?;
    let started = Instant::now();
    let streams = raft_interop::read_streams(&[traces.to_owned()])
        .map_err(|failure| anyhow::anyhow!("reading the traces: {failure}"))?;
    let validated = raft_interop::validate_with(streams, false)
        .map_err(|failure| anyhow::anyhow!("the traces do not validate: {failure}"))?;
    let events: usize = validated.events.values().sum();
    let elapsed = started.elapsed().as_secs_f64();
    let cost = raft_node::trace::cost();
    let per_event = |seconds: f64| seconds * 1e6 / cost.events.max(1) as f64;
    println!(
        "tracing cost: {} events in {} batches; event-loop time {:.1} ms, {:.2} µs per event: recording {:.2}, compressing and writing {:.2} ({:.1} events per batch)",
        cost.events,
        cost.flushes,
        (cost.record_seconds + cost.flush_seconds) * 1e3,
        per_event(cost.record_seconds + cost.flush_seconds),
        per_event(cost.record_seconds),
        per_event(cost.flush_seconds),
        cost.events as f64 / cost.flushes.max(1) as f64,
    );
    println!(
        "traces: {events} core events, {:.1} MiB ({:.0} bytes/event, {:.0} bytes/put over {puts} puts); validated through the model in {elapsed:.1} s ({:.0} events/s)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / events.max(1) as f64,
        bytes as f64 / puts.max(1) as f64,
        events as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

async fn latency(cluster: &LocalCluster, options: &BenchOptions) -> anyhow::Result<()> {
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    println!(
        "{}-node cluster on loopback, data in {}; leader is node {leader}",
        options.nodes,
        cluster.dir.display()
    );
    // Warm up connections and the leader's first commit.
    measure_puts(cluster, 4, 200, options.value_bytes, "warmup").await?;
    println!(
        "{:>8} {:>9} {:>12} {:>10} {:>10}",
        "clients", "puts", "puts/s", "p50 ms", "p99 ms"
    );
    for &clients in &options.concurrency {
        let report = measure_puts(
            cluster,
            clients,
            options.requests,
            options.value_bytes,
            &format!("c{clients}"),
        )
        .await?;
        println!(
            "{:>8} {:>9} {:>12.0} {:>10.2} {:>10.2}",
            report.clients,
            report.requests,
            report.throughput(),
            report.p50.as_secs_f64() * 1e3,
            report.p99.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

async fn snapshot(cluster: &LocalCluster, options: &BenchOptions) -> anyhow::Result<()> {
    cluster.wait_for_leader(Duration::from_secs(10)).await?;
    {
        let loaded = Instant::now();
        measure_puts(
            cluster,
            64,
            options.snapshot_keys,
            options.value_bytes,
            "snap",
        )
        .await?;
        let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
        let node = cluster
            .node(leader)
            .ok_or_else(|| anyhow::anyhow!("leader vanished"))?;
        let keys = node.status().await.map(|s| s.applied_index).unwrap_or(0);
        println!(
            "loaded {} keys in {:.1} s (state machine at index {keys})",
            options.snapshot_keys,
            loaded.elapsed().as_secs_f64()
        );
        let report = node
            .take_snapshot()
            .await
            .map_err(|err| anyhow::anyhow!("snapshot failed: {err}"))?;
        println!(
            "snapshot of {} keys at index {}: {:.1} ms to serialize and write (fsynced), {:.2} MiB",
            report.keys,
            report.index,
            report.write_time.as_secs_f64() * 1e3,
            report.bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}
