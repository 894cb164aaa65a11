//! The way from a client-facing gRPC service into the event loop: send an
//! [`Input`], wait (bounded) for its answer, and turn the loop's
//! [`ClientError`]s into gRPC statuses that clients can act on — above all
//! "not the leader", with the leader's id and address as metadata so that a
//! client can follow it. The key-value and the admin services share it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use raft_model::NodeId;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::config::NodeConfig;
use crate::types::{ClientError, Input};

pub const LEADER_ID_HEADER: &str = "raft-leader-id";
pub const LEADER_ADDR_HEADER: &str = "raft-leader-addr";

#[derive(Clone)]
pub struct Gateway {
    pub cluster_id: String,
    /// Every member's client address, for leader hints.
    pub members: BTreeMap<NodeId, String>,
    inbox: mpsc::Sender<Input>,
    /// How long a request may wait for the loop's answer.
    pub timeout: Duration,
    /// Writes are refused while the disk is (nearly) full.
    disk_space: Option<crate::disk_space::DiskSpace>,
}

impl Gateway {
    pub fn new(config: &Arc<NodeConfig>, inbox: mpsc::Sender<Input>) -> Self {
        Gateway {
            cluster_id: config.cluster_id.clone(),
            members: config.members.clone(),
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

    /// A member's client address, if it is one.
    pub fn address_of(&self, id: NodeId) -> Option<&String> {
        self.members.get(&id)
    }

    /// The gRPC status for an error of the event loop.
    pub fn status(&self, err: ClientError) -> Status {
        match err {
            ClientError::NotLeader { leader } => {
                let address = leader.and_then(|id| self.members.get(&id));
                let message = match (leader, address) {
                    (Some(id), Some(address)) => {
                        format!("not the leader; the leader is node {id} at {address}")
                    }
                    _ => "not the leader; no leader is known yet, retry shortly".to_owned(),
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
            ClientError::Retry(message) => Status::unavailable(message),
            ClientError::Apply(err) => Status::invalid_argument(err.to_string()),
            ClientError::Invalid(message) => Status::invalid_argument(message),
            ClientError::Aborted(message) => Status::aborted(message),
            ClientError::Stopped => Status::unavailable("the node is shutting down"),
        }
    }
}
