//! The `raft-node` command: run a node, a local cluster, a client, or the bench.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use raft_node::bench::{self, BenchOptions};
use raft_node::client::KvClient;
use raft_node::cluster::{self, ClusterOptions};
use raft_node::config::{self, FileConfig, NodeConfig};
use raft_node::server;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "raft-node",
    version,
    about = "A Raft key-value node driving the verified raft-model core"
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
    /// Run one node, from a TOML config file and/or flags (flags win).
    Run(RunArgs),
    /// Start an N-node cluster on loopback, one process per node.
    Cluster(ClusterArgs),
    /// Talk to a cluster: put, get, delete, cas, status.
    Client(ClientArgs),
    /// Measure put throughput and latency, and snapshot cost, on a loopback cluster.
    Bench(BenchArgs),
    /// Run the same closed-loop load against a 3-node cluster of this node
    /// and a 3-node etcd cluster on loopback; print a table, write JSON.
    Compare(CompareArgs),
    /// Run a cluster of node processes under injected faults (kill -9,
    /// partitions, one-way loss, pauses) with concurrent clients, and check
    /// the history for linearizability and durability.
    Chaos(raft_node::chaos::cli::ChaosArgs),
}

#[derive(Args)]
struct RunArgs {
    /// TOML config file (see the crate docs of `config` for its keys).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    cluster_id: Option<String>,
    /// This node's id (one of the members).
    #[arg(long)]
    id: Option<u64>,
    /// Address to bind (default: this node's member address).
    #[arg(long)]
    listen: Option<String>,
    /// A member, as ID=HOST:PORT; repeat for every member, this node included.
    #[arg(long = "peer", value_name = "ID=HOST:PORT")]
    peers: Vec<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Create the data directory if it does not exist (first start only).
    #[arg(long)]
    init: bool,
    /// Serve Prometheus metrics on this address.
    #[arg(long)]
    metrics: Option<String>,
    /// Election timeout range in milliseconds, as LOW,HIGH.
    #[arg(long, value_name = "LOW,HIGH")]
    election_timeout_ms: Option<String>,
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Compact the log once this many entries are applied past the last snapshot.
    #[arg(long)]
    snapshot_threshold: Option<u64>,
    /// Record every core event to DIR/node-<id>.jsonl (format raft-trace/2), for
    /// `raft-interop validate DIR` to replay through the model. Low overhead:
    /// one JSON line per event, one write per batch, no fsync.
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    #[command(flatten)]
    tls: raft_node::tls::TlsArgs,
    /// Testing the chaos harness only (hidden): break the node on purpose.
    #[arg(long, hide = true, value_name = "NAME")]
    seeded_bug: Option<String>,
}

#[derive(Args)]
struct ClusterArgs {
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Node i listens on base-port + i - 1.
    #[arg(long, default_value_t = 7001)]
    base_port: u16,
    /// Node i serves metrics on metrics-base-port + i - 1 (default: none).
    #[arg(long)]
    metrics_base_port: Option<u16>,
    /// Where configs, data directories and logs go.
    #[arg(long, default_value = "raft-cluster")]
    dir: PathBuf,
    #[arg(long, default_value = "local")]
    cluster_id: String,
    #[arg(long)]
    snapshot_threshold: Option<u64>,
    /// Every node records its core events to DIR/node-<id>.jsonl (see `run --trace-dir`).
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ClientArgs {
    /// The cluster's nodes, comma-separated HOST:PORT; any node will do.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    #[command(flatten)]
    tls: raft_node::tls::TlsArgs,
    #[command(subcommand)]
    op: ClientOp,
}

#[derive(Subcommand)]
enum ClientOp {
    Put {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    Delete {
        key: String,
    },
    /// Compare-and-swap: set KEY to --new if it currently is --expected.
    Cas {
        key: String,
        /// The value expected now (omit: the key must not exist).
        #[arg(long)]
        expected: Option<String>,
        /// The value to store (omit: delete the key).
        #[arg(long = "new")]
        new_value: Option<String>,
    },
    /// Every endpoint's status (id, role, term, leader, commit and applied index, members).
    Status,
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
}

#[derive(Args)]
struct CompareArgs {
    /// The etcd binary (default: `etcd` on the PATH).
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Measure this node only (no etcd needed).
    #[arg(long)]
    no_etcd: bool,
    /// Measured time per cell and round, e.g. 10s, 500ms.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Unmeasured time before each cell's measurement.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: std::time::Duration,
    /// Rounds per cell: ours, etcd, ours, etcd... merged per system.
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
    raft_node::compare::run_and_print(raft_node::compare::CompareOptions {
        ours_binary: std::env::current_exe()?,
        etcd_binary,
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
    })
    .await
    .map(drop)
}

fn init_logging(level: Option<&str>) {
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("RAFT_LOG").ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: `cluster` sends node logs to files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run_config(args: RunArgs) -> anyhow::Result<NodeConfig> {
    let base = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let members = if args.peers.is_empty() {
        None
    } else {
        Some(
            args.peers
                .iter()
                .map(|text| config::parse_member(text))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    let election_timeout_ms = args
        .election_timeout_ms
        .as_deref()
        .map(|text| {
            let parts: Vec<&str> = text.split(',').collect();
            match parts.as_slice() {
                [low, high] => Ok([low.trim().parse()?, high.trim().parse()?]),
                _ => anyhow::bail!("--election-timeout-ms takes LOW,HIGH, e.g. 300,600"),
            }
        })
        .transpose()?;
    let seeded_bug = args
        .seeded_bug
        .as_deref()
        .map(raft_node::seeded_bug::enable)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let flags = FileConfig {
        cluster_id: args.cluster_id,
        id: args.id,
        listen: args.listen,
        data_dir: args.data_dir,
        init: args.init.then_some(true),
        metrics: args.metrics,
        election_timeout_ms,
        heartbeat_ms: args.heartbeat_ms,
        snapshot_threshold: args.snapshot_threshold,
        max_append_entries: None,
        trace_dir: args.trace_dir,
        tls_cert: args.tls.tls_cert,
        tls_key: args.tls.tls_key,
        tls_ca: args.tls.tls_ca,
        members,
    };
    let mut config = NodeConfig::from_file_config(base.merge(flags))?;
    config.seeded_bug = seeded_bug;
    Ok(config)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run_node(args: RunArgs) -> anyhow::Result<()> {
    let config = run_config(args)?;
    if let Some(address) = config.metrics {
        raft_node::metrics::install(address)?;
    }
    let listener = server::bind(&config).await?;
    let node = server::start(config, listener).await?;
    node.run_until(shutdown_signal()).await
}

async fn run_client(args: ClientArgs) -> anyhow::Result<()> {
    let mut client = KvClient::new(args.endpoints)?.with_tls(args.tls.load()?);
    let show = |value: Option<&String>| value.map_or("(none)".to_owned(), |v| format!("{v:?}"));
    match args.op {
        ClientOp::Put { key, value } => {
            let response = client.put(&key, &value).await?;
            println!(
                "OK (index {}; previous value {})",
                response.index,
                show(response.previous.as_ref())
            );
        }
        ClientOp::Get { key } => {
            let response = client.get(&key).await?;
            match response.value {
                Some(value) => println!("{value}"),
                None => {
                    eprintln!("(not found)");
                    anyhow::bail!("key {key:?} not found");
                }
            }
        }
        ClientOp::Delete { key } => {
            let response = client.delete(&key).await?;
            println!(
                "OK (index {}; previous value {})",
                response.index,
                show(response.previous.as_ref())
            );
        }
        ClientOp::Cas {
            key,
            expected,
            new_value,
        } => {
            let response = client
                .cas(&key, expected.as_deref(), new_value.as_deref())
                .await?;
            if response.succeeded {
                println!(
                    "OK (index {}; previous value {})",
                    response.index,
                    show(response.previous.as_ref())
                );
            } else {
                println!(
                    "FAILED: the current value is {}",
                    show(response.previous.as_ref())
                );
                anyhow::bail!("compare-and-swap failed");
            }
        }
        ClientOp::Status => {
            println!(
                "{:<22} {:>4} {:<10} {:>6} {:>7} {:>8} {:>8} members",
                "endpoint", "id", "role", "term", "leader", "commit", "applied"
            );
            for endpoint in client.endpoints().to_vec() {
                match client.status_of(&endpoint).await {
                    Ok(s) => println!(
                        "{:<22} {:>4} {:<10} {:>6} {:>7} {:>8} {:>8} {}",
                        endpoint,
                        s.id,
                        s.role,
                        s.term,
                        if s.leader_id == 0 {
                            "-".to_owned()
                        } else {
                            s.leader_id.to_string()
                        },
                        s.commit_index,
                        s.applied_index,
                        s.members
                            .iter()
                            .map(|m| format!("{}={}", m.id, m.address))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    Err(err) => println!("{endpoint:<22} unreachable: {err}"),
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run_node(args).await,
            Command::Cluster(args) => {
                cluster::run(ClusterOptions {
                    nodes: args.nodes,
                    host: args.host,
                    base_port: args.base_port,
                    metrics_base_port: args.metrics_base_port,
                    dir: args.dir,
                    cluster_id: args.cluster_id,
                    log_level: cli.log_level.clone(),
                    snapshot_threshold: args.snapshot_threshold,
                    trace_dir: args.trace_dir,
                })
                .await
            }
            Command::Client(args) => run_client(args).await,
            Command::Bench(args) => {
                bench::run(BenchOptions {
                    nodes: args.nodes,
                    requests: args.requests,
                    concurrency: args.clients,
                    value_bytes: args.value_bytes,
                    snapshot_keys: args.snapshot_keys,
                    dir: args.dir,
                    trace: args.trace,
                })
                .await
            }
            Command::Compare(args) => run_compare(args).await,
            Command::Chaos(args) => raft_node::chaos::cli::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
