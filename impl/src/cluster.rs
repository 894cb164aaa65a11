//! `raft-node cluster`: N nodes on loopback, one child process each, in one
//! command — the README's quick start. Each node gets a TOML config, a data
//! directory and a log file under `--dir`; killing one process (e.g. the
//! leader's) leaves the others running, and running the command again on the
//! same directory restarts the nodes from their data.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::config::{FileConfig, Member};
use crate::launch::{Launch, NodeProcess};

/// How long `cluster` waits for each node to serve before printing its hints.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ClusterOptions {
    pub nodes: u64,
    pub host: String,
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

/// One launch per node: its config (written to `node-<id>.toml` under
/// `dir`, validated and its ports checked free by [`write_configs`]) and its
/// log file.
pub fn launches(options: &ClusterOptions, exe: &Path) -> anyhow::Result<Vec<Launch>> {
    if options.nodes == 0 || options.nodes > 99 {
        anyhow::bail!("--nodes must be between 1 and 99");
    }
    let members: Vec<Member> = (1..=options.nodes)
        .map(|id| Member {
            id,
            address: format!("{}:{}", options.host, u64::from(options.base_port) + id - 1),
        })
        .collect();
    Ok(members
        .iter()
        .map(|member| {
            let file = FileConfig {
                cluster_id: Some(options.cluster_id.clone()),
                id: Some(member.id),
                listen: None,
                data_dir: Some(options.dir.join(format!("node-{}", member.id))),
                init: Some(true),
                metrics: options
                    .metrics_base_port
                    .map(|port| format!("{}:{}", options.host, u64::from(port) + member.id - 1)),
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
                .kill_on_drop(false);
            launch.log_level = options.log_level.clone();
            launch
        })
        .collect())
}

/// Writes one config file per node under `dir` (validated exactly as `run`
/// will, its ports checked free) and returns the launches.
pub fn write_configs(options: &ClusterOptions, exe: &Path) -> anyhow::Result<Vec<Launch>> {
    let launches = launches(options, exe)?;
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    for launch in &launches {
        let config = launch.write_config()?;
        check_port_free(config.listen, &format!("node {}'s gRPC", config.id))?;
        if let Some(metrics) = config.metrics {
            check_port_free(metrics, &format!("node {}'s metrics", config.id))?;
        }
    }
    Ok(launches)
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
    for launch in launches {
        let process = launch.spawn()?;
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
    let endpoints: Vec<String> = (1..=options.nodes)
        .map(|id| format!("{}:{}", options.host, u64::from(options.base_port) + id - 1))
        .collect();
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
