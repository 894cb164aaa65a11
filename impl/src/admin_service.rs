//! The administration service (`raft.admin.v1.Admin`): operations on the
//! cluster rather than on its data. Today: moving leadership to a chosen
//! member, the operator's tool before taking the leader down for
//! maintenance.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::gateway::Gateway;
use crate::proto::admin as pb;
use crate::proto::admin::admin_server::Admin;
use crate::types::Input;

pub struct AdminService {
    gateway: Gateway,
}

impl AdminService {
    pub fn new(config: &Arc<NodeConfig>, inbox: mpsc::Sender<Input>) -> Self {
        AdminService {
            gateway: Gateway::new(config, inbox),
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let to = request.into_inner().to;
        let gateway = &self.gateway;
        if gateway.address_of(to).is_none() {
            return Err(Status::invalid_argument(format!(
                "node {to} is not a member of cluster {:?}; the members are {:?}",
                gateway.cluster_id,
                gateway.members.keys().collect::<Vec<_>>()
            )));
        }
        let moved = gateway
            .ask(|reply| Input::TransferLeader { to, reply })
            .await?
            .map_err(|err| gateway.status(err))?;
        Ok(Response::new(pb::TransferLeaderResponse {
            leader_id: moved.leader,
            leader_address: gateway
                .address_of(moved.leader)
                .cloned()
                .unwrap_or_default(),
            term: moved.term,
        }))
    }
}
