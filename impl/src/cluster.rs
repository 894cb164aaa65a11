//! `raft-node cluster`: N nodes on loopback, one child process each, in one
//! command — the README's quick start. Each node gets a TOML config, a data
//! directory and a log file under `--dir`; killing one process (e.g. the
//! leader's) leaves the others running, and running the command again on the
//! same directory restarts the nodes from their data. `cluster add` and
//! `cluster remove` ([`change`]) add and remove nodes of the running cluster.
//!
//! **The directory records its nodes** ([`record`]): `DIR/cluster.toml`
//! lists every node it ever had, with its address, whether it founded the
//! cluster or was added, and whether it was removed; `DIR/node-<id>.pid` the
//! process of each node. `cluster` starts exactly the nodes recorded and not
//! removed — founders and added nodes alike — at their recorded addresses
//! (which the cluster's replicated configuration holds, so they must not
//! move), and stops every one of them, added ones included, at Ctrl-C.
//!
//! **Data directories are initialised once.** A new cluster (no cluster
//! file) has every founder's data directory initialised (as `raft-node init`
//! does) before the nodes start; a node added later is initialised to join
//! (`cluster add`). At a restart, a node whose data directory is gone is not
//! started: its data was lost, and it must not come back as the same member,
//! empty (it could vote twice in a term); `cluster` starts the others and
//! says how to replace it (`cluster remove`, then `cluster add`). A directory
//! made before the cluster file existed is read as before: when some of its
//! nodes have data and others do not, `cluster` refuses and says how to start
//! over. The configs it writes have no `init` key, so the restart command it
//! prints for a killed node (`raft-node run --config FILE`) refuses to start
//! a node whose data directory is gone.
//!
//! Ports: `cluster` binds each node's port itself (`--base-port` and the
//! ports after it, or with `--base-port 0` ports the OS picks; at a restart,
//! the recorded ones) before writing any configuration, and hands the node
//! its socket as it starts (the launcher's `--listen-on-stdin`), so no other
//! program can take a port between its being chosen and the node serving it.
//! Then it lets go of its copy: the port is the node's, and a node killed and
//! restarted by hand binds it again like any node. The metrics ports
//! (`--metrics-base-port`) are bound by the nodes themselves: they are only
//! checked free first.

pub mod change;
pub mod record;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use raft_model::NodeId;

use crate::config::{FileConfig, Member, NodeConfig};
use crate::launch::{Launch, NodeProcess};
use record::{ClusterRecord, NodeRecord};

/// How long `cluster` waits for each node to serve before printing its hints.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub const DEFAULT_NODES: u64 = 3;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_BASE_PORT: u16 = 7001;
pub const DEFAULT_CLUSTER_ID: &str = "local";

/// `cluster`'s flags. Those that shape a new cluster (`nodes`, `host`,
/// `base_port`, `metrics_base_port`, `cluster_id`) are None when not given:
/// a directory that records a cluster already is restarted as recorded, and
/// a flag given that contradicts the record is refused.
pub struct ClusterOptions {
    pub nodes: Option<u64>,
    pub host: Option<String>,
    /// Node i's port is base_port + i - 1; 0: ports the OS picks.
    pub base_port: Option<u16>,
    pub metrics_base_port: Option<u16>,
    pub dir: PathBuf,
    pub cluster_id: Option<String>,
    pub log_level: Option<String>,
    pub snapshot_threshold: Option<u64>,
    /// Where the nodes record their core events (one file per node), if anywhere.
    pub trace_dir: Option<PathBuf>,
}

pub(crate) fn check_port_free(address: SocketAddr, what: &str) -> anyhow::Result<()> {
    TcpListener::bind(address)
        .map(drop)
        .with_context(|| format!("{what} port {address} is not free (port in use?)"))
}

/// Port `base + id - 1`, or an error naming the flag if it runs past 65535.
pub(crate) fn nth_port(flag: &str, base: u16, id: u64) -> anyhow::Result<u16> {
    u16::try_from(u64::from(base) + id - 1)
        .map_err(|_| anyhow::anyhow!("{flag} {base} with node {id} runs past port 65535"))
}

/// The flags' own errors for a new cluster of `nodes` nodes, before anything
/// is bound or written (so that a range running past 65535 is refused as
/// such, not as a port in use on the way).
fn check_options(nodes: u64, base_port: u16, metrics_base_port: Option<u16>) -> anyhow::Result<()> {
    if nodes == 0 || nodes > 99 {
        anyhow::bail!("--nodes must be between 1 and 99");
    }
    if base_port != 0 {
        nth_port("--base-port", base_port, nodes)?;
    }
    match metrics_base_port {
        // The nodes bind their metrics ports themselves: `cluster` could not
        // learn a port the OS picked for a node.
        Some(0) => anyhow::bail!("--metrics-base-port must be a port, not 0"),
        Some(base) => {
            nth_port("--metrics-base-port", base, nodes)?;
        }
        None => {}
    }
    Ok(())
}

/// A new cluster's record, from the flags, its nodes' sockets bound (on
/// `host` at base-port + i - 1, or with `--base-port 0` on ports the OS
/// picks). `cluster` hands each node its socket ([`Launch::listener`]), so
/// no port is free between being chosen (or checked) and being served.
fn create(options: &ClusterOptions) -> anyhow::Result<(ClusterRecord, Vec<Arc<TcpListener>>)> {
    let nodes = options.nodes.unwrap_or(DEFAULT_NODES);
    let base_port = options.base_port.unwrap_or(DEFAULT_BASE_PORT);
    let host = options.host.clone().unwrap_or_else(|| DEFAULT_HOST.into());
    check_options(nodes, base_port, options.metrics_base_port)?;
    let mut listeners = Vec::new();
    let mut records = Vec::new();
    for id in 1..=nodes {
        let port = match base_port {
            0 => 0,
            base => nth_port("--base-port", base, id)?,
        };
        let listener = TcpListener::bind((host.as_str(), port)).with_context(|| {
            if port == 0 {
                format!("cannot bind a port for node {id} on {host}")
            } else {
                format!("node {id}'s gRPC port {host}:{port} is not free (port in use?)")
            }
        })?;
        let metrics = options
            .metrics_base_port
            .map(|base| nth_port("--metrics-base-port", base, id))
            .transpose()?
            .map(|port| format!("{host}:{port}"));
        records.push(NodeRecord {
            id,
            // The host as given (a name stays a name), the port as bound.
            address: format!("{host}:{}", listener.local_addr()?.port()),
            metrics,
            founder: true,
            removed: false,
            archived: None,
        });
        listeners.push(Arc::new(listener));
    }
    let record = ClusterRecord {
        cluster_id: options
            .cluster_id
            .clone()
            .unwrap_or_else(|| DEFAULT_CLUSTER_ID.into()),
        host,
        base_port,
        metrics_base_port: options.metrics_base_port,
        snapshot_threshold: options.snapshot_threshold,
        trace_dir: options
            .trace_dir
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        nodes: records,
    };
    Ok((record, listeners))
}

/// A recorded cluster, restarted: the flags that shape a new cluster must
/// agree with the record if given; the others apply from now on (and to
/// nodes added later).
fn reopen(
    options: &ClusterOptions,
    mut record: ClusterRecord,
    dir: &Path,
) -> anyhow::Result<ClusterRecord> {
    let active = record.active().count() as u64;
    let mut conflicts = Vec::new();
    if let Some(nodes) = options.nodes
        && nodes != active
    {
        conflicts.push(format!(
            "--nodes {nodes} (it has {active}: {})",
            record.describe_nodes()
        ));
    }
    if let Some(host) = &options.host
        && *host != record.host
    {
        conflicts.push(format!(
            "--host {host} (its nodes listen on {})",
            record.host
        ));
    }
    if let Some(base) = options.base_port
        && base != record.base_port
    {
        conflicts.push(format!(
            "--base-port {base} (it was created with {})",
            record.base_port
        ));
    }
    if let Some(cluster_id) = &options.cluster_id
        && *cluster_id != record.cluster_id
    {
        conflicts.push(format!(
            "--cluster-id {cluster_id} (it is {:?})",
            record.cluster_id
        ));
    }
    if options.metrics_base_port.is_some() && options.metrics_base_port != record.metrics_base_port
    {
        conflicts.push(format!(
            "--metrics-base-port (it was created with {})",
            record
                .metrics_base_port
                .map_or("none".to_owned(), |port| port.to_string())
        ));
    }
    if !conflicts.is_empty() {
        anyhow::bail!(
            "{} holds a cluster already ({}), which does not match {}. These flags shape a new \
             cluster only: to restart this one, run `raft-node cluster --dir {}` without them \
             (nodes are added and removed with `raft-node cluster add|remove`); to create \
             another, give another --dir",
            dir.display(),
            dir.join(record::FILE).display(),
            conflicts.join(", "),
            dir.display()
        );
    }
    record.snapshot_threshold = options.snapshot_threshold;
    record.trace_dir = options
        .trace_dir
        .as_deref()
        .map(std::path::absolute)
        .transpose()?;
    Ok(record)
}

/// Binds recorded node `node`'s address again (it must not move: the
/// cluster's replicated configuration holds it).
pub(crate) fn bind_recorded(node: &NodeRecord, dir: &Path) -> anyhow::Result<Arc<TcpListener>> {
    TcpListener::bind(node.address.as_str())
        .map(Arc::new)
        .map_err(|err| {
            let why = match record::running_pid(dir, node.id) {
                Some(pid) => format!(
                    "node {} is still running (pid {pid}): stop it first (`kill {pid}`), or leave \
                     the cluster running as it is",
                    node.id
                ),
                None => format!(
                    "stop the program that holds it (`ss -ltnp | grep {}` shows which). The \
                     address is in the cluster's replicated configuration, so node {} cannot \
                     move to another port",
                    node.address.rsplit(':').next().unwrap_or(""),
                    node.id
                ),
            };
            anyhow::anyhow!(
                "node {}'s gRPC port {} is not free ({err}): {why}",
                node.id,
                node.address
            )
        })
}

/// How to start recorded node `node` of `record`: its config (written to
/// `DIR/node-<id>.toml` at every start) and its log file. A founder's config
/// names every founder (its data directory records them: they are its log's
/// starting configuration); an added node's names only itself (it was
/// initialised to join: the leader brings it the configuration and the
/// addresses).
pub(crate) fn launch_of(
    record: &ClusterRecord,
    node: &NodeRecord,
    dir: &Path,
    exe: &Path,
    log_level: Option<&str>,
) -> Launch {
    let members: Vec<Member> = if node.founder {
        record
            .nodes
            .iter()
            .filter(|other| other.founder)
            .map(|other| Member {
                id: other.id,
                address: other.address.clone(),
            })
            .collect()
    } else {
        vec![Member {
            id: node.id,
            address: node.address.clone(),
        }]
    };
    let file = FileConfig {
        cluster_id: Some(record.cluster_id.clone()),
        id: Some(node.id),
        listen: None,
        data_dir: Some(record::data_dir(dir, node.id)),
        metrics: node.metrics.clone(),
        snapshot_threshold: record.snapshot_threshold,
        trace_dir: record.trace_dir.clone(),
        members: Some(members),
        ..FileConfig::default()
    };
    // The nodes are independent processes: they outlive this command if it
    // dies; Ctrl-C stops them explicitly.
    let mut launch = Launch::new(exe, "run", file, &record::config_path(dir, node.id))
        .log_to(&record::log_path(dir, node.id))
        .kill_on_drop(false);
    launch.log_level = log_level.map(str::to_owned);
    launch
}

/// Writes `launch`'s config (validated exactly as `run` will) and checks it
/// against the socket bound for it and its metrics port.
pub(crate) fn write_config(launch: &Launch, listener: &TcpListener) -> anyhow::Result<NodeConfig> {
    let config = launch.write_config()?;
    let bound = listener.local_addr()?;
    // The node refuses a socket bound elsewhere than its listen address
    // (resolved from the member address): say so here, not in its log.
    if config.listen != bound {
        anyhow::bail!(
            "node {}'s address {} resolves to {}, but its socket was bound to {bound}: give \
             --host as an IP address",
            config.id,
            config.members[&config.id],
            config.listen
        );
    }
    if let Some(metrics) = config.metrics {
        check_port_free(metrics, &format!("node {}'s metrics", config.id))?;
    }
    Ok(config)
}

/// What `cluster` starts: the record (saved), and a launch per node that
/// has its data, holding its socket.
struct Prepared {
    record: ClusterRecord,
    launches: Vec<Launch>,
    /// Recorded nodes not started because their data directory is gone.
    lost: Vec<NodeId>,
}

/// Binds the nodes' sockets, writes one config file per node under `dir`
/// (validated exactly as `run` will, its metrics port checked free),
/// initialises the nodes' data directories if the cluster is new (see the
/// module docs), records the cluster, and returns the launches.
fn prepare(options: &ClusterOptions, dir: &Path, exe: &Path) -> anyhow::Result<Prepared> {
    let (record, starting, listeners, lost, new) = match ClusterRecord::load(dir)? {
        Some(recorded) => {
            let record = reopen(options, recorded, dir)?;
            // A node whose data directory is gone is not started (see the
            // module docs), and its port is not bound.
            let (starting, lost): (Vec<NodeId>, Vec<NodeId>) = record
                .active()
                .map(|node| node.id)
                .partition(|id| record::data_dir(dir, *id).exists());
            if starting.is_empty() {
                anyhow::bail!(
                    "no node recorded in {} has its data directory any more (the nodes were \
                     {}): the cluster's data is gone. Start over: remove {} (or use another \
                     --dir) and run `raft-node cluster` again",
                    dir.join(record::FILE).display(),
                    record.describe_nodes(),
                    dir.display()
                );
            }
            let listeners = record
                .active()
                .filter(|node| starting.contains(&node.id))
                .map(|node| bind_recorded(node, dir))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (record, starting, listeners, lost, false)
        }
        None => {
            let (record, listeners) = create(options)?;
            let starting = record.active().map(|node| node.id).collect();
            (record, starting, listeners, Vec::new(), true)
        }
    };
    let mut launches = Vec::new();
    let mut configs = Vec::new();
    let nodes = record.active().filter(|node| starting.contains(&node.id));
    for (node, listener) in nodes.zip(&listeners) {
        let launch = launch_of(&record, node, dir, exe, options.log_level.as_deref())
            .listener(listener.clone());
        configs.push(write_config(&launch, listener)?);
        launches.push(launch);
    }
    if new {
        // Also a directory of an older version, without a cluster file.
        init_if_new(&configs, dir)?;
    }
    record.save(dir)?;
    Ok(Prepared {
        record,
        launches,
        lost,
    })
}

/// Initialises every node's data directory if none exists (a new cluster);
/// does nothing if every one exists (a restart of a directory without a
/// cluster file: each node checks its own); refuses if only some exist (see
/// the module docs).
fn init_if_new(configs: &[NodeConfig], dir: &Path) -> anyhow::Result<()> {
    let (present, missing): (Vec<&NodeConfig>, Vec<&NodeConfig>) =
        configs.iter().partition(|config| config.data_dir.exists());
    if missing.is_empty() {
        return Ok(());
    }
    if !present.is_empty() {
        let ids = |nodes: &[&NodeConfig]| {
            nodes
                .iter()
                .map(|config| config.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        anyhow::bail!(
            "node {} has no data directory ({}), while node {} has one: its data was lost. A node \
             whose data was lost must not rejoin as the same member: starting afresh at term 0 \
             with an empty log, it could vote a second time in a term it already voted in. \
             Replace it as a new member instead (`raft-node client member remove --id N`, then \
             a server initialised with `raft-node init --join` under a new id, added with \
             `raft-node client member add`), or re-create the cluster: stop every node, then \
             remove {} (or use another --dir) and run `cluster` again",
            ids(&missing),
            missing[0].data_dir.display(),
            ids(&present),
            dir.display()
        );
    }
    for config in configs {
        crate::server::init_data_dir(config).with_context(|| {
            format!(
                "cannot initialise node {}'s data directory {}",
                config.id,
                config.data_dir.display()
            )
        })?;
    }
    Ok(())
}

/// A node `cluster` watches: its own child, or one that `cluster add`
/// started (known by its pid file).
struct Watched {
    id: NodeId,
    config_path: PathBuf,
    process: Watch,
    /// Recorded as removed (`cluster remove`): its exit is expected.
    removed: bool,
}

enum Watch {
    Child(NodeProcess),
    Added(u32),
    Exited,
}

impl Watched {
    /// How the process ended, if it has since the last look (then it is
    /// watched no more).
    fn exited(&mut self) -> Option<String> {
        let ended = match &mut self.process {
            Watch::Child(process) => process.exited().map(|status| status.to_string()),
            Watch::Added(pid) => (!record::alive(*pid)).then(|| "its process is gone".to_owned()),
            Watch::Exited => None,
        };
        if ended.is_some() {
            self.process = Watch::Exited;
        }
        ended
    }
}

pub async fn run(options: ClusterOptions) -> anyhow::Result<()> {
    // One Ctrl-C listener for the whole run, from its start: a `ctrl_c()`
    // future made anew on each turn of the loop below sees only the
    // signals after it is first polled, so one that came while a turn
    // checked the nodes was lost and the cluster kept running (the
    // cluster_add_remove test saw it); and before any listener, SIGINT's
    // default action killed this process and left its nodes running. A
    // Ctrl-C while the nodes start stops them once they are spawned.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot listen for Ctrl-C")?;
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    // Absolute, so that a node's command line names its config file as the
    // pid checks of `cluster add|remove` (run from anywhere) expect.
    let dir = std::path::absolute(&options.dir)
        .with_context(|| format!("bad --dir {}", options.dir.display()))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock = record::lock(&dir)?;
    let prepared = prepare(&options, &dir, &exe)?;
    let record = prepared.record;
    let mut nodes: Vec<Watched> = Vec::new();
    println!(
        "cluster {:?}: {} nodes, files in {}",
        record.cluster_id,
        prepared.launches.len(),
        dir.display()
    );
    println!("{:>4} {:>8}  {:<22} log", "node", "pid", "address");
    for mut launch in prepared.launches {
        let process = launch.spawn()?;
        // The node holds its socket now. Dropping this command's copy makes
        // the port the node's alone, so that a node killed and restarted by
        // hand (`run --config`, as printed below) can bind it again.
        launch.listener = None;
        record::write_pid(&dir, process.id(), process.pid())?;
        println!(
            "{:>4} {:>8}  {:<22} {}",
            process.id(),
            process.pid(),
            process.address(),
            launch.log.as_deref().unwrap_or(Path::new("-")).display()
        );
        nodes.push(Watched {
            id: process.id(),
            config_path: launch.config_path.clone(),
            process: Watch::Child(process),
            removed: false,
        });
    }
    drop(lock);
    for id in &prepared.lost {
        println!(
            "node {id} NOT started: its data directory {} is gone, so its data was lost. It must \
             not rejoin as the same member (starting afresh at term 0 with an empty log, it could \
             vote a second time in a term). Replace it: `raft-node cluster remove --dir {} --id \
             {id}`, then `raft-node cluster add --dir {}`",
            record::data_dir(&dir, *id).display(),
            dir.display(),
            dir.display()
        );
    }
    // Waiting for the nodes and the leader takes up to a minute when a node
    // does not start: a Ctrl-C meanwhile stops the cluster at once.
    let started = report_start(&mut nodes, &record, &dir);
    let interrupted = tokio::select! {
        _ = interrupt.recv() => true,
        () = started => false,
    };

    if !interrupted {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = interrupt.recv() => break,
                _ = tick.tick() => {
                    follow_changes(&dir, &mut nodes);
                    for watched in &mut nodes {
                        let Some(how) = watched.exited() else { continue };
                        if watched.removed {
                            println!(
                                "node {} stopped ({how}): it was removed from the cluster",
                                watched.id
                            );
                        } else {
                            println!(
                                "node {} exited ({how}); restart it with: {} run --config {}",
                                watched.id,
                                exe.display(),
                                watched.config_path.display()
                            );
                        }
                    }
                    if nodes.iter().all(|watched| matches!(watched.process, Watch::Exited)) {
                        println!("every node has exited");
                        return Ok(());
                    }
                }
            }
        }
    }
    println!("stopping the cluster");
    let mut added = Vec::new();
    for watched in &mut nodes {
        match &mut watched.process {
            Watch::Child(process) => process.kill(),
            // Checked again: the pid must still be that node's.
            Watch::Added(pid) if record::running_pid(&dir, watched.id) == Some(*pid) => {
                added.push(*pid);
            }
            _ => {}
        }
    }
    for pid in added {
        record::stop(pid, Duration::from_secs(5));
    }
    Ok(())
}

/// Waits (bounded) for every started node to serve and for a leader, then
/// prints the configuration and the hints.
async fn report_start(nodes: &mut [Watched], record: &ClusterRecord, dir: &Path) {
    // Every node serving before the hints below (a node that fails to start
    // is reported here, and again by the loop when it notices the exit).
    for watched in nodes.iter_mut() {
        if let Watch::Child(process) = &mut watched.process
            && let Err(err) = process.wait_ready(READY_TIMEOUT).await
        {
            println!("{err:#}");
        }
    }
    let endpoints = nodes
        .iter()
        .filter_map(|watched| record.node(watched.id))
        .map(|node| node.address.as_str())
        .collect::<Vec<_>>()
        .join(",");
    match change::leader_view(record.endpoints(None), Duration::from_secs(10), dir).await {
        Ok(view) => {
            println!("{}", change::configuration_line(&view));
            for node in record.active() {
                if !change::in_configuration(&view, node.id) {
                    println!(
                        "node {} runs but is not in the configuration (a `cluster add` that did \
                         not finish): add it with `raft-node cluster add --dir {} --id {}`, or \
                         drop it with `raft-node cluster remove --dir {} --id {}`",
                        node.id,
                        dir.display(),
                        node.id,
                        dir.display(),
                        node.id
                    );
                }
            }
        }
        Err(err) => println!("configuration: not known yet ({err:#})"),
    }
    println!();
    println!("try:  raft-node client --endpoints {endpoints} put greeting hello");
    println!("      raft-node client --endpoints {endpoints} get greeting");
    println!("      raft-node client --endpoints {endpoints} status");
    println!("      raft-node cluster add --dir {}", dir.display());
    println!(
        "      raft-node cluster remove --dir {} --id N",
        dir.display()
    );
    println!("Ctrl-C stops the cluster; `kill <pid>` stops one node.");
}

/// Reads the cluster file again: a node `cluster add` started is watched
/// from now on (and stopped at Ctrl-C with the others); a node `cluster
/// remove` removed is noted, so that its exit is not reported as a crash.
fn follow_changes(dir: &Path, nodes: &mut Vec<Watched>) {
    let Ok(Some(now)) = ClusterRecord::load(dir) else {
        return;
    };
    let known: BTreeSet<NodeId> = nodes.iter().map(|watched| watched.id).collect();
    for node in &now.nodes {
        if known.contains(&node.id) {
            if let Some(watched) = nodes.iter_mut().find(|watched| watched.id == node.id)
                && node.removed
                && !watched.removed
            {
                watched.removed = true;
                println!(
                    "node {} was removed from the cluster (`raft-node cluster remove`)",
                    node.id
                );
            }
        } else if !node.removed
            && let Some(pid) = record::running_pid(dir, node.id)
        {
            println!(
                "node {} was added (`raft-node cluster add`): pid {pid}, address {}, log {}; \
                 Ctrl-C stops it with the others",
                node.id,
                node.address,
                record::log_path(dir, node.id).display()
            );
            nodes.push(Watched {
                id: node.id,
                config_path: record::config_path(dir, node.id),
                process: Watch::Added(pid),
                removed: false,
            });
        }
    }
}
