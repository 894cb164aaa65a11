//! The way from a client-facing gRPC service into the event loop: send an
//! [`Input`], wait (bounded) for its answer, and turn the loop's
//! [`ClientError`]s into gRPC statuses that clients can act on — above all
//! "not the leader", with the leader's id and address as metadata so that a
//! client can follow it. The key-value and the admin services share it.

use std::sync::Arc;
use std::time::Duration;

use raft_model::NodeId;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::config::NodeConfig;
use crate::members::DirectoryWatch;
use crate::types::{ClientError, Input};

pub const LEADER_ID_HEADER: &str = "raft-leader-id";
pub const LEADER_ADDR_HEADER: &str = "raft-leader-addr";

#[derive(Clone)]
pub struct Gateway {
    pub cluster_id: String,
    /// The configuration and every member's address (client and peer
    /// port are one), for leader hints: published by the event loop, so a
    /// member added at runtime is found too.
    pub directory: DirectoryWatch,
    inbox: mpsc::Sender<Input>,
    /// How long a request may wait for the loop's answer.
    pub timeout: Duration,
    /// Writes are refused while the disk is (nearly) full.
    disk_space: Option<crate::disk_space::DiskSpace>,
}

impl Gateway {
    pub fn new(
        config: &Arc<NodeConfig>,
        inbox: mpsc::Sender<Input>,
        directory: DirectoryWatch,
    ) -> Self {
        Gateway {
            cluster_id: config.cluster_id.clone(),
            directory,
            inbox,
            timeout: config.client_timeout,
            disk_space: None,
        }
    }

    /// Refuse writes while `space` says the disk is (nearly) full.
    pub fn with_disk_space(mut self, space: crate::disk_space::DiskSpace) -> Self {
        self.disk_space = Some(space);
        self
    }

    /// A write's first check: RESOURCE_EXHAUSTED while the data directory's
    /// disk has less free space than configured (reads go on).
    pub fn check_disk_space(&self) -> Result<(), Status> {
        match &self.disk_space {
            Some(space) => space.check_write().map_err(Status::resource_exhausted),
            None => Ok(()),
        }
    }

    /// Sends the input `make` builds and waits up to `timeout` for its answer.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, Status> {
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send(make(reply))
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(Status::unavailable("the node is shutting down")),
            Err(_) => Err(Status::unavailable(
                "timed out waiting for the cluster; retry (writes with the same sequence number)",
            )),
        }
    }

    /// A member's client address, if it is known.
    pub fn address_of(&self, id: NodeId) -> Option<String> {
        self.directory.borrow().addresses.get(&id).cloned()
    }

    /// Sends the input `make` builds and waits up to `timeout` (instead of
    /// the client timeout) for its answer: for operations that take longer,
    /// such as a membership change, which waits for a new member to catch up.
    pub async fn ask_within<T>(
        &self,
        timeout: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, Status> {
        let gateway = Gateway {
            timeout,
            ..self.clone()
        };
        gateway.ask(make).await
    }

    /// The gRPC status for an error of the event loop.
    pub fn status(&self, err: ClientError) -> Status {
        match err {
            // Both say where the leader is, and both are retried there by a
            // client with a session: a write whose outcome is unknown is
            // answered from the session table if it did commit.
            ClientError::NotLeader { leader } => self.redirect("not the leader", leader),
            ClientError::LeadershipLost { leader } => self.redirect(
                "leadership lost before the write committed (its outcome is unknown: retry with the same sequence number)",
                leader,
            ),
            ClientError::Retry(message) => Status::unavailable(message),
            ClientError::Apply(err) => Status::invalid_argument(err.to_string()),
            ClientError::Invalid(message) => Status::invalid_argument(message),
            ClientError::Aborted(message) => Status::aborted(message),
            ClientError::Stopped => Status::unavailable("the node is shutting down"),
            ClientError::ConfigChange(error) => config_change_status(error),
        }
    }

    /// FAILED_PRECONDITION saying `what` and where the leader is, with the
    /// leader's id and address in the response metadata when known.
    fn redirect(&self, what: &str, leader: Option<NodeId>) -> Status {
        let address = leader.and_then(|id| self.address_of(id));
        let message = match (leader, &address) {
            (Some(id), Some(address)) => format!("{what}; the leader is node {id} at {address}"),
            _ => format!("{what}; no leader is known yet, retry shortly"),
        };
        let mut status = Status::failed_precondition(message);
        if let (Some(id), Some(address)) = (leader, address) {
            let metadata = status.metadata_mut();
            metadata.insert(LEADER_ID_HEADER, MetadataValue::from(id));
            if let Ok(value) = address.parse() {
                metadata.insert(LEADER_ADDR_HEADER, value);
            }
        }
        status
    }
}

/// The gRPC status for a membership change the core refused
/// (`raft_model::ConfigChangeError`), each with its own code so that a
/// client can tell them apart: a change under way is ABORTED (a concurrency
/// conflict: retry once it has committed), a leader that has not yet
/// committed an entry of its term is UNAVAILABLE (retry shortly), the
/// configuration in force is ALREADY_EXISTS, and no members or a voter
/// named as a learner is INVALID_ARGUMENT.
pub fn config_change_status(error: raft_model::ConfigChangeError) -> Status {
    use raft_model::ConfigChangeError as E;
    let message = format!("configuration change refused: {error}");
    match error {
        E::Pending => Status::aborted(message),
        E::TermNotCommitted => Status::unavailable(message),
        E::Unchanged => Status::already_exists(message),
        E::NoMembers | E::LearnerIsVoter(_) => Status::invalid_argument(message),
    }
}
