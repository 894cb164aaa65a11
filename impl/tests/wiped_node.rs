//! A node whose data is gone must not come back as the same member: with an
//! empty log at term 0 it could vote a second time in a term it already
//! voted in. These tests drive the `raft-node` binary only (its commands and
//! output, no library API), as an operator would.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::signal;

const BIN: &str = env!("CARGO_BIN_EXE_raft-node");

fn client(endpoints: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["client", "--endpoints", endpoints])
        .args(args)
        .output()
        .expect("client runs")
}

/// `raft-node cluster` and its nodes, all stopped when dropped.
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

/// Runs `program args`, which must fail within 10 s; returns its stderr.
fn run_expecting_failure(program: &str, args: &[&str]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "{program} {args:?} should fail");
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not fail within 10 s: it started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    stderr
}

/// Start a cluster with `raft-node cluster`, stop a node (kill -9), delete
/// its data directory, and start it with the restart command `cluster`
/// printed: it must refuse, saying that its data is gone and what to do —
/// not rejoin at term 0 with an empty log.
#[test]
fn a_wiped_node_restarted_as_printed_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("c");
    let mut child = Command::new(BIN)
        .args(["cluster", "--nodes", "3", "--base-port", "0"])
        .arg("--dir")
        .arg(&cluster_dir)
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
    // Every line `cluster` prints, as it prints it.
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |timeout: Duration| lines.recv_timeout(timeout).ok();
    // The table: "node pid address log", one line per node.
    let mut pids = BTreeMap::new();
    let mut addresses = Vec::new();
    while let Some(line) = next_line(Duration::from_secs(60)) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [id, pid, address, _log] = fields.as_slice()
            && let (Ok(id), Ok(pid)) = (id.parse::<u64>(), pid.parse::<u32>())
        {
            pids.insert(id, pid);
            cluster.node_pids.push(pid);
            addresses.push(address.to_string());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    assert_eq!(pids.len(), 3, "the cluster printed its nodes");
    let endpoints = addresses.join(",");
    // The node votes and acknowledges: it has state worth keeping.
    let put = client(&endpoints, &["put", "greeting", "hello"]);
    assert!(put.status.success(), "{put:?}");

    signal(pids[&2], "KILL");
    let restart = loop {
        let line = next_line(Duration::from_secs(20))
            .expect("`cluster` prints how to restart the node it saw exit");
        if let Some(command) = line
            .strip_prefix("node 2 exited")
            .and_then(|rest| rest.split_once("restart it with: "))
        {
            break command.1.to_owned();
        }
    };
    let data_dir = cluster_dir.join("node-2");
    assert!(data_dir.is_dir(), "node 2's data directory is {data_dir:?}");
    std::fs::remove_dir_all(&data_dir).unwrap();

    let words: Vec<&str> = restart.split_whitespace().collect();
    assert!(
        words.len() >= 3 && words[1] == "run" && !words.contains(&"--init"),
        "the restart command: {restart}"
    );
    let stderr = run_expecting_failure(words[0], &words[1..]);
    for expected in [
        "does not exist",
        "must not rejoin as the same member",
        "new member",
        "raft-node init",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} is not in what the node said: {stderr}"
        );
    }
    assert!(
        !data_dir.exists(),
        "the refused start re-created {data_dir:?}"
    );
}

/// A config file of an earlier version, with `init = true`, and a data
/// volume that failed to mount (its mount point an empty directory): the
/// node refuses to start instead of starting a fresh node there, and says
/// that the `init` key is no longer a setting.
#[test]
fn an_old_config_with_init_does_not_start_a_fresh_node_on_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("mnt/raft");
    std::fs::create_dir_all(&data_dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("node-1.toml");
    std::fs::write(
        &config,
        format!(
            "cluster_id = \"old\"\nid = 1\ndata_dir = {:?}\ninit = true\n\
             members = [ {{ id = 1, address = \"127.0.0.1:{port}\" }} ]\n",
            data_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let stderr = run_expecting_failure(BIN, &["run", "--config", config.to_str().unwrap()]);
    for expected in [
        "is empty",
        "must not rejoin as the same member",
        "mounted",
        "no longer a setting",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} is not in what the node said: {stderr}"
        );
    }
    for file in ["identity.json", "raft.log"] {
        assert!(
            !Path::new(&data_dir).join(file).exists(),
            "the refused start wrote {file} in {data_dir:?}"
        );
    }
}

/// `raft-node init` initialises a data directory once: a second time is
/// refused, naming the node and cluster it already belongs to.
#[test]
fn raft_node_init_initialises_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let args = [
        "init",
        "--cluster-id",
        "c",
        "--id",
        "1",
        "--peer",
        "1=127.0.0.1:7001",
        "--peer",
        "2=127.0.0.1:7002",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    let first = Command::new(BIN).args(args).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("initialised"), "{said}");
    assert!(data_dir.join("identity.json").is_file());
    let stderr = run_expecting_failure(BIN, &args);
    assert!(
        stderr.contains("already initialised") && stderr.contains("node 1 of cluster \"c\""),
        "{stderr}"
    );
}
