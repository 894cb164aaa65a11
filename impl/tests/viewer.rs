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
    let page = raft_interop::view::page_of(traces, "test").expect("page");
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
    write_page(&[traces], &page);
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
