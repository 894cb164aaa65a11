//! The cluster under test: one `raft-lab node` process per node, started
//! through raft-node's launcher (a config file `node-<id>.toml` and a log
//! `node-<id>.log` in the run directory), killed (SIGKILL), paused (SIGSTOP)
//! and resumed (SIGCONT) by the harness.
//!
//! With `powerfs` set, each node's data directory lies on its own
//! power-loss file system (`crate::powerfs`, mounted at `disk-<id>/`, its
//! disk the directory `disk-<id>.backing/`), so that the harness can cut a
//! node's power: kill it, drop what it had not fsynced, restart it.
//!
//! Each node lists itself at its real address and every peer at the address
//! of the proxy for that directed link (see `proxy`). Clients talk to the
//! nodes directly. Every process is killed when [`Processes`] is dropped.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use raft_model::NodeId;
use raft_node::config::{FileConfig, Member};
use raft_node::launch::{Launch, NodeProcess};

use crate::powerfs::{CutReport, DiskFaults, PowerFs};
use crate::seeded_bugs::SeededBug;

/// How each node is run.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub cluster_id: String,
    pub election_timeout_ms: [u64; 2],
    pub heartbeat_ms: u64,
    pub snapshot_threshold: u64,
    /// Record core events to `<dir>/traces/node-<id>.jsonl`.
    pub trace: bool,
    /// Run the nodes with CheckQuorum (the node's default); off to measure
    /// availability without it.
    pub check_quorum: bool,
    /// Run the nodes with PreVote (the node's default); off to measure
    /// availability without it.
    pub pre_vote: bool,
    /// A deliberately wrong node behaviour (see `crate::seeded_bugs`), to
    /// show the harness catches it.
    pub seeded_bug: Option<SeededBug>,
    pub log_level: String,
    /// Put each node's data directory on a power-loss file system (needed
    /// by the power-cut and disk fault kinds).
    pub powerfs: bool,
}

struct Node {
    listen: SocketAddr,
    /// Its listening socket, bound by the harness and handed to each of its
    /// processes (`Launch::listener`).
    listener: Arc<TcpListener>,
    /// The members as this node sees them (peers at their proxies).
    members: Vec<Member>,
    process: Option<NodeProcess>,
    paused: bool,
    initialized: bool,
    /// Initialised to join a running cluster (`--init --join`).
    join: bool,
    /// Removed from the cluster and stopped for good (membership faults):
    /// never restarted, no longer among [`Processes::ids`].
    retired: bool,
}

pub struct Processes {
    bin: PathBuf,
    dir: PathBuf,
    settings: NodeSettings,
    nodes: BTreeMap<NodeId, Node>,
    /// Each node's power-loss file system (with `settings.powerfs`).
    disks: BTreeMap<NodeId, PowerFs>,
    /// Each node's network namespace, if they run in namespaces.
    namespaces: BTreeMap<NodeId, String>,
    /// Processes that exited without the harness killing them.
    pub unexpected_exits: Vec<(NodeId, String)>,
    /// The process id of each running node, for the proxies to tell which
    /// node sent a connection (`proxy::socket_owner`).
    pids: Arc<std::sync::Mutex<BTreeMap<NodeId, u32>>>,
}

impl Processes {
    /// `members[id]` is the member list node `id` is given, `listeners[id]`
    /// the socket it serves on.
    pub fn new(
        bin: &Path,
        dir: &Path,
        settings: NodeSettings,
        listeners: &BTreeMap<NodeId, Arc<TcpListener>>,
        members: BTreeMap<NodeId, Vec<Member>>,
    ) -> std::io::Result<Processes> {
        let nodes = members
            .into_iter()
            .map(|(id, members)| {
                let listener = listeners[&id].clone();
                Ok((
                    id,
                    Node {
                        listen: listener.local_addr()?,
                        listener,
                        members,
                        process: None,
                        paused: false,
                        initialized: false,
                        join: false,
                        retired: false,
                    },
                ))
            })
            .collect::<std::io::Result<BTreeMap<NodeId, Node>>>()?;
        let mut disks = BTreeMap::new();
        if settings.powerfs {
            for id in nodes.keys() {
                let mountpoint = dir.join(format!("disk-{id}"));
                let backing = dir.join(format!("disk-{id}.backing"));
                disks.insert(*id, PowerFs::mount(&backing, &mountpoint)?);
            }
        }
        Ok(Processes {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            settings,
            nodes,
            disks,
            namespaces: BTreeMap::new(),
            unexpected_exits: Vec::new(),
            pids: Arc::default(),
        })
    }

    /// A node added at run time (membership faults): it listens on
    /// `listener`, is given `members` (itself, at the address the cluster
    /// will know it by), and starts initialised to join (`--init --join`).
    /// With powerfs its data directory gets its own power-loss file system.
    pub fn add_joining(
        &mut self,
        id: NodeId,
        listener: Arc<TcpListener>,
        members: Vec<Member>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nodes.contains_key(&id), "node {id} exists already");
        if self.has_powerfs() {
            let mountpoint = self.dir.join(format!("disk-{id}"));
            let backing = self.dir.join(format!("disk-{id}.backing"));
            self.disks
                .insert(id, PowerFs::mount(&backing, &mountpoint)?);
        }
        self.nodes.insert(
            id,
            Node {
                listen: listener.local_addr()?,
                listener,
                members,
                process: None,
                paused: false,
                initialized: false,
                join: true,
                retired: false,
            },
        );
        Ok(())
    }

    /// Replaces the member list node `id` is given (from its next start).
    pub fn set_members(&mut self, id: NodeId, members: Vec<Member>) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.members = members;
        }
    }

    /// Stops node `id` for good (it was removed from the cluster): killed,
    /// never restarted, no longer among [`Processes::ids`]. Its data, log
    /// and traces stay.
    pub fn retire(&mut self, id: NodeId) {
        self.resume(id);
        self.kill(id);
        if let Some(node) = self.nodes.get_mut(&id) {
            node.retired = true;
        }
    }

    /// The nodes in play (every node started, but those retired).
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, node)| !node.retired)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every node ever started, retired ones included.
    pub fn all_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Which running node owns the TCP socket at `peer` (for the proxies).
    pub fn resolver(&self) -> super::proxy::Resolver {
        let pids = self.pids.clone();
        Arc::new(move |peer| {
            let pids: Vec<(NodeId, u32)> = pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(id, pid)| (*id, *pid))
                .collect();
            super::proxy::socket_owner(&pids, peer)
        })
    }

    pub fn address(&self, id: NodeId) -> SocketAddr {
        self.nodes[&id].listen
    }

    /// Node `id`'s data directory (on its power-loss file system, if any).
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        match self.disks.get(&id) {
            Some(disk) => disk.mountpoint().join(format!("node-{id}")),
            None => self.dir.join(format!("node-{id}")),
        }
    }

    /// Whether the data directories are on power-loss file systems.
    pub fn has_powerfs(&self) -> bool {
        !self.disks.is_empty()
    }

    /// Cuts the power of nodes `ids` at once: each disk is armed to die at
    /// its node's next write (so the cut falls between a batch's write and
    /// its fsync; at most 300 ms is waited for one), each node is killed
    /// (SIGKILL), then every one of their file systems drops what was not
    /// fsynced, each unsynced sector reaching the
    /// disk or not as drawn from `tear_seed` (per node), and is mounted
    /// again. Restart them with [`Processes::start`].
    pub fn power_cut(&mut self, ids: &[NodeId], tear_seed: u64) -> anyhow::Result<Vec<CutReport>> {
        anyhow::ensure!(
            self.has_powerfs(),
            "a power cut needs the nodes' data on powerfs (NodeSettings::powerfs)"
        );
        // The cut falls inside a batch where it can: each disk goes dead
        // right after its node's next write (or after 300 ms of no write).
        for id in ids {
            self.resume(*id);
            if let Some(disk) = self.disks.get(id) {
                disk.arm_cut();
            }
        }
        let armed = std::time::Instant::now();
        while armed.elapsed() < Duration::from_millis(300)
            && !ids
                .iter()
                .all(|id| self.disks.get(id).is_none_or(|disk| disk.is_dead()))
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        for id in ids {
            self.kill(*id);
        }
        let mut reports = Vec::new();
        for id in ids {
            let disk = self
                .disks
                .get_mut(id)
                .with_context(|| format!("no disk for node {id}"))?;
            let report = disk
                .power_cut(Some(tear_seed.wrapping_add(*id)))
                .with_context(|| format!("power cut of node {id}'s file system"))?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Runs each node (from its next start) in the network namespace named
    /// here (`raft-lab node --netns NAME`).
    pub fn set_namespaces(&mut self, namespaces: BTreeMap<NodeId, String>) {
        self.namespaces = namespaces;
    }

    /// Node `id`'s power-loss file system, if the nodes run on them.
    pub fn disk(&self, id: NodeId) -> Option<&PowerFs> {
        self.disks.get(&id)
    }

    /// Injects disk faults into node `id`'s file system (the default: none).
    pub fn set_disk_faults(&self, id: NodeId, faults: DiskFaults) {
        if let Some(disk) = self.disks.get(&id) {
            disk.set_faults(faults);
        }
    }

    pub fn log_file(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// Starts node `id` (the first start creates its data directory).
    pub fn start(&mut self, id: NodeId) -> anyhow::Result<()> {
        let data_dir = self.data_dir(id);
        let log = self.log_file(id);
        let config_path = self.dir.join(format!("node-{id}.toml"));
        let trace_dir = self.dir.join("traces");
        let node = self
            .nodes
            .get_mut(&id)
            .with_context(|| format!("no node {id}"))?;
        if node.process.is_some() || node.retired {
            return Ok(());
        }
        let s = &self.settings;
        let config = FileConfig {
            cluster_id: Some(s.cluster_id.clone()),
            id: Some(id),
            data_dir: Some(data_dir),
            election_timeout_ms: Some(s.election_timeout_ms),
            heartbeat_ms: Some(s.heartbeat_ms),
            snapshot_threshold: Some(s.snapshot_threshold),
            check_quorum: Some(s.check_quorum),
            pre_vote: Some(s.pre_vote),
            trace_dir: s.trace.then_some(trace_dir),
            // The run validates every node's whole trace once it stops: keep
            // every segment (compact, rotated at the node's default size).
            trace_keep_files: Some(0),
            members: Some(node.members.clone()),
            listen: Some(node.listen.to_string()),
            ..FileConfig::default()
        };
        let mut launch = Launch::new(&self.bin, "node", config, &config_path)
            .log_to(&log)
            .log_level(&s.log_level)
            .listener(node.listener.clone())
            .init(!node.initialized);
        if node.join && !node.initialized {
            launch = launch.arg("--join");
        }
        if let Some(bug) = s.seeded_bug {
            launch = launch.arg("--seeded-bug").arg(bug.name());
        }
        if let Some(namespace) = self.namespaces.get(&id) {
            launch = launch.arg("--netns").arg(namespace);
        }
        let process = launch.spawn()?;
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, process.pid());
        node.process = Some(process);
        node.initialized = true;
        node.paused = false;
        Ok(())
    }

    /// Waits until every running node serves (after the first start).
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        for node in self.nodes.values_mut() {
            if let Some(process) = &mut node.process {
                process.wait_ready(timeout).await?;
            }
        }
        Ok(())
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.process.is_some())
    }

    pub fn is_paused(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.paused)
    }

    /// SIGKILL: the process dies at once, mid-write if it was writing.
    pub fn kill(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(mut process) = node.process.take()
        {
            self.pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            process.kill();
            node.paused = false;
        }
    }

    /// SIGSTOP: the process freezes (timers, sockets and all).
    pub fn pause(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(process) = &mut node.process
            && !node.paused
        {
            process.signal("STOP");
            node.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(process) = &mut node.process
            && node.paused
        {
            process.signal("CONT");
            node.paused = false;
        }
    }

    /// Notices processes that exited on their own (a crash the harness did
    /// not cause is a finding) and forgets them so they can be restarted.
    pub fn reap(&mut self) {
        for (id, node) in &mut self.nodes {
            if let Some(process) = &mut node.process
                && let Some(status) = process.exited()
            {
                self.unexpected_exits.push((*id, status.to_string()));
                self.pids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id);
                node.process = None;
                node.paused = false;
            }
        }
    }

    /// Kills every process.
    pub fn stop_all(&mut self) {
        for id in self.all_ids() {
            self.resume(id);
            self.kill(id);
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop_all();
    }
}
