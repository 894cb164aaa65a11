//! Backup and restore (issues 19 and 21): `raft-node client snapshot save`
//! against a running cluster, then `raft-node init --restore` seeding a new
//! cluster of separate processes from the file. The backup is taken under
//! write load: every write acknowledged before it began is in the new
//! cluster, and one made after it ended is not; the new cluster
//! takes writes; bad input is refused and changes nothing.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use raft_node::config::Member;
use raft_node::launch::{Launch, NodeProcess};

const BIN: &str = env!("CARGO_BIN_EXE_raft-node");

fn client(endpoints: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["client", "--endpoints", endpoints, "--timeout", "20s"])
        .args(args)
        .output()
        .expect("client runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The launcher of node `id` of the restored cluster `members`.
fn launcher(dir: &Path, id: u64, members: &[Member]) -> Launch {
    common::launcher(dir, "restored", id, members)
}

fn init_restore(dir: &Path, id: u64, backup: &Path) -> Output {
    Command::new(BIN)
        .args(["init", "--config"])
        .arg(dir.join(format!("node-{id}.toml")))
        .arg("--restore")
        .arg(backup)
        .output()
        .expect("init runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_seeds_a_new_cluster_with_every_write_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = common::cluster(&dir).await;
    old.wait_for_leader(common::WAIT).await.unwrap();
    let endpoints = old.endpoints().join(",");
    let mut kv = old.client().unwrap();
    for (key, value) in [("a", "1"), ("b", "2"), ("a", "3")] {
        kv.put(key, value).await.unwrap();
    }
    kv.delete("b").await.unwrap();

    // Write load throughout the backup: a writer puts w0, w1, ... and notes
    // when each was acknowledged (bounded in count).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut kv = old.client().unwrap();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("w{i}");
                if kv.put(&key, "v").await.is_ok() {
                    acknowledged.push((key, Instant::now()));
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The backup, through the CLI (any endpoint: a follower relays the
    // leader's stream).
    let backup = dir.path().join("backup.snap");
    let began = Instant::now();
    let saved = {
        let (endpoints, path) = (endpoints.clone(), backup.to_str().unwrap().to_owned());
        tokio::task::spawn_blocking(move || client(&endpoints, &["snapshot", "save", &path]))
            .await
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.await.unwrap();
    let before_backup: Vec<String> = acknowledged
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(key, _)| key.clone())
        .collect();
    assert!(!before_backup.is_empty(), "writes before the backup");
    assert!(
        acknowledged.len() > before_backup.len(),
        "writes went on during and after the backup"
    );
    assert!(saved.status.success(), "{}", text(&saved));
    assert!(
        text(&saved).starts_with(&format!("Snapshot saved at {}", backup.display())),
        "{}",
        text(&saved)
    );
    // A second save to the same file is refused and leaves it as it was.
    let before = std::fs::read(&backup).unwrap();
    let again = client(&endpoints, &["snapshot", "save", backup.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    assert_eq!(std::fs::read(&backup).unwrap(), before);
    // Written after the backup: not in it.
    kv.put("c", "after").await.unwrap();
    old.shutdown().await;

    // A corrupted backup is refused before anything is created.
    let new_dir = dir.path().join("restored");
    let (listeners, members) = common::loopback_members(3);
    for member in &members {
        launcher(&new_dir, member.id, &members)
            .write_config()
            .unwrap();
    }
    let corrupt = dir.path().join("corrupt.snap");
    let mut bytes = before.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&corrupt, &bytes).unwrap();
    let refused = init_restore(&new_dir, 1, &corrupt);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("is not a valid backup"),
        "{}",
        text(&refused)
    );
    assert!(!new_dir.join("node-1").exists(), "nothing was created");

    // Every member of the new cluster from the same file.
    for member in &members {
        let restored = init_restore(&new_dir, member.id, &backup);
        assert!(restored.status.success(), "{}", text(&restored));
        assert!(
            text(&restored).contains("new cluster \"restored\""),
            "{}",
            text(&restored)
        );
    }
    // A second restore into an initialised directory is refused.
    let twice = init_restore(&new_dir, 1, &backup);
    assert!(!twice.status.success());
    assert!(
        text(&twice).contains("already initialised"),
        "{}",
        text(&twice)
    );

    let _nodes: Vec<NodeProcess> = members
        .iter()
        .zip(&listeners)
        .map(|(member, listener)| {
            launcher(&new_dir, member.id, &members)
                .listener(Arc::clone(listener))
                .spawn()
                .expect("node starts")
        })
        .collect();
    let endpoints: String = members
        .iter()
        .map(|member| member.address.clone())
        .collect::<Vec<_>>()
        .join(",");
    let get = |key: &str| client(&endpoints, &["get", key]);
    let a = get("a");
    assert!(a.status.success(), "{}", text(&a));
    assert_eq!(String::from_utf8_lossy(&a.stdout).trim(), "3");
    let b = get("b");
    assert!(
        !b.status.success(),
        "deleted before the backup: {}",
        text(&b)
    );
    let c = get("c");
    assert!(
        !c.status.success(),
        "written after the backup: {}",
        text(&c)
    );
    // Every write acknowledged before the backup began is there.
    let mut reader =
        raft_node::client::KvClient::new(members.iter().map(|m| m.address.clone()).collect())
            .unwrap();
    for key in &before_backup {
        let value = reader.get(key).await.unwrap().value;
        assert_eq!(
            value.as_deref(),
            Some("v"),
            "{key}, acknowledged before the backup"
        );
    }
    let put = client(&endpoints, &["put", "d", "new"]);
    assert!(put.status.success(), "{}", text(&put));
    assert_eq!(
        String::from_utf8_lossy(&get("d").stdout).trim(),
        "new",
        "the new cluster takes writes"
    );
    // Its members are the new configuration's, at the new addresses.
    let list = client(&endpoints, &["member", "list"]);
    assert!(list.status.success(), "{}", text(&list));
    for member in &members {
        assert!(
            text(&list).contains(&format!("{}={}", member.id, member.address)),
            "{}",
            text(&list)
        );
    }
}
