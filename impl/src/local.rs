//! An in-process cluster on loopback: every node is a full node with its own
//! data directory and its own gRPC port (real sockets), all in one process.
//! Used by the integration tests and the bench; `raft-node cluster` runs
//! separate processes instead.
//!
//! **Ports.** The cluster binds every node's listening socket on port 0 before
//! any address is written into a configuration, and keeps that socket for its
//! whole life: each node serves on a duplicate of it, so a node's port is
//! never free for another program to take — not between choosing it and
//! serving it, and not while the node is stopped and restarted. A stopped
//! node must still be *unreachable*, not merely paused: if its socket only
//! held connections in its backlog, the peers' requests would wait there and
//! reach the restarted node (a follower would catch up from AppendEntries
//! queued before a compaction instead of the InstallSnapshot a test asks
//! for). So while a node is stopped, the cluster accepts every connection on
//! its socket and closes it at once: a peer's or client's RPC fails at once,
//! as when the connection is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_model::{NodeId, Role};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::client::KvClient;
use crate::config::{FileConfig, Member, NodeConfig};
use crate::server::{self, RunningNode};
use crate::storage::StorageError;

pub struct LocalCluster {
    pub dir: PathBuf,
    configs: Vec<NodeConfig>,
    /// Each node's listening socket, the cluster's own copy (see the module
    /// docs): a node serves on a duplicate.
    sockets: Vec<Arc<TcpListener>>,
    nodes: Vec<Option<RunningNode>>,
    /// For each stopped node, what closes the connections made to it.
    refusers: Vec<Option<Refuser>>,
}

impl LocalCluster {
    /// Starts `size` nodes (ids 1..=size) with data under `dir`. `tune`
    /// adjusts each node's settings (timeouts, snapshot threshold...).
    pub async fn start(
        dir: &Path,
        size: u64,
        tune: impl Fn(&mut FileConfig),
    ) -> anyhow::Result<LocalCluster> {
        let mut sockets = Vec::new();
        for _ in 0..size {
            sockets.push(Arc::new(TcpListener::bind("127.0.0.1:0").await?));
        }
        let members: Vec<Member> = sockets
            .iter()
            .zip(1..)
            .map(|(socket, id)| {
                Ok(Member {
                    id,
                    address: socket.local_addr()?.to_string(),
                })
            })
            .collect::<std::io::Result<_>>()?;
        let mut configs = Vec::new();
        for member in &members {
            let mut file = FileConfig {
                cluster_id: Some("local-test".into()),
                id: Some(member.id),
                data_dir: Some(dir.join(format!("node-{}", member.id))),
                members: Some(members.clone()),
                ..FileConfig::default()
            };
            tune(&mut file);
            configs.push(NodeConfig::from_file_config(file)?);
        }
        // A new cluster: every node's data directory is initialised, once.
        for config in &configs {
            server::init_data_dir(config)?;
        }
        let mut nodes = Vec::new();
        for (config, socket) in configs.iter().zip(&sockets) {
            nodes.push(Some(
                server::start(config.clone(), duplicate(socket)?).await?,
            ));
        }
        Ok(LocalCluster {
            dir: dir.to_owned(),
            configs,
            refusers: nodes.iter().map(|_| None).collect(),
            sockets,
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

    /// Node `id`'s settings.
    pub fn config(&self, id: NodeId) -> Option<&NodeConfig> {
        self.configs.get(usize::try_from(id).ok()?.checked_sub(1)?)
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

    /// Crash-stops node `id`. Its port stays the cluster's, and until the
    /// node restarts every connection to it is closed at once (see the
    /// module docs).
    pub async fn stop_node(&mut self, id: NodeId) {
        let index = (id - 1) as usize;
        if let Some(node) = self.nodes[index].take() {
            node.stop().await;
            self.refusers[index] = Some(Refuser::start(self.sockets[index].clone()));
        }
    }

    /// Restarts node `id` from its data directory, on its socket (stopping
    /// it first if it runs).
    pub async fn restart_node(&mut self, id: NodeId) -> anyhow::Result<()> {
        self.stop_node(id).await;
        let index = (id - 1) as usize;
        // The refuser stops accepting before the node starts, so that no
        // connection meant for the restarted node is closed by it.
        if let Some(refuser) = self.refusers[index].take() {
            refuser.end().await;
        }
        let config = self.configs[index].clone();
        let started = Instant::now();
        // Unlike a killed process, a stopped in-process node lets go of its
        // data directory's lock only once its last tasks end (a storage write
        // on a blocking thread runs to completion): retry, for a bounded
        // time. Connections made meanwhile wait in the socket's backlog for
        // the node, as for a node that is slow to start.
        let node = loop {
            let started_node = match duplicate(&self.sockets[index]) {
                Ok(listener) => server::start(config.clone(), listener).await,
                Err(err) => Err(err.into()),
            };
            match started_node {
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
                Err(err) => {
                    // Still stopped: unreachable again, not paused.
                    self.refusers[index] = Some(Refuser::start(self.sockets[index].clone()));
                    return Err(err);
                }
            }
        };
        self.nodes[index] = Some(node);
        Ok(())
    }

    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop_node(id).await;
        }
    }
}

/// A duplicate of `socket` for a node to serve on: the node closes its copy
/// when it stops, the cluster's stays open.
fn duplicate(socket: &TcpListener) -> std::io::Result<TcpListener> {
    use std::os::fd::AsFd;
    let copy = std::net::TcpListener::from(socket.as_fd().try_clone_to_owned()?);
    // A duplicate shares the socket's flags, so it is non-blocking already;
    // set again because tokio requires it, rather than left to that detail.
    copy.set_nonblocking(true)?;
    TcpListener::from_std(copy)
}

/// While a node is stopped: accepts every connection on its socket and
/// closes it at once, so that nothing waits in the backlog for the node to
/// come back. Aborted when dropped.
struct Refuser(JoinHandle<()>);

impl Refuser {
    fn start(socket: Arc<TcpListener>) -> Refuser {
        Refuser(tokio::spawn(async move {
            loop {
                match socket.accept().await {
                    // Dropping the stream closes it: the peer's connection
                    // ends before any request is read (with a reset if it
                    // had sent some), and its RPC fails.
                    Ok((stream, _)) => drop(stream),
                    // E.g. out of file descriptors: back off rather than
                    // spin; the connection waits in the backlog meanwhile.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }))
    }

    /// Stops accepting; returns once the task has ended.
    async fn end(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for Refuser {
    fn drop(&mut self) {
        self.0.abort();
    }
}
