//! `raft-node cluster`: N nodes on loopback, one child process each, in one
//! command — the README's quick start. Each node gets a TOML config, a data
//! directory and a log file under `--dir`; killing one process (e.g. the
//! leader's) leaves the others running, and running the command again on the
//! same directory restarts the nodes from their data.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::config::{FileConfig, Member, NodeConfig};

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

struct ChildNode {
    id: u64,
    config_path: PathBuf,
    child: Option<Child>,
}

fn check_port_free(address: SocketAddr, what: &str) -> anyhow::Result<()> {
    TcpListener::bind(address)
        .map(drop)
        .with_context(|| format!("{what} port {address} is not free (port in use?)"))
}

/// Writes one config file per node under `dir` and returns their paths.
pub fn write_configs(options: &ClusterOptions) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    if options.nodes == 0 || options.nodes > 99 {
        anyhow::bail!("--nodes must be between 1 and 99");
    }
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let members: Vec<Member> = (1..=options.nodes)
        .map(|id| Member {
            id,
            address: format!("{}:{}", options.host, u64::from(options.base_port) + id - 1),
        })
        .collect();
    let mut paths = Vec::new();
    for member in &members {
        let file = FileConfig {
            cluster_id: Some(options.cluster_id.clone()),
            id: Some(member.id),
            listen: None,
            data_dir: Some(absolute(&options.dir.join(format!("node-{}", member.id)))?),
            init: Some(true),
            metrics: options
                .metrics_base_port
                .map(|port| format!("{}:{}", options.host, u64::from(port) + member.id - 1)),
            snapshot_threshold: options.snapshot_threshold,
            trace_dir: options.trace_dir.as_deref().map(absolute).transpose()?,
            members: Some(members.clone()),
            ..FileConfig::default()
        };
        // Validate exactly as `run` will.
        let config = NodeConfig::from_file_config(file.clone())?;
        check_port_free(config.listen, &format!("node {}'s gRPC", member.id))?;
        if let Some(metrics) = config.metrics {
            check_port_free(metrics, &format!("node {}'s metrics", member.id))?;
        }
        let path = options.dir.join(format!("node-{}.toml", member.id));
        std::fs::write(&path, toml::to_string_pretty(&file)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push((member.id, path));
    }
    Ok(paths)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(path)?)
}

fn spawn(exe: &Path, config: &Path, log: &Path, level: Option<&str>) -> anyhow::Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open log file {}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    if let Some(level) = level {
        command.arg("--log-level").arg(level);
    }
    command
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))
}

pub async fn run(options: ClusterOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let configs = write_configs(&options)?;
    let mut nodes = Vec::new();
    println!(
        "cluster {:?}: {} nodes, files in {}",
        options.cluster_id,
        options.nodes,
        options.dir.display()
    );
    println!("{:>4} {:>8}  {:<22} log", "node", "pid", "address");
    for (id, config_path) in configs {
        let log = options.dir.join(format!("node-{id}.log"));
        let child = spawn(&exe, &config_path, &log, options.log_level.as_deref())?;
        let address = format!("{}:{}", options.host, u64::from(options.base_port) + id - 1);
        println!(
            "{:>4} {:>8}  {:<22} {}",
            id,
            child.id().unwrap_or(0),
            address,
            log.display()
        );
        nodes.push(ChildNode {
            id,
            config_path,
            child: Some(child),
        });
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
                for node in &mut nodes {
                    let Some(child) = node.child.as_mut() else { continue };
                    if let Ok(Some(status)) = child.try_wait() {
                        println!(
                            "node {} exited ({status}); restart it with: {} run --config {}",
                            node.id,
                            exe.display(),
                            node.config_path.display()
                        );
                        node.child = None;
                    }
                }
                if nodes.iter().all(|node| node.child.is_none()) {
                    println!("every node has exited");
                    return Ok(());
                }
            }
        }
    }
    println!("stopping the cluster");
    for node in &mut nodes {
        if let Some(child) = node.child.as_mut() {
            let _ = child.start_kill();
        }
    }
    for node in &mut nodes {
        if let Some(child) = node.child.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }
    Ok(())
}
