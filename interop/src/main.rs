//! `raft-interop`: validate traces of the node and counterexamples of the
//! checker against raft-model, and export them for TLA+ tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "raft-interop",
    version,
    about = "Replay Raft traces through the model and export them to TLA+ tools",
    long_about = "Replays the traces a raft-node cluster recorded (raft-node run --trace-dir DIR) or a \
                  counterexample of raft-checker (checker-out/*.jsonl), both raft-trace/3, through raft-model, the same \
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
        /// Trace files (a node's, or a checker's counterexample), or
        /// directories of node-*.jsonl files (one cluster); all raft-trace/3.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { paths, itf, tla } => validate(&paths, itf, tla),
        Command::View { paths, out } => view(&paths, out),
    }
}

fn view(paths: &[PathBuf], out: Option<PathBuf>) -> ExitCode {
    use raft_interop::view;
    let out = out.unwrap_or_else(|| view::default_out(paths));
    let written = view::trace_files(paths)
        .and_then(|files| view::page(&files, &view::title(paths)))
        .and_then(|page| std::fs::write(&out, page));
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

fn validate(paths: &[PathBuf], itf: Option<PathBuf>, tla: Option<PathBuf>) -> ExitCode {
    let streams = match raft_interop::read_streams(paths) {
        Ok(streams) => streams,
        Err(failure) => {
            eprintln!("error: {failure}");
            return ExitCode::from(if failure.line == 0 { 2 } else { 1 });
        }
    };
    // Keep every step's state only when an export needs it.
    let keep_run = itf.is_some() || tla.is_some();
    let validated = match raft_interop::validate_with(streams, keep_run) {
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
        "valid: {} nodes, {events} events ({}), {} restarts, {} events undone by crashes, \
         {} distinct messages ({} copies dropped, {} duplicated), a merged run of {} steps",
        validated.events.len(),
        validated
            .events
            .iter()
            .map(|(node, n)| format!("node {node}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        validated.restarts,
        validated.lost,
        validated.messages,
        validated.dropped,
        validated.duplicated,
        events - validated.lost
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
