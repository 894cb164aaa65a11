//! Prometheus metrics and the node's HTTP endpoint: `GET /metrics` (the
//! Prometheus text format) and `GET /health` (readiness, for probes and load
//! balancers that speak HTTP rather than gRPC health).
//!
//! The recorder is process-wide ([`install_recorder`], called by `raft-node
//! run` when a metrics address is configured); the endpoint is the node's
//! ([`serve`], started by [`crate::server::start`] on that address). Without
//! an installed recorder (tests, the bench, the in-process cluster) the
//! `metrics` macros are no-ops and `/metrics` answers 404; `/health` works
//! either way.
//!
//! `/health` answers 200 when the node is ready (a known leader heard
//! recently, or a leader with a quorum heard recently: [`crate::readiness`])
//! and 503 otherwise, with a one-line JSON body saying why:
//! `{"reason":"no leader known in term 3","serving":false,"status":"NOT_SERVING"}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::readiness::Readiness;

pub const TERM: &str = "raft_term";
/// 0 follower, 1 candidate, 2 leader, 3 pre-candidate.
pub const ROLE: &str = "raft_role";
pub const COMMIT_INDEX: &str = "raft_commit_index";
pub const APPLIED_INDEX: &str = "raft_applied_index";
/// Committed but not yet applied entries.
pub const APPLY_LAG: &str = "raft_apply_lag";
pub const LAST_LOG_INDEX: &str = "raft_last_log_index";
pub const SNAPSHOT_INDEX: &str = "raft_snapshot_index";
/// Client writes accepted by this node as leader; `rate()` gives proposals/s.
pub const PROPOSALS: &str = "raft_proposals_total";
/// Time of one durable write (one append, one fdatasync) per batch.
pub const FSYNC_SECONDS: &str = "raft_fsync_seconds";
/// At the leader: from a client write's acceptance by the core to its
/// answer, once its entry committed and applied (the write's time inside the
/// node: replication, the durable writes, the commit; not the client's
/// network or its gRPC handling).
pub const PROPOSAL_SECONDS: &str = "raft_proposal_seconds";
/// At the leader, per follower (label `peer`): an AppendEntries request's
/// round trip, the follower's durable write included; requests that fail
/// or time out are not counted.
pub const APPEND_ROUND_TRIP_SECONDS: &str = "raft_append_round_trip_seconds";
pub const SNAPSHOT_BYTES: &str = "raft_snapshot_bytes";
pub const SNAPSHOT_SECONDS: &str = "raft_snapshot_write_seconds";
/// 1 when the node is ready to serve clients (what `/health` and gRPC health say).
pub const READY: &str = "raft_ready";
/// Voters and learners of the configuration in force.
pub const VOTERS: &str = "raft_voters";
pub const LEARNERS: &str = "raft_learners";
/// At the leader, per learner (label `learner`): entries it lags behind the
/// leader's last index.
pub const LEARNER_LAG: &str = "raft_learner_lag_entries";
/// Core events this node recorded in its trace (`--trace-dir`), counted as
/// each batch reaches the kernel: what an online validator
/// (`raft-interop validate --follow`) has to keep up with.
pub const TRACE_EVENTS: &str = "raft_trace_events_total";
/// Bytes written to the trace's segments (compressed, for the compact form).
pub const TRACE_BYTES: &str = "raft_trace_bytes_total";

/// The event loop's per-batch gauges and its fsync histogram, looked up in
/// the recorder once, when the loop is built. The macros (`gauge!(NAME)`)
/// hash the name and look it up in the registry on every call; ten of them
/// per batch were 1.5-2.4 % of a node's CPU under load (issue 17's
/// profiles, `metrics_util::registry` and its allocations). Handles taken
/// before a recorder is installed are no-ops, as the macros would be: the
/// node installs it before building its loop (crate::cli::run_node).
#[derive(Clone)]
pub(crate) struct LoopMetrics {
    pub term: metrics::Gauge,
    pub role: metrics::Gauge,
    pub commit_index: metrics::Gauge,
    pub applied_index: metrics::Gauge,
    pub apply_lag: metrics::Gauge,
    pub last_log_index: metrics::Gauge,
    pub snapshot_index: metrics::Gauge,
    pub voters: metrics::Gauge,
    pub learners: metrics::Gauge,
    pub ready: metrics::Gauge,
    pub fsync_seconds: metrics::Histogram,
    pub proposal_seconds: metrics::Histogram,
}

impl LoopMetrics {
    /// The handles from the process's recorder (no-ops without one).
    pub(crate) fn registered() -> LoopMetrics {
        LoopMetrics {
            term: metrics::gauge!(TERM),
            role: metrics::gauge!(ROLE),
            commit_index: metrics::gauge!(COMMIT_INDEX),
            applied_index: metrics::gauge!(APPLIED_INDEX),
            apply_lag: metrics::gauge!(APPLY_LAG),
            last_log_index: metrics::gauge!(LAST_LOG_INDEX),
            snapshot_index: metrics::gauge!(SNAPSHOT_INDEX),
            voters: metrics::gauge!(VOTERS),
            learners: metrics::gauge!(LEARNERS),
            ready: metrics::gauge!(READY),
            fsync_seconds: metrics::histogram!(FSYNC_SECONDS),
            proposal_seconds: metrics::histogram!(PROPOSAL_SECONDS),
        }
    }
}

/// How often histograms are drained into their summaries when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);
/// A client must send its request's headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The process's recorder, once installed.
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls do
/// nothing). Every series carries the labels `cluster` and `node`, so that
/// one Prometheus scraping many nodes (of many clusters) tells them apart
/// without relabelling. Must run inside a tokio runtime: it starts the
/// upkeep task.
pub fn install_recorder(cluster_id: &str, node: u64) -> anyhow::Result<()> {
    if RECORDER.get().is_some() {
        return Ok(());
    }
    // Histograms with buckets (not summaries): they add up across nodes
    // and over time, and their _sum and _count give means (the lab's
    // comparison reads them).
    let latency_buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    let mut builder = PrometheusBuilder::new()
        .add_global_label("cluster", cluster_id)
        .add_global_label("node", node.to_string());
    for name in [FSYNC_SECONDS, PROPOSAL_SECONDS, APPEND_ROUND_TRIP_SECONDS] {
        builder = builder.set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(name.to_owned()),
            &latency_buckets,
        )?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|err| anyhow::anyhow!("cannot install the metrics recorder: {err}"))?;
    let _ = RECORDER.set(handle.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP).await;
            handle.run_upkeep();
        }
    });
    describe();
    Ok(())
}

/// The HELP line of every metric the node exports.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(TERM, "The node's current Raft term");
    describe_gauge!(ROLE, "0 follower, 1 candidate, 2 leader, 3 pre-candidate");
    describe_gauge!(COMMIT_INDEX, "Highest log index the node knows committed");
    describe_gauge!(
        APPLIED_INDEX,
        "Highest log index applied to the node's key-value state machine"
    );
    describe_gauge!(APPLY_LAG, "Committed entries not yet applied");
    describe_gauge!(LAST_LOG_INDEX, "Index of the last entry in the node's log");
    describe_gauge!(
        SNAPSHOT_INDEX,
        "Last log index the node's latest snapshot covers (the log is compacted up to it)"
    );
    describe_counter!(
        PROPOSALS,
        "Client writes accepted by this node as leader; rate() gives proposals per second"
    );
    describe_counter!(
        TRACE_EVENTS,
        "Core events recorded in the node's trace and handed to the kernel"
    );
    describe_counter!(
        TRACE_BYTES,
        Unit::Bytes,
        "Bytes written to the node's trace segments"
    );
    describe_histogram!(
        FSYNC_SECONDS,
        Unit::Seconds,
        "Time of one durable write per batch (one append, one fdatasync)"
    );
    describe_histogram!(
        PROPOSAL_SECONDS,
        Unit::Seconds,
        "At the leader: a client write's time from acceptance to its answer (replicated, durable, committed, applied)"
    );
    describe_histogram!(
        APPEND_ROUND_TRIP_SECONDS,
        Unit::Seconds,
        "At the leader, per follower: an AppendEntries round trip, the follower's durable write included"
    );
    describe_gauge!(
        SNAPSHOT_BYTES,
        Unit::Bytes,
        "Size of the latest snapshot the node wrote"
    );
    describe_gauge!(
        SNAPSHOT_SECONDS,
        Unit::Seconds,
        "Time to serialize and write (with fsync) the latest snapshot"
    );
    describe_gauge!(
        VOTERS,
        "Voters of the configuration in force (of both halves while a change is joint)"
    );
    describe_gauge!(
        LEARNERS,
        "Learners (non-voting members) of the configuration in force"
    );
    describe_gauge!(
        LEARNER_LAG,
        "At the leader: entries a learner lags behind the leader's last index (label learner)"
    );
    describe_counter!(
        crate::incarnation::REFUSALS,
        "Peer messages refused or dropped because the sender or receiver was not the incarnation the address book records for its id (label peer)"
    );
    describe_gauge!(
        READY,
        "1 when ready to serve clients (a leader heard recently, or as leader a quorum): what /health says"
    );
}

/// Binds the HTTP endpoint's port. Fails clearly if it is taken.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen for metrics and /health on {address}: {err}"))
}

/// Serves `/metrics` and `/health` on `listener` until the task is aborted.
/// `readiness` is the event loop's; once the loop has stopped, `/health`
/// says 503.
pub fn serve(listener: TcpListener, readiness: watch::Receiver<Readiness>) -> JoinHandle<()> {
    if let Ok(address) = listener.local_addr() {
        info!(%address, "serving /metrics and /health over HTTP");
    }
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // E.g. out of file descriptors: back off, don't spin.
                    debug!(%err, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let readiness = readiness.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let response = respond(&request, &readiness);
                    async move { Ok::<_, Infallible>(response) }
                });
                // One request per connection: a probe's connection never
                // outlives the node's endpoint by much.
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(err) = connection.await {
                    debug!(%err, "metrics endpoint: connection failed");
                }
            });
        }
    })
}

/// The answer to one request.
fn respond(
    request: &Request<Incoming>,
    readiness: &watch::Receiver<Readiness>,
) -> Response<Full<Bytes>> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
    }
    match request.uri().path() {
        "/health" => health(readiness),
        "/metrics" => match RECORDER.get() {
            Some(handle) => {
                handle.run_upkeep();
                let mut response = text(StatusCode::OK, handle.render());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            None => text(
                StatusCode::NOT_FOUND,
                "no metrics recorder is installed in this process\n".into(),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: this endpoint serves /metrics and /health\n".into(),
        ),
    }
}

/// `/health`: 200 when ready, 503 otherwise, with the reason.
fn health(readiness: &watch::Receiver<Readiness>) -> Response<Full<Bytes>> {
    // The event loop owns the sender: gone, the node has stopped.
    let stopped = readiness.has_changed().is_err();
    let (serving, reason) = if stopped {
        (false, "the node has stopped".to_owned())
    } else {
        let now = readiness.borrow();
        (now.serving, now.reason.to_string())
    };
    let body = serde_json::json!({
        "serving": serving,
        "status": if serving { "SERVING" } else { "NOT_SERVING" },
        "reason": reason,
    });
    let status = if serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = text(status, format!("{body}\n"));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
