//! The mutation report: every seeded bug of the core, checked at a bound.
//!
//! A seeded bug is *killed* when an exhaustive search of the bound, with the
//! bug switched on, finds a counterexample to some `always` property, or
//! completes without reaching a `sometimes` goal the bound requires (a bug
//! that takes a behaviour away, such as a leader that never steps down, is
//! seen by what never happens); it *survives* when the search completes (or
//! times out) without either. A bound
//! that lets a bug survive is too small to trust for that class of mistake,
//! so `raft-checker mutants` fails when any bug survives.

use std::fmt::Write as _;
use std::time::Duration;

use raft_model::Bug;
use serde::Serialize;

use crate::bounds::Bounds;
use crate::bugs;
use crate::report::Verdict;
use crate::run::{RunOptions, run};
use crate::shorten::witness_bound;

/// One bug's row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Mutant {
    pub bug: &'static str,
    /// The named bound it was checked at (or "custom").
    pub bound: String,
    /// The `always` property the first counterexample violates; `None` when
    /// the bug survived.
    pub violated: Option<&'static str>,
    /// Else, a `sometimes` goal the bound requires that the completed search
    /// never reached.
    pub unreached: Option<&'static str>,
    /// Steps of that counterexample: the shortest within its witness bound
    /// when it could be shortened in time (checker/src/shorten.rs), else the
    /// depth-first one.
    pub steps: Option<usize>,
    /// Steps of the counterexample the depth-first search found.
    pub dfs_steps: Option<usize>,
    /// Distinct states the search stored before it stopped.
    pub states: usize,
    pub seconds: f64,
    /// The search ended for lack of time, not by exhausting the bound.
    pub timed_out: bool,
    /// The smallest bound that contains the counterexample found: every
    /// constant just large enough for its path (terms, log lengths, copies in
    /// flight, each counter). A search of it finds this bug again, fast.
    pub witness: Option<Bounds>,
}

impl Mutant {
    pub fn killed(&self) -> bool {
        self.violated.is_some() || self.unreached.is_some()
    }
}

/// Checks `bug` at `bounds` (depth-first, symmetry on), stopping at the first
/// counterexample to any `always` property, then spends up to `shorten`
/// shortening it.
pub fn check_mutant(
    bug: Bug,
    bound_name: &str,
    bounds: &Bounds,
    threads: usize,
    timeout: Option<Duration>,
    shorten: Option<Duration>,
) -> Mutant {
    let mut options = RunOptions::check(bounds.clone());
    options.bug = Some(bug);
    options.threads = threads;
    options.timeout = timeout;
    let outcome = run(&options);
    let report = &outcome.report;
    // The first violated property in the paper's order; a bug usually breaks
    // one, and the report of `check --bug` gives all of them.
    let violated = report
        .properties
        .iter()
        .find(|p| p.expectation == "always" && p.steps.is_some());
    let unreached = report
        .properties
        .iter()
        .find(|p| violated.is_none() && report.complete && p.verdict == Verdict::NotReached)
        .map(|p| p.name);
    let found = violated.and_then(|p| Some((p.name, outcome.discoveries.get(p.name)?)));
    let shortest = found.zip(shorten).and_then(|((name, path), budget)| {
        crate::shorten::shorten(&options, name, path, budget).map(|(short, _)| short)
    });
    let path = shortest.as_ref().or(found.map(|(_, path)| path));
    Mutant {
        bug: bugs::name(bug),
        bound: bound_name.to_string(),
        violated: violated.map(|p| p.name),
        unreached,
        steps: path.map(|path| path.len().saturating_sub(1)),
        dfs_steps: violated.and_then(|p| p.steps),
        states: report.distinct_states,
        seconds: report.wall_time_secs,
        timed_out: !report.complete && violated.is_none(),
        witness: path.map(|path| witness_bound(bounds, path)),
    }
}

/// The table people read: one row per bug.
pub fn render(mutants: &[Mutant]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| bug | bound | verdict | property violated | steps (depth-first) | states | time |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | ---: | ---: | ---: |");
    for m in mutants {
        let verdict = match (m.killed(), m.timed_out) {
            (true, _) => "killed",
            (false, true) => "SURVIVED (timeout)",
            (false, false) => "SURVIVED",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {verdict} | {} | {} | {} | {:.1} s |",
            m.bug,
            m.bound,
            match (m.violated, m.unreached) {
                (Some(property), _) => property.to_string(),
                (None, Some(goal)) => format!("{goal} never reached"),
                (None, None) => "-".to_string(),
            },
            match (m.steps, m.dfs_steps) {
                (Some(n), Some(dfs)) if n != dfs => format!("{n} ({dfs})"),
                (Some(n), _) => n.to_string(),
                (None, _) => "-".to_string(),
            },
            m.states,
            m.seconds
        );
    }
    let killed = mutants.iter().filter(|m| m.killed()).count();
    let _ = writeln!(out, "\n{killed} of {} seeded bugs killed", mutants.len());
    let _ = writeln!(out, "\nthe bound of each counterexample (`check` flags):");
    for m in mutants {
        if let Some(witness) = &m.witness {
            let _ = writeln!(out, "  {:<34} {}", m.bug, witness.command_line());
        }
    }
    out
}
