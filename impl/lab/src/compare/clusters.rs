//! The two 3-node clusters under test, each node its own process on
//! 127.0.0.1, data under the bench's directory (same disk for both), logs
//! next to the data. Our nodes are started by raft-node's launcher
//! (`raft_node::launch`, as `raft-lab node`); etcd's members are started
//! here. Every process is killed when the cluster is dropped.
//!
//! Clients go to the leader in both systems: ours reports it in
//! `Kv/Status`, etcd in `Maintenance/Status` (the member id of the leader,
//! matched against each endpoint's own member id in the response header).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_node::config::{FileConfig, Member};
use raft_node::launch::{Launch, NodeProcess};
use tokio::process::{Child, Command};
use tonic::transport::Endpoint;

use crate::proto::etcd as etcd_pb;
use crate::proto::etcd::maintenance_client::MaintenanceClient;
use raft_node::proto::kv as ours_pb;
use raft_node::proto::kv::kv_client::KvClient as OursKv;

use super::load::{Servers, System};

/// A running cluster of one system.
pub struct Cluster {
    pub system: System,
    /// Client endpoints (HOST:PORT), one per node.
    pub endpoints: Vec<String>,
    /// Where each node serves its Prometheus metrics (HOST:PORT, path
    /// `/metrics`): ours on a port of its own, etcd on its client port.
    pub metrics: Vec<String>,
    processes: Processes,
}

/// The node processes: ours through the launcher, etcd's as plain children.
enum Processes {
    Ours(Vec<NodeProcess>),
    Etcd(Vec<Child>),
}

/// `count` distinct free loopback ports, for etcd, which binds its own: the
/// OS chooses them (port 0), and they are released before etcd binds them
/// (a third-party binary cannot be handed a socket). Our nodes are handed
/// theirs (`raft_node::launch::loopback_listeners`).
fn free_ports(count: u64) -> anyhow::Result<Vec<u16>> {
    raft_node::launch::loopback_listeners(count as usize)
        .context("no free loopback ports")?
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect()
}

fn log_file(path: &Path) -> anyhow::Result<Stdio> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create log file {}", path.display()))?;
    Ok(Stdio::from(file))
}

fn spawn(mut command: Command, log: &Path, what: &str) -> anyhow::Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(log_file(log)?)
        .stderr(log_file(&log.with_extension("err"))?)
        .kill_on_drop(true);
    command
        .spawn()
        .with_context(|| format!("cannot start {what}"))
}

impl Cluster {
    /// Starts `nodes` of our node (`binary` is the `raft-lab` binary, run as
    /// `raft-lab node`); with `trace`, each records its core events into
    /// `dir/traces` (the node's defaults: compact, rotated);
    /// `snapshot_threshold` overrides the node's default; the nodes log
    /// at `log_level` to `dir/node-<id>.log`.
    pub fn start_ours(
        binary: &Path,
        dir: &Path,
        nodes: u64,
        trace: bool,
        snapshot_threshold: Option<u64>,
        log_level: &str,
    ) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Bound here and handed to the nodes: no port is released between.
        let listeners = raft_node::launch::loopback_listeners(nodes as usize)
            .context("no free loopback ports")?;
        let members: Vec<Member> = (1..=nodes)
            .zip(&listeners)
            .map(|(id, listener)| {
                Ok(Member {
                    id,
                    address: listener.local_addr()?.to_string(),
                })
            })
            .collect::<std::io::Result<_>>()?;
        // The metrics ports are chosen by the OS and released for the node
        // to bind (the launcher hands over only the client listener).
        let metrics: Vec<String> = free_ports(nodes)?
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let mut processes = Vec::new();
        for id in 1..=nodes {
            let config = FileConfig {
                cluster_id: Some("compare".into()),
                id: Some(id),
                data_dir: Some(dir.join(format!("node-{id}"))),
                members: Some(members.clone()),
                trace_dir: trace.then(|| dir.join("traces")),
                metrics: Some(metrics[id as usize - 1].clone()),
                snapshot_threshold,
                ..FileConfig::default()
            };
            let launch = Launch::new(binary, "node", config, &dir.join(format!("node-{id}.toml")))
                .log_to(&dir.join(format!("node-{id}.log")))
                .log_level(log_level)
                .listener(listeners[id as usize - 1].clone())
                .init(true);
            processes.push(launch.spawn()?);
        }
        Ok(Cluster {
            system: if trace {
                System::OursTraced
            } else {
                System::Ours
            },
            endpoints: members.iter().map(|m| m.address.clone()).collect(),
            metrics,
            processes: Processes::Ours(processes),
        })
    }

    /// Starts `nodes` etcd members with etcd's defaults (fsync on every
    /// commit of its WAL, 100 ms heartbeat, 1 s election timeout).
    pub fn start_etcd(binary: &Path, dir: &Path, nodes: u64) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut client_ports = free_ports(2 * nodes)?;
        let peer_ports = client_ports.split_off(nodes as usize);
        let initial: Vec<String> = (1..=nodes)
            .zip(&peer_ports)
            .map(|(id, port)| format!("n{id}=http://127.0.0.1:{port}"))
            .collect();
        let mut children = Vec::new();
        for (i, id) in (1..=nodes).enumerate() {
            let client = format!("http://127.0.0.1:{}", client_ports[i]);
            let peer = format!("http://127.0.0.1:{}", peer_ports[i]);
            let mut command = Command::new(binary);
            command
                .arg("--name")
                .arg(format!("n{id}"))
                .arg("--data-dir")
                .arg(dir.join(format!("n{id}")))
                .arg("--listen-client-urls")
                .arg(&client)
                .arg("--advertise-client-urls")
                .arg(&client)
                .arg("--listen-peer-urls")
                .arg(&peer)
                .arg("--initial-advertise-peer-urls")
                .arg(&peer)
                .arg("--initial-cluster")
                .arg(initial.join(","))
                .arg("--initial-cluster-token")
                .arg("compare")
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--logger")
                .arg("zap")
                .arg("--log-level")
                .arg("warn");
            let log = dir.join(format!("n{id}.log"));
            children.push(spawn(command, &log, &format!("{}", binary.display()))?);
        }
        let endpoints: Vec<String> = client_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        Ok(Cluster {
            system: System::Etcd,
            metrics: endpoints.clone(),
            endpoints,
            processes: Processes::Etcd(children),
        })
    }

    /// Waits until the cluster has a leader and returns its client endpoint.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        if let Processes::Ours(processes) = &mut self.processes {
            for process in processes {
                process.wait_ready(timeout).await?;
            }
        }
        let mut last = String::from("no answer yet");
        while started.elapsed() < timeout {
            let exited: Vec<(usize, String)> = match &mut self.processes {
                Processes::Ours(processes) => processes
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, p)| Some((i, p.exited()?.to_string())))
                    .collect(),
                Processes::Etcd(children) => children
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, c)| Some((i, c.try_wait().ok()??.to_string())))
                    .collect(),
            };
            if let Some((i, status)) = exited.first() {
                anyhow::bail!(
                    "{} node {} exited ({status}) while starting; see its log",
                    self.system.name(),
                    i + 1
                );
            }
            match self.find_leader().await {
                Ok(Some(leader)) => return Ok(leader),
                Ok(None) => last = "no leader elected yet".into(),
                Err(err) => last = format!("{err:#}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "{}: no leader within {timeout:?} ({last})",
            self.system.name()
        )
    }

    async fn find_leader(&self) -> anyhow::Result<Option<String>> {
        let mut any_error = None;
        for endpoint in &self.endpoints {
            let answer = match self.system {
                System::Ours | System::OursTraced => ours_leader(endpoint).await,
                System::Etcd => etcd_is_leader(endpoint)
                    .await
                    .map(|leads| leads.then(|| endpoint.clone())),
            };
            match answer {
                Ok(Some(leader)) => return Ok(Some(leader)),
                Ok(None) => {}
                Err(err) => any_error = Some(err),
            }
        }
        match any_error {
            Some(err) => Err(err),
            None => Ok(None),
        }
    }

    /// The node processes, for a cell's accounting of CPU and log syncs.
    pub fn servers(&self) -> Servers {
        let pids = match &self.processes {
            Processes::Ours(processes) => processes.iter().map(NodeProcess::pid).collect(),
            Processes::Etcd(children) => children.iter().filter_map(Child::id).collect(),
        };
        Servers {
            pids,
            metrics: self.metrics.clone(),
        }
    }

    /// Kills every process (also done on drop).
    pub async fn stop(mut self) {
        match &mut self.processes {
            Processes::Ours(processes) => processes.iter_mut().for_each(NodeProcess::kill),
            Processes::Etcd(children) => {
                for child in children {
                    let _ = child.kill().await;
                }
            }
        }
    }
}

async fn channel(endpoint: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(Endpoint::from_shared(format!("http://{endpoint}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect()
        .await?)
}

/// Our leader's client address, as a node reports it.
async fn ours_leader(endpoint: &str) -> anyhow::Result<Option<String>> {
    let mut client = OursKv::new(channel(endpoint).await?);
    let status = client.status(ours_pb::StatusRequest {}).await?.into_inner();
    Ok((status.role == "leader").then(|| endpoint.to_owned()))
}

/// Whether this etcd member is the leader.
async fn etcd_is_leader(endpoint: &str) -> anyhow::Result<bool> {
    let mut client = MaintenanceClient::new(channel(endpoint).await?);
    let status = client.status(etcd_pb::StatusRequest {}).await?.into_inner();
    let me = status.header.map(|h| h.member_id).unwrap_or(0);
    Ok(status.leader != 0 && status.leader == me)
}

/// A fresh directory for one bench run.
pub fn run_dir(base: Option<&Path>) -> anyhow::Result<PathBuf> {
    let base = base.map_or_else(std::env::temp_dir, Path::to_owned);
    let dir = base.join(format!("raft-compare-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
