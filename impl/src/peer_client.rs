//! Outbound peer traffic: one task and one queue per peer.
//!
//! **Transport mapping.** The core's messages are one-way; we carry each
//! request on the RPC of its kind (RequestVote, AppendEntries, InstallSnapshot)
//! and the core's reply comes back as that RPC's response, which this task
//! feeds into the event loop like any other message. Unary RPCs keep the
//! paper's request/response shape visible to operators (grpcurl), need no
//! callback connection from follower to leader, and let one HTTP/2 connection
//! per peer pair carry both directions of a request's life. AppendEntries,
//! the one message sent hundreds of times a second, is the exception: the
//! one-at-a-time sender puts each on a long-lived AppendEntriesStream
//! ([`AppendStream`]), whose next response is its reply — the same
//! request/response pairs, without an HTTP/2 stream opened and closed per
//! heartbeat (issue 17: CPU per request -17 %).
//!
//! **Lossy by design.** Raft tolerates lost messages, so the queue is bounded
//! and a full queue drops. Each task sends one request at a time; before each
//! send it drains its queue and keeps only the newest AppendEntries /
//! InstallSnapshot request and the newest RequestVote request: the core
//! rebuilds replication state from `next_index` on every send, so an older
//! request carries nothing a newer one lacks that the protocol needs.
//! A failed RPC is just a lost message; the next heartbeat retries.
//!
//! **Pipelined replication** (`max_inflight` > 0; off by default; issue 17).
//! The core then moves a follower's `next_index` past the entries it sends,
//! so each AppendEntries request carries entries no other does: none may be
//! dropped in favour of a newer one (only empty ones, heartbeats, still
//! are). The sender keeps up to `max_inflight` AppendEntries unanswered at
//! once on the peer's stream, in the order the core made them; the
//! follower takes them in that order (up to `config::MAX_INFLIGHT` at once)
//! and one batch of its loop (one fdatasync) may take several. One that is
//! lost leaves a gap its consistency check refuses: the core falls back and
//! sends again from there. Other messages (votes, snapshots, TimeoutNow) go
//! one at a time as before.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use raft_model::{Body, NodeId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, error, info, trace};

use crate::config::NodeConfig;
use crate::convert::{self, Msg};
use crate::incarnation::Identity;
use crate::limits::{MAX_MESSAGE_BYTES, PEER_QUEUE, SNAPSHOT_CHUNK};
use crate::proto::peer as pb;
use crate::proto::peer::raft_peer_client::RaftPeerClient;
use crate::storage::snapshot_file;
use crate::types::Input;

/// The sender tasks, one per peer the configuration in force names.
///
/// Membership changes (issue 15): the event loop calls [`Peers::update`]
/// after every batch that may have changed the configuration or the address
/// book; it starts a sender for a voter it has none for (or whose address
/// changed) and stops the sender of a server no longer in the
/// configuration. Dropping `Peers` (the event loop ending, or aborted as by
/// a crash) aborts every sender: nothing more leaves.
pub struct Peers {
    cluster_id: String,
    tls: Option<crate::tls::Tls>,
    rpc_timeout: Duration,
    /// AppendEntries RPCs in flight to one peer at once (0: pipelining off).
    max_inflight: usize,
    inbox: mpsc::Sender<Input>,
    senders: BTreeMap<NodeId, Sender>,
    /// Our incarnation and the book's (crate::incarnation).
    identity: Identity,
}

/// One peer's queue and task, and the address it sends to.
struct Sender {
    address: String,
    queue: mpsc::Sender<Msg>,
    task: JoinHandle<()>,
    /// AppendEntries the task has unanswered ([`Peers::all_sending`]):
    /// 0 or 1 one at a time, up to the window when pipelining.
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        for sender in self.senders.values() {
            sender.task.abort();
        }
    }
}

impl Peers {
    /// No senders yet: the event loop starts them for its configuration
    /// ([`Peers::update`]).
    pub fn new(config: &NodeConfig, inbox: mpsc::Sender<Input>) -> Peers {
        Peers {
            cluster_id: config.cluster_id.clone(),
            tls: config.tls.clone(),
            rpc_timeout: config.rpc_timeout,
            max_inflight: config.max_inflight,
            inbox,
            senders: BTreeMap::new(),
            identity: Identity::new(
                config.id,
                config.incarnation.clone(),
                crate::members::static_directory(Default::default()),
            ),
        }
    }

    /// Stamps our incarnation and the book's on every request, and holds
    /// replies to the book's (crate::incarnation): `directory` is the one
    /// the event loop publishes.
    pub fn with_identity(mut self, directory: crate::members::DirectoryWatch) -> Self {
        self.identity.directory = directory;
        self
    }

    /// Sends to exactly `peers` (id and address) from now on. Connections
    /// are lazy: a peer that is down costs a failed connect per attempted
    /// message, nothing more.
    pub fn update(&mut self, peers: &BTreeMap<NodeId, String>) {
        let gone: Vec<NodeId> = self
            .senders
            .iter()
            .filter(|(id, sender)| peers.get(id) != Some(&sender.address))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(sender) = self.senders.remove(&id) {
                info!(peer = id, address = %sender.address, "no longer sending to this peer");
                sender.task.abort();
            }
        }
        for (&peer, address) in peers {
            if peer == self.identity.me || self.senders.contains_key(&peer) {
                continue;
            }
            match self.start(peer, address) {
                Ok(sender) => {
                    debug!(peer, %address, "sending to this peer");
                    self.senders.insert(peer, sender);
                }
                Err(err) => {
                    error!(peer, %address, %err, "cannot send to this peer: bad address");
                }
            }
        }
    }

    /// The peers this node sends to now.
    pub fn targets(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.senders.keys().copied()
    }

    /// Every peer's sender has as many requests unanswered as it may (one
    /// without pipelining, `max_inflight` with it), so new entries need no
    /// AppendEntries of their own now: the core sends them when an answer
    /// comes (a success with entries still to send replicates them; a
    /// rejection resends), all that accumulated meanwhile in one request.
    /// A request built now would be dropped unsent (see `PeerSender::run`)
    /// or, pipelining, wait behind the window as a request of its own: a
    /// few entries each, one follower batch each. A sender with room makes
    /// this false. A request whose RPC fails leaves its sender idle: the
    /// next batch with entries, or the heartbeat, sends them.
    pub fn all_sending(&self) -> bool {
        let window = self.max_inflight.max(1);
        !self.senders.is_empty()
            && self
                .senders
                .values()
                .all(|sender| sender.in_flight.load(Ordering::Acquire) >= window)
    }

    fn start(&self, peer: NodeId, address: &str) -> Result<Sender, tonic::transport::Error> {
        let mut endpoint = Endpoint::from_shared(crate::tls::uri(address, self.tls.is_some()))?
            .connect_timeout(self.rpc_timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.client())?;
        }
        // One channel (one HTTP/2 connection) for both clients, its writes
        // batched (crate::batched_io: a request's frames leave in one write).
        let channel = endpoint.connect_with_connector_lazy(crate::batched_io::Connector);
        let client = RaftPeerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let append = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let sender = PeerSender {
            in_flight: in_flight.clone(),
            cluster_id: self.cluster_id.clone(),
            peer,
            client,
            append,
            stream: None,
            streaming: true,
            inbox: self.inbox.clone(),
            rpc_timeout: self.rpc_timeout,
            identity: self.identity.clone(),
            reported: None,
            round_trip: metrics::histogram!(
                crate::metrics::APPEND_ROUND_TRIP_SECONDS,
                "peer" => peer.to_string()
            ),
        };
        let task = if self.max_inflight > 0 {
            tokio::spawn(sender.run_pipelined(rx, self.max_inflight))
        } else {
            tokio::spawn(sender.run(rx))
        };
        Ok(Sender {
            address: address.to_owned(),
            queue: tx,
            task,
            in_flight,
        })
    }

    /// Queues a message for its peer; drops it if the queue is full.
    pub fn send(&self, message: Msg) {
        let Some(sender) = self.senders.get(&message.to) else {
            debug!(to = message.to, "no such peer; message dropped");
            return;
        };
        if sender.queue.try_send(message).is_err() {
            trace!("peer queue full; message dropped");
        }
    }
}

/// The AppendEntries RPC with the request a leader builds
/// ([`convert::AppendEntriesOut`]: the generated request's bytes, entries
/// written from their commands' encodings). The generated client takes only
/// the generated request type, so this is its call, for the same method,
/// spelled out.
async fn append_entries(
    mut grpc: tonic::client::Grpc<Channel>,
    request: convert::AppendEntriesOut,
) -> Result<tonic::Response<pb::AppendEntriesResponse>, tonic::Status> {
    use tonic::codegen::{GrpcMethod, http::uri::PathAndQuery};
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unknown(format!("Service was not ready: {err}")))?;
    let mut request = tonic::Request::new(request);
    request
        .extensions_mut()
        .insert(GrpcMethod::new("raft.peer.v1.RaftPeer", "AppendEntries"));
    let path = PathAndQuery::from_static("/raft.peer.v1.RaftPeer/AppendEntries");
    grpc.unary(request, path, tonic_prost::ProstCodec::default())
        .await
}

/// What became of a pipelined request ([`PeerSender::send_on_stream`]).
enum Sent {
    /// On the stream: its answer is a later response.
    OnStream,
    /// Sent as a unary call to a peer without the stream, and answered.
    Answered(pb::AppendEntriesResponse),
    /// Not sent, or sent on a stream that has failed.
    Lost,
}

/// The next response on the stream; never, when there is none.
async fn next_response(
    stream: &mut Option<AppendStream>,
) -> Result<Option<pb::AppendEntriesResponse>, tonic::Status> {
    match stream {
        Some(stream) => stream.responses.message().await,
        None => std::future::pending().await,
    }
}

/// A long-lived AppendEntries stream to one peer (the AppendEntriesStream
/// RPC): requests go in on `requests`, one at a time, and each is answered
/// by the next message on `responses`. Dropping it ends the stream.
struct AppendStream {
    requests: mpsc::Sender<convert::AppendEntriesOut>,
    responses: tonic::Streaming<pb::AppendEntriesResponse>,
}

impl AppendStream {
    /// Opens the stream with its first request already in it (the peer
    /// answers the call's headers at once; the request follows).
    async fn open(
        mut grpc: tonic::client::Grpc<Channel>,
        first: convert::AppendEntriesOut,
        window: usize,
    ) -> Result<AppendStream, tonic::Status> {
        use tonic::codegen::{GrpcMethod, http::uri::PathAndQuery};
        // Room for every request the sender may have unanswered (one, or a
        // pipelining sender's window): putting one in never waits.
        let (requests, queued) = mpsc::channel(window.max(1));
        requests
            .try_send(first)
            .map_err(|_| tonic::Status::internal("a new stream's queue is full"))?;
        grpc.ready()
            .await
            .map_err(|err| tonic::Status::unknown(format!("Service was not ready: {err}")))?;
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(queued));
        if window > 1 {
            request.metadata_mut().insert(
                crate::peer_service::APPEND_WINDOW_HEADER,
                tonic::metadata::MetadataValue::from(window as u64),
            );
        }
        request.extensions_mut().insert(GrpcMethod::new(
            "raft.peer.v1.RaftPeer",
            "AppendEntriesStream",
        ));
        let path = PathAndQuery::from_static("/raft.peer.v1.RaftPeer/AppendEntriesStream");
        let responses = grpc
            .streaming(request, path, tonic_prost::ProstCodec::default())
            .await?
            .into_inner();
        Ok(AppendStream {
            requests,
            responses,
        })
    }
}

struct PeerSender {
    /// Requests unanswered: 0 while `run` waits for a message, else 1;
    /// `run_pipelined`'s window as it fills ([`Peers::all_sending`]).
    in_flight: Arc<AtomicUsize>,
    cluster_id: String,
    peer: NodeId,
    client: RaftPeerClient<Channel>,
    /// AppendEntries goes through this one ([`append_entries`],
    /// [`AppendStream`]).
    append: tonic::client::Grpc<Channel>,
    /// The open AppendEntries stream, if any ([`Self::append_streamed`]).
    stream: Option<AppendStream>,
    /// False once the peer answered that it has no AppendEntriesStream:
    /// unary calls from then on.
    streaming: bool,
    inbox: mpsc::Sender<Input>,
    rpc_timeout: Duration,
    identity: Identity,
    /// When this sender last told the event loop the peer's incarnation,
    /// which the book did not record (crate::incarnation).
    reported: Option<Instant>,
    /// `raft_append_round_trip_seconds` for this peer.
    round_trip: metrics::Histogram,
}

/// How often a sender tells the event loop an incarnation the book lacks,
/// while it still lacks it.
const REPORT_EVERY: Duration = Duration::from_secs(1);

impl PeerSender {
    async fn run(mut self, mut queue: mpsc::Receiver<Msg>) {
        let mut pending = Vec::new();
        loop {
            if pending.is_empty() {
                self.in_flight.store(0, Ordering::Release);
                let first = queue.recv().await;
                self.in_flight.store(1, Ordering::Release);
                match first {
                    Some(first) => pending.push(first),
                    None => return,
                }
            }
            while let Ok(more) = queue.try_recv() {
                pending.push(more);
            }
            for message in coalesce(std::mem::take(&mut pending), Keep::Newest) {
                let replication = is_replication(&message);
                let append = matches!(message.body, Body::AppendEntriesRequest { .. });
                let sent_round = read_round(&message);
                let sent = Instant::now();
                let Some(response) = self.call(message).await else {
                    continue;
                };
                if append {
                    self.round_trip.record(sent.elapsed().as_secs_f64());
                }
                if self
                    .inbox
                    .send(Input::PeerResponse(response))
                    .await
                    .is_err()
                {
                    return;
                }
                if replication {
                    // Replication requests queued while this one was in
                    // flight were built from the leader's state before it saw
                    // the answer: they resend what the peer just
                    // acknowledged. Handling the answer makes the core send
                    // whatever is still missing, so drop them — unless one
                    // opens a newer ReadIndex round.
                    while let Ok(more) = queue.try_recv() {
                        if !(is_replication(&more) && read_round(&more) <= sent_round) {
                            pending.push(more);
                        }
                    }
                }
            }
        }
    }

    /// The pipelined sender: AppendEntries requests go out on the peer's
    /// stream in the core's order, up to `max_inflight` unanswered at once,
    /// none dropped but empty ones a newer request follows ([`coalesce`],
    /// [`Keep::Pipelined`]); the stream's responses answer them in order.
    /// Any other message waits for the AppendEntries before it to be
    /// answered and goes alone, as in [`Self::run`]; so does every
    /// AppendEntries to a peer without the stream (an older version). A
    /// failed stream, or a request unanswered within the RPC timeout, loses
    /// every request in flight on it (the core falls back and resends) and
    /// the next request opens a new stream.
    async fn run_pipelined(mut self, mut queue: mpsc::Receiver<Msg>, max_inflight: usize) {
        let mut pending: Vec<Msg> = Vec::new();
        // When each unanswered request on the stream was sent, oldest
        // first: the stream's next response answers the oldest.
        let mut in_flight: VecDeque<tokio::time::Instant> = VecDeque::new();
        loop {
            while let Ok(more) = queue.try_recv() {
                pending.push(more);
            }
            pending = coalesce(std::mem::take(&mut pending), Keep::Pipelined);
            // Send what the window allows, in order.
            while self.streaming
                && in_flight.len() < max_inflight
                && pending
                    .first()
                    .is_some_and(|m| matches!(m.body, Body::AppendEntriesRequest { .. }))
            {
                let message = pending.remove(0);
                let Some(request) = convert::append_request_to_proto(&self.cluster_id, &message)
                else {
                    continue;
                };
                let request = self.identity.stamped(request);
                match self.send_on_stream(request, max_inflight).await {
                    Sent::OnStream => in_flight.push_back(tokio::time::Instant::now()),
                    Sent::Answered(response) => {
                        if let Some(reply) = self.append_reply(&response)
                            && self.inbox.send(Input::PeerResponse(reply)).await.is_err()
                        {
                            return;
                        }
                    }
                    Sent::Lost => {
                        // Lost with the requests in flight before it.
                        self.stream = None;
                        in_flight.clear();
                    }
                }
            }
            // Anything else goes alone, once the requests before it are
            // answered.
            if in_flight.is_empty() && !pending.is_empty() {
                let message = pending.remove(0);
                if let Some(response) = self.call(message).await
                    && self
                        .inbox
                        .send(Input::PeerResponse(response))
                        .await
                        .is_err()
                {
                    return;
                }
                continue;
            }
            self.in_flight.store(in_flight.len(), Ordering::Release);
            let deadline = in_flight.front().map(|sent| *sent + self.rpc_timeout);
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Always taken: the core's window bounds what it queues, and
                // a full queue would drop requests (each one needed).
                more = queue.recv() => {
                    match more {
                        Some(message) => pending.push(message),
                        None => return,
                    }
                }
                response = next_response(&mut self.stream), if !in_flight.is_empty() => {
                    let sent = in_flight.pop_front();
                    match response {
                        Ok(Some(response)) => {
                            if let Some(sent) = sent {
                                self.round_trip.record(sent.elapsed().as_secs_f64());
                            }
                            let Some(reply) = self.append_reply(&response) else {
                                continue;
                            };
                            if self.inbox.send(Input::PeerResponse(reply)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            debug!(peer = self.peer, "AppendEntries stream ended by the peer");
                            self.stream = None;
                            in_flight.clear();
                        }
                        Err(status) => {
                            debug!(peer = self.peer, code = ?status.code(), message = status.message(), "AppendEntries stream failed");
                            self.stream = None;
                            in_flight.clear();
                        }
                    }
                }
                () = expired => {
                    debug!(peer = self.peer, in_flight = in_flight.len(), "peer RPC timed out (AppendEntries stream)");
                    self.stream = None;
                    in_flight.clear();
                }
            }
        }
    }

    /// Puts a pipelined request on the stream, opening one if there is
    /// none (within the RPC timeout). A peer that does not serve the stream
    /// gets this request as a unary call, and every later one
    /// ([`Self::run_pipelined`] sends them one at a time then).
    async fn send_on_stream(&mut self, request: convert::AppendEntriesOut, window: usize) -> Sent {
        if let Some(stream) = &self.stream {
            return match stream.requests.try_send(request) {
                Ok(()) => Sent::OnStream,
                // Full cannot happen (the window is the queue's size); closed
                // means the stream has ended.
                Err(_) => Sent::Lost,
            };
        }
        let opened = tokio::time::timeout(
            self.rpc_timeout,
            AppendStream::open(self.append.clone(), request.clone(), window),
        )
        .await;
        match opened {
            Ok(Ok(stream)) => {
                self.stream = Some(stream);
                Sent::OnStream
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                self.no_stream();
                match self
                    .with_timeout(
                        self.rpc_timeout,
                        append_entries(self.append.clone(), request),
                    )
                    .await
                {
                    Some(response) => Sent::Answered(response),
                    None => Sent::Lost,
                }
            }
            Ok(Err(status)) => {
                debug!(peer = self.peer, code = ?status.code(), message = status.message(), "AppendEntries stream failed to open");
                Sent::Lost
            }
            Err(_) => {
                debug!(
                    peer = self.peer,
                    "peer RPC timed out (opening the AppendEntries stream)"
                );
                Sent::Lost
            }
        }
    }

    /// The peer answered that it has no AppendEntriesStream: unary calls
    /// from now on.
    fn no_stream(&mut self) {
        info!(
            peer = self.peer,
            "the peer does not serve AppendEntriesStream (an older version?): \
             AppendEntries goes as one call per request to it"
        );
        self.streaming = false;
        self.stream = None;
    }

    /// An AppendEntries response, checked, as the core's message.
    fn append_reply(&mut self, response: &pb::AppendEntriesResponse) -> Option<Msg> {
        let reply = self
            .check(response.header.as_ref())
            .and_then(|addressing| convert::append_response_from_proto(&addressing, response).ok());
        if reply.is_none() {
            debug!(peer = self.peer, "invalid reply; ignored");
        }
        reply
    }

    /// Sends one request; returns the core's reply, checked.
    async fn call(&mut self, message: Msg) -> Option<Msg> {
        let kind = message.body.kind();
        let result = match &message.body {
            Body::RequestVoteRequest { .. } => {
                let request = convert::vote_request_to_proto(&self.cluster_id, &message)?;
                let request = self.identity.stamped(request);
                let response = self
                    .with_timeout_response(
                        self.rpc_timeout,
                        self.client.clone().request_vote(request),
                    )
                    .await?;
                // A member saying we were removed (crate::members): the
                // event loop tells the operator.
                if let Some(detail) = response
                    .metadata()
                    .get(crate::members::NOT_A_MEMBER_HEADER)
                    .and_then(|value| value.to_str().ok())
                {
                    let _ = self.inbox.try_send(Input::NotAMember {
                        from: self.peer,
                        detail: detail.to_owned(),
                    });
                }
                let response = response.into_inner();
                self.check(response.header.as_ref())
                    .map(|addressing| convert::vote_response_from_proto(&addressing, &response))
            }
            Body::AppendEntriesRequest { .. } => {
                let request = convert::append_request_to_proto(&self.cluster_id, &message)?;
                let request = self.identity.stamped(request);
                let response = self.append_streamed(request).await?;
                self.check(response.header.as_ref()).and_then(|addressing| {
                    convert::append_response_from_proto(&addressing, &response).ok()
                })
            }
            Body::InstallSnapshotRequest { snapshot } => {
                let (meta, data) = (snapshot.meta.clone(), snapshot.data.clone());
                let bytes =
                    tokio::task::spawn_blocking(move || snapshot_file::encode(&meta, &data))
                        .await
                        .ok()?;
                let size = bytes.len();
                let mut chunks = snapshot_chunks(&self.cluster_id, &message, &snapshot.meta, bytes);
                if let Some(first) = chunks.first_mut().and_then(|chunk| chunk.header.as_mut()) {
                    self.identity.stamp(first);
                }
                // A snapshot may be large: allow time proportional to its
                // size, 50 ms a MiB.
                let budget = self.rpc_timeout * 10
                    + Duration::from_millis(size.div_ceil(1 << 20) as u64 * 50);
                let started = Instant::now();
                // The transport takes the next chunk only when the peer's
                // flow-control window has room: every chunk after the first
                // says the peer is reading. The event loop hears of it
                // (`Input::SnapshotProgress`), as no response comes until
                // the whole snapshot is installed.
                let (inbox, peer, term) = (self.inbox.clone(), self.peer, message.term);
                let mut taken = 0usize;
                let chunks = tokio_stream::iter(chunks).map(move |chunk| {
                    if taken > 0 {
                        let _ = inbox.try_send(Input::SnapshotProgress { peer, term });
                    }
                    taken += 1;
                    chunk
                });
                let response = self
                    .with_timeout(budget, self.client.clone().install_snapshot(chunks))
                    .await?;
                info!(
                    peer = self.peer,
                    term,
                    index = snapshot.meta.last_index,
                    bytes = size,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot sent"
                );
                self.check(response.header.as_ref()).and_then(|addressing| {
                    convert::snapshot_response_from_proto(&addressing, &response).ok()
                })
            }
            Body::TimeoutNow {} => {
                // One-way: the target answers with an election, not a reply.
                let request = convert::timeout_now_to_proto(&self.cluster_id, &message)?;
                let request = self.identity.stamped(request);
                self.with_timeout(self.rpc_timeout, self.client.clone().timeout_now(request))
                    .await?;
                debug!(
                    peer = self.peer,
                    term = message.term,
                    "TimeoutNow delivered"
                );
                return None;
            }
            _ => {
                debug!(kind, "responses travel as RPC replies; not sent");
                None
            }
        };
        if result.is_none() {
            debug!(kind, peer = self.peer, "invalid reply; ignored");
        }
        result
    }

    /// One AppendEntries request on the peer's stream
    /// ([`AppendStream`]), opened first if there is none; its response.
    /// Any failure (an error status, the stream ending, no answer within
    /// the RPC timeout) closes the stream — a late answer on it could no
    /// longer be told from the next request's — and counts as a lost
    /// message, as a failed unary call does. A peer that does not know the
    /// streamed RPC (an older version, during a rolling upgrade) gets unary
    /// calls from then on.
    async fn append_streamed(
        &mut self,
        request: convert::AppendEntriesOut,
    ) -> Option<pb::AppendEntriesResponse> {
        if !self.streaming {
            return self
                .with_timeout(
                    self.rpc_timeout,
                    append_entries(self.append.clone(), request),
                )
                .await;
        }
        let opening = self.stream.is_none().then(|| request.clone());
        let outcome = tokio::time::timeout(self.rpc_timeout, async {
            if self.stream.is_none() {
                self.stream = Some(AppendStream::open(self.append.clone(), request, 1).await?);
            } else if let Some(stream) = &self.stream
                && stream.requests.send(request).await.is_err()
            {
                return Err(tonic::Status::unavailable("the stream has ended"));
            }
            match &mut self.stream {
                Some(stream) => stream.responses.message().await,
                None => Ok(None),
            }
        })
        .await;
        match outcome {
            Ok(Ok(Some(response))) => return Some(response),
            Ok(Ok(None)) => debug!(peer = self.peer, "AppendEntries stream ended by the peer"),
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented && opening.is_some() => {
                self.no_stream();
                let request = opening?;
                return self
                    .with_timeout(
                        self.rpc_timeout,
                        append_entries(self.append.clone(), request),
                    )
                    .await;
            }
            Ok(Err(status)) => {
                debug!(peer = self.peer, code = ?status.code(), message = status.message(), "AppendEntries stream failed")
            }
            Err(_) => debug!(
                peer = self.peer,
                "peer RPC timed out (AppendEntries stream)"
            ),
        }
        self.stream = None;
        None
    }

    async fn with_timeout<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<T> {
        self.with_timeout_response(timeout, call)
            .await
            .map(tonic::Response::into_inner)
    }

    /// [`Self::with_timeout`], keeping the response's metadata.
    async fn with_timeout_response<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<tonic::Response<T>> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Some(response),
            Ok(Err(status)) => {
                debug!(peer = self.peer, code = ?status.code(), message = status.message(), "peer RPC failed");
                None
            }
            Err(_) => {
                debug!(peer = self.peer, "peer RPC timed out");
                None
            }
        }
    }

    /// A reply must come from the peer we asked, be addressed to us, and be
    /// of our cluster.
    /// A reply's header: from our peer, to us, in our cluster, and from the
    /// incarnation the book records for the peer. An incarnation the book
    /// lacks is reported to the event loop, whose leader records it.
    fn check(&mut self, header: Option<&pb::Header>) -> Option<convert::Addressing> {
        let header = header?;
        if header.cluster_id != self.cluster_id
            || header.from != self.peer
            || header.to != self.identity.me
        {
            return None;
        }
        crate::incarnation::check(&header.from_incarnation).ok()?;
        self.identity
            .check_sender(self.peer, &header.from_incarnation)
            .ok()?;
        if !header.from_incarnation.is_empty()
            && self.identity.recorded(self.peer).is_none()
            && self.reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY)
        {
            self.reported = Some(Instant::now());
            let _ = self.inbox.try_send(Input::PeerIncarnation {
                peer: self.peer,
                incarnation: header.from_incarnation.clone(),
            });
        }
        convert::addressing(header).ok()
    }
}

fn is_replication(message: &Msg) -> bool {
    matches!(
        message.body,
        Body::AppendEntriesRequest { .. } | Body::InstallSnapshotRequest { .. }
    )
}

/// The ReadIndex round an AppendEntries request carries (0 for others).
fn read_round(message: &Msg) -> u64 {
    match message.body {
        Body::AppendEntriesRequest { read_seq, .. } => read_seq,
        _ => 0,
    }
}

/// Which replication requests a sender keeps when several wait to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// One RPC at a time ([`PeerSender::run`]): only the newest replication
    /// request (AppendEntries or InstallSnapshot); the core resends whatever
    /// the peer still lacks once it has the answer.
    Newest,
    /// The pipelined sender: every AppendEntries request that carries
    /// entries (the core has moved past them: no later request repeats
    /// them); an empty one (a heartbeat) only if no replication request
    /// follows it; the newest InstallSnapshot, which supersedes the
    /// replication before it and is kept even when requests follow it
    /// (they extend the log it installs).
    Pipelined,
}

/// The waiting messages a sender still sends: the replication requests
/// `keep` says, the newest vote request and the newest TimeoutNow, in their
/// original order.
fn coalesce(pending: Vec<Msg>, keep: Keep) -> Vec<Msg> {
    let is_vote = |m: &Msg| matches!(m.body, Body::RequestVoteRequest { .. });
    let is_timeout_now = |m: &Msg| matches!(m.body, Body::TimeoutNow {});
    let is_snapshot = |m: &Msg| matches!(m.body, Body::InstallSnapshotRequest { .. });
    let carries_entries = |m: &Msg| matches!(&m.body, Body::AppendEntriesRequest { entries, .. } if !entries.is_empty());
    let last_replication = pending.iter().rposition(is_replication);
    let last_snapshot = pending.iter().rposition(is_snapshot);
    let last_vote = pending.iter().rposition(is_vote);
    let last_timeout_now = pending.iter().rposition(is_timeout_now);
    let keep_replication = |at: usize, m: &Msg| {
        let newest = Some(at) == last_replication;
        match keep {
            Keep::Newest => newest,
            Keep::Pipelined => {
                let superseded = last_snapshot.is_some_and(|s| at < s);
                !superseded && (carries_entries(m) || is_snapshot(m) || newest)
            }
        }
    };
    pending
        .into_iter()
        .enumerate()
        .filter(|(at, m)| {
            (is_replication(m) && keep_replication(*at, m))
                || (is_vote(m) && Some(*at) == last_vote)
                || (is_timeout_now(m) && Some(*at) == last_timeout_now)
        })
        .map(|(_, m)| m)
        .collect()
}

fn snapshot_chunks(
    cluster_id: &str,
    message: &Msg,
    meta: &raft_model::SnapshotMeta,
    bytes: Vec<u8>,
) -> Vec<pb::InstallSnapshotChunk> {
    let total = bytes.len();
    let mut chunks = Vec::with_capacity(total / SNAPSHOT_CHUNK + 1);
    let mut offset = 0;
    loop {
        let end = (offset + SNAPSHOT_CHUNK).min(total);
        let first = offset == 0;
        chunks.push(pb::InstallSnapshotChunk {
            header: first.then(|| convert::header(cluster_id, message)),
            meta: first.then(|| convert::snapshot_meta_to_proto(meta, total as u64)),
            offset: offset as u64,
            data: bytes[offset..end].to_vec(),
            done: end == total,
        });
        offset = end;
        if offset >= total {
            return chunks;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imbl::Vector;

    fn append(term: u64) -> Msg {
        Msg {
            from: 1,
            to: 2,
            term,
            body: Body::AppendEntriesRequest {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: Vector::new(),
                leader_commit: 0,
                read_seq: 0,
            },
        }
    }

    fn vote(term: u64) -> Msg {
        Msg {
            from: 1,
            to: 2,
            term,
            body: Body::RequestVoteRequest {
                last_log_index: 0,
                last_log_term: 0,
                pre_vote: false,
            },
        }
    }

    fn timeout_now(term: u64) -> Msg {
        Msg {
            from: 1,
            to: 2,
            term,
            body: Body::TimeoutNow {},
        }
    }

    /// Node 1's membership with one peer, node 2 at `address` (node 1's
    /// own address is never dialled): the rest of a test's config goes
    /// over it.
    fn follower_at(address: &str) -> crate::config::FileConfig {
        crate::config::FileConfig {
            id: Some(1),
            members: Some(vec![
                crate::config::Member {
                    id: 1,
                    address: "127.0.0.1:10".into(),
                },
                crate::config::Member {
                    id: 2,
                    address: address.to_owned(),
                },
            ]),
            ..Default::default()
        }
    }

    fn append_carrying(term: u64, prev_log_index: u64) -> Msg {
        let mut message = append(term);
        if let Body::AppendEntriesRequest {
            prev_log_index: prev,
            entries,
            ..
        } = &mut message.body
        {
            *prev = prev_log_index;
            entries.push_back(raft_model::Entry {
                term,
                payload: raft_model::Payload::Noop,
            });
        }
        message
    }

    /// A sender counts as sending while its request is in flight, and as
    /// idle once it waits for work again — after an answer, or after the
    /// RPC failed (here: timed out), when only a new request or the
    /// heartbeat sends the entries: the event loop builds AppendEntries for
    /// new entries unless every sender is sending (`Peers::all_sending`).
    #[tokio::test]
    async fn a_sender_is_sending_only_while_its_request_is_in_flight() {
        // A peer that takes connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::from_file_config(crate::config::FileConfig {
            cluster_id: Some("senders".into()),
            data_dir: Some(dir.path().join("node")),
            election_timeout_ms: Some([200, 400]),
            ..follower_at(&address)
        })
        .unwrap();
        let (inbox, _inputs) = mpsc::channel(16);
        let mut peers = Peers::new(&config, inbox);
        assert!(!peers.all_sending(), "no senders, none sending");
        peers.update(&BTreeMap::from([(2, address)]));
        assert!(!peers.all_sending(), "a new sender waits for work");
        peers.send(append(1));
        let until = |sending: bool| {
            let peers = &peers;
            async move {
                let deadline = Instant::now() + Duration::from_secs(5);
                while peers.all_sending() != sending {
                    assert!(
                        Instant::now() < deadline,
                        "never all_sending() == {sending}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        until(true).await;
        // The RPC times out (rpc_timeout: 200 ms): the sender is idle again.
        until(false).await;
        held.abort();
    }

    /// A follower stand-in that answers every AppendEntries with success,
    /// counting the AppendEntriesStream calls it took; `streams: false`
    /// answers that call Unimplemented, as a node of an older version does.
    struct FakeFollower {
        streams: bool,
        /// Takes streamed requests and never answers them.
        silent: bool,
        /// The AppendEntries (by prev_log_index) refused with an error.
        refuse: Option<u64>,
        refused: Arc<std::sync::atomic::AtomicUsize>,
        opened: Arc<std::sync::atomic::AtomicUsize>,
        unary: Arc<std::sync::atomic::AtomicUsize>,
    }

    fn success(request: &pb::AppendEntriesRequest) -> pb::AppendEntriesResponse {
        let header = request.header.clone().unwrap();
        pb::AppendEntriesResponse {
            header: Some(pb::Header {
                from: header.to,
                to: header.from,
                ..header
            }),
            success: true,
            match_index: request.prev_log_index,
            ..Default::default()
        }
    }

    #[tonic::async_trait]
    impl pb::raft_peer_server::RaftPeer for FakeFollower {
        async fn request_vote(
            &self,
            _: tonic::Request<pb::RequestVoteRequest>,
        ) -> Result<tonic::Response<pb::RequestVoteResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("not in this test"))
        }
        async fn append_entries(
            &self,
            request: tonic::Request<pb::AppendEntriesRequest>,
        ) -> Result<tonic::Response<pb::AppendEntriesResponse>, tonic::Status> {
            self.unary.fetch_add(1, Ordering::SeqCst);
            Ok(tonic::Response::new(success(request.get_ref())))
        }
        type AppendEntriesStreamStream = std::pin::Pin<
            Box<
                dyn tokio_stream::Stream<Item = Result<pb::AppendEntriesResponse, tonic::Status>>
                    + Send,
            >,
        >;
        async fn append_entries_stream(
            &self,
            request: tonic::Request<tonic::Streaming<pb::AppendEntriesRequest>>,
        ) -> Result<tonic::Response<Self::AppendEntriesStreamStream>, tonic::Status> {
            if !self.streams {
                return Err(tonic::Status::unimplemented("no such method"));
            }
            self.opened.fetch_add(1, Ordering::SeqCst);
            if self.silent {
                // Reads the requests (so the sender can put them on the
                // stream) and answers none.
                let mut requests = request.into_inner();
                tokio::spawn(async move { while let Some(Ok(_)) = requests.next().await {} });
                return Ok(tonic::Response::new(Box::pin(tokio_stream::pending())));
            }
            let (refuse, refused) = (self.refuse, self.refused.clone());
            let answers = request.into_inner().map(move |request| {
                let request = request?;
                if Some(request.prev_log_index) == refuse {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return Err(tonic::Status::invalid_argument("refused by the test"));
                }
                Ok(success(&request))
            });
            Ok(tonic::Response::new(Box::pin(answers)))
        }
        async fn install_snapshot(
            &self,
            _: tonic::Request<tonic::Streaming<pb::InstallSnapshotChunk>>,
        ) -> Result<tonic::Response<pb::InstallSnapshotResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("not in this test"))
        }
        async fn timeout_now(
            &self,
            _: tonic::Request<pb::TimeoutNowRequest>,
        ) -> Result<tonic::Response<pb::TimeoutNowResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("not in this test"))
        }
    }

    /// Sends `count` AppendEntries, one after another's answer, to a
    /// [`FakeFollower`]; returns (streams opened, unary calls taken).
    /// A [`FakeFollower`] serving on loopback, and a leader's senders to
    /// it (`max_inflight` as the node's config says).
    struct FakeLink {
        peers: Peers,
        inputs: mpsc::Receiver<Input>,
        opened: Arc<std::sync::atomic::AtomicUsize>,
        unary: Arc<std::sync::atomic::AtomicUsize>,
        refused: Arc<std::sync::atomic::AtomicUsize>,
        server: JoinHandle<Result<(), tonic::transport::Error>>,
        _dir: tempfile::TempDir,
    }

    impl FakeLink {
        async fn new(streams: bool, refuse: Option<u64>, max_inflight: usize) -> FakeLink {
            FakeLink::serving(streams, false, refuse, max_inflight).await
        }

        async fn serving(
            streams: bool,
            silent: bool,
            refuse: Option<u64>,
            max_inflight: usize,
        ) -> FakeLink {
            let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let unary = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let follower = FakeFollower {
                streams,
                silent,
                refuse,
                refused: refused.clone(),
                opened: opened.clone(),
                unary: unary.clone(),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap().to_string();
            let server = tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(pb::raft_peer_server::RaftPeerServer::new(follower))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );
            let dir = tempfile::tempdir().unwrap();
            let config = NodeConfig::from_file_config(crate::config::FileConfig {
                cluster_id: Some("streams".into()),
                data_dir: Some(dir.path().join("node")),
                election_timeout_ms: Some([1000, 2000]),
                max_inflight: Some(max_inflight),
                ..follower_at(&address)
            })
            .unwrap();
            let (inbox, inputs) = mpsc::channel(256);
            let mut peers = Peers::new(&config, inbox);
            peers.update(&BTreeMap::from([(2, address)]));
            FakeLink {
                peers,
                inputs,
                opened,
                unary,
                refused,
                server,
                _dir: dir,
            }
        }

        /// The next input: the follower's success, whose match_index it
        /// returns.
        async fn answer(&mut self) -> u64 {
            let answer = tokio::time::timeout(Duration::from_secs(5), self.inputs.recv())
                .await
                .expect("an answer within 5 s")
                .expect("the inbox is open");
            let Input::PeerResponse(Msg {
                from: 2,
                body:
                    Body::AppendEntriesResponse {
                        success: true,
                        match_index,
                        ..
                    },
                ..
            }) = answer
            else {
                panic!("not the follower's success");
            };
            match_index
        }

        /// (streams opened, unary calls taken).
        fn calls(&self) -> (usize, usize) {
            self.server.abort();
            (
                self.opened.load(Ordering::SeqCst),
                self.unary.load(Ordering::SeqCst),
            )
        }
    }

    /// Sends `count` AppendEntries, one after another's answer, to a
    /// [`FakeFollower`]; returns (streams opened, unary calls taken).
    async fn send_appends_to_fake(
        streams: bool,
        count: u64,
        refuse: Option<u64>,
    ) -> (usize, usize) {
        let mut link = FakeLink::new(streams, refuse, 0).await;
        for prev_log_index in 0..count {
            let mut message = append(1);
            if let Body::AppendEntriesRequest {
                prev_log_index: prev,
                ..
            } = &mut message.body
            {
                *prev = prev_log_index;
            }
            link.peers.send(message);
            if Some(prev_log_index) == refuse {
                // No answer comes: wait until the follower has refused it.
                let deadline = Instant::now() + Duration::from_secs(5);
                while link.refused.load(Ordering::SeqCst) == 0 {
                    assert!(Instant::now() < deadline, "never refused");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
            assert_eq!(link.answer().await, prev_log_index, "answers in order");
        }
        link.calls()
    }

    /// A pipelining sender is "sending" (new entries wait for an answer)
    /// only once its window is full: with room left, a batch's new entries
    /// go at once. The follower here never answers.
    #[tokio::test]
    async fn a_pipelining_sender_is_sending_once_its_window_is_full() {
        let link = FakeLink::serving(true, true, None, 2).await;
        let until = |sending: bool| {
            let peers = &link.peers;
            async move {
                let deadline = Instant::now() + Duration::from_secs(5);
                while peers.all_sending() != sending {
                    assert!(
                        Instant::now() < deadline,
                        "never all_sending() == {sending}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        assert!(!link.peers.all_sending());
        link.peers.send(append_carrying(1, 0));
        // One of two in flight: room left, still not "sending".
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!link.peers.all_sending(), "one request of a window of two");
        link.peers.send(append_carrying(1, 1));
        until(true).await;
        // Unanswered past the RPC timeout: lost, the window empties.
        until(false).await;
        assert_eq!(link.calls(), (1, 0));
    }

    /// A pipelining sender puts a window of requests on the stream before
    /// the first is answered; every one is answered, in order, on one
    /// stream — or, to a peer without the stream, by unary calls.
    #[tokio::test]
    async fn pipelined_appends_share_one_stream_and_are_answered_in_order() {
        for (streams, calls) in [(true, (1, 0)), (false, (0, 12))] {
            let mut link = FakeLink::new(streams, None, 4).await;
            for prev_log_index in 0..12 {
                link.peers.send(append_carrying(1, prev_log_index));
            }
            for prev_log_index in 0..12 {
                assert_eq!(link.answer().await, prev_log_index, "answers in order");
            }
            assert_eq!(link.calls(), calls, "streams: {streams}");
        }
    }

    /// Every AppendEntries after the first goes on the stream the first
    /// opened: one stream, no unary calls.
    #[tokio::test]
    async fn appends_share_one_stream() {
        assert_eq!(send_appends_to_fake(true, 20, None).await, (1, 0));
    }

    /// A refused request ends its stream (the follower's status is its
    /// trailers); the next request opens a new one and is answered.
    #[tokio::test]
    async fn a_refusal_ends_the_stream_and_the_next_request_opens_another() {
        assert_eq!(send_appends_to_fake(true, 10, Some(4)).await, (2, 0));
    }

    /// A peer without the streamed RPC (an older version) still gets every
    /// request, the first included, as unary calls.
    #[tokio::test]
    async fn a_peer_without_the_stream_gets_unary_calls() {
        assert_eq!(send_appends_to_fake(false, 5, None).await, (0, 5));
    }

    /// Pipelined requests each carry entries no other does: all are kept,
    /// in order; a heartbeat only when nothing follows it.
    #[test]
    fn pipelined_coalescing_keeps_every_request_that_carries_entries() {
        let kept = coalesce(
            vec![
                append(1),
                append_carrying(1, 0),
                append(1),
                append_carrying(1, 1),
                vote(2),
                append(1),
            ],
            Keep::Pipelined,
        );
        let shape: Vec<(&str, usize)> = kept
            .iter()
            .map(|m| match &m.body {
                Body::AppendEntriesRequest { entries, .. } => ("append", entries.len()),
                other => (other.kind(), 0),
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("append", 1),
                ("append", 1),
                ("RequestVoteRequest", 0),
                ("append", 0)
            ]
        );
    }

    fn install_snapshot(term: u64) -> Msg {
        Msg {
            from: 1,
            to: 2,
            term,
            body: Body::InstallSnapshotRequest {
                snapshot: raft_model::Snapshot {
                    meta: raft_model::SnapshotMeta {
                        last_index: 5,
                        last_term: term,
                        config: raft_model::Config::new([1, 2, 3]),
                    },
                    data: crate::kv::KvImage::default(),
                },
            },
        }
    }

    /// An InstallSnapshot replaces the log the entries before it extended:
    /// the pipelined sender drops them, and keeps what follows it.
    #[test]
    fn pipelined_coalescing_drops_the_entries_a_snapshot_supersedes() {
        let kept = coalesce(
            vec![
                append_carrying(1, 0),
                append_carrying(1, 1),
                install_snapshot(1),
                append_carrying(1, 5),
                append(1),
            ],
            Keep::Pipelined,
        );
        let kinds: Vec<&str> = kept.iter().map(|m| m.body.kind()).collect();
        assert_eq!(
            kinds,
            vec![
                "InstallSnapshotRequest",
                "AppendEntriesRequest",
                "AppendEntriesRequest"
            ]
        );
        // One RPC at a time: only the newest replication request.
        let kept = coalesce(
            vec![append_carrying(1, 0), install_snapshot(1), append(1)],
            Keep::Newest,
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].body.kind(), "AppendEntriesRequest");
    }

    #[test]
    fn coalescing_keeps_the_newest_of_each_kind_in_order() {
        let kept = coalesce(
            vec![append(1), vote(2), append(3), vote(4), append(5)],
            Keep::Newest,
        );
        let terms: Vec<u64> = kept.iter().map(|m| m.term).collect();
        assert_eq!(terms, vec![4, 5]);
    }

    /// A leadership transfer's TimeoutNow is neither a vote nor replication:
    /// dropping it as either would leave the transfer to time out.
    #[test]
    fn coalescing_keeps_timeout_now_after_the_append_that_caught_the_target_up() {
        let kept = coalesce(
            vec![append(1), timeout_now(1), append(1), timeout_now(2)],
            Keep::Newest,
        );
        let kinds: Vec<(&str, u64)> = kept.iter().map(|m| (m.body.kind(), m.term)).collect();
        assert_eq!(kinds, vec![("AppendEntriesRequest", 1), ("TimeoutNow", 2)]);
    }
}
