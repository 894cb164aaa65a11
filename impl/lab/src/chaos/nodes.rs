//! The cluster under test: one `raft-lab node` process per node, started,
//! killed (SIGKILL), paused (SIGSTOP) and resumed (SIGCONT) by the harness.
//!
//! Each node lists itself at its real address and every peer at the address
//! of the proxy for that directed link (see `proxy`). Clients talk to the
//! nodes directly. Every process is killed when [`Processes`] is dropped.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use raft_model::NodeId;

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
    /// A deliberately wrong node behaviour (see `crate::seeded_bugs`), to
    /// show the harness catches it.
    pub seeded_bug: Option<SeededBug>,
    pub log_level: String,
}

struct Node {
    listen: SocketAddr,
    /// `--peer` arguments as this node sees its members.
    members: Vec<String>,
    child: Option<Child>,
    paused: bool,
    initialized: bool,
}

pub struct Processes {
    bin: PathBuf,
    dir: PathBuf,
    settings: NodeSettings,
    nodes: BTreeMap<NodeId, Node>,
    /// Processes that exited without the harness killing them.
    pub unexpected_exits: Vec<(NodeId, String)>,
}

impl Processes {
    /// `members[id]` is the list of `ID=HOST:PORT` node `id` is given.
    pub fn new(
        bin: &Path,
        dir: &Path,
        settings: NodeSettings,
        listen: &BTreeMap<NodeId, SocketAddr>,
        members: BTreeMap<NodeId, Vec<String>>,
    ) -> Processes {
        let nodes = members
            .into_iter()
            .map(|(id, members)| {
                (
                    id,
                    Node {
                        listen: listen[&id],
                        members,
                        child: None,
                        paused: false,
                        initialized: false,
                    },
                )
            })
            .collect();
        Processes {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            settings,
            nodes,
            unexpected_exits: Vec::new(),
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn address(&self, id: NodeId) -> SocketAddr {
        self.nodes[&id].listen
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    pub fn log_file(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// Starts node `id` (the first start creates its data directory).
    pub fn start(&mut self, id: NodeId) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(id))
            .with_context(|| format!("cannot open {}", self.log_file(id).display()))?;
        let data_dir = self.data_dir(id);
        let trace_dir = self.dir.join("traces");
        let node = self
            .nodes
            .get_mut(&id)
            .with_context(|| format!("no node {id}"))?;
        if node.child.is_some() {
            return Ok(());
        }
        let s = &self.settings;
        let mut command = Command::new(&self.bin);
        command
            .args([
                "node",
                "--cluster-id",
                &s.cluster_id,
                "--id",
                &id.to_string(),
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--election-timeout-ms")
            .arg(format!(
                "{},{}",
                s.election_timeout_ms[0], s.election_timeout_ms[1]
            ))
            .args(["--heartbeat-ms", &s.heartbeat_ms.to_string()])
            .args(["--snapshot-threshold", &s.snapshot_threshold.to_string()])
            .args(["--log-level", &s.log_level])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for member in &node.members {
            command.args(["--peer", member]);
        }
        if s.trace {
            command.arg("--trace-dir").arg(&trace_dir);
        }
        if let Some(bug) = s.seeded_bug {
            command.args(["--seeded-bug", bug.name()]);
        }
        if !node.initialized {
            command.arg("--init");
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        node.child = Some(child);
        node.initialized = true;
        node.paused = false;
        Ok(())
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    pub fn is_paused(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.paused)
    }

    /// SIGKILL: the process dies at once, mid-write if it was writing.
    pub fn kill(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
            node.paused = false;
        }
    }

    /// SIGSTOP: the process freezes (timers, sockets and all).
    pub fn pause(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(child) = &node.child
            && !node.paused
        {
            signal(child.id(), "-STOP");
            node.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(child) = &node.child
            && node.paused
        {
            signal(child.id(), "-CONT");
            node.paused = false;
        }
    }

    /// Notices processes that exited on their own (a crash the harness did
    /// not cause is a finding) and forgets them so they can be restarted.
    pub fn reap(&mut self) {
        for (id, node) in &mut self.nodes {
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.unexpected_exits.push((*id, status.to_string()));
                node.child = None;
                node.paused = false;
            }
        }
    }

    /// Kills every process.
    pub fn stop_all(&mut self) {
        for id in self.ids() {
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

/// Sends a signal with the `kill` command (no unsafe FFI needed) to a
/// process this harness started.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
