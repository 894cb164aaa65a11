//! `raft-node cluster`: N nodes on loopback, one child process each, in one
//! command — the README's quick start. Each node gets a TOML config, a data
//! directory and a log file under `--dir`; killing one process (e.g. the
//! leader's) leaves the others running, and running the command again on the
//! same directory restarts the nodes from their data.
//!
//! **Data directories are initialised once.** When no node has a data
//! directory yet, the cluster is new and `cluster` initialises every one
//! (as `raft-node init` does) before starting the nodes; when every node
//! has one, it only starts them. When some have one and others do not, a
//! node's data was lost: it must not come back as the same member, empty
//! (it could vote twice in a term), so `cluster` refuses and says how to
//! start over. The configs it writes have no `init` key, so the restart
//! command it prints for a killed node (`raft-node run --config FILE`)
//! refuses to start a node whose data directory is gone.
//!
//! Ports: `cluster` binds each node's port itself (`--base-port` and the
//! ports after it, or with `--base-port 0` ports the OS picks) before
//! writing any configuration, and hands the node its socket as it starts
//! (the launcher's `--listen-on-stdin`), so no other program can take a port
//! between its being chosen and the node serving it. Then it lets go of its
//! copy: the port is the node's, and a node killed and restarted by hand
//! binds it again like any node. The metrics ports (`--metrics-base-port`)
//! are bound by the nodes themselves: they are only checked free first.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{FileConfig, Member, NodeConfig};
use crate::launch::{Launch, NodeProcess};

/// How long `cluster` waits for each node to serve before printing its hints.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ClusterOptions {
    pub nodes: u64,
    pub host: String,
    /// Node i's port is base_port + i - 1; 0: ports the OS picks.
    pub base_port: u16,
    pub metrics_base_port: Option<u16>,
    pub dir: PathBuf,
    pub cluster_id: String,
    pub log_level: Option<String>,
    pub snapshot_threshold: Option<u64>,
    /// Where the nodes record their core events (one file per node), if anywhere.
    pub trace_dir: Option<PathBuf>,
}

fn check_port_free(address: SocketAddr, what: &str) -> anyhow::Result<()> {
    TcpListener::bind(address)
        .map(drop)
        .with_context(|| format!("{what} port {address} is not free (port in use?)"))
}

/// Port `base + id - 1`, or an error naming the flag if it runs past 65535.
fn nth_port(flag: &str, base: u16, id: u64) -> anyhow::Result<u16> {
    u16::try_from(u64::from(base) + id - 1)
        .map_err(|_| anyhow::anyhow!("{flag} {base} with node {id} runs past port 65535"))
}

/// The flags' own errors, before anything is bound or written (so that a
/// range running past 65535 is refused as such, not as a port in use on the
/// way).
fn check_options(options: &ClusterOptions) -> anyhow::Result<()> {
    if options.nodes == 0 || options.nodes > 99 {
        anyhow::bail!("--nodes must be between 1 and 99");
    }
    if options.base_port != 0 {
        nth_port("--base-port", options.base_port, options.nodes)?;
    }
    match options.metrics_base_port {
        // The nodes bind their metrics ports themselves: `cluster` could not
        // learn a port the OS picked for a node.
        Some(0) => anyhow::bail!("--metrics-base-port must be a port, not 0"),
        Some(base) => {
            nth_port("--metrics-base-port", base, options.nodes)?;
        }
        None => {}
    }
    Ok(())
}

/// Binds every node's listening socket, on `host` at base-port + i - 1, or
/// with `--base-port 0` on a port the OS picks. `cluster` hands each node its
/// socket ([`Launch::listener`]), so no port is free between being chosen
/// (or checked) and being served.
fn bind_listeners(options: &ClusterOptions) -> anyhow::Result<Vec<Arc<TcpListener>>> {
    (1..=options.nodes)
        .map(|id| {
            let port = match options.base_port {
                0 => 0,
                base => nth_port("--base-port", base, id)?,
            };
            let listener = TcpListener::bind((options.host.as_str(), port)).with_context(|| {
                if port == 0 {
                    format!("cannot bind a port for node {id} on {}", options.host)
                } else {
                    format!(
                        "node {id}'s gRPC port {}:{port} is not free (port in use?)",
                        options.host
                    )
                }
            })?;
            Ok(Arc::new(listener))
        })
        .collect()
}

/// One launch per node, serving on its listener from [`bind_listeners`]:
/// its config (written to `node-<id>.toml` under `dir`, validated by
/// [`write_configs`]) and its log file.
pub fn launches(
    options: &ClusterOptions,
    exe: &Path,
    listeners: &[Arc<TcpListener>],
) -> anyhow::Result<Vec<Launch>> {
    let members: Vec<Member> = (1..)
        .zip(listeners)
        .map(|(id, listener)| {
            Ok(Member {
                id,
                // The host as given (a name stays a name), the port as bound.
                address: format!("{}:{}", options.host, listener.local_addr()?.port()),
            })
        })
        .collect::<std::io::Result<_>>()?;
    members
        .iter()
        .zip(listeners)
        .map(|(member, listener)| {
            let metrics = options
                .metrics_base_port
                .map(|base| nth_port("--metrics-base-port", base, member.id))
                .transpose()?
                .map(|port| format!("{}:{port}", options.host));
            let file = FileConfig {
                cluster_id: Some(options.cluster_id.clone()),
                id: Some(member.id),
                listen: None,
                data_dir: Some(options.dir.join(format!("node-{}", member.id))),
                metrics,
                snapshot_threshold: options.snapshot_threshold,
                trace_dir: options.trace_dir.clone(),
                members: Some(members.clone()),
                ..FileConfig::default()
            };
            let config_path = options.dir.join(format!("node-{}.toml", member.id));
            // The nodes are independent processes: they outlive this command
            // if it dies; Ctrl-C stops them explicitly.
            let mut launch = Launch::new(exe, "run", file, &config_path)
                .log_to(&options.dir.join(format!("node-{}.log", member.id)))
                .kill_on_drop(false)
                .listener(listener.clone());
            launch.log_level = options.log_level.clone();
            Ok(launch)
        })
        .collect()
}

/// Binds the nodes' sockets, writes one config file per node under `dir`
/// (validated exactly as `run` will, its metrics port checked free),
/// initialises the nodes' data directories if the cluster is new (see the
/// module docs) and returns the launches.
pub fn write_configs(options: &ClusterOptions, exe: &Path) -> anyhow::Result<Vec<Launch>> {
    check_options(options)?;
    let listeners = bind_listeners(options)?;
    let launches = launches(options, exe, &listeners)?;
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let mut configs = Vec::new();
    for (launch, listener) in launches.iter().zip(&listeners) {
        let config = launch.write_config()?;
        let bound = listener.local_addr()?;
        // The node refuses a socket bound elsewhere than its listen address
        // (resolved from the member address): say so here, not in its log.
        if config.listen != bound {
            anyhow::bail!(
                "node {}'s address {} resolves to {}, but its socket was bound to {bound}: \
                 give --host as an IP address",
                config.id,
                config.members[&config.id],
                config.listen
            );
        }
        if let Some(metrics) = config.metrics {
            check_port_free(metrics, &format!("node {}'s metrics", config.id))?;
        }
        configs.push(config);
    }
    init_if_new(&configs, &options.dir)?;
    Ok(launches)
}

/// Initialises every node's data directory if none exists (a new cluster);
/// does nothing if every one exists (a restart: each node checks its own);
/// refuses if only some exist (see the module docs).
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

pub async fn run(options: ClusterOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let launches = write_configs(&options, &exe)?;
    let mut nodes: Vec<(Launch, Option<NodeProcess>)> = Vec::new();
    println!(
        "cluster {:?}: {} nodes, files in {}",
        options.cluster_id,
        options.nodes,
        options.dir.display()
    );
    println!("{:>4} {:>8}  {:<22} log", "node", "pid", "address");
    let mut endpoints = Vec::new();
    for mut launch in launches {
        let process = launch.spawn()?;
        // The node holds its socket now. Dropping this command's copy makes
        // the port the node's alone, so that a node killed and restarted by
        // hand (`run --config`, as printed below) can bind it again.
        launch.listener = None;
        endpoints.push(process.address().to_owned());
        println!(
            "{:>4} {:>8}  {:<22} {}",
            process.id(),
            process.pid(),
            process.address(),
            launch.log.as_deref().unwrap_or(Path::new("-")).display()
        );
        nodes.push((launch, Some(process)));
    }
    // Every node serving before the hints below (a node that fails to start
    // is reported here, and again by the loop when it notices the exit).
    for (_, process) in &mut nodes {
        if let Some(process) = process
            && let Err(err) = process.wait_ready(READY_TIMEOUT).await
        {
            println!("{err:#}");
        }
    }
    println!();
    println!(
        "try:  raft-node client --endpoints {} put greeting hello",
        endpoints.join(",")
    );
    println!(
        "      raft-node client --endpoints {} get greeting",
        endpoints.join(",")
    );
    println!(
        "      raft-node client --endpoints {} status",
        endpoints.join(",")
    );
    println!("Ctrl-C stops the cluster; `kill <pid>` stops one node.");

    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                for (launch, slot) in &mut nodes {
                    let Some(process) = slot.as_mut() else { continue };
                    if let Some(status) = process.exited() {
                        println!(
                            "node {} exited ({status}); restart it with: {} run --config {}",
                            process.id(),
                            exe.display(),
                            launch.config_path.display()
                        );
                        *slot = None;
                    }
                }
                if nodes.iter().all(|(_, process)| process.is_none()) {
                    println!("every node has exited");
                    return Ok(());
                }
            }
        }
    }
    println!("stopping the cluster");
    for (_, process) in &mut nodes {
        if let Some(process) = process {
            process.kill();
        }
    }
    Ok(())
}
