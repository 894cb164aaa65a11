//! How available the cluster stayed under the faults: the figures issue 16
//! asks a chaos run to report, so that liveness work (CheckQuorum, PreVote)
//! is measured, not hoped for.
//!
//! - **Time without a leader**: a monitor polls every node's status every
//!   [`POLL`]; a sample has a leader when the node leading the highest term
//!   any node reports says it is *ready* (it heard from a quorum within an
//!   election timeout, raft_node::readiness). A leader cut off from its
//!   majority still calls itself leader but cannot commit, so it does not
//!   count.
//! - **Leader changes**: how often that ready leader (term, node) changed,
//!   per minute of the run.
//! - **Longest write unavailability**: the longest stretch of the run in
//!   which no client write was acknowledged (from the history, so it is
//!   what clients saw).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_model::NodeId;
use serde::Serialize;

use super::history::{Micros, Operation};

/// How often the monitor samples the cluster.
pub const POLL: Duration = Duration::from_millis(50);

/// One sample: when, and the ready leader then (term, node), if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at: Duration,
    pub leader: Option<(u64, NodeId)>,
}

/// The run's availability figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Availability {
    pub samples: usize,
    pub without_leader: Duration,
    pub leader_changes: usize,
    pub leader_changes_per_minute: f64,
    pub longest_write_gap: Duration,
}

impl Availability {
    /// The figures of a run of `duration` from its samples and history.
    pub fn of(samples: &[Sample], history: &[Operation], duration: Duration) -> Availability {
        let mut without_leader = Duration::ZERO;
        for pair in samples.windows(2) {
            if pair[0].leader.is_none() {
                without_leader += pair[1].at.saturating_sub(pair[0].at);
            }
        }
        // A change is a new ready leader after another one (a gap between
        // the same leader's samples is not a change).
        let leaders: Vec<(u64, NodeId)> = samples.iter().filter_map(|s| s.leader).collect();
        let leader_changes = leaders.windows(2).filter(|w| w[0] != w[1]).count();
        let minutes = duration.as_secs_f64() / 60.0;
        Availability {
            samples: samples.len(),
            without_leader,
            leader_changes,
            leader_changes_per_minute: if minutes > 0.0 {
                leader_changes as f64 / minutes
            } else {
                0.0
            },
            longest_write_gap: longest_write_gap(history, duration),
        }
    }

    pub fn summary(&self, duration: Duration) -> String {
        format!(
            "availability: {:.2} s without a ready leader ({:.1} % of the run, {} samples), {} leader changes ({:.1}/min), longest stretch without an acknowledged write {:.2} s",
            self.without_leader.as_secs_f64(),
            100.0 * self.without_leader.as_secs_f64() / duration.as_secs_f64().max(f64::EPSILON),
            self.samples,
            self.leader_changes,
            self.leader_changes_per_minute,
            self.longest_write_gap.as_secs_f64()
        )
    }
}

/// The longest interval of `[0, duration]` containing no acknowledged
/// write's return.
pub fn longest_write_gap(history: &[Operation], duration: Duration) -> Duration {
    let end = duration.as_micros() as Micros;
    let mut acks: Vec<Micros> = history
        .iter()
        .filter(|op| op.acknowledged_write())
        .filter_map(|op| op.ret)
        .filter(|ret| *ret <= end)
        .collect();
    acks.sort_unstable();
    let mut previous = 0;
    let mut longest = 0;
    for ack in acks.into_iter().chain(std::iter::once(end)) {
        longest = longest.max(ack - previous);
        previous = ack;
    }
    Duration::from_micros(longest)
}

/// The ready leader of the highest term among `statuses` (node -> (term,
/// is leader, is ready)), if the node leading that term is ready.
pub fn ready_leader(statuses: &BTreeMap<NodeId, (u64, bool, bool)>) -> Option<(u64, NodeId)> {
    let top = statuses.values().map(|(term, _, _)| *term).max()?;
    statuses
        .iter()
        .find(|(_, (term, leader, ready))| *term == top && *leader && *ready)
        .map(|(id, (term, _, _))| (*term, *id))
}

/// Polls `addresses` every [`POLL`] until `deadline`; the samples, timed
/// from `started`.
pub async fn monitor(
    endpoints: super::workload::Endpoints,
    started: Instant,
    deadline: Instant,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        // The members of the moment (membership faults change them).
        let addresses = endpoints.snapshot().1;
        let mut statuses = BTreeMap::new();
        for (id, address) in &addresses {
            if let Some(status) = super::faults::status(address).await {
                statuses.insert(*id, (status.term, status.role == "leader", status.ready));
            }
        }
        samples.push(Sample {
            at: started.elapsed(),
            leader: ready_leader(&statuses),
        });
        tokio::time::sleep(POLL).await;
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::history::{Input, Output};

    fn write_returning_at(id: usize, ret: Option<Micros>) -> Operation {
        Operation {
            id,
            client: 1,
            key: "k".into(),
            input: Input::Put { value: "v".into() },
            output: if ret.is_some() {
                Output::Previous(None)
            } else {
                Output::Unknown
            },
            invoke: 0,
            ret,
        }
    }

    fn at(ms: u64, leader: Option<(u64, NodeId)>) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            leader,
        }
    }

    #[test]
    fn the_longest_gap_counts_the_start_and_the_end_of_the_run() {
        let history = vec![
            write_returning_at(0, Some(1_000_000)),
            write_returning_at(1, Some(1_500_000)),
            write_returning_at(2, None),
            write_returning_at(3, Some(4_000_000)),
        ];
        let gap = longest_write_gap(&history, Duration::from_secs(5));
        assert_eq!(gap, Duration::from_millis(2_500), "1.5 s to 4 s");
        assert_eq!(
            longest_write_gap(&[], Duration::from_secs(3)),
            Duration::from_secs(3),
            "no write at all: the whole run"
        );
    }

    #[test]
    fn time_without_a_leader_and_changes_come_from_the_samples() {
        let samples = [
            at(0, Some((1, 1))),
            at(100, None),
            at(200, None),
            at(300, Some((2, 2))),
            at(400, Some((2, 2))),
            at(500, None),
            at(600, Some((2, 2))),
        ];
        let a = Availability::of(&samples, &[], Duration::from_secs(60));
        assert_eq!(a.without_leader, Duration::from_millis(300));
        assert_eq!(
            a.leader_changes, 1,
            "the same leader after a gap is no change"
        );
        assert!((a.leader_changes_per_minute - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_leader_that_is_not_ready_is_no_leader() {
        let mut statuses = BTreeMap::new();
        statuses.insert(1, (3, true, false));
        statuses.insert(2, (3, false, false));
        assert_eq!(ready_leader(&statuses), None);
        statuses.insert(1, (3, true, true));
        assert_eq!(ready_leader(&statuses), Some((3, 1)));
        // An old leader of a lower term does not count.
        statuses.insert(3, (4, false, false));
        assert_eq!(ready_leader(&statuses), None);
    }
}
