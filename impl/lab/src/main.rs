//! The `raft-lab` command: the laboratory around the node — the chaos
//! harness, the comparison with etcd, the bench — and `node`, a node with
//! the seeded-bug hooks compiled in (the same flags as `raft-node run`, plus
//! `--seeded-bug NAME`), which chaos and compare run as their node processes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use raft_lab::bench::{self, BenchOptions};
use raft_lab::seeded_bugs::{self, SeededBug};
use raft_node::cli::{RunArgs, run_command, run_node};

#[derive(Parser)]
#[command(
    name = "raft-lab",
    version,
    about = "The laboratory around raft-node: chaos harness, etcd comparison, bench, seeded bugs"
)]
struct Cli {
    /// Log filter (e.g. info, debug, raft_node=debug). Default: the RAFT_LOG
    /// environment variable, else RUST_LOG, else "info".
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a cluster of node processes under injected faults (kill -9,
    /// partitions, one-way loss, pauses) with concurrent clients, and check
    /// the history for linearizability and durability.
    Chaos(raft_lab::chaos::cli::ChaosArgs),
    /// Run the same closed-loop load against a 3-node cluster of this node
    /// and a 3-node etcd cluster on loopback; print a table, write JSON.
    Compare(CompareArgs),
    /// Measure put throughput and latency, and snapshot cost, on a loopback cluster.
    Bench(BenchArgs),
    /// Run one node: `raft-node run`'s flags, plus `--seeded-bug NAME` to
    /// break it on purpose. Without `--seeded-bug` it is the same node.
    Node(Box<NodeArgs>),
    /// `raft-interop validate --follow`, built into this binary so that
    /// `compare --follow` finds it wherever raft-lab runs: validates trace
    /// directories through the model as the nodes write them; exit 1 at
    /// the first violation.
    #[command(hide = true)]
    Follow(FollowArgs),
}

#[derive(Args)]
struct FollowArgs {
    /// The trace directories of a running cluster.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Seconds between progress lines (and metrics file writes).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    progress: f64,
    /// Seconds a node may wait for a message while nothing progresses
    /// before the wait is a violation.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    grace: f64,
    /// Write progress and violation as Prometheus text into this file.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
}

#[derive(Args)]
struct NodeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Break the node on purpose (testing the chaos harness): ack-before-commit,
    /// stale-read, send-before-durable or skip-fdatasync. Logged at error level.
    #[arg(long, value_name = "NAME")]
    seeded_bug: Option<SeededBug>,
    /// Run in this network namespace (made by `ip netns add`; the chaos
    /// harness's namespace partitions). Entered before any thread starts.
    #[arg(long, value_name = "NAME")]
    netns: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Puts per concurrency level.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    clients: Vec<usize>,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Keys to load before measuring a snapshot (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    snapshot_keys: usize,
    /// Parent directory for the cluster's data (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Record core-event traces (as `run --trace-dir` does) during the latency
    /// runs, then validate them through the model: run with and without to
    /// see what tracing costs.
    #[arg(long)]
    trace: bool,
    /// With --trace: the trace's form, compact (the node's default) or json.
    #[arg(long, value_name = "compact|json", default_value = "compact")]
    trace_format: raft_interop::Format,
    /// The nodes' max_inflight (pipelined replication: AppendEntries in
    /// flight per follower; 0 is off). Default: the node's.
    #[arg(long, value_name = "N")]
    max_inflight: Option<usize>,
}

#[derive(Args)]
struct CompareArgs {
    /// The etcd binary (default: `etcd` on the PATH).
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Measure this node only (no etcd needed).
    #[arg(long)]
    no_etcd: bool,
    /// The API(s) this node is driven through: its native `raft.kv.v1.Kv`,
    /// etcd's `etcdserverpb.KV` (the same client and requests as etcd gets),
    /// or both, each its own row.
    #[arg(long, value_enum, default_value = "both")]
    our_api: OurApi,
    /// Nodes in each cluster (ours and etcd's alike), e.g. 3 or 5.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Measured time per cell and round, e.g. 10s, 500ms.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Unmeasured time before each cell's measurement.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: std::time::Duration,
    /// Rounds per cell: ours (each API), etcd, ours, etcd... merged per row.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Concurrent clients for the put cells.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    put_clients: Vec<usize>,
    /// Concurrent clients for the linearizable get cells.
    #[arg(long, value_delimiter = ',', default_value = "16,256")]
    get_clients: Vec<usize>,
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Client tasks sharing one HTTP/2 connection (the same for both systems).
    #[arg(long, default_value_t = 16)]
    clients_per_conn: usize,
    /// Parent directory for both clusters' data (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the data directories and node logs.
    #[arg(long)]
    keep: bool,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "compare-etcd.json")]
    json: PathBuf,
    /// Also run a second cluster of this node recording core-event traces
    /// (compact, the node's defaults), interleaved with the others in every
    /// round: prints traced/untraced throughput, p99 and server CPU per
    /// operation, and the traces' bytes per operation.
    #[arg(long)]
    trace: bool,
    /// With --trace: validate the traced cluster's traces online while it
    /// runs (`raft-lab follow`, the code of `raft-interop validate
    /// --follow`, as a process of its own), and print
    /// after each of its cells how many events it had not yet validated
    /// when the load stopped and how long it took to catch up. The
    /// validator's CPU comes out of the traced cluster's share of the
    /// machine. A violation ends the comparison with the validator's report.
    #[arg(long)]
    follow: bool,
    /// Our nodes' snapshot_threshold: entries applied past the last
    /// snapshot before the next (default: the node's own, 100000, which is
    /// etcd's --snapshot-count default).
    #[arg(long, value_name = "ENTRIES")]
    snapshot_threshold: Option<u64>,
    /// Our nodes' log filter, written to node-<id>.log in the run's
    /// directory (keep it with --keep): `info` shows snapshots taken and
    /// leadership changes; warn, the default, keeps logging out of the
    /// figures.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    node_log_level: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OurApi {
    Native,
    Etcd,
    Both,
}

impl OurApi {
    fn apis(self) -> Vec<raft_lab::compare::load::Api> {
        use raft_lab::compare::load::Api;
        match self {
            OurApi::Native => vec![Api::Native],
            OurApi::Etcd => vec![Api::Etcd],
            OurApi::Both => vec![Api::Native, Api::Etcd],
        }
    }
}

/// Finds `name` on the PATH unless it already names a file.
fn resolve_binary(name: &std::path::Path) -> anyhow::Result<PathBuf> {
    if name.components().count() > 1 || name.is_file() {
        return Ok(name.to_owned());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} not found on the PATH (install etcd, e.g. `apt-get install etcd-server`, pass --etcd PATH, or --no-etcd)",
                name.display()
            )
        })
}

async fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let etcd_binary = if args.no_etcd {
        None
    } else {
        Some(resolve_binary(&args.etcd)?)
    };
    raft_lab::compare::run_and_print(raft_lab::compare::CompareOptions {
        ours_binary: std::env::current_exe()?,
        etcd_binary,
        our_apis: args.our_api.apis(),
        nodes: args.nodes,
        put_clients: args.put_clients,
        get_clients: args.get_clients,
        keys: args.keys,
        value_bytes: args.value_bytes,
        duration: args.duration,
        warmup: args.warmup,
        rounds: args.rounds,
        clients_per_conn: args.clients_per_conn,
        dir: args.dir,
        keep: args.keep,
        json: Some(args.json),
        trace: args.trace,
        follow: args.follow,
        snapshot_threshold: args.snapshot_threshold,
        node_log_level: args.node_log_level,
    })
    .await
    .map(drop)
}

async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let (listen_on_stdin, init) = (args.run.listen_on_stdin, args.run.init_mode());
    let mut config = args.run.config()?;
    if let Some(bug) = args.seeded_bug {
        seeded_bugs::enable(bug, &mut config);
    }
    run_node(config, listen_on_stdin, init).await
}

/// The node allocates and frees small blocks for every request (protobuf
/// messages, imbl nodes, log entries, h2 frames); glibc's malloc and free
/// were about 13 % of a loaded leader's profile (put x64, 2026-12-02).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Follow(args) = &cli.command {
        let options = raft_interop::follow::FollowOptions {
            grace: std::time::Duration::from_secs_f64(args.grace),
            progress: std::time::Duration::from_secs_f64(args.progress),
            metrics_file: args.metrics_file.clone(),
            ..Default::default()
        };
        return ExitCode::from(raft_interop::follow::run_command(&args.dirs, &options));
    }
    if let Command::Node(args) = &cli.command
        && let Some(namespace) = &args.netns
        && let Err(err) = raft_lab::chaos::netns::enter(namespace)
    {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let log_level = cli.log_level.clone();
    run_command(log_level.as_deref(), async move {
        match cli.command {
            Command::Chaos(args) => raft_lab::chaos::cli::run(args).await,
            Command::Compare(args) => run_compare(args).await,
            Command::Bench(args) => {
                bench::run(BenchOptions {
                    nodes: args.nodes,
                    requests: args.requests,
                    concurrency: args.clients,
                    value_bytes: args.value_bytes,
                    snapshot_keys: args.snapshot_keys,
                    dir: args.dir,
                    trace: args.trace,
                    trace_format: args.trace_format,
                    max_inflight: args.max_inflight,
                })
                .await
            }
            Command::Node(args) => node(*args).await,
            Command::Follow(_) => unreachable!("run before the runtime starts"),
        }
    })
}
