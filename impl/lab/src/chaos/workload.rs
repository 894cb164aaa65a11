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
use raft_node::proto::kv as pb;
use raft_node::proto::kv::kv_client::KvClient as GrpcClient;

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
    nodes: BTreeMap<NodeId, (String, GrpcClient<Channel>)>,
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
            let client = match self.nodes.remove(&id) {
                Some((known, client)) if known == address => client,
                _ => {
                    let endpoint = Endpoint::from_shared(format!("http://{address}"))?
                        .connect_timeout(Duration::from_millis(300))
                        .tcp_nodelay(true);
                    GrpcClient::new(endpoint.connect_lazy())
                }
            };
            nodes.insert(id, (address, client));
        }
        self.nodes = nodes;
        if self.leader.is_some_and(|id| !self.nodes.contains_key(&id)) {
            self.leader = None;
        }
        self.version = Some(version);
        Ok(())
    }

    fn target(&mut self) -> Option<(NodeId, GrpcClient<Channel>)> {
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
    async fn call<T, F, Fut>(&mut self, anywhere: bool, mut call: F) -> Attempt<T>
    where
        F: FnMut(GrpcClient<Channel>) -> Fut,
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
            let status = match tokio::time::timeout(self.attempt_timeout, call(client)).await {
                Ok(Ok(response)) => return Attempt::Done(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded("attempt timed out"),
            };
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

/// One client of the workload.
pub struct Client {
    pub id: u64,
    connection: Connection,
    keys: Vec<String>,
    rng: StdRng,
    next_seq: u64,
    /// The value this client last saw per key: what its compare-and-swaps expect.
    last_seen: BTreeMap<String, Option<String>>,
    pub counts: Counts,
}

impl Client {
    pub fn new(id: u64, connection: Connection, keys: Vec<String>, seed: u64) -> Client {
        Client {
            id,
            connection,
            keys,
            rng: StdRng::seed_from_u64(seed),
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
        let client_id = self.id;
        let key_owned = key.to_owned();
        let outcome: Attempt<Output> = match &input {
            Input::Get => {
                let request = pb::GetRequest { key: key_owned };
                let anywhere = self.rng.random_range(0..2) == 0;
                map(
                    self.connection
                        .call(anywhere, |mut c| {
                            let request = request.clone();
                            async move { c.get(request).await }
                        })
                        .await,
                    |r| Output::Value(r.value),
                )
            }
            Input::Put { value } => {
                let request = pb::PutRequest {
                    client_id,
                    seq,
                    key: key_owned,
                    value: value.clone(),
                };
                map(
                    self.connection
                        .call(false, |mut c| {
                            let request = request.clone();
                            async move { c.put(request).await }
                        })
                        .await,
                    |r| Output::Previous(r.previous),
                )
            }
            Input::Delete => {
                let request = pb::DeleteRequest {
                    client_id,
                    seq,
                    key: key_owned,
                };
                map(
                    self.connection
                        .call(false, |mut c| {
                            let request = request.clone();
                            async move { c.delete(request).await }
                        })
                        .await,
                    |r| Output::Previous(r.previous),
                )
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
                map(
                    self.connection
                        .call(false, |mut c| {
                            let request = request.clone();
                            async move { c.compare_and_swap(request).await }
                        })
                        .await,
                    |r| Output::Cas {
                        succeeded: r.succeeded,
                        previous: r.previous,
                    },
                )
            }
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

fn map<T>(attempt: Attempt<T>, f: impl FnOnce(T) -> Output) -> Attempt<Output> {
    match attempt {
        Attempt::Done(value) => Attempt::Done(f(value)),
        Attempt::Refused(status) => Attempt::Refused(status),
        Attempt::TimedOut => Attempt::TimedOut,
    }
}
