//! The client service: the key-value API over gRPC.
//!
//! Writes become core proposals; reads go through the core's ReadIndex. A
//! follower (or a leader that lost its office) answers `FAILED_PRECONDITION`
//! "not the leader" with the metadata `raft-leader-id` and `raft-leader-addr`
//! when it knows the leader, so a client can follow it.

use std::sync::Arc;

use raft_model::Role;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::gateway::Gateway;
use crate::kv::{KvCommand, KvOp};
use crate::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::proto::kv as pb;
use crate::proto::kv::kv_server::Kv;
use crate::types::{Applied, Input};

pub struct KvService {
    gateway: Gateway,
}

impl KvService {
    pub fn new(
        config: &Arc<NodeConfig>,
        inbox: mpsc::Sender<Input>,
        directory: crate::members::DirectoryWatch,
    ) -> Self {
        KvService {
            gateway: Gateway::new(config, inbox, directory),
        }
    }

    /// Refuse writes while `space` says the disk is (nearly) full.
    pub fn with_disk_space(mut self, space: crate::disk_space::DiskSpace) -> Self {
        self.gateway = self.gateway.with_disk_space(space);
        self
    }

    async fn propose(&self, command: KvCommand) -> Result<Applied, Status> {
        let gateway = &self.gateway;
        gateway.check_disk_space()?;
        let result = gateway
            .ask(|reply| Input::Propose { command, reply })
            .await?;
        result.map_err(|err| gateway.status(err))
    }
}

fn check_key(key: &str) -> Result<(), Status> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Status::invalid_argument(format!(
            "a key must be 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), Status> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Status::invalid_argument(format!(
            "a value must be at most {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_session(client_id: u64, seq: u64) -> Result<(), Status> {
    if client_id != 0 && seq == 0 {
        return Err(Status::invalid_argument(
            "a client with an id must number its writes from 1",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let request = request.into_inner();
        check_key(&request.key)?;
        check_value(&request.value)?;
        check_session(request.client_id, request.seq)?;
        let applied = self
            .propose(KvCommand::new(
                request.client_id,
                request.seq,
                KvOp::Put {
                    key: request.key,
                    value: request.value,
                },
            ))
            .await?;
        Ok(Response::new(pb::PutResponse {
            previous: applied.result.previous,
            index: applied.index,
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let request = request.into_inner();
        check_key(&request.key)?;
        let key = request.key.as_bytes().to_vec();
        let request_key = request.key;
        let read = self
            .gateway
            .ask(|reply| Input::Read {
                key,
                serializable: false,
                reply,
            })
            .await?
            .map_err(|err| self.gateway.status(err))?;
        // A value written through the etcd API may not be UTF-8: refused
        // rather than answered with a lossy copy (crate::kv).
        let value = match read.kv.map(|kv| String::from_utf8(kv.value)) {
            None => None,
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => {
                return Err(Status::failed_precondition(format!(
                    "the value of {key:?} is not UTF-8 (written through the etcd API); read it with etcd's Range",
                    key = request_key
                )));
            }
        };
        Ok(Response::new(pb::GetResponse {
            value,
            index: read.index,
        }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let request = request.into_inner();
        check_key(&request.key)?;
        check_session(request.client_id, request.seq)?;
        let applied = self
            .propose(KvCommand::new(
                request.client_id,
                request.seq,
                KvOp::Delete { key: request.key },
            ))
            .await?;
        Ok(Response::new(pb::DeleteResponse {
            previous: applied.result.previous,
            index: applied.index,
        }))
    }

    async fn compare_and_swap(
        &self,
        request: Request<pb::CasRequest>,
    ) -> Result<Response<pb::CasResponse>, Status> {
        let request = request.into_inner();
        check_key(&request.key)?;
        for value in [&request.expected, &request.new_value]
            .into_iter()
            .flatten()
        {
            check_value(value)?;
        }
        check_session(request.client_id, request.seq)?;
        let applied = self
            .propose(KvCommand::new(
                request.client_id,
                request.seq,
                KvOp::Cas {
                    key: request.key,
                    expected: request.expected,
                    new_value: request.new_value,
                },
            ))
            .await?;
        Ok(Response::new(pb::CasResponse {
            succeeded: applied.result.succeeded,
            previous: applied.result.previous,
            index: applied.index,
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let gateway = &self.gateway;
        let status = gateway.ask(|reply| Input::Status { reply }).await?;
        let role = match status.role {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::PreCandidate => "pre-candidate",
            Role::Leader => "leader",
        };
        Ok(Response::new(pb::StatusResponse {
            id: status.id,
            role: role.to_owned(),
            term: status.term,
            leader_id: status.leader.unwrap_or(0),
            leader_address: status
                .leader
                .and_then(|id| gateway.address_of(id))
                .unwrap_or_default(),
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            members: status
                .members
                .iter()
                .map(|id| pb::Member {
                    id: *id,
                    address: gateway.address_of(*id).unwrap_or_default(),
                })
                .collect(),
            cluster_id: gateway.cluster_id.clone(),
            last_log_index: status.last_log_index,
            snapshot_index: status.snapshot_index,
            ready: status.readiness.serving,
            ready_reason: status.readiness.reason.to_string(),
            incarnation: status.incarnation,
        }))
    }
}
