//! The replicated log: a compacted prefix (summarised by its last index and
//! term) followed by the entries still held.

use imbl::Vector;
use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, Term};

/// The log after the last snapshot. Entry `i` (1-based, global) lives at
/// `entries[i - snapshot_index - 1]`. An `imbl::Vector` makes cloning the log
/// (every checker state, every node snapshot) O(1) with shared structure.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Log<C: Clone> {
    /// Index of the last entry folded into the snapshot (0 if none).
    pub snapshot_index: Index,
    /// Term of that entry (0 if none).
    pub snapshot_term: Term,
    /// Entries `snapshot_index + 1 ..= last_index()`.
    pub entries: Vector<Entry<C>>,
}

impl<C: Clone> Default for Log<C> {
    fn default() -> Self {
        Log {
            snapshot_index: 0,
            snapshot_term: 0,
            entries: Vector::new(),
        }
    }
}

impl<C: Clone> Log<C> {
    pub fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot_term, |entry| entry.term)
    }

    /// The term of entry `index`, if it is known: the snapshot's last entry or
    /// a held entry. `None` for compacted entries and for indexes past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else {
            self.entry(index).map(|entry| entry.term)
        }
    }

    /// The entry at `index`, if it is held (not compacted, not past the end).
    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        let offset = index.checked_sub(self.snapshot_index + 1)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `max` entries starting at `from` (which must be held or one past
    /// the end).
    ///
    /// A few entries (the common request: what a batch appended) are copied
    /// one by one from a focus on them; more share structure with the log.
    /// Splitting the log there (`skip`/`take`) would copy the whole leaf
    /// chunks at both cuts, entries included — up to 64 deep copies of
    /// commands on each side to send one: a profile of the node at 16
    /// clients put imbl's `split_off` under 3 % of all CPU in memmove alone.
    pub fn entries_from(&self, from: Index, max: usize) -> Vector<Entry<C>> {
        /// Fewer than imbl's leaf chunk (64): copied, not split.
        const COPY_AT_MOST: usize = 32;
        let Some(offset) = self.offset_of(from) else {
            return Vector::new();
        };
        // `Vector::take` panics past the end, so clamp.
        let count = max.min(self.entries.len() - offset);
        if count <= COPY_AT_MOST {
            return self
                .iter_from(from)
                .take(count)
                .map(|(_, entry)| entry.clone())
                .collect();
        }
        self.entries.skip(offset).take(count)
    }

    /// Iterates `(index, entry)` over the held entries from `from` on (none
    /// when `from` is not held), reading them through a focus: O(log n) to
    /// start, and nothing built — for a caller that reads them once (the
    /// node's write batch) rather than keeps them.
    pub fn iter_from(&self, from: Index) -> impl Iterator<Item = (Index, &Entry<C>)> {
        let held = self.entries.len();
        let offset = self.offset_of(from).unwrap_or(held);
        (from..).zip(self.entries.focus().narrow(offset..held))
    }

    /// Where entry `index` sits in `entries`, if it is held.
    fn offset_of(&self, index: Index) -> Option<usize> {
        let offset = usize::try_from(index.checked_sub(self.snapshot_index + 1)?).ok()?;
        (offset < self.entries.len()).then_some(offset)
    }

    /// Appends one entry and returns its index.
    pub fn append(&mut self, entry: Entry<C>) -> Index {
        self.entries.push_back(entry);
        self.last_index()
    }

    /// Drops entry `from` and everything after it. Entries at or below the
    /// snapshot cannot be dropped this way (they are committed).
    pub fn truncate_from(&mut self, from: Index) {
        let keep = from.saturating_sub(self.snapshot_index + 1);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Folds entries up to `index` (inclusive, whose term is `term`) into the
    /// snapshot. Entries after `index` that are held stay; if `index` is past
    /// the end, the log becomes empty after the snapshot.
    pub fn compact_to(&mut self, index: Index, term: Term) {
        if index <= self.snapshot_index {
            return;
        }
        let drop = usize::try_from(index - self.snapshot_index).unwrap_or(usize::MAX);
        self.entries = if drop >= self.entries.len() {
            Vector::new()
        } else {
            self.entries.skip(drop)
        };
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Where the follower's run of entries of `index`'s term begins: the
    /// lowest index down to which every entry, from `index`, is of that term
    /// (paper §5.3's "first index it stores for that term"). It never goes
    /// below the snapshot's index, the lowest index whose term is known: the
    /// run may reach further back into the compacted prefix, so the answer
    /// can only be too high, never too low — and the leader treats it as an
    /// upper bound. `None` if the term of `index` is not known.
    pub fn first_index_of_term_at(&self, index: Index) -> Option<Index> {
        let term = self.term_at(index)?;
        let mut first = index;
        while first > self.snapshot_index && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        Some(first)
    }

    /// What a follower that fails the consistency check at `index` tells
    /// the leader: the term of its entry there and the first index of its
    /// run of that term (`first_index_of_term_at`), or `(0, 0)` if it holds
    /// no entry at `index`. (No entry has term 0: index 0 of an empty log,
    /// whose term is 0, never conflicts.)
    pub fn conflict_at(&self, index: Index) -> (Term, Index) {
        match (self.term_at(index), self.first_index_of_term_at(index)) {
            (Some(term), Some(first)) if term > 0 => (term, first),
            _ => (0, 0),
        }
    }

    /// The highest index at or below `at_most` holding an entry of `term`,
    /// scanning down from `at_most` (or the last index) past entries of later
    /// terms. `None` if the scan meets an entry of an earlier term first
    /// (terms never decrease along a log, so none lower is of `term`) or runs
    /// into the compacted prefix, whose terms are not known.
    pub fn last_index_of_term(&self, term: Term, at_most: Index) -> Option<Index> {
        let mut index = at_most.min(self.last_index());
        loop {
            match self.term_at(index)? {
                t if t == term => return Some(index),
                t if t > term && index > self.snapshot_index => index -= 1,
                _ => return None,
            }
        }
    }

    /// Is a log ending at (`last_index`, `last_term`) at least as up-to-date
    /// as this one? (paper §5.4.1: compare last terms, then lengths.)
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// This log with the server ids of its configuration entries passed
    /// through `f` (the checker's symmetry reduction); shared when it holds
    /// none.
    pub fn rename_ids(&self, f: &dyn Fn(NodeId) -> NodeId) -> Self {
        if self.entries.iter().all(|entry| entry.config().is_none()) {
            return self.clone();
        }
        Log {
            entries: self.entries.iter().map(|e| e.rename_ids(f)).collect(),
            ..self.clone()
        }
    }

    /// Iterates `(index, entry)` over the held entries.
    pub fn iter(&self) -> impl Iterator<Item = (Index, &Entry<C>)> {
        let base = self.snapshot_index;
        self.entries
            .iter()
            .enumerate()
            .map(move |(offset, entry)| (base + 1 + offset as Index, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;

    fn log_of_terms(terms: &[Term]) -> Log<u8> {
        let mut log = Log::default();
        for &term in terms {
            log.append(Entry {
                term,
                payload: Payload::Noop,
            });
        }
        log
    }

    #[test]
    fn indexes_and_terms() {
        let log = log_of_terms(&[1, 1, 2]);
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.last_term(), 2);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(4), None);
        assert_eq!(log.term_at(u64::MAX), None);
    }

    /// Copied or split, `entries_from` gives the entries `from..` up to
    /// `max` of them, at every offset and length around imbl's chunks.
    #[test]
    fn entries_from_gives_the_same_entries_copied_or_split() {
        let terms: Vec<Term> = (1..=300).map(|i| i / 7 + 1).collect();
        let mut log = log_of_terms(&terms);
        log.compact_to(5, 1);
        let terms_of = |v: &Vector<Entry<u8>>| v.iter().map(|e| e.term).collect::<Vec<_>>();
        for from in [
            1, 5, 6, 7, 63, 64, 65, 70, 127, 128, 200, 290, 300, 301, 302,
        ] {
            for max in [0, 1, 2, 31, 32, 33, 63, 64, 65, 256, usize::MAX] {
                let got = terms_of(&log.entries_from(from, max));
                let expected: Vec<Term> = (from..=300)
                    .filter(|i| *i > 5)
                    .take(max)
                    .map(|i| log.term_at(i).unwrap())
                    .collect();
                let expected = if from <= 5 { Vec::new() } else { expected };
                assert_eq!(got, expected, "from {from}, max {max}");
            }
        }
    }

    /// `iter_from` gives every held entry from `from` on with its index;
    /// nothing when `from` is compacted away or past the end.
    #[test]
    fn iter_from_gives_the_held_entries_with_their_indexes() {
        let terms: Vec<Term> = (1..=300).map(|i| i / 7 + 1).collect();
        let mut log = log_of_terms(&terms);
        log.compact_to(5, 1);
        for from in [0, 1, 5, 6, 7, 63, 64, 65, 128, 300, 301, 302] {
            let got: Vec<(Index, Term)> = log.iter_from(from).map(|(i, e)| (i, e.term)).collect();
            let expected: Vec<(Index, Term)> = if from <= 5 {
                Vec::new()
            } else {
                (from..=300).map(|i| (i, log.term_at(i).unwrap())).collect()
            };
            assert_eq!(got, expected, "from {from}");
        }
    }

    #[test]
    fn compaction_keeps_suffix_and_terms() {
        let mut log = log_of_terms(&[1, 1, 2, 3]);
        log.compact_to(2, 1);
        assert_eq!(log.snapshot_index, 2);
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(4), Some(3));
        assert_eq!(log.entries_from(3, 10).len(), 2);
        assert_eq!(
            log.entries_from(2, 10).len(),
            0,
            "compacted entries are not served"
        );
        log.compact_to(9, 5);
        assert_eq!(log.last_index(), 9);
        assert_eq!(log.last_term(), 5);
    }

    #[test]
    fn the_run_of_a_term_and_the_last_entry_of_a_term() {
        let mut log = log_of_terms(&[1, 2, 2, 2, 4, 4]);
        assert_eq!(log.first_index_of_term_at(4), Some(2));
        assert_eq!(log.first_index_of_term_at(6), Some(5));
        assert_eq!(log.first_index_of_term_at(1), Some(1));
        assert_eq!(log.first_index_of_term_at(7), None, "past the end");
        assert_eq!(log.last_index_of_term(2, 6), Some(4));
        assert_eq!(log.last_index_of_term(2, 3), Some(3), "at most 3");
        assert_eq!(log.last_index_of_term(3, 6), None, "no entry of term 3");
        assert_eq!(log.last_index_of_term(4, 99), Some(6), "capped at the end");
        assert_eq!(log.last_index_of_term(5, 6), None);
        // Compacted entries are not known: the run stops at the snapshot's
        // index, and a term wholly compacted behind a later one is not found.
        log.compact_to(3, 2);
        assert_eq!(log.first_index_of_term_at(4), Some(3));
        assert_eq!(log.last_index_of_term(2, 6), Some(4));
        assert_eq!(
            log.last_index_of_term(2, 3),
            Some(3),
            "the snapshot's own term"
        );
        assert_eq!(log.last_index_of_term(1, 6), None, "compacted");
        assert_eq!(log.last_index_of_term(2, 2), None, "compacted");
    }

    #[test]
    fn truncate_never_touches_the_snapshot() {
        let mut log = log_of_terms(&[1, 1, 2, 3]);
        log.compact_to(2, 1);
        log.truncate_from(1);
        assert_eq!(log.last_index(), 2);
        log = log_of_terms(&[1, 1, 2, 3]);
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
    }
}
