//! The node's command line, shared: the flags of `raft-node run` (one
//! [`RunArgs`], which the lab's `raft-lab node` flattens too, so the two
//! cannot drift apart) and of `raft-node init` (its [`SettingsArgs`]), how
//! they become a [`NodeConfig`], initialising a data directory, and running
//! a node until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use clap::Args;
use tracing_subscriber::EnvFilter;

use crate::config::{self, FileConfig, NodeConfig};
use crate::server;

/// `raft-node run`'s flags: the node's settings, and how to start.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Initialise the data directory first (see `raft-node init`), then run:
    /// for a new node's first start only. Refused if the directory is
    /// already initialised. Never put this in a service manager's command
    /// line: a node whose data directory is lost must not come back empty.
    #[arg(long)]
    pub init: bool,
    /// With --init: initialise the data directory to join a running cluster
    /// (see `raft-node init --join`) rather than to bootstrap a new one.
    #[arg(long, requires = "init")]
    pub join: bool,
    /// Serve on the listening TCP socket that is standard input (bound to
    /// the configured listen address, which is checked) instead of binding:
    /// for harnesses that own the node's port (raft_node::launch), so that
    /// it is never released between being chosen and being served.
    #[arg(long, hide = true)]
    pub listen_on_stdin: bool,
}

impl RunArgs {
    /// The config file (if any) overridden by the flags, validated.
    pub fn config(self) -> anyhow::Result<NodeConfig> {
        self.settings.config()
    }

    /// What `--init` and `--join` ask for.
    pub fn init_mode(&self) -> InitMode {
        match (self.init, self.join) {
            (false, _) => InitMode::None,
            (true, false) => InitMode::Bootstrap,
            (true, true) => InitMode::Join,
        }
    }
}

/// Whether, and how, a node's data directory is initialised before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMode {
    /// It must be initialised already (every start but the first).
    None,
    /// A member of a new cluster: its configuration is the config file's
    /// `members`.
    Bootstrap,
    /// A server that will join a running cluster: it records no
    /// configuration, never campaigns, and waits for the leader to add it
    /// (`raft-node client member add`) and bring it the configuration.
    Join,
}

impl InitMode {
    /// Initialises `config`'s data directory as asked; the incarnation drawn.
    pub fn init(self, config: &NodeConfig) -> anyhow::Result<Option<String>> {
        Ok(match self {
            InitMode::None => None,
            InitMode::Bootstrap => Some(server::init_data_dir(config)?),
            InitMode::Join => Some(server::init_data_dir_to_join(config)?),
        })
    }
}

/// `raft-node init`'s flags: the node's settings, and whether it joins.
#[derive(Args, Clone, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Initialise a server that will join a running cluster: no
    /// configuration is recorded, so the node never campaigns and waits for
    /// the leader to add it (`raft-node client member add --id ID --address
    /// HOST:PORT`); the config file's `members` need only list this node
    /// (the others' addresses come from the leader).
    #[arg(long)]
    pub join: bool,
    /// Seed a NEW cluster from a backup (`raft-node client snapshot save
    /// FILE`): the data directory starts at the backup's state, with this
    /// config's cluster id and members. Initialise every member of the new
    /// cluster from the same file, then start them (impl/README.md, "Backup
    /// and restore").
    #[arg(long, value_name = "FILE", conflicts_with = "join")]
    pub restore: Option<PathBuf>,
}

/// A node's settings: a TOML config file and/or flags (flags win).
#[derive(Args, Clone, Debug)]
pub struct SettingsArgs {
    /// TOML config file (see the crate docs of `config` for its keys).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The cluster's name: every peer message carries it, and a node refuses
    /// messages of another cluster (and a data directory of another one).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// This node's id (one of the members).
    #[arg(long)]
    pub id: Option<u64>,
    /// Address to bind (default: this node's member address).
    #[arg(long)]
    pub listen: Option<String>,
    /// A member, as ID=HOST:PORT; repeat for every member, this node included.
    #[arg(long = "peer", value_name = "ID=HOST:PORT")]
    pub peers: Vec<String>,
    /// Where the node keeps its log, hard state and snapshots (must have
    /// been initialised: `raft-node init` or `--init`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve Prometheus metrics (/metrics) and readiness (/health) over HTTP on this address.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Election timeout range in milliseconds, as LOW,HIGH.
    #[arg(long, value_name = "LOW,HIGH")]
    pub election_timeout_ms: Option<String>,
    /// How often the leader sends AppendEntries when it has nothing new
    /// (well below the election timeout's lower end).
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Compact the log at most this many applied entries past the last
    /// snapshot; each member at its own point (id mod 8 eighths in), so
    /// the members of a quorum do not all snapshot at once.
    #[arg(long)]
    pub snapshot_threshold: Option<u64>,
    /// Pipelined replication: AppendEntries requests in flight to each
    /// follower at once (default 0: one at a time, the next only after the
    /// answer).
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,
    /// Record every core event into DIR (format raft-trace/5), for `raft-interop
    /// validate DIR` (or `validate --follow DIR`, while it runs) to replay through
    /// the model. Low overhead: one compressed write per batch, no fsync. Files
    /// DIR/node-<id>.<seq>.jsonl.zst, a new one at every start and every
    /// --trace-rotate-mb, the newest --trace-keep-files kept.
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// The trace's form: compact (zstd over the JSON lines; the default) or json.
    #[arg(long, value_name = "compact|json")]
    pub trace_format: Option<String>,
    /// Start the next trace segment once one holds this many MiB [default: 64; 0: never].
    #[arg(long, value_name = "MIB")]
    pub trace_rotate_mb: Option<f64>,
    /// Trace segments kept per node, the oldest deleted [default: 16; 0: all].
    #[arg(long, value_name = "N")]
    pub trace_keep_files: Option<usize>,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

impl SettingsArgs {
    /// The config file (if any) overridden by the flags, validated.
    pub fn config(self) -> anyhow::Result<NodeConfig> {
        let base = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let members = if self.peers.is_empty() {
            None
        } else {
            Some(
                self.peers
                    .iter()
                    .map(|text| config::parse_member(text))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let election_timeout_ms = self
            .election_timeout_ms
            .as_deref()
            .map(|text| {
                let parts: Vec<&str> = text.split(',').collect();
                match parts.as_slice() {
                    [low, high] => Ok([low.trim().parse()?, high.trim().parse()?]),
                    _ => anyhow::bail!("--election-timeout-ms takes LOW,HIGH, e.g. 300,600"),
                }
            })
            .transpose()?;
        let flags = FileConfig {
            cluster_id: self.cluster_id,
            id: self.id,
            listen: self.listen,
            data_dir: self.data_dir,
            metrics: self.metrics,
            election_timeout_ms,
            heartbeat_ms: self.heartbeat_ms,
            snapshot_threshold: self.snapshot_threshold,
            max_append_entries: None,
            check_quorum: None,
            pre_vote: None,
            parallel_write: None,
            max_inflight: self.max_inflight,
            min_free_bytes: None,
            trace_dir: self.trace_dir,
            trace_format: self.trace_format,
            trace_rotate_mb: self.trace_rotate_mb,
            trace_keep_files: self.trace_keep_files,
            tls_cert: self.tls.tls_cert,
            tls_key: self.tls.tls_key,
            tls_ca: self.tls.tls_ca,
            members,
        };
        Ok(NodeConfig::from_file_config(base.merge(flags))?)
    }
}

/// Logs to stderr with `level` as the filter, else the RAFT_LOG environment
/// variable, else RUST_LOG, else "info".
pub fn init_logging(level: Option<&str>) {
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("RAFT_LOG").ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: `cluster` sends node logs to files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A command's `main`: logs with `log_level`, runs `command` on a
/// multi-threaded tokio runtime, and turns its outcome into the exit status
/// (an error is printed with its causes). Both binaries, raft-node and
/// raft-lab, end this way.
pub fn run_command(
    log_level: Option<&str>,
    command: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    init_logging(log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (unix) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `raft-node init`: initialises the node's data directory, once (see
/// [`server::init_data_dir`]), and says so on standard output.
/// `raft-node init --restore FILE`: initialises the node's data directory
/// from a backup, as a member of a new cluster (see [`crate::backup`]).
pub fn restore_node(config: &NodeConfig, file: &std::path::Path) -> anyhow::Result<()> {
    let restored = crate::backup::restore(config, file)?;
    println!(
        "initialised {} for node {} of the new cluster {:?} (incarnation {}) from {}: log index \
         {} (term {}), {} keys, members {:?}; initialise every member from the same file, then \
         start each with `raft-node run`",
        config.data_dir.display(),
        config.id,
        config.cluster_id,
        restored.incarnation,
        file.display(),
        restored.index,
        restored.term,
        restored.keys,
        config.members.keys().collect::<Vec<_>>()
    );
    Ok(())
}

pub fn init_node(config: &NodeConfig, mode: InitMode) -> anyhow::Result<()> {
    let incarnation = mode.init(config)?.unwrap_or_default();
    println!(
        "initialised {} for node {} of cluster {:?} (incarnation {incarnation}); start the node \
         with `raft-node run` (without --init), now and at every later start",
        config.data_dir.display(),
        config.id,
        config.cluster_id
    );
    if mode == InitMode::Join {
        println!(
            "it joins: once it runs, add it from any machine that reaches the cluster with \
             `raft-node client --endpoints ... member add --id {} --address {}`",
            config.id,
            config
                .members
                .get(&config.id)
                .map_or("HOST:PORT", String::as_str)
        );
    }
    Ok(())
}

/// Runs one node until SIGTERM or Ctrl-C: its data directory initialised
/// first if `init` (a new node's first start only), the metrics recorder (if
/// configured), the listener (bound here, or with `listen_on_stdin` the
/// socket given as standard input), the node.
pub async fn run_node(
    config: NodeConfig,
    listen_on_stdin: bool,
    init: InitMode,
) -> anyhow::Result<()> {
    disable_transparent_huge_pages();
    if config.metrics.is_some() {
        // The node serves it, with /health, on that address (server::start).
        crate::metrics::install_recorder(&config.cluster_id, config.id)?;
    }
    let listener = if listen_on_stdin {
        inherited_listener(&config)?
    } else {
        server::bind(&config).await?
    };
    // After the port is ours: a node that cannot serve leaves its data
    // directory uninitialised, and the same command can be run again.
    if let Some(incarnation) = init.init(&config)? {
        tracing::info!(
            ?init,
            node = config.id,
            %incarnation,
            "initialised data directory {}",
            config.data_dir.display()
        );
    }
    let node = server::start(config, listener).await?;
    node.run_until(shutdown_signal()).await
}

/// Turns transparent huge pages off for this process.
///
/// Why: mimalloc asks for huge pages on its arenas (`madvise(MADV_HUGEPAGE)`),
/// so the first touch of each 2 MiB of them, and of each range it gave back
/// to the kernel after a second unused, has the kernel zero a whole 2 MiB
/// page while the thread that touched it waits. On a loaded node those
/// faults were 3 % of a leader's CPU and 6 % of a follower's (put x16, issue
/// 17), and they landed on requests: p99 of puts at 16 clients 4.5-4.7 ms
/// with them, 2.6-2.7 ms without. A node's heap is small and turns over
/// fast; it gains nothing from huge pages that is worth those stalls.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(err) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(%err, "could not turn transparent huge pages off (prctl PR_SET_THP_DISABLE): page faults may stall requests");
    }
}

/// The listening socket a harness passed as standard input: it must be a
/// TCP socket bound to exactly the configured listen address, so the node
/// serves where its configuration (and its peers') says, as when it binds.
fn inherited_listener(config: &NodeConfig) -> anyhow::Result<tokio::net::TcpListener> {
    use std::os::fd::AsFd;
    let socket = std::io::stdin().as_fd().try_clone_to_owned()?;
    let listener = std::net::TcpListener::from(socket);
    let address = listener.local_addr().map_err(|err| {
        anyhow::anyhow!("--listen-on-stdin: standard input is not a TCP socket ({err})")
    })?;
    if address != config.listen {
        anyhow::bail!(
            "--listen-on-stdin: the socket given is bound to {address}, but node {} is \
             configured to listen on {}",
            config.id,
            config.listen
        );
    }
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}
