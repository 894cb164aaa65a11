//! `raft-checker`: model-check the raft-model core with stateright.
//!
//! ```text
//! raft-checker check      exhaustive check of a bound (DFS; --bfs on request)
//! raft-checker simulate   seeded random walks, for bounds too big to exhaust
//! raft-checker explore    stateright's Explorer web UI (default 127.0.0.1:3000)
//! raft-checker bench      distinct states/s and peak memory for a named bound
//! ```
//! Exit status: 0 when every `always` property holds and (for `check` and
//! `bench`) the search completed and reached every `sometimes` property the
//! bound requires (`model::required_goals`); 1
//! when a property fails; 2 on a usage or I/O error.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use raft_checker::bounds::{BoundArgs, Bounds};
use raft_checker::model::{
    BRANCH_GOALS, REACHABILITY_PROPERTIES, RaftModel, SAFETY_PROPERTIES, applicable_goals,
};
use raft_checker::report::{Report, Verdict};
use raft_checker::run::{Outcome, RunOptions, Strategy, run};
use raft_checker::{bugs, memory, shorten};
use raft_model::Bug;
use stateright::Model;

#[derive(Parser)]
#[command(
    name = "raft-checker",
    version,
    about = "Exhaustive model checking of the raft-model core (the code the node runs) with stateright"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exhaustively check a bound: every reachable state, every property.
    Check(CheckArgs),
    /// Random walks through a bound too big to exhaust (seeded, bounded).
    Simulate(SimulateArgs),
    /// Browse the state space in stateright's Explorer web UI.
    Explore(ExploreArgs),
    /// Print distinct states/s and peak memory of an exhaustive check of a
    /// named bound (optionally also the symmetry reduction factor).
    Bench(BenchArgs),
    /// Check every seeded bug of the core at a bound and print which the
    /// checker kills (finds a counterexample for); fails if any survives.
    Mutants(MutantsArgs),
}

#[derive(Args)]
struct CommonArgs {
    #[command(flatten)]
    bound: BoundArgs,
    /// Switch on a seeded bug of the core, to see the checker fail
    /// (model/src/bugs.rs says what each one breaks).
    #[arg(long, value_name = "NAME", value_parser = bugs::parser())]
    bug: Option<Bug>,
    /// Turn symmetry reduction over server ids off.
    #[arg(long)]
    no_symmetry: bool,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Directory for counterexample traces (.jsonl, raft-trace/5) and diagrams (.mmd).
    #[arg(long, default_value = "checker-out")]
    out: PathBuf,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Breadth-first instead of depth-first (shortest counterexamples; keeps
    /// whole states in memory; stateright ignores symmetry in BFS).
    #[arg(long)]
    bfs: bool,
    /// Give up after this many seconds (the result is then not a proof).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Keep searching after the first violated property.
    #[arg(long)]
    keep_going: bool,
    /// Stop as soon as this property (e.g. StateMachineSafety) has a
    /// counterexample or example; other violations do not stop the search.
    #[arg(long, value_name = "PROPERTY", value_parser = parse_property)]
    stop_at: Option<&'static str>,
    /// Seconds to spend shortening each counterexample the depth-first
    /// search finds: a breadth-first search of the smallest bound that holds
    /// it (its witness bound) finds a shortest one there. 0 keeps the
    /// depth-first path.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    shorten: u64,
    /// Explore only paths of at most this many steps (stateright's depth
    /// target). Not exhaustive: a state first met deeper than the target is
    /// dropped and never explored again when met shallower, so a search
    /// that finds nothing proves nothing; what it finds is a real path.
    #[arg(long, value_name = "STEPS")]
    max_steps: Option<usize>,
}

fn parse_property(text: &str) -> Result<&'static str, String> {
    SAFETY_PROPERTIES
        .iter()
        .chain(REACHABILITY_PROPERTIES.iter())
        .copied()
        .find(|name| *name == text)
        .ok_or_else(|| {
            let names: Vec<&str> = SAFETY_PROPERTIES
                .iter()
                .chain(REACHABILITY_PROPERTIES.iter())
                .copied()
                .collect();
            format!(
                "unknown property `{text}`; expected one of: {}",
                names.join(", ")
            )
        })
}

#[derive(Args)]
struct SimulateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Seed of the first walk (later walks derive theirs from it).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this many states.
    #[arg(long, value_name = "N")]
    max_states: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    time: u64,
}

#[derive(Args)]
struct ExploreArgs {
    #[command(flatten)]
    bound: BoundArgs,
    /// Switch on a seeded bug of the core (model/src/bugs.rs).
    #[arg(long, value_name = "NAME", value_parser = bugs::parser())]
    bug: Option<Bug>,
    /// Address of the web UI (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    bound: BoundArgs,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also run without symmetry and print the reduction factor.
    #[arg(long)]
    symmetry_factor: bool,
}

#[derive(Args)]
struct MutantsArgs {
    #[command(flatten)]
    bound: BoundArgs,
    /// Check each bug at its own smallest bound (the bound of the
    /// counterexample found for it, checker/src/bugs.rs), not at --bound:
    /// what CI runs. A bug with no killing bound known is listed apart.
    #[arg(long, conflicts_with = "bound")]
    smallest: bool,
    /// Only these bugs (repeatable; default: every seeded bug).
    #[arg(long = "bug", value_name = "NAME", value_parser = bugs::parser())]
    bugs: Vec<Bug>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Give up on one bug after this many seconds (it then survives).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Seconds to spend shortening each counterexample (as `check
    /// --shorten`); 0 reports the depth-first one.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    shorten: u64,
    /// Also write the rows as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The checker allocates and frees a few small blocks per state (imbl
/// nodes, pointers to messages); glibc's malloc and free were a tenth of a
/// check's profile, mimalloc's a third less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(args),
        Command::Simulate(args) => simulate(args),
        Command::Explore(args) => explore(args),
        Command::Bench(args) => bench(args),
        Command::Mutants(args) => mutants(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("raft-checker: {message}");
            ExitCode::from(2)
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn options(common: &CommonArgs, bounds: Bounds, strategy: Strategy) -> RunOptions {
    RunOptions {
        bounds,
        bug: common.bug,
        strategy,
        threads: common.threads.unwrap_or_else(default_threads),
        symmetry: !common.no_symmetry,
        timeout: None,
        keep_going: false,
        stop_at: None,
        quiet: false,
        expected_states: None,
        max_steps: None,
        max_states: None,
    }
}

/// Replaces each depth-first counterexample by a shortest one of its witness
/// bound (checker/src/shorten.rs), saying what it did.
fn shorten_counterexamples(outcome: &mut Outcome, options: &RunOptions, budget: Duration) {
    let violated: Vec<&'static str> = SAFETY_PROPERTIES
        .iter()
        .copied()
        .filter(|name| outcome.discoveries.contains_key(name))
        .collect();
    for property in violated {
        let path = &outcome.discoveries[property];
        eprintln!(
            "shortening the {property} counterexample ({} steps): breadth-first search of its witness bound, for at most {} s",
            path.len().saturating_sub(1),
            budget.as_secs()
        );
        match shorten::shorten(options, property, path, budget) {
            Some((shortest, done)) => {
                eprintln!(
                    "{property}: {} steps -> {} (shortest within {}; {} states in {:.1} s)",
                    done.from_steps, done.to_steps, done.witness, done.states, done.seconds
                );
                outcome.replace_discovery(property, shortest);
            }
            None => eprintln!(
                "{property}: not shortened within {} s; keeping the depth-first path (raise --shorten)",
                budget.as_secs()
            ),
        }
    }
}

fn check(args: CheckArgs) -> Result<ExitCode, String> {
    let strategy = if args.bfs {
        Strategy::Bfs
    } else {
        Strategy::Dfs
    };
    let members = args.common.bound.resolve()?;
    if args.bfs && !args.common.no_symmetry {
        eprintln!(
            "note: stateright's BFS does not support symmetry reduction; checking without it"
        );
    }
    let mut failed = Vec::new();
    let mut reached = BTreeSet::new();
    let mut branch_goals = BTreeSet::new();
    let several = members.len() > 1;
    for (k, (name, bounds)) in members.iter().enumerate() {
        let mut options = options(&args.common, bounds.clone(), strategy.clone());
        options.timeout = args.timeout.map(Duration::from_secs);
        options.keep_going = args.keep_going;
        options.stop_at = args.stop_at;
        options.max_steps = args.max_steps;
        // A named bound as recorded (no flag, no bug): its size is known.
        if options.bug.is_none() && options.symmetry && matches!(strategy, Strategy::Dfs) {
            options.expected_states = raft_checker::bounds::recorded_states(name, bounds);
        }
        if several {
            println!("== bound {} of {}: `{name}`", k + 1, members.len());
        }
        eprintln!("checking `{name}`: {}", options.bounds);
        let mut outcome = run(&options);
        if matches!(strategy, Strategy::Dfs) && args.shorten > 0 {
            shorten_counterexamples(&mut outcome, &options, Duration::from_secs(args.shorten));
        }
        let out = if several {
            args.common.out.join(name)
        } else {
            args.common.out.clone()
        };
        let (code, goals) = finish_with_goals(&mut outcome, &args.common, &out)?;
        if code != ExitCode::SUCCESS {
            failed.push(name.clone());
        }
        reached.extend(goals);
        branch_goals.extend(
            applicable_goals(bounds)
                .into_iter()
                .filter(|goal| BRANCH_GOALS.contains(goal)),
        );
    }
    if several {
        // A suite must reach, in some member, every branch goal any member
        // makes possible (no single bound is required to).
        let missed: Vec<&str> = branch_goals.difference(&reached).copied().collect();
        println!(
            "suite: {} bound(s), {}; branch goals reached: {}",
            members.len(),
            if failed.is_empty() {
                "all OK".to_string()
            } else {
                format!("FAILED: {}", failed.join(", "))
            },
            if missed.is_empty() {
                "all".to_string()
            } else {
                format!("all but {} (FAILED)", missed.join(", "))
            }
        );
        if !missed.is_empty() {
            failed.push("branch goals".to_string());
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn simulate(args: SimulateArgs) -> Result<ExitCode, String> {
    let strategy = Strategy::Simulation {
        seed: args.seed,
        max_states: args.max_states,
    };
    let (_, bounds) = args.common.bound.resolve_one()?;
    let mut options = options(&args.common, bounds, strategy);
    options.timeout = Some(Duration::from_secs(args.time));
    eprintln!("simulating {} (seed {})", options.bounds, args.seed);
    let outcome = run(&options);
    finish(outcome, &args.common, &args.common.out)
}

/// Prints the report and counterexamples, writes traces and the JSON report.
fn finish(mut outcome: Outcome, common: &CommonArgs, out: &Path) -> Result<ExitCode, String> {
    finish_with_goals(&mut outcome, common, out).map(|(code, _)| code)
}

/// [`finish`], also returning the `sometimes` goals the run reached.
fn finish_with_goals(
    outcome: &mut Outcome,
    common: &CommonArgs,
    out: &Path,
) -> Result<(ExitCode, Vec<&'static str>), String> {
    outcome.write_traces(out)?;
    let mut text = String::new();
    for name in outcome.report.violated() {
        if let Some(trace) = outcome.trace(name) {
            text += &format!("counterexample to {name} ({} steps):\n", trace.step_count());
            text += &trace.numbered();
            // The path ends at the first state that violates the property.
            if let Some(why) = outcome
                .discoveries
                .get(name)
                .and_then(|path| path.last())
                .and_then(|(state, _)| raft_checker::violation::explain(name, state))
            {
                text += &format!(
                    "     {name} fails after step {}: {why}\n",
                    trace.step_count()
                );
            }
        }
    }
    let report: &Report = &outcome.report;
    text += &report.render();
    for p in &report.properties {
        if let (Some(trace), Some(diagram), "always") = (&p.trace, &p.diagram, p.expectation) {
            text += &format!(
                "{} trace: {trace}\n{} diagram (Mermaid): {diagram}\n\
                 watch it in a browser: cargo run --release -p raft-interop -- view {trace}\n",
                p.name, p.name
            );
        }
    }
    if let Some(path) = &common.json {
        let json = serde_json::to_string_pretty(report)
            .map_err(|e| format!("cannot serialise the report: {e}"))?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        text += &format!("report: {}\n", path.display());
    }
    print_out(&text)?;
    let reached = report
        .properties
        .iter()
        .filter(|p| p.verdict == Verdict::Reached)
        .map(|p| p.name)
        .collect();
    Ok((
        if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
        reached,
    ))
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print_out(text: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

fn explore(args: ExploreArgs) -> Result<ExitCode, String> {
    // stateright's server panics if it cannot bind: find out first, clearly.
    TcpListener::bind(args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let (_, bounds) = args.bound.resolve_one()?;
    let model = RaftModel::stopping_at_first_violation(bounds, args.bug.into_iter().collect());
    println!(
        "Explorer on http://{} (Ctrl-C to stop). Its search stops at the first \
         violation of an `always` property: the property's link then opens the \
         counterexample.",
        args.addr
    );
    model.checker().serve(args.addr);
    Ok(ExitCode::SUCCESS)
}

fn mutants(args: MutantsArgs) -> Result<ExitCode, String> {
    let bounds = if args.smallest {
        Vec::new()
    } else {
        args.bound.resolve()?
    };
    let bugs = if args.bugs.is_empty() {
        Bug::ALL.to_vec()
    } else {
        args.bugs.clone()
    };
    let threads = args.threads.unwrap_or_else(default_threads);
    for (name, bounds) in &bounds {
        println!("bound `{name}`: {bounds}");
    }
    // Each bug is checked at the bounds in order until one kills it: the
    // report's row is the killing bound, or the last one tried.
    let mut rows = Vec::new();
    let mut unknown = Vec::new();
    for bug in bugs {
        let own;
        let tried: &[(String, Bounds)] = if args.smallest {
            match bugs::smallest_bound(bug) {
                Some(bound) => {
                    own = [("smallest".to_string(), bound)];
                    &own
                }
                None => {
                    unknown.push(bugs::name(bug));
                    continue;
                }
            }
        } else {
            &bounds
        };
        let mut row = None;
        for (name, bounds) in tried {
            let tried = raft_checker::mutants::check_mutant(
                bug,
                name,
                bounds,
                threads,
                args.timeout.map(std::time::Duration::from_secs),
                (args.shorten > 0).then(|| std::time::Duration::from_secs(args.shorten)),
            );
            let killed = tried.killed();
            row = Some(tried);
            if killed {
                break;
            }
        }
        let Some(row) = row else {
            return Err("no bound to check".to_string());
        };
        println!(
            "  {:<34} {}",
            row.bug,
            match (row.violated, row.unreached) {
                (None, Some(goal)) => format!(
                    "killed at `{}`: {goal} never reached in {} states, {:.1} s",
                    row.bound, row.states, row.seconds
                ),
                (Some(property), _) => format!(
                    "killed at `{}`: {property} in {} steps, {} states, {:.1} s",
                    row.bound,
                    row.steps.unwrap_or(0),
                    row.states,
                    row.seconds
                ),
                (None, None) => format!(
                    "SURVIVED `{}`: {} states, {:.1} s",
                    row.bound, row.states, row.seconds
                ),
            }
        );
        rows.push(row);
    }
    println!("\n{}", raft_checker::mutants::render(&rows));
    if !unknown.is_empty() {
        println!(
            "no killing bound known (not checked): {} — see checker/README.md, \"Seeded bugs\"",
            unknown.join(", ")
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(if rows.iter().all(|row| row.killed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench(args: BenchArgs) -> Result<ExitCode, String> {
    let mut failed = false;
    for (name, bounds) in args.bound.resolve()? {
        failed |= bench_one(&name, bounds, &args);
    }
    // The same status as `check` of those bounds: a bench whose check failed
    // measured something that is not a proof.
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Benches one bound; true if its check failed.
fn bench_one(name: &str, bounds: Bounds, args: &BenchArgs) -> bool {
    let threads = args.threads.unwrap_or_else(default_threads);
    println!("bench bound `{name}`: {bounds}");
    let mut runs = vec![true];
    if args.symmetry_factor {
        runs.push(false);
    }
    let mut distinct = Vec::new();
    let mut failed = false;
    for symmetry in runs {
        memory::reset_peak();
        let mut options = RunOptions::check(bounds.clone());
        options.threads = threads;
        options.symmetry = symmetry;
        options.quiet = false;
        let report = run(&options).report;
        println!(
            "symmetry {:<3}: {} distinct states ({} within bounds) in {:.1} s = {:.0} distinct states/s, peak memory {}, {} thread(s), all properties: {}",
            if symmetry { "on" } else { "off" },
            report.distinct_states,
            report.distinct_states_within_bounds.unwrap_or(0),
            report.wall_time_secs,
            report.distinct_states_per_sec,
            report
                .peak_memory_bytes
                .map_or_else(|| "unknown".to_string(), memory::format_bytes),
            threads,
            if report.ok {
                "ok".to_string()
            } else {
                format!("FAILED ({})", shortfalls(&report).join(", "))
            }
        );
        failed |= !report.ok;
        distinct.push(report.distinct_states_within_bounds.unwrap_or(0));
    }
    if let [with, without] = distinct[..] {
        println!(
            "symmetry reduction factor: {:.2} ({without} / {with} distinct states within bounds)",
            without as f64 / with.max(1) as f64
        );
    }
    failed
}

/// Why a report is not ok: its violated properties, its goals not reached,
/// an incomplete search.
fn shortfalls(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report
        .properties
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Violated | Verdict::NotReached))
        .map(|p| format!("{} {}", p.name, p.verdict.text()))
        .collect();
    if !report.complete {
        out.push("search incomplete".to_string());
    }
    out
}
