//! Command-line names of the core's seeded bugs and the safety property each
//! one is designed to break.

use raft_model::Bug;

use crate::model;

/// The kebab-case name of a bug (`--bug NAME`).
pub fn name(bug: Bug) -> &'static str {
    match bug {
        Bug::VoteTwice => "vote-twice",
        Bug::SkipUpToDateCheck => "skip-up-to-date-check",
        Bug::CommitOldTerm => "commit-old-term",
        Bug::KeepConflictingSuffix => "keep-conflicting-suffix",
        Bug::CommitBeyondLeader => "commit-beyond-leader",
        Bug::InstallStaleSnapshot => "install-stale-snapshot",
        Bug::AcceptStaleAppend => "accept-stale-append",
        Bug::CountStaleVote => "count-stale-vote",
        Bug::CountStaleAppendSuccess => "count-stale-append-success",
        Bug::SkipPrevTermCheck => "skip-prev-term-check",
        Bug::UpToDateByIndexOnly => "up-to-date-by-index-only",
        Bug::SnapshotKeepsConflictingSuffix => "snapshot-keeps-conflicting-suffix",
        Bug::BatchChecksFirstEntryOnly => "batch-checks-first-entry-only",
    }
}

pub fn parse(text: &str) -> Result<Bug, String> {
    Bug::ALL
        .iter()
        .copied()
        .find(|bug| name(*bug) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|bug| name(*bug)).collect();
            format!(
                "unknown bug `{text}`; expected one of: {}",
                names.join(", ")
            )
        })
}

/// The safety property a bug is designed to break (model/src/bugs.rs). Other
/// properties may fall first on some paths; this one must fall eventually.
pub fn target_property(bug: Bug) -> &'static str {
    match bug {
        Bug::VoteTwice => model::ELECTION_SAFETY,
        Bug::SkipUpToDateCheck => model::LEADER_COMPLETENESS,
        Bug::CommitOldTerm => model::STATE_MACHINE_SAFETY,
        Bug::KeepConflictingSuffix => model::LOG_MATCHING,
        Bug::CommitBeyondLeader => model::STATE_MACHINE_SAFETY,
        Bug::InstallStaleSnapshot => model::STATE_MACHINE_SAFETY,
        Bug::AcceptStaleAppend => model::LEADER_APPEND_ONLY,
        Bug::CountStaleVote => model::ELECTION_SAFETY,
        Bug::CountStaleAppendSuccess => model::STATE_MACHINE_SAFETY,
        Bug::SkipPrevTermCheck => model::LOG_MATCHING,
        Bug::UpToDateByIndexOnly => model::LEADER_COMPLETENESS,
        Bug::SnapshotKeepsConflictingSuffix => model::LOG_MATCHING,
        // Only with --max-append-entries 2 or more (with 1 it changes
        // nothing); Log Matching falls directly with 3 or more.
        Bug::BatchChecksFirstEntryOnly => model::LOG_MATCHING,
    }
}
