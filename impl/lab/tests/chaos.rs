//! Short chaos runs for CI: real node processes (`raft-lab node`) under kill -9,
//! partitions, one-way loss and pauses, with the history checked for
//! linearizability and durability. The long run is a command:
//! `cargo run --release -p raft-lab -- chaos --time 1800`.
//!
//! The runs share the machine's two cores, so they take turns (a lock):
//! a correct cluster must pass under load, but a run's liveness checks
//! (converging after healing) should not be starved by its neighbours.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use raft_lab::chaos::faults::FaultKind;
use raft_lab::chaos::workload::Api;
use raft_lab::chaos::{ChaosOptions, ChaosReport, run};
use raft_lab::seeded_bugs::SeededBug;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn options(seconds: u64, seed: u64) -> ChaosOptions {
    let mut options = ChaosOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_raft-lab")));
    options.duration = Duration::from_secs(seconds);
    options.seed = seed;
    options.verbose = true;
    options.settings.log_level = "info".into();
    options
}

fn chaos(options: ChaosOptions) -> ChaosReport {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run(options)).expect("the harness runs");
    println!("{}", report.summary());
    report
}

/// Every kind of fault, a correct node: the history must check out.
#[test]
fn a_correct_cluster_stays_linearizable_and_durable_under_faults() {
    let report = chaos(options(60, 7));
    assert!(report.passed(), "{}", report.summary());
    let faults: u64 = report.faults.values().sum();
    assert!(faults >= 10, "too few faults injected: {:?}", report.faults);
    assert!(
        report.operations.total.ok >= 500,
        "too little traffic: {:?}",
        report.operations
    );
    assert!(
        report.linearizability.unknown_keys().is_empty(),
        "the search bound was reached"
    );
    // Availability was measured: the monitor sampled the whole run (every
    // 50 ms, each sample a status call per node), and writes went through.
    let a = &report.availability;
    assert!(a.samples >= 200, "{a:?}");
    assert!(a.without_leader < report.duration, "{a:?}");
    assert!(a.longest_write_gap < report.duration, "{a:?}");
    // The run's traces replay through the model: the nodes ran the
    // verified core, crashes, restarts and all.
    match &report.traces {
        Some(raft_lab::chaos::traces::TraceCheck::Valid {
            nodes,
            events,
            restarts,
            ..
        }) => {
            assert_eq!(*nodes, 3);
            assert!(*events > 1_000, "{events} events");
            assert!(*restarts > 0, "the kills were traced as restarts");
        }
        other => panic!("traces not validated: {other:?}"),
    }
}

/// Membership changes under the workload and beside other faults (issue
/// 15): members replaced (a fresh server under a new id joins, a member —
/// the leader too — leaves) and removed then re-added as fresh servers,
/// while leaders are killed, partitioned and moved. The history stays
/// linearizable and every node's trace, the removed and the added ones
/// included, replays through the model.
#[test]
fn membership_changes_under_faults_keep_the_history_linearizable_and_the_traces_valid() {
    let mut options = options(40, 15);
    options.faults = vec![
        FaultKind::ReplaceMember,
        FaultKind::RemoveAdd,
        FaultKind::KillLeader,
        FaultKind::Kill,
        FaultKind::PartitionLeader,
        FaultKind::Partition,
        FaultKind::TransferLeader,
    ];
    let report = chaos(options);
    assert!(report.passed(), "{}", report.summary());
    let changes = report.faults.get("replace-member").copied().unwrap_or(0)
        + report.faults.get("remove-add").copied().unwrap_or(0);
    assert!(changes >= 2, "{:?}", report.faults);
    let added = report.membership.get("added").copied().unwrap_or(0);
    let removed = report.membership.get("removed").copied().unwrap_or(0);
    assert!(added >= 1 && removed >= 1, "{:?}", report.membership);
    // The cluster kept its size, with servers that were not there at the start.
    assert_eq!(report.final_members.len(), 3, "{}", report.summary());
    assert!(report.final_members.iter().any(|id| *id > 3));
    // The proxies in front of each node told the senders apart.
    assert!(report.proxy_senders.0 > 0, "{:?}", report.proxy_senders);
    match &report.traces {
        Some(raft_lab::chaos::traces::TraceCheck::Valid { nodes, events, .. }) => {
            assert_eq!(*nodes, report.node_ids.len(), "every node's trace");
            assert!(*nodes > 3, "the added servers' traces too");
            assert!(*events > 1_000, "{events} events");
        }
        other => panic!("traces not validated: {other:?}"),
    }
}

/// `member replace` under faults (issue 15): fresh servers join as
/// learners and are promoted in place of members, the leader too, in one
/// joint change each, beside leader kills, partitions and transfers. The
/// history stays linearizable and every node's trace — ChangeLearners and
/// the promotions included — replays through the model.
#[test]
fn replacing_members_through_learners_under_faults_keeps_the_history_linearizable() {
    // Seed 1: three replace-learner faults among eleven (release binary,
    // 2026-11-30); the assertion below asks for one.
    let mut options = options(30, 1);
    options.faults = vec![
        FaultKind::ReplaceLearner,
        FaultKind::KillLeader,
        FaultKind::PartitionLeader,
        FaultKind::TransferLeader,
    ];
    let report = chaos(options);
    assert!(report.passed(), "{}", report.summary());
    let promoted = report
        .membership
        .get("promoted-learner")
        .copied()
        .unwrap_or(0);
    assert!(promoted >= 1, "{:?}", report.membership);
    assert_eq!(report.final_members.len(), 3, "{}", report.summary());
    assert!(report.final_members.iter().any(|id| *id > 3));
    match &report.traces {
        Some(raft_lab::chaos::traces::TraceCheck::Valid { nodes, .. }) => {
            assert_eq!(*nodes, report.node_ids.len(), "every node's trace");
            assert!(*nodes > 3, "the learners' traces too");
        }
        other => panic!("traces not validated: {other:?}"),
    }
}

/// Whether the power-loss file system can be mounted here; if not, says
/// why the calling test checks nothing (`RAFT_LAB_REQUIRE_FUSE=1` makes that
/// a failure).
fn powerfs_or_skip(test: &str) -> bool {
    match raft_lab::powerfs::available() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("RAFT_LAB_REQUIRE_FUSE").is_none(),
                "RAFT_LAB_REQUIRE_FUSE is set, but FUSE cannot be mounted: {why}"
            );
            eprintln!("SKIPPED {test}: power cuts need the power-loss file system (FUSE): {why}");
            false
        }
    }
}

/// Power cuts of one node, of a minority and of every node at once (and
/// slow disks): nothing acknowledged is lost, the history is linearizable,
/// and the traces (restarts from what was fsynced) replay through the model.
#[test]
fn a_correct_cluster_loses_nothing_acknowledged_to_power_cuts() {
    if !powerfs_or_skip("a_correct_cluster_loses_nothing_acknowledged_to_power_cuts") {
        return;
    }
    let mut options = options(30, 11);
    options.faults = vec![
        FaultKind::PowerCut,
        FaultKind::PowerCutMinority,
        FaultKind::PowerCutAll,
        FaultKind::SlowDisk,
    ];
    let report = chaos(options);
    assert!(report.passed(), "{}", report.summary());
    for kind in ["power-cut", "power-cut-minority", "power-cut-all"] {
        assert!(
            report.faults.get(kind).copied().unwrap_or(0) >= 1,
            "no {kind} in {:?}",
            report.faults
        );
    }
    assert!(report.power.nodes_cut >= 5, "{:?}", report.power);
    // The cuts fell inside batches (between a write and its fsync): torn
    // writes were recovered from, not only clean ends.
    assert!(
        report.power.files_dirty >= 1 && report.power.sectors_lost + report.power.sectors_kept >= 1,
        "{:?}",
        report.power
    );
    assert!(report.operations.total.ok >= 300, "{:?}", report.operations);
    match &report.traces {
        Some(raft_lab::chaos::traces::TraceCheck::Valid { restarts, .. }) => {
            assert!(
                *restarts as u64 >= report.power.nodes_cut,
                "every cut traced as a restart"
            );
        }
        other => panic!("traces not validated: {other:?}"),
    }
}

/// Namespace partitions beside proxy faults: each node in its own network
/// namespace at its own address, links taken down with `ip link`. Needs
/// root and iproute2; says why it checks nothing otherwise.
#[test]
fn namespace_partitions_beside_proxy_faults_keep_the_history_linearizable() {
    if let Err(why) = raft_lab::chaos::netns::available() {
        eprintln!("SKIPPED namespace_partitions...: {why}");
        return;
    }
    let mut options = options(30, 13);
    options.faults = vec![
        FaultKind::NetnsPartition,
        FaultKind::NetnsPartitionLeader,
        FaultKind::PartitionLeader,
        FaultKind::Kill,
    ];
    let report = chaos(options);
    assert!(report.passed(), "{}", report.summary());
    let netns = report.faults.get("netns-partition").copied().unwrap_or(0)
        + report
            .faults
            .get("netns-partition-leader")
            .copied()
            .unwrap_or(0);
    assert!(netns >= 2, "{:?}", report.faults);
    assert!(report.operations.total.ok >= 300, "{:?}", report.operations);
}

/// Runs a node with `bug` until the harness reports it (at most three short
/// runs with different seeds), and returns the failing report.
fn catch(bug: SeededBug, faults: &[FaultKind]) -> ChaosReport {
    catch_with(bug, faults, true)
}

/// [`catch`], with the nodes' CheckQuorum on or off.
fn catch_with(bug: SeededBug, faults: &[FaultKind], check_quorum: bool) -> ChaosReport {
    catch_through(bug, faults, check_quorum, Api::Native)
}

/// [`catch_with`], the workload speaking `api`.
fn catch_through(
    bug: SeededBug,
    faults: &[FaultKind],
    check_quorum: bool,
    api: Api,
) -> ChaosReport {
    let mut last = None;
    // A catch is a matter of timing (a client must read from the deposed
    // leader inside the window): in one CI run (debug build, loaded
    // machine) seeds 21-23 all missed the etcd-API stale read, which
    // release builds catch with 21, 24 and 25 (22 missed there too).
    for seed in [21, 22, 23, 24, 25] {
        let mut options = options(20, seed);
        options.api = api;
        options.settings.seeded_bug = Some(bug);
        options.settings.check_quorum = check_quorum;
        options.faults = faults.to_vec();
        let report = chaos(options);
        if !report.passed() {
            assert!(report.kept, "the evidence is saved");
            assert!(report.dir.join("history.json").exists());
            assert!(report.dir.join("seed").exists());
            the_viewer_shows_the_findings(&report);
            let _ = std::fs::remove_dir_all(&report.dir);
            return report;
        }
        last = Some(report);
    }
    panic!(
        "seeded bug {bug} was not caught in five runs; last: {}",
        last.map(|r| r.summary()).unwrap_or_default()
    );
}

/// The page the failure message names (`raft-interop view <dir>/traces`)
/// carries every finding of the run: each violation's and each lost write's
/// key and offending slice (the browser rendering is tests/viewer.rs).
fn the_viewer_shows_the_findings(report: &ChaosReport) {
    let traces = report.dir.join("traces");
    if !traces.exists() {
        return;
    }
    assert!(
        report
            .summary()
            .contains(&format!("view {}", traces.display())),
        "the failure names the viewer's command"
    );
    let page = raft_interop::view::page_of(&[traces], &[], "run").expect("the page is written");
    let slot = &page[page.find(r#"<script id="history""#).expect("history slot")..];
    let body = &slot[slot.find('>').expect("tag ends") + 1..];
    let body = &body[..body.find("</script>").expect("script ends")];
    let findings: serde_json::Value = serde_json::from_str(body).expect("the findings are JSON");
    let findings = findings.as_array().expect("an array");
    let expected = report.violations() + report.lost_writes.len();
    assert_eq!(
        findings.len(),
        expected,
        "one finding per violation and lost write"
    );
    for violation in report.linearizability.violations() {
        assert!(
            findings.iter().any(|f| f["kind"] == "violation"
                && f["finding"]["key"] == violation.key.as_str()
                && f["finding"]["slice"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())),
            "violation on {} not in the page",
            violation.key
        );
    }
    for lost in &report.lost_writes {
        assert!(
            findings
                .iter()
                .any(|f| f["kind"] == "lost-write" && f["finding"]["key"] == lost.key.as_str()),
            "lost write on {} not in the page",
            lost.key
        );
    }
}

#[test]
fn acknowledging_writes_before_commit_is_caught() {
    let report = catch(
        SeededBug::AckBeforeCommit,
        &[FaultKind::PartitionLeader, FaultKind::KillLeader],
    );
    assert!(report.violations() > 0 || !report.lost_writes.is_empty());
}

/// CheckQuorum is off here: it makes a cut-off leader step down within an
/// election timeout or two, which shrinks the window in which a deposed
/// leader with this bug answers reads (with it on, seeds 21-23 of 20 s each
/// did not catch it, 2026-11-30). The harness must catch the bug itself,
/// so the test gives it the window a node without CheckQuorum would.
#[test]
fn a_deposed_leader_serving_reads_is_caught() {
    let report = catch_with(
        SeededBug::StaleRead,
        &[FaultKind::PartitionLeader, FaultKind::LeaderMute],
        false,
    );
    assert!(report.violations() > 0, "{}", report.summary());
}

/// The same deposed leader, read through etcd's API: `Range` with
/// `serializable = false` must go through ReadIndex too, and the harness
/// must catch the node that skips it when the clients speak etcd.
#[test]
fn a_deposed_leader_serving_etcd_ranges_is_caught() {
    let report = catch_through(
        SeededBug::StaleRead,
        &[FaultKind::PartitionLeader, FaultKind::LeaderMute],
        false,
        Api::Etcd,
    );
    assert!(report.violations() > 0, "{}", report.summary());
}

/// The workload through etcd's v3 KV API (issue 21): Range, Put and
/// DeleteRange with prev_kv, compare-and-swap as a Txn, under kills,
/// partitions and pauses. etcd's API has no client sessions, so writes
/// whose outcome the client could not learn are indeterminate rather than
/// retried; the history must still be linearizable and the traces valid.
#[test]
fn the_etcd_api_workload_stays_linearizable_under_faults() {
    let mut options = options(30, 8);
    options.api = Api::Etcd;
    options.faults = vec![
        FaultKind::KillLeader,
        FaultKind::Kill,
        FaultKind::PartitionLeader,
        FaultKind::Partition,
        FaultKind::LeaderMute,
        FaultKind::PauseLeader,
        FaultKind::TransferLeader,
    ];
    let report = chaos(options);
    assert!(report.passed(), "{}", report.summary());
    assert!(report.summary().contains("etcd client API"));
    let faults: u64 = report.faults.values().sum();
    assert!(faults >= 5, "too few faults injected: {:?}", report.faults);
    let ops = &report.operations;
    assert!(ops.total.ok >= 300, "too little traffic: {ops:?}");
    assert!(
        report.linearizability.unknown_keys().is_empty(),
        "the search bound was reached"
    );
    match &report.traces {
        Some(raft_lab::chaos::traces::TraceCheck::Valid { events, .. }) => {
            assert!(*events > 1_000, "{events} events");
        }
        other => panic!("traces not validated: {other:?}"),
    }
}

/// The power-cut fault kinds.
const POWER_CUTS: [FaultKind; 3] = [
    FaultKind::PowerCut,
    FaultKind::PowerCutMinority,
    FaultKind::PowerCutAll,
];

/// A node that never fdatasyncs its log appends is caught by power cuts
/// (what it acted on is gone, or its log is left with torn batches followed
/// by later ones, which it refuses to start from), and kill -9 alone does
/// not catch it: the page cache keeps every write of a killed process.
#[test]
fn skipping_fdatasync_is_caught_by_power_cuts_and_not_by_kill_9() {
    if !powerfs_or_skip("skipping_fdatasync_is_caught_by_power_cuts_and_not_by_kill_9") {
        return;
    }
    let report = catch(SeededBug::SkipFdatasync, &POWER_CUTS);
    assert!(!report.passed());
    let mut options = options(20, 21);
    options.settings.seeded_bug = Some(SeededBug::SkipFdatasync);
    options.faults = vec![FaultKind::Kill, FaultKind::KillLeader];
    let report = chaos(options);
    assert!(
        report.passed(),
        "kill -9 alone was expected not to expose a skipped fdatasync: {}",
        report.summary()
    );
}

/// A node that sends a batch's messages before the batch is durable is
/// caught by power cuts: the cut falls between its write and its fsync (the
/// harness arms it to), after the messages left, and the traces show a peer
/// receiving what the crash undid (with no traces, only a lost write or a
/// linearizability violation would show it, far more rarely). kill -9 can
/// catch it too, through the traces, when it happens to land in the same
/// window (seed 21 did, seed 22 did not, in 20 s runs on 2026-11-30).
#[test]
fn sending_before_the_batch_is_durable_is_caught_by_power_cuts() {
    if !powerfs_or_skip("sending_before_the_batch_is_durable_is_caught_by_power_cuts") {
        return;
    }
    let report = catch(SeededBug::SendBeforeDurable, &POWER_CUTS);
    assert!(!report.passed());
}

/// `raft-lab chaos` exits non-zero when the linearizability search runs out
/// of budget for a key (no verdict is not a pass) and names the keys. A
/// budget of one configuration cannot place a key's second operation.
#[test]
fn a_search_out_of_budget_fails_the_command_and_names_its_keys() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("raft-chaos-budget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_raft-lab"))
        .args([
            "chaos",
            "--time",
            "3",
            "--keys",
            "1",
            "--clients",
            "2",
            "--seed",
            "5",
            "--faults",
            "pause",
            "--check-budget",
            "1",
            "--no-trace",
            "--quiet",
        ])
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("raft-lab runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("ran out of budget (--check-budget) for keys k0: no verdict"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("result: FAIL"), "{stdout}");
}
