//! The quick start, as separate processes: three `raft-node run` processes
//! on loopback, a put and a get through the client command, the leader's
//! process killed with SIGKILL, and a write that still succeeds. Also: the
//! node's clear refusals of bad configurations.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_node::config::Member;
use raft_node::launch::{NodeProcess, signal};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_raft-node");

/// Ports the OS says are free right now (released at once: only for the
/// configuration-refusal tests, whose nodes never serve).
fn free_ports(count: usize) -> Vec<u16> {
    raft_node::launch::loopback_listeners(count)
        .expect("loopback listeners")
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

/// `raft-node run` for node `id` of `members`, through the launcher (a
/// dropped process is killed), serving on `listener`, which the test holds.
fn start_node(
    dir: &Path,
    id: u64,
    members: &[Member],
    init: bool,
    listener: &Arc<TcpListener>,
) -> NodeProcess {
    common::launcher(dir, "proc-test", id, members)
        .listener(listener.clone())
        .init(init)
        .spawn()
        .expect("raft-node starts")
}

fn client(endpoints: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["client", "--endpoints", endpoints])
        .args(args)
        .output()
        .expect("client runs")
}

/// The id of the leader, from `client status` (bounded wait).
fn leader(endpoints: &str) -> usize {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let output = client(endpoints, &["status"]);
        let text = String::from_utf8_lossy(&output.stdout);
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(2) == Some(&"leader") {
                return fields[1].parse().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no leader within 20 s");
}

/// Waits (bounded) until node `id` has applied as far as the leader has
/// committed, from `client status`: a transfer to a node still catching up
/// may rightly time out, which is not what the test is about.
fn caught_up(endpoints: &str, id: usize) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let output = client(endpoints, &["status"]);
        let text = String::from_utf8_lossy(&output.stdout);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        let field = |row: &Vec<&str>, n: usize| row.get(n).and_then(|f| f.parse::<u64>().ok());
        let leader_commit = rows
            .iter()
            .find(|row| row.get(2) == Some(&"leader"))
            .and_then(|row| field(row, 5));
        let applied = rows
            .iter()
            .find(|row| field(row, 1) == Some(id as u64))
            .and_then(|row| field(row, 6));
        if let (Some(commit), Some(applied)) = (leader_commit, applied)
            && applied >= commit
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("node {id} did not catch up with the leader within 20 s");
}

#[test]
fn quick_start_survives_killing_the_leader_process() {
    let dir = tempfile::tempdir().unwrap();
    // Bound here, on ports the OS chose, and held until the test ends.
    let (listeners, members) = common::loopback_members(3);
    let endpoints = members
        .iter()
        .map(|member| member.address.clone())
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Option<NodeProcess>> = (1..=3)
        .map(|id| {
            let listener = &listeners[id as usize - 1];
            Some(start_node(dir.path(), id, &members, true, listener))
        })
        .collect();

    let put = client(&endpoints, &["put", "greeting", "hello"]);
    assert!(put.status.success(), "{put:?}");
    let get = client(&endpoints, &["get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello");
    for node in nodes.iter().flatten() {
        assert_transparent_huge_pages_off(node.pid());
    }

    let old = leader(&endpoints);
    let mut process = nodes[old - 1].take().unwrap();
    process.kill(); // SIGKILL

    let put = client(&endpoints, &["put", "greeting", "again"]);
    assert!(put.status.success(), "{put:?}");
    let get = client(&endpoints, &["get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "again");
    assert_ne!(leader(&endpoints), old);

    // The killed node restarts from its data (no --init) and rejoins.
    nodes[old - 1] = Some(start_node(
        dir.path(),
        old as u64,
        &members,
        false,
        &listeners[old - 1],
    ));
    let put = client(&endpoints, &["put", "greeting", "third"]);
    assert!(put.status.success(), "{put:?}");

    // Leadership moved back to the restarted node by the operator's command
    // (flags after the command are accepted too), once it has caught up.
    caught_up(&endpoints, old);
    let moved = Command::new(BIN)
        .args(["client", "transfer-leader", "--to", &old.to_string()])
        .args(["--endpoints", &endpoints, "--timeout", "10s"])
        .output()
        .expect("client runs");
    let said = String::from_utf8_lossy(&moved.stdout);
    assert!(moved.status.success(), "{moved:?}");
    assert!(said.starts_with(&format!("OK: node {old} at ")), "{said}");
    assert_eq!(leader(&endpoints), old);

    // A node about to stop moves leadership away from itself (a pre-stop
    // hook): asked at a follower, nothing happens; at the leader, another
    // member takes over.
    let follower = members[old % 3].address.clone();
    let leader_address = members[old - 1].address.clone();
    let stay = client(&follower, &["transfer-leader", "--away"]);
    assert!(stay.status.success(), "{stay:?}");
    assert!(
        String::from_utf8_lossy(&stay.stdout).contains("is not the leader"),
        "{stay:?}"
    );
    assert_eq!(leader(&endpoints), old);
    let away = client(&leader_address, &["transfer-leader", "--away"]);
    assert!(away.status.success(), "{away:?}");
    assert_ne!(leader(&endpoints), old);
}

/// A running node has turned transparent huge pages off for its process
/// (`cli::run_node`: mimalloc's huge-page faults stalled requests), as the
/// kernel reports it in /proc (Linux 6.x prints `THP_enabled`; older kernels
/// do not, and then there is nothing to check).
fn assert_transparent_huge_pages_off(pid: u32) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return;
    };
    if let Some(line) = status.lines().find(|line| line.starts_with("THP_enabled:")) {
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("0"),
            "node {pid}: {line}"
        );
    }
}

/// A client pointed at nothing fails at once and says so; one given a
/// malformed endpoint or timeout is refused before anything is sent; and
/// `status` exits with failure when an endpoint is unreachable.
#[test]
fn the_client_fails_fast_and_says_why() {
    let ports = free_ports(2);
    let nowhere = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let started = Instant::now();
    let put = client(&nowhere, &["put", "k", "v"]);
    let error = String::from_utf8_lossy(&put.stderr);
    assert!(!put.status.success());
    assert!(
        error.contains("every endpoint refused the connection"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: the client waited for its timeout",
        started.elapsed()
    );

    let status = client(&nowhere, &["status"]);
    assert!(!status.status.success(), "{status:?}");
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("2 of 2 endpoints unreachable"),
        "{status:?}"
    );

    for (flag, value, complaint) in [
        ("--endpoints", "localhost", "no port"),
        ("--endpoints", "127.0.0.1:0", "1 to 65535"),
        ("--timeout", "soon", "--timeout"),
    ] {
        let output = Command::new(BIN)
            .args(["client", "get", "k", flag, value])
            .output()
            .expect("client runs");
        let error = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {error}");
        assert!(error.contains(complaint), "{flag} {value}: {error}");
    }
}

struct ClusterProcess {
    child: Child,
    node_pids: Vec<u32>,
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        signal(self.child.id(), "INT");
        for pid in &self.node_pids {
            signal(*pid, "KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's quick start, literally: `raft-node cluster`, a put and a
/// get, `kill -9` of the leader's pid as printed, another write. With
/// `--base-port 0` the command binds ports the OS picks and hands them to
/// its nodes, and the test reads them from the table it prints: no port is
/// probed here and bound by another process later.
#[test]
fn the_cluster_command_runs_the_quick_start() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["cluster", "--nodes", "3", "--base-port", "0"])
        .arg("--dir")
        .arg(dir.path().join("c"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut cluster = ClusterProcess {
        child,
        node_pids: Vec::new(),
    };
    // The table: "node pid address log", one line per node.
    let mut pids = BTreeMap::new();
    let mut addresses = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [id, pid, address, _log] = fields.as_slice()
            && let (Ok(id), Ok(pid)) = (id.parse::<usize>(), pid.parse::<u32>())
        {
            pids.insert(id, pid);
            cluster.node_pids.push(pid);
            addresses.push(address.to_string());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    // Checked once every pid is known, so that a failure kills every node.
    assert_eq!(pids.len(), 3, "the cluster printed its nodes");
    for address in &addresses {
        let port = address.strip_prefix("127.0.0.1:").map(str::parse::<u16>);
        assert!(
            matches!(port, Some(Ok(port)) if port != 0),
            "a node at {address}"
        );
    }
    let endpoints = addresses.join(",");
    let put = client(&endpoints, &["put", "greeting", "hello"]);
    assert!(put.status.success(), "{put:?}");
    let get = client(&endpoints, &["get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello");
    let old = leader(&endpoints);
    signal(pids[&old], "KILL");
    let put = client(&endpoints, &["put", "greeting", "again"]);
    assert!(put.status.success(), "{put:?}");
    let get = client(&endpoints, &["get", "greeting"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "again");
    assert_ne!(leader(&endpoints), old);
}

/// `cluster`'s refusals of its port flags: a taken port is named; a range
/// past 65535 and a metrics base port of 0 are refused before anything is
/// bound.
#[test]
fn the_cluster_command_refuses_bad_ports_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("c");
    let dir = dir.to_str().unwrap();
    // Held by the test for the whole check: the refusal cannot be a race.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let base = ["cluster", "--nodes", "1", "--dir", dir];

    let taken = [&base[..], &["--base-port", &port]].concat();
    let message = run_expecting_failure(&taken);
    assert!(
        message.contains(&format!("node 1's gRPC port 127.0.0.1:{port} is not free")),
        "{message}"
    );

    let past = [
        "cluster",
        "--nodes",
        "3",
        "--dir",
        dir,
        "--base-port",
        "65534",
    ];
    let message = run_expecting_failure(&past);
    assert!(
        message.contains("--base-port 65534 with node 3 runs past port 65535"),
        "{message}"
    );

    let metrics = [&base[..], &["--base-port", "0", "--metrics-base-port", "0"]].concat();
    let message = run_expecting_failure(&metrics);
    assert!(
        message.contains("--metrics-base-port must be a port"),
        "{message}"
    );
    let metrics = ["cluster", "--nodes", "2", "--dir", dir, "--base-port", "0"];
    let metrics = [&metrics[..], &["--metrics-base-port", "65535"]].concat();
    let message = run_expecting_failure(&metrics);
    assert!(
        message.contains("--metrics-base-port 65535 with node 2 runs past port 65535"),
        "{message}"
    );
}

fn run_expecting_failure(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "{args:?} should fail");
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("{args:?} did not fail within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    stderr
}

#[test]
fn bad_configurations_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let ports = free_ports(2);
    let p1 = format!("1=127.0.0.1:{}", ports[0]);
    let p2 = format!("2=127.0.0.1:{}", ports[1]);
    let base = ["run", "--cluster-id", "c", "--data-dir", data];

    let unknown = [&base[..], &["--id", "3", "--peer", &p1, "--peer", &p2]].concat();
    assert!(run_expecting_failure(&unknown).contains("unknown peer"));

    let other = format!("1=127.0.0.1:{}", ports[1]);
    let dup = [&base[..], &["--id", "1", "--peer", &p1, "--peer", &other]].concat();
    assert!(run_expecting_failure(&dup).contains("more than once"));

    let missing = [&base[..], &["--id", "1", "--peer", &p1, "--peer", &p2]].concat();
    assert!(run_expecting_failure(&missing).contains("does not exist"));

    // Create node 1's data directory, then try to start node 2 on it.
    let busy = TcpListener::bind(format!("127.0.0.1:{}", ports[0])).unwrap();
    let in_use = [
        &base[..],
        &["--id", "1", "--peer", &p1, "--peer", &p2, "--init"],
    ]
    .concat();
    let message = run_expecting_failure(&in_use);
    assert!(message.contains("cannot listen"), "{message}");
    drop(busy);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    // As a node wrote it before identity files had a checksum (still read).
    let identity =
        "{\n  \"cluster_id\": \"c\",\n  \"node_id\": 1,\n  \"members\": [\n    1,\n    2\n  ]\n}";
    std::fs::write(dir.path().join("data/identity.json"), identity).unwrap();
    let foreign = [&base[..], &["--id", "2", "--peer", &p1, "--peer", &p2]].concat();
    let message = run_expecting_failure(&foreign);
    assert!(message.contains("another node's data"), "{message}");
}

/// The harness owns a node's port: the node serves on the socket it is
/// handed, the port stays taken while the node is killed (nothing else can
/// bind it), and the restarted node serves on it again. A socket bound to
/// another address than the configured one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_on_the_socket_its_harness_holds() {
    let dir = tempfile::tempdir().unwrap();
    let listeners = raft_node::launch::loopback_listeners(2).expect("loopback listeners");
    let address = listeners[0].local_addr().unwrap();
    let members = [Member {
        id: 1,
        address: address.to_string(),
    }];
    let mut node = start_node(dir.path(), 1, &members, true, &listeners[0]);
    node.wait_ready(Duration::from_secs(20)).await.unwrap();
    node.kill();
    let taken = TcpListener::bind(address);
    assert!(
        taken.is_err(),
        "the port of a killed node was free for another program: {taken:?}"
    );
    let mut node = start_node(dir.path(), 1, &members, false, &listeners[0]);
    node.wait_ready(Duration::from_secs(20)).await.unwrap();
    node.kill();

    // The socket of another address: refused, naming both.
    let mut node = start_node(dir.path(), 1, &members, false, &listeners[1]);
    let err = node
        .wait_ready(Duration::from_secs(20))
        .await
        .expect_err("a node served on a socket not bound to its address");
    let log = std::fs::read_to_string(dir.path().join("node-1.log")).unwrap();
    assert!(
        log.contains("--listen-on-stdin: the socket given is bound to"),
        "{err:#}: {log}"
    );
}
