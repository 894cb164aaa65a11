//! The floors no replicated write or read can beat on this machine: one
//! 4 KiB append + fdatasync on the data disk, and one gRPC round trip over
//! loopback through the same client stack the load generator uses.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Floors {
    /// Median and p99 of 200 appends of 4 KiB, each followed by fdatasync.
    pub fsync_4k_p50_ms: f64,
    pub fsync_4k_p99_ms: f64,
    /// Median and p99 of 2,000 sequential unary calls to an in-process server.
    pub grpc_rtt_p50_ms: f64,
    pub grpc_rtt_p99_ms: f64,
}

fn quantile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort_unstable();
    let at = ((samples.len().saturating_sub(1)) as f64 * q).round() as usize;
    samples
        .get(at)
        .map_or(0.0, |sample| sample.as_secs_f64() * 1e3)
}

/// Appends 4 KiB and fdatasyncs, `rounds` times, in a scratch file in `dir`.
pub fn fsync_floor(dir: &Path, rounds: usize) -> anyhow::Result<(f64, f64)> {
    let path = dir.join("fsync-floor.tmp");
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block = vec![0xA5u8; 4096];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing {}", path.display()))?;
        samples.push(started.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok((quantile(&mut samples, 0.5), quantile(&mut samples, 0.99)))
}

/// Sequential health checks against a tonic server in this process.
pub async fn grpc_floor(rounds: usize) -> anyhow::Result<(f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    let channel = Endpoint::from_shared(format!("http://{address}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let started = Instant::now();
        client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        // The first tenth warms the connection up.
        if i >= rounds / 10 {
            samples.push(started.elapsed());
        }
    }
    server.abort();
    Ok((quantile(&mut samples, 0.5), quantile(&mut samples, 0.99)))
}

pub async fn measure(data_dir: &Path) -> anyhow::Result<Floors> {
    let dir = data_dir.to_owned();
    let (fsync_4k_p50_ms, fsync_4k_p99_ms) =
        tokio::task::spawn_blocking(move || fsync_floor(&dir, 200)).await??;
    let (grpc_rtt_p50_ms, grpc_rtt_p99_ms) = grpc_floor(2000).await?;
    Ok(Floors {
        fsync_4k_p50_ms,
        fsync_4k_p99_ms,
        grpc_rtt_p50_ms,
        grpc_rtt_p99_ms,
    })
}
