//! An in-process cluster on loopback: every node is a full node with its own
//! data directory and its own gRPC port (real sockets), all in one process.
//! Used by the integration tests and the bench; `raft-node cluster` runs
//! separate processes instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raft_model::{NodeId, Role};

use crate::client::KvClient;
use crate::config::{FileConfig, Member, NodeConfig};
use crate::server::{self, RunningNode};
use crate::storage::StorageError;

pub struct LocalCluster {
    pub dir: PathBuf,
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<RunningNode>>,
}

impl LocalCluster {
    /// Starts `size` nodes (ids 1..=size) with data under `dir`. `tune`
    /// adjusts each node's settings (timeouts, snapshot threshold...).
    pub async fn start(
        dir: &Path,
        size: u64,
        tune: impl Fn(&mut FileConfig),
    ) -> anyhow::Result<LocalCluster> {
        let mut listeners = Vec::new();
        for _ in 0..size {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        }
        let members: Vec<Member> = listeners
            .iter()
            .zip(1..)
            .map(|(listener, id)| {
                Ok(Member {
                    id,
                    address: listener.local_addr()?.to_string(),
                })
            })
            .collect::<std::io::Result<_>>()?;
        let mut configs = Vec::new();
        for member in &members {
            let mut file = FileConfig {
                cluster_id: Some("local-test".into()),
                id: Some(member.id),
                data_dir: Some(dir.join(format!("node-{}", member.id))),
                init: Some(true),
                members: Some(members.clone()),
                ..FileConfig::default()
            };
            tune(&mut file);
            configs.push(NodeConfig::from_file_config(file)?);
        }
        let mut nodes = Vec::new();
        for (config, listener) in configs.iter().zip(listeners) {
            nodes.push(Some(server::start(config.clone(), listener).await?));
        }
        Ok(LocalCluster {
            dir: dir.to_owned(),
            configs,
            nodes,
        })
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.configs
            .iter()
            .map(|config| config.members[&config.id].clone())
            .collect()
    }

    pub fn address(&self, id: NodeId) -> String {
        self.endpoints()[(id - 1) as usize].clone()
    }

    pub fn client(&self) -> anyhow::Result<KvClient> {
        Ok(KvClient::new(self.endpoints())?)
    }

    pub fn node(&self, id: NodeId) -> Option<&RunningNode> {
        self.nodes.get((id - 1) as usize)?.as_ref()
    }

    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.configs.len() as NodeId).collect()
    }

    /// Waits until a running node is leader of the highest term any running
    /// node knows, and returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<NodeId> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            let mut statuses = Vec::new();
            for node in self.nodes.iter().flatten() {
                if let Some(status) = node.status().await {
                    statuses.push(status);
                }
            }
            let top = statuses.iter().map(|s| s.term).max().unwrap_or(0);
            if let Some(leader) = statuses
                .iter()
                .find(|s| s.role == Role::Leader && s.term == top)
            {
                return Ok(leader.id);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("no leader elected within {timeout:?}")
    }

    /// Crash-stops node `id`.
    pub async fn stop_node(&mut self, id: NodeId) {
        if let Some(node) = self.nodes[(id - 1) as usize].take() {
            node.stop().await;
        }
    }

    /// Restarts node `id` from its data directory, on its old port.
    pub async fn restart_node(&mut self, id: NodeId) -> anyhow::Result<()> {
        self.stop_node(id).await;
        let config = self.configs[(id - 1) as usize].clone();
        let started = Instant::now();
        // Unlike a killed process, a stopped in-process node lets go of its
        // port and its data directory's lock only once its last tasks end (a
        // storage write on a blocking thread runs to completion): retry both,
        // for a bounded time.
        let node = loop {
            let listener = match server::bind(&config).await {
                Ok(listener) => listener,
                Err(err) if started.elapsed() > Duration::from_secs(5) => return Err(err),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match server::start(config.clone(), listener).await {
                Ok(node) => break node,
                Err(err)
                    if started.elapsed() <= Duration::from_secs(5)
                        && matches!(
                            err.downcast_ref::<StorageError>(),
                            Some(StorageError::Locked(_))
                        ) =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => return Err(err),
            }
        };
        self.nodes[(id - 1) as usize] = Some(node);
        Ok(())
    }

    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop_node(id).await;
        }
    }
}
