//! Inbound peer RPCs: check, convert, hand to the event loop, return the
//! core's reply.
//!
//! Every request must name our cluster, be addressed to us, and come from a
//! member; otherwise it is refused with a clear status (a server of another
//! cluster reaching this port by mistake learns why at once). The reply is
//! sent only after the event loop has made durable whatever it depends on.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_model::{Body, NodeId, Snapshot};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info};

use crate::config::NodeConfig;
use crate::convert::{self, Addressing, Msg};
use crate::incarnation::Identity;
use crate::members::DirectoryWatch;
use crate::proto::peer as pb;
use crate::proto::peer::raft_peer_server::RaftPeer;
use crate::storage::snapshot_file;
use crate::types::Input;

/// The metadata in which a pipelining leader's AppendEntriesStream call
/// says how many requests it may leave unanswered at once (absent: one).
pub const APPEND_WINDOW_HEADER: &str = "raft-append-window";

#[derive(Clone)]
pub struct PeerService {
    cluster_id: String,
    inbox: mpsc::Sender<Input>,
    timeout: Duration,
    max_snapshot_bytes: u64,
    /// Who we are (id and incarnation), and the configuration and address
    /// book the event loop publishes (crate::incarnation).
    identity: Identity,
}

impl PeerService {
    pub fn new(
        config: &Arc<NodeConfig>,
        inbox: mpsc::Sender<Input>,
        directory: DirectoryWatch,
    ) -> Self {
        PeerService {
            cluster_id: config.cluster_id.clone(),
            identity: Identity::new(config.id, config.incarnation.clone(), directory),
            inbox,
            timeout: config.rpc_timeout,
            max_snapshot_bytes: config.max_snapshot_bytes,
        }
    }

    /// [`Self::check`], and the sender must be a server this node knows (a
    /// voter of its configuration, or in its address book): for the
    /// requests that a stranger could use to disrupt, RequestVote (a term
    /// raised by an unknown id) and TimeoutNow. Replication
    /// (AppendEntries, InstallSnapshot) is accepted from any id of the
    /// cluster: a node that joins knows nobody until the leader's first
    /// AppendEntries brings it the configuration (issue 15).
    fn check_known(&self, header: Option<&pb::Header>) -> Result<Addressing, Status> {
        let addressing = self.check(header)?;
        let directory = self.identity.directory.borrow();
        let known = directory.addresses.contains_key(&addressing.from)
            || directory
                .config
                .as_ref()
                .is_some_and(|config| config.contains(addressing.from));
        if !known {
            let members: Vec<NodeId> = directory
                .config
                .as_ref()
                .map(|config| config.voters().collect())
                .unwrap_or_default();
            return Err(Status::permission_denied(format!(
                "unknown peer {}: not a member of cluster {:?} (its members are {members:?}) \
                 nor in this node's address book",
                addressing.from, self.cluster_id
            )));
        }
        Ok(addressing)
    }

    fn check(&self, header: Option<&pb::Header>) -> Result<Addressing, Status> {
        let header = header.ok_or_else(|| Status::invalid_argument("missing header"))?;
        if header.cluster_id != self.cluster_id {
            return Err(Status::permission_denied(format!(
                "cluster id mismatch: this is node {} of cluster {:?}, the request is for cluster {:?}",
                self.identity.me, self.cluster_id, header.cluster_id
            )));
        }
        if header.to != self.identity.me {
            return Err(Status::invalid_argument(format!(
                "misaddressed: this is node {}, the request is for node {}",
                self.identity.me, header.to
            )));
        }
        if header.from == self.identity.me {
            return Err(Status::permission_denied(format!(
                "a request from node {} to itself",
                header.from
            )));
        }
        let addressing =
            convert::addressing(header).map_err(|err| Status::invalid_argument(err.to_string()))?;
        for incarnation in [&header.from_incarnation, &header.to_incarnation] {
            crate::incarnation::check(incarnation).map_err(Status::invalid_argument)?;
        }
        self.identity.check_request(header)?;
        Ok(addressing)
    }

    /// Feeds a request to the core and waits for its reply.
    async fn deliver(&self, message: Msg, timeout: Duration) -> Result<Msg, Status> {
        self.step_core(message, timeout)
            .await?
            .ok_or_else(|| Status::failed_precondition("the Raft core ignored this message"))
    }

    /// Feeds a message to the core and waits until it took it: its reply,
    /// or None when it had none (a one-way message, or one it dropped).
    async fn step_core(&self, message: Msg, timeout: Duration) -> Result<Option<Msg>, Status> {
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send(Input::PeerRequest { message, reply })
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Status::unavailable("the node is shutting down")),
            Err(_) => Err(Status::deadline_exceeded("the node did not answer in time")),
        }
    }

    /// Tells the event loop a snapshot chunk arrived. Never waits: a full
    /// inbox means the loop is busy, and the next chunk will tell again.
    fn chunk_arrived(&self, addressing: &Addressing) {
        let _ = self.inbox.try_send(Input::SnapshotChunk {
            from: addressing.from,
            term: addressing.term,
        });
    }

    /// One AppendEntries request, unary or streamed: checked, converted,
    /// fed to the core; its reply.
    async fn append_one(
        &self,
        request: pb::AppendEntriesRequest,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        let addressing = self.check(request.header.as_ref())?;
        let message = convert::append_request_from_proto(&addressing, request)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer = self.deliver(message, self.timeout).await?;
        self.reply(convert::append_response_to_proto(&self.cluster_id, &answer))
    }

    /// The core's answer, stamped with our incarnation and the book's for
    /// the asker (crate::incarnation).
    fn reply<T: crate::incarnation::Headed>(
        &self,
        converted: Option<T>,
    ) -> Result<Response<T>, Status> {
        converted
            .map(|answer| Response::new(self.identity.stamped(answer)))
            .ok_or_else(|| Status::internal("the core answered with an unexpected message kind"))
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn request_vote(
        &self,
        request: Request<pb::RequestVoteRequest>,
    ) -> Result<Response<pb::RequestVoteResponse>, Status> {
        let request = request.into_inner();
        let addressing = self.check_known(request.header.as_ref())?;
        let message = convert::vote_request_from_proto(&addressing, &request)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let answer = self.deliver(message, self.timeout).await?;
        let mut response =
            self.reply(convert::vote_response_to_proto(&self.cluster_id, &answer))?;
        // A removed server still asking for votes is told so (the core has
        // answered it as any other; this only informs its operator).
        let removed = self
            .identity
            .directory
            .borrow()
            .removed(addressing.from, request.last_log_index);
        if let Some(detail) = removed
            && let Ok(value) = detail.parse()
        {
            response
                .metadata_mut()
                .insert(crate::members::NOT_A_MEMBER_HEADER, value);
        }
        Ok(response)
    }

    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        self.append_one(request.into_inner()).await
    }

    type AppendEntriesStreamStream =
        Pin<Box<dyn Stream<Item = Result<pb::AppendEntriesResponse, Status>> + Send>>;

    /// Each request as the unary RPC takes it, answered in order. A leader
    /// sending one at a time (the default) gets its requests taken one at
    /// a time, the answers computed in the stream's own task as the
    /// transport polls for them: no task or channel between the connection
    /// and the event loop beyond the unary path's. A pipelining leader says
    /// its window in the call's metadata ([`APPEND_WINDOW_HEADER`]): up to
    /// that many of its requests are taken at once, in order, so one batch
    /// of the event loop (one fdatasync) may take several. (Taking every
    /// stream's requests that way cost the one-at-a-time leader 3-4 % of
    /// its puts and CPU in six alternating runs; taking a pipelining
    /// leader's one at a time cost it 15-20 %.) A refused request yields
    /// its status, which ends the stream (tonic sends it as the trailers);
    /// requests behind it are lost messages to the leader.
    async fn append_entries_stream(
        &self,
        request: Request<Streaming<pb::AppendEntriesRequest>>,
    ) -> Result<Response<Self::AppendEntriesStreamStream>, Status> {
        let window = request
            .metadata()
            .get(APPEND_WINDOW_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, crate::config::MAX_INFLIGHT);
        let service = Arc::new(self.clone());
        let answer = move |request: Result<pb::AppendEntriesRequest, Status>| {
            let service = service.clone();
            async move {
                let answer = service.append_one(request?).await?;
                Ok(answer.into_inner())
            }
        };
        let requests = request.into_inner();
        if window > 1 {
            let answers = futures_util::StreamExt::buffered(requests.map(answer), window);
            return Ok(Response::new(Box::pin(answers)));
        }
        let answers = requests.then(answer);
        Ok(Response::new(Box::pin(answers)))
    }

    /// One-way in the core: the target campaigns (or ignores a stale
    /// TimeoutNow) and has nothing to answer; the empty response says the
    /// core took it.
    async fn timeout_now(
        &self,
        request: Request<pb::TimeoutNowRequest>,
    ) -> Result<Response<pb::TimeoutNowResponse>, Status> {
        let request = request.into_inner();
        let addressing = self.check_known(request.header.as_ref())?;
        let message = convert::timeout_now_from_proto(&addressing);
        self.step_core(message, self.timeout).await?;
        Ok(Response::new(pb::TimeoutNowResponse {}))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::InstallSnapshotChunk>>,
    ) -> Result<Response<pb::InstallSnapshotResponse>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let addressing = self.check(first.header.as_ref())?;
        let wire_meta = first
            .meta
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the first snapshot chunk has no metadata"))?;
        let meta = convert::check_snapshot_meta(wire_meta)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let size = wire_meta.size;
        if size > self.max_snapshot_bytes {
            return Err(Status::resource_exhausted(format!(
                "snapshot of {size} bytes exceeds the limit of {} bytes",
                self.max_snapshot_bytes
            )));
        }
        // Grow as chunks arrive: an announced size is not yet proof of data.
        let mut bytes = Vec::with_capacity(usize::try_from(size.min(64 << 20)).unwrap_or(0));
        let started = Instant::now();
        debug!(
            from = addressing.from,
            term = addressing.term,
            index = meta.last_index,
            bytes = size,
            "receiving a snapshot"
        );
        let mut chunk = Some(first);
        while let Some(current) = chunk {
            // Each chunk is word from the sender while the snapshot streams;
            // the event loop decides whether it is word from *its* leader.
            self.chunk_arrived(&addressing);
            if current.offset != bytes.len() as u64 {
                return Err(Status::invalid_argument(format!(
                    "snapshot chunk at offset {} but {} bytes received so far",
                    current.offset,
                    bytes.len()
                )));
            }
            if bytes.len() as u64 + current.data.len() as u64 > size {
                return Err(Status::invalid_argument(
                    "snapshot chunks exceed the announced size",
                ));
            }
            bytes.extend_from_slice(&current.data);
            if current.done {
                break;
            }
            chunk = stream.message().await?;
            if chunk.is_none() {
                return Err(Status::invalid_argument(
                    "snapshot stream ended before the chunk marked done",
                ));
            }
        }
        if bytes.len() as u64 != size {
            return Err(Status::invalid_argument(
                "snapshot is shorter than its announced size",
            ));
        }
        let snapshot: Snapshot<_> =
            tokio::task::spawn_blocking(move || snapshot_file::decode(&bytes))
                .await
                .map_err(|err| Status::internal(err.to_string()))?
                .map_err(|err| Status::invalid_argument(format!("received snapshot: {err}")))?;
        if snapshot.meta != meta {
            return Err(Status::invalid_argument(
                "the snapshot image does not match the metadata it was announced with",
            ));
        }
        // Decoding a large image takes time too.
        self.chunk_arrived(&addressing);
        info!(
            from = addressing.from,
            term = addressing.term,
            index = meta.last_index,
            bytes = size,
            ms = started.elapsed().as_millis() as u64,
            "received a snapshot; handing it to the core"
        );
        let message = Msg {
            from: addressing.from,
            to: addressing.to,
            term: addressing.term,
            body: Body::InstallSnapshotRequest { snapshot },
        };
        // Installing makes the image durable first: allow for the write.
        let answer = self.deliver(message, self.timeout * 10).await?;
        self.reply(convert::snapshot_response_to_proto(
            &self.cluster_id,
            &answer,
        ))
    }
}
