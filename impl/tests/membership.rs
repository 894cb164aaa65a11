//! Membership changes over real gRPC on loopback (issue 15): the admin
//! service's MemberList, AddMember, RemoveMember and ChangeMembers, servers
//! started in join mode, the replicated address book, a removed leader
//! stepping down, refusals, and the trace of such a run validated through
//! the model. In-process nodes, every wait bounded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use raft_model::{NodeId, Role};
use raft_node::client::{ClientError, KvClient};
use raft_node::config::{FileConfig, Member, NodeConfig};

use raft_node::local::LocalCluster;
use raft_node::server::{self, RunningNode};
use tonic::Code;

mod common;
use common::{WAIT, etcd_status, fast};

/// A server started to join: its data directory initialised with no
/// configuration (`init --join`), its config naming only itself.
/// The test keeps its listening socket; the node serves on a duplicate, so
/// the port stays the test's across a restart.
struct Joiner {
    id: NodeId,
    address: String,
    node: RunningNode,
    config: NodeConfig,
    socket: std::net::TcpListener,
}

/// A duplicate of `socket` for a node to serve on.
fn serve_on(socket: &std::net::TcpListener) -> tokio::net::TcpListener {
    let duplicate = socket.try_clone().unwrap();
    duplicate.set_nonblocking(true).unwrap();
    tokio::net::TcpListener::from_std(duplicate).unwrap()
}

impl Joiner {
    /// Crash-stops the node and starts it again from its data directory
    /// (no initialisation: it is a member now, from its log).
    async fn restart(self) -> Joiner {
        self.node.stop().await;
        let started = Instant::now();
        let node = loop {
            // The stopped node's last blocking write may still hold the lock.
            match server::start(self.config.clone(), serve_on(&self.socket)).await {
                Ok(node) => break node,
                Err(err) if started.elapsed() < Duration::from_secs(5) => {
                    eprintln!("restart of node {}: {err}; retrying", self.id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("node {} does not restart: {err}", self.id),
            }
        };
        Joiner { node, ..self }
    }
}

async fn start_joiner(dir: &Path, id: NodeId, trace_dir: Option<&Path>) -> Joiner {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let mut file = FileConfig {
        cluster_id: Some("local-test".into()),
        id: Some(id),
        data_dir: Some(dir.join(format!("node-{id}"))),
        members: Some(vec![Member {
            id,
            address: address.clone(),
        }]),
        trace_dir: trace_dir.map(Path::to_owned),
        ..FileConfig::default()
    };
    fast(&mut file);
    let config = NodeConfig::from_file_config(file).unwrap();
    server::init_data_dir_to_join(&config).unwrap();
    let node = server::start(config.clone(), serve_on(&socket))
        .await
        .unwrap();
    Joiner {
        id,
        address,
        node,
        config,
        socket,
    }
}

/// A 3-node cluster with fast settings whose nodes record their core
/// events into the returned directory.
async fn traced_cluster(dir: &Path) -> (LocalCluster, std::path::PathBuf) {
    let traces = dir.join("traces");
    let trace_dir = traces.clone();
    let cluster = LocalCluster::start(dir, 3, move |config| {
        fast(config);
        config.trace_dir = Some(trace_dir.clone());
    })
    .await
    .unwrap();
    (cluster, traces)
}

/// The run's traces (every node's, joiners included) replay through the
/// model: each membership step the nodes took is one the model allows.
fn assert_traces_valid(traces: &Path, nodes: usize) {
    let streams = raft_interop::read_streams(&[traces.to_owned()]).unwrap();
    let validated = raft_interop::validate(streams)
        .unwrap_or_else(|failure| panic!("the membership run is not valid:\n{failure}"));
    assert_eq!(validated.initial.len(), nodes, "{:?}", validated.events);
    assert!(validated.events.values().all(|n| *n > 0));
}

fn client_of(endpoints: Vec<String>) -> KvClient {
    KvClient::new(endpoints).unwrap()
}

fn endpoints(cluster: &LocalCluster, joiners: &[&Joiner], without: &[NodeId]) -> Vec<String> {
    cluster
        .ids()
        .into_iter()
        .filter(|id| !without.contains(id))
        .map(|id| cluster.address(id))
        .chain(joiners.iter().map(|j| j.address.clone()))
        .collect()
}

/// Writes `n` keys with `prefix`, all acknowledged; returns them.
async fn write(client: &mut KvClient, prefix: &str, n: usize) -> BTreeMap<String, String> {
    let mut acknowledged = BTreeMap::new();
    for i in 0..n {
        let (key, value) = (format!("{prefix}-{i}"), format!("v{i}"));
        client.put(&key, &value).await.expect("write acknowledged");
        acknowledged.insert(key, value);
    }
    acknowledged
}

async fn assert_readable(client: &mut KvClient, acknowledged: &BTreeMap<String, String>) {
    for (key, value) in acknowledged {
        assert_eq!(
            client.get(key).await.unwrap().value.as_ref(),
            Some(value),
            "acknowledged write {key} lost"
        );
    }
}

fn ids(members: &[raft_node::proto::admin::Member]) -> Vec<NodeId> {
    members.iter().map(|m| m.id).collect()
}

/// Waits until `node`'s configuration is `members` (committed, not joint).
async fn wait_for_config(node: &RunningNode, members: &[NodeId]) {
    let started = Instant::now();
    loop {
        let status = node.status().await.expect("node runs");
        if status.members == members {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "node {} never had configuration {members:?}: {:?}",
            node.id,
            status.members
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The member list once the answering node's view has settled (a
/// follower's view lags the leader's by a heartbeat).
async fn settled_list(client: &mut KvClient) -> raft_node::proto::admin::MemberListResponse {
    let started = Instant::now();
    loop {
        let list = client.member_list().await.unwrap();
        if list.old_members.is_empty() && list.committed {
            return list;
        }
        assert!(started.elapsed() < WAIT, "never settled: {list:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rejected_code(result: Result<impl std::fmt::Debug, ClientError>) -> (Code, String) {
    match result {
        Err(ClientError::Rejected(status)) => (status.code(), status.message().to_owned()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Grow a 3-node cluster to 5: two servers started in join mode wait
/// without campaigning, are added one by one, catch up, and count; every
/// write before and after reads back. The trace of the run validates
/// through the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_grows_from_three_to_five_and_its_trace_validates() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, traces) = traced_cluster(dir.path()).await;
    cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    let mut acknowledged = write(&mut client, "before", 20).await;

    let four = start_joiner(dir.path(), 4, Some(&traces)).await;
    let five = start_joiner(dir.path(), 5, Some(&traces)).await;
    // A joiner knows no configuration: it does not campaign.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for joiner in [&four, &five] {
        let status = joiner.node.status().await.unwrap();
        assert_eq!(status.role, Role::Follower);
        assert_eq!(status.term, 0, "a joiner campaigned: {status:?}");
        assert!(status.members.is_empty(), "{status:?}");
    }

    let mut admin = client_of(endpoints(&cluster, &[], &[]));
    let added = admin
        .add_member(4, &four.address)
        .await
        .expect("node 4 added");
    assert_eq!(ids(&added.members), vec![1, 2, 3, 4]);
    acknowledged.extend(write(&mut client, "between", 10).await);
    let added = admin
        .add_member(5, &five.address)
        .await
        .expect("node 5 added");
    assert_eq!(ids(&added.members), vec![1, 2, 3, 4, 5]);
    let address_of_5 = added.members.iter().find(|m| m.id == 5).unwrap();
    assert_eq!(address_of_5.address, five.address);

    // Every server, the new ones too, is in the five-member configuration
    // and knows every address (the new ones learnt them from the log).
    for joiner in [&four, &five] {
        wait_for_config(&joiner.node, &[1, 2, 3, 4, 5]).await;
    }
    let mut everyone = client_of(endpoints(&cluster, &[&four, &five], &[]));
    let list = settled_list(&mut everyone).await;
    assert_eq!(ids(&list.members), vec![1, 2, 3, 4, 5]);
    assert!(
        list.members.iter().all(|m| !m.address.is_empty()),
        "{list:?}"
    );
    let mut at_five = client_of(vec![five.address.clone()]);
    let seen_by_five = settled_list(&mut at_five).await;
    assert_eq!(seen_by_five.id, 5);
    assert_eq!(ids(&seen_by_five.members), vec![1, 2, 3, 4, 5]);
    assert!(
        seen_by_five.members.iter().all(|m| !m.address.is_empty()),
        "node 5 lacks addresses: {seen_by_five:?}"
    );

    acknowledged.extend(write(&mut everyone, "after", 20).await);
    assert_readable(&mut everyone, &acknowledged).await;
    // The new members hold the data: they applied every write.
    let leader_commit = {
        let leader = cluster.wait_for_leader(WAIT).await.unwrap();
        cluster
            .node(leader)
            .unwrap()
            .status()
            .await
            .unwrap()
            .commit_index
    };
    for joiner in [&four, &five] {
        let started = Instant::now();
        while joiner.node.status().await.unwrap().applied_index < leader_commit {
            assert!(
                started.elapsed() < WAIT,
                "node {} never caught up",
                joiner.id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    four.node.stop().await;
    five.node.stop().await;
    cluster.shutdown().await;
    assert_traces_valid(&traces, 5);
}

/// Replace a dead server: a follower is killed, removed (the two others are
/// a quorum of the two), and a fresh node 4 is added; the leader has
/// compacted its log meanwhile, so node 4 catches up by InstallSnapshot,
/// which brings it the configuration and the address book. Restarted, it is
/// a member from its own data; with the other survivor stopped, the leader
/// and node 4 are the quorum, so it counts. Writes go on and every
/// acknowledged one reads back. The traces validate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, traces) = traced_cluster(dir.path()).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    let mut acknowledged = write(&mut client, "before", 10).await;
    // The dead one is a follower (so that the quorum's leader survives).
    let dead = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.stop_node(dead).await;

    let mut admin = client_of(endpoints(&cluster, &[], &[dead]));
    let removed = admin.remove_member(dead).await.expect("dead node removed");
    assert!(!ids(&removed.members).contains(&dead));
    assert_eq!(removed.members.len(), 2);
    acknowledged.extend(write(&mut admin, "two", 10).await);
    let report = cluster
        .node(leader)
        .unwrap()
        .take_snapshot()
        .await
        .expect("the leader compacts");

    let four = start_joiner(dir.path(), 4, Some(&traces)).await;
    let added = admin
        .add_member(4, &four.address)
        .await
        .expect("node 4 added");
    assert_eq!(added.members.len(), 3);
    assert!(ids(&added.members).contains(&4));
    wait_for_config(&four.node, &ids(&added.members)).await;
    let status = four.node.status().await.unwrap();
    assert!(
        status.snapshot_index >= report.index,
        "node 4 did not catch up by a snapshot: {status:?}"
    );
    let mut at_four = client_of(vec![four.address.clone()]);
    let list = settled_list(&mut at_four).await;
    assert!(
        list.members.iter().all(|m| !m.address.is_empty()),
        "node 4 lacks addresses: {list:?}"
    );

    let mut client = client_of(endpoints(&cluster, &[&four], &[dead]));
    acknowledged.extend(write(&mut client, "after", 10).await);

    let four = four.restart().await;
    wait_for_config(&four.node, &ids(&added.members)).await;
    let other = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != dead)
        .unwrap();
    cluster.stop_node(other).await;
    let mut client = client_of(endpoints(&cluster, &[&four], &[dead, other]));
    acknowledged.extend(write(&mut client, "leader-and-four", 10).await);
    assert_readable(&mut client, &acknowledged).await;
    four.node.stop().await;
    cluster.shutdown().await;
    assert_traces_valid(&traces, 4);
}

/// Remove the leader: it leads until the change commits, then steps down
/// and never campaigns again; the others elect a leader among themselves
/// and writes go on. The traces validate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_removed_leader_steps_down_and_the_rest_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, traces) = traced_cluster(dir.path()).await;
    let old_leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    let mut acknowledged = write(&mut client, "before", 10).await;

    let mut admin = client_of(vec![cluster.address(old_leader)]);
    let removed = admin
        .remove_member(old_leader)
        .await
        .expect("leader removed");
    let rest: Vec<NodeId> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != old_leader)
        .collect();
    assert_eq!(ids(&removed.members), rest);

    // A new leader among the rest, of a later term.
    let started = Instant::now();
    let new_leader = loop {
        let mut found = None;
        for id in &rest {
            let status = cluster.node(*id).unwrap().status().await.unwrap();
            if status.role == Role::Leader {
                found = Some(*id);
            }
        }
        if let Some(id) = found {
            break id;
        }
        assert!(started.elapsed() < WAIT, "no leader among {rest:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let status = cluster.node(old_leader).unwrap().status().await.unwrap();
    assert_ne!(status.role, Role::Leader, "the removed leader still leads");

    let mut client = client_of(rest.iter().map(|id| cluster.address(*id)).collect());
    acknowledged.extend(write(&mut client, "after", 10).await);
    assert_readable(&mut client, &acknowledged).await;
    // The removed server stays a quiet follower: it never campaigns.
    let term = status.term;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let status = cluster.node(old_leader).unwrap().status().await.unwrap();
    assert_eq!(status.role, Role::Follower);
    assert_eq!(status.term, term, "the removed server campaigned");
    let list = settled_list(&mut client).await;
    assert_eq!(ids(&list.members), rest);
    assert!(rest.contains(&new_leader));
    cluster.shutdown().await;
    assert_traces_valid(&traces, 3);
}

/// Refusals, each with its own code: the configuration in force
/// (ALREADY_EXISTS: removing an unknown id, adding a member), a second
/// change while one is pending (ABORTED), malformed input
/// (INVALID_ARGUMENT), and at a follower the leader hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_changes_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut admin = cluster.client().unwrap();
    // The leader has committed an entry of its term once a write is done.
    admin.put("k", "v").await.unwrap();

    let (code, message) = rejected_code(admin.remove_member(9).await);
    assert_eq!(code, Code::AlreadyExists, "{message}");
    assert!(message.contains("configuration in force"), "{message}");
    let (code, message) = rejected_code(admin.add_member(2, &cluster.address(2)).await);
    assert_eq!(code, Code::AlreadyExists, "{message}");
    let (code, message) = rejected_code(admin.add_member(7, &cluster.address(2)).await);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("member 2's"), "{message}");
    let (code, message) = rejected_code(admin.add_member(7, "no-port").await);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let (code, _) = rejected_code(admin.change_members(vec![], vec![]).await);
    assert_eq!(code, Code::InvalidArgument);
    let (code, message) = rejected_code(admin.change_members(vec![1, 2, 3, 8], vec![]).await);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("address of node 8"), "{message}");

    // Hold a change pending: with one follower stopped, adding a server
    // that does not run cannot commit (C_old,new needs 3 of {1, 2, 3, 8});
    // a second change asked meanwhile is refused.
    let followers: Vec<NodeId> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let mut cluster = cluster;
    cluster.stop_node(followers[0]).await;
    let leader_address = cluster.address(leader);
    let first = tokio::spawn(async move {
        let mut admin = client_of(vec![leader_address]);
        admin.op_timeout = Duration::from_secs(3);
        admin.add_member(8, "127.0.0.1:9").await
    });
    // The joint configuration is appended at once; wait until the leader
    // reports it, then ask again.
    let mut at_leader = client_of(vec![cluster.address(leader)]);
    let started = Instant::now();
    loop {
        let list = at_leader.member_list().await.unwrap();
        if !list.old_members.is_empty() {
            break;
        }
        assert!(started.elapsed() < WAIT, "the change never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, message) = rejected_code(at_leader.remove_member(followers[1]).await);
    assert_eq!(code, Code::Aborted, "{message}");
    assert!(message.contains("under way"), "{message}");
    first.abort();

    // At a follower: redirected to the leader (the client follows it), so
    // the same refusal comes back from the leader.
    let mut at_follower = client_of(vec![cluster.address(followers[1])]);
    let (code, _) = rejected_code(at_follower.remove_member(9).await);
    assert!(
        code == Code::Aborted || code == Code::AlreadyExists,
        "{code:?}"
    );
    cluster.shutdown().await;
}

// --- the operator's path, as separate processes ---

const BIN: &str = env!("CARGO_BIN_EXE_raft-node");

fn cli(endpoints: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["client", "--endpoints", endpoints, "--timeout", "20s"])
        .args(args)
        .output()
        .expect("the client runs")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Waits (bounded) until `path` holds `what`.
async fn wait_for_log(path: &Path, what: &str) {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(what) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{} never said {what:?}:\n{log}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three `raft-node run --init` processes and a fourth started with `run
/// --init --join`; `raft-node client member add|list|remove` as an operator
/// types them: the joiner waits, is added and counts, a bad address and a
/// non-member are refused with clear errors, and once removed while running
/// it is told so by the members (its log says it was removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_adds_and_removes_a_server_with_the_cli() {
    use raft_node::launch::{Launch, NodeProcess, loopback_listeners};
    let dir = tempfile::tempdir().unwrap();
    let listeners = loopback_listeners(4).unwrap();
    let address = |i: usize| listeners[i].local_addr().unwrap().to_string();
    let members: Vec<Member> = (1..=3)
        .map(|id| Member {
            id,
            address: address(id as usize - 1),
        })
        .collect();
    let launch = |id: NodeId, members: Vec<Member>, join: bool| -> NodeProcess {
        let mut config = FileConfig {
            cluster_id: Some("proc-members".into()),
            id: Some(id),
            data_dir: Some(dir.path().join(format!("node-{id}"))),
            members: Some(members),
            ..FileConfig::default()
        };
        fast(&mut config);
        let mut launch = Launch::new(
            Path::new(BIN),
            "run",
            config,
            &dir.path().join(format!("node-{id}.toml")),
        )
        .log_to(&dir.path().join(format!("node-{id}.log")))
        .log_level("info")
        .listener(listeners[id as usize - 1].clone())
        .init(true);
        if join {
            launch = launch.arg("--join");
        }
        launch.spawn().expect("raft-node starts")
    };
    let mut nodes: Vec<NodeProcess> = (1..=3)
        .map(|id| launch(id, members.clone(), false))
        .collect();
    let four_address = address(3);
    let four_member = vec![Member {
        id: 4,
        address: four_address.clone(),
    }];
    nodes.push(launch(4, four_member, true));
    for node in &mut nodes {
        node.wait_ready(WAIT).await.unwrap();
    }
    let endpoints = (0..3).map(address).collect::<Vec<_>>().join(",");
    let put = cli(&endpoints, &["put", "k", "v"]);
    assert!(put.status.success(), "{}", text(&put));
    let four_log = dir.path().join("node-4.log");
    wait_for_log(&four_log, "knows no configuration yet").await;

    // Refusals, checked before anything is sent or by the leader.
    let bad = cli(
        &endpoints,
        &["member", "add", "--id", "5", "--address", "nowhere"],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("invalid member address"),
        "{}",
        text(&bad)
    );
    let unknown = cli(&endpoints, &["member", "remove", "--id", "9"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("that is the configuration in force"),
        "{}",
        text(&unknown)
    );

    let add = cli(
        &endpoints,
        &["member", "add", "--id", "4", "--address", &four_address],
    );
    assert!(add.status.success(), "{}", text(&add));
    assert!(text(&add).contains("OK: node 4 at"), "{}", text(&add));
    wait_for_log(&four_log, "this node is now a member").await;
    let list = cli(&four_address, &["member", "list"]);
    assert!(list.status.success(), "{}", text(&list));
    assert!(text(&list).contains("4="), "{}", text(&list));
    let get = cli(&four_address, &["get", "k"]);
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "v",
        "{}",
        text(&get)
    );

    // Removed while it runs: the leader stops replicating to it once C_new
    // is appended, so it learns it from the members' answers to its
    // requests for votes.
    let remove = cli(&endpoints, &["member", "remove", "--id", "4"]);
    assert!(remove.status.success(), "{}", text(&remove));
    wait_for_log(&four_log, "this node was removed from the cluster").await;
    let put = cli(&endpoints, &["put", "k", "after"]);
    assert!(put.status.success(), "{}", text(&put));
    let list = cli(&endpoints, &["member", "list"]);
    assert!(text(&list).contains("voters: 1="), "{}", text(&list));
    assert!(!text(&list).contains("4="), "{}", text(&list));
}

/// The longest write unavailability of each operator's operation under a
/// steady write load (issue 15's figures): one writer puts without pause,
/// and for each operation the longest gap between two acknowledged writes
/// from its start until a second after it answered is printed. A bench, not
/// a timed test: it asserts only that writes resume (bounded), and prints
/// the figures. `cargo test --release -p raft-node --test membership --
/// --ignored --nocapture unavailability`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn unavailability_of_each_membership_operation_under_write_load() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 3, fast).await.unwrap();
    let first_leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let four = start_joiner(dir.path(), 4, None).await;
    let five = start_joiner(dir.path(), 5, None).await;
    let six = start_joiner(dir.path(), 6, None).await;
    let all = endpoints(&cluster, &[&four, &five, &six], &[]);

    // The writer: acknowledgement times, bounded in count.
    let acks: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acks, stop, mut client) = (acks.clone(), stop.clone(), client_of(all.clone()));
        tokio::spawn(async move {
            for i in 0..1_000_000u64 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if client.put(&format!("k{}", i % 1000), "v").await.is_ok() {
                    acks.lock().unwrap().push(Instant::now());
                }
            }
        })
    };
    let gap = |from: Instant, to: Instant| -> Duration {
        let acks = acks.lock().unwrap();
        let mut last = from;
        let mut longest = Duration::ZERO;
        for at in acks.iter().filter(|at| **at > from && **at <= to) {
            longest = longest.max(*at - last);
            last = *at;
        }
        longest.max(to.saturating_duration_since(last))
    };
    let settle = Duration::from_secs(1);
    tokio::time::sleep(settle).await;
    let mut admin = client_of(all.clone());
    let mut rows = Vec::new();

    // 1. A dead follower replaced by a new server: remove it, add node 4.
    let mut cluster = cluster;
    let dead = cluster
        .ids()
        .into_iter()
        .find(|id| *id != first_leader)
        .unwrap();
    cluster.stop_node(dead).await;
    tokio::time::sleep(settle).await;
    let started = Instant::now();
    admin.remove_member(dead).await.expect("dead node removed");
    admin
        .add_member(4, &four.address)
        .await
        .expect("node 4 added");
    let answered = Instant::now();
    tokio::time::sleep(settle).await;
    rows.push(("replace a dead follower (remove, add)", started, answered));

    // 2. Grow to 5: add nodes 5 and 6.
    let started = Instant::now();
    admin
        .add_member(5, &five.address)
        .await
        .expect("node 5 added");
    admin
        .add_member(6, &six.address)
        .await
        .expect("node 6 added");
    let answered = Instant::now();
    tokio::time::sleep(settle).await;
    rows.push(("grow 3 -> 5 (two adds)", started, answered));

    // 3. Shrink back to 3, the leader among the removed.
    let leader = settled_list(&mut admin).await.leader_id;
    let other = [5, 6].into_iter().find(|id| *id != leader).unwrap();
    let started = Instant::now();
    admin.remove_member(leader).await.expect("leader removed");
    admin.remove_member(other).await.expect("another removed");
    let answered = Instant::now();
    tokio::time::sleep(settle).await;
    rows.push((
        "shrink 5 -> 3 (the leader, then another)",
        started,
        answered,
    ));

    // 4. Leadership moved to a chosen member.
    let list = settled_list(&mut admin).await;
    let target = list
        .members
        .iter()
        .map(|m| m.id)
        .find(|id| *id != list.leader_id)
        .unwrap();
    let started = Instant::now();
    admin
        .transfer_leader(target)
        .await
        .expect("leadership moved");
    let answered = Instant::now();
    tokio::time::sleep(settle).await;
    rows.push(("transfer leadership", started, answered));

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let total = acks.lock().unwrap().len();
    println!("\n{total} writes acknowledged by one writer over the run");
    println!("| operation | answered in | longest write gap (start to answer + 1 s) |");
    println!("| --- | ---: | ---: |");
    for (what, started, answered) in rows {
        let longest = gap(started, answered + settle);
        println!(
            "| {what} | {} ms | {} ms |",
            (answered - started).as_millis(),
            longest.as_millis()
        );
        assert!(longest < WAIT, "writes did not resume after {what}");
    }
}

/// A learner (issue 15): added while the cluster takes writes, replicated
/// to (its lag shown), never counted — with one voter down the cluster
/// cannot commit even though the learner is up — then promoted, in the same
/// joint change as the dead voter's removal (`member replace`'s second
/// step). Every acknowledged write reads back and the traces validate:
/// ChangeLearners and the promotion are steps the model allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_catches_up_counts_for_nothing_and_is_promoted_in_place_of_a_dead_voter() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, traces) = traced_cluster(dir.path()).await;
    let leader = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    let mut acknowledged = write(&mut client, "before", 20).await;

    let four = start_joiner(dir.path(), 4, Some(&traces)).await;
    let mut admin = client_of(endpoints(&cluster, &[&four], &[]));
    let added = admin
        .add_learner(4, &four.address)
        .await
        .expect("node 4 added as a learner");
    assert_eq!(ids(&added.members).len(), 3, "the voters are unchanged");
    assert_eq!(ids(&added.learners), vec![4]);
    let (code, message) = rejected_code(admin.add_learner(4, &four.address).await);
    assert_eq!(code, Code::AlreadyExists, "{message}");
    let (code, message) = rejected_code(admin.add_learner(leader, &four.address).await);
    assert_eq!(code, Code::AlreadyExists, "{message}");
    // An address another voter or learner has is refused, as for voters.
    for taken in [cluster.address(leader), four.address.clone()] {
        let (code, message) = rejected_code(admin.add_learner(9, &taken).await);
        assert_eq!(code, Code::InvalidArgument, "{message}");
        assert!(message.contains("each member needs its own"), "{message}");
    }
    // The learner's incarnation is recorded, read from its status.
    let recorded = admin.member_list().await.unwrap();
    let incarnation = four.node.status().await.unwrap().incarnation;
    assert!(
        recorded
            .learners
            .iter()
            .any(|l| l.id == 4 && l.incarnation == incarnation),
        "{recorded:?}"
    );

    // The learner catches up: the leader's list shows its progress.
    let mut at_leader = client_of(vec![cluster.address(leader)]);
    let started = Instant::now();
    loop {
        let list = at_leader.member_list().await.unwrap();
        let learner = list.learners.iter().find(|l| l.id == 4).expect("listed");
        assert!(learner.progress_known, "the leader knows its progress");
        assert!(!learner.address.is_empty());
        if learner.matched == list.last_index {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the learner never caught up: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = four.node.status().await.unwrap();
    assert_eq!(status.role, Role::Follower);
    assert!(
        status.commit_index >= 20,
        "the learner applied the writes: {status:?}"
    );
    // etcd's Status says which node is the learner (etcdctl's IS LEARNER).
    assert!(etcd_status(&four.address).await.is_learner);
    assert!(!etcd_status(&cluster.address(leader)).await.is_learner);

    // A learner counts in no quorum: with two voters down, nothing commits.
    let others: Vec<NodeId> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    cluster.stop_node(others[0]).await;
    cluster.stop_node(others[1]).await;
    let mut stalled = client_of(vec![cluster.address(leader)]);
    let put = tokio::time::timeout(
        Duration::from_millis(1500),
        stalled.put("not-committed", "leader and learner only"),
    )
    .await;
    assert!(
        !matches!(put, Ok(Ok(_))),
        "a write committed by the leader and a learner alone: {put:?}"
    );
    // One voter back: the write (if it was proposed) may now commit; the
    // cluster goes on.
    cluster.restart_node(others[0]).await.unwrap();
    cluster.wait_for_leader(WAIT).await.unwrap();
    let dead = others[1];
    let mut admin = client_of(endpoints(&cluster, &[&four], &[dead]));
    acknowledged.extend(write(&mut admin, "with-learner", 10).await);

    // Promote 4 in place of the dead voter, in one joint change.
    let promoted = admin
        .promote_learner(4, 0, dead)
        .await
        .expect("node 4 promoted");
    let mut voters = ids(&promoted.members);
    voters.sort_unstable();
    let mut expected: Vec<NodeId> = cluster.ids().into_iter().filter(|id| *id != dead).collect();
    expected.push(4);
    expected.sort_unstable();
    assert_eq!(voters, expected);
    assert!(promoted.learners.is_empty(), "4 left the learners");
    wait_for_config(&four.node, &voters).await;
    let (code, message) = rejected_code(admin.promote_learner(4, 0, 0).await);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("node 4 is not a learner"), "{message}");
    acknowledged.extend(write(&mut admin, "after", 10).await);
    assert_readable(&mut admin, &acknowledged).await;
    four.node.stop().await;
    cluster.shutdown().await;
    assert_traces_valid(&traces, 4);
}
