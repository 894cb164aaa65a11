//! Assembling a node: storage, core, event loop, peer senders and the gRPC
//! server (peer service, client service, health, reflection) on one port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use raft_model::Server;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin_service::AdminService;
use crate::config::NodeConfig;
use crate::etcd_service::{Etcd, EtcdCluster, EtcdKv, EtcdMaintenance};
use crate::kv_service::KvService;
use crate::limits::{INBOX_CAPACITY, MAX_MESSAGE_BYTES};
use crate::node::{self, EventLoop, NodeError};
use crate::peer_client::Peers;
use crate::peer_service::PeerService;
use crate::proto;
use crate::readiness::Readiness;
use crate::storage::{Identity, Recovered, Storage, StorageError};
use crate::types::{Core, Input, NodeStatus, SnapshotReport};

/// A running node. Dropping it does not stop it; call [`RunningNode::stop`].
pub struct RunningNode {
    pub id: u64,
    pub address: SocketAddr,
    inbox: mpsc::Sender<Input>,
    event_loop: JoinHandle<Result<(), NodeError>>,
    peer_tasks: Vec<JoinHandle<()>>,
    /// Mirrors the loop's readiness into gRPC health.
    health_task: JoinHandle<()>,
    /// Where `/metrics` and `/health` are served over HTTP, if configured
    /// (`metrics`; with port 0, the port the OS chose).
    pub metrics_address: Option<SocketAddr>,
    http_task: Option<JoinHandle<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// Binds the node's port, failing clearly if it is taken.
pub async fn bind(config: &NodeConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.listen).await.map_err(|err| {
        anyhow::anyhow!(
            "node {} cannot listen on {}: {err}{}",
            config.id,
            config.listen,
            if err.kind() == std::io::ErrorKind::AddrInUse {
                " (is another node or program using this port?)"
            } else {
                ""
            }
        )
    })
}

/// Whose data the node's data directory holds, as its configuration says.
pub fn identity(config: &NodeConfig) -> Identity {
    Identity {
        cluster_id: config.cluster_id.clone(),
        node_id: config.id,
        members: config.members.keys().copied().collect(),
    }
}

/// Initialises the node's data directory, once, before its first start
/// (`raft-node init`, `run --init`); returns the incarnation drawn for it.
/// Refused if the directory is already initialised (see
/// [`Storage::init`]). [`start`] never creates a data directory.
pub fn init_data_dir(config: &NodeConfig) -> Result<String, StorageError> {
    Storage::init(&config.data_dir, &identity(config))
}

/// Initialises the data directory of a node that will *join* a running
/// cluster (`raft-node init --join`, `run --init --join`): it records no
/// members, so the node starts knowing no configuration, never campaigns
/// (the core lets only a voter of its configuration time out), and waits
/// for the leader's AppendEntries or InstallSnapshot, which bring it the
/// configuration once an operator adds it (`raft-node client member add`).
/// The config file's `members` then only say where servers are reached.
pub fn init_data_dir_to_join(config: &NodeConfig) -> Result<String, StorageError> {
    let identity = Identity {
        members: Vec::new(),
        ..identity(config)
    };
    Storage::init(&config.data_dir, &identity)
}

/// The core a node runs: the durable state its storage recovered, with the
/// deployment's constants from its configuration.
pub(crate) fn recovered_core(config: &NodeConfig, recovered: Recovered) -> Core {
    Server::recover(
        config.id,
        recovered.current_term,
        recovered.voted_for,
        recovered.snapshot,
        recovered.log,
    )
    .with_max_append_entries(config.max_append_entries)
    .with_check_quorum(config.check_quorum)
    .with_pre_vote(config.pre_vote)
    .with_parallel_write(config.parallel_write)
    .with_max_inflight(config.max_inflight)
}

/// Opens the data directory (which [`init_data_dir`] initialised), recovers,
/// and starts serving on `listener`.
pub async fn start(mut config: NodeConfig, listener: TcpListener) -> anyhow::Result<RunningNode> {
    // Bound first, so that a taken port stops the node before anything else.
    let http_listener = match config.metrics {
        Some(address) => Some(crate::metrics::bind(address).await?),
        None => None,
    };
    let identity = identity(&config);
    let dir = config.data_dir.clone();
    let (storage, recovered) =
        tokio::task::spawn_blocking(move || Storage::open(&dir, &identity)).await??;
    let storage = Arc::new(storage);
    #[cfg(feature = "seeded-bugs")]
    if config.seeded_bugs.skip_fdatasync {
        storage.seed_skip_fdatasync();
    }
    if recovered.repaired {
        warn!(
            dir = %config.data_dir.display(),
            "the log file ended in a torn write, which was cut off: that batch's fdatasync never returned, so nothing in it was ever acknowledged"
        );
    }
    info!(
        node = config.id,
        incarnation = %recovered.incarnation,
        term = recovered.current_term,
        snapshot_index = recovered.snapshot.meta.last_index,
        last_log_index = recovered.log.last_index(),
        "recovered from {}",
        config.data_dir.display()
    );
    config.incarnation.clone_from(&recovered.incarnation);
    let config = Arc::new(config);
    let initial_members = recovered.initial_members.clone();
    let core = recovered_core(&config, recovered);
    let trace = match &config.trace_dir {
        Some(dir) => crate::trace::Tracer::open(
            dir,
            config.trace,
            &config.cluster_id,
            &initial_members,
            &core,
        )
        .map_err(|err| anyhow::anyhow!("cannot open the trace in {}: {err}", dir.display()))?,
        None => crate::trace::Tracer::default(),
    };

    let (inbox_tx, inbox) = mpsc::channel(INBOX_CAPACITY);
    let (readiness_tx, readiness) = watch::channel(Readiness::starting());
    // The configuration and address book, published by the loop after
    // every batch that changes them (crate::members).
    let (directory_tx, directory) = watch::channel(Arc::new(crate::members::Directory {
        addresses: config.members.clone(),
        ..Default::default()
    }));
    let peers = Peers::new(&config, inbox_tx.clone()).with_identity(directory.clone());
    let event_loop = EventLoop::new(
        config.clone(),
        core,
        storage.clone(),
        peers,
        inbox,
        inbox_tx.clone(),
    )
    .with_trace(trace)
    .with_readiness(readiness_tx)
    .with_directory(directory_tx);
    let event_loop = node::spawn_loop(event_loop);

    let (metrics_address, http_task) = match http_listener {
        Some(http) => (
            Some(http.local_addr()?),
            Some(crate::metrics::serve(http, readiness.clone())),
        ),
        None => (None, None),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING until the loop has found a leader (crate::readiness).
    let health_task = tokio::spawn(publish_health(readiness, health));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // The same for v1alpha: older grpcurl and grpcui speak only it.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let peer_service = proto::peer::raft_peer_server::RaftPeerServer::new(PeerService::new(
        &config,
        inbox_tx.clone(),
        directory.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let disk_space = crate::disk_space::DiskSpace::new(&config.data_dir, config.min_free_bytes);
    // Aborted when the node stops (the peer senders are the event loop's:
    // they end with it, crate::peer_client::Peers).
    let peer_tasks = vec![disk_space.spawn_monitor()];
    let kv_service = proto::kv::kv_server::KvServer::new(
        KvService::new(&config, inbox_tx.clone(), directory.clone())
            .with_disk_space(disk_space.clone()),
    );
    let admin_service = proto::admin::admin_server::AdminServer::new(AdminService::new(
        &config,
        inbox_tx.clone(),
        directory.clone(),
    ));
    // etcd's v3 API beside the native one (crate::etcd_service).
    let etcd = Etcd::new(&config, inbox_tx.clone(), directory.clone(), storage)
        .with_disk_space(disk_space);
    let etcd_kv = proto::etcdserverpb::kv_server::KvServer::new(EtcdKv(etcd.clone()));
    let etcd_cluster =
        proto::etcdserverpb::cluster_server::ClusterServer::new(EtcdCluster(etcd.clone()));
    let etcd_maintenance =
        proto::etcdserverpb::maintenance_server::MaintenanceServer::new(EtcdMaintenance(etcd));
    let address = listener.local_addr()?;
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.server())?;
    }
    let server = tokio::spawn(
        builder
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .add_service(peer_service)
            .add_service(kv_service)
            .add_service(admin_service)
            .add_service(etcd_kv)
            .add_service(etcd_cluster)
            .add_service(etcd_maintenance)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            // `Server::tcp_nodelay` does not reach a listener we pass in; without
            // it Nagle and delayed ACKs add ~40 ms to every small reply. Each
            // connection's writes are batched (crate::batched_io): an answer's
            // frames leave in one write.
            .serve_with_incoming_shutdown(
                tokio_stream::StreamExt::map(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    |accepted| accepted.map(crate::batched_io::BatchedWrites::new),
                ),
                async {
                    let _ = shutdown_rx.await;
                },
            ),
    );
    info!(node = config.id, %address, cluster = %config.cluster_id, "serving");
    Ok(RunningNode {
        id: config.id,
        address,
        inbox: inbox_tx,
        event_loop,
        peer_tasks,
        health_task,
        metrics_address,
        http_task,
        server,
        shutdown: Some(shutdown),
    })
}

/// Mirrors the event loop's readiness into gRPC health, for the Kv service
/// and for the whole server (the empty service name, which most health
/// probes ask about). When the loop stops, the node serves no more.
async fn publish_health(
    mut readiness: watch::Receiver<Readiness>,
    health: tonic_health::server::HealthReporter,
) {
    loop {
        let serving = readiness.borrow_and_update().serving;
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        health.set_service_status("", status).await;
        health.set_service_status(KV_SERVICE, status).await;
        if readiness.changed().await.is_err() {
            break;
        }
    }
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    health
        .set_service_status(KV_SERVICE, tonic_health::ServingStatus::NotServing)
        .await;
}

/// The client service's name in gRPC health (its proto package and name).
pub const KV_SERVICE: &str =
    <proto::kv::kv_server::KvServer<KvService> as tonic::server::NamedService>::NAME;

impl RunningNode {
    /// The node's status, or None if its loop has stopped.
    pub async fn status(&self) -> Option<NodeStatus> {
        let (reply, answer) = oneshot::channel();
        self.inbox.send(Input::Status { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Takes a snapshot now and compacts the log (as the size threshold does).
    pub async fn take_snapshot(&self) -> Result<SnapshotReport, String> {
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send(Input::TakeSnapshot { reply })
            .await
            .map_err(|_| "the node has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the node has stopped".to_owned())?
    }

    /// Stops the node abruptly, like a crash: the event loop and peer tasks
    /// are aborted (nothing more is persisted or sent), then the server's
    /// connections are closed so that the port and data directory are free.
    pub async fn stop(mut self) {
        info!(node = self.id, "stopping");
        self.event_loop.abort();
        self.health_task.abort();
        if let Some(http) = &self.http_task {
            http.abort();
        }
        for task in &self.peer_tasks {
            task.abort();
        }
        let _ = (&mut self.event_loop).await;
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }

    /// Waits until the node fails (its loop or server stops) or `signal`
    /// completes; then stops it. Returns the failure, if any.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let result = tokio::select! {
            () = signal => {
                info!(node = self.id, "shutting down: signal received");
                Ok(())
            }
            result = &mut self.event_loop => match result {
                Ok(Ok(())) => Err(anyhow::anyhow!("the event loop stopped")),
                Ok(Err(err)) => Err(anyhow::Error::new(err).context("the node stopped")),
                Err(err) => Err(anyhow::anyhow!("the event loop failed: {err}")),
            },
            result = &mut self.server => match result {
                Ok(Ok(())) => Err(anyhow::anyhow!("the gRPC server stopped")),
                Ok(Err(err)) => Err(anyhow::Error::new(err).context("the gRPC server failed")),
                Err(err) => Err(anyhow::anyhow!("the gRPC server failed: {err}")),
            },
        };
        self.stop().await;
        result
    }
}
