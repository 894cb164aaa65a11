//! The command line: exit status, report JSON and trace files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `check` on a small bound (the CLI's default bound is for release builds).
const SMALL: [&str; 7] = [
    "check",
    "--max-term",
    "2",
    "--max-log",
    "2",
    "--max-requests",
    "1",
];

fn checker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_raft-checker"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raft-checker-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the checker with `args`, its traces in `out` and its JSON report
/// beside them (the directory is made first: walks that find nothing write
/// no trace); returns the process's output and the parsed report.
fn run_with_report(args: &[&str], out: &Path) -> (Output, serde_json::Value) {
    std::fs::create_dir_all(out).expect("scratch directory");
    let json = out.join("report.json");
    let output = checker()
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("the checker runs");
    let report = serde_json::from_str(&std::fs::read_to_string(&json).expect("report written"))
        .expect("report is JSON");
    (output, report)
}

/// A property's entry in a JSON report.
fn property<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["properties"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{name} reported"))
}

#[test]
fn a_violation_exits_non_zero_and_writes_its_traces() {
    let out = scratch("violation");
    let (status, report) = run_with_report(
        &[
            "check",
            "--bug",
            "vote-twice",
            "--threads",
            "1",
            "--bound",
            "tiny",
            "--max-messages",
            "4",
        ],
        &out,
    );
    assert_eq!(status.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("counterexample to ElectionSafety"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  1. "),
        "a numbered list of actions: {stdout}"
    );

    assert_eq!(report["ok"], false);
    assert_eq!(report["bug"], "vote-twice");
    assert_eq!(property(&report, "ElectionSafety")["verdict"], "violated");
    let trace = std::fs::read_to_string(out.join("ElectionSafety.jsonl")).expect("trace");
    assert!(trace.starts_with("{\"kind\":\"checker\""), "{trace}");
    let diagram = std::fs::read_to_string(out.join("ElectionSafety.mmd")).expect("diagram");
    assert!(diagram.starts_with("sequenceDiagram"));
    let _ = std::fs::remove_dir_all(&out);
}

/// The walks must also get somewhere: a leader elected and a command
/// committed (the `sometimes` goals in the JSON report), or they checked the
/// safety properties on states where nothing happened.
/// A depth-first counterexample is replaced by a shortest one of its witness
/// bound, and the report, the list and the trace file all give the short one.
#[test]
fn a_counterexample_is_shortened_by_default() {
    let run = |extra: &[&str]| {
        let out = scratch(&format!("shorten{}", extra.len()));
        let mut args = vec![
            "check",
            "--bug",
            "vote-twice",
            "--threads",
            "1",
            "--bound",
            "elections",
        ];
        args.extend_from_slice(extra);
        let (output, report) = run_with_report(&args, &out);
        assert_eq!(output.status.code(), Some(1));
        let steps = property(&report, "ElectionSafety")["steps"]
            .as_u64()
            .expect("ElectionSafety has a counterexample");
        let trace = std::fs::read_to_string(out.join("ElectionSafety.jsonl")).expect("trace");
        let events = trace
            .lines()
            .filter(|l| l.starts_with("{\"kind\":\"event\""))
            .count();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        (steps, events, stderr)
    };
    let (dfs_steps, _, _) = run(&["--shorten", "0"]);
    let (steps, events, stderr) = run(&[]);
    assert!(steps < dfs_steps, "{steps} steps, depth-first {dfs_steps}");
    // Two candidates of one term, one voter voting twice: eight steps with
    // at most four messages in flight (two of them to make room).
    assert_eq!(steps, 8, "{stderr}");
    assert_eq!(events as u64, steps, "one trace event per step");
    assert!(
        stderr.contains(&format!("{dfs_steps} steps -> 8")),
        "{stderr}"
    );
}

#[test]
fn a_simulation_without_violation_exits_zero() {
    let out = scratch("simulation");
    let (status, report) = run_with_report(
        &[
            "simulate",
            "--bound",
            "crashes",
            "--max-states",
            "20000",
            "--seed",
            "3",
            "--threads",
            "1",
        ],
        &out,
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("random simulation"), "{stdout}");
    for goal in ["LeaderElected", "CommandCommitted"] {
        assert_eq!(
            property(&report, goal)["verdict"],
            "reached",
            "{goal}: {stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_incomplete_exhaustive_check_is_not_a_pass() {
    // Two messages in flight: a leader is elected, but its AppendEntries to
    // both peers never fit, so no command commits: a goal is missed.
    let out = scratch("incomplete");
    let status = checker()
        .args(SMALL)
        .args(["--max-messages", "2", "--threads", "1"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("the checker runs");
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("NOT reached"), "{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_input_is_a_usage_error() {
    let status = checker()
        .args(["check", "--bug", "no-such-bug"])
        .output()
        .expect("the checker runs");
    assert_eq!(status.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&status.stderr);
    // clap refuses it and lists every bug (from the one table).
    assert!(stderr.contains("invalid value 'no-such-bug'"), "{stderr}");
    for bug in raft_model::Bug::ALL {
        let name = raft_checker::bugs::name(bug);
        assert!(stderr.contains(name), "{name} not listed: {stderr}");
    }
}

/// `bench` has `check`'s exit status: with two messages in flight no command
/// can commit, so the check fails and so does its bench, naming the goals
/// missed; the `tiny` bound reaches every goal and exits 0.
#[test]
fn a_failed_bench_exits_non_zero() {
    let tiny = checker()
        .args(["bench", "--bound", "tiny", "--max-messages", "2"])
        .args(["--threads", "1"])
        .output()
        .expect("the checker runs");
    let stdout = String::from_utf8_lossy(&tiny.stdout);
    assert_eq!(tiny.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED ("), "{stdout}");
    assert!(stdout.contains("CommandCommitted NOT reached"), "{stdout}");

    let spec = checker()
        .args(["bench", "--bound", "tiny", "--threads", "2"])
        .output()
        .expect("the checker runs");
    let stdout = String::from_utf8_lossy(&spec.stdout);
    assert_eq!(spec.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("all properties: ok"), "{stdout}");
}
