//! Membership faults (`replace-member`, `remove-add`): the cluster's
//! configuration changes under the workload, through the admin service an
//! operator would use (`raft.admin.v1.Admin` AddMember / RemoveMember /
//! MemberList), while linearizability and the traces are checked as ever.
//!
//! - A new server always gets a **new id** (never one used before in the
//!   run), its own port, data directory, log and trace, and starts with
//!   `--init --join`: it knows no configuration until the leader's first
//!   message. It is reached by every node through its own proxy (one per
//!   target node, the sender found from the connection, `proxy`), at the
//!   address given to AddMember, which the cluster replicates.
//! - A removed server is stopped for good once the removal is confirmed
//!   (its data, log and trace stay: the trace is validated with the others).
//! - The cluster's size is kept: `replace-member` adds then removes (four
//!   voters for a while), `remove-add` removes then adds (two voters for a
//!   while). If an earlier change left the cluster bigger or smaller than
//!   its size (a change refused every time), the next membership fault only
//!   removes or only adds, to bring it back.
//! - A change the node refuses (ABORTED: another under way; UNAVAILABLE: a
//!   new leader's term not committed, a transfer; FAILED_PRECONDITION: not
//!   the leader; DEADLINE_EXCEEDED) is retried a bounded number of times
//!   and then skipped and counted, never a failure by itself; a change that
//!   reports success must show in `MemberList`, or the run fails.
//!
//! Every call is bounded in time, every loop in count.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use raft_model::NodeId;
use raft_node::config::Member;
use raft_node::proto::admin as pb;
use tonic::Code;

use super::nodes::Processes;
use super::proxy::{LinkProxy, Network, Resolver, Source};
use super::workload::Endpoints;

/// How many times a refused change is asked again, and how long one call
/// may take (a change waits for the new member to catch up).
const ATTEMPTS: u32 = 8;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole change may take, retries included.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The harness's side of the cluster's membership.
pub struct Membership {
    /// The number of voters to keep at quiescent points.
    pub size: usize,
    /// The next id a new server gets.
    next_id: NodeId,
    network: Network,
    resolver: Resolver,
    proxy_ip: std::net::Ipv4Addr,
    /// The proxy in front of each node (kept for the whole run).
    proxies: Vec<LinkProxy>,
    /// The address each node is known by in the cluster (its proxy).
    pub cluster_addresses: BTreeMap<NodeId, String>,
    /// Outcomes, by name: added, removed, add-refused, remove-refused,
    /// join-failed, ... (the report's `membership`).
    pub outcomes: BTreeMap<String, u64>,
    /// Changes that reported success but did not show in `MemberList`: a
    /// failure of the run.
    pub problems: Vec<String>,
    /// Print each change as it is made.
    pub verbose: bool,
}

impl Membership {
    pub fn new(
        size: usize,
        next_id: NodeId,
        network: Network,
        resolver: Resolver,
        proxy_ip: std::net::Ipv4Addr,
        cluster_addresses: BTreeMap<NodeId, String>,
        verbose: bool,
    ) -> Membership {
        Membership {
            size,
            next_id,
            network,
            resolver,
            proxy_ip,
            proxies: Vec::new(),
            cluster_addresses,
            outcomes: BTreeMap::new(),
            problems: Vec::new(),
            verbose,
        }
    }

    fn count(&mut self, outcome: &str) {
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    fn say(&self, line: String) {
        if self.verbose {
            println!("           {line}");
        }
    }

    /// One membership fault: `victim` leaves and a fresh server joins (the
    /// removal first if `remove_first`), or, if the cluster is not at its
    /// size, only the step that brings it back. Errors only when the harness
    /// itself cannot go on (a port, a process that cannot be spawned).
    pub async fn change(
        &mut self,
        processes: &mut Processes,
        endpoints: &Endpoints,
        victim: NodeId,
        remove_first: bool,
        through_learner: bool,
    ) -> anyhow::Result<()> {
        let Some(list) = member_list(endpoints).await else {
            self.count("skipped-no-leader");
            self.say("membership: no leader answered MemberList; skipped".into());
            return Ok(());
        };
        if !list.old_members.is_empty() {
            self.count("skipped-joint");
            return Ok(());
        }
        let members: Vec<NodeId> = list.members.iter().map(|m| m.id).collect();
        self.reconcile(processes, endpoints, &members);
        let Some(&first) = members.first() else {
            self.count("skipped-no-members");
            return Ok(());
        };
        let victim = if members.contains(&victim) {
            victim
        } else {
            first
        };
        if members.len() > self.size {
            self.remove(processes, endpoints, victim).await;
        } else if members.len() < self.size {
            self.add(processes, endpoints).await?;
        } else if through_learner {
            self.replace_through_learner(processes, endpoints, victim)
                .await?;
        } else if remove_first {
            if self.remove(processes, endpoints, victim).await {
                self.add(processes, endpoints).await?;
            }
        } else if self.add(processes, endpoints).await? {
            self.remove(processes, endpoints, victim).await;
        }
        Ok(())
    }

    /// Brings the harness's view in line with the configuration: a node that
    /// is not a member (a removal that completed after its call gave up) is
    /// stopped for good.
    fn reconcile(&mut self, processes: &mut Processes, endpoints: &Endpoints, members: &[NodeId]) {
        for id in processes.ids() {
            if !members.contains(&id) {
                self.say(format!("membership: node {id} is not a member; stopped"));
                processes.retire(id);
                endpoints.remove(id);
                self.count("stopped-non-member");
            }
        }
    }

    /// Starts a fresh server under a new id and adds it. Whether it is a
    /// member now.
    async fn add(
        &mut self,
        processes: &mut Processes,
        endpoints: &Endpoints,
    ) -> anyhow::Result<bool> {
        let Some((id, address, listen)) = self.start_fresh(processes).await? else {
            return Ok(false);
        };
        let request = pb::AddMemberRequest {
            id,
            address: address.clone(),
            incarnation: String::new(),
        };
        let outcome = change(endpoints, |mut client| {
            let request = request.clone();
            async move { client.add_member(request).await }
        })
        .await;
        let member = self.settle(endpoints, id, true, &outcome).await;
        self.say(format!(
            "membership: add node {id} at {address}: {} ({})",
            describe(&outcome),
            if member { "a member" } else { "not a member" }
        ));
        if member {
            self.count("added");
            endpoints.insert(id, listen.to_string());
        } else {
            self.count("add-refused");
            processes.retire(id);
        }
        Ok(member)
    }

    /// `member replace`: a fresh server joins as a learner, then is swapped
    /// in for `victim` in one joint change once caught up. A learner that
    /// is not promoted is removed again (bounded attempts) and stopped.
    async fn replace_through_learner(
        &mut self,
        processes: &mut Processes,
        endpoints: &Endpoints,
        victim: NodeId,
    ) -> anyhow::Result<()> {
        let Some((id, address, listen)) = self.start_fresh(processes).await? else {
            return Ok(());
        };
        let request = pb::AddMemberRequest {
            id,
            address: address.clone(),
            incarnation: String::new(),
        };
        let added = change(endpoints, |mut client| {
            let request = request.clone();
            async move { client.add_learner(request).await }
        })
        .await;
        self.say(format!(
            "membership: add learner {id} at {address}: {}",
            describe(&added)
        ));
        if let Ok(response) = &added
            && !response.learners.iter().any(|l| l.id == id)
        {
            self.problems.push(format!(
                "AddLearner reported success but its answer's learners {:?} lack node {id}",
                response.learners.iter().map(|l| l.id).collect::<Vec<_>>()
            ));
        }
        let promote = pb::PromoteLearnerRequest {
            id,
            max_lag: 0,
            replaces: victim,
        };
        let outcome = if added.is_ok() {
            change(endpoints, |mut client| async move {
                client.promote_learner(promote).await
            })
            .await
        } else {
            Err(tonic::Status::aborted("the learner was not added"))
        };
        let member = self.settle(endpoints, id, true, &outcome).await;
        self.say(format!(
            "membership: promote learner {id} in place of node {victim}: {} ({})",
            describe(&outcome),
            if member { "a member" } else { "not a member" }
        ));
        if member {
            self.count("promoted-learner");
            endpoints.insert(id, listen.to_string());
            // The victim left in the same change (unless it was gone).
            if let Some(list) = member_list(endpoints).await
                && list.committed
                && !list.members.iter().any(|m| m.id == victim)
                && processes.ids().contains(&victim)
            {
                self.count("removed");
                endpoints.remove(victim);
                processes.retire(victim);
            }
        } else {
            self.count("promote-refused");
            let removed = change(endpoints, |mut client| async move {
                client.remove_learner(pb::RemoveMemberRequest { id }).await
            })
            .await;
            self.say(format!(
                "membership: remove learner {id}: {}",
                describe(&removed)
            ));
            processes.retire(id);
        }
        Ok(())
    }

    /// Starts a fresh server under a new id, initialised to join, behind
    /// its own proxy: its id, the address the cluster reaches it at, and
    /// where it listens; None if it did not serve within 10 s (stopped).
    async fn start_fresh(
        &mut self,
        processes: &mut Processes,
    ) -> anyhow::Result<Option<(NodeId, String, SocketAddr)>> {
        let id = self.next_id;
        self.next_id += 1;
        let listener = raft_node::launch::loopback_listeners(1)?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("no port for node {id}"))?;
        let listen: SocketAddr = listener.local_addr()?;
        let proxy = LinkProxy::start_on(
            self.proxy_ip,
            self.network.clone(),
            Source::Resolve(self.resolver.clone()),
            id,
            listen,
        )
        .await?;
        let address = proxy.address.to_string();
        self.proxies.push(proxy);
        self.cluster_addresses.insert(id, address.clone());
        processes.add_joining(
            id,
            listener,
            vec![Member {
                id,
                address: address.clone(),
            }],
        )?;
        processes.start(id)?;
        // It serves (Status) before it is added, or it is given up.
        let started = Instant::now();
        let mut serving = false;
        while started.elapsed() < Duration::from_secs(10) {
            if super::faults::status(&listen.to_string()).await.is_some() {
                serving = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !serving {
            self.count("join-failed");
            self.say(format!("membership: new node {id} did not serve; stopped"));
            processes.retire(id);
            return Ok(None);
        }
        Ok(Some((id, address, listen)))
    }

    /// Removes `victim`. Whether it is out of the configuration now (then
    /// it is stopped for good).
    async fn remove(
        &mut self,
        processes: &mut Processes,
        endpoints: &Endpoints,
        victim: NodeId,
    ) -> bool {
        let outcome = change(endpoints, |mut client| async move {
            client
                .remove_member(pb::RemoveMemberRequest { id: victim })
                .await
        })
        .await;
        let gone = self.settle(endpoints, victim, false, &outcome).await;
        self.say(format!(
            "membership: remove node {victim}: {} ({})",
            describe(&outcome),
            if gone { "removed" } else { "still a member" }
        ));
        if gone {
            self.count("removed");
            endpoints.remove(victim);
            processes.retire(victim);
        } else {
            self.count("remove-refused");
        }
        gone
    }

    /// Whether `id` is (`member`) or is not a member once the call's
    /// outcome is known, read from `MemberList` of the leader (a committed
    /// configuration). A call that reported success must show there: if a
    /// leader's committed configuration says otherwise, that is a problem
    /// of the run.
    async fn settle(
        &mut self,
        endpoints: &Endpoints,
        id: NodeId,
        member: bool,
        outcome: &Result<pb::ChangeMembersResponse, tonic::Status>,
    ) -> bool {
        let reported = match outcome {
            Ok(response) => Some(response.members.iter().any(|m| m.id == id) == member),
            Err(_) => None,
        };
        if reported == Some(false) {
            self.problems.push(format!(
                "a change reported success but its answer's members {:?} {} node {id}",
                outcome
                    .as_ref()
                    .map(|r| r.members.iter().map(|m| m.id).collect::<Vec<_>>())
                    .unwrap_or_default(),
                if member { "lack" } else { "hold" }
            ));
        }
        // Bounded: the leader's committed configuration, within 5 s.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Some(list) = member_list(endpoints).await
                && list.committed
                && list.old_members.is_empty()
            {
                let holds = list.members.iter().any(|m| m.id == id);
                if reported == Some(true) && holds != member {
                    self.problems.push(format!(
                        "a change reported success, but node {}'s MemberList (committed, index {}) {} node {id}",
                        list.id,
                        list.config_index,
                        if member { "lacks" } else { "still holds" }
                    ));
                }
                return holds == member;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // No committed configuration seen: believe a success, doubt the rest.
        reported == Some(true)
    }

    /// The proxies, kept until the run's end.
    pub fn into_proxies(self) -> Vec<LinkProxy> {
        self.proxies
    }
}

fn describe(outcome: &Result<pb::ChangeMembersResponse, tonic::Status>) -> String {
    match outcome {
        Ok(response) => format!(
            "OK, members {:?} at index {}",
            response.members.iter().map(|m| m.id).collect::<Vec<_>>(),
            response.config_index
        ),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    }
}

async fn admin_client(
    address: &str,
) -> Option<pb::admin_client::AdminClient<tonic::transport::Channel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .ok()?
        .connect_timeout(Duration::from_millis(300));
    let channel = tokio::time::timeout(Duration::from_millis(500), endpoint.connect())
        .await
        .ok()?
        .ok()?;
    Some(pb::admin_client::AdminClient::new(channel))
}

/// The leader's MemberList (asked of each member in turn, then of the
/// leader it names), or None if no leader answers within a few seconds.
pub async fn member_list(endpoints: &Endpoints) -> Option<pb::MemberListResponse> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let (_, addresses) = endpoints.snapshot();
        for address in addresses.values() {
            let Some(mut client) = admin_client(address).await else {
                continue;
            };
            let call = client.member_list(pb::MemberListRequest {});
            let Ok(Ok(list)) = tokio::time::timeout(Duration::from_secs(1), call).await else {
                continue;
            };
            let list = list.into_inner();
            if list.leader_id != 0 && list.leader_id == list.id {
                return Some(list);
            }
            if let Some(leader) = addresses.get(&list.leader_id)
                && let Some(mut client) = admin_client(leader).await
                && let Ok(Ok(list)) = tokio::time::timeout(
                    Duration::from_secs(1),
                    client.member_list(pb::MemberListRequest {}),
                )
                .await
                && list.get_ref().leader_id == list.get_ref().id
            {
                return Some(list.into_inner());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Asks the leader for a change, following "not the leader" to the leader
/// it names and retrying a refusal that may pass later (ABORTED,
/// UNAVAILABLE, DEADLINE_EXCEEDED, no answer): at most [`ATTEMPTS`] calls
/// of [`CALL_TIMEOUT`] within [`CHANGE_TIMEOUT`]. The last answer.
async fn change<F, Fut>(
    endpoints: &Endpoints,
    mut call: F,
) -> Result<pb::ChangeMembersResponse, tonic::Status>
where
    F: FnMut(pb::admin_client::AdminClient<tonic::transport::Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<pb::ChangeMembersResponse>, tonic::Status>>,
{
    let started = Instant::now();
    let mut last = tonic::Status::unavailable("no leader found");
    for attempt in 0..ATTEMPTS {
        if started.elapsed() > CHANGE_TIMEOUT {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        let Some(list) = member_list(endpoints).await else {
            continue;
        };
        let (_, addresses) = endpoints.snapshot();
        let Some(address) = addresses.get(&list.leader_id) else {
            continue;
        };
        let Some(client) = admin_client(address).await else {
            continue;
        };
        last = match tokio::time::timeout(CALL_TIMEOUT, call(client)).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => tonic::Status::deadline_exceeded("no answer within the harness's timeout"),
        };
        match last.code() {
            // Nothing would change: the configuration in force already is
            // what was asked (an earlier attempt went through).
            Code::AlreadyExists => return Err(last),
            Code::Aborted
            | Code::Unavailable
            | Code::FailedPrecondition
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Cancelled => {}
            // A node stopped under the call (GOAWAY): ask another.
            Code::Internal if raft_node::client::transport_failed(&last) => {}
            _ => return Err(last),
        }
    }
    Err(last)
}
