//! The mutation report: every seeded bug of the core, checked at a bound.
//!
//! A seeded bug is *killed* when an exhaustive search of the bound, with the
//! bug switched on, finds a counterexample to some `always` property; it
//! *survives* when the search completes (or times out) without one. A bound
//! that lets a bug survive is too small to trust for that class of mistake,
//! so `raft-checker mutants` fails when any bug survives.

use std::fmt::Write as _;
use std::time::Duration;

use raft_model::Bug;
use serde::Serialize;

use crate::bounds::Bounds;
use crate::bugs;
use crate::run::{RunOptions, run};

/// One bug's row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Mutant {
    pub bug: &'static str,
    /// The named bound it was checked at (or "custom").
    pub bound: String,
    /// The `always` property the first counterexample violates; `None` when
    /// the bug survived.
    pub violated: Option<&'static str>,
    /// Steps of that counterexample.
    pub steps: Option<usize>,
    /// Distinct states the search stored before it stopped.
    pub states: usize,
    pub seconds: f64,
    /// The search ended for lack of time, not by exhausting the bound.
    pub timed_out: bool,
}

impl Mutant {
    pub fn killed(&self) -> bool {
        self.violated.is_some()
    }
}

/// Checks `bug` at `bounds` (depth-first, symmetry on), stopping at the first
/// counterexample to any `always` property.
pub fn check_mutant(
    bug: Bug,
    bound_name: &str,
    bounds: &Bounds,
    threads: usize,
    timeout: Option<Duration>,
) -> Mutant {
    let mut options = RunOptions::check(bounds.clone());
    options.bug = Some(bug);
    options.threads = threads;
    options.timeout = timeout;
    let report = run(&options).report;
    // The first violated property in the paper's order; a bug usually breaks
    // one, and the report of `check --bug` gives all of them.
    let violated = report
        .properties
        .iter()
        .find(|p| p.expectation == "always" && p.steps.is_some());
    Mutant {
        bug: bugs::name(bug),
        bound: bound_name.to_string(),
        violated: violated.map(|p| p.name),
        steps: violated.and_then(|p| p.steps),
        states: report.distinct_states,
        seconds: report.wall_time_secs,
        timed_out: !report.complete && violated.is_none(),
    }
}

/// The table people read: one row per bug.
pub fn render(mutants: &[Mutant]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| bug | bound | verdict | property violated | steps | states | time |"
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
            m.violated.unwrap_or("-"),
            m.steps.map_or_else(|| "-".to_string(), |n| n.to_string()),
            m.states,
            m.seconds
        );
    }
    let killed = mutants.iter().filter(|m| m.killed()).count();
    let _ = writeln!(out, "\n{killed} of {} seeded bugs killed", mutants.len());
    out
}
