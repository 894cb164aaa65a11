//! How far a cache has scanned a log, and whether that prefix still stands.
//!
//! `ConfigIndex` and `MembersInputs` each keep what they found in the log
//! up to some index, and scan only the entries appended since. That is
//! exact by Log Matching: if the log still holds the entry at the index
//! scanned with the same term (and the same snapshot), every entry up to it
//! is unchanged. A truncation below it (a different term there, or a
//! shorter log) or a new snapshot makes them scan again from the start.

use raft_model::{Index, Log, Term};

#[derive(Clone, Copy)]
pub(super) struct ScannedTo {
    snapshot: Index,
    index: Index,
    term: Term,
}

impl ScannedTo {
    /// The end of `log` as it is now (None if its last index has no term,
    /// which a log always has: the snapshot's, or its last entry's).
    pub(super) fn end_of<C: Clone>(log: &Log<C>) -> Option<ScannedTo> {
        let index = log.last_index();
        log.term_at(index).map(|term| ScannedTo {
            snapshot: log.snapshot_index,
            index,
            term,
        })
    }

    /// The index scanned to, if `log` still holds everything up to it
    /// unchanged; None when a scan must start over.
    pub(super) fn still_in<C: Clone>(&self, log: &Log<C>) -> Option<Index> {
        (self.snapshot == log.snapshot_index
            && self.index <= log.last_index()
            && log.term_at(self.index) == Some(self.term))
        .then_some(self.index)
    }
}
