//! The trace viewer (`raft-interop view`, interop/viewer/index.html) in a
//! real browser: Debian's chromium, headless, loads the page on a trace a
//! running cluster recorded and on a checker counterexample of a seeded bug,
//! and the test reads the page it rendered. The script installs chromium
//! when it is missing (apt-get, as root); screenshots are written next to
//! the test binaries (target/tmp/viewer-*.png).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use raft_node::local::LocalCluster;

mod common;
use common::{WAIT, fast};

/// The chromium binary, installed first if missing.
fn chromium() -> PathBuf {
    let found = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    };
    if let Some(path) = found("chromium") {
        return path;
    }
    let install = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null",
        ])
        .status()
        .expect("sh runs");
    assert!(
        install.success(),
        "chromium is missing and apt-get could not install it (Debian's `chromium` package, as root)"
    );
    found("chromium").expect("chromium installed")
}

/// What headless chromium rendered for `page` at `#step=...`, and a
/// screenshot of it at `png`. Bounded: chromium gets 60 s.
fn render(page: &Path, step: &str, png: &Path) -> String {
    let url = format!("file://{}#step={step}", page.display());
    let browser = chromium();
    let run = |extra: &[&str]| {
        Command::new("timeout")
            .arg("60")
            .arg(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=5000",
                "--window-size=1100,700",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs")
    };
    let dom = run(&["--dump-dom"]);
    assert!(dom.status.success(), "chromium failed: {dom:?}");
    let shot = run(&[&format!("--screenshot={}", png.display())]);
    assert!(
        shot.status.success(),
        "chromium screenshot failed: {shot:?}"
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

fn write_page(traces: &[PathBuf], out: &Path) {
    let page = raft_interop::view::page_of(traces, &[], "test").expect("page");
    std::fs::write(out, page).unwrap();
}

/// The page of a chaos run's `traces` directory with `findings` copied
/// into the run directory beside it, where the harness writes them.
fn write_chaos_page(traces: &Path, findings: &[PathBuf], out: &Path) {
    for finding in findings {
        let name = finding.file_name().unwrap();
        std::fs::copy(finding, traces.parent().unwrap().join(name)).unwrap();
    }
    let page = raft_interop::view::page_of(&[traces.to_path_buf()], &[], "chaos").expect("page");
    std::fs::write(out, page).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_replays_a_cluster_trace_and_a_counterexample_in_a_browser() {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("traces");
    std::fs::create_dir_all(&traces).unwrap();

    // A cluster at work: an election, writes, a leadership transfer.
    let trace_dir = traces.clone();
    let cluster = LocalCluster::start(&dir.path().join("nodes"), 3, move |config| {
        fast(config);
        config.trace_dir = Some(trace_dir.clone());
    })
    .await
    .expect("cluster starts");
    let first = cluster.wait_for_leader(WAIT).await.unwrap();
    let mut client = cluster.client().unwrap();
    for i in 0..5 {
        client.put(&format!("k{i}"), "v").await.unwrap();
    }
    let to = first % 3 + 1;
    client.transfer_leader(to).await.expect("transfer");
    client.put("after", "transfer").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.shutdown().await;

    let page = dir.path().join("cluster.html");
    write_page(std::slice::from_ref(&traces), &page);
    let dom = render(&page, "last", &shots.join("viewer-cluster.png"));
    for id in 1..=3 {
        assert!(
            dom.contains(&format!("data-server=\"{id}\"")),
            "server {id} not shown"
        );
    }
    // Both leaders, each in its own term, in the leaders' table, and the
    // last step reached (no event left waiting for a message).
    for leader in [first, to] {
        assert!(
            dom.contains(&format!("<td>s{leader}</td></tr>")),
            "leader s{leader} missing from the leaders' table"
        );
    }
    assert!(!dom.contains("class=\"twice\""), "two leaders of one term?");
    assert!(
        dom.contains("HandleTimeoutNow") || dom.contains("step "),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<section id="chaos" hidden="">"#),
        "no chaos findings shown for a plain cluster trace"
    );

    // A failed chaos run: its traces, and beside them the findings the
    // harness wrote. The violation is a real one, saved from `raft-lab
    // chaos --time 20 --seed 21 --seeded-bug stale-read --faults
    // partition-leader,leader-mute --check-quorum off` (a deposed leader
    // answering reads); the trace here is the cluster's above, not that
    // run's (45,000 events), which is all the page needs to show both.
    // The lost write is real too: `--seed 22 --seeded-bug ack-before-commit
    // --faults partition-leader,kill-leader` (a leader acknowledging a write
    // before it committed, then losing it).
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/tests/fixtures");
    let page = dir.path().join("chaos.html");
    write_chaos_page(
        &traces,
        &[
            fixtures.join("chaos-stale-read/violation-k1.json"),
            fixtures.join("chaos-ack-before-commit/lost-write-k0.json"),
        ],
        &page,
    );
    let dom = render(&page, "last", &shots.join("viewer-chaos-failure.png"));
    assert!(
        dom.contains(
            "Chaos run failed: <b class=\"finding-title\">Lost write on key k0</b>, \
             <b class=\"finding-title\">Linearizability violation on key k1</b>"
        ),
        "the failures named in the banner"
    );
    assert!(
        dom.contains("every node holds \"c3-2383\" for key k0, but acknowledged write #18854 (cas \"c3-2383\" → \"c3-2385\" swapped (was \"c3-2383\"))"),
        "the lost write explained"
    );
    assert!(
        dom.contains(r#"<tr class="offending"><td>#18854</td>"#),
        "the lost write marked"
    );
    assert!(
        dom.contains(r#"<section id="chaos">"#),
        "the findings shown"
    );
    assert!(
        dom.contains(r#"class="finding" data-kind="violation" data-key="k1""#),
        "the violation's panel"
    );
    assert!(
        dom.contains("places 140 operations and leaves the key \"c1-80\"; none of the 2 operations pending there"),
        "what the search found"
    );
    // The two operations no order can place next, marked in the table and
    // drawn red on the timeline; every operation of the slice drawn.
    for row in [
        r#"<tr class="offending"><td>#792</td><td>4</td><td>delete ok (was absent)</td>"#,
        r#"<tr class="offending"><td>#734</td><td>3</td><td>get = absent</td>"#,
    ] {
        assert!(dom.contains(row), "{row} not marked");
    }
    let rendered = &dom[..dom
        .find(r#"<script id="trace""#)
        .expect("the scripts follow the page")];
    assert_eq!(
        rendered.matches(r##"fill="#d33""##).count(),
        3,
        "three red bars"
    );
    assert_eq!(
        rendered.matches("<g data-op=").count(),
        14 + 4,
        "both slices' operations"
    );

    // A counterexample of the seeded bug vote-twice (raft-checker check
    // --max-term 1 --max-log 1 --max-requests 0 --bug vote-twice).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/tests/fixtures/vote-twice-ElectionSafety.jsonl");
    let page = dir.path().join("counterexample.html");
    write_page(&[fixture], &page);
    let dom = render(&page, "last", &shots.join("viewer-counterexample.png"));
    assert!(
        dom.contains("<b id=\"property\">ElectionSafety</b> violated at step 8"),
        "the violated property and its step"
    );
    assert!(dom.contains("seeded bug <b>vote-twice</b>"));
    assert!(
        dom.contains("class=\"twice\" data-term=\"1\"><td>1</td><td>s2, s3</td>"),
        "two leaders of term 1 shown"
    );
    assert!(dom.contains("ElectionSafety fails here"));
    // At step 0 nothing has happened yet.
    let dom = render(&page, "0", &shots.join("viewer-counterexample-start.png"));
    assert!(dom.contains("step 0 of 8: Init"), "step 0");
    assert!(
        !dom.contains("class=\"server Leader"),
        "no leader at step 0"
    );
}
