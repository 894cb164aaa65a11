//! Running stateright on the model: exhaustive (DFS, or BFS on request) or by
//! random simulation, then turning its results into a [`Report`] and traces.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, Instant};

use raft_model::Bug;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, UniformChooser};

use crate::action::Action;
use crate::bounds::Bounds;
use crate::bugs;
use crate::memory;
use crate::model::{REACHABILITY_PROPERTIES, RaftModel, SAFETY_PROPERTIES};
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
            quiet: true,
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
    };
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
    let start = Instant::now();
    match options.strategy {
        Strategy::Dfs => finish(builder.spawn_dfs(), options, symmetry, start),
        Strategy::Bfs => finish(builder.spawn_bfs(), options, symmetry, start),
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

/// `path` cut at its first state that shows property `name` (violates an
/// `always`, satisfies a `sometimes`). stateright keeps exploring past a
/// violating state and overwrites a property's discovery with each later
/// one, so a reported path can run on past the first violation.
fn first_discovery(model: &RaftModel, name: &str, mut path: StatePath) -> StatePath {
    let Some(property) = model.properties().into_iter().find(|p| p.name == name) else {
        return path;
    };
    let shows = |state: &RaftState| match property.expectation {
        Expectation::Always => !(property.condition)(model, state),
        Expectation::Sometimes | Expectation::Eventually => (property.condition)(model, state),
    };
    if let Some(first) = path.iter().position(|(state, _)| shows(state)) {
        path.truncate(first + 1);
        if let Some(last) = path.last_mut() {
            last.1 = None;
        }
    }
    path
}

fn finish<C>(checker: C, options: &RunOptions, symmetry: bool, start: Instant) -> Outcome
where
    C: Checker<RaftModel> + Send + Sync,
{
    let mut progress = Progress::<RaftModel>::new(options.quiet);
    let checker = checker.join_and_report(&mut progress);
    let elapsed = start.elapsed();
    let model = checker.model();
    let totals = progress.totals.clone();
    let discoveries: BTreeMap<&'static str, StatePath> = std::mem::take(&mut progress.discoveries)
        .into_iter()
        .map(|(name, path): (&'static str, Path<RaftState, Action>)| {
            (name, first_discovery(model, name, path.into_vec()))
        })
        .collect();

    let exhaustive = !matches!(options.strategy, Strategy::Simulation { .. });
    let violated = SAFETY_PROPERTIES
        .iter()
        .any(|name| discoveries.contains_key(name));
    let all_found = discoveries.len() == model.properties().len();
    let timed_out = options.timeout.is_some_and(|timeout| elapsed >= timeout);
    let stopped_early = timed_out
        || all_found
        || options
            .stop_at
            .is_some_and(|name| discoveries.contains_key(name))
        || (violated && !options.keep_going && options.stop_at.is_none());
    let complete = exhaustive && !stopped_early;

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
    for name in REACHABILITY_PROPERTIES {
        let verdict = if discoveries.contains_key(name) {
            Verdict::Reached
        } else {
            Verdict::NotReached
        };
        properties.push(property_report(name, "sometimes", verdict, &discoveries));
    }
    let all_reached = REACHABILITY_PROPERTIES
        .iter()
        .all(|name| discoveries.contains_key(name));
    let ok = !violated && (!exhaustive || (complete && all_reached));

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

    /// Writes a trace (`raft-trace/2` lines) and a Mermaid diagram for every
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
