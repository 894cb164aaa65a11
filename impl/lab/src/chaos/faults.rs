//! The faults the harness injects, chosen by a seeded RNG, one at a time:
//! each is applied, held for a while, then healed, with a quiet gap between.
//!
//! The seed fixes the sequence of choices (which fault, which node, how
//! long), not the cluster's timing, so a failing seed usually but not always
//! fails again; the saved history and logs are the evidence.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use raft_model::NodeId;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::nodes::Processes;
use super::proxy::Network;
use raft_node::proto::kv as pb;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL a random node, restart it after a while.
    Kill,
    /// SIGKILL the leader, restart it after a while.
    KillLeader,
    /// Split the nodes into a random majority and minority.
    Partition,
    /// Cut the leader off from every other node (it is the minority).
    PartitionLeader,
    /// Nothing the leader sends reaches the others (it still hears them).
    LeaderMute,
    /// The leader hears nothing from the others (they still hear it).
    LeaderDeaf,
    /// One random direction of one random link drops everything.
    OneWay,
    /// SIGSTOP a random node, SIGCONT it after longer than an election timeout.
    Pause,
    /// SIGSTOP the leader.
    PauseLeader,
    /// A non-transitive partition: the leader and one follower cannot reach
    /// each other (both ways), while each still reaches every other node.
    NonTransitive,
    /// One link between the leader and a follower goes down and up again,
    /// both ways, every fraction of an election timeout while the fault
    /// holds.
    Flapping,
    /// An operator moves leadership to a random follower (the admin
    /// service's TransferLeader): not a failure, but a change of leader the
    /// clients must ride through like one.
    TransferLeader,
    /// Cut the power of a random node: SIGKILL it, drop everything its file
    /// system had not fsynced (each unsynced sector of a torn write kept or
    /// lost), restart it after a while. Needs the nodes on powerfs.
    PowerCut,
    /// Cut the power of a random minority of the nodes at once.
    PowerCutMinority,
    /// Cut the power of every node at once (a data centre's power loss):
    /// only what each had fsynced is left.
    PowerCutAll,
    /// A random node's disk takes one to two seconds per fsync while held.
    SlowDisk,
    /// A random minority of the nodes, each in its network namespace, has
    /// its link taken down (`ip link set ... down`): cut off from peers and
    /// clients at the kernel's level. Needs the nodes in namespaces.
    NetnsPartition,
    /// The leader's link taken down.
    NetnsPartitionLeader,
    /// A membership change (`super::membership`): a fresh server under a new
    /// id, on a new port and data directory, is started to join and added
    /// (AddMember), then a random member — the leader too — is removed
    /// (RemoveMember) and stopped for good: the cluster keeps its size.
    ReplaceMember,
    /// A random member is removed and stopped, its data left behind; then a
    /// fresh server (as if the machine were wiped and re-initialised with
    /// `--join`) is added under a NEW id: a removed id never comes back.
    RemoveAdd,
    /// `member replace` (issue 15): a fresh server under a new id joins as
    /// a learner (AddLearner), and once caught up is swapped in for a random
    /// member — the leader too — in one joint change (PromoteLearner with
    /// `replaces`); the member it replaced is stopped for good.
    ReplaceLearner,
}

impl FaultKind {
    pub const ALL: [FaultKind; 21] = [
        FaultKind::Kill,
        FaultKind::KillLeader,
        FaultKind::Partition,
        FaultKind::PartitionLeader,
        FaultKind::LeaderMute,
        FaultKind::LeaderDeaf,
        FaultKind::OneWay,
        FaultKind::Pause,
        FaultKind::PauseLeader,
        FaultKind::NonTransitive,
        FaultKind::Flapping,
        FaultKind::TransferLeader,
        FaultKind::PowerCut,
        FaultKind::PowerCutMinority,
        FaultKind::PowerCutAll,
        FaultKind::SlowDisk,
        FaultKind::NetnsPartition,
        FaultKind::NetnsPartitionLeader,
        FaultKind::ReplaceMember,
        FaultKind::RemoveAdd,
        FaultKind::ReplaceLearner,
    ];

    /// Whether the kind changes the cluster's membership (not in the
    /// default set of kinds: ask for it with `--faults`).
    pub fn is_membership(self) -> bool {
        matches!(
            self,
            FaultKind::ReplaceMember | FaultKind::RemoveAdd | FaultKind::ReplaceLearner
        )
    }

    /// Whether the kind needs the nodes in network namespaces.
    pub fn needs_netns(self) -> bool {
        matches!(
            self,
            FaultKind::NetnsPartition | FaultKind::NetnsPartitionLeader
        )
    }

    /// Whether the kind needs the nodes' data directories on powerfs.
    pub fn needs_powerfs(self) -> bool {
        matches!(
            self,
            FaultKind::PowerCut
                | FaultKind::PowerCutMinority
                | FaultKind::PowerCutAll
                | FaultKind::SlowDisk
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::Partition => "partition",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::LeaderMute => "leader-mute",
            FaultKind::LeaderDeaf => "leader-deaf",
            FaultKind::OneWay => "one-way",
            FaultKind::Pause => "pause",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::NonTransitive => "non-transitive",
            FaultKind::Flapping => "flapping",
            FaultKind::TransferLeader => "transfer-leader",
            FaultKind::PowerCut => "power-cut",
            FaultKind::PowerCutMinority => "power-cut-minority",
            FaultKind::PowerCutAll => "power-cut-all",
            FaultKind::SlowDisk => "slow-disk",
            FaultKind::NetnsPartition => "netns-partition",
            FaultKind::NetnsPartitionLeader => "netns-partition-leader",
            FaultKind::ReplaceMember => "replace-member",
            FaultKind::RemoveAdd => "remove-add",
            FaultKind::ReplaceLearner => "replace-learner",
        }
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault {text:?}; known: {}", names.join(", "))
            })
    }
}

/// A fault in force, to be healed.
pub enum Active {
    Killed(NodeId),
    Cut,
    Paused(NodeId),
    /// The link between these two nodes flaps (both ways) until healed.
    Flapping(NodeId, NodeId),
    /// A leadership transfer was asked for; its outcome is counted in
    /// [`Injector::transfers`] when it arrives. Nothing to heal.
    Transfer,
    /// These nodes lost power (killed, their unsynced writes dropped).
    PowerCut(Vec<NodeId>),
    /// This node's disk is slow.
    SlowDisk(NodeId),
    /// Links of network namespaces are down.
    NetCut,
    /// A membership change to make (the run's loop makes it, see
    /// `super::membership`): `victim` leaves, a fresh server joins, the
    /// removal first if `remove_first`, or in one change through a learner
    /// if `through_learner`. Nothing to heal.
    Membership {
        victim: NodeId,
        remove_first: bool,
        through_learner: bool,
    },
    /// The chosen fault needed a leader and none was found.
    Nothing,
}

/// Chooses and injects faults.
pub struct Injector {
    rng: StdRng,
    kinds: Vec<FaultKind>,
    /// How long each fault is held, in milliseconds.
    pub hold_ms: (u64, u64),
    /// Quiet time between faults, in milliseconds.
    pub gap_ms: (u64, u64),
    pub counts: BTreeMap<FaultKind, u64>,
    /// The outcomes of the leadership transfers asked for, by name
    /// (`moved`, `other-leader`, `aborted`, `failed`).
    pub transfers: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    /// What the power cuts dropped, summed.
    pub power: PowerCuts,
}

/// What the power cuts of a run dropped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PowerCuts {
    /// Nodes whose power was cut (a cut of every node counts each).
    pub nodes_cut: u64,
    /// Files that held unsynced data at their cut.
    pub files_dirty: u64,
    /// Unsynced sectors that reached the disk anyway (torn writes).
    pub sectors_kept: u64,
    /// Unsynced sectors lost.
    pub sectors_lost: u64,
}

impl Injector {
    pub fn new(seed: u64, kinds: Vec<FaultKind>, election_high_ms: u64) -> Injector {
        Injector {
            rng: StdRng::seed_from_u64(seed),
            kinds,
            // Long enough to force elections (pauses outlast the election timeout).
            hold_ms: (election_high_ms * 2, election_high_ms * 8),
            gap_ms: (election_high_ms, election_high_ms * 4),
            counts: BTreeMap::new(),
            transfers: Arc::default(),
            power: PowerCuts::default(),
        }
    }

    pub fn hold(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(self.hold_ms.0..=self.hold_ms.1))
    }

    pub fn gap(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(self.gap_ms.0..=self.gap_ms.1))
    }

    /// Injects the next fault; `leader` is the current leader, if known.
    /// Fails only if a power cut cannot be applied (its file system).
    pub fn inject(
        &mut self,
        processes: &mut Processes,
        network: &Network,
        netns: Option<&super::netns::NetNs>,
        leader: Option<NodeId>,
    ) -> anyhow::Result<(FaultKind, Active)> {
        let kind = self.kinds[self.rng.random_range(0..self.kinds.len())];
        let mut ids = processes.ids();
        ids.shuffle(&mut self.rng);
        let random = ids[0];
        let active = match (kind, leader) {
            (FaultKind::PowerCut | FaultKind::PowerCutMinority | FaultKind::PowerCutAll, _) => {
                let count = match kind {
                    FaultKind::PowerCut => 1,
                    FaultKind::PowerCutMinority => {
                        self.rng.random_range(1..=((ids.len() - 1) / 2).max(1))
                    }
                    _ => ids.len(),
                };
                let mut cut: Vec<NodeId> = ids[..count].to_vec();
                cut.sort_unstable();
                let tear_seed = self.rng.random();
                for report in processes.power_cut(&cut, tear_seed)? {
                    self.power.nodes_cut += 1;
                    self.power.files_dirty += report.files_dirty as u64;
                    self.power.sectors_kept += report.sectors_kept;
                    self.power.sectors_lost += report.sectors_lost;
                }
                Active::PowerCut(cut)
            }
            (FaultKind::SlowDisk, _) => {
                let delay = Duration::from_millis(self.rng.random_range(1000..=2000));
                processes.set_disk_faults(
                    random,
                    crate::powerfs::DiskFaults {
                        fsync_delay: delay,
                        ..Default::default()
                    },
                );
                Active::SlowDisk(random)
            }
            (FaultKind::NetnsPartition, _) => {
                let net = netns.context("netns-partition needs the nodes in namespaces")?;
                let minority = self.rng.random_range(1..=((ids.len() - 1) / 2).max(1));
                for id in &ids[..minority] {
                    net.cut(*id);
                }
                Active::NetCut
            }
            (FaultKind::Kill, _) => {
                processes.kill(random);
                Active::Killed(random)
            }
            (FaultKind::Pause, _) => {
                processes.pause(random);
                Active::Paused(random)
            }
            (FaultKind::Partition, _) => {
                let minority = (ids.len() - 1) / 2;
                let minority = self.rng.random_range(1..=minority.max(1));
                let (small, large) = ids.split_at(minority);
                for a in small {
                    for b in large {
                        network.cut(*a, *b);
                        network.cut(*b, *a);
                    }
                }
                Active::Cut
            }
            (FaultKind::ReplaceMember | FaultKind::RemoveAdd | FaultKind::ReplaceLearner, _) => {
                Active::Membership {
                    victim: random,
                    remove_first: kind == FaultKind::RemoveAdd,
                    through_learner: kind == FaultKind::ReplaceLearner,
                }
            }
            (FaultKind::OneWay, _) => {
                network.cut(ids[0], ids[1]);
                Active::Cut
            }
            (_, None) => Active::Nothing,
            (FaultKind::NetnsPartitionLeader, Some(leader)) => {
                let net = netns.context("netns-partition-leader needs the nodes in namespaces")?;
                net.cut(leader);
                Active::NetCut
            }
            (FaultKind::KillLeader, Some(leader)) => {
                processes.kill(leader);
                Active::Killed(leader)
            }
            (FaultKind::PauseLeader, Some(leader)) => {
                processes.pause(leader);
                Active::Paused(leader)
            }
            (FaultKind::PartitionLeader, Some(leader)) => {
                for other in ids.iter().filter(|id| **id != leader) {
                    network.cut(leader, *other);
                    network.cut(*other, leader);
                }
                Active::Cut
            }
            (FaultKind::LeaderMute, Some(leader)) => {
                for other in ids.iter().filter(|id| **id != leader) {
                    network.cut(leader, *other);
                }
                Active::Cut
            }
            (FaultKind::NonTransitive | FaultKind::Flapping, Some(leader)) => {
                // Both start with one leader–follower link cut both ways;
                // a flapping one is then toggled while held (`hold`).
                let Some(&other) = ids.iter().find(|id| **id != leader) else {
                    return Ok((kind, Active::Nothing));
                };
                network.cut(leader, other);
                network.cut(other, leader);
                if kind == FaultKind::Flapping {
                    Active::Flapping(leader, other)
                } else {
                    Active::Cut
                }
            }
            (FaultKind::TransferLeader, Some(leader)) => {
                let Some(&to) = ids.iter().find(|id| **id != leader) else {
                    return Ok((kind, Active::Nothing));
                };
                let address = processes.address(leader).to_string();
                tokio::spawn(transfer_leader(address, to, self.transfers.clone()));
                Active::Transfer
            }
            (FaultKind::LeaderDeaf, Some(leader)) => {
                for other in ids.iter().filter(|id| **id != leader) {
                    network.cut(*other, leader);
                }
                Active::Cut
            }
        };
        if !matches!(active, Active::Nothing) {
            *self.counts.entry(kind).or_default() += 1;
        }
        Ok((kind, active))
    }
}

/// Holds the fault `active` for `hold`. A flapping link changes state every
/// `period` meanwhile (it starts cut); any other fault simply waits.
pub async fn hold(active: &Active, network: &Network, hold: Duration, period: Duration) {
    let Active::Flapping(a, b) = *active else {
        tokio::time::sleep(hold).await;
        return;
    };
    let until = tokio::time::Instant::now() + hold;
    let mut cut = true;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(period.min(until - tokio::time::Instant::now())).await;
        cut = !cut;
        if cut {
            network.cut(a, b);
            network.cut(b, a);
        } else {
            network.restore(a, b);
            network.restore(b, a);
        }
    }
}

/// Ends a fault: restarts a killed node, resumes a paused one, heals links.
pub fn heal(
    active: Active,
    processes: &mut Processes,
    network: &Network,
    netns: Option<&super::netns::NetNs>,
) -> anyhow::Result<()> {
    match active {
        Active::Killed(id) => processes.start(id)?,
        Active::PowerCut(ids) => {
            for id in ids {
                processes.start(id)?;
            }
        }
        Active::SlowDisk(id) => processes.set_disk_faults(id, Default::default()),
        Active::NetCut => {
            if let Some(net) = netns {
                net.heal();
            }
        }
        Active::Paused(id) => processes.resume(id),
        Active::Cut | Active::Flapping(..) => network.heal(),
        Active::Transfer | Active::Membership { .. } | Active::Nothing => {}
    }
    Ok(())
}

/// Asks the node at `address` (the leader when chosen) to move leadership
/// to `to`, and counts the outcome. Bounded: the node answers within an
/// election timeout or two, the call gives up after 10 s.
async fn transfer_leader(
    address: String,
    to: NodeId,
    outcomes: Arc<Mutex<BTreeMap<&'static str, u64>>>,
) {
    use raft_node::proto::admin as admin_pb;
    let call = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|err| tonic::Status::invalid_argument(err.to_string()))?
            .connect_timeout(Duration::from_millis(200));
        let channel = endpoint
            .connect()
            .await
            .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
        admin_pb::admin_client::AdminClient::new(channel)
            .transfer_leader(admin_pb::TransferLeaderRequest { to })
            .await
            .map(tonic::Response::into_inner)
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(Ok(moved)) if moved.leader_id == to => "moved",
        Ok(Ok(_)) => "other-leader",
        Ok(Err(status)) if status.code() == tonic::Code::Aborted => "aborted",
        Ok(Err(_)) | Err(_) => "failed",
    };
    if let Ok(mut outcomes) = outcomes.lock() {
        *outcomes.entry(outcome).or_default() += 1;
    }
}

/// The leader of the highest term among the nodes that answer quickly.
pub async fn find_leader(processes: &Processes) -> Option<NodeId> {
    let mut best: Option<(u64, NodeId)> = None;
    for id in processes.ids() {
        if !processes.is_up(id) || processes.is_paused(id) {
            continue;
        }
        if let Some(status) = status(&processes.address(id).to_string()).await
            && status.role == "leader"
            && best.is_none_or(|(term, _)| status.term > term)
        {
            best = Some((status.term, id));
        }
    }
    best.map(|(_, id)| id)
}

/// A node's status, or None if it does not answer within 300 ms.
pub async fn status(address: &str) -> Option<pb::StatusResponse> {
    let call = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .ok()?
            .connect_timeout(Duration::from_millis(200));
        let mut client = pb::kv_client::KvClient::new(endpoint.connect().await.ok()?);
        client
            .status(pb::StatusRequest {})
            .await
            .ok()
            .map(|r| r.into_inner())
    };
    tokio::time::timeout(Duration::from_millis(300), call)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[tokio::test]
    async fn a_flapping_link_goes_down_and_up_both_ways_while_held() {
        let network = Network::new();
        network.cut(1, 2);
        network.cut(2, 1);
        let watcher = {
            let network = network.clone();
            tokio::spawn(async move {
                let mut seen = BTreeSet::new();
                for _ in 0..40 {
                    seen.insert((network.is_cut(1, 2), network.is_cut(2, 1)));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen
            })
        };
        let active = Active::Flapping(1, 2);
        hold(
            &active,
            &network,
            Duration::from_millis(200),
            Duration::from_millis(20),
        )
        .await;
        let seen = watcher.await.unwrap();
        assert!(seen.contains(&(true, true)), "{seen:?}");
        assert!(seen.contains(&(false, false)), "{seen:?}");
        assert!(!seen.contains(&(true, false)) && !seen.contains(&(false, true)));
        assert!(
            network
                .cuts()
                .iter()
                .all(|(a, b)| (*a, *b) == (1, 2) || (*a, *b) == (2, 1))
        );
    }

    #[test]
    fn every_fault_kind_parses_back_from_its_name() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
    }
}
