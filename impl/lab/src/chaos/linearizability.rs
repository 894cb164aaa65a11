//! A linearizability checker for key-value histories (get, put, delete,
//! compare-and-swap), in the style of Wing & Gong as improved by Lowe and by
//! Porcupine, plus a durability check of the final state.
//!
//! **Why write it.** stateright's linearizability tester enumerates every
//! interleaving and suits only a handful of operations; no maintained crate
//! checks recorded histories (the Rust "lincheck" crates test in-memory data
//! structures under loom). The algorithm is small:
//!
//! 1. **Per key** (P-compositionality): a history is linearizable iff every
//!    key's sub-history is, so each key is checked on its own.
//! 2. **Depth-first search for a linearization.** At each step, any pending
//!    operation invoked before the earliest return among the pending ones may
//!    take effect next; the sequential model (one register) says whether its
//!    answer fits the current value. Determinate operations must all be
//!    placed; indeterminate ones (no answer) may be placed anywhere after
//!    their invocation or dropped, since their answer constrains nothing.
//! 3. **Memoization** (Lowe): a (set of placed operations, register value)
//!    already explored is not explored again. The set is stored compactly:
//!    the first unplaced determinate operation, the placed determinate ones
//!    after it (a short window, since they must overlap it in time), and a
//!    bitset of the placed indeterminate ones.
//! 4. **A bound**: after `budget` explored configurations the answer is
//!    [`Verdict::Unknown`], never a guess.
//!
//! **Pruning indeterminate writes.** A write whose answer never came and
//! whose value nobody ever saw (no read, no previous value, no
//! compare-and-swap expecting it) can be dropped: in any linearization, after
//! it only unanswered operations can run until an unconditional unanswered
//! write hides its value, so removing it keeps the linearization valid. With
//! unique written values (the harness writes `c<client>-<n>`), this removes
//! most of the unanswered writes that would otherwise multiply the search.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::history::{Input, Operation, Output, by_key};

/// The register value: a key's value, None when absent.
type Value = Option<String>;

/// The outcome for one key.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Linearizable,
    Violation(Violation),
    /// The search bound was reached before an answer.
    Unknown {
        explored: u64,
    },
}

/// Where the search got stuck, for a human to look at.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub key: String,
    /// The longest sequence of operations (ids) that could be linearized.
    pub longest_prefix: Vec<usize>,
    /// The register value after that prefix.
    pub value_after_prefix: Value,
    /// The operations that were pending there, none of which fits next.
    pub stuck: Vec<Operation>,
    /// The history around the failure: the last placed operations of the
    /// prefix and every operation pending at that point.
    pub slice: Vec<Operation>,
}

/// The checker's report over a whole history.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub keys: BTreeMap<String, Verdict>,
    /// Operations checked (after pruning), and how many were pruned.
    pub checked: usize,
    pub pruned: usize,
    pub explored: u64,
}

impl Report {
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.keys.values().filter_map(|v| match v {
            Verdict::Violation(violation) => Some(violation),
            _ => None,
        })
    }

    pub fn unknown_keys(&self) -> Vec<&String> {
        self.keys
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Unknown { .. }))
            .map(|(k, _)| k)
            .collect()
    }
}

/// Checks every key of `history`, each with at most `budget` explored
/// configurations.
pub fn check(history: &[Operation], budget: u64) -> Report {
    let mut report = Report {
        keys: BTreeMap::new(),
        checked: 0,
        pruned: 0,
        explored: 0,
    };
    for (key, ops) in by_key(history) {
        let (ops, pruned) = prune(ops);
        report.checked += ops.len();
        report.pruned += pruned;
        let (verdict, explored) = check_key(&key, &ops, budget);
        report.explored += explored;
        report.keys.insert(key, verdict);
    }
    report
}

/// The sequential specification: the register's value after `op` if its
/// answer is consistent with `value`, else None.
fn step(value: &Value, op: &Operation) -> Option<Value> {
    match (&op.input, &op.output) {
        (Input::Get, Output::Value(seen)) => (seen == value).then(|| value.clone()),
        (Input::Get, Output::Unknown) => Some(value.clone()),
        (Input::Put { value: new }, Output::Previous(previous)) => {
            (previous == value).then(|| Some(new.clone()))
        }
        (Input::Put { value: new }, Output::Unknown) => Some(Some(new.clone())),
        (Input::Delete, Output::Previous(previous)) => (previous == value).then_some(None),
        (Input::Delete, Output::Unknown) => Some(None),
        (
            Input::Cas {
                expected,
                new_value,
            },
            output,
        ) => {
            let swaps = expected == value;
            let after = if swaps {
                new_value.clone()
            } else {
                value.clone()
            };
            match output {
                Output::Cas {
                    succeeded,
                    previous,
                } => (*succeeded == swaps && previous == value).then_some(after),
                Output::Unknown => Some(after),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Drops unanswered writes whose value nobody observed (see the module docs)
/// and unanswered reads (they constrain nothing). Returns the rest and how
/// many were dropped.
fn prune(ops: Vec<Operation>) -> (Vec<Operation>, usize) {
    let observed: HashSet<Option<&String>> = ops.iter().filter_map(|op| op.observed()).collect();
    let expected: HashSet<&String> = ops
        .iter()
        .filter_map(|op| match &op.input {
            Input::Cas {
                expected: Some(value),
                ..
            } => Some(value),
            _ => None,
        })
        .collect();
    let keep: Vec<bool> = ops
        .iter()
        .map(|op| {
            if !op.is_indeterminate() {
                return true;
            }
            match (&op.input, op.written()) {
                (Input::Get, _) => false,
                (_, Some(Some(value))) => {
                    observed.contains(&Some(value)) || expected.contains(value)
                }
                _ => true,
            }
        })
        .collect();
    let before = ops.len();
    let kept: Vec<Operation> = ops
        .into_iter()
        .zip(keep)
        .filter_map(|(op, keep)| keep.then_some(op))
        .collect();
    let pruned = before - kept.len();
    (kept, pruned)
}

/// The search state for one key.
struct Search<'a> {
    /// Operations in invocation order.
    ops: &'a [Operation],
    /// Indexes (into `ops`) of the determinate operations, in order.
    det: Vec<usize>,
    /// Indexes of the indeterminate operations, in order.
    indet: Vec<usize>,
    /// For each op: its position in `det` or in `indet`.
    position: Vec<usize>,
    placed: Vec<bool>,
    /// Position in `det` of the first unplaced determinate operation.
    first: usize,
    value: Value,
}

/// A configuration, for memoization (see the module docs).
#[derive(Hash, PartialEq, Eq)]
struct Config {
    first: usize,
    window: Vec<u32>,
    indet: Vec<u64>,
    value: Value,
}

struct Frame {
    candidates: Vec<usize>,
    next: usize,
    /// The candidate placed from this frame and the value before it.
    placed: Option<(usize, Value)>,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [Operation]) -> Self {
        let mut det = Vec::new();
        let mut indet = Vec::new();
        let mut position = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            if op.is_indeterminate() {
                position.push(indet.len());
                indet.push(i);
            } else {
                position.push(det.len());
                det.push(i);
            }
        }
        Search {
            ops,
            det,
            indet,
            position,
            placed: vec![false; ops.len()],
            first: 0,
            value: None,
        }
    }

    fn done(&self) -> bool {
        self.first == self.det.len()
    }

    /// The pending operations that may take effect next: those invoked no
    /// later than the earliest return among the pending determinate ones.
    fn candidates(&self) -> Vec<usize> {
        let mut deadline = u64::MAX;
        let mut found = Vec::new();
        for &i in &self.det[self.first..] {
            let op = &self.ops[i];
            if op.invoke > deadline {
                break;
            }
            if !self.placed[i] {
                deadline = deadline.min(op.ret_or_never());
                found.push(i);
            }
        }
        found.retain(|&i| self.ops[i].invoke <= deadline);
        // Answered operations first: unanswered ones can always wait.
        for &i in &self.indet {
            if self.ops[i].invoke > deadline {
                break;
            }
            if !self.placed[i] {
                found.push(i);
            }
        }
        found
    }

    fn place(&mut self, i: usize) {
        self.placed[i] = true;
        if !self.ops[i].is_indeterminate() {
            while self.first < self.det.len() && self.placed[self.det[self.first]] {
                self.first += 1;
            }
        }
    }

    fn unplace(&mut self, i: usize) {
        self.placed[i] = false;
        if !self.ops[i].is_indeterminate() {
            self.first = self.first.min(self.position[i]);
        }
    }

    fn config(&self) -> Config {
        let mut window = Vec::new();
        if let Some(&head) = self.det.get(self.first) {
            let horizon = self.ops[head].ret_or_never();
            for (at, &i) in self.det.iter().enumerate().skip(self.first + 1) {
                if self.ops[i].invoke > horizon {
                    break;
                }
                if self.placed[i] {
                    window.push(at as u32);
                }
            }
        }
        let mut indet = vec![0u64; self.indet.len().div_ceil(64)];
        for (at, &i) in self.indet.iter().enumerate() {
            if self.placed[i] {
                indet[at / 64] |= 1 << (at % 64);
            }
        }
        Config {
            first: self.first,
            window,
            indet,
            value: self.value.clone(),
        }
    }
}

/// Checks one key's operations (in invocation order). Returns the verdict and
/// the number of configurations explored.
pub fn check_key(key: &str, ops: &[Operation], budget: u64) -> (Verdict, u64) {
    let mut search = Search::new(ops);
    let mut seen: HashSet<Config> = HashSet::new();
    let mut explored = 0u64;
    // The deepest point reached, for the report.
    let mut best: (usize, Vec<usize>, Value, Vec<usize>) =
        (0, Vec::new(), None, search.candidates());
    let mut path: Vec<usize> = Vec::new();
    let mut stack = vec![Frame {
        candidates: search.candidates(),
        next: 0,
        placed: None,
    }];
    seen.insert(search.config());
    while !search.done() {
        let Some(frame) = stack.last_mut() else {
            let (_, prefix, value, stuck) = best;
            return (
                Verdict::Violation(violation(key, ops, prefix, value, stuck)),
                explored,
            );
        };
        if let Some((i, before)) = frame.placed.take() {
            search.unplace(i);
            search.value = before;
            path.pop();
        }
        if frame.next == frame.candidates.len() {
            stack.pop();
            continue;
        }
        let i = frame.candidates[frame.next];
        frame.next += 1;
        let Some(after) = step(&search.value, &ops[i]) else {
            continue;
        };
        let before = std::mem::replace(&mut search.value, after);
        search.place(i);
        path.push(i);
        frame.placed = Some((i, before));
        if !seen.insert(search.config()) {
            continue;
        }
        explored += 1;
        if explored > budget {
            return (Verdict::Unknown { explored }, explored);
        }
        let candidates = search.candidates();
        if path.len() > best.0 {
            best = (
                path.len(),
                path.clone(),
                search.value.clone(),
                candidates.clone(),
            );
        }
        stack.push(Frame {
            candidates,
            next: 0,
            placed: None,
        });
    }
    (Verdict::Linearizable, explored)
}

/// How many of the last placed operations the report shows for context.
const CONTEXT: usize = 12;

fn violation(
    key: &str,
    ops: &[Operation],
    prefix: Vec<usize>,
    value: Value,
    stuck: Vec<usize>,
) -> Violation {
    let mut slice: Vec<usize> = prefix.iter().rev().take(CONTEXT).copied().collect();
    slice.extend(stuck.iter().copied());
    slice.sort_unstable();
    slice.dedup();
    Violation {
        key: key.to_owned(),
        longest_prefix: prefix.iter().map(|&i| ops[i].id).collect(),
        value_after_prefix: value,
        stuck: stuck.iter().map(|&i| ops[i].clone()).collect(),
        slice: slice.iter().map(|&i| ops[i].clone()).collect(),
    }
}

/// An acknowledged write that the final state contradicts.
#[derive(Clone, Debug, Serialize)]
pub struct LostWrite {
    pub key: String,
    /// The value every node agreed on after the faults healed.
    pub final_value: Value,
    /// An acknowledged write invoked after every write that could have left
    /// `final_value` had returned: it must have taken effect later, so the
    /// final value should not be one of theirs.
    pub lost: Operation,
    /// The history around it, for a human (and the trace viewer): the last
    /// operation that could have left `final_value`, the lost write, and
    /// the operations on the key that overlap the time between them (at
    /// most [`CONTEXT`] of them, those nearest the lost write).
    pub slice: Vec<Operation>,
}

/// The durability check: for each key, `finals` holds the value read after
/// healing. That value must have been written by some operation (or be the
/// initial absence) that no acknowledged write definitely followed. Gives a
/// direct message ("this acknowledged write was lost") where the
/// linearizability search only says "no order fits".
pub fn check_durability(history: &[Operation], finals: &BTreeMap<String, Value>) -> Vec<LostWrite> {
    let mut lost = Vec::new();
    let keys = by_key(history);
    for (key, final_value) in finals {
        let empty = Vec::new();
        let ops = keys.get(key).unwrap_or(&empty);
        let acked: Vec<&Operation> = ops.iter().filter(|op| op.acknowledged_write()).collect();
        // Return times of the operations that may have written the final
        // value; the initial absence "returns" at time 0.
        let mut writers: Vec<u64> = ops
            .iter()
            .filter(|op| op.written() == Some(final_value.as_ref()))
            .map(|op| op.ret_or_never())
            .collect();
        if final_value.is_none() {
            writers.push(0);
        }
        let superseding = |ret: u64| {
            acked
                .iter()
                .filter(|a| a.invoke > ret && a.written() != Some(final_value.as_ref()))
                .min_by_key(|a| a.invoke)
        };
        if writers.iter().all(|&ret| superseding(ret).is_some()) {
            let latest = writers.iter().copied().max().unwrap_or(0);
            let culprit = superseding(latest).or_else(|| acked.last());
            if let Some(op) = culprit {
                lost.push(LostWrite {
                    key: key.clone(),
                    final_value: final_value.clone(),
                    lost: (*op).clone(),
                    slice: lost_write_slice(ops, final_value, op),
                });
            }
        }
    }
    lost
}

/// The operations on one key that show a lost write: the latest operation
/// that may have written `final_value` (none: the key's initial absence),
/// the lost write, and what overlaps the time between them, nearest the
/// lost write first, at most [`CONTEXT`] besides those two; ordered by id.
fn lost_write_slice(ops: &[Operation], final_value: &Value, lost: &Operation) -> Vec<Operation> {
    let writer = ops
        .iter()
        .filter(|op| op.written() == Some(final_value.as_ref()) && op.invoke <= lost.invoke)
        .max_by_key(|op| op.invoke);
    let from = writer.map_or(0, |w| w.invoke);
    let until = lost.ret_or_never();
    let mut between: Vec<&Operation> = ops
        .iter()
        .filter(|op| op.id != lost.id && writer.is_none_or(|w| w.id != op.id))
        .filter(|op| op.invoke <= until && op.ret_or_never() >= from)
        .collect();
    between.sort_by_key(|op| op.invoke.abs_diff(lost.invoke));
    between.truncate(CONTEXT);
    let mut slice: Vec<Operation> = between.into_iter().cloned().collect();
    slice.extend(writer.cloned());
    slice.push(lost.clone());
    slice.sort_by_key(|op| op.id);
    slice
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds operations on key "k": (client, input, output, invoke, ret).
    fn history(ops: &[(u64, Input, Output, u64, Option<u64>)]) -> Vec<Operation> {
        ops.iter()
            .enumerate()
            .map(|(id, (client, input, output, invoke, ret))| Operation {
                id,
                client: *client,
                key: "k".into(),
                input: input.clone(),
                output: output.clone(),
                invoke: *invoke,
                ret: *ret,
            })
            .collect()
    }

    fn put(v: &str) -> Input {
        Input::Put { value: v.into() }
    }
    fn prev(v: Option<&str>) -> Output {
        Output::Previous(v.map(str::to_owned))
    }
    fn got(v: Option<&str>) -> Output {
        Output::Value(v.map(str::to_owned))
    }
    fn cas(expected: Option<&str>, new_value: Option<&str>) -> Input {
        Input::Cas {
            expected: expected.map(str::to_owned),
            new_value: new_value.map(str::to_owned),
        }
    }
    fn cas_out(succeeded: bool, previous: Option<&str>) -> Output {
        Output::Cas {
            succeeded,
            previous: previous.map(str::to_owned),
        }
    }

    fn verdict(ops: &[Operation]) -> Verdict {
        let report = check(ops, 100_000);
        report
            .keys
            .get("k")
            .cloned()
            .unwrap_or(Verdict::Linearizable)
    }

    fn linearizable(ops: &[Operation]) -> bool {
        matches!(verdict(ops), Verdict::Linearizable)
    }

    #[test]
    fn sequential_and_overlapping_histories_that_fit() {
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(10)),
            (2, Input::Get, got(Some("a")), 11, Some(20)),
            (
                1,
                cas(Some("a"), Some("b")),
                cas_out(true, Some("a")),
                21,
                Some(30),
            ),
            (
                2,
                cas(Some("a"), Some("c")),
                cas_out(false, Some("b")),
                31,
                Some(40),
            ),
            (1, Input::Delete, prev(Some("b")), 41, Some(50)),
            (2, Input::Get, got(None), 51, Some(60)),
        ]);
        assert!(linearizable(&ops));
        // A read overlapping a write may see either value.
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(100)),
            (2, Input::Get, got(None), 10, Some(20)),
            (3, Input::Get, got(Some("a")), 30, Some(40)),
        ]);
        assert!(linearizable(&ops));
    }

    #[test]
    fn a_stale_read_is_rejected() {
        // The write returned before the read began; the read saw the old value.
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(10)),
            (2, Input::Get, got(None), 20, Some(30)),
        ]);
        let Verdict::Violation(v) = verdict(&ops) else {
            panic!("stale read accepted");
        };
        assert_eq!(v.key, "k");
        assert_eq!(v.stuck.len(), 1);
        assert_eq!(v.stuck[0].id, 1);
    }

    #[test]
    fn reads_going_back_in_time_are_rejected() {
        // Two sequential reads by different clients during one long write:
        // the first sees the new value, the second the old one.
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(100)),
            (2, Input::Get, got(Some("a")), 10, Some(20)),
            (3, Input::Get, got(None), 30, Some(40)),
        ]);
        assert!(!linearizable(&ops));
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(10)),
            (1, put("b"), prev(Some("a")), 20, Some(30)),
            (2, Input::Get, got(Some("a")), 40, Some(50)),
        ]);
        assert!(!linearizable(&ops));
        let finals = BTreeMap::from([("k".to_owned(), Some("a".to_owned()))]);
        let lost = check_durability(&ops[..2], &finals);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].lost.id, 1);
        // The slice shows the write of the final value, then the lost one.
        let ids: Vec<usize> = lost[0].slice.iter().map(|op| op.id).collect();
        assert_eq!(ids, [0, 1]);
        let finals = BTreeMap::from([("k".to_owned(), Some("b".to_owned()))]);
        assert!(check_durability(&ops[..2], &finals).is_empty());
    }

    #[test]
    fn a_lost_writes_slice_keeps_the_writer_the_lost_write_and_the_nearest_between() {
        let mut ops = vec![(1, put("a"), prev(None), 0, Some(10))];
        for i in 0..30 {
            ops.push((
                2,
                Input::Get,
                got(Some("a")),
                20 + 10 * i,
                Some(25 + 10 * i),
            ));
        }
        ops.push((1, put("b"), prev(Some("a")), 400, Some(410)));
        let ops = history(&ops);
        let finals = BTreeMap::from([("k".to_owned(), Some("a".to_owned()))]);
        let lost = check_durability(&ops, &finals);
        assert_eq!(lost.len(), 1);
        let ids: Vec<usize> = lost[0].slice.iter().map(|op| op.id).collect();
        assert_eq!(ids.len(), CONTEXT + 2);
        assert_eq!(ids[0], 0, "the write of the final value");
        assert_eq!(*ids.last().unwrap(), 31, "the lost write");
        assert_eq!(ids[1], 31 - CONTEXT, "the reads nearest the lost write");
    }

    #[test]
    fn two_successful_swaps_from_the_same_value_are_rejected() {
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(10)),
            (
                2,
                cas(Some("a"), Some("b")),
                cas_out(true, Some("a")),
                20,
                Some(40),
            ),
            (
                3,
                cas(Some("a"), Some("c")),
                cas_out(true, Some("a")),
                25,
                Some(45),
            ),
        ]);
        assert!(!linearizable(&ops));
    }

    #[test]
    fn a_wrong_previous_value_is_rejected() {
        let ops = history(&[
            (1, put("a"), prev(None), 0, Some(10)),
            (2, put("b"), prev(None), 20, Some(30)),
        ]);
        assert!(!linearizable(&ops));
    }

    #[test]
    fn unanswered_writes_may_or_may_not_have_applied() {
        // Applied: a later read sees it.
        let ops = history(&[
            (1, put("a"), Output::Unknown, 0, None),
            (2, Input::Get, got(Some("a")), 100, Some(110)),
            (2, Input::Get, got(Some("a")), 120, Some(130)),
        ]);
        assert!(linearizable(&ops));
        // Not applied: a later read does not see it.
        let ops = history(&[
            (1, put("a"), Output::Unknown, 0, None),
            (2, Input::Get, got(None), 100, Some(110)),
        ]);
        assert!(linearizable(&ops));
        // Applied late: first not seen, then seen.
        let ops = history(&[
            (1, put("a"), Output::Unknown, 0, None),
            (2, Input::Get, got(None), 100, Some(110)),
            (2, Input::Get, got(Some("a")), 200, Some(210)),
        ]);
        assert!(linearizable(&ops));
        // But not seen, then seen, then unseen again.
        let ops = history(&[
            (1, put("a"), Output::Unknown, 0, None),
            (2, Input::Get, got(Some("a")), 100, Some(110)),
            (2, Input::Get, got(None), 200, Some(210)),
        ]);
        assert!(!linearizable(&ops));
        // A value nobody wrote is never explained by unanswered writes.
        let ops = history(&[
            (1, put("a"), Output::Unknown, 0, None),
            (2, Input::Get, got(Some("z")), 100, Some(110)),
        ]);
        assert!(!linearizable(&ops));
    }

    #[test]
    fn unobserved_unanswered_writes_are_pruned() {
        let ops = history(&[
            (1, put("a"), Output::Unknown, 0, None),
            (1, put("b"), Output::Unknown, 5, None),
            (2, cas(Some("c"), None), Output::Unknown, 6, None),
            (2, put("c"), prev(None), 10, Some(20)),
            (3, Input::Get, Output::Unknown, 12, None),
        ]);
        let (kept, pruned) = prune(ops);
        assert_eq!(pruned, 3, "a, b and the unanswered read go: {kept:?}");
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn many_concurrent_clients_check_quickly() {
        // 8 clients, 400 rounds; each round every client writes its own
        // value concurrently, then reads the round's winner.
        let mut ops = Vec::new();
        let mut last = None::<String>;
        let mut t = 0;
        for round in 0..400u64 {
            for client in 0..8u64 {
                let value = format!("c{client}-{round}");
                ops.push((
                    client,
                    put(&value),
                    prev(last.as_deref()),
                    t + client,
                    Some(t + 50 + client),
                ));
                last = Some(value);
            }
            ops.push((99, Input::Get, got(last.as_deref()), t + 60, Some(t + 70)));
            t += 100;
        }
        let ops = history(&ops);
        assert!(linearizable(&ops));
    }

    #[test]
    fn the_bound_gives_unknown_not_a_guess() {
        // Twelve concurrent failed swaps commute: every subset of them is a
        // distinct configuration, and the impossible read after them makes
        // the search visit all 4,096 before it could say "violation".
        let mut ops = Vec::new();
        for client in 0..12u64 {
            ops.push((
                client,
                cas(Some("x"), Some("y")),
                cas_out(false, None),
                0,
                Some(100),
            ));
        }
        ops.push((99, Input::Get, got(Some("zzz")), 200, Some(210)));
        let ops = history(&ops);
        let (verdict, explored) = check_key("k", &ops, 50);
        assert!(matches!(verdict, Verdict::Unknown { .. }), "{verdict:?}");
        assert!(explored > 50);
        let (verdict, _) = check_key("k", &ops, 1_000_000);
        assert!(matches!(verdict, Verdict::Violation(_)), "{verdict:?}");
    }
}
