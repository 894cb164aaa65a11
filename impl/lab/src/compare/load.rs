//! The closed-loop load generator, the same code for both systems.
//!
//! Our node is driven through either of its client APIs ([`Api`]): its own
//! `raft.kv.v1.Kv`, or etcd's `etcdserverpb.KV` with the very client and
//! request shapes sent to etcd, so that both systems can face the identical
//! request path.
//!
//! `clients` tasks each send one request, wait for its answer, and send the
//! next, until the cell's time is up. Tasks share `conns` HTTP/2 connections
//! (tonic channels) round-robin. Latencies go into one HDR histogram per task
//! (microseconds, 3 significant digits), merged at the end. Only requests
//! *sent* inside the measured window count; the warm-up before it is not
//! recorded.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::rounds::{MachineCpu, RoundFigures};
use crate::proto::etcd as etcd_pb;
use crate::proto::etcd::kv_client::KvClient as EtcdKv;
use raft_node::proto::kv as ours_pb;
use raft_node::proto::kv::kv_client::KvClient as OursKv;

/// Which system a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Ours,
    /// Our node recording its core-event trace (`trace_dir`, the compact
    /// default): beside `Ours`, what tracing costs (`compare --trace`).
    #[serde(rename = "ours-traced")]
    OursTraced,
    Etcd,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Ours => "ours",
            System::OursTraced => "ours traced",
            System::Etcd => "etcd",
        }
    }

    /// Our node, traced or not.
    pub fn is_ours(self) -> bool {
        matches!(self, System::Ours | System::OursTraced)
    }
}

/// Which client API a connection speaks: our node serves both on its
/// client port; etcd serves only its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `raft.kv.v1.Kv` (Put; Get, a ReadIndex read).
    Native,
    /// etcd's `etcdserverpb.KV` (Put; Range with `serializable = false`).
    Etcd,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Native => "native",
            Api::Etcd => "etcd",
        }
    }
}

/// How a row of the table is named: the system, and for ours the API.
pub fn row_name(system: System, api: Api) -> &'static str {
    match (system, api) {
        (System::Ours, Api::Native) => "ours (native API)",
        (System::Ours, Api::Etcd) => "ours (etcd API)",
        (System::OursTraced, Api::Native) => "ours traced (native API)",
        (System::OursTraced, Api::Etcd) => "ours traced (etcd API)",
        (System::Etcd, _) => "etcd",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Put,
    /// A linearizable read (native API: Get, a ReadIndex read; etcd API,
    /// either system: Range with `serializable = false`).
    Get,
}

/// One cell of the table: an operation at a concurrency.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Workload {
    pub op: Op,
    pub clients: usize,
}

impl Workload {
    pub fn label(&self) -> String {
        let op = match self.op {
            Op::Put => "put",
            Op::Get => "get",
        };
        format!("{op} x{}", self.clients)
    }
}

/// What the keys and values look like.
#[derive(Clone, Debug)]
pub struct Shape {
    pub keys: usize,
    pub value_bytes: usize,
}

/// A gRPC client of one system, cheap to clone (shares its connection).
#[derive(Clone)]
enum Client {
    Ours(OursKv<Channel>),
    Etcd(EtcdKv<Channel>),
}

impl Client {
    async fn put(&mut self, key: &str, value: &str) -> Result<(), tonic::Status> {
        match self {
            Client::Ours(client) => client
                .put(ours_pb::PutRequest {
                    client_id: 0,
                    seq: 0,
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
                .await
                .map(drop),
            Client::Etcd(client) => client
                .put(etcd_pb::PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: value.as_bytes().to_vec(),
                    ..Default::default()
                })
                .await
                .map(drop),
        }
    }

    async fn get(&mut self, key: &str) -> Result<(), tonic::Status> {
        match self {
            Client::Ours(client) => client
                .get(ours_pb::GetRequest {
                    key: key.to_owned(),
                })
                .await
                .map(drop),
            Client::Etcd(client) => client
                .range(etcd_pb::RangeRequest {
                    key: key.as_bytes().to_vec(),
                    serializable: false,
                    ..Default::default()
                })
                .await
                .map(drop),
        }
    }
}

/// Opens `conns` connections to `address` (HOST:PORT, the leader's client
/// port) speaking `api` (etcd speaks only its own).
pub async fn connect(
    system: System,
    api: Api,
    address: &str,
    conns: usize,
) -> anyhow::Result<Pool> {
    if system == System::Etcd && api != Api::Etcd {
        anyhow::bail!("etcd serves only its own API");
    }
    let mut clients = Vec::new();
    for _ in 0..conns.max(1) {
        let channel = Endpoint::from_shared(format!("http://{address}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        clients.push(match api {
            Api::Native => Client::Ours(OursKv::new(channel)),
            Api::Etcd => Client::Etcd(EtcdKv::new(channel)),
        });
    }
    Ok(Pool {
        system,
        api,
        address: address.to_owned(),
        clients,
    })
}

/// The connections to one system's leader, all speaking one API.
pub struct Pool {
    pub system: System,
    pub api: Api,
    /// The client address connected to: the leader when connected.
    pub address: String,
    clients: Vec<Client>,
}

/// One measured cell.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    pub system: System,
    /// The client API the load went through (etcd: always its own).
    pub api: Api,
    pub op: Op,
    pub clients: usize,
    /// Requests answered successfully and sent inside the measured window.
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// CPU time (user + system) of all the system's node processes per
    /// answered request, in microseconds: what a request costs the servers,
    /// independent of how busy the shared machine was. None where /proc is
    /// not available.
    pub server_cpu_us_per_op: Option<f64>,
    /// Log syncs (fsyncs) of all the system's nodes over the cell, warm-up
    /// included ([`super::fsyncs`]); None where a node's metrics could not
    /// be read.
    pub fsyncs: Option<u64>,
    /// Puts only: client writes carried per log sync, each node's syncs
    /// counted (every node writes every entry): answered puts × nodes /
    /// fsyncs, over the same time. 1 is no group commit at all.
    pub writes_per_fsync: Option<f64>,
    /// Ours, puts: the mean time a write spent inside the leader, from its
    /// acceptance to its answer (`raft_proposal_seconds`), and the mean
    /// AppendEntries round trip, a follower's write included
    /// (`raft_append_round_trip_seconds`), in milliseconds, warm-up
    /// included: what of the clients' latency the replication takes.
    pub in_leader_ms: Option<f64>,
    pub append_round_trip_ms: Option<f64>,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Each round's own figures, in the order run ([`super::rounds`]).
    pub rounds: Vec<RoundFigures>,
}

/// The keys are `key-00000` .. : the same names in both systems.
pub fn key_names(keys: usize) -> Vec<String> {
    (0..keys.max(1)).map(|k| format!("key-{k:05}")).collect()
}

/// A tiny per-task generator (xorshift) for key choice: keys are uniform,
/// and no shared RNG state is touched on the hot path.
struct KeyPicker(u64);

impl KeyPicker {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs .. 60 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Writes every key once (not measured), so that gets find values and both
/// systems hold the same data.
pub async fn preload(pool: &Pool, keys: &[String], shape: &Shape) -> anyhow::Result<()> {
    let value = "v".repeat(shape.value_bytes);
    let workers = 64.min(keys.len());
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = pool.clients[w % pool.clients.len()].clone();
        let mine: Vec<String> = keys.iter().skip(w).step_by(workers).cloned().collect();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for key in mine {
                let mut attempts = 0;
                while let Err(status) = client.put(&key, &value).await {
                    attempts += 1;
                    if attempts >= 5 {
                        anyhow::bail!("preloading {key}: {}", status.message());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The raw outcome of one or more rounds of a cell.
pub struct CellRun {
    pub system: System,
    pub api: Api,
    pub workload: Workload,
    pub histogram: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Server CPU seconds over the whole cell (warm-up included) and the
    /// requests answered in that time.
    pub server_cpu_seconds: Option<f64>,
    pub all_ops: u64,
    /// Log syncs of all the nodes over the whole cell, and how many nodes.
    pub fsyncs: Option<u64>,
    pub nodes: usize,
    /// The other counters over the whole cell ([`super::fsyncs::Counters`]).
    pub proposals: Option<(f64, f64)>,
    pub append_round_trips: Option<(f64, f64)>,
    /// Each round's own figures.
    pub rounds: Vec<RoundFigures>,
}

impl CellRun {
    /// Adds another round of the same cell (histograms merge exactly).
    pub fn absorb(&mut self, other: CellRun) -> anyhow::Result<()> {
        self.histogram.add(&other.histogram)?;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.all_ops += other.all_ops;
        self.server_cpu_seconds = self
            .server_cpu_seconds
            .zip(other.server_cpu_seconds)
            .map(|(a, b)| a + b);
        self.fsyncs = self.fsyncs.zip(other.fsyncs).map(|(a, b)| a + b);
        let add = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| {
            a.zip(b).map(|((s0, c0), (s1, c1))| (s0 + s1, c0 + c1))
        };
        self.proposals = add(self.proposals, other.proposals);
        self.append_round_trips = add(self.append_round_trips, other.append_round_trips);
        self.rounds.extend(other.rounds);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }

    pub fn result(&self) -> CellResult {
        let h = &self.histogram;
        let ms = |micros: u64| micros as f64 / 1e3;
        CellResult {
            system: self.system,
            api: self.api,
            op: self.workload.op,
            clients: self.workload.clients,
            ops: h.len(),
            errors: self.errors,
            seconds: self.seconds,
            ops_per_sec: h.len() as f64 / self.seconds,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            server_cpu_us_per_op: self
                .server_cpu_seconds
                .filter(|_| self.all_ops > 0)
                .map(|cpu| cpu * 1e6 / self.all_ops as f64),
            fsyncs: self.fsyncs,
            writes_per_fsync: self
                .fsyncs
                .filter(|&syncs| syncs > 0 && self.workload.op == Op::Put)
                .map(|syncs| (self.all_ops * self.nodes as u64) as f64 / syncs as f64),
            in_leader_ms: super::fsyncs::mean_ms(self.proposals)
                .filter(|_| self.workload.op == Op::Put),
            append_round_trip_ms: super::fsyncs::mean_ms(self.append_round_trips)
                .filter(|_| self.workload.op == Op::Put),
            first_error: self.first_error.clone(),
            rounds: self.rounds.clone(),
        }
    }
}

/// CPU seconds (user + system) used so far by the processes `pids`, from
/// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s: the value
/// of USER_HZ on Linux). None if any cannot be read.
pub(crate) fn cpu_seconds(pids: &[u32]) -> Option<f64> {
    let mut ticks = 0u64;
    for pid in pids {
        ticks += ProcessStat::read(&format!("/proc/{pid}/stat"))?.cpu_ticks;
    }
    Some(ticks as f64 / 100.0)
}

/// What the compare reads of a process's /proc/<pid>/stat.
pub(crate) struct ProcessStat {
    /// Field 9: the kernel's PF_* flags.
    pub flags: u64,
    /// Fields 14 and 15, user + system time, in clock ticks of 1/100 s.
    pub cpu_ticks: u64,
}

impl ProcessStat {
    /// None if the file cannot be read (the process is gone) or parsed.
    pub fn read(path: &str) -> Option<ProcessStat> {
        let stat = std::fs::read_to_string(path).ok()?;
        // The command name (field 2) may hold spaces: count from its ')',
        // so field 3 (state) is index 0.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
        Some(ProcessStat {
            flags: number(6)?,
            cpu_ticks: number(11)? + number(12)?,
        })
    }
}

/// A system's node processes, as a cell accounts them.
pub struct Servers {
    /// Their process ids, whose CPU time is accounted.
    pub pids: Vec<u32>,
    /// Where they serve their metrics, whose log syncs are counted.
    pub metrics: Vec<String>,
}

/// Runs one cell: `warmup` unrecorded, then `duration` measured, on the
/// cluster of `servers`.
pub async fn run_cell(
    servers: &Servers,
    pool: &Pool,
    workload: Workload,
    keys: &[String],
    shape: &Shape,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<CellRun> {
    let keys = std::sync::Arc::new(keys.to_vec());
    let value = std::sync::Arc::new("x".repeat(shape.value_bytes));
    let counters_before = super::fsyncs::counters(pool.system, &servers.metrics).await;
    let cpu_before = cpu_seconds(&servers.pids);
    let harness = [std::process::id()];
    let harness_before = cpu_seconds(&harness);
    let machine_before = MachineCpu::now();
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let mut tasks = Vec::new();
    for c in 0..workload.clients.max(1) {
        let mut client = pool.clients[c % pool.clients.len()].clone();
        let keys = keys.clone();
        let value = value.clone();
        let op = workload.op;
        tasks.push(tokio::spawn(async move {
            let mut histogram = new_histogram()?;
            let mut picker = KeyPicker(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(7919));
            let (mut errors, mut first_error, mut all_ops) = (0u64, None, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                let key = &keys[picker.next(keys.len())];
                let result = match op {
                    Op::Put => client.put(key, &value).await,
                    Op::Get => client.get(key).await,
                };
                all_ops += u64::from(result.is_ok());
                if sent < measure_from {
                    continue;
                }
                match result {
                    Ok(()) => {
                        let micros = sent.elapsed().as_micros().max(1) as u64;
                        histogram.saturating_record(micros);
                    }
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| status.message().to_owned());
                        // Do not spin on a failing server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            anyhow::Ok((histogram, errors, first_error, all_ops))
        }));
    }
    let mut run = CellRun {
        system: pool.system,
        api: pool.api,
        workload,
        histogram: new_histogram()?,
        errors: 0,
        first_error: None,
        seconds: duration.as_secs_f64(),
        server_cpu_seconds: None,
        all_ops: 0,
        fsyncs: None,
        nodes: servers.metrics.len(),
        proposals: None,
        append_round_trips: None,
        rounds: Vec::new(),
    };
    for task in tasks {
        let (histogram, errors, first_error, all_ops) = task.await??;
        run.all_ops += all_ops;
        run.histogram.add(&histogram)?;
        run.errors += errors;
        if run.first_error.is_none() {
            run.first_error = first_error;
        }
    }
    run.server_cpu_seconds = cpu_before
        .zip(cpu_seconds(&servers.pids))
        .map(|(before, after)| after - before);
    let harness_seconds = harness_before
        .zip(cpu_seconds(&harness))
        .map(|(before, after)| after - before);
    let others = machine_before
        .zip(MachineCpu::now())
        .zip(run.server_cpu_seconds.zip(harness_seconds))
        .map(|((before, after), (servers, harness))| {
            before.others_until(&after, start.elapsed().as_secs_f64(), servers + harness)
        });
    // This run is one round: its figures are the run's own.
    let this_round = run.result();
    run.rounds.push(RoundFigures {
        ops_per_sec: this_round.ops_per_sec,
        p99_ms: this_round.p99_ms,
        p999_ms: this_round.p999_ms,
        other_cpus: others.map(|(other, _)| other),
        steal_cpus: others.map(|(_, steal)| steal),
    });
    let cell = counters_before.until(&super::fsyncs::counters(pool.system, &servers.metrics).await);
    run.fsyncs = cell.fsyncs;
    run.proposals = cell.proposals;
    run.append_round_trips = cell.append_round_trips;
    Ok(run)
}
