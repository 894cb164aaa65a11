//! The client's retries when the connection breaks under a call.
//!
//! A node stopped while serving a call closes its HTTP/2 connection with a
//! GOAWAY; tonic reports that as `Internal` ("h2 protocol error"), a code a
//! node also sends for its own failures. The client must tell the two apart:
//! a broken connection is retried on another node (every write carries its
//! client id and sequence number, so a retry applies at most once), a node's
//! `Internal` answer is returned.

use std::time::Duration;

use raft_node::client::{ClientError, KvClient};
use tokio::net::{TcpListener, TcpStream};

/// A bare HTTP/2 server on loopback: `serve` runs on each connection, after
/// the handshake. Returns its address. Bounded: the client makes a few
/// attempts per second for 600 ms.
async fn h2_server<F, Fut>(serve: F) -> String
where
    F: Fn(h2::server::Connection<TcpStream, bytes::Bytes>) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        for _ in 0..200 {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(connection) = h2::server::handshake(socket).await {
                    serve(connection).await;
                }
            });
        }
    });
    address
}

/// A server that closes each connection with GOAWAY(NO_ERROR) once a call
/// is on it.
async fn closes_every_call() -> String {
    h2_server(|mut connection| async move {
        // Let the client's call arrive unread, then go away as a stopping
        // node's server does: GOAWAY(NO_ERROR) naming no stream as
        // processed, so the call was never served.
        tokio::time::sleep(Duration::from_millis(20)).await;
        connection.abrupt_shutdown(h2::Reason::NO_ERROR);
        let _ = std::future::poll_fn(|cx| connection.poll_closed(cx)).await;
    })
    .await
}

#[tokio::test]
async fn a_connection_closed_under_a_write_is_retried_not_returned() {
    let address = closes_every_call().await;
    let mut client = KvClient::new(vec![address]).unwrap();
    client.op_timeout = Duration::from_millis(600);
    client.rpc_timeout = Duration::from_millis(200);
    match client.put("k", "v").await {
        Err(ClientError::Timeout { last, .. }) => {
            assert!(last.contains("h2 protocol error"), "{last}");
        }
        other => panic!("expected retries until the timeout, got {other:?}"),
    }
}

/// A server that answers every call with a node's own `Internal` error.
async fn answers_internal() -> String {
    h2_server(|mut connection| async move {
        while let Some(Ok((_, mut respond))) = connection.accept().await {
            // gRPC's trailers-only answer: the status in the headers.
            let answer = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "13")
                .header("grpc-message", "the node failed")
                .body(())
                .unwrap();
            let _ = respond.send_response(answer, true);
        }
    })
    .await
}

#[tokio::test]
async fn a_nodes_own_internal_error_is_returned_not_retried() {
    let address = answers_internal().await;
    let mut client = KvClient::new(vec![address]).unwrap();
    client.op_timeout = Duration::from_millis(600);
    match client.put("k", "v").await {
        Err(ClientError::Rejected(status)) => {
            assert_eq!(status.code(), tonic::Code::Internal);
            assert_eq!(status.message(), "the node failed");
        }
        other => panic!("expected the node's answer, got {other:?}"),
    }
}
