//! The index of the configuration in force, kept incrementally.
//!
//! The event loop publishes the configuration's index after every batch
//! (`refresh_members`). The core's `config_of_log` finds it by walking the
//! log back to its latest configuration entry, down to the snapshot when
//! the log holds none: O(log length) per batch, which under load was a
//! fifth of the node's CPU (issue 21's profile). This cache scans only the
//! entries appended since the last call.
//!
//! Why it is exact: while the log still holds everything up to `scanned`
//! (`ScannedTo`, by Log Matching), the latest configuration entry up to
//! `scanned` is unchanged too; the cache then only looks at `scanned + 1
//! ..= last`. Otherwise it starts over from the core's full walk. Debug
//! builds compare every answer with that walk.

use raft_model::{Entry, Index};

use super::scanned_to::ScannedTo;
use crate::types::Core;

#[derive(Default)]
pub(crate) struct ConfigIndex {
    /// How far the last call scanned, and the configuration index it found.
    known: Option<(ScannedTo, Index)>,
}

impl ConfigIndex {
    /// The index of the entry carrying `core`'s configuration (the
    /// snapshot's index when the log holds no configuration entry), as
    /// `core.config_of_log().1`.
    pub(crate) fn get(&mut self, core: &Core) -> Index {
        let log = core.log();
        let last = log.last_index();
        let still = self
            .known
            .and_then(|(scanned, index)| Some((scanned.still_in(log)?, index)));
        let index = match still {
            Some((scanned, index)) => {
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
        let scanned = ScannedTo::end_of(log).expect("the last index has a term");
        self.known = Some((scanned, index));
        index
    }
}
