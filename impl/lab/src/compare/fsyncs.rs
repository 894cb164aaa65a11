//! Durable writes counted from the nodes' own Prometheus metrics: how many
//! fsyncs a cell cost the whole cluster, hence how many client writes each
//! fsync carried (group commit), and how close the write rate comes to
//! what the disk allows at that batching.
//!
//! Both systems count one sample per synchronous write to their log:
//! ours `raft_fsync_seconds` (one per durable write of a batch: the append
//! and its fdatasync, term and vote changes included), etcd
//! `etcd_disk_wal_fsync_duration_seconds` (one per WAL sync, hard-state
//! changes included). Each is a histogram; its `_count` is the number of
//! syncs since the process started, so a cell's syncs are the difference of
//! two scrapes, summed over the nodes.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::load::System;

/// A scrape must answer within this time; else the cell has no count.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// A metrics page larger than this is refused (ours is ~10 KB, etcd's ~200 KB).
const MAX_PAGE: u64 = 8 << 20;

/// The histogram whose `_count` is `system`'s number of log syncs.
pub fn metric(system: System) -> &'static str {
    match system {
        System::Ours | System::OursTraced => "raft_fsync_seconds_count",
        System::Etcd => "etcd_disk_wal_fsync_duration_seconds_count",
    }
}

/// What a cell reads from the nodes' metrics before and after it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Log syncs of all the nodes (None if any node did not report them:
    /// a partial sum would understate).
    pub fsyncs: Option<u64>,
    /// Ours only: `raft_proposal_seconds` (a write's time inside the
    /// leader, acceptance to answer) and `raft_append_round_trip_seconds`
    /// (AppendEntries round trips, the follower's write included), each
    /// as (sum of seconds, count), over all nodes.
    pub proposals: Option<(f64, f64)>,
    pub append_round_trips: Option<(f64, f64)>,
}

impl Counters {
    /// What happened between `self` (before) and `after`.
    pub fn until(&self, after: &Counters) -> Counters {
        let pair = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| {
            a.zip(b).map(|((s0, c0), (s1, c1))| (s1 - s0, c1 - c0))
        };
        Counters {
            fsyncs: self
                .fsyncs
                .zip(after.fsyncs)
                .map(|(before, after)| after.saturating_sub(before)),
            proposals: pair(self.proposals, after.proposals),
            append_round_trips: pair(self.append_round_trips, after.append_round_trips),
        }
    }
}

/// The mean of a (sum, count) pair in milliseconds, if anything was counted.
pub fn mean_ms(pair: Option<(f64, f64)>) -> Option<f64> {
    pair.filter(|(_, count)| *count > 0.0)
        .map(|(sum, count)| sum / count * 1e3)
}

/// The counters of all the nodes whose metrics are served at `addresses`
/// (HOST:PORT, path `/metrics`), one scrape each.
pub async fn counters(system: System, addresses: &[String]) -> Counters {
    if addresses.is_empty() {
        return Counters::default();
    }
    let mut pages = Vec::new();
    for address in addresses {
        match scrape(address).await {
            Ok(page) => pages.push(page),
            Err(err) => {
                tracing::warn!("metrics of {address}: {err:#}");
                return Counters::default();
            }
        }
    }
    let sum = |name: &str| -> Option<f64> {
        pages
            .iter()
            .map(|page| sum_f64_of(page, name))
            .sum::<Option<f64>>()
    };
    let pair = |name: &str| {
        if system == System::Etcd {
            return None;
        }
        sum(&format!("{name}_sum")).zip(sum(&format!("{name}_count")))
    };
    Counters {
        fsyncs: sum(metric(system)).map(|total| total as u64),
        proposals: pair("raft_proposal_seconds"),
        append_round_trips: pair("raft_append_round_trip_seconds"),
    }
}

/// The sum over the nodes serving metrics at `addresses` of the series
/// `name` (all its label sets). None if any node does not answer or does
/// not report it.
pub async fn total(addresses: &[String], name: &str) -> Option<u64> {
    if addresses.is_empty() {
        return None;
    }
    let mut total = 0;
    for address in addresses {
        let page = match scrape(address).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!("metrics of {address}: {err:#}");
                return None;
            }
        };
        total += sum_of(&page, name)?;
    }
    Some(total)
}

/// `GET /metrics` over HTTP/1.0: the server closes the connection after the
/// body, and may not send it chunked, so reading to the end is the body.
async fn scrape(address: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = TcpStream::connect(address).await?;
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut bytes = Vec::new();
        (&mut stream).take(MAX_PAGE).read_to_end(&mut bytes).await?;
        anyhow::Ok(bytes)
    };
    let bytes = tokio::time::timeout(SCRAPE_TIMEOUT, fetch)
        .await
        .context("no answer in time")??;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("not an HTTP response")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        anyhow::bail!("answered {status:?}");
    }
    Ok(body.to_owned())
}

/// The sum of every sample of `name` in a Prometheus text page (a series
/// per label set: summed), or None if the page has none.
pub fn sum_of(page: &str, name: &str) -> Option<u64> {
    sum_f64_of(page, name).map(|total| total as u64)
}

/// [`sum_of`], unrounded: for sums of seconds.
pub fn sum_f64_of(page: &str, name: &str) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name{labels} value` or `name value`; not a longer name.
        let value = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.rsplit_once('}').map(|(_, value)| value)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        let Some(value) = value.and_then(|v| v.split_whitespace().next()) else {
            continue;
        };
        if let Ok(value) = value.parse::<f64>() {
            found = true;
            total += value;
        }
    }
    found.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_summed_over_label_sets_and_not_confused_with_longer_names() {
        let page = "\
# TYPE raft_fsync_seconds histogram
raft_fsync_seconds_bucket{cluster=\"c\",node=\"1\",le=\"0.001\"} 7
raft_fsync_seconds_count{cluster=\"c\",node=\"1\"} 120
raft_fsync_seconds_count_total 999
raft_fsync_seconds_count{cluster=\"c\",node=\"2\"} 30
raft_fsync_seconds_sum{cluster=\"c\",node=\"1\"} 0.5
";
        assert_eq!(sum_of(page, "raft_fsync_seconds_count"), Some(150));
        let etcd = "etcd_disk_wal_fsync_duration_seconds_count 4.2e+01\n";
        assert_eq!(
            sum_of(etcd, "etcd_disk_wal_fsync_duration_seconds_count"),
            Some(42)
        );
        assert_eq!(sum_of("up 1\n", "raft_fsync_seconds_count"), None);
        assert_eq!(sum_f64_of(page, "raft_fsync_seconds_sum"), Some(0.5));
    }

    #[test]
    fn means_come_from_the_differences_of_sums_and_counts() {
        let before = Counters {
            fsyncs: Some(100),
            proposals: Some((1.0, 1000.0)),
            append_round_trips: None,
        };
        let after = Counters {
            fsyncs: Some(160),
            proposals: Some((4.0, 3000.0)),
            append_round_trips: Some((1.0, 10.0)),
        };
        let cell = before.until(&after);
        assert_eq!(cell.fsyncs, Some(60));
        assert_eq!(mean_ms(cell.proposals), Some(1.5));
        // Not read before: no mean rather than a wrong one.
        assert_eq!(mean_ms(cell.append_round_trips), None);
        assert_eq!(mean_ms(Some((0.0, 0.0))), None);
    }
}
