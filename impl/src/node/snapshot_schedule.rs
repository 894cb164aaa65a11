//! When a node takes its next snapshot: staggered between the members.
//!
//! Taking a snapshot costs a node tens of milliseconds of CPU (encoding the
//! whole image) and a few megabytes through its disk (the file and its
//! fsync, which every log fdatasync queued behind it waits for). Members
//! that apply the same entries and compare against the same threshold used
//! to snapshot within a few milliseconds of one another: every member of
//! the commit quorum stalled at once, and each such moment was a spike in
//! the put latency's p99.9 (issue 17: a 5-second round with a snapshot in
//! it reached 60-70 ms at 64 clients, against 14-22 ms without).
//!
//! So each member snapshots at its own phase of the threshold: at applied
//! indexes `k × threshold + phase` (k = 0, 1, ...), where `phase` is
//! `threshold / 8 × (id mod 8)`. Members whose ids differ modulo 8 never
//! snapshot at the same point, and a quorum keeps committing through one
//! member's snapshot (the leader's own write is not needed for a commit
//! when its followers answer: parallel writes). The bound the operator
//! sets still holds: the next point is at most `threshold` entries past
//! the current snapshot, so a node never holds more than `threshold`
//! applied entries past it (plus what arrives while a snapshot is written).
//! The first snapshot comes earlier, at `phase`, not at `threshold`.
//!
//! Measured (`raft-lab compare --no-etcd --our-api native --put-clients 64
//! --get-clients 0 --duration 10s --snapshot-threshold 30000`, three
//! snapshots per run, four runs each, alternating): p99.9 34.7 / 36.8 /
//! 48.8 / 50.2 ms with every member at the same point, 27.1 / 24.0 / 31.4 /
//! 28.6 ms staggered; throughput and CPU per put unchanged.

use raft_model::{Index, NodeId};

/// Phases per threshold: ids that differ modulo this snapshot apart.
const PHASES: u64 = 8;

/// The applied index at which a node `id` whose snapshot ends at
/// `snapshot_index` takes its next snapshot, for `threshold` entries
/// between snapshots (≥ 1). Saturates rather than overflowing: a threshold
/// of `u64::MAX` means never.
pub(crate) fn next_snapshot_at(snapshot_index: Index, threshold: u64, id: NodeId) -> Index {
    let threshold = threshold.max(1);
    let phase = threshold / PHASES * (id % PHASES);
    let next = if snapshot_index < phase {
        phase
    } else {
        // The first point of the progression past `snapshot_index`.
        let periods = (snapshot_index - phase) / threshold + 1;
        phase.saturating_add(periods.saturating_mul(threshold))
    };
    debug_assert!(next > snapshot_index || next == Index::MAX);
    debug_assert!(next - snapshot_index <= threshold);
    next
}

/// Whether a node that has applied `applied` is due to snapshot.
pub(crate) fn snapshot_due(
    applied: Index,
    snapshot_index: Index,
    threshold: u64,
    id: NodeId,
) -> bool {
    applied > snapshot_index && applied >= next_snapshot_at(snapshot_index, threshold, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_snapshot_at_their_own_phase_of_the_threshold() {
        // Ids 1, 2 and 3 of a threshold of 100,000: 12,500 apart.
        assert_eq!(next_snapshot_at(0, 100_000, 1), 12_500);
        assert_eq!(next_snapshot_at(0, 100_000, 2), 25_000);
        assert_eq!(next_snapshot_at(0, 100_000, 3), 37_500);
        assert_eq!(next_snapshot_at(12_500, 100_000, 1), 112_500);
        assert_eq!(next_snapshot_at(12_501, 100_000, 1), 112_500);
        assert_eq!(next_snapshot_at(112_499, 100_000, 1), 112_500);
        // Id 8 is at phase 0, as a threshold without staggering.
        assert_eq!(next_snapshot_at(0, 100_000, 8), 100_000);
        assert_eq!(next_snapshot_at(100_000, 100_000, 8), 200_000);
    }

    #[test]
    fn a_snapshot_from_the_leader_keeps_the_phase() {
        // Installed at 57,321: the next is the member's next point, not
        // threshold entries later.
        assert_eq!(next_snapshot_at(57_321, 100_000, 2), 125_000);
        assert_eq!(next_snapshot_at(57_321, 100_000, 1), 112_500);
    }

    #[test]
    fn the_next_point_is_never_further_than_the_threshold() {
        for threshold in [1, 2, 7, 8, 9, 25, 1000, 100_000] {
            for id in 0..20 {
                for snapshot in 0..3 * threshold + 5 {
                    let next = next_snapshot_at(snapshot, threshold, id);
                    assert!(
                        next > snapshot && next - snapshot <= threshold,
                        "threshold {threshold}, id {id}, snapshot {snapshot}: next {next}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_threshold_of_u64_max_never_snapshots() {
        for id in 0..10 {
            assert!(!snapshot_due(1 << 40, 0, u64::MAX, id));
            assert!(next_snapshot_at(1 << 40, u64::MAX, id) >= u64::MAX / 8);
        }
    }

    #[test]
    fn due_once_applied_reaches_the_point() {
        assert!(!snapshot_due(12_499, 0, 100_000, 1));
        assert!(snapshot_due(12_500, 0, 100_000, 1));
        assert!(snapshot_due(20_000, 0, 100_000, 1));
        // Nothing applied past the snapshot: nothing to take.
        assert!(!snapshot_due(5, 5, 1, 1));
    }
}
