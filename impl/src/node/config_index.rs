//! The index of the configuration in force, kept incrementally.
//!
//! The event loop publishes the configuration's index after every batch
//! (`refresh_members`). The core's `config_of_log` finds it by walking the
//! log back to its latest configuration entry, down to the snapshot when
//! the log holds none: O(log length) per batch, which under load was a
//! fifth of the node's CPU (issue 21's profile). This cache scans only the
//! entries appended since the last call.
//!
//! Why it is exact: if the log still holds the entry at `scanned` with the
//! same term, Log Matching says every entry up to it is unchanged, so the
//! latest configuration entry up to `scanned` is unchanged too; the cache
//! then only looks at `scanned + 1 ..= last`. A truncation below `scanned`
//! (a different term there, or a shorter log) or a new snapshot starts
//! over from the core's full walk. Debug builds compare every answer with
//! that walk.

use raft_model::{Entry, Index, Term};

use crate::types::Core;

#[derive(Default)]
pub(crate) struct ConfigIndex {
    /// (snapshot index, last index scanned, its term, configuration index)
    /// at the last call.
    known: Option<(Index, Index, Term, Index)>,
}

impl ConfigIndex {
    /// The index of the entry carrying `core`'s configuration (the
    /// snapshot's index when the log holds no configuration entry), as
    /// `core.config_of_log().1`.
    pub(crate) fn get(&mut self, core: &Core) -> Index {
        let log = core.log();
        let last = log.last_index();
        let index = match self.known {
            Some((snapshot, scanned, term, index))
                if snapshot == log.snapshot_index
                    && scanned <= last
                    && log.term_at(scanned) == Some(term) =>
            {
                // Backwards over the new entries only (imbl's iterator
                // starts at either end in O(log n)); the first found is the
                // latest.
                let new = (last - scanned) as usize;
                let newest = log
                    .entries
                    .iter()
                    .rev()
                    .take(new)
                    .position(|entry| Entry::config(entry).is_some())
                    .map(|from_end| last - from_end as Index);
                newest.unwrap_or(index)
            }
            _ => core.config_of_log().1,
        };
        debug_assert_eq!(
            index,
            core.config_of_log().1,
            "the cached configuration index"
        );
        let term = log.term_at(last).expect("the last index has a term");
        self.known = Some((log.snapshot_index, last, term, index));
        index
    }
}
