//! The clients: each loops over random get / put / delete / compare-and-swap
//! operations on a small key set and records every operation's invocation,
//! answer and timing.
//!
//! A write keeps its client id and sequence number across retries (at
//! whatever node leads by then), so the cluster applies it at most once and
//! a retry of a write that did apply returns its first answer. A write that
//! gets no answer before its deadline is recorded as indeterminate. Written
//! values are unique (`c<client>-<n>`), which makes histories easy to read
//! and lets the checker prune unanswered writes nobody saw.
//!
//! These clients deliberately do not use `client::KvClient`: they need to
//! know exactly when an operation's outcome is known, and they follow the
//! leader by id (`raft-leader-id`) to the node's real address, since the
//! addresses in the nodes' member lists are the harness's proxies.
//!
//! The same operations go through either of the node's client APIs
//! ([`Api`]): its own `raft.kv.v1.Kv`, or etcd's `etcdserverpb.KV` as an etcd
//! client would use it. etcd's API has no client sessions, so there a write
//! is retried only when the answer proves it was never proposed (no leader,
//! not the leader); any other failure leaves it indeterminate, as it would
//! leave an etcd client's write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_model::NodeId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::history::{Input, Micros, Operation, Output};
use raft_node::gateway::LEADER_ID_HEADER;
use raft_node::proto::etcdserverpb as etcd;
use raft_node::proto::etcdserverpb::kv_client::KvClient as EtcdClient;
use raft_node::proto::kv as pb;
use raft_node::proto::kv::kv_client::KvClient as GrpcClient;

/// Which client API the workload speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The node's own `raft.kv.v1.Kv` (writes deduplicated by client session).
    #[default]
    Native,
    /// etcd's `etcdserverpb.KV`: Range, Put and DeleteRange with prev_kv,
    /// and compare-and-swap as a Txn.
    Etcd,
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Api::Native => "native",
            Api::Etcd => "etcd",
        })
    }
}

/// Collects the history; shared by all clients.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            ops: Arc::default(),
        }
    }

    pub fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    fn record(&self, mut op: Operation) -> usize {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        op.id = ops.len();
        ops.push(op);
        ops.len() - 1
    }

    pub fn history(&self) -> Vec<Operation> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How a client's operation ended.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub ok: u64,
    /// Reads that got no answer, and writes the cluster refused outright.
    pub failed: u64,
    pub indeterminate: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.indeterminate += other.indeterminate;
    }
}

/// The client addresses of the cluster's members of the moment, shared by
/// the clients, the monitor and the harness (membership faults add and
/// remove members: clients follow), with a version bumped at every change.
#[derive(Clone, Default)]
pub struct Endpoints(Arc<Mutex<(u64, BTreeMap<NodeId, String>)>>);

impl Endpoints {
    pub fn new(addresses: BTreeMap<NodeId, String>) -> Endpoints {
        Endpoints(Arc::new(Mutex::new((0, addresses))))
    }

    /// The version and the addresses.
    pub fn snapshot(&self) -> (u64, BTreeMap<NodeId, String>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn insert(&self, id: NodeId, address: String) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.insert(id, address);
        guard.0 += 1;
    }

    pub fn remove(&self, id: NodeId) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.remove(&id);
        guard.0 += 1;
    }
}

/// Talks to the nodes directly, following the leader by id.
pub struct Connection {
    endpoints: Endpoints,
    /// The version of `endpoints` that `nodes` reflects.
    version: Option<u64>,
    nodes: BTreeMap<NodeId, (String, Channel)>,
    leader: Option<NodeId>,
    rng: StdRng,
    /// How long one operation may take, retries included.
    pub op_timeout: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
}

/// The answer to one operation, or why there is none.
enum Attempt<T> {
    Done(T),
    /// The cluster refused the request for good (it was not applied).
    Refused(Status),
    /// No answer in time.
    TimedOut,
}

impl Connection {
    pub fn new(endpoints: &Endpoints, seed: u64) -> anyhow::Result<Connection> {
        let mut connection = Connection {
            endpoints: endpoints.clone(),
            version: None,
            nodes: BTreeMap::new(),
            leader: None,
            rng: StdRng::seed_from_u64(seed),
            op_timeout: Duration::from_millis(1500),
            attempt_timeout: Duration::from_millis(800),
        };
        connection.refresh()?;
        Ok(connection)
    }

    /// Follows the members of the moment: a channel per member (kept while
    /// its address stays), none for a node no longer a member.
    fn refresh(&mut self) -> anyhow::Result<()> {
        let (version, addresses) = self.endpoints.snapshot();
        if self.version == Some(version) {
            return Ok(());
        }
        let mut nodes = BTreeMap::new();
        for (id, address) in addresses {
            let channel = match self.nodes.remove(&id) {
                Some((known, channel)) if known == address => channel,
                _ => Endpoint::from_shared(format!("http://{address}"))?
                    .connect_timeout(Duration::from_millis(300))
                    .tcp_nodelay(true)
                    .connect_lazy(),
            };
            nodes.insert(id, (address, channel));
        }
        self.nodes = nodes;
        if self.leader.is_some_and(|id| !self.nodes.contains_key(&id)) {
            self.leader = None;
        }
        self.version = Some(version);
        Ok(())
    }

    fn target(&mut self) -> Option<(NodeId, Channel)> {
        // A malformed address cannot come from the harness; keep the old
        // table if it did.
        let _ = self.refresh();
        let id = match self.leader {
            Some(id) => id,
            None => {
                let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
                *ids.get(self.rng.random_range(0..ids.len().max(1)))?
            }
        };
        Some((id, self.nodes.get(&id)?.1.clone()))
    }

    /// Runs `call` against the leader until it answers, is refused for
    /// good, or `op_timeout` passes.
    /// With `anywhere`, the first attempt goes to a random node rather than
    /// the known leader (reads do this half the time, as clients attached to
    /// different nodes would: a node that wrongly thinks it leads is asked too).
    /// With `Retry::WhenNotProposed`, a failure that does not prove the
    /// request was never proposed ends the operation as timed out
    /// (indeterminate) instead of being retried.
    async fn call<R, T, F, Fut>(
        &mut self,
        anywhere: bool,
        retry: Retry,
        request: R,
        mut call: F,
    ) -> Attempt<T>
    where
        R: Clone,
        F: FnMut(Channel, R) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let started = Instant::now();
        if anywhere {
            self.leader = None;
        }
        let mut failures = 0u64;
        while started.elapsed() < self.op_timeout {
            let Some((id, client)) = self.target() else {
                return Attempt::TimedOut;
            };
            let status =
                match tokio::time::timeout(self.attempt_timeout, call(client, request.clone()))
                    .await
                {
                    Ok(Ok(response)) => return Attempt::Done(response.into_inner()),
                    Ok(Err(status)) => status,
                    Err(_) => Status::deadline_exceeded("attempt timed out"),
                };
            if retry == Retry::WhenNotProposed && !never_proposed(&status) {
                return Attempt::TimedOut;
            }
            match status.code() {
                Code::FailedPrecondition => {
                    let hint = status
                        .metadata()
                        .get(LEADER_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<NodeId>().ok())
                        .filter(|hint| *hint != id && self.nodes.contains_key(hint));
                    self.leader = hint;
                    if hint.is_some() {
                        continue;
                    }
                }
                Code::InvalidArgument | Code::OutOfRange | Code::PermissionDenied => {
                    return Attempt::Refused(status);
                }
                _ => self.leader = None,
            }
            failures += 1;
            tokio::time::sleep(Duration::from_millis(10 * failures.min(10))).await;
        }
        Attempt::TimedOut
    }
}

/// When a failed attempt may be tried again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads, and writes the cluster deduplicates by client session.
    Always,
    /// Writes without a session (etcd's API): a retry of a write that was
    /// applied would apply it twice.
    WhenNotProposed,
}

/// Whether a failed etcd-API write certainly never reached the log: the node
/// knew of no leader, or was asked as leader and was not one (the node
/// forwards a follower's write to the leader, so a client sees "not leader"
/// only when the leader itself refused). A client's own deadline, a dropped
/// connection or a leader lost after proposing prove nothing.
fn never_proposed(status: &Status) -> bool {
    matches!(
        (status.code(), status.message()),
        (Code::Unavailable, "etcdserver: no leader")
            | (Code::FailedPrecondition, "etcdserver: not leader")
            | (
                Code::InvalidArgument | Code::OutOfRange | Code::PermissionDenied,
                _
            )
    )
}

/// One client of the workload.
pub struct Client {
    pub id: u64,
    connection: Connection,
    keys: Vec<String>,
    rng: StdRng,
    api: Api,
    next_seq: u64,
    /// The value this client last saw per key: what its compare-and-swaps expect.
    last_seen: BTreeMap<String, Option<String>>,
    pub counts: Counts,
}

impl Client {
    pub fn new(id: u64, api: Api, connection: Connection, keys: Vec<String>, seed: u64) -> Client {
        Client {
            id,
            connection,
            keys,
            rng: StdRng::seed_from_u64(seed),
            api,
            next_seq: 1,
            last_seen: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    /// Runs random operations until `until`.
    pub async fn run(mut self, recorder: Recorder, until: Instant) -> Counts {
        while Instant::now() < until {
            let key = self.keys[self.rng.random_range(0..self.keys.len())].clone();
            let input = match self.rng.random_range(0..10) {
                0..=3 => Input::Get,
                4..=6 => Input::Put {
                    value: self.fresh_value(),
                },
                7 => Input::Delete,
                _ => {
                    let expected = self.last_seen.get(&key).cloned().flatten();
                    let new_value = if self.rng.random_range(0..5) == 0 {
                        None
                    } else {
                        Some(self.fresh_value())
                    };
                    Input::Cas {
                        expected,
                        new_value,
                    }
                }
            };
            self.perform(&recorder, &key, input).await;
        }
        self.counts
    }

    /// One attempt sequence through the node's own API.
    async fn native(
        &mut self,
        anywhere: bool,
        seq: u64,
        key: &str,
        input: &Input,
    ) -> Attempt<Output> {
        let client_id = self.id;
        let key_owned = key.to_owned();
        match input {
            Input::Get => {
                let request = pb::GetRequest { key: key_owned };
                self.connection
                    .call(anywhere, Retry::Always, request, |channel, request| async move {
                        GrpcClient::new(channel).get(request).await
                    })
                    .await
                    .map(|r| Output::Value(r.value))
            }
            Input::Put { value } => {
                let request = pb::PutRequest {
                    client_id,
                    seq,
                    key: key_owned,
                    value: value.clone(),
                };
                self.connection
                    .call(false, Retry::Always, request, |channel, request| async move {
                        GrpcClient::new(channel).put(request).await
                    })
                    .await
                    .map(|r| Output::Previous(r.previous))
            }
            Input::Delete => {
                let request = pb::DeleteRequest {
                    client_id,
                    seq,
                    key: key_owned,
                };
                self.connection
                    .call(false, Retry::Always, request, |channel, request| async move {
                        GrpcClient::new(channel).delete(request).await
                    })
                    .await
                    .map(|r| Output::Previous(r.previous))
            }
            Input::Cas {
                expected,
                new_value,
            } => {
                let request = pb::CasRequest {
                    client_id,
                    seq,
                    key: key_owned,
                    expected: expected.clone(),
                    new_value: new_value.clone(),
                };
                self.connection
                    .call(
                        false,
                        Retry::Always,
                        request,
                        |channel, request| async move {
                            GrpcClient::new(channel).compare_and_swap(request).await
                        },
                    )
                    .await
                    .map(|r| Output::Cas {
                        succeeded: r.succeeded,
                        previous: r.previous,
                    })
            }
        }
    }

    /// One attempt sequence through etcd's KV API.
    async fn etcd(&mut self, anywhere: bool, key: &str, input: &Input) -> Attempt<Output> {
        let key = key.as_bytes().to_vec();
        match input {
            Input::Get => {
                let request = etcd::RangeRequest {
                    key,
                    serializable: false,
                    ..Default::default()
                };
                self.connection
                    .call(anywhere, Retry::Always, request, |channel, request| async move {
                        EtcdClient::new(channel).range(request).await
                    })
                    .await
                    .map(|r| Output::Value(r.kvs.first().map(|kv| text(&kv.value))))
            }
            Input::Put { value } => {
                let request = etcd::PutRequest {
                    key,
                    value: value.as_bytes().to_vec(),
                    prev_kv: true,
                    ..Default::default()
                };
                self.connection
                    .call(false, Retry::WhenNotProposed, request, |channel, request| async move {
                        EtcdClient::new(channel).put(request).await
                    })
                    .await
                    .map(|r| Output::Previous(r.prev_kv.map(|kv| text(&kv.value))))
            }
            Input::Delete => {
                let request = etcd::DeleteRangeRequest {
                    key,
                    prev_kv: true,
                    ..Default::default()
                };
                self.connection
                    .call(
                        false,
                        Retry::WhenNotProposed,
                        request,
                        |channel, request| async move {
                            EtcdClient::new(channel).delete_range(request).await
                        },
                    )
                    .await
                    .map(|r| Output::Previous(r.prev_kvs.first().map(|kv| text(&kv.value))))
            }
            Input::Cas {
                expected,
                new_value,
            } => {
                let request = cas_txn(key, expected.as_deref(), new_value.as_deref());
                let expected = expected.clone();
                self.connection
                    .call(false, Retry::WhenNotProposed, request, |channel, request| async move {
                        EtcdClient::new(channel).txn(request).await
                    })
                    .await
                    .map(|r| {
                        if r.succeeded {
                            // The compare held: the value was the expected one.
                            Output::Cas {
                                succeeded: true,
                                previous: expected,
                            }
                        } else {
                            let previous = r.responses.first().and_then(|op| match &op.response {
                                Some(etcd::response_op::Response::ResponseRange(range)) => {
                                    range.kvs.first().map(|kv| text(&kv.value))
                                }
                                _ => None,
                            });
                            Output::Cas {
                                succeeded: false,
                                previous,
                            }
                        }
                    })
            }
        }
    }

    fn fresh_value(&self) -> String {
        format!("c{}-{}", self.id, self.next_seq)
    }

    /// Performs and records one operation.
    pub async fn perform(
        &mut self,
        recorder: &Recorder,
        key: &str,
        input: Input,
    ) -> Option<Output> {
        let invoke = recorder.now();
        let seq = self.next_seq;
        if !matches!(input, Input::Get) {
            self.next_seq += 1;
        }
        let anywhere = matches!(input, Input::Get) && self.rng.random_range(0..2) == 0;
        let outcome = match self.api {
            Api::Native => self.native(anywhere, seq, key, &input).await,
            Api::Etcd => self.etcd(anywhere, key, &input).await,
        };
        let is_read = matches!(input, Input::Get);
        let (output, ret) = match outcome {
            Attempt::Done(output) => {
                self.counts.ok += 1;
                (output, Some(recorder.now()))
            }
            // A refused write was never proposed; a failed read saw nothing.
            Attempt::Refused(_) => {
                self.counts.failed += 1;
                return None;
            }
            Attempt::TimedOut if is_read => {
                self.counts.failed += 1;
                return None;
            }
            Attempt::TimedOut => {
                self.counts.indeterminate += 1;
                (Output::Unknown, None)
            }
        };
        match &output {
            Output::Value(value) | Output::Previous(value) => {
                let after = match &input {
                    Input::Put { value } => Some(value.clone()),
                    Input::Delete => None,
                    _ => value.clone(),
                };
                self.last_seen.insert(key.to_owned(), after);
            }
            Output::Cas {
                succeeded,
                previous,
            } => {
                let after = match (&input, succeeded) {
                    (Input::Cas { new_value, .. }, true) => new_value.clone(),
                    _ => previous.clone(),
                };
                self.last_seen.insert(key.to_owned(), after);
            }
            Output::Unknown => {}
        }
        recorder.record(Operation {
            id: 0,
            client: self.id,
            key: key.to_owned(),
            input,
            output: output.clone(),
            invoke,
            ret,
        });
        Some(output)
    }
}

impl<T> Attempt<T> {
    fn map(self, f: impl FnOnce(T) -> Output) -> Attempt<Output> {
        match self {
            Attempt::Done(value) => Attempt::Done(f(value)),
            Attempt::Refused(status) => Attempt::Refused(status),
            Attempt::TimedOut => Attempt::TimedOut,
        }
    }
}

/// A value as the history records it. The workload writes only ASCII; a
/// value that is not UTF-8 cannot be one it wrote, and stays visibly wrong.
fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// Compare-and-swap as an etcd transaction: if the key's value is
/// `expected` (or, for `None`, the key does not exist: version 0), write
/// `new_value` (or delete the key); otherwise read it.
fn cas_txn(key: Vec<u8>, expected: Option<&str>, new_value: Option<&str>) -> etcd::TxnRequest {
    use etcd::compare::{CompareResult, CompareTarget, TargetUnion};
    use etcd::request_op::Request;
    let compare = match expected {
        Some(value) => etcd::Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::Value(value.as_bytes().to_vec())),
            ..Default::default()
        },
        None => etcd::Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Version as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::Version(0)),
            ..Default::default()
        },
    };
    let write = match new_value {
        Some(value) => Request::RequestPut(etcd::PutRequest {
            key: key.clone(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        }),
        None => Request::RequestDeleteRange(etcd::DeleteRangeRequest {
            key: key.clone(),
            ..Default::default()
        }),
    };
    let read = Request::RequestRange(etcd::RangeRequest {
        key,
        serializable: false,
        ..Default::default()
    });
    etcd::TxnRequest {
        compare: vec![compare],
        success: vec![etcd::RequestOp {
            request: Some(write),
        }],
        failure: vec![etcd::RequestOp {
            request: Some(read),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_prove_an_etcd_write_was_never_proposed() {
        assert!(never_proposed(&Status::unavailable(
            "etcdserver: no leader"
        )));
        assert!(never_proposed(&Status::failed_precondition(
            "etcdserver: not leader"
        )));
        assert!(never_proposed(&Status::invalid_argument(
            "etcdserver: request is too large"
        )));
        // Proposed, then leadership moved: it may still commit.
        assert!(!never_proposed(&Status::unavailable(
            "etcdserver: leader changed"
        )));
        assert!(!never_proposed(&Status::deadline_exceeded(
            "attempt timed out"
        )));
        assert!(!never_proposed(&Status::unavailable("transport error")));
    }

    #[test]
    fn compare_and_swap_is_one_transaction() {
        use etcd::request_op::Request;
        let absent = cas_txn(b"k".to_vec(), None, Some("v"));
        assert_eq!(
            absent.compare[0].target_union,
            Some(etcd::compare::TargetUnion::Version(0)),
            "absent means version 0"
        );
        assert!(matches!(
            absent.success[0].request,
            Some(Request::RequestPut(_))
        ));
        let delete = cas_txn(b"k".to_vec(), Some("old"), None);
        assert_eq!(
            delete.compare[0].target_union,
            Some(etcd::compare::TargetUnion::Value(b"old".to_vec()))
        );
        assert!(matches!(
            delete.success[0].request,
            Some(Request::RequestDeleteRange(_))
        ));
        assert!(matches!(
            delete.failure[0].request,
            Some(Request::RequestRange(_))
        ));
    }
}
