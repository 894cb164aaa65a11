//! A client of the key-value service that finds and follows the leader.
//!
//! It holds a client id (random) and numbers its writes; a write is retried
//! with the *same* sequence number until it gets an answer, on whatever node
//! is leader by then, so the cluster applies it exactly once. A client issues
//! one operation at a time (`&mut self`), which is what the session table
//! assumes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Response, Status};

use crate::gateway::LEADER_ADDR_HEADER;
use crate::proto::admin as admin_pb;
use crate::proto::admin::admin_client::AdminClient;
use crate::proto::kv as pb;
use crate::proto::kv::kv_client::KvClient as GrpcClient;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the cluster refused the request: {}", .0.message())]
    Rejected(Status),
    #[error("no answer from the cluster within {timeout:?} (last error: {last})")]
    Timeout { timeout: Duration, last: String },
    #[error("bad endpoint {0:?}: expected HOST:PORT")]
    BadEndpoint(String),
    #[error("no endpoints given")]
    NoEndpoints,
    #[error("{address}: {message}")]
    Unreachable { address: String, message: String },
    #[error(
        "no node is listening: every endpoint refused the connection ({}); is the cluster running, and are these its client addresses?",
        .0.join(", ")
    )]
    AllRefused(Vec<String>),
}

/// One node's answer to a health check.
#[derive(Clone, Debug)]
pub struct Health {
    /// gRPC health says SERVING.
    pub serving: bool,
    /// gRPC health's status name (`SERVING`, `NOT_SERVING`, ...).
    pub status: String,
    /// The node's reason, from its status (None if it gave none).
    pub reason: Option<String>,
}

pub struct KvClient {
    endpoints: Vec<String>,
    channels: HashMap<String, Channel>,
    /// The leader as last reported by a node, if any.
    leader: Option<String>,
    cursor: usize,
    client_id: u64,
    next_seq: u64,
    /// How long one operation may take, retries included.
    pub op_timeout: Duration,
    /// How long one attempt may take.
    pub rpc_timeout: Duration,
    /// Mutual TLS, when the cluster uses it.
    tls: Option<crate::tls::Tls>,
    /// Give up at once when every endpoint refuses the connection (nothing
    /// listens: a command-line user's typo or a stopped cluster), rather
    /// than retry until `op_timeout`. Off by default: a program riding
    /// through a whole-cluster restart wants the retries.
    pub fail_when_all_refuse: bool,
}

impl KvClient {
    pub fn new(endpoints: Vec<String>) -> Result<KvClient, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        Ok(KvClient {
            endpoints,
            channels: HashMap::new(),
            leader: None,
            cursor: 0,
            client_id: rand::rng().random_range(1..u64::MAX),
            next_seq: 1,
            op_timeout: Duration::from_secs(15),
            rpc_timeout: Duration::from_secs(6),
            tls: None,
            fail_when_all_refuse: false,
        })
    }

    /// Talks TLS, presenting `tls`'s certificate (None: plaintext).
    pub fn with_tls(mut self, tls: Option<crate::tls::Tls>) -> Self {
        self.tls = tls;
        self.channels.clear();
        self
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The channel to `address`, made once and shared by every service.
    fn grpc(&mut self, address: &str) -> Result<Channel, ClientError> {
        if let Some(channel) = self.channels.get(address) {
            return Ok(channel.clone());
        }
        let channel = self.channel(address)?;
        self.channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// A lazily connecting channel to `address`, with TLS if configured.
    fn channel(&self, address: &str) -> Result<Channel, ClientError> {
        let mut endpoint = Endpoint::from_shared(crate::tls::uri(address, self.tls.is_some()))
            .map_err(|_| ClientError::BadEndpoint(address.to_owned()))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint =
                endpoint
                    .tls_config(tls.client())
                    .map_err(|err| ClientError::Unreachable {
                        address: address.to_owned(),
                        message: format!("TLS configuration: {err}"),
                    })?;
        }
        Ok(endpoint.connect_lazy())
    }

    /// Calls `op` on the leader, following redirects and retrying on
    /// unavailability until `op_timeout`.
    async fn call<T, F, Fut>(&mut self, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let started = Instant::now();
        let mut last = String::from("no attempt made");
        let mut failures = 0u32;
        // Endpoints that refused a connection since any node last answered.
        let mut refused = std::collections::BTreeSet::new();
        while started.elapsed() < self.op_timeout {
            let address = match &self.leader {
                Some(leader) => leader.clone(),
                None => self.endpoints[self.cursor % self.endpoints.len()].clone(),
            };
            let client = self.grpc(&address)?;
            let outcome = tokio::time::timeout(self.rpc_timeout, op(client)).await;
            let status = match outcome {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded(format!("no answer from {address}")),
            };
            last = format!("{address}: {}", status.message());
            if connection_refused(&status) {
                refused.insert(address.clone());
                if self.fail_when_all_refuse && self.endpoints.iter().all(|e| refused.contains(e)) {
                    return Err(ClientError::AllRefused(self.endpoints.clone()));
                }
            } else {
                refused.clear();
            }
            match status.code() {
                Code::FailedPrecondition => {
                    let hint = status
                        .metadata()
                        .get(LEADER_ADDR_HEADER)
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    match hint {
                        // Redirected to another node: go there at once.
                        Some(leader) if leader != address => {
                            self.leader = Some(leader);
                            continue;
                        }
                        _ => self.next_node(),
                    }
                }
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                    self.next_node();
                }
                // The connection broke under the call (tonic reports an h2
                // GOAWAY or reset from a node shutting down as Internal):
                // the node never answered, so try another. Every write
                // carries (client_id, seq), so a retry applies at most once.
                Code::Internal if transport_failed(&status) => self.next_node(),
                _ => return Err(ClientError::Rejected(status)),
            }
            failures += 1;
            let backoff = Duration::from_millis(20 * u64::from(failures.min(10)));
            tokio::time::sleep(backoff).await;
        }
        Err(ClientError::Timeout {
            timeout: self.op_timeout,
            last,
        })
    }

    /// Fails fast (see [`KvClient::fail_when_all_refuse`]).
    pub fn failing_when_all_refuse(mut self) -> Self {
        self.fail_when_all_refuse = true;
        self
    }

    fn next_node(&mut self) {
        self.leader = None;
        self.cursor = self.cursor.wrapping_add(1);
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub async fn put(&mut self, key: &str, value: &str) -> Result<pb::PutResponse, ClientError> {
        let request = pb::PutRequest {
            client_id: self.client_id,
            seq: self.take_seq(),
            key: key.to_owned(),
            value: value.to_owned(),
        };
        self.call(|channel| {
            let request = request.clone();
            async move { GrpcClient::new(channel).put(request).await }
        })
        .await
    }

    pub async fn get(&mut self, key: &str) -> Result<pb::GetResponse, ClientError> {
        let request = pb::GetRequest {
            key: key.to_owned(),
        };
        self.call(|channel| {
            let request = request.clone();
            async move { GrpcClient::new(channel).get(request).await }
        })
        .await
    }

    pub async fn delete(&mut self, key: &str) -> Result<pb::DeleteResponse, ClientError> {
        let request = pb::DeleteRequest {
            client_id: self.client_id,
            seq: self.take_seq(),
            key: key.to_owned(),
        };
        self.call(|channel| {
            let request = request.clone();
            async move { GrpcClient::new(channel).delete(request).await }
        })
        .await
    }

    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        new_value: Option<&str>,
    ) -> Result<pb::CasResponse, ClientError> {
        let request = pb::CasRequest {
            client_id: self.client_id,
            seq: self.take_seq(),
            key: key.to_owned(),
            expected: expected.map(str::to_owned),
            new_value: new_value.map(str::to_owned),
        };
        self.call(|channel| {
            let request = request.clone();
            async move { GrpcClient::new(channel).compare_and_swap(request).await }
        })
        .await
    }

    /// Moves leadership to node `to`, following the leader; answers once a
    /// leader of a later term is known (see the Admin service).
    pub async fn transfer_leader(
        &mut self,
        to: u64,
    ) -> Result<admin_pb::TransferLeaderResponse, ClientError> {
        let request = admin_pb::TransferLeaderRequest { to };
        self.call(|channel| async move { AdminClient::new(channel).transfer_leader(request).await })
            .await
    }

    /// A consistent snapshot of the cluster's state machine, streamed from
    /// the leader (etcd's `Maintenance.Snapshot`; any endpoint relays the
    /// leader's): see [`crate::backup::save`].
    pub async fn snapshot(
        &mut self,
    ) -> Result<tonic::Streaming<crate::proto::etcdserverpb::SnapshotResponse>, ClientError> {
        use crate::proto::etcdserverpb::maintenance_client::MaintenanceClient;
        self.call(|channel| async move {
            MaintenanceClient::new(channel)
                .snapshot(crate::proto::etcdserverpb::SnapshotRequest {})
                .await
        })
        .await
    }

    /// The configuration as the first node that answers sees it (any node
    /// answers: a follower's view may lag the leader's by a heartbeat).
    pub async fn member_list(&mut self) -> Result<admin_pb::MemberListResponse, ClientError> {
        self.call(|channel| async move {
            AdminClient::new(channel)
                .member_list(admin_pb::MemberListRequest {})
                .await
        })
        .await
    }

    /// Adds voter `id`, reached at `address` (its data directory initialised
    /// with `init --join`); answers once the change has committed.
    pub async fn add_member(
        &mut self,
        id: u64,
        address: &str,
    ) -> Result<admin_pb::ChangeMembersResponse, ClientError> {
        let request = admin_pb::AddMemberRequest {
            id,
            address: address.to_owned(),
            // The node taking the request asks the new server for it.
            incarnation: String::new(),
        };
        self.membership_call(|channel| {
            let request = request.clone();
            async move { AdminClient::new(channel).add_member(request).await }
        })
        .await
    }

    /// Adds learner `id`, reached at `address` (its data directory
    /// initialised with `init --join`); answers once the change has
    /// committed.
    pub async fn add_learner(
        &mut self,
        id: u64,
        address: &str,
    ) -> Result<admin_pb::ChangeMembersResponse, ClientError> {
        let request = admin_pb::AddMemberRequest {
            id,
            address: address.to_owned(),
            // The node taking the request asks the new server for it.
            incarnation: String::new(),
        };
        self.membership_call(|channel| {
            let request = request.clone();
            async move { AdminClient::new(channel).add_learner(request).await }
        })
        .await
    }

    /// Removes learner `id`; answers once the change has committed.
    pub async fn remove_learner(
        &mut self,
        id: u64,
    ) -> Result<admin_pb::ChangeMembersResponse, ClientError> {
        let request = admin_pb::RemoveMemberRequest { id };
        self.membership_call(|channel| async move {
            AdminClient::new(channel).remove_learner(request).await
        })
        .await
    }

    /// Makes learner `id` a voter once within `max_lag` entries of the
    /// leader (0: the server's default), removing voter `replaces` (0: none)
    /// in the same change; answers once the change has committed.
    pub async fn promote_learner(
        &mut self,
        id: u64,
        max_lag: u64,
        replaces: u64,
    ) -> Result<admin_pb::ChangeMembersResponse, ClientError> {
        let request = admin_pb::PromoteLearnerRequest {
            id,
            max_lag,
            replaces,
        };
        self.membership_call(|channel| async move {
            AdminClient::new(channel).promote_learner(request).await
        })
        .await
    }

    /// Removes voter `id`; answers once the change has committed.
    pub async fn remove_member(
        &mut self,
        id: u64,
    ) -> Result<admin_pb::ChangeMembersResponse, ClientError> {
        let request = admin_pb::RemoveMemberRequest { id };
        self.membership_call(|channel| async move {
            AdminClient::new(channel).remove_member(request).await
        })
        .await
    }

    /// Changes the voters to `members` in one joint step; `addresses` for
    /// the new ones.
    pub async fn change_members(
        &mut self,
        members: Vec<u64>,
        addresses: Vec<(u64, String)>,
    ) -> Result<admin_pb::ChangeMembersResponse, ClientError> {
        let request = admin_pb::ChangeMembersRequest {
            members,
            addresses: addresses
                .into_iter()
                .map(|(id, address)| admin_pb::Member {
                    id,
                    address,
                    incarnation: String::new(),
                })
                .collect(),
        };
        self.membership_call(|channel| {
            let request = request.clone();
            async move { AdminClient::new(channel).change_members(request).await }
        })
        .await
    }

    /// A membership change waits for the change to commit, which may take
    /// until a new member has caught up: one attempt may take as long as the
    /// node allows it ([`crate::admin_service::CHANGE_TIMEOUT`]), and a few
    /// seconds more.
    async fn membership_call<T, F, Fut>(&mut self, op: F) -> Result<T, ClientError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let (op_timeout, rpc_timeout) = (self.op_timeout, self.rpc_timeout);
        let longest = crate::admin_service::CHANGE_TIMEOUT + Duration::from_secs(5);
        self.rpc_timeout = longest;
        self.op_timeout = self.op_timeout.max(longest);
        let result = self.call(op).await;
        (self.op_timeout, self.rpc_timeout) = (op_timeout, rpc_timeout);
        result
    }

    /// The status of one node (no leader following).
    pub async fn status_of(&mut self, address: &str) -> Result<pb::StatusResponse, ClientError> {
        let mut client = GrpcClient::new(self.grpc(address)?);
        match tokio::time::timeout(self.rpc_timeout, client.status(pb::StatusRequest {})).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(ClientError::Unreachable {
                address: address.to_owned(),
                message: status.message().to_owned(),
            }),
            Err(_) => Err(ClientError::Unreachable {
                address: address.to_owned(),
                message: format!("no answer within {:?}", self.rpc_timeout),
            }),
        }
    }

    /// What one node's gRPC health says about the whole server (the empty
    /// service name, as a load balancer asks), with the node's own reason
    /// from its status when it gives one.
    pub async fn health_of(&mut self, address: &str) -> Result<Health, ClientError> {
        use tonic_health::pb::health_check_response::ServingStatus;
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel(address)?);
        let request = tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        };
        let status = match tokio::time::timeout(self.rpc_timeout, health.check(request)).await {
            Ok(Ok(response)) => response.into_inner().status,
            Ok(Err(status)) => {
                return Err(ClientError::Unreachable {
                    address: address.to_owned(),
                    message: status.message().to_owned(),
                });
            }
            Err(_) => {
                return Err(ClientError::Unreachable {
                    address: address.to_owned(),
                    message: format!("no answer within {:?}", self.rpc_timeout),
                });
            }
        };
        let serving = status == ServingStatus::Serving as i32;
        let status = ServingStatus::try_from(status).map_or_else(
            |_| format!("UNKNOWN({status})"),
            |s| s.as_str_name().to_owned(),
        );
        let reason = self.status_of(address).await.ok().map(|s| s.ready_reason);
        Ok(Health {
            serving,
            status,
            reason,
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

/// Whether a call failed because nothing listens at the address (the TCP
/// connection was refused), as opposed to a node that is slow or not leader.
/// True when `status` was made by the client's transport (the connection
/// failed or was closed), not sent by a node.
pub fn transport_failed(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if err.downcast_ref::<tonic::transport::Error>().is_some() {
            return true;
        }
        source = err.source();
    }
    false
}

fn connection_refused(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = err.source();
    }
    status.message().contains("Connection refused")
}
