//! The end-of-run report: figures, each property's verdict, where the traces
//! went. Printed for people, written as JSON with `--json`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::bounds::Bounds;
use crate::memory;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// `always`, exhaustive search complete: proved for this bound.
    Holds,
    /// `always`, search incomplete (timeout, simulation): no counterexample seen.
    NotViolated,
    /// `always`: a counterexample was found.
    Violated,
    /// `sometimes`: an example was found.
    Reached,
    /// `sometimes`: no example was found.
    NotReached,
    /// `sometimes`: no example was found, but this bound is not known to
    /// reach one, so the run does not fail for it (`model::required_goals`).
    NotRequired,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::NotViolated => "not violated (search incomplete)",
            Verdict::Violated => "VIOLATED",
            Verdict::Reached => "reached",
            Verdict::NotReached => "NOT reached",
            Verdict::NotRequired => "not reached (not required at this bound)",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: &'static str,
    /// "always" or "sometimes".
    pub expectation: &'static str,
    pub verdict: Verdict,
    /// Steps of the counterexample or example found.
    pub steps: Option<usize>,
    /// The trace (raft-trace/5 lines) and Mermaid diagram written for it.
    pub trace: Option<String>,
    pub diagram: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// "check" or "simulate".
    pub command: &'static str,
    /// "dfs", "bfs" or "simulation".
    pub strategy: &'static str,
    pub bounds: Bounds,
    pub bug: Option<&'static str>,
    pub symmetry: bool,
    pub threads: usize,
    /// The search visited every reachable state (exhaustive, not stopped).
    pub complete: bool,
    /// `--timeout` ended the search (then it is not complete).
    pub timed_out: bool,
    /// Distinct states stateright stored (orbits, under symmetry).
    pub distinct_states: usize,
    /// Of those, within `WithinBounds`: TLC's "distinct states" (exhaustive only).
    pub distinct_states_within_bounds: Option<usize>,
    /// Of those, outside `WithinBounds`, kept because they violate a property
    /// or are observed by a `sometimes` property; never expanded.
    pub boundary_states: Option<usize>,
    /// States outside `WithinBounds` generated, checked against the safety
    /// properties and dropped, repeats included (TLC's CONSTRAINT semantics).
    pub boundary_states_checked: usize,
    /// States generated, repeats included.
    pub generated_states: usize,
    pub max_depth: usize,
    pub wall_time_secs: f64,
    pub distinct_states_per_sec: f64,
    pub peak_memory_bytes: Option<u64>,
    pub properties: Vec<PropertyReport>,
    /// No `always` property violated and, for an exhaustive check, the
    /// search complete and every `sometimes` property reached.
    pub ok: bool,
}

impl Report {
    pub fn verdict_of(&self, name: &str) -> Option<Verdict> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.verdict)
    }

    pub fn violated(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.verdict == Verdict::Violated)
            .map(|p| p.name)
            .collect()
    }

    /// The human-readable summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let search = match self.strategy {
            "dfs" => "exhaustive depth-first search",
            "bfs" => "exhaustive breadth-first search",
            _ => "random simulation",
        };
        let _ = writeln!(
            out,
            "raft-checker {}: {search}, {} thread(s), symmetry {}{}",
            self.command,
            self.threads,
            if self.symmetry { "on" } else { "off" },
            self.bug
                .map(|bug| format!(", seeded bug {bug}"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "bound: {}", self.bounds);
        match (self.distinct_states_within_bounds, self.boundary_states) {
            (Some(within), Some(boundary)) => {
                let _ = writeln!(
                    out,
                    "distinct states: {within} within bounds (+ {boundary} boundary states kept for a verdict)"
                );
            }
            _ => {
                let _ = writeln!(out, "distinct states: {}", self.distinct_states);
            }
        }
        let _ = writeln!(
            out,
            "generated states: {} (+ {} outside the bounds, checked and dropped)",
            self.generated_states, self.boundary_states_checked
        );
        let _ = writeln!(out, "max depth: {}", self.max_depth);
        let _ = writeln!(
            out,
            "wall time: {:.1} s ({:.0} distinct states/s)",
            self.wall_time_secs, self.distinct_states_per_sec
        );
        if let Some(peak) = self.peak_memory_bytes {
            let _ = writeln!(out, "peak memory: {}", memory::format_bytes(peak));
        }
        if self.timed_out {
            let _ = writeln!(
                out,
                "search complete: no (timed out: `--timeout` ended it, so it proves nothing; \
                 the result below fails for that)"
            );
        } else if !self.complete {
            let _ = writeln!(
                out,
                "search complete: no (stopped early: first violation, timeout or simulation)"
            );
        }
        let _ = writeln!(out, "properties:");
        for p in &self.properties {
            let steps = p.steps.map(|n| format!(" ({n} steps)")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<9} {:<28} {}{steps}",
                p.expectation,
                p.name,
                p.verdict.text()
            );
        }
        let _ = writeln!(out, "result: {}", if self.ok { "OK" } else { "FAILED" });
        out
    }
}
