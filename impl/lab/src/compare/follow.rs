//! `raft-lab compare --trace --follow`: the online validator
//! (`raft-interop validate --follow`) beside the traced cluster, checking its
//! traces through the model while the load runs, and after each of that
//! cluster's cells, how far behind it was and how long it took to catch up.
//! The question it answers (issue 22): does online conformance checking keep
//! pace with a cluster under the comparison's heaviest load?
//!
//! The validator runs as its own process, as an operator would run it:
//! `raft-lab follow`, the same code as `raft-interop validate --follow`
//! (`raft_interop::follow::run_command`) built into the binary the nodes
//! run from. Its CPU is read from /proc like the nodes'. It shares the
//! machine, so with `--follow` the traced cluster's figures include what
//! validating took from it.
//!
//! Written events are the nodes' own count (`raft_trace_events_total`, a
//! batch's events added when it reaches the kernel), validated events the
//! validator's (`raft_trace_follow_events_validated` in its metrics file,
//! rewritten every [`PROGRESS`]): the two count the same lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::fsyncs;
use super::load::{Servers, cpu_seconds};

/// How often the validator rewrites its metrics file: the resolution of the
/// catch-up time.
const PROGRESS: Duration = Duration::from_millis(100);
/// A validator that has not caught up this long after the load stopped has
/// fallen behind for good: the cell says so rather than waiting on.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);
/// The nodes' count of the events they wrote.
const WRITTEN: &str = "raft_trace_events_total";
/// The validator's count of the events it validated.
const VALIDATED: &str = "raft_trace_follow_events_validated";

/// The running validator.
pub struct Follower {
    child: Child,
    metrics: PathBuf,
    log: PathBuf,
}

/// What following one cell of the traced cluster measured.
#[derive(Clone, Debug, Serialize)]
pub struct FollowCell {
    /// The cell, e.g. `put x256`, and its round (from 1).
    pub workload: String,
    pub round: usize,
    /// Events the nodes wrote from the cell's start (warm-up included) to
    /// its end.
    pub events_written: u64,
    pub events_per_sec_written: f64,
    /// Events written but not yet validated when the load stopped.
    pub behind_at_end: u64,
    /// From the load's end until every event written by then was validated
    /// (None: not within a minute).
    pub catch_up_ms: Option<f64>,
    /// The validator's CPU seconds over the cell and its catch-up.
    pub cpu_seconds: Option<f64>,
}

impl Follower {
    /// Starts `LAB_BINARY follow TRACES`, its metrics file and log in `dir`.
    pub fn start(lab_binary: &Path, traces: &Path, dir: &Path) -> anyhow::Result<Follower> {
        let metrics = dir.join("follow.prom");
        let log = dir.join("follow.log");
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(lab_binary)
            .arg("follow")
            .arg(traces)
            .args(["--progress", &PROGRESS.as_secs_f64().to_string()])
            .arg("--metrics-file")
            .arg(&metrics)
            // Generous: a loaded machine may hold a sender's lines back.
            .args(["--grace", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", lab_binary.display()))?;
        println!(
            "follow: validating {} online (log {})",
            traces.display(),
            log.display()
        );
        Ok(Follower {
            child,
            metrics,
            log,
        })
    }

    /// Fails with the validator's last lines if it has stopped: it stops
    /// only at a violation or an error, both of which end the comparison.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            anyhow::bail!(
                "the online validator stopped ({status}): {}\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// Events validated so far, from its metrics file (None before its
    /// first report).
    fn validated(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.metrics).ok()?;
        fsyncs::sum_of(&text, VALIDATED)
    }

    fn cpu(&self) -> Option<f64> {
        cpu_seconds(&[self.child.id()])
    }

    /// What to take before a cell of the traced cluster.
    pub async fn before_cell(&mut self, servers: &Servers) -> anyhow::Result<CellStart> {
        self.check_running()?;
        Ok(CellStart {
            written: fsyncs::total(&servers.metrics, WRITTEN).await,
            cpu: self.cpu(),
            at: Instant::now(),
        })
    }

    /// After the cell's load stopped: how far behind the validator is, and
    /// how long it takes to validate every event written by now.
    pub async fn after_cell(
        &mut self,
        start: CellStart,
        servers: &Servers,
        workload: String,
        round: usize,
    ) -> anyhow::Result<FollowCell> {
        let ended = Instant::now();
        let written = fsyncs::total(&servers.metrics, WRITTEN)
            .await
            .context("the traced nodes do not report raft_trace_events_total")?;
        let behind_at_end = written.saturating_sub(self.validated().unwrap_or(0));
        let catch_up_ms = loop {
            self.check_running()?;
            if self
                .validated()
                .is_some_and(|validated| validated >= written)
            {
                break Some(ended.elapsed().as_secs_f64() * 1e3);
            }
            if ended.elapsed() > CATCH_UP_LIMIT {
                break None;
            }
            tokio::time::sleep(PROGRESS / 4).await;
        };
        let events_written = written.saturating_sub(start.written.unwrap_or(0));
        Ok(FollowCell {
            workload,
            round,
            events_written,
            events_per_sec_written: events_written as f64
                / ended.duration_since(start.at).as_secs_f64().max(1e-9),
            behind_at_end,
            catch_up_ms,
            cpu_seconds: start.cpu.zip(self.cpu()).map(|(a, b)| b - a),
        })
    }

    /// Stops the validator: it was valid up to here (a violation would have
    /// ended it, and [`Follower::check_running`] the comparison).
    pub fn stop(mut self) -> anyhow::Result<Option<u64>> {
        self.check_running()?;
        let validated = self.validated();
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(validated)
    }
}

/// What a cell's follow figures start from.
pub struct CellStart {
    written: Option<u64>,
    cpu: Option<f64>,
    at: Instant,
}

impl std::fmt::Display for FollowCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "follow: {} events written ({:.0}/s), {} not yet validated when the load stopped, ",
            self.events_written, self.events_per_sec_written, self.behind_at_end
        )?;
        match self.catch_up_ms {
            Some(ms) => write!(f, "all validated {ms:.0} ms later")?,
            None => write!(f, "NOT caught up within {} s", CATCH_UP_LIMIT.as_secs())?,
        }
        if let Some(cpu) = self.cpu_seconds
            && self.events_written > 0
        {
            write!(
                f,
                "; validator CPU {cpu:.2} s ({:.1} µs per event)",
                cpu * 1e6 / self.events_written as f64
            )?;
        }
        Ok(())
    }
}

/// The run's online validation in a few lines: per workload, the worst
/// cell (most events behind when the load stopped, longest catch-up) and
/// the validator's CPU per event.
pub fn summary(cells: &[FollowCell], validated: u64) -> String {
    let mut out = format!(
        "\nonline validation (`raft-lab follow` beside the traced cluster): {validated} events validated, none invalid\n"
    );
    let mut workloads: Vec<&str> = Vec::new();
    for cell in cells {
        if !workloads.contains(&cell.workload.as_str()) {
            workloads.push(&cell.workload);
        }
    }
    for workload in workloads {
        let of: Vec<&FollowCell> = cells.iter().filter(|c| c.workload == workload).collect();
        let written: u64 = of.iter().map(|c| c.events_written).sum();
        let rate = of
            .iter()
            .map(|c| c.events_per_sec_written)
            .fold(0.0, f64::max);
        let behind = of.iter().map(|c| c.behind_at_end).max().unwrap_or(0);
        let catch_up = if of.iter().all(|c| c.catch_up_ms.is_some()) {
            let worst = of.iter().filter_map(|c| c.catch_up_ms).fold(0.0, f64::max);
            format!("caught up within {worst:.0} ms of the load's end")
        } else {
            format!(
                "NOT caught up within {} s in some round",
                CATCH_UP_LIMIT.as_secs()
            )
        };
        let cpu: Option<f64> = of.iter().map(|c| c.cpu_seconds).sum();
        let cpu = cpu.filter(|_| written > 0).map_or_else(String::new, |cpu| {
            format!(
                ", validator CPU {:.1} µs per event",
                cpu * 1e6 / written as f64
            )
        });
        out.push_str(&format!(
            "  {workload}: {written} events in {} rounds (up to {rate:.0}/s written), at most {behind} behind when the load stopped, {catch_up}{cpu}\n",
            of.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(round: usize, written: u64, behind: u64, catch_up_ms: Option<f64>) -> FollowCell {
        FollowCell {
            workload: "put x256".to_owned(),
            round,
            events_written: written,
            events_per_sec_written: written as f64 / 6.0,
            behind_at_end: behind,
            catch_up_ms,
            cpu_seconds: Some(written as f64 * 20e-6),
        }
    }

    /// The summary reports the worst round, and says so when a round never
    /// caught up.
    #[test]
    fn the_summary_names_the_worst_round() {
        let kept_up = [
            cell(1, 60_000, 900, Some(120.0)),
            cell(2, 66_000, 2_000, Some(310.0)),
        ];
        let text = summary(&kept_up, 130_000);
        assert!(text.contains("130000 events validated"), "{text}");
        assert!(
            text.contains("put x256: 126000 events in 2 rounds (up to 11000/s written), at most 2000 behind when the load stopped, caught up within 310 ms"),
            "{text}"
        );
        assert!(text.contains("validator CPU 20.0 µs per event"), "{text}");
        let fell_behind = [
            cell(1, 60_000, 900, Some(120.0)),
            cell(2, 66_000, 50_000, None),
        ];
        let text = summary(&fell_behind, 80_000);
        assert!(text.contains("NOT caught up within 60 s"), "{text}");
        assert!(
            cell(2, 66_000, 50_000, None)
                .to_string()
                .contains("NOT caught up")
        );
    }
}
