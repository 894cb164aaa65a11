//! etcd's v3 API driven by a Rust etcd client nobody here wrote
//! (`etcdv3client` from crates.io, which ships its generated code and its
//! own tonic): its convenience calls, its builders and transactions, and its
//! classification of etcd's errors, which it does by exact gRPC code and
//! message — so this test fails if the node's errors drift from etcd's.

use etcdv3client::pb;
use etcdv3client::pb::compare::{CompareResult, TargetUnion};
use etcdv3client::{ErrKind, EtcdClient, KvClient};

mod common;
use common::WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crates_io_etcd_client_reads_writes_and_understands_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::cluster(&dir).await;
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    // The client talks to a follower: its writes are forwarded to the
    // leader and its reads are linearizable there too.
    let endpoint = format!("http://{}", cluster.address(follower));
    let mut client = EtcdClient::new(vec![endpoint], None)
        .await
        .expect("the client connects");

    client.put("app/a", "1").await.expect("put");
    client
        .put("app/b", vec![0xff, 0x00])
        .await
        .expect("put bytes");
    client.put("other", "x").await.expect("put");
    assert_eq!(client.get_string("app/a").await.unwrap(), "1");
    assert_eq!(client.get("app/b").await.unwrap(), vec![0xff, 0x00]);
    let prefixed = client.get_with_prefix("app/").await.unwrap();
    let keys: Vec<&[u8]> = prefixed.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, [b"app/a".as_slice(), b"app/b".as_slice()]);
    assert_eq!(client.all().await.unwrap().len(), 3);

    client.delete("other").await.expect("delete");
    let missing = client.get("other").await.unwrap_err();
    assert!(missing.is_key_not_found(), "{missing:?}");

    // A transaction through the client's builders: compare-and-swap on the
    // value, then on a version that no longer holds.
    let mut kv = KvClient::new(client.service());
    let swapped = kv
        .do_txn()
        .with_if(vec![pb::Compare::new(
            "app/a",
            CompareResult::Equal,
            TargetUnion::Value(b"1".to_vec()),
        )])
        .with_then(vec![pb::PutRequest::new("app/a", "2").into()])
        .with_else(vec![pb::RangeRequest::new("app/a").into()])
        .await
        .expect("txn");
    assert!(swapped.succeeded);
    let refused = kv
        .do_txn()
        .with_if(vec![pb::Compare::new(
            "app/a",
            CompareResult::Equal,
            TargetUnion::Version(1),
        )])
        .with_then(vec![pb::DeleteRangeRequest::new("app/a").into()])
        .with_else(vec![pb::RangeRequest::new("app/a").into()])
        .await
        .expect("txn");
    assert!(!refused.succeeded, "app/a is at version 2");
    match refused.responses[0].response.as_ref() {
        Some(pb::response_op::Response::ResponseRange(range)) => {
            assert_eq!(range.kvs[0].value, b"2");
            assert_eq!(range.kvs[0].version, 2);
        }
        other => panic!("expected the else branch's range, got {other:?}"),
    }
    let put = kv
        .do_put("app/a", "3")
        .with_prev_kv(true)
        .await
        .expect("put with prev_kv");
    assert_eq!(put.prev_kv.expect("prev_kv").value, b"2");
    let revision = put.header.expect("a header").revision;

    // etcd's errors, as this client classifies them (by code and message).
    let kind = |err: etcdv3client::Error| err.kind();
    assert_eq!(
        kind(client.put("", "v").await.unwrap_err()),
        ErrKind::EmptyKey
    );
    assert_eq!(
        kind(client.put("big", vec![0u8; 2 << 20]).await.unwrap_err()),
        ErrKind::RequestTooLarge
    );
    assert_eq!(
        kind(
            kv.do_range("app/a")
                .with_revision(revision + 100)
                .await
                .unwrap_err()
        ),
        ErrKind::FutureRev
    );
    // The node keeps no history: every past revision is compacted.
    assert_eq!(
        kind(kv.do_range("app/a").with_revision(1).await.unwrap_err()),
        ErrKind::Compacted
    );
    assert_eq!(
        kind(kv.do_put("k", "v").with_lease(7).await.unwrap_err()),
        ErrKind::LeaseNotFound
    );
    // Nothing was written by the refused requests.
    assert_eq!(client.all().await.unwrap().len(), 2);

    cluster.shutdown().await;
}
