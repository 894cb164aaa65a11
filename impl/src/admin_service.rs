//! The administration service (`raft.admin.v1.Admin`): operations on the
//! cluster rather than on its data. Moving leadership to a chosen member
//! (the operator's tool before taking the leader down for maintenance), and
//! membership: listing, adding and removing voters (issue 15), each change
//! through the core's joint consensus, answered once C_new has committed.

use std::sync::Arc;
use std::time::Duration;

use imbl::OrdSet;
use raft_model::NodeId;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::gateway::Gateway;
use crate::members::{self, MemberAddress};
use crate::proto::admin as pb;
use crate::proto::admin::admin_server::Admin;
use crate::types::{Input, MembersChanged};

/// How long a membership change may take before its caller is told to
/// check the outcome: a new member must catch up (from the log or a
/// snapshot) before C_old,new can commit with it.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// How far behind the leader's last index a learner may be when promoted,
/// unless the request says: one full AppendEntries batch, so that the new
/// voter can hold C_old,new's quorum within a round trip or two.
pub const DEFAULT_PROMOTE_LAG: u64 = 256;

/// How often a promotion looks at the learner's progress while it waits.
const PROMOTE_POLL: Duration = Duration::from_millis(100);

/// How long adding a server waits for its status (its id, cluster and
/// incarnation) before going on without it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct AdminService {
    gateway: Gateway,
    tls: Option<crate::tls::Tls>,
}

impl AdminService {
    pub fn new(
        config: &Arc<NodeConfig>,
        inbox: mpsc::Sender<Input>,
        directory: crate::members::DirectoryWatch,
    ) -> Self {
        AdminService {
            gateway: Gateway::new(config, inbox, directory),
            tls: config.tls.clone(),
        }
    }

    /// Refuses an address another voter or learner already has: two
    /// servers at one address would be one server counted twice (a voter),
    /// or one that never catches up (the server there refuses messages
    /// addressed to another id).
    fn check_address_free(&self, id: NodeId, address: &str) -> Result<(), Status> {
        let directory = self.gateway.directory.borrow();
        let taken_by = directory.config.as_ref().and_then(|config| {
            config.servers().find(|other| {
                *other != id && directory.addresses.get(other).map(String::as_str) == Some(address)
            })
        });
        match taken_by {
            Some(other) => Err(Status::invalid_argument(format!(
                "address {address} is member {other}'s: each member needs its own"
            ))),
            None => Ok(()),
        }
    }

    /// The record of the server a request adds, once this node's view
    /// refuses nothing about it: an address no other voter or learner has
    /// ([`Self::check_address_free`]), and an identity that is the one asked
    /// for ([`Self::new_member`]).
    async fn admit(&self, request: pb::AddMemberRequest) -> Result<MemberAddress, Status> {
        self.check_address_free(request.id, &request.address)?;
        self.new_member(request.id, request.address, request.incarnation)
            .await
    }

    /// The record of a server being added as `id` at `address`: its
    /// incarnation is the request's, or else the one the server there
    /// reports in its status (crate::incarnation). A server there that says
    /// it is another node, or of another cluster, is refused. One that does
    /// not answer within [`PROBE_TIMEOUT`] is added without an incarnation:
    /// the leader records the first it hears from it.
    async fn new_member(
        &self,
        id: NodeId,
        address: String,
        incarnation: String,
    ) -> Result<MemberAddress, Status> {
        crate::incarnation::check(&incarnation).map_err(Status::invalid_argument)?;
        let Some(status) = self.probe(&address).await else {
            tracing::warn!(
                id,
                %address,
                "adding a server that does not answer: its incarnation is recorded once the \
                 leader hears from it"
            );
            return Ok(MemberAddress {
                id,
                address,
                incarnation,
            });
        };
        if status.cluster_id != self.gateway.cluster_id {
            return Err(Status::invalid_argument(format!(
                "the server at {address} is of cluster {:?}, not {:?}: is the address right?",
                status.cluster_id, self.gateway.cluster_id
            )));
        }
        if status.id != id {
            return Err(Status::invalid_argument(format!(
                "the server at {address} is node {}, not node {id}: add it under its own id \
                 (the one its data directory was initialised with)",
                status.id
            )));
        }
        if !incarnation.is_empty() && incarnation != status.incarnation {
            return Err(Status::invalid_argument(format!(
                "the server at {address} is incarnation {:?} of node {id}, not {incarnation:?}",
                status.incarnation
            )));
        }
        Ok(MemberAddress {
            id,
            address,
            incarnation: status.incarnation,
        })
    }

    /// The status of the server at `address`, if it answers in time.
    async fn probe(&self, address: &str) -> Option<crate::proto::kv::StatusResponse> {
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(crate::tls::uri(address, self.tls.is_some()))
                .ok()?
                .connect_timeout(PROBE_TIMEOUT);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.client()).ok()?;
        }
        let ask = async {
            let channel = endpoint.connect().await.ok()?;
            crate::proto::kv::kv_client::KvClient::new(channel)
                .status(crate::proto::kv::StatusRequest {})
                .await
                .ok()
        };
        let status = tokio::time::timeout(PROBE_TIMEOUT, ask).await.ok()??;
        Some(status.into_inner())
    }

    /// A set of the configuration in force, as this node sees it now
    /// (empty before it knows one).
    fn current(&self, part: fn(&raft_model::Config) -> &OrdSet<NodeId>) -> OrdSet<NodeId> {
        self.gateway
            .directory
            .borrow()
            .config
            .as_ref()
            .map(|config| part(config).clone())
            .unwrap_or_default()
    }

    /// The voters of the configuration in force (C_new while joint).
    fn current_members(&self) -> OrdSet<NodeId> {
        self.current(|config| &config.members)
    }

    /// The learners of the configuration in force.
    fn current_learners(&self) -> OrdSet<NodeId> {
        self.current(|config| &config.learners)
    }

    /// Sends a change of the voters to the event loop and turns its answer
    /// into the RPC's. The set is computed here from this node's view; the
    /// leader's core judges it against its own (a stale view at a follower
    /// is refused as not the leader first).
    async fn change(
        &self,
        members: OrdSet<NodeId>,
        addresses: Vec<MemberAddress>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        self.send_change(|reply| Input::ChangeMembers {
            members,
            addresses,
            reply,
        })
        .await
    }

    /// [`Self::change`] for the learners.
    async fn change_learners(
        &self,
        learners: OrdSet<NodeId>,
        addresses: Vec<MemberAddress>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        self.send_change(|reply| Input::ChangeLearners {
            learners,
            addresses,
            reply,
        })
        .await
    }

    async fn send_change(
        &self,
        input: impl FnOnce(
            tokio::sync::oneshot::Sender<Result<MembersChanged, crate::types::ClientError>>,
        ) -> Input,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let gateway = &self.gateway;
        let changed = gateway
            .ask_within(CHANGE_TIMEOUT, input)
            .await
            .map_err(|status| {
                if status.code() == tonic::Code::Unavailable
                    && status.message().starts_with("timed out")
                {
                    Status::deadline_exceeded(format!(
                        "the membership change did not commit within {} s (is the new member \
                         up and reachable?); it may still complete: check with `member list`",
                        CHANGE_TIMEOUT.as_secs()
                    ))
                } else {
                    status
                }
            })?
            .map_err(|err| gateway.status(err))?;
        Ok(Response::new(self.change_response(changed)))
    }

    fn change_response(&self, changed: MembersChanged) -> pb::ChangeMembersResponse {
        pb::ChangeMembersResponse {
            members: changed.members.iter().map(|id| self.member(*id)).collect(),
            config_index: changed.index,
            term: changed.term,
            learners: changed.learners.iter().map(|id| self.member(*id)).collect(),
        }
    }

    fn member(&self, id: NodeId) -> pb::Member {
        pb::Member {
            id,
            address: self.gateway.address_of(id).unwrap_or_default(),
            incarnation: self
                .gateway
                .directory
                .borrow()
                .incarnations
                .get(&id)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// What AddMember and AddLearner require of the request itself.
fn check_new_server(request: &pb::AddMemberRequest) -> Result<(), Status> {
    check_id(request.id)?;
    members::check_address(&request.address).map_err(Status::invalid_argument)
}

fn check_id(id: NodeId) -> Result<(), Status> {
    if id == 0 {
        return Err(Status::invalid_argument("node ids start at 1"));
    }
    Ok(())
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let to = request.into_inner().to;
        let gateway = &self.gateway;
        let members = self.current_members();
        if !members.contains(&to) {
            return Err(Status::invalid_argument(format!(
                "node {to} is not a member of cluster {:?}; the members are {:?}",
                gateway.cluster_id,
                members.iter().collect::<Vec<_>>()
            )));
        }
        let moved = gateway
            .ask(|reply| Input::TransferLeader { to, reply })
            .await?
            .map_err(|err| gateway.status(err))?;
        Ok(Response::new(pb::TransferLeaderResponse {
            leader_id: moved.leader,
            leader_address: gateway.address_of(moved.leader).unwrap_or_default(),
            term: moved.term,
        }))
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let gateway = &self.gateway;
        let list = gateway.ask(|reply| Input::Members { reply }).await?;
        let incarnations = gateway.directory.borrow().incarnations.clone();
        let member = |id: &NodeId| pb::Member {
            id: *id,
            address: list.addresses.get(id).cloned().unwrap_or_default(),
            incarnation: incarnations.get(id).cloned().unwrap_or_default(),
        };
        Ok(Response::new(pb::MemberListResponse {
            id: list.id,
            term: list.term,
            leader_id: list.leader.unwrap_or(0),
            leader_address: list
                .leader
                .and_then(|id| gateway.address_of(id))
                .unwrap_or_default(),
            members: list.members.iter().map(member).collect(),
            old_members: list.old_members.iter().map(member).collect(),
            config_index: list.config_index,
            committed: list.committed,
            learners: list
                .learners
                .iter()
                .map(|id| pb::Learner {
                    id: *id,
                    address: list.addresses.get(id).cloned().unwrap_or_default(),
                    matched: list.learner_matched.get(id).copied().unwrap_or(0),
                    progress_known: list.learner_matched.contains_key(id),
                    incarnation: incarnations.get(id).cloned().unwrap_or_default(),
                })
                .collect(),
            last_index: list.last_index,
        }))
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let request = request.into_inner();
        check_new_server(&request)?;
        let mut members = self.current_members();
        if members.contains(&request.id) {
            return Err(Status::already_exists(format!(
                "node {} is a voter of the configuration in force already",
                request.id
            )));
        }
        let added = self.admit(request).await?;
        members.insert(added.id);
        self.change(members, vec![added]).await
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let id = request.into_inner().id;
        check_id(id)?;
        let mut members = self.current_members();
        members.remove(&id);
        self.change(members, Vec::new()).await
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let request = request.into_inner();
        check_new_server(&request)?;
        if self.current_members().contains(&request.id) {
            return Err(Status::already_exists(format!(
                "node {} is a voter already",
                request.id
            )));
        }
        let mut learners = self.current_learners();
        if learners.contains(&request.id) {
            return Err(Status::already_exists(format!(
                "node {} is a learner already",
                request.id
            )));
        }
        let added = self.admit(request).await?;
        learners.insert(added.id);
        self.change_learners(learners, vec![added]).await
    }

    async fn remove_learner(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let id = request.into_inner().id;
        check_id(id)?;
        let mut learners = self.current_learners();
        if learners.remove(&id).is_none() {
            return Err(Status::already_exists(format!(
                "node {id} is not a learner"
            )));
        }
        self.change_learners(learners, Vec::new()).await
    }

    async fn promote_learner(
        &self,
        request: Request<pb::PromoteLearnerRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let request = request.into_inner();
        check_id(request.id)?;
        let max_lag = if request.max_lag == 0 {
            DEFAULT_PROMOTE_LAG
        } else {
            request.max_lag
        };
        let gateway = &self.gateway;
        let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
        // Wait, bounded, until the leader sees the learner caught up.
        let lag = loop {
            let list = gateway.ask(|reply| Input::Members { reply }).await?;
            if list.leader != Some(list.id) {
                return Err(gateway.status(crate::types::ClientError::NotLeader {
                    leader: list.leader,
                }));
            }
            if !list.learners.contains(&request.id) {
                return Err(Status::invalid_argument(format!(
                    "node {} is not a learner (add it with `member add-learner` first)",
                    request.id
                )));
            }
            let matched = list.learner_matched.get(&request.id).copied().unwrap_or(0);
            let lag = list.last_index.saturating_sub(matched);
            if lag <= max_lag {
                break lag;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Status::deadline_exceeded(format!(
                    "learner {} is still {lag} entries behind the leader after {} s (at most \
                     {max_lag} allowed): is it up and reachable? Nothing was changed",
                    request.id,
                    CHANGE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(PROMOTE_POLL).await;
        };
        tracing::info!(
            learner = request.id,
            lag,
            max_lag,
            "promoting a caught-up learner"
        );
        let mut members = self.current_members();
        members.insert(request.id);
        if request.replaces != 0 {
            members.remove(&request.replaces);
        }
        self.change(members, Vec::new()).await
    }

    async fn change_members(
        &self,
        request: Request<pb::ChangeMembersRequest>,
    ) -> Result<Response<pb::ChangeMembersResponse>, Status> {
        let request = request.into_inner();
        let mut members = OrdSet::new();
        for id in request.members {
            check_id(id)?;
            members.insert(id);
        }
        let mut addresses = Vec::new();
        for member in request.addresses {
            check_id(member.id)?;
            members::check_address(&member.address).map_err(Status::invalid_argument)?;
            crate::incarnation::check(&member.incarnation).map_err(Status::invalid_argument)?;
            addresses.push(MemberAddress {
                id: member.id,
                address: member.address,
                incarnation: member.incarnation,
            });
        }
        self.change(members, addresses).await
    }
}
