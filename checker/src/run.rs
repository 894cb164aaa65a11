//! Running stateright on the model: exhaustive (DFS, or BFS on request) or by
//! random simulation, then turning its results into a [`Report`] and traces.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, Instant};

use raft_model::Bug;
use stateright::{Checker, HasDiscoveries, Model, Path, UniformChooser};

use crate::action::Action;
use crate::bounds::Bounds;
use crate::bugs;
use crate::memory;
use crate::model::{RaftModel, SAFETY_PROPERTIES, applicable_goals, required_goals};
use crate::progress::Progress;
use crate::report::{PropertyReport, Report, Verdict};
use crate::state::RaftState;
use crate::trace::Trace;

#[derive(Clone, Debug)]
pub enum Strategy {
    /// Exhaustive depth-first search: one fingerprint per state in memory,
    /// symmetry reduction available. The default.
    Dfs,
    /// Exhaustive breadth-first search: shortest counterexamples, but keeps
    /// whole states in its queue, and stateright ignores symmetry here.
    Bfs,
    /// Random walks from the initial state, for bounds too big to exhaust.
    Simulation {
        seed: u64,
        max_states: Option<usize>,
    },
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub bounds: Bounds,
    pub bug: Option<Bug>,
    pub strategy: Strategy,
    pub threads: usize,
    pub symmetry: bool,
    pub timeout: Option<Duration>,
    /// Keep searching after the first `always` violation.
    pub keep_going: bool,
    /// Stop as soon as this property has a discovery (tests hunting one
    /// counterexample); overrides `keep_going`.
    pub stop_at: Option<&'static str>,
    /// No progress output.
    pub quiet: bool,
    /// Distinct states the search is expected to store (a named bound's
    /// recorded size), for the progress line's estimate.
    pub expected_states: Option<usize>,
    /// Check only paths of fewer steps than this (stateright's
    /// `target_max_depth`: the initial state is at depth 1).
    pub max_steps: Option<usize>,
    /// Stop an exhaustive search after this many distinct states (the
    /// result is then not a proof). The shortener's breadth-first search
    /// keeps whole states in its queue, without symmetry: uncapped, on five
    /// servers it filled 23 GB and was killed.
    pub max_states: Option<usize>,
}

impl RunOptions {
    pub fn check(bounds: Bounds) -> Self {
        RunOptions {
            bounds,
            bug: None,
            strategy: Strategy::Dfs,
            threads: 1,
            symmetry: true,
            timeout: None,
            keep_going: false,
            stop_at: None,
            max_steps: None,
            max_states: None,
            quiet: true,
            expected_states: None,
        }
    }
}

pub type StatePath = Vec<(RaftState, Option<Action>)>;

pub struct Outcome {
    pub report: Report,
    /// Property name -> the path stateright found (counterexample or example).
    pub discoveries: BTreeMap<&'static str, StatePath>,
}

pub fn run(options: &RunOptions) -> Outcome {
    let bugs: Vec<Bug> = options.bug.into_iter().collect();
    let model = match options.strategy {
        Strategy::Simulation { .. } => RaftModel::for_simulation(options.bounds.clone(), bugs),
        Strategy::Dfs | Strategy::Bfs => RaftModel::new(options.bounds.clone(), bugs),
    }
    .with_timeout(options.timeout);
    let mut builder = model.checker().threads(options.threads.max(1));
    builder = builder.finish_when(match options.stop_at {
        Some(name) => HasDiscoveries::AnyOf([name].into_iter().collect()),
        None if options.keep_going => HasDiscoveries::All,
        None => HasDiscoveries::AnyFailures,
    });
    let symmetry = options.symmetry && !matches!(options.strategy, Strategy::Bfs);
    if symmetry {
        builder = builder.symmetry();
    }
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(steps) = options.max_steps {
        // A state reached in k steps is at depth k + 1; stateright skips
        // (neither checks nor expands) states at depth >= the target.
        builder = builder.target_max_depth(steps + 1);
    }
    let start = Instant::now();
    match options.strategy {
        Strategy::Dfs | Strategy::Bfs => {
            if let Some(count) = options.max_states {
                builder = builder.target_state_count(count);
            }
            if matches!(options.strategy, Strategy::Dfs) {
                finish(builder.spawn_dfs(), options, symmetry, start)
            } else {
                finish(builder.spawn_bfs(), options, symmetry, start)
            }
        }
        Strategy::Simulation { seed, max_states } => {
            if let Some(count) = max_states {
                builder = builder.target_state_count(count);
            }
            finish(
                builder.spawn_simulation(seed, UniformChooser),
                options,
                symmetry,
                start,
            )
        }
    }
}

fn finish<C>(checker: C, options: &RunOptions, symmetry: bool, start: Instant) -> Outcome
where
    C: Checker<RaftModel> + Send + Sync,
{
    let mut progress = Progress::<RaftModel>::new(options.quiet).expecting(options.expected_states);
    let checker = checker.join_and_report(&mut progress);
    let elapsed = start.elapsed();
    let model = checker.model();
    let totals = progress.totals.clone();
    let discoveries: BTreeMap<&'static str, StatePath> = std::mem::take(&mut progress.discoveries)
        .into_iter()
        .map(|(name, path): (&'static str, Path<RaftState, Action>)| {
            (name, to_first_discovery(name, path.into_vec()))
        })
        .collect();

    let exhaustive = !matches!(options.strategy, Strategy::Simulation { .. });
    let violated = SAFETY_PROPERTIES
        .iter()
        .any(|name| discoveries.contains_key(name));
    let all_found = discoveries.len() == model.properties().len();
    // The model's own flag, not the clock: a search that ended just before
    // its deadline is complete. A simulation's time budget (`--time`) is
    // its stopping rule, not a timeout.
    let timed_out = exhaustive && model.timed_out();
    let stopped_early = timed_out
        || all_found
        || options
            .stop_at
            .is_some_and(|name| discoveries.contains_key(name))
        || (violated && !options.keep_going && options.stop_at.is_none());
    // A depth target leaves out every state first met deeper than it: the
    // search then proves nothing, like a simulation.
    let depth_bounded = options.max_steps.is_some()
        || (exhaustive && options.max_states.is_some_and(|cap| totals.distinct >= cap));
    let complete = exhaustive && !stopped_early && !depth_bounded;

    let mut properties = Vec::new();
    for name in SAFETY_PROPERTIES {
        let verdict = if discoveries.contains_key(name) {
            Verdict::Violated
        } else if complete {
            Verdict::Holds
        } else {
            Verdict::NotViolated
        };
        properties.push(property_report(name, "always", verdict, &discoveries));
    }
    let goals = required_goals(&options.bounds);
    for name in applicable_goals(&options.bounds) {
        let verdict = if discoveries.contains_key(name) {
            Verdict::Reached
        } else if goals.contains(&name) {
            Verdict::NotReached
        } else {
            Verdict::NotRequired
        };
        properties.push(property_report(name, "sometimes", verdict, &discoveries));
    }
    let all_reached = goals.iter().all(|name| discoveries.contains_key(name));
    let ok = !violated && (!exhaustive || depth_bounded || (complete && all_reached));

    let boundary = model.kept_boundary_states();
    let checked_boundary = model.checked_boundary_states();
    let seconds = elapsed.as_secs_f64().max(1e-6);
    let report = Report {
        command: if exhaustive { "check" } else { "simulate" },
        strategy: match options.strategy {
            Strategy::Dfs => "dfs",
            Strategy::Bfs => "bfs",
            Strategy::Simulation { .. } => "simulation",
        },
        bounds: options.bounds.clone(),
        bug: options.bug.map(bugs::name),
        symmetry,
        threads: options.threads.max(1),
        complete,
        timed_out,
        distinct_states: totals.distinct,
        distinct_states_within_bounds: exhaustive.then(|| totals.distinct.saturating_sub(boundary)),
        boundary_states: exhaustive.then_some(boundary),
        boundary_states_checked: checked_boundary,
        generated_states: totals.generated,
        max_depth: totals.max_depth,
        wall_time_secs: elapsed.as_secs_f64(),
        distinct_states_per_sec: totals.distinct as f64 / seconds,
        peak_memory_bytes: memory::peak_resident_bytes(),
        properties,
        ok,
    };
    Outcome {
        report,
        discoveries,
    }
}

/// The path cut at its first state that discovers `name` (violates an
/// `always` property, satisfies a `sometimes` one). stateright records a
/// discovery for every such state it pops, so a state past the first one on
/// the same path (the read histories only grow: a violation of
/// ReadIndexSafety stays one) can replace the shorter path.
fn to_first_discovery(name: &'static str, mut path: StatePath) -> StatePath {
    let Some(condition) = crate::model::condition(name) else {
        return path;
    };
    let always = SAFETY_PROPERTIES.contains(&name);
    if let Some(first) = path
        .iter()
        .position(|(state, _)| condition(state) != always)
    {
        path.truncate(first + 1);
        path[first].1 = None;
    }
    path
}

fn property_report(
    name: &'static str,
    expectation: &'static str,
    verdict: Verdict,
    discoveries: &BTreeMap<&'static str, StatePath>,
) -> PropertyReport {
    PropertyReport {
        name,
        expectation,
        verdict,
        steps: discoveries
            .get(name)
            .map(|path| path.len().saturating_sub(1)),
        trace: None,
        diagram: None,
    }
}

impl Outcome {
    /// Puts `path` in place of the discovery of `name` (a shorter
    /// counterexample, checker/src/shorten.rs), in the report too.
    pub fn replace_discovery(&mut self, name: &'static str, path: StatePath) {
        let steps = path.len().saturating_sub(1);
        self.discoveries.insert(name, path);
        if let Some(p) = self.report.properties.iter_mut().find(|p| p.name == name) {
            p.steps = Some(steps);
        }
    }

    /// The trace of a discovery, for rendering.
    pub fn trace(&self, name: &'static str) -> Option<Trace<'_>> {
        let expectation = if SAFETY_PROPERTIES.contains(&name) {
            "always"
        } else {
            "sometimes"
        };
        self.discoveries.get(name).map(|path| Trace {
            bounds: &self.report.bounds,
            bug: self.report.bug,
            property: name,
            expectation,
            path,
        })
    }

    /// Writes a trace (`raft-trace/5` lines) and a Mermaid diagram for every
    /// discovery: counterexamples to `out/<Property>.{jsonl,mmd}`, examples of `sometimes`
    /// properties to `out/examples/`. Records the paths in the report.
    pub fn write_traces(&mut self, out: &FsPath) -> Result<(), String> {
        let mut written: Vec<(&'static str, PathBuf, PathBuf)> = Vec::new();
        for &name in self.discoveries.keys() {
            let Some(trace) = self.trace(name) else {
                continue;
            };
            let dir = if trace.expectation == "always" {
                out.to_path_buf()
            } else {
                out.join("examples")
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let json_path = dir.join(format!("{name}.jsonl"));
            let json = trace
                .to_lines()
                .map_err(|e| format!("cannot serialise the {name} trace: {e}"))?;
            std::fs::write(&json_path, json)
                .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
            let mermaid_path = dir.join(format!("{name}.mmd"));
            std::fs::write(&mermaid_path, trace.mermaid())
                .map_err(|e| format!("cannot write {}: {e}", mermaid_path.display()))?;
            written.push((name, json_path, mermaid_path));
        }
        for (name, json_path, mermaid_path) in written {
            if let Some(p) = self.report.properties.iter_mut().find(|p| p.name == name) {
                p.trace = Some(json_path.display().to_string());
                p.diagram = Some(mermaid_path.display().to_string());
            }
        }
        Ok(())
    }
}
