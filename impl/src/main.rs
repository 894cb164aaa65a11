//! The `raft-node` command: run a node, a local cluster, or a client. (The
//! chaos harness, the etcd comparison and the bench are the lab's:
//! `raft-lab`, in impl/lab.)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use raft_node::cli::{InitArgs, InitMode, RunArgs, init_node, run_command, run_node};
use raft_node::client::KvClient;
use raft_node::cluster::{self, ClusterOptions};

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
    /// Run one node, from a TOML config file and/or flags (flags win). Its
    /// data directory must have been initialised (`raft-node init`, or
    /// `--init` at its first start); a missing or empty one is refused.
    Run(RunArgs),
    /// Initialise a new node's data directory, once, before its first start:
    /// creates it, records the cluster id, node id, members and a random
    /// incarnation, and exits. Refused if the directory is already
    /// initialised. A node whose data directory was lost must not be
    /// initialised again as the same member: remove it from the cluster
    /// (`client member remove`) and add a new server with a new id (`init
    /// --join`, then `client member add`).
    Init(InitArgs),
    /// Start an N-node cluster on loopback, one process per node, or restart
    /// the one in --dir; `cluster add` and `cluster remove` add and remove
    /// nodes of a running one.
    Cluster(ClusterArgs),
    /// Talk to a cluster: put, get, delete, cas, status.
    Client(ClientArgs),
}

/// `raft-node cluster [FLAGS]` starts (or restarts) a cluster; `raft-node
/// cluster add|remove` changes a running one.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ClusterArgs {
    #[command(subcommand)]
    op: Option<ClusterOp>,
    #[command(flatten)]
    start: ClusterStartArgs,
}

#[derive(Subcommand)]
enum ClusterOp {
    /// Add a node to the running cluster of --dir (as a learner, then
    /// promoted to voter).
    ///
    /// Picks the next id and a port, writes its config and data directory (initialised to join),
    /// starts it in the background with its log in --dir, adds it as a
    /// learner and promotes it to voter once it has caught up. Run it while
    /// `raft-node cluster --dir DIR` runs (in another terminal), or after
    /// it was restarted; from then on `cluster` starts the node with the
    /// others. With --id N, resumes an add that stopped half-way.
    Add(ClusterAddArgs),
    /// Remove a node from the running cluster of --dir, stop it and archive
    /// its files.
    ///
    /// The membership change first (it answers once committed; a removed leader steps
    /// down), then the node's process is stopped and its data directory,
    /// config and log are archived in DIR/removed/node-N (kept, never
    /// started again; the id is never reused). Also undoes an add that
    /// stopped half-way.
    Remove(ClusterRemoveArgs),
}

#[derive(Args)]
struct ClusterAddArgs {
    /// The cluster's directory, as given to `raft-node cluster --dir`.
    #[arg(long, default_value = "raft-cluster")]
    dir: PathBuf,
    /// Leave the node a learner (a non-voting member: it receives the log
    /// and counts in no quorum) instead of promoting it to voter. Promote it
    /// later with `cluster add --id N` (without --as-learner).
    #[arg(long)]
    as_learner: bool,
    /// Resume adding node N, which an earlier `cluster add` recorded but did
    /// not finish (it is started if it is not running, added as a learner if
    /// it is not one, then promoted); or give a new node this id (never one
    /// used before in this directory). Default: the next id never used.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    id: Option<u64>,
    /// The new node's port on the cluster's host (0: one the OS picks).
    /// Default: base-port + id - 1, as `cluster` chose the others' (a port
    /// the OS picks if the cluster was made with --base-port 0).
    #[arg(long)]
    port: Option<u16>,
    /// How long to wait for a leader, and for the new node to serve (e.g.
    /// 10s, 1m). The membership changes themselves may take up to a minute
    /// more (a node catching up).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    timeout: std::time::Duration,
}

#[derive(Args)]
struct ClusterRemoveArgs {
    /// The cluster's directory, as given to `raft-node cluster --dir`.
    #[arg(long, default_value = "raft-cluster")]
    dir: PathBuf,
    /// The node to remove (`raft-node client member list` shows the members).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    id: u64,
    /// How long to wait for a leader (e.g. 10s, 1m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    timeout: std::time::Duration,
}

/// The flags that shape a new cluster (--nodes, --host, --base-port,
/// --metrics-base-port, --cluster-id) apply when --dir holds no cluster yet;
/// a directory that holds one is restarted as it records (its current
/// nodes, at their addresses), and such a flag that disagrees is refused.
#[derive(Args)]
struct ClusterStartArgs {
    /// How many nodes (processes) a new cluster has [default: 3].
    #[arg(long)]
    nodes: Option<u64>,
    /// The loopback address every node listens on [default: 127.0.0.1].
    #[arg(long)]
    host: Option<String>,
    /// Node i listens on base-port + i - 1; 0: on ports the OS picks
    /// (`cluster` prints them, and the client command that uses them)
    /// [default: 7001].
    ///
    /// `cluster` binds every port itself and hands each node its socket, so
    /// no other program can take a port between its check and the node
    /// serving it; after that the port is the node's. A node you kill frees
    /// its port, and restarting it (`run --config`) binds that port again:
    /// if another program took it meanwhile (more likely with 0, whose ports
    /// come from the range the OS also gives outgoing connections), the node
    /// stops with "cannot listen". A restarted cluster uses the ports it
    /// recorded: they are in its replicated configuration.
    #[arg(long)]
    base_port: Option<u16>,
    /// Node i serves metrics on metrics-base-port + i - 1 (default: none).
    ///
    /// The nodes bind these ports themselves: `cluster` checks them free
    /// first, and a node whose metrics port was taken in between stops with
    /// an error. 0 is not accepted.
    #[arg(long)]
    metrics_base_port: Option<u16>,
    /// Where configs, data directories, logs and the cluster's record
    /// (cluster.toml) go.
    #[arg(long, default_value = "raft-cluster")]
    dir: PathBuf,
    /// The cluster's name (see `run --cluster-id`) [default: local].
    #[arg(long)]
    cluster_id: Option<String>,
    /// Compact a node's log once this many entries are applied past its
    /// last snapshot (see `run --snapshot-threshold`).
    #[arg(long)]
    snapshot_threshold: Option<u64>,
    /// Every node records its core events to DIR/node-<id>.jsonl (see `run --trace-dir`).
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ClientArgs {
    /// The cluster's nodes, comma-separated HOST:PORT; any node will do.
    /// Accepted before or after the command.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        value_parser = parse_endpoint,
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    /// How long one operation may take, retries and redirects included
    /// (e.g. 500ms, 5s, 1m). Accepted before or after the command.
    #[arg(long, global = true, value_parser = humantime::parse_duration, default_value = "15s")]
    timeout: std::time::Duration,
    #[command(flatten)]
    tls: raft_node::tls::TlsArgs,
    #[command(subcommand)]
    op: ClientOp,
}

#[derive(Subcommand)]
enum ClientOp {
    /// Set KEY to VALUE (exactly once, even if retried); prints the previous value.
    Put { key: String, value: String },
    /// Print KEY's value: a linearizable read (ReadIndex at the leader).
    /// Exits with failure if the key does not exist.
    Get { key: String },
    /// Remove KEY; prints the previous value.
    Delete { key: String },
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
    /// Every endpoint's status (id, role, term, leader, commit and applied
    /// index, members); exits with failure if any endpoint is unreachable.
    Status,
    /// Move leadership to another member, e.g. before taking the leader down
    /// for maintenance. The leader refuses writes while it brings the target
    /// up to date and tells it to campaign; answers once the new leader is
    /// known, or fails if the target has not taken over within an election
    /// timeout (the old leader then accepts writes again).
    TransferLeader {
        /// The id of the member that should lead.
        #[arg(long, required_unless_present = "away", conflicts_with = "away")]
        to: Option<u64>,
        /// Instead of --to: if the node at the first endpoint leads, move
        /// leadership to the member whose applied index is highest among
        /// the others that answer; if it does not lead, do nothing. For a
        /// node about to stop (a Kubernetes pre-stop hook, a service
        /// manager's stop command).
        #[arg(long)]
        away: bool,
    },
    /// Membership: list the voters, add or remove one (each change goes
    /// through the joint configuration and answers once it has committed).
    Member {
        #[command(subcommand)]
        op: raft_node::member_cli::MemberOp,
    },
    /// Backups: `snapshot save FILE` writes a consistent snapshot of the
    /// cluster's data, taken by the leader; `raft-node init --restore FILE`
    /// seeds a new cluster from it.
    Snapshot {
        #[command(subcommand)]
        op: SnapshotOp,
    },
    /// Every endpoint's gRPC health, SERVING only with a leader heard from
    /// within an election timeout (for the leader: a quorum heard), and why;
    /// exits with failure unless every endpoint is SERVING.
    Health,
}

#[derive(Subcommand)]
enum SnapshotOp {
    /// Write a consistent snapshot (every write acknowledged before the
    /// command started is in it) to FILE: fetched from the leader through
    /// any endpoint, checked, fsynced, then renamed into place. An existing
    /// FILE is refused.
    Save { file: PathBuf },
}

async fn run_client(args: ClientArgs) -> anyhow::Result<()> {
    let mut client = KvClient::new(args.endpoints)?
        .with_tls(args.tls.load()?)
        .failing_when_all_refuse();
    client.op_timeout = args.timeout;
    client.rpc_timeout = client.rpc_timeout.min(args.timeout);
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
        ClientOp::Health => {
            let mut unhealthy = 0;
            for endpoint in client.endpoints().to_vec() {
                match client.health_of(&endpoint).await {
                    Ok(health) => {
                        if !health.serving {
                            unhealthy += 1;
                        }
                        let reason = health.reason.unwrap_or_else(|| "(no status)".to_owned());
                        println!("{endpoint:<22} {:<12} {reason}", health.status);
                    }
                    Err(err) => {
                        unhealthy += 1;
                        println!("{endpoint:<22} {:<12} {err}", "UNREACHABLE");
                    }
                }
            }
            if unhealthy > 0 {
                anyhow::bail!(
                    "{unhealthy} of {} endpoints not serving",
                    client.endpoints().len()
                );
            }
        }
        ClientOp::TransferLeader { to, away } => {
            let to = match to {
                Some(to) => to,
                None => {
                    debug_assert!(away, "clap requires --to or --away");
                    match successor(&mut client).await? {
                        Some(to) => to,
                        None => return Ok(()),
                    }
                }
            };
            let started = std::time::Instant::now();
            let moved = client.transfer_leader(to).await?;
            println!(
                "OK: node {} at {} leads term {} ({} ms)",
                moved.leader_id,
                moved.leader_address,
                moved.term,
                started.elapsed().as_millis()
            );
            if moved.leader_id != to {
                anyhow::bail!(
                    "node {to} did not take over: node {} won the election",
                    moved.leader_id
                );
            }
        }
        ClientOp::Snapshot {
            op: SnapshotOp::Save { file },
        } => println!("{}", raft_node::backup::save(&mut client, &file).await?),
        ClientOp::Member { op } => raft_node::member_cli::run(&mut client, op).await?,
        ClientOp::Status => {
            println!(
                "{:<22} {:>4} {:<10} {:>6} {:>7} {:>8} {:>8} members",
                "endpoint", "id", "role", "term", "leader", "commit", "applied"
            );
            let mut unreachable = 0;
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
                    Err(err) => {
                        unreachable += 1;
                        println!("{endpoint:<22} unreachable: {err}");
                    }
                }
            }
            if unreachable > 0 {
                anyhow::bail!(
                    "{unreachable} of {} endpoints unreachable",
                    client.endpoints().len()
                );
            }
        }
    }
    Ok(())
}

/// For `transfer-leader --away`: None if the first endpoint's node is not
/// the leader (nothing to do); else the other member with the highest
/// applied index among those that answer (the quickest to catch up).
async fn successor(client: &mut KvClient) -> anyhow::Result<Option<u64>> {
    let endpoints = client.endpoints().to_vec();
    let here = client.status_of(&endpoints[0]).await?;
    if here.role != "leader" {
        println!(
            "node {} is not the leader (it is {}): nothing to move",
            here.id, here.role
        );
        return Ok(None);
    }
    let mut best: Option<(u64, u64)> = None;
    for member in here.members.iter().filter(|m| m.id != here.id) {
        if let Ok(status) = client.status_of(&member.address).await
            && best.is_none_or(|(applied, _)| status.applied_index > applied)
        {
            best = Some((status.applied_index, member.id));
        }
    }
    match best {
        Some((_, id)) => Ok(Some(id)),
        None => anyhow::bail!(
            "node {} leads, but no other member answers: leadership cannot move",
            here.id
        ),
    }
}

/// An endpoint as HOST:PORT, checked before anything is sent, so that a typo
/// fails at once with what was wrong rather than after the timeout.
fn parse_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT (no port)"))?;
    if host.is_empty() {
        return Err(format!("{text:?} is not HOST:PORT (no host)"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "{text:?} is not HOST:PORT (the port must be 1 to 65535)"
        )),
        Ok(_) => Ok(text.to_owned()),
    }
}

/// The node allocates and frees small blocks for every request (protobuf
/// messages, imbl nodes, log entries, h2 frames); glibc's malloc and free
/// were about 13 % of a loaded leader's profile (put x64, 2026-12-02).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_level = cli.log_level.clone();
    run_command(log_level.as_deref(), async move {
        match cli.command {
            Command::Run(args) => {
                let (listen_on_stdin, init) = (args.listen_on_stdin, args.init_mode());
                match args.config() {
                    Ok(config) => run_node(config, listen_on_stdin, init).await,
                    Err(err) => Err(err),
                }
            }
            Command::Init(args) => {
                if let Some(file) = &args.restore {
                    return raft_node::cli::restore_node(&args.settings.config()?, file);
                }
                let mode = if args.join {
                    InitMode::Join
                } else {
                    InitMode::Bootstrap
                };
                init_node(&args.settings.config()?, mode)
            }
            Command::Cluster(ClusterArgs {
                op: Some(ClusterOp::Add(args)),
                ..
            }) => {
                cluster::change::add(cluster::change::AddOptions {
                    dir: args.dir,
                    id: args.id,
                    port: args.port,
                    as_learner: args.as_learner,
                    timeout: args.timeout,
                    log_level: cli.log_level.clone(),
                })
                .await
            }
            Command::Cluster(ClusterArgs {
                op: Some(ClusterOp::Remove(args)),
                ..
            }) => {
                cluster::change::remove(cluster::change::RemoveOptions {
                    dir: args.dir,
                    id: args.id,
                    timeout: args.timeout,
                })
                .await
            }
            Command::Cluster(ClusterArgs {
                op: None,
                start: args,
            }) => {
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
        }
    })
}
