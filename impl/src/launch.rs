//! Node processes, started one way: the quick start's `cluster`, the lab's
//! chaos harness and etcd comparison, and the tests that run real processes
//! all go through [`Launch`] and [`NodeProcess`].
//!
//! A launch writes the node's configuration as a TOML file (validated
//! exactly as the node will validate it), starts `PROGRAM COMMAND --config
//! FILE` — `raft-node run`, or the lab's `raft-lab node` — with its output
//! appended to a log file, and hands back the process: wait until it serves
//! ([`NodeProcess::wait_ready`]), signal it (pause and resume), notice that
//! it exited, kill it. A [`NodeProcess`] that is dropped is killed, so no
//! node outlives the harness or test that started it — unless the launch
//! says otherwise ([`Launch::kill_on_drop`]: `cluster`'s nodes outlive it).
//!
//! Clusters of processes must put every node's address in every node's
//! configuration before any of them starts. A harness that owns its ports
//! binds them first ([`loopback_listeners`]), writes the addresses it got
//! into the configurations, and hands each node its listening socket
//! ([`Launch::listener`]): the socket becomes the process's standard input
//! and the node is told `--listen-on-stdin`, so a port is never released
//! between being chosen and being served — no other program can take it,
//! and it stays the node's across kills and restarts (while no process
//! serves it, connections wait in its backlog, as for a paused node).

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_model::NodeId;

use crate::client::KvClient;
use crate::config::{FileConfig, NodeConfig};

/// How to start one node process.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The binary: `raft-node`, or the lab's `raft-lab`.
    pub program: PathBuf,
    /// Its command that runs a node: `run` (raft-node) or `node` (raft-lab).
    pub command: String,
    /// The node's settings, written to `config_path` at every start.
    pub config: FileConfig,
    pub config_path: PathBuf,
    /// Where the process's stdout and stderr are appended (None: discarded).
    pub log: Option<PathBuf>,
    /// `--log-level` (None: the node's default, from RAFT_LOG / RUST_LOG).
    pub log_level: Option<String>,
    /// More arguments after the config, e.g. the lab's `--seeded-bug NAME`.
    pub extra_args: Vec<String>,
    /// Whether dropping the [`NodeProcess`] kills the process (default: yes).
    pub kill_on_drop: bool,
    /// A listening socket the harness owns, bound to the node's address:
    /// passed as the process's standard input with `--listen-on-stdin`
    /// (None: the node binds its address itself).
    pub listener: Option<Arc<TcpListener>>,
    /// Start with `--init`: initialise the data directory first. For a
    /// node's first start only (a restart with it is refused: the directory
    /// is initialised already); never written into the config file.
    pub init: bool,
    /// Start the process in a process group of its own, so that it outlives
    /// the command that started it untouched by that terminal's Ctrl-C
    /// (`cluster add`'s node). Default: the starter's group.
    pub detach: bool,
}

impl Launch {
    /// `program command --config config_path`, with `config`, no log file.
    pub fn new(program: &Path, command: &str, config: FileConfig, config_path: &Path) -> Launch {
        Launch {
            program: program.to_owned(),
            command: command.to_owned(),
            config,
            config_path: config_path.to_owned(),
            log: None,
            log_level: None,
            extra_args: Vec::new(),
            kill_on_drop: true,
            listener: None,
            init: false,
            detach: false,
        }
    }

    /// Whether the process gets a process group of its own (see the field
    /// `detach`).
    pub fn detach(mut self, detach: bool) -> Launch {
        self.detach = detach;
        self
    }

    /// Whether the process starts with `--init` (a node's first start only).
    pub fn init(mut self, init: bool) -> Launch {
        self.init = init;
        self
    }

    /// Hands the node `listener` (bound to its address) instead of letting
    /// it bind: see the module docs.
    pub fn listener(mut self, listener: Arc<TcpListener>) -> Launch {
        self.listener = Some(listener);
        self
    }

    /// Appends the process's output to `log`.
    pub fn log_to(mut self, log: &Path) -> Launch {
        self.log = Some(log.to_owned());
        self
    }

    pub fn log_level(mut self, level: &str) -> Launch {
        self.log_level = Some(level.to_owned());
        self
    }

    pub fn arg(mut self, arg: &str) -> Launch {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// Whether dropping the process handle kills the process.
    pub fn kill_on_drop(mut self, kill: bool) -> Launch {
        self.kill_on_drop = kill;
        self
    }

    /// Validates the configuration exactly as the node will and writes it
    /// (its paths made absolute, since the node may run elsewhere).
    pub fn write_config(&self) -> anyhow::Result<NodeConfig> {
        let mut file = self.config.clone();
        file.data_dir = file.data_dir.as_deref().map(absolute).transpose()?;
        file.trace_dir = file.trace_dir.as_deref().map(absolute).transpose()?;
        let config = NodeConfig::from_file_config(file.clone())?;
        if let Some(parent) = self.config_path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&self.config_path, toml::to_string_pretty(&file)?)
            .with_context(|| format!("cannot write {}", self.config_path.display()))?;
        Ok(config)
    }

    /// Writes the configuration and starts the process.
    pub fn spawn(&self) -> anyhow::Result<NodeProcess> {
        let config = self.write_config()?;
        let mut command = Command::new(&self.program);
        command
            .arg(&self.command)
            .arg("--config")
            .arg(&self.config_path)
            .args(&self.extra_args)
            .stdin(Stdio::null());
        if self.init {
            command.arg("--init");
        }
        if self.detach {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        if let Some(listener) = &self.listener {
            // A duplicate of the socket, so the harness keeps its own.
            let socket = OwnedFd::from(listener.try_clone()?);
            command.arg("--listen-on-stdin").stdin(Stdio::from(socket));
        }
        if let Some(level) = &self.log_level {
            command.arg("--log-level").arg(level);
        }
        match &self.log {
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open log file {}", path.display()))?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        Ok(NodeProcess {
            child,
            exited: None,
            id: config.id,
            address: config.members[&config.id].clone(),
            tls: config.tls,
            log: self.log.clone(),
            kill_on_drop: self.kill_on_drop,
        })
    }
}

/// A running node process. Dropping it kills it (SIGKILL) and reaps it,
/// unless its launch said not to.
pub struct NodeProcess {
    child: Child,
    exited: Option<ExitStatus>,
    id: NodeId,
    address: String,
    tls: Option<crate::tls::Tls>,
    log: Option<PathBuf>,
    kill_on_drop: bool,
}

impl NodeProcess {
    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where clients reach the node (its member address).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How the process ended, if it has (reaping it); None while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits until the node answers a status request at its address (it has
    /// recovered its data directory and serves); fails if the process exits
    /// first or `timeout` passes.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut client = KvClient::new(vec![self.address.clone()])?.with_tls(self.tls.clone());
        client.rpc_timeout = Duration::from_millis(500);
        let mut last = String::from("no answer yet");
        while started.elapsed() < timeout {
            if let Some(status) = self.exited() {
                anyhow::bail!(
                    "node {} exited ({status}) while starting{}",
                    self.id,
                    self.see_log()
                );
            }
            match client.status_of(&self.address).await {
                Ok(_) => return Ok(()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "node {} did not serve at {} within {timeout:?} ({last}){}",
            self.id,
            self.address,
            self.see_log()
        )
    }

    fn see_log(&self) -> String {
        self.log
            .as_ref()
            .map(|log| format!("; see {}", log.display()))
            .unwrap_or_default()
    }

    /// Sends signal `name` (`STOP`, `CONT`, `TERM`, ...) unless the process
    /// has exited; returns whether it was delivered.
    pub fn signal(&mut self, name: &str) -> bool {
        self.exited().is_none() && signal(self.child.id(), name)
    }

    /// SIGKILL: the process dies at once, mid-write if it was writing (a
    /// paused process too); then it is reaped.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.kill_on_drop {
            self.kill();
        }
    }
}

/// Sends signal `name` (`STOP`, `CONT`, `KILL`, `INT`...) to process `pid`
/// with the `kill` command (no unsafe FFI needed). Meant for processes the
/// caller started. Returns whether it was delivered.
pub fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `count` listening sockets on 127.0.0.1, each on a port the OS chose
/// (port 0): the harness keeps them and hands each to its node
/// ([`Launch::listener`]), so no port is ever released for another program
/// to take.
pub fn loopback_listeners(count: usize) -> std::io::Result<Vec<Arc<TcpListener>>> {
    (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").map(Arc::new))
        .collect()
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(path)?)
}
