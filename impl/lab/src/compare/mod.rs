//! `raft-lab compare`: this node against etcd, on the same machine, driven
//! by the same closed-loop gRPC load generator ([`load`]).
//!
//! Both clusters run at once (3 processes each, loopback, data on the same
//! disk under one temporary directory; our node fsyncs every batch, etcd
//! fsyncs its WAL by default). Our node is driven through its native API,
//! through etcd's API (the same generated etcd client and requests that
//! etcd gets: the identical request path on both systems), or both
//! (`our_apis`). Every key is written once per cluster before measuring.
//! Then for each workload the cells run interleaved — ours (native), ours
//! (etcd API), etcd, then etcd, ours (etcd API), ours (native)... for
//! `rounds` rounds, every other round reversed ([`round_order`]) — so that
//! drift on a shared machine hits all, and no row always runs first; a row's
//! rounds of a cell are merged into one histogram. Results are printed as a table and written as JSON.

pub mod clusters;
pub mod floors;
pub mod follow;
pub mod fsyncs;
pub mod load;
pub mod rounds;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use clusters::Cluster;
use floors::Floors;
use load::{Api, CellResult, CellRun, Op, Pool, Shape, System, Workload};

pub struct CompareOptions {
    /// The `raft-lab` binary: our nodes run as `raft-lab node`.
    pub ours_binary: PathBuf,
    /// The etcd binary; None runs our system only.
    pub etcd_binary: Option<PathBuf>,
    /// The APIs our node is driven through, each its own row (at least one).
    pub our_apis: Vec<Api>,
    /// Nodes per cluster (the same for every system).
    pub nodes: u64,
    pub put_clients: Vec<usize>,
    pub get_clients: Vec<usize>,
    pub keys: usize,
    pub value_bytes: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
    /// How many client tasks share one connection.
    pub clients_per_conn: usize,
    /// Parent of the run's data directory (default: the system temp dir).
    pub dir: Option<PathBuf>,
    /// Keep the data directories and node logs after the run.
    pub keep: bool,
    pub json: Option<PathBuf>,
    /// Also run a second cluster of ours that records core-event traces,
    /// in the same interleaved rounds: what tracing costs (issue 22).
    pub trace: bool,
    /// With `trace`: validate the traced cluster's traces online
    /// (`raft-lab follow`, the code of `raft-interop validate --follow`)
    /// while it runs, and report after
    /// each of its cells how far behind the validator was ([`follow`]).
    pub follow: bool,
    /// Our nodes' `snapshot_threshold` (None: the node's default).
    pub snapshot_threshold: Option<u64>,
    /// Our nodes' log filter (`warn` unless asked).
    pub node_log_level: String,
}

/// Everything one run measured (the JSON document).
#[derive(Debug, Serialize)]
pub struct Report {
    pub floors: Floors,
    pub keys: usize,
    pub value_bytes: usize,
    pub seconds_per_cell: f64,
    pub rounds: usize,
    pub clients_per_conn: usize,
    /// Our nodes' snapshot threshold when the run set one.
    pub snapshot_threshold: Option<u64>,
    pub data_dir: String,
    /// One entry per workload, system and API, rounds merged.
    pub results: Vec<CellResult>,
    /// Per workload and API of ours: ours / etcd for throughput and p99
    /// (absent without etcd).
    pub ratios: Vec<Ratio>,
    /// Per workload: our node through etcd's API / through its native API,
    /// for throughput, p50 and p99 (absent unless both APIs ran).
    pub api_ratios: Vec<ApiRatio>,
    /// Per workload and API: our node traced / untraced (with `trace`).
    pub trace_ratios: Vec<TraceRatio>,
    /// Bytes the traced cluster's traces hold on disk at the end (with
    /// `trace`), and per operation it served in the measured cells.
    pub trace_bytes: Option<u64>,
    pub trace_bytes_per_op: Option<f64>,
    /// With `follow`: per cell of the traced cluster, the online
    /// validator's figures; and the events it validated in all.
    pub follow: Vec<follow::FollowCell>,
    pub follow_events_validated: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct TraceRatio {
    pub op: Op,
    pub clients: usize,
    pub api: Api,
    pub throughput_traced_over_untraced: f64,
    pub p99_traced_over_untraced: f64,
    /// Server CPU per operation, traced / untraced (when both were measured).
    pub cpu_traced_over_untraced: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Ratio {
    pub op: Op,
    pub clients: usize,
    /// The API our node was driven through.
    pub api: Api,
    pub throughput_ours_over_etcd: f64,
    pub p99_ours_over_etcd: f64,
    /// The same, round by round (our round i against etcd's round i).
    pub throughput_ours_over_etcd_by_round: Vec<f64>,
    pub p99_ours_over_etcd_by_round: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct ApiRatio {
    pub op: Op,
    pub clients: usize,
    pub throughput_etcd_api_over_native: f64,
    pub p50_etcd_api_over_native: f64,
    pub p99_etcd_api_over_native: f64,
}

/// One row of the table: a system driven through one API, on one cluster.
#[derive(Clone, Copy, Debug)]
struct Target {
    system: System,
    api: Api,
    /// Index of its cluster among the running ones.
    cluster: usize,
}

fn workloads(options: &CompareOptions) -> Vec<Workload> {
    let puts = options.put_clients.iter().map(|&clients| Workload {
        op: Op::Put,
        clients,
    });
    let gets = options.get_clients.iter().map(|&clients| Workload {
        op: Op::Get,
        clients,
    });
    // A count of 0 (`--get-clients 0`) leaves that operation out.
    puts.chain(gets).filter(|w| w.clients > 0).collect()
}

async fn start(
    system: System,
    options: &CompareOptions,
    dir: &Path,
) -> anyhow::Result<(Cluster, String)> {
    let nodes = options.nodes;
    let mut cluster = match system {
        System::Ours | System::OursTraced => {
            let traced = system == System::OursTraced;
            let name = if traced { "ours-traced" } else { "ours" };
            Cluster::start_ours(
                &options.ours_binary,
                &dir.join(name),
                nodes,
                traced,
                options.snapshot_threshold,
                &options.node_log_level,
            )?
        }
        System::Etcd => {
            let binary = options
                .etcd_binary
                .as_deref()
                .context("no etcd binary given")?;
            Cluster::start_etcd(binary, &dir.join("etcd"), nodes)?
        }
    };
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await?;
    println!(
        "{}: {nodes} nodes at {}; leader {leader}",
        system.name(),
        cluster.endpoints.join(", ")
    );
    Ok((cluster, leader))
}

pub async fn run(options: CompareOptions) -> anyhow::Result<Report> {
    if options.rounds == 0 || options.duration.is_zero() {
        anyhow::bail!("--rounds and --duration must be positive");
    }
    if options.our_apis.is_empty() {
        anyhow::bail!("our node must be driven through at least one API");
    }
    if options.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    if options.follow && !options.trace {
        anyhow::bail!("--follow validates the traced cluster's traces: add --trace");
    }
    let dir = clusters::run_dir(options.dir.as_deref())?;
    let result = run_in(&options, &dir).await;
    if !options.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(options: &CompareOptions, dir: &Path) -> anyhow::Result<Report> {
    println!("data under {}", dir.display());
    let floors = floors::measure(dir).await?;
    println!(
        "floors: 4 KiB append + fdatasync p50 {:.3} ms (p99 {:.3} ms); loopback gRPC round trip p50 {:.3} ms (p99 {:.3} ms)",
        floors.fsync_4k_p50_ms,
        floors.fsync_4k_p99_ms,
        floors.grpc_rtt_p50_ms,
        floors.grpc_rtt_p99_ms
    );
    let mut systems = vec![System::Ours];
    if options.trace {
        systems.push(System::OursTraced);
    }
    if options.etcd_binary.is_some() {
        systems.push(System::Etcd);
    }
    // One row per system and API, pointing at its cluster (the index of its
    // system among those started).
    let targets: Vec<Target> = systems
        .iter()
        .enumerate()
        .flat_map(|(cluster, &system)| {
            let apis = if system.is_ours() {
                options.our_apis.clone()
            } else {
                vec![Api::Etcd]
            };
            apis.into_iter().map(move |api| Target {
                system,
                api,
                cluster,
            })
        })
        .collect();
    let shape = Shape {
        keys: options.keys,
        value_bytes: options.value_bytes,
    };
    let keys = load::key_names(shape.keys);
    let mut running = Vec::new();
    for &system in &systems {
        let (cluster, leader) = start(system, options, dir).await?;
        running.push((cluster, leader));
    }
    let mut follower = if options.follow {
        let traces = dir.join("ours-traced").join("traces");
        Some(follow::Follower::start(&options.ours_binary, &traces, dir)?)
    } else {
        None
    };
    let result = measure_all(
        options,
        &targets,
        &mut running,
        &keys,
        &shape,
        follower.as_mut(),
    )
    .await;
    let follow_events_validated = match follower {
        Some(follower) if result.is_ok() => follower.stop()?,
        Some(follower) => {
            let _ = follower.stop();
            None
        }
        None => None,
    };
    for (cluster, _) in running {
        cluster.stop().await;
    }
    let (results, follow) = result?;
    let ratios = ratios(&results);
    let api_ratios = api_ratios(&results);
    let trace_ratios = trace_ratios(&results);
    let (trace_bytes, trace_bytes_per_op) = if options.trace {
        let bytes = crate::bench::dir_bytes(&dir.join("ours-traced").join("traces")).unwrap_or(0);
        let ops: u64 = results
            .iter()
            .filter(|r| r.system == System::OursTraced)
            .map(|r| r.ops)
            .sum();
        (Some(bytes), (ops > 0).then(|| bytes as f64 / ops as f64))
    } else {
        (None, None)
    };
    Ok(Report {
        floors,
        keys: options.keys,
        value_bytes: options.value_bytes,
        seconds_per_cell: options.duration.as_secs_f64(),
        rounds: options.rounds,
        clients_per_conn: options.clients_per_conn,
        snapshot_threshold: options.snapshot_threshold,
        data_dir: dir.display().to_string(),
        results,
        ratios,
        api_ratios,
        trace_ratios,
        trace_bytes,
        trace_bytes_per_op,
        follow,
        follow_events_validated,
    })
}

async fn measure_all(
    options: &CompareOptions,
    targets: &[Target],
    running: &mut [(Cluster, String)],
    keys: &[String],
    shape: &Shape,
    mut follower: Option<&mut follow::Follower>,
) -> anyhow::Result<(Vec<CellResult>, Vec<follow::FollowCell>)> {
    let per_conn = options.clients_per_conn.max(1);
    let mut results = Vec::new();
    let mut follow_cells = Vec::new();
    for workload in workloads(options) {
        let conns = workload.clients.div_ceil(per_conn);
        // Each workload's clients go to the leader as it is now: clusters
        // started side by side on a busy machine may still change leader
        // after the first one was found (a preload once failed with "not
        // the leader" for that reason).
        for (cluster, leader) in running.iter_mut() {
            follow_leader(cluster, leader, "").await?;
        }
        let mut pools: Vec<Pool> = Vec::new();
        let mut servers = Vec::new();
        let mut preloaded = vec![false; running.len()];
        for target in targets {
            let (cluster, leader) = &running[target.cluster];
            servers.push(cluster.servers());
            // Both of our APIs go to the same leader: its client port
            // serves both.
            let pool = load::connect(target.system, target.api, leader, conns).await?;
            if results.is_empty() && !preloaded[target.cluster] {
                println!("{}: writing {} keys once", target.system.name(), keys.len());
                load::preload(&pool, keys, shape).await?;
                preloaded[target.cluster] = true;
            }
            pools.push(pool);
        }
        let mut merged: Vec<Option<CellRun>> = targets.iter().map(|_| None).collect();
        for round in 0..options.rounds {
            for at in round_order(round, pools.len()) {
                // A leader can change between two cells on a busy machine
                // (an fsync stalled past an election timeout): our native
                // API then refuses every request on the old leader ("not
                // the leader"), so a row would measure nothing but errors
                // for the rest of the workload. Follow it, and say so.
                let target = &targets[at];
                let (cluster, leader) = &mut running[target.cluster];
                let when = format!(" (round {}): reconnecting", round + 1);
                follow_leader(cluster, leader, &when).await?;
                if pools[at].address != *leader {
                    pools[at] = load::connect(target.system, target.api, leader, conns).await?;
                }
                let pool = &pools[at];
                let following = match follower.as_deref_mut() {
                    Some(follower) if target.system == System::OursTraced => {
                        Some(follower.before_cell(&servers[at]).await?)
                    }
                    _ => None,
                };
                let run = load::run_cell(
                    &servers[at],
                    pool,
                    workload,
                    keys,
                    shape,
                    options.warmup,
                    options.duration,
                )
                .await?;
                let cell = run.result();
                println!(
                    "  {:<10} {:<17} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  server CPU {}/op{}{}{}{}",
                    workload.label(),
                    load::row_name(cell.system, cell.api),
                    cell.ops_per_sec,
                    cell.p50_ms,
                    cell.p99_ms,
                    cell.p999_ms,
                    cpu_text(cell.server_cpu_us_per_op),
                    cell.writes_per_fsync
                        .map_or_else(String::new, |w| format!("  {w:.1} writes/fsync")),
                    in_leader_text(cell.in_leader_ms, cell.append_round_trip_ms),
                    cell.rounds
                        .last()
                        .map_or_else(String::new, rounds::RoundFigures::machine_text),
                    if cell.errors > 0 {
                        format!(
                            "  ({} errors, first: {})",
                            cell.errors,
                            cell.first_error.as_deref().unwrap_or("?")
                        )
                    } else {
                        String::new()
                    }
                );
                if let (Some(start), Some(follower)) = (following, follower.as_deref_mut()) {
                    let cell = follower
                        .after_cell(start, &servers[at], workload.label(), round + 1)
                        .await?;
                    println!("  {:<10} {cell}", workload.label());
                    follow_cells.push(cell);
                }
                match &mut merged[at] {
                    Some(total) => total.absorb(run)?,
                    slot => *slot = Some(run),
                }
            }
        }
        results.extend(merged.iter().flatten().map(CellRun::result));
    }
    Ok((results, follow_cells))
}

/// Finds `cluster`'s leader as it is now and records it in `leader`,
/// saying so (followed by `when`) if it moved.
async fn follow_leader(
    cluster: &mut Cluster,
    leader: &mut String,
    when: &str,
) -> anyhow::Result<()> {
    let now = cluster.wait_for_leader(Duration::from_secs(20)).await?;
    if *leader != now {
        println!("{}: the leader is now {now}{when}", cluster.system.name());
        *leader = now;
    }
    Ok(())
}

/// The order of the rows' cells in round `round`: as listed in even
/// rounds, reversed in odd ones. A fixed order is biased: with etcd in the
/// run, ours through etcd's API always ran straight after ours native on
/// the same, just loaded cluster, while ours native ran after the etcd cell
/// had left our cluster idle; and a drift of the shared machine within a
/// round always fell on the same side. Reversing every other round gives
/// each row each place equally often over an even number of rounds
/// (issue 21).
fn round_order(round: usize, rows: usize) -> Vec<usize> {
    if round % 2 == 0 {
        (0..rows).collect()
    } else {
        (0..rows).rev().collect()
    }
}

/// Where a put's time went, as the nodes' metrics say: inside the leader
/// (acceptance to answer) and the AppendEntries round trip within it; the
/// rest of the clients' latency is their gRPC calls and the machine.
fn in_leader_text(in_leader_ms: Option<f64>, round_trip_ms: Option<f64>) -> String {
    match (in_leader_ms, round_trip_ms) {
        (Some(inside), Some(rtt)) => format!("  in leader {inside:.2} ms (AE rtt {rtt:.2})"),
        (Some(inside), None) => format!("  in leader {inside:.2} ms"),
        _ => String::new(),
    }
}

fn cpu_text(us: Option<f64>) -> String {
    us.map_or_else(|| "?".to_owned(), |us| format!("{us:.0} µs"))
}

/// The result of `system` through `api` at the workload of `like`.
fn cell_like<'a>(
    results: &'a [CellResult],
    system: System,
    api: Api,
    like: &CellResult,
) -> Option<&'a CellResult> {
    results.iter().find(|r| {
        r.system == system && r.api == api && r.op == like.op && r.clients == like.clients
    })
}

fn ratios(results: &[CellResult]) -> Vec<Ratio> {
    results
        .iter()
        .filter(|r| r.system == System::Ours)
        .filter_map(|ours| {
            // etcd speaks only its own API.
            let etcd = cell_like(results, System::Etcd, Api::Etcd, ours)?;
            Some(Ratio {
                op: ours.op,
                clients: ours.clients,
                api: ours.api,
                throughput_ours_over_etcd: ours.ops_per_sec / etcd.ops_per_sec,
                p99_ours_over_etcd: ours.p99_ms / etcd.p99_ms,
                throughput_ours_over_etcd_by_round: rounds::by_round(
                    &ours.rounds,
                    &etcd.rounds,
                    |r| r.ops_per_sec,
                ),
                p99_ours_over_etcd_by_round: rounds::by_round(&ours.rounds, &etcd.rounds, |r| {
                    r.p99_ms
                }),
            })
        })
        .collect()
}

fn trace_ratios(results: &[CellResult]) -> Vec<TraceRatio> {
    results
        .iter()
        .filter(|r| r.system == System::OursTraced)
        .filter_map(|traced| {
            let plain = cell_like(results, System::Ours, traced.api, traced)?;
            Some(TraceRatio {
                op: traced.op,
                clients: traced.clients,
                api: traced.api,
                throughput_traced_over_untraced: traced.ops_per_sec / plain.ops_per_sec,
                p99_traced_over_untraced: traced.p99_ms / plain.p99_ms,
                cpu_traced_over_untraced: traced
                    .server_cpu_us_per_op
                    .zip(plain.server_cpu_us_per_op)
                    .map(|(t, p)| t / p),
            })
        })
        .collect()
}

fn api_ratios(results: &[CellResult]) -> Vec<ApiRatio> {
    results
        .iter()
        .filter(|r| r.system == System::Ours && r.api == Api::Native)
        .filter_map(|native| {
            let etcd_api = cell_like(results, System::Ours, Api::Etcd, native)?;
            Some(ApiRatio {
                op: native.op,
                clients: native.clients,
                throughput_etcd_api_over_native: etcd_api.ops_per_sec / native.ops_per_sec,
                p50_etcd_api_over_native: etcd_api.p50_ms / native.p50_ms,
                p99_etcd_api_over_native: etcd_api.p99_ms / native.p99_ms,
            })
        })
        .collect()
}

/// The table: one row per workload, system and API; on our rows the ratios
/// to etcd, and on the etcd-API row of ours the ratios to the native API.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | system | ops/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU/op | writes/fsync | ops/s ours/etcd | p99 ours/etcd | ops/s etcd API/native | p99 etcd API/native |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let two = |x: f64| format!("{x:.2}");
    let label = |op, clients| Workload { op, clients }.label();
    for r in &report.results {
        let ours = r.system == System::Ours;
        let ratio = ratio_of(report, r);
        let (t, p) = ratio.map_or((String::new(), String::new()), |x| {
            (two(x.throughput_ours_over_etcd), two(x.p99_ours_over_etcd))
        });
        let api_ratio = report
            .api_ratios
            .iter()
            .find(|x| ours && r.api == Api::Etcd && x.op == r.op && x.clients == r.clients);
        let (at, ap) = api_ratio.map_or((String::new(), String::new()), |x| {
            (
                two(x.throughput_etcd_api_over_native),
                two(x.p99_etcd_api_over_native),
            )
        });
        let label = label(r.op, r.clients);
        out.push_str(&format!(
            "| {label} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {t} | {p} | {at} | {ap} |\n",
            load::row_name(r.system, r.api),
            r.ops_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors,
            cpu_text(r.server_cpu_us_per_op),
            r.writes_per_fsync
                .map_or_else(String::new, |w| format!("{w:.1}"))
        ));
    }
    out.push_str(&rounds_table(report));
    for r in &report.trace_ratios {
        let label = label(r.op, r.clients);
        out.push_str(&format!(
            "\ntracing ({label}, {} API): traced/untraced ops/s {:.3}, p99 {:.2}, server CPU/op {}",
            r.api.name(),
            r.throughput_traced_over_untraced,
            r.p99_traced_over_untraced,
            r.cpu_traced_over_untraced
                .map_or_else(|| "?".to_owned(), |x| format!("{x:.3}"))
        ));
    }
    if let (Some(bytes), Some(per_op)) = (report.trace_bytes, report.trace_bytes_per_op) {
        out.push_str(&format!(
            "\ntraces: {bytes} bytes on disk, {per_op:.1} bytes per measured operation (warm-up and preload included in the bytes)\n"
        ));
    }
    if let Some(validated) = report.follow_events_validated {
        out.push_str(&follow::summary(&report.follow, validated));
    }
    out.push_str(&format!(
        "\nfloors: 4 KiB append + fdatasync p50 {:.3} ms, p99 {:.3} ms; loopback gRPC round trip p50 {:.3} ms, p99 {:.3} ms\n",
        report.floors.fsync_4k_p50_ms,
        report.floors.fsync_4k_p99_ms,
        report.floors.grpc_rtt_p50_ms,
        report.floors.grpc_rtt_p99_ms
    ));
    out
}

/// Our row `r`'s ratios to etcd, if it is ours and etcd ran its workload.
fn ratio_of<'a>(report: &'a Report, r: &CellResult) -> Option<&'a Ratio> {
    report.ratios.iter().find(|x| {
        r.system == System::Ours && x.api == r.api && x.op == r.op && x.clients == r.clients
    })
}

/// The rounds one by one: per row the median and spread (lowest–highest)
/// of the rounds' throughput, p99 and p99.9, our ratios to etcd round by
/// round, and the CPU the rest of the machine used; then which rounds ran
/// on a busy machine ([`rounds`]). Empty for a single round.
fn rounds_table(report: &Report) -> String {
    if report.rounds < 2 {
        return String::new();
    }
    let mut out = String::from(
        "
| workload | system | ops/s median | ops/s spread | p99 ms median | p99 ms spread | p99.9 ms median | p99.9 ms spread | ops/s ours/etcd by round | p99 ours/etcd by round | others' CPUs, highest |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
",
    );
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut busy = Vec::new();
    for r in &report.results {
        let label = Workload {
            op: r.op,
            clients: r.clients,
        }
        .label();
        let name = load::row_name(r.system, r.api);
        let pick = |f: fn(&rounds::RoundFigures) -> f64| r.rounds.iter().map(f).collect::<Vec<_>>();
        let (ops, p99, p999) = (
            pick(|x| x.ops_per_sec),
            pick(|x| x.p99_ms),
            pick(|x| x.p999_ms),
        );
        let median = |values: &[f64], digits: usize| {
            rounds::median(values).map_or_else(String::new, |m| format!("{m:.digits$}"))
        };
        let (ratio_ops, ratio_p99) =
            ratio_of(report, r).map_or((String::new(), String::new()), |x| {
                (
                    list(&x.throughput_ours_over_etcd_by_round),
                    list(&x.p99_ours_over_etcd_by_round),
                )
            });
        let others = r
            .rounds
            .iter()
            .filter_map(|x| x.other_cpus)
            .fold(None, |high: Option<f64>, x| {
                Some(high.map_or(x, |h| h.max(x)))
            });
        out.push_str(&format!(
            "| {label} | {name} | {} | {} | {} | {} | {} | {} | {ratio_ops} | {ratio_p99} | {} |
",
            median(&ops, 0),
            rounds::spread(&ops, 0),
            median(&p99, 2),
            rounds::spread(&p99, 2),
            median(&p999, 2),
            rounds::spread(&p999, 2),
            others.map_or_else(|| "?".to_owned(), |x| format!("{x:.2}")),
        ));
        for (i, round) in r.rounds.iter().enumerate() {
            if round.busy() {
                busy.push(format!(
                    "{label} {name} round {}:{}",
                    i + 1,
                    round.machine_text()
                ));
            }
        }
    }
    if busy.is_empty() {
        out.push_str(&format!(
            "
machine: quiet in every round (other processes under {:.2} CPUs)
",
            rounds::BUSY_CPUS
        ));
    } else {
        out.push_str(&format!(
            "
machine BUSY in {} rounds (other processes or the hypervisor over {:.2} CPUs; their figures may be the machine's, not the system's):
",
            busy.len(),
            rounds::BUSY_CPUS
        ));
        for line in busy {
            out.push_str(&format!(
                "  {line}
"
            ));
        }
    }
    out
}

/// Runs the comparison, prints the table, writes the JSON.
pub async fn run_and_print(options: CompareOptions) -> anyhow::Result<Report> {
    let json = options.json.clone();
    let report = run(options).await?;
    println!("\n{}", table(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(system: System, op: Op, clients: usize, ops_per_sec: f64, p99_ms: f64) -> CellResult {
        let api = match system {
            System::Ours | System::OursTraced => Api::Native,
            System::Etcd => Api::Etcd,
        };
        CellResult {
            system,
            api,
            op,
            clients,
            ops: 1,
            errors: 0,
            seconds: 1.0,
            ops_per_sec,
            p50_ms: 1.0,
            p99_ms,
            p999_ms: p99_ms,
            max_ms: p99_ms,
            server_cpu_us_per_op: None,
            fsyncs: None,
            writes_per_fsync: None,
            in_leader_ms: None,
            append_round_trip_ms: None,
            first_error: None,
            rounds: Vec::new(),
        }
    }

    /// A report of `rounds` rounds holding `results` and these ratios.
    fn report(
        rounds: usize,
        results: Vec<CellResult>,
        ratios: Vec<Ratio>,
        api_ratios: Vec<ApiRatio>,
    ) -> Report {
        Report {
            floors: Floors::default(),
            keys: 1,
            value_bytes: 1,
            seconds_per_cell: 1.0,
            rounds,
            clients_per_conn: 1,
            snapshot_threshold: None,
            data_dir: String::new(),
            results,
            ratios,
            api_ratios,
            trace_ratios: Vec::new(),
            trace_bytes: None,
            trace_bytes_per_op: None,
            follow: Vec::new(),
            follow_events_validated: None,
        }
    }

    #[test]
    fn the_rounds_table_gives_medians_spreads_ratios_by_round_and_busy_rounds() {
        let round = |ops_per_sec, p99_ms, other_cpus| rounds::RoundFigures {
            ops_per_sec,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            other_cpus: Some(other_cpus),
            steal_cpus: Some(0.0),
        };
        let with_rounds = |cell: CellResult, rounds| CellResult { rounds, ..cell };
        let results = vec![
            with_rounds(
                cell(System::Ours, Op::Put, 16, 0.0, 0.0),
                vec![
                    round(210.0, 2.0, 0.01),
                    round(250.0, 3.0, 0.30),
                    round(230.0, 2.5, 0.02),
                ],
            ),
            with_rounds(
                cell(System::Etcd, Op::Put, 16, 0.0, 0.0),
                vec![
                    round(100.0, 4.0, 0.01),
                    round(100.0, 6.0, 0.02),
                    round(115.0, 5.0, 0.01),
                ],
            ),
        ];
        let report = report(3, results.clone(), ratios(&results), Vec::new());
        let table = rounds_table(&report);
        assert!(
            table.contains("| put x16 | ours (native API) | 230 | 210–250 | 2.50 | 2.00–3.00 | 5.00 | 4.00–6.00 | 2.10 2.50 2.00 | 0.50 0.50 0.50 | 0.30 |"),
            "{table}"
        );
        assert!(table.contains("machine BUSY in 1 rounds"), "{table}");
        assert!(
            table.contains("put x16 ours (native API) round 2:  others 0.30 CPUs (BUSY)"),
            "{table}"
        );
        let quiet = Report {
            rounds: 1,
            ..report
        };
        assert_eq!(rounds_table(&quiet), "", "one round has no spread");
    }

    #[test]
    fn rounds_alternate_the_order_of_the_rows() {
        assert_eq!(round_order(0, 3), vec![0, 1, 2]);
        assert_eq!(round_order(1, 3), vec![2, 1, 0]);
        assert_eq!(round_order(2, 3), vec![0, 1, 2]);
        // Over two rounds each row holds each place once.
        for rows in 1..5 {
            let mut places = vec![0; rows];
            for round in 0..2 {
                for (place, row) in round_order(round, rows).into_iter().enumerate() {
                    places[row] += place;
                }
            }
            assert!(places.iter().all(|&p| p == rows - 1), "{places:?}");
        }
    }

    #[test]
    fn ratios_pair_each_of_our_cells_with_etcds_same_cell() {
        let results = vec![
            cell(System::Ours, Op::Put, 64, 300.0, 10.0),
            cell(System::Etcd, Op::Put, 64, 100.0, 20.0),
            cell(System::Ours, Op::Get, 64, 50.0, 4.0),
            cell(System::Etcd, Op::Put, 16, 10.0, 1.0),
        ];
        let ratios = ratios(&results);
        assert_eq!(ratios.len(), 1, "only cells both systems ran");
        assert_eq!((ratios[0].op, ratios[0].clients), (Op::Put, 64));
        assert!((ratios[0].throughput_ours_over_etcd - 3.0).abs() < 1e-9);
        assert!((ratios[0].p99_ours_over_etcd - 0.5).abs() < 1e-9);
        assert_eq!(ratios[0].api, Api::Native);
    }

    #[test]
    fn api_ratios_pair_each_etcd_api_cell_of_ours_with_the_native_one() {
        let etcd_api = |op, clients, ops_per_sec, p99_ms| CellResult {
            api: Api::Etcd,
            ..cell(System::Ours, op, clients, ops_per_sec, p99_ms)
        };
        let results = vec![
            cell(System::Ours, Op::Put, 64, 300.0, 10.0),
            etcd_api(Op::Put, 64, 270.0, 12.0),
            cell(System::Etcd, Op::Put, 64, 100.0, 20.0),
            cell(System::Ours, Op::Get, 16, 50.0, 4.0),
            etcd_api(Op::Get, 256, 50.0, 4.0),
        ];
        let ratios = api_ratios(&results);
        assert_eq!(ratios.len(), 1, "only cells both APIs ran");
        assert_eq!((ratios[0].op, ratios[0].clients), (Op::Put, 64));
        assert!((ratios[0].throughput_etcd_api_over_native - 0.9).abs() < 1e-9);
        assert!((ratios[0].p99_etcd_api_over_native - 1.2).abs() < 1e-9);
        // Both of our rows are compared with etcd's.
        let vs_etcd = super::ratios(&results);
        let apis: Vec<Api> = vs_etcd.iter().map(|r| r.api).collect();
        assert_eq!(apis, vec![Api::Native, Api::Etcd]);
        let report = report(1, results, vs_etcd, ratios);
        let table = table(&report);
        assert!(
            table.contains("| put x64 | ours (etcd API) | 270 |"),
            "{table}"
        );
        assert!(table.contains("| 0.90 | 1.20 |"), "{table}");
    }
}
