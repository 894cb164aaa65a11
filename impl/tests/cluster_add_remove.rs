//! `raft-node cluster add` and `raft-node cluster remove`, as an operator
//! types them: real processes on loopback (ports the OS picks), driven only
//! through the `raft-node` binary's commands and output. A 3-node `cluster`
//! grows to four (the new node a voter, writes through it), loses its leader
//! (`cluster remove`: writes go on), is stopped (every node, the added one
//! too) and started again on its directory (exactly the current members).
//! Every wait is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::signal;

const BIN: &str = env!("CARGO_BIN_EXE_raft-node");

/// The bound on one command (a membership change may wait for a node to
/// catch up, up to a minute at worst).
const COMMAND_LIMIT: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(20);

/// Whether process `pid` runs (a zombie has exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].trim_start().chars().next());
        !matches!(state, None | Some('Z') | Some('X'))
    })
}

fn wait_until_gone(pid: u32, what: &str) {
    let started = Instant::now();
    while alive(pid) {
        assert!(started.elapsed() < WAIT, "{what} (pid {pid}) still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `raft-node args`, killed if it takes longer than [`COMMAND_LIMIT`].
fn raft(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("raft-node runs");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "raft-node {args:?} did not finish within {COMMAND_LIMIT:?}: {}",
                text(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn client(endpoints: &str, args: &[&str]) -> Output {
    raft(&[&["client", "--endpoints", endpoints][..], args].concat())
}

/// Runs `raft-node args`, which must fail; returns what it said.
fn refused(args: &[&str]) -> String {
    let output = raft(args);
    assert!(
        !output.status.success(),
        "{args:?} succeeded: {}",
        text(&output)
    );
    text(&output)
}

/// `raft-node cluster` in the foreground, its nodes, and every line it
/// prints; everything is killed when dropped (the added nodes too, once
/// their pids are pushed to `node_pids`).
struct ClusterProcess {
    child: Child,
    node_pids: Vec<u32>,
    lines: mpsc::Receiver<String>,
    /// The table it printed: node id -> (pid, address).
    nodes: BTreeMap<u64, (u32, String)>,
    /// Every line it printed up to its hints.
    said: Vec<String>,
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        // Only processes still running: a pid that has exited may be reused.
        let running = matches!(self.child.try_wait(), Ok(None));
        if running {
            signal(self.child.id(), "INT");
        }
        for pid in &self.node_pids {
            if alive(*pid) {
                signal(*pid, "KILL");
            }
        }
        if running {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl ClusterProcess {
    /// `raft-node cluster --dir dir args`, once it has printed its table
    /// and its hints.
    fn start(dir: &Path, args: &[&str]) -> ClusterProcess {
        let mut cluster = ClusterProcess::spawn(dir, args);
        let started = Instant::now();
        while !cluster
            .next_line(started + Duration::from_secs(60), "its hints")
            .starts_with("Ctrl-C")
        {}
        cluster
    }

    /// The next line `cluster` prints, by `deadline`, recorded in `said`
    /// (and its node, if it is a row of the table); a test waiting for
    /// `what` fails with everything said so far if none comes.
    fn next_line(&mut self, deadline: Instant, what: &str) -> String {
        let line = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!(
                    "`cluster` stopped or went quiet before {what}; it said: {:#?}",
                    self.said
                )
            });
        self.read_node_row(&line);
        self.said.push(line.clone());
        line
    }

    /// `raft-node cluster --dir dir args`, just started.
    fn spawn(dir: &Path, args: &[&str]) -> ClusterProcess {
        let mut child = Command::new(BIN)
            .arg("cluster")
            .args(args)
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        ClusterProcess {
            child,
            node_pids: Vec::new(),
            lines,
            nodes: BTreeMap::new(),
            said: Vec::new(),
        }
    }

    /// Records the node of a row of the table `cluster` prints (id, pid,
    /// address, log).
    fn read_node_row(&mut self, line: &str) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [id, pid, address, _log] = fields.as_slice()
            && let (Ok(id), Ok(pid)) = (id.parse::<u64>(), pid.parse::<u32>())
        {
            self.nodes.insert(id, (pid, address.to_string()));
            self.node_pids.push(pid);
        }
    }

    /// Waits (bounded) until `cluster` prints a line holding `what`.
    fn expect_line(&self, what: &str) -> String {
        let started = Instant::now();
        while started.elapsed() < WAIT {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200))
                && line.contains(what)
            {
                return line;
            }
        }
        panic!("`cluster` never said {what:?}");
    }

    fn endpoints(&self) -> String {
        self.nodes
            .values()
            .map(|(_, address)| address.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The leader's id, from `client status` (bounded wait).
fn leader(endpoints: &str) -> u64 {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        let output = client(endpoints, &["status"]);
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(2) == Some(&"leader")
                && let Some(Ok(id)) = fields.get(1).map(|id| id.parse())
            {
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no leader within {WAIT:?}");
}

/// The voters' ids from `client member list`.
fn voters(endpoints: &str) -> BTreeSet<u64> {
    let output = client(endpoints, &["member", "list"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    let line = said
        .lines()
        .find_map(|line| line.strip_prefix("voters: "))
        .unwrap_or_else(|| panic!("no voters in: {said}"));
    line.split(", ")
        .map(|member| {
            member
                .split('=')
                .next()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("bad member {member:?} in: {said}"))
        })
        .collect()
}

fn put(endpoints: &str, key: &str, value: &str) {
    let output = client(endpoints, &["put", key, value]);
    assert!(output.status.success(), "put {key}: {}", text(&output));
}

fn get(endpoints: &str, key: &str) -> String {
    let output = client(endpoints, &["get", key]);
    assert!(output.status.success(), "get {key}: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// What follows `prefix` in `said`, up to the next space or comma.
fn word_after<'a>(said: &'a str, prefix: &str) -> &'a str {
    let start = said
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} is not in: {said}"))
        + prefix.len();
    said[start..].split([' ', ',']).next().unwrap_or_default()
}

#[test]
fn cluster_add_and_remove_change_a_running_cluster_and_a_restart_starts_the_members() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let dir_arg = dir.to_str().unwrap();
    let mut cluster = ClusterProcess::start(&dir, &["--nodes", "3", "--base-port", "0"]);
    assert_eq!(
        cluster.nodes.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3],
        "the cluster printed its nodes"
    );
    let founders = cluster.endpoints();
    put(&founders, "before", "1");

    // Refusals, each saying what to do, and nothing created by them.
    let said = refused(&["cluster", "add", "--dir", tmp.path().to_str().unwrap()]);
    assert!(said.contains("is not a cluster directory"), "{said}");
    let said = refused(&["cluster", "remove", "--dir", dir_arg, "--id", "9"]);
    assert!(
        said.contains("node 9 is not a node of the cluster") && said.contains("1, 2, 3"),
        "{said}"
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let said = refused(&["cluster", "add", "--dir", dir_arg, "--port", &busy_port]);
    assert!(
        said.contains(&format!("127.0.0.1:{busy_port} (--port) is not free"))
            && said.contains("--port 0"),
        "{said}"
    );
    drop(busy);
    assert!(!dir.join("node-4").exists() && !dir.join("node-4.toml").exists());

    // A fourth node: added as a learner, promoted, a voter; the foreground
    // `cluster` notices it.
    let added = raft(&["cluster", "add", "--dir", dir_arg]);
    let said = text(&added);
    if let Ok(pid) = word_after(&said, "node 4 started: pid ").parse() {
        cluster.node_pids.push(pid);
    }
    assert!(added.status.success(), "{said}");
    assert!(said.contains("node 4 at 127.0.0.1:"), "{said}");
    assert!(said.contains("added as a learner"), "{said}");
    assert!(said.contains("promoted to voter"), "{said}");
    let four = word_after(&said, "OK: node 4 at ").to_owned();
    let four_pid: u32 = word_after(&said, "node 4 started: pid ").parse().unwrap();
    assert!(
        said.contains(&format!("OK: node 4 at {four} is a voter")),
        "{said}"
    );
    cluster.expect_line("node 4 was added");
    assert_eq!(voters(&founders), BTreeSet::from([1, 2, 3, 4]));
    assert_eq!(voters(&four), BTreeSet::from([1, 2, 3, 4]));
    // Writes and reads through the new node alone.
    put(&four, "through-four", "4");
    assert_eq!(get(&four, "through-four"), "4");
    assert_eq!(get(&four, "before"), "1");

    // The leader removed: the change first, then its process stopped and
    // its files archived; writes go on.
    let all = format!("{founders},{four}");
    let old = leader(&all);
    let old_pid = cluster.nodes[&old].0;
    let removed = raft(&[
        "cluster",
        "remove",
        "--dir",
        dir_arg,
        "--id",
        &old.to_string(),
    ]);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(said.contains(&format!("OK: node {old} removed;")), "{said}");
    assert!(
        said.contains(&format!("node {old} stopped (pid {old_pid})")),
        "{said}"
    );
    wait_until_gone(old_pid, "the removed node");
    cluster.expect_line(&format!("node {old} stopped"));
    let archive = dir.join("removed").join(format!("node-{old}"));
    assert!(
        archive
            .join(format!("node-{old}"))
            .join("identity.json")
            .is_file()
    );
    assert!(!dir.join(format!("node-{old}")).exists());
    let members: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|id| *id != old).collect();
    let remaining = cluster
        .nodes
        .iter()
        .filter(|(id, _)| **id != old)
        .map(|(_, (_, address))| address.clone())
        .chain([four.clone()])
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(voters(&remaining), members.iter().copied().collect());
    put(&remaining, "after-remove", "3");
    assert_eq!(get(&remaining, "after-remove"), "3");
    let said = refused(&[
        "cluster",
        "remove",
        "--dir",
        dir_arg,
        "--id",
        &old.to_string(),
    ]);
    assert!(said.contains("was removed already"), "{said}");
    let said = refused(&["cluster", "add", "--dir", dir_arg, "--id", &old.to_string()]);
    assert!(said.contains("an id is never reused"), "{said}");

    // Ctrl-C stops every node, the added one too.
    assert!(cluster.node_pids.contains(&four_pid));
    stop(cluster);

    // With the cluster down, `add` says so and creates nothing.
    let said = refused(&["cluster", "add", "--dir", dir_arg]);
    assert!(
        said.contains("no node of the cluster is listening"),
        "{said}"
    );
    assert!(!dir.join("node-5.toml").exists() && !dir.join("node-5").exists());

    // Started again on its directory: exactly the current members, at their
    // addresses, with every write.
    let said = refused(&["cluster", "--dir", dir_arg, "--nodes", "5"]);
    assert!(said.contains("holds a cluster already"), "{said}");
    let cluster = ClusterProcess::start(&dir, &[]);
    assert_eq!(
        cluster.nodes.keys().copied().collect::<Vec<_>>(),
        members,
        "the restarted cluster's nodes"
    );
    assert_eq!(cluster.nodes[&4].1, four, "node 4 moved");
    // Nothing about the removed node: not started, not missed.
    let mention = format!("node {old} ");
    assert!(
        !cluster.said.iter().any(|line| line.contains(&mention)),
        "{:#?}",
        cluster.said
    );
    let endpoints = cluster.endpoints();
    assert_eq!(voters(&endpoints), members.iter().copied().collect());
    for (key, value) in [
        ("before", "1"),
        ("through-four", "4"),
        ("after-remove", "3"),
    ] {
        assert_eq!(get(&endpoints, key), value, "{key}");
    }
    put(&endpoints, "after-restart", "5");
}

/// Stops the foreground `cluster` with Ctrl-C and waits (bounded) until it
/// and every node it printed or the test added to `node_pids` (the nodes
/// `cluster add` started) have exited — checked before the drop, which
/// kills what is left.
fn stop(cluster: ClusterProcess) {
    signal(cluster.child.id(), "INT");
    cluster.expect_line("stopping the cluster");
    wait_stopped(cluster);
}

/// Waits (bounded) until every node `cluster` printed or the test added to
/// `node_pids`, and then `cluster` itself, have exited.
fn wait_stopped(mut cluster: ClusterProcess) {
    for pid in &cluster.node_pids {
        let id = cluster
            .nodes
            .iter()
            .find(|(_, (p, _))| p == pid)
            .map(|(id, _)| *id);
        let what = id.map_or("a node `cluster add` started".to_owned(), |id| {
            format!("node {id}")
        });
        wait_until_gone(*pid, &what);
    }
    let started = Instant::now();
    while cluster.child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < WAIT,
            "`cluster` did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A node added as a learner stays one until `cluster add --id N` promotes
/// it; after a restart, a node whose data directory is gone is not started
/// (the others are, and `cluster` says how to replace it), and `cluster
/// remove` takes it out of the configuration.
#[test]
fn a_learner_is_promoted_later_and_a_node_whose_data_was_lost_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let dir_arg = dir.to_str().unwrap();
    let mut cluster = ClusterProcess::start(&dir, &["--nodes", "3", "--base-port", "0"]);
    let founders = cluster.endpoints();
    put(&founders, "k", "v");

    let added = raft(&["cluster", "add", "--dir", dir_arg, "--as-learner"]);
    let said = text(&added);
    if let Ok(pid) = word_after(&said, "node 4 started: pid ").parse() {
        cluster.node_pids.push(pid);
    }
    assert!(added.status.success(), "{said}");
    assert!(said.contains("is a learner of cluster"), "{said}");
    assert!(!said.contains("promoted"), "{said}");
    assert_eq!(voters(&founders), BTreeSet::from([1, 2, 3]));
    let list = text(&client(&founders, &["member", "list"]));
    assert!(list.contains("learners: 4="), "{list}");

    let promoted = raft(&["cluster", "add", "--dir", dir_arg, "--id", "4"]);
    let said = text(&promoted);
    assert!(promoted.status.success(), "{said}");
    assert!(said.contains("node 4 runs already"), "{said}");
    assert!(said.contains("promoted to voter"), "{said}");
    assert_eq!(voters(&founders), BTreeSet::from([1, 2, 3, 4]));
    cluster.expect_line("node 4 was added");
    stop(cluster);

    // Node 2's disk is lost while the cluster is down.
    std::fs::remove_dir_all(dir.join("node-2")).unwrap();
    let cluster = ClusterProcess::start(&dir, &[]);
    assert_eq!(
        cluster.nodes.keys().copied().collect::<Vec<_>>(),
        [1, 3, 4],
        "{:#?}",
        cluster.said
    );
    let lost = cluster
        .said
        .iter()
        .find(|line| line.starts_with("node 2 NOT started"))
        .unwrap_or_else(|| panic!("{:#?}", cluster.said));
    assert!(
        lost.contains(&format!("raft-node cluster remove --dir {dir_arg} --id 2")),
        "{lost}"
    );
    let endpoints = cluster.endpoints();
    assert_eq!(get(&endpoints, "k"), "v");

    let removed = raft(&["cluster", "remove", "--dir", dir_arg, "--id", "2"]);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(said.contains("node 2 was not running"), "{said}");
    assert_eq!(voters(&endpoints), BTreeSet::from([1, 3, 4]));
    put(&endpoints, "k", "after");
    assert_eq!(get(&endpoints, "k"), "after");
    stop(cluster);
    assert!(!dir.join("node-2.toml").exists());
    assert!(dir.join("removed/node-2/node-2.toml").is_file());
}

/// A Ctrl-C while `cluster` is still starting its nodes stops the cluster,
/// nodes and all, without waiting for them to serve — not `cluster` alone,
/// by SIGINT's default action, leaving its nodes running (before `cluster`
/// listened for Ctrl-C from its start, it did).
#[test]
fn a_ctrl_c_during_start_up_stops_the_cluster_and_its_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut cluster = ClusterProcess::spawn(&dir, &["--nodes", "3", "--base-port", "0"]);
    // Ctrl-C as soon as the first node's row is printed: it runs, the
    // others are still to start and none has been waited for.
    let mut signalled = false;
    let deadline = Instant::now() + WAIT;
    loop {
        let line = cluster.next_line(deadline, "\"stopping the cluster\"");
        if !signalled && !cluster.nodes.is_empty() {
            signal(cluster.child.id(), "INT");
            signalled = true;
        }
        if line.contains("stopping the cluster") {
            break;
        }
    }
    assert_eq!(
        cluster.nodes.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3],
        "every node was started before the stop: {:#?}",
        cluster.said
    );
    wait_stopped(cluster);
}
