//! etcd's v3 API on the node's client port: `etcdserverpb.KV` (Range, Put,
//! DeleteRange, Txn, Compact), `Cluster.MemberList` and `Maintenance.Status`,
//! next to the native `raft.kv.v1.Kv`, over the same event loop.
//!
//! - **Writes** (Put, DeleteRange, a Txn with a write in either branch) are
//!   one log entry each: an etcd transaction ([`crate::kv::Txn`]), evaluated
//!   atomically when it applies. They carry no client session (etcd has
//!   none): a client that retries a write after a timeout may apply it
//!   twice, as with etcd.
//! - **Reads** (Range, a Txn of reads only) are linearizable through the
//!   core's ReadIndex, as etcd's are by default; `serializable: true` is
//!   answered from what this node has applied, on any member, possibly stale.
//!   The node answers with an O(1) clone of the state machine and the range
//!   is evaluated on the service's task, not the event loop.
//! - **A follower forwards** a write or a linearizable read to the leader it
//!   knows (etcd's members do the same for their clients), once: a forwarded
//!   request that meets a non-leader fails with etcd's "not leader" rather
//!   than travelling on. With no leader known the answer is etcd's
//!   `UNAVAILABLE` "etcdserver: no leader", which etcd clients retry.
//! - **Headers**: `cluster_id` is a 64-bit FNV-1a hash of the cluster id
//!   (etcd's are numbers, this node's a name), `member_id` the node id,
//!   `revision` the store's revision that the answer reflects, `raft_term`
//!   the node's term (a write's: its entry's term).
//! - **No history**: the store keeps the current revision only, as if etcd
//!   compacted at every revision. A Range at the current revision is
//!   served; at an older one it gets etcd's "required revision has been
//!   compacted", at a later one "required revision is a future revision".
//!   `Compact` at or below the current revision succeeds (there is nothing
//!   left to compact), above it is a future revision.
//! - **Not served**: leases (a put with a lease gets etcd's "requested lease
//!   not found", for no lease exists), `ignore_value`/`ignore_lease`, nested
//!   transactions, range filters on revisions, Watch, Auth, and the rest of
//!   Cluster and Maintenance (UNIMPLEMENTED: their services are not
//!   registered beyond the calls above).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft_model::NodeId;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::etcd_convert::{self as convert, Refusal};
use crate::gateway::{Gateway, LEADER_ADDR_HEADER, LEADER_ID_HEADER};
use crate::kv::{KvCommand, KvOp, OpResult, Revision, Txn, TxnOp};
use crate::proto::etcdserverpb as pb;
use crate::storage::snapshot_file;
use crate::types::{Applied, ClientError, ImageRead, Input, KeyRead};

/// Set on a request a follower forwards to the leader: it is not forwarded again.
const FORWARDED_HEADER: &str = "raft-etcd-forwarded";

/// The 64-bit cluster id etcd's headers carry: FNV-1a of the cluster's name.
pub fn cluster_id_number(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the three etcd services share: the way into the event loop, and
/// channels to the leader for forwarding.
#[derive(Clone)]
pub struct Etcd {
    gateway: Gateway,
    config: Arc<NodeConfig>,
    cluster_id: u64,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// For Status's database sizes (the data directory's).
    storage: Arc<crate::storage::Storage>,
}

/// Where a request must go when this node cannot answer it.
enum Failure {
    Status(Status),
    /// Forward to this leader.
    Forward(NodeId),
}

impl Etcd {
    pub fn new(
        config: &Arc<NodeConfig>,
        inbox: mpsc::Sender<Input>,
        directory: crate::members::DirectoryWatch,
        storage: Arc<crate::storage::Storage>,
    ) -> Self {
        Etcd {
            gateway: Gateway::new(config, inbox, directory),
            config: config.clone(),
            cluster_id: cluster_id_number(&config.cluster_id),
            channels: Arc::default(),
            storage,
        }
    }

    /// Refuse writes while `space` says the disk is (nearly) full, as the
    /// native API does (crate::disk_space).
    pub fn with_disk_space(mut self, space: crate::disk_space::DiskSpace) -> Self {
        self.gateway = self.gateway.with_disk_space(space);
        self
    }

    pub fn header(&self, revision: Revision, term: u64) -> pb::ResponseHeader {
        pb::ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.config.id,
            revision,
            raft_term: term,
        }
    }

    /// The event loop's error as etcd's gRPC error, or a leader to forward to.
    fn failure(&self, err: ClientError, forwarded: bool) -> Failure {
        match err {
            ClientError::NotLeader { leader: None } => {
                Failure::Status(Status::unavailable("etcdserver: no leader"))
            }
            ClientError::NotLeader {
                leader: Some(leader),
            } => {
                if !forwarded
                    && leader != self.config.id
                    && self.gateway.address_of(leader).is_some()
                {
                    return Failure::Forward(leader);
                }
                let mut status = Status::failed_precondition("etcdserver: not leader");
                if let Some(address) = self.gateway.address_of(leader) {
                    let metadata = status.metadata_mut();
                    metadata.insert(LEADER_ID_HEADER, leader.into());
                    if let Ok(value) = address.parse() {
                        metadata.insert(LEADER_ADDR_HEADER, value);
                    }
                }
                Failure::Status(status)
            }
            // Proposed, then leadership moved: the write may yet commit.
            // Never forwarded (it would be proposed twice); etcd's own
            // answer, which etcd clients do not retry for a write.
            ClientError::LeadershipLost { .. } => {
                Failure::Status(Status::unavailable("etcdserver: leader changed"))
            }
            ClientError::Retry(message) => {
                Failure::Status(Status::unavailable(format!("etcdserver: {message}")))
            }
            ClientError::Apply(err) => Failure::Status(Status::invalid_argument(err.to_string())),
            ClientError::Invalid(message) => Failure::Status(Status::invalid_argument(message)),
            ClientError::Aborted(message) => Failure::Status(Status::aborted(message)),
            ClientError::Stopped => {
                Failure::Status(Status::unavailable("etcdserver: server stopped"))
            }
            ClientError::ConfigChange(error) => {
                Failure::Status(crate::gateway::config_change_status(error))
            }
        }
    }

    fn channel(&self, leader: NodeId) -> Result<Channel, Status> {
        let address = self
            .gateway
            .address_of(leader)
            .ok_or_else(|| Status::unavailable("etcdserver: no leader"))?
            .clone();
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = channels.get(&address) {
            return Ok(channel.clone());
        }
        let tls = self.config.tls.as_ref();
        let mut endpoint = Endpoint::from_shared(crate::tls::uri(&address, tls.is_some()))
            .map_err(|_| Status::internal(format!("bad leader address {address}")))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls.client())
                .map_err(|err| Status::internal(format!("TLS configuration: {err}")))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(address, channel.clone());
        Ok(channel)
    }

    /// Sends `request` to `leader`'s etcd service, marked as forwarded.
    async fn forward<T, R, F, Fut>(&self, leader: NodeId, request: T, call: F) -> Result<R, Status>
    where
        F: FnOnce(Channel, Request<T>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let channel = self.channel(leader)?;
        let mut request = Request::new(request);
        request.set_timeout(self.gateway.timeout);
        request
            .metadata_mut()
            .insert(FORWARDED_HEADER, "1".parse().expect("a valid header"));
        Ok(call(channel, request).await?.into_inner())
    }

    /// An image of the state machine, read as `serializable` says.
    async fn read(&self, serializable: bool, forwarded: bool) -> Result<ImageRead, Failure> {
        let answer = self
            .gateway
            .ask(|reply| Input::ReadImage {
                serializable,
                reply,
            })
            .await
            .map_err(Failure::Status)?;
        answer.map_err(|err| self.failure(err, forwarded))
    }

    /// One key's entry, read as `serializable` says.
    async fn read_key(
        &self,
        key: &[u8],
        serializable: bool,
        forwarded: bool,
    ) -> Result<KeyRead, Failure> {
        let key = key.to_vec();
        let answer = self
            .gateway
            .ask(|reply| Input::Read {
                key,
                serializable,
                reply,
            })
            .await
            .map_err(Failure::Status)?;
        answer.map_err(|err| self.failure(err, forwarded))
    }

    /// Proposes one etcd write (`convert::command`) and waits for it to
    /// apply.
    async fn write(&self, command: KvCommand, forwarded: bool) -> Result<Applied, Failure> {
        // This node's own disk first, before it proposes or forwards: the
        // native path's check (etcd itself answers a full backend with
        // RESOURCE_EXHAUSTED too, "database space exceeded").
        self.gateway.check_disk_space().map_err(Failure::Status)?;
        let answer = self
            .gateway
            .ask(|reply| Input::Propose { command, reply })
            .await
            .map_err(Failure::Status)?;
        answer.map_err(|err| self.failure(err, forwarded))
    }

    fn applied_txn(&self, applied: &Applied) -> Result<crate::kv::TxnResult, Status> {
        applied
            .result
            .txn
            .clone()
            .ok_or_else(|| Status::internal("an etcd write applied without a transaction result"))
    }
}

fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_HEADER)
}

fn refuse(refusal: Refusal) -> Status {
    refusal.into()
}

/// A write's command that does not hold the request it was made of: a bug.
fn not_rebuilt() -> Status {
    Status::internal("an etcd write's command does not hold its request")
}

/// Whether a branch writes.
fn writes(ops: &[TxnOp]) -> bool {
    ops.iter().any(|op| !matches!(op, TxnOp::Range(_)))
}

/// `etcdserverpb.KV`.
pub struct EtcdKv(pub Etcd);

#[tonic::async_trait]
impl pb::kv_server::Kv for EtcdKv {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let etcd = &self.0;
        let forwarded = is_forwarded(&request);
        let request = request.into_inner();
        let query = convert::range_query(&request).map_err(refuse)?;
        // One key (the common case) is read in the event loop like the
        // native Get; a range gets a clone of the image to walk here.
        let single = query.range.range_end.is_empty();
        let read = if single {
            etcd.read_key(&request.key, request.serializable, forwarded)
                .await
                .map(|read| {
                    let entry = read.kv.as_ref().map(|kv| (&request.key, kv));
                    let result = crate::kv::range_of(entry.into_iter().collect(), &query);
                    (result, read.revision, read.term)
                })
        } else {
            etcd.read(request.serializable, forwarded)
                .await
                .map(|read| (read.image.range(&query), read.image.revision, read.term))
        };
        let (result, revision, term) = match read {
            Ok(read) => read,
            Err(Failure::Status(status)) => return Err(status),
            Err(Failure::Forward(leader)) => {
                return etcd
                    .forward(leader, request, |channel, request| async move {
                        pb::kv_client::KvClient::new(channel).range(request).await
                    })
                    .await
                    .map(Response::new);
            }
        };
        if request.revision > revision {
            return Err(Status::out_of_range(
                "etcdserver: mvcc: required revision is a future revision",
            ));
        }
        if request.revision != 0 && request.revision < revision {
            return Err(Status::out_of_range(
                "etcdserver: mvcc: required revision has been compacted",
            ));
        }
        Ok(Response::new(convert::range_response(
            &result,
            etcd.header(revision, term),
        )))
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let etcd = &self.0;
        let forwarded = is_forwarded(&request);
        // The request goes into the command uncopied; forwarding, which is
        // rare, asks for it again (`convert::put_request`).
        let op = convert::put_op(request.into_inner()).map_err(refuse)?;
        let txn = Txn {
            success: vec![op],
            ..Txn::default()
        };
        let command = convert::command(txn).map_err(refuse)?;
        let applied = match etcd.write(command.clone(), forwarded).await {
            Ok(applied) => applied,
            Err(Failure::Status(status)) => return Err(status),
            Err(Failure::Forward(leader)) => {
                let request = convert::put_request(&command).ok_or_else(not_rebuilt)?;
                return etcd
                    .forward(leader, request, |channel, request| async move {
                        pb::kv_client::KvClient::new(channel).put(request).await
                    })
                    .await
                    .map(Response::new);
            }
        };
        let result = etcd.applied_txn(&applied)?;
        let prev_kv = match result.responses.first() {
            Some(OpResult::Put { prev_kv }) => prev_kv.as_ref().map(convert::key_value),
            _ => None,
        };
        Ok(Response::new(pb::PutResponse {
            header: Some(etcd.header(applied.result.revision, applied.term)),
            prev_kv,
        }))
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let etcd = &self.0;
        let forwarded = is_forwarded(&request);
        // As in `put`: not copied, asked for again to forward.
        let op = convert::delete_op(request.into_inner()).map_err(refuse)?;
        let txn = Txn {
            success: vec![op],
            ..Txn::default()
        };
        let command = convert::command(txn).map_err(refuse)?;
        let applied = match etcd.write(command.clone(), forwarded).await {
            Ok(applied) => applied,
            Err(Failure::Status(status)) => return Err(status),
            Err(Failure::Forward(leader)) => {
                let request = convert::delete_request(&command).ok_or_else(not_rebuilt)?;
                return etcd
                    .forward(leader, request, |channel, request| async move {
                        pb::kv_client::KvClient::new(channel)
                            .delete_range(request)
                            .await
                    })
                    .await
                    .map(Response::new);
            }
        };
        let result = etcd.applied_txn(&applied)?;
        let (deleted, prev_kvs) = match result.responses.first() {
            Some(OpResult::DeleteRange { deleted, prev_kvs }) => (
                *deleted as i64,
                prev_kvs.iter().map(convert::key_value).collect(),
            ),
            _ => (0, Vec::new()),
        };
        Ok(Response::new(pb::DeleteRangeResponse {
            header: Some(etcd.header(applied.result.revision, applied.term)),
            deleted,
            prev_kvs,
        }))
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let etcd = &self.0;
        let forwarded = is_forwarded(&request);
        // As in `put`: not copied, asked for again to forward.
        let txn = convert::txn(request.into_inner()).map_err(refuse)?;
        if !writes(&txn.success) && !writes(&txn.failure) {
            // Reads only: evaluated on a linearizable image, not logged.
            let read = match etcd.read(false, forwarded).await {
                Ok(read) => read,
                Err(Failure::Status(status)) => return Err(status),
                Err(Failure::Forward(leader)) => {
                    let request = convert::txn_request(&txn);
                    return etcd
                        .forward(leader, request, |channel, request| async move {
                            pb::kv_client::KvClient::new(channel).txn(request).await
                        })
                        .await
                        .map(Response::new);
                }
            };
            let mut scratch = read.image;
            let command = KvCommand::new(0, 0, KvOp::Txn(txn));
            let result = scratch
                .apply(read.index, &command)
                .map_err(|err| Status::internal(err.to_string()))?;
            let txn_result = result.txn.unwrap_or_default();
            return Ok(Response::new(convert::txn_response(
                &txn_result,
                etcd.header(result.revision, read.term),
            )));
        }
        let command = convert::command(txn).map_err(refuse)?;
        let applied = match etcd.write(command.clone(), forwarded).await {
            Ok(applied) => applied,
            Err(Failure::Status(status)) => return Err(status),
            Err(Failure::Forward(leader)) => {
                let KvOp::Txn(txn) = command.op() else {
                    return Err(not_rebuilt());
                };
                let request = convert::txn_request(txn);
                return etcd
                    .forward(leader, request, |channel, request| async move {
                        pb::kv_client::KvClient::new(channel).txn(request).await
                    })
                    .await
                    .map(Response::new);
            }
        };
        let result = etcd.applied_txn(&applied)?;
        Ok(Response::new(convert::txn_response(
            &result,
            etcd.header(applied.result.revision, applied.term),
        )))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let etcd = &self.0;
        let request = request.into_inner();
        let read = match etcd.read(true, true).await {
            Ok(read) => read,
            Err(Failure::Status(status)) => return Err(status),
            Err(Failure::Forward(_)) => return Err(Status::unavailable("etcdserver: no leader")),
        };
        if request.revision > read.image.revision {
            return Err(Status::out_of_range(
                "etcdserver: mvcc: required revision is a future revision",
            ));
        }
        Ok(Response::new(pb::CompactionResponse {
            header: Some(etcd.header(read.image.revision, read.term)),
        }))
    }
}

/// `etcdserverpb.Cluster`: the member list, from the configuration.
pub struct EtcdCluster(pub Etcd);

#[tonic::async_trait]
impl pb::cluster_server::Cluster for EtcdCluster {
    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let etcd = &self.0;
        let status = etcd.gateway.ask(|reply| Input::Status { reply }).await?;
        let read = etcd
            .read(true, true)
            .await
            .map_err(|failure| match failure {
                Failure::Status(status) => status,
                Failure::Forward(_) => Status::unavailable("etcdserver: no leader"),
            })?;
        let scheme = if etcd.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let members = status
            .members
            .iter()
            .map(|id| {
                // Peers and clients share one port.
                let urls: Vec<String> = etcd
                    .gateway
                    .address_of(*id)
                    .map(|address| format!("{scheme}://{address}"))
                    .into_iter()
                    .collect();
                pb::Member {
                    id: *id,
                    name: format!("node-{id}"),
                    peer_ur_ls: urls.clone(),
                    client_ur_ls: urls,
                    is_learner: false,
                }
            })
            .collect();
        Ok(Response::new(pb::MemberListResponse {
            header: Some(etcd.header(read.image.revision, status.term)),
            members,
        }))
    }
}

/// `etcdserverpb.Maintenance`: this member's status.
pub struct EtcdMaintenance(pub Etcd);

/// Bytes per `SnapshotResponse` (etcd sends 32 KiB; larger chunks cost
/// fewer messages and stay far below gRPC's 4 MiB message limit).
const SNAPSHOT_CHUNK: usize = 256 * 1024;

/// The stream `Maintenance.Snapshot` answers with.
type SnapshotStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for EtcdMaintenance {
    type SnapshotStream = SnapshotStream;

    /// A backup: the leader confirms by a ReadIndex round that it leads and
    /// has applied every acknowledged write, then streams the image it has
    /// applied, encoded as a snapshot file framed as a backup (crate::backup). A
    /// follower forwards the call and relays the leader's stream, so that
    /// any endpoint gives the same consistent backup.
    async fn snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        let etcd = &self.0;
        let forwarded = is_forwarded(&request);
        let answer = etcd
            .gateway
            .ask(|reply| Input::Backup { reply })
            .await?
            .map_err(|err| etcd.failure(err, forwarded));
        let backup = match answer {
            Ok(backup) => backup,
            Err(Failure::Status(status)) => return Err(status),
            Err(Failure::Forward(leader)) => {
                let stream = etcd
                    .forward(
                        leader,
                        request.into_inner(),
                        |channel, request| async move {
                            pb::maintenance_client::MaintenanceClient::new(channel)
                                .snapshot(request)
                                .await
                        },
                    )
                    .await?;
                return Ok(Response::new(Box::pin(stream)));
            }
        };
        let revision = backup.image.revision;
        let term = backup.meta.last_term;
        let bytes = tokio::task::spawn_blocking(move || {
            crate::backup::encode(&snapshot_file::encode(&backup.meta, &backup.image))
        })
        .await
        .map_err(|err| Status::internal(format!("encoding the snapshot failed: {err}")))?;
        let header = etcd.header(revision, term);
        let total = bytes.len();
        let chunks: Vec<Result<pb::SnapshotResponse, Status>> = bytes
            .chunks(SNAPSHOT_CHUNK)
            .scan(0, |sent, chunk| {
                *sent += chunk.len();
                Some(Ok(pb::SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: (total - *sent) as u64,
                    blob: chunk.to_vec(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                }))
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let etcd = &self.0;
        let status = etcd.gateway.ask(|reply| Input::Status { reply }).await?;
        let read = etcd
            .read(true, true)
            .await
            .map_err(|failure| match failure {
                Failure::Status(status) => status,
                Failure::Forward(_) => Status::unavailable("etcdserver: no leader"),
            })?;
        let errors = if status.readiness.serving {
            Vec::new()
        } else {
            vec![status.readiness.reason.to_string()]
        };
        // No database: the store is in memory, its log and snapshots in
        // files. Their sizes stand for the database's, as operators read
        // them (how much disk the node takes, how much of it is state).
        let storage = etcd.storage.clone();
        let usage = tokio::task::spawn_blocking(move || storage.disk_usage())
            .await
            .map_err(|err| Status::internal(format!("measuring the data directory: {err}")))?
            .map_err(|err| {
                Status::internal(format!("cannot read the data directory's sizes: {err}"))
            })?;
        Ok(Response::new(pb::StatusResponse {
            header: Some(etcd.header(read.image.revision, status.term)),
            version: format!("raft-node {}", env!("CARGO_PKG_VERSION")),
            db_size: i64::try_from(usage.bytes).unwrap_or(i64::MAX),
            leader: status.leader.unwrap_or(0),
            raft_index: status.commit_index,
            raft_term: status.term,
            raft_applied_index: status.applied_index,
            errors,
            db_size_in_use: i64::try_from(usage.in_use).unwrap_or(i64::MAX),
            is_learner: status.learners.contains(&status.id),
        }))
    }
}
