//! `raft-interop`: validate traces of the node and counterexamples of the
//! checker against raft-model, and export them for TLA+ tools.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "raft-interop",
    version,
    about = "Replay Raft traces through the model and export them to TLA+ tools",
    long_about = "Replays the traces a raft-node cluster recorded (raft-node run --trace-dir DIR) or a \
                  counterexample of raft-checker (checker-out/*.jsonl), both raft-trace/5, through raft-model, the same \
                  transition functions the checker explored, and reports the first event the model \
                  does not allow. A validated run can be exported as ITF JSON and as input for \
                  spec/TraceRaft.tla under TLC.\n\nExit status: 0 valid, 1 invalid, 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay traces through the model; exit 1 at the first bad event.
    Validate {
        /// Trace directories of a cluster's nodes (their segments
        /// node-<id>.<seq>.jsonl.zst or .jsonl, read in order, lazily), or
        /// trace files (a node's segment, a checker's counterexample); all
        /// raft-trace/5, compact or JSON (detected from the first bytes).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Tail the directories of a running cluster: validate the events as
        /// they are written, through restarts and rotation; report progress
        /// on stderr, and exit 1 at the first violation (Ctrl-C: stop).
        #[arg(long)]
        follow: bool,
        /// Merged steps after which the network forgets a message that no
        /// event produced since (0: never; memory then grows with the trace).
        #[arg(long, value_name = "STEPS", default_value_t = raft_interop::Options::DEFAULT_WINDOW)]
        window: u64,
        /// --follow: seconds a node may wait for a message while nothing
        /// progresses before the wait is reported as a violation.
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        grace: f64,
        /// --follow: seconds between progress lines.
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        progress: f64,
        /// --follow: stop (exit 0 if valid so far) once nothing new has been
        /// written for this many seconds.
        #[arg(long, value_name = "SECONDS")]
        idle_exit: Option<f64>,
        /// --follow: write progress and violation as Prometheus text into
        /// this file at every progress line (node_exporter's textfile form).
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
        /// Also write the validated run as ITF JSON to this file.
        #[arg(long, value_name = "FILE")]
        itf: Option<PathBuf>,
        /// Also write trace.ndjson and TraceRaft.cfg for spec/TraceRaft.tla
        /// into this directory (then: cd spec && java -cp tla2tools.jar
        /// tlc2.TLC -config DIR/TraceRaft.cfg TraceRaft.tla).
        #[arg(long, value_name = "DIR")]
        tla: Option<PathBuf>,
    },
    /// Write a self-contained HTML page that replays the traces in a browser
    /// (servers, logs, messages in flight, each step's action; for a
    /// counterexample, the violated property). No network, no build step.
    View {
        /// Trace files (a checker's counterexample, a node's), or
        /// directories of node-*.jsonl files (one cluster).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where to write the page (default: next to the first path, .html).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// A failed chaos run's finding to show beside the trace: its
        /// violation-<key>.json or lost-write-<key>.json (the offending
        /// slice of the client history, drawn as a timeline). Those in the
        /// run directory of a `traces` directory given are shown anyway.
        #[arg(long, value_name = "FILE")]
        history: Vec<PathBuf>,
    },
    /// Rewrite traces in another form: JSON lines for people and tools, or
    /// compact. A trace directory gives one file per node, its segments in
    /// order.
    Convert {
        /// Trace directories or files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The form to write: json or compact.
        #[arg(long, value_name = "json|compact", default_value = "json")]
        to: raft_interop::Format,
        /// Where to write (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate {
            paths,
            follow,
            window,
            grace,
            progress,
            idle_exit,
            metrics_file,
            itf,
            tla,
        } => {
            if follow {
                let options = raft_interop::follow::FollowOptions {
                    window,
                    grace: Duration::from_secs_f64(grace),
                    progress: Duration::from_secs_f64(progress),
                    idle_exit: idle_exit.map(Duration::from_secs_f64),
                    metrics_file,
                    ..Default::default()
                };
                ExitCode::from(raft_interop::follow::run_command(&paths, &options))
            } else {
                validate(&paths, window, itf, tla)
            }
        }
        Command::Convert { paths, to, out } => {
            for path in &paths {
                match raft_interop::convert(path, &out, to) {
                    Ok(files) => {
                        for file in files {
                            println!("{}", file.display());
                        }
                    }
                    Err(failure) => {
                        eprintln!("error: {failure}");
                        return ExitCode::from(2);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::View {
            paths,
            out,
            history,
        } => view(&paths, &history, out),
    }
}

fn validate(
    paths: &[PathBuf],
    window: u64,
    itf: Option<PathBuf>,
    tla: Option<PathBuf>,
) -> ExitCode {
    let streams = match raft_interop::read_streams(paths) {
        Ok(streams) => streams,
        Err(failure) => {
            eprintln!("error: {failure}");
            return ExitCode::from(if failure.line == 0 { 2 } else { 1 });
        }
    };
    // Keep every step's state only when an export needs it.
    let keep_run = itf.is_some() || tla.is_some();
    let started = Instant::now();
    let options = raft_interop::Options { keep_run, window };
    let validated = match raft_interop::validate_opts(streams, options) {
        Ok(v) => v,
        Err(failure) => {
            eprintln!("INVALID: {failure}");
            return ExitCode::from(1);
        }
    };
    let events: usize = validated.events.values().sum();
    if let Some(context) = &validated.context {
        println!(
            "checker trace: {} of {} ({}){}",
            if context.expectation == "always" {
                "counterexample"
            } else {
                "example"
            },
            context.property,
            context.expectation,
            context
                .bug
                .as_ref()
                .map(|bug| format!(", seeded bug {bug}"))
                .unwrap_or_default()
        );
    }
    println!(
        "{} in {:.2} s ({:.0} events/s)",
        validated.summary(),
        started.elapsed().as_secs_f64(),
        events as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    let source = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(path) = itf {
        let text = raft_interop::itf::export(&validated, &source).to_string();
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {err}", path.display());
            return ExitCode::from(2);
        }
        println!("ITF trace: {}", path.display());
    }
    if let Some(dir) = tla {
        if let Err(err) = write_tla(&validated, &dir) {
            eprintln!("error: cannot write into {}: {err}", dir.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn write_tla(validated: &raft_interop::Validated, dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = std::path::absolute(dir)?;
    let trace = dir.join("trace.ndjson");
    std::fs::write(&trace, raft_interop::tla::ndjson(validated))?;
    let config = dir.join("TraceRaft.cfg");
    std::fs::write(
        &config,
        raft_interop::tla::config(validated, &trace.display().to_string()),
    )?;
    println!(
        "TLA+ trace: {}\nrun TLC: cd spec && java -cp tla2tools.jar tlc2.TLC -config {} TraceRaft.tla",
        trace.display(),
        config.display()
    );
    Ok(())
}
fn view(paths: &[PathBuf], history: &[PathBuf], out: Option<PathBuf>) -> ExitCode {
    use raft_interop::view;
    let out = out.unwrap_or_else(|| view::default_out(paths));
    let written = view::page_of(paths, history, &view::title(paths)).and_then(|page| {
        std::fs::write(&out, page).map_err(|err| format!("{}: {err}", out.display()))
    });
    match written {
        Ok(()) => {
            let shown = std::path::absolute(&out).unwrap_or(out);
            println!("open file://{}", shown.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
