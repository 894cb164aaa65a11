//! etcd's v3 API on a 3-node in-process cluster, driven by the real etcdctl
//! (Debian's `etcd-client`, etcdctl 3.4; installed with apt-get when missing
//! and the test runs as root) and by the generated etcd gRPC client.

use std::process::Stdio;
use std::time::Duration;

use raft_node::proto::etcdserverpb as epb;
use raft_node::proto::etcdserverpb::kv_client::KvClient as EtcdKvClient;
use raft_node::proto::kv as pb;
use raft_node::proto::kv::kv_client::KvClient as NativeClient;
use tokio::io::AsyncWriteExt;

mod common;
use common::{WAIT, etcd_status};

/// Every etcdctl run is bounded.
const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of etcdctl, installing Debian's etcd-client if it is missing.
fn etcdctl() -> String {
    let found = |name: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    if let Some(path) = found("etcdctl") {
        return path;
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(
        root,
        "etcdctl is missing and this test is not root: install Debian's etcd-client (apt-get install -y etcd-client)"
    );
    let install = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    };
    if !install(&["install", "-y", "etcd-client"]) {
        assert!(install(&["update"]), "apt-get update failed");
        assert!(
            install(&["install", "-y", "etcd-client"]),
            "apt-get install etcd-client failed"
        );
    }
    found("etcdctl").expect("etcdctl after installing etcd-client")
}

/// Runs `etcdctl --endpoints=<endpoints> <args>` (API v3) with `stdin`;
/// returns (success, stdout, stderr).
async fn run(
    etcdctl: &str,
    endpoints: &[String],
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("etcdctl starts");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("stdin");
    drop(input);
    let out = tokio::time::timeout(ETCDCTL_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("etcdctl {args:?} did not finish in {ETCDCTL_TIMEOUT:?}"))
        .expect("etcdctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs etcdctl and expects success; returns its standard output.
async fn ok(etcdctl: &str, endpoints: &[String], args: &[&str], stdin: &str) -> String {
    let (success, stdout, stderr) = run(etcdctl, endpoints, args, stdin).await;
    assert!(
        success,
        "etcdctl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    eprintln!("$ etcdctl {}\n{stdout}", args.join(" "));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_drives_a_three_node_cluster() {
    let etcdctl = etcdctl();
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let all = cluster.endpoints();
    let at_follower = vec![cluster.address(follower)];
    let e = etcdctl.as_str();

    // Writes at a follower are forwarded to the leader, as etcd's are.
    assert_eq!(
        ok(e, &at_follower, &["put", "foo", "bar"], "").await,
        "OK\n"
    );
    assert_eq!(ok(e, &all, &["put", "foo2", "baz"], "").await, "OK\n");
    assert_eq!(ok(e, &all, &["put", "other", "x"], "").await, "OK\n");
    assert_eq!(ok(e, &at_follower, &["get", "foo"], "").await, "foo\nbar\n");
    assert_eq!(
        ok(e, &all, &["get", "--prefix", "f"], "").await,
        "foo\nbar\nfoo2\nbaz\n"
    );
    // Revisions: an empty store is at 1; three puts made it 4.
    let json = ok(e, &all, &["get", "foo2", "-w", "json"], "").await;
    assert!(json.contains("\"revision\":4"), "{json}");
    assert!(json.contains("\"create_revision\":3"), "{json}");
    assert!(json.contains("\"mod_revision\":3"), "{json}");
    assert!(json.contains("\"version\":1"), "{json}");
    assert_eq!(
        ok(e, &all, &["get", "--prefix", "f", "--limit", "1"], "").await,
        "foo\nbar\n"
    );
    assert_eq!(
        ok(e, &all, &["get", "--prefix", "f", "--order", "DESCEND"], "").await,
        "foo2\nbaz\nfoo\nbar\n"
    );
    // A serializable read, at a follower.
    assert_eq!(
        ok(e, &at_follower, &["get", "--consistency=s", "other"], "").await,
        "other\nx\n"
    );
    // No history: an older revision is compacted.
    let (success, _, stderr) = run(e, &all, &["get", "foo", "--rev", "2"], "").await;
    assert!(!success);
    assert!(
        stderr.contains("required revision has been compacted"),
        "{stderr}"
    );

    assert_eq!(ok(e, &all, &["del", "foo"], "").await, "1\n");
    assert_eq!(ok(e, &all, &["del", "foo"], "").await, "0\n");
    assert_eq!(ok(e, &all, &["get", "foo"], "").await, "");
    assert_eq!(ok(e, &all, &["put", "p/a", "1"], "").await, "OK\n");
    assert_eq!(ok(e, &all, &["put", "p/b", "2"], "").await, "OK\n");
    assert_eq!(ok(e, &all, &["del", "--prefix", "p/"], "").await, "2\n");

    // A transaction, from standard input: compares, blank line, success
    // operations, blank line, failure operations, blank line.
    let txn = "value(\"foo2\") = \"baz\"\nmod(\"foo2\") = \"3\"\nversion(\"foo2\") = \"1\"\ncreate(\"foo2\") > \"0\"\n\nput foo2 qux\nput txnkey yes\n\nget foo2\n\n";
    assert_eq!(
        ok(e, &at_follower, &["txn"], txn).await,
        "SUCCESS\n\nOK\n\nOK\n"
    );
    // The same again fails: foo2 changed. The failure branch reads.
    assert_eq!(ok(e, &all, &["txn"], txn).await, "FAILURE\n\nfoo2\nqux\n");
    let txn2 = "value(\"foo2\") != \"baz\"\nversion(\"foo2\") > \"1\"\nmod(\"foo2\") < \"100\"\n\ndel txnkey\n\n\n";
    assert_eq!(ok(e, &all, &["txn"], txn2).await, "SUCCESS\n\n1\n");
    assert_eq!(ok(e, &all, &["get", "txnkey"], "").await, "");

    // Cluster and Maintenance.
    let members = ok(e, &all, &["member", "list"], "").await;
    assert_eq!(members.lines().count(), 3, "{members}");
    for id in cluster.ids() {
        let url = format!("http://{}", cluster.address(id));
        let line = format!("{id:x}, started, node-{id}, {url}, {url}, false");
        assert!(members.lines().any(|l| l == line), "{line} in {members}");
    }
    let status = ok(e, &all, &["endpoint", "status", "-w", "table"], "").await;
    for id in cluster.ids() {
        assert!(status.contains(&cluster.address(id)), "{status}");
    }
    assert_eq!(status.matches(" true ").count(), 1, "one leader: {status}");
    // The database sizes are the data directory's: all of it, and the part
    // that is state (without the log file's room allocated ahead).
    for id in cluster.ids() {
        let status = etcd_status(&cluster.address(id)).await;
        assert!(
            0 < status.db_size_in_use && status.db_size_in_use <= status.db_size,
            "node {id}: {status:?}"
        );
        assert!(!status.is_learner, "node {id}: {status:?}");
    }

    // `snapshot save` at a follower: the leader's consistent snapshot,
    // relayed, in this node's snapshot image format (impl/README.md,
    // "Backup and restore").
    let backup = dir.path().join("etcdctl.snap");
    let saved = ok(
        e,
        &at_follower,
        &["snapshot", "save", backup.to_str().unwrap()],
        "",
    )
    .await;
    assert!(saved.contains("Snapshot saved at"), "{saved}");
    let bytes = std::fs::read(&backup).unwrap();
    let snapshot = raft_node::backup::decode(&bytes).expect("a valid backup");
    let value = |key: &[u8]| snapshot.data.get(key).map(|kv| kv.value.clone());
    assert_eq!(
        value(b"foo2"),
        Some(b"qux".to_vec()),
        "the transaction's write"
    );
    assert_eq!(value(b"foo"), None, "deleted");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_headers_revisions_and_the_native_api_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let address = format!("http://{}", cluster.address(leader));
    let mut etcd = EtcdKvClient::connect(address.clone()).await.unwrap();
    let mut native = NativeClient::connect(address).await.unwrap();

    let put = etcd
        .put(epb::PutRequest {
            key: b"bin".to_vec(),
            value: vec![0xff, 0x00],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let header = put.header.unwrap();
    assert_eq!(header.revision, 2);
    assert_eq!(header.member_id, leader);
    assert_ne!(header.cluster_id, 0);
    assert!(header.raft_term >= 1);
    // A native write is a revision too, and the etcd API sees its key.
    native
        .put(pb::PutRequest {
            key: "text".into(),
            value: "hello".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let range = etcd
        .range(epb::RangeRequest {
            key: b"text".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(range.header.unwrap().revision, 3);
    assert_eq!(range.kvs[0].value, b"hello");
    assert_eq!(
        (
            range.kvs[0].create_revision,
            range.kvs[0].mod_revision,
            range.kvs[0].version
        ),
        (3, 3, 1)
    );
    // One key is read in the event loop, not from an image clone: the
    // range options still apply to it.
    let single = |options: epb::RangeRequest| {
        let mut etcd = etcd.clone();
        async move { etcd.range(options).await.unwrap().into_inner() }
    };
    let keys_only = single(epb::RangeRequest {
        key: b"text".to_vec(),
        keys_only: true,
        ..Default::default()
    })
    .await;
    assert_eq!((keys_only.count, keys_only.kvs.len()), (1, 1));
    assert!(keys_only.kvs[0].value.is_empty());
    assert_eq!(keys_only.kvs[0].mod_revision, 3);
    let count_only = single(epb::RangeRequest {
        key: b"text".to_vec(),
        count_only: true,
        ..Default::default()
    })
    .await;
    assert_eq!((count_only.count, count_only.kvs.len()), (1, 0));
    let missing = single(epb::RangeRequest {
        key: b"absent".to_vec(),
        serializable: true,
        ..Default::default()
    })
    .await;
    assert_eq!((missing.count, missing.kvs.len()), (0, 0));
    assert_eq!(missing.header.unwrap().revision, 3);
    // A native get of a value that is not UTF-8 is refused, not mangled.
    let err = native
        .get(pb::GetRequest { key: "bin".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("not UTF-8"), "{}", err.message());
    // etcd's refusals.
    let empty = etcd.put(epb::PutRequest::default()).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert_eq!(empty.message(), "etcdserver: key is not provided");
    let large = etcd
        .put(epb::PutRequest {
            key: b"k".to_vec(),
            value: vec![0; 1 << 20],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(large.message(), "etcdserver: request is too large");
    let lease = etcd
        .put(epb::PutRequest {
            key: b"k".to_vec(),
            lease: 5,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(lease.code(), tonic::Code::NotFound);
    let future = etcd
        .range(epb::RangeRequest {
            key: b"text".to_vec(),
            revision: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        future.message(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    cluster.shutdown().await;
}
