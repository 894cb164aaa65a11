//! The table of spec/README.md ("Measured"), as a test: for every bound on
//! which TLC and the checker were compared, the checker's command with its
//! full flags must still count exactly the distinct states TLC counted.
//!
//! TLC cannot run in CI, so its figures are recorded here beside the exact
//! command they are compared with: TLC built from the public tlaplus/tlaplus
//! sources of 2026-11 (spec/README.md, "Measured"), Java 17, a 2-core machine. A change to the core, the
//! checker's bounds or its defaults changes a count and fails this test;
//! re-run TLC on the named config (command in spec/README.md) and update
//! both the README and this table.

use std::process::Command;

/// Every flag of a bound, so that no row depends on the CLI's defaults.
fn flags(
    servers: u8,
    max_term: u8,
    max_log: u8,
    max_requests: u8,
    max_messages: u8,
    max_restarts: u8,
    max_compactions: u8,
) -> Vec<String> {
    [
        ("--servers", servers),
        ("--max-term", max_term),
        ("--max-log", max_log),
        ("--max-requests", max_requests),
        ("--max-messages", max_messages),
        ("--max-restarts", max_restarts),
        ("--max-compactions", max_compactions),
        ("--max-append-entries", 1),
        ("--max-reads", 0),
    ]
    .iter()
    .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
    .collect()
}

/// The same bound with `MaxReads = reads` (`--max-reads`).
fn with_reads(reads: u8, mut bound: Vec<String>) -> Vec<String> {
    let flag = bound
        .iter()
        .position(|flag| flag == "--max-reads")
        .expect("flags() sets --max-reads");
    bound[flag + 1] = reads.to_string();
    bound
}

/// `raft-checker check FLAGS`: its "distinct states: N within bounds".
fn checker_distinct_states(extra: &[&str], bound: Vec<String>) -> u64 {
    // The examples it writes go to a scratch directory, not into the
    // package's folder (the test's working directory).
    let out = std::env::temp_dir().join(format!("raft-checker-tlc-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_raft-checker"))
        .arg("check")
        .args(bound)
        .args(extra)
        .args(["--threads", "2"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run raft-checker");
    let _ = std::fs::remove_dir_all(&out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // TLC found no violation on any of these bounds; the small ones are too
    // small to reach every `sometimes` goal, so the run's verdict may be
    // FAILED for that reason alone, never for a safety property.
    let always: Vec<&str> = stdout
        .lines()
        .filter(|line| line.trim_start().starts_with("always "))
        .collect();
    assert_eq!(always.len(), 6, "{stdout}");
    assert!(
        always.iter().all(|line| line.ends_with(" holds")),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|line| line.starts_with("distinct states: "))
        .unwrap_or_else(|| panic!("no distinct-state count in:\n{stdout}"));
    line["distinct states: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"))
}

#[test]
fn mcraft_cfg_17253() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 2, 2, 1, 10, 1, 1)),
        17_253
    );
}

#[test]
fn mcraft_cfg_with_8_messages_1432() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 2, 2, 1, 8, 1, 1)),
        1_432
    );
}

#[test]
fn mcraft_cfg_with_6_messages_150() {
    assert_eq!(
        checker_distinct_states(&[], flags(3, 2, 2, 1, 6, 1, 1)),
        150
    );
}

#[test]
fn mcraft_cfg_without_symmetry_102845() {
    assert_eq!(
        checker_distinct_states(&["--no-symmetry"], flags(3, 2, 2, 1, 10, 1, 1)),
        102_845
    );
}

#[test]
fn mcraft_cfg_lossy_with_2_messages_695() {
    assert_eq!(
        checker_distinct_states(&["--lossy"], flags(3, 2, 2, 1, 2, 1, 1)),
        695
    );
}

#[test]
fn mcraft_tiny_cfg_43() {
    assert_eq!(checker_distinct_states(&[], flags(3, 2, 2, 1, 6, 0, 1)), 43);
}

#[test]
fn mcraft_five_cfg_28() {
    assert_eq!(
        checker_distinct_states(&[], flags(5, 1, 2, 1, 10, 0, 0)),
        28
    );
}

/// MCRaft_reads.cfg: the MCRaft.cfg bound with one ReadIndex (`MaxReads = 1`).
#[test]
fn mcraft_reads_cfg_57377() {
    assert_eq!(
        checker_distinct_states(&[], with_reads(1, flags(3, 2, 2, 1, 10, 1, 1))),
        57_377
    );
}

/// MCRaft_reads_deposed.cfg: one ReadIndex, 13 messages, no client
/// requests, restarts or compactions (room for a deposed leader).
#[test]
fn mcraft_reads_deposed_cfg_53423() {
    assert_eq!(
        checker_distinct_states(&[], with_reads(1, flags(3, 2, 2, 0, 13, 0, 0))),
        53_423
    );
}
