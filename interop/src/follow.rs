//! Online conformance checking: `raft-interop validate --follow DIR...`.
//!
//! Tails a running cluster's trace directories and replays the events
//! through the model as they are written, with the same validator as the
//! offline check ([`crate::Validator`], lazily reading each node's segments
//! and waiting at their ends). It survives what a running cluster does to
//! its files:
//!
//! - a node restarting opens a new segment (its header says `restart`): the
//!   reader finishes the old one and goes on with the new one;
//! - rotation, likewise; retention may delete a segment once it has been
//!   read (an open file stays readable), and one deleted before it was read
//!   is reported by name (raise `trace_keep_files`);
//! - a node whose first segment appears later (it started later) joins when
//!   it does.
//!
//! Progress goes to a log line every `progress` (and, with a metrics file,
//! to a Prometheus text file, the node_exporter textfile collector's form);
//! the first violation ends the follow with the validator's report. A node
//! waiting for a message no event has produced is not yet a violation when
//! following (the sender's lines may be on their way); it is once nothing
//! has progressed for `grace`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::validate::{Failure, Options, Stream, Validated, Validator};

/// How to follow.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// The network's window (see [`Options::window`]).
    pub window: u64,
    /// How long a node may wait for a message while nothing progresses
    /// before the wait is a violation.
    pub grace: Duration,
    /// Between two progress reports.
    pub progress: Duration,
    /// Between two looks at files that had nothing new.
    pub poll: Duration,
    /// Stop (successfully) once nothing new has come for this long.
    pub idle_exit: Option<Duration>,
    /// Write the progress as Prometheus text to this file at every report.
    pub metrics_file: Option<PathBuf>,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            window: Options::DEFAULT_WINDOW,
            grace: Duration::from_secs(10),
            progress: Duration::from_secs(10),
            poll: Duration::from_millis(100),
            idle_exit: None,
            metrics_file: None,
        }
    }
}

/// A progress report.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Events validated so far.
    pub events: usize,
    /// Events per second since the previous report.
    pub rate: f64,
    /// Per node: events validated and the file being read.
    pub nodes: Vec<(raft_model::NodeId, usize, String)>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "follow: {} events valid ({:.0}/s) after {:.0} s",
            self.events,
            self.rate,
            self.elapsed.as_secs_f64()
        )?;
        for (node, events, file) in &self.nodes {
            let name = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            write!(f, "; node {node}: {events} at {name}")?;
        }
        Ok(())
    }
}

/// Follows the traces in `dirs` until `stop` is set, `idle_exit` passes
/// with nothing new, or a violation (the `Err`). `report` gets every
/// progress report.
pub fn follow(
    dirs: &[PathBuf],
    options: &FollowOptions,
    stop: &AtomicBool,
    mut report: impl FnMut(&Progress),
) -> Result<Validated, Failure> {
    let mut validator = Validator::new(Options {
        keep_run: false,
        window: options.window,
    });
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut last_report = (Instant::now(), 0usize);
    loop {
        // A node's first segment may appear at any time (one directory
        // listing per poll).
        discover(dirs, &mut validator)?;
        let blocked = loop {
            let round = validator.round()?;
            if round.progressed {
                last_progress = Instant::now();
            }
            if last_report.0.elapsed() >= options.progress {
                let progress = progress(&validator, started, &mut last_report);
                write_metrics(options, &progress, None);
                report(&progress);
            }
            if !round.progressed || stop.load(Ordering::Relaxed) {
                break round.blocked;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let idle = last_progress.elapsed();
        if blocked > 0 && idle >= options.grace {
            let failure = validator.deadlock();
            write_metrics(
                options,
                &progress(&validator, started, &mut last_report),
                Some(&failure),
            );
            return Err(failure);
        }
        if options.idle_exit.is_some_and(|limit| idle >= limit) {
            break;
        }
        std::thread::sleep(options.poll);
    }
    let progress = progress(&validator, started, &mut last_report);
    write_metrics(options, &progress, None);
    report(&progress);
    validator.finish()
}

/// Adds the nodes whose first segment has appeared.
fn discover(dirs: &[PathBuf], validator: &mut Validator) -> Result<(), Failure> {
    let known = validator.nodes();
    for dir in dirs {
        let segments = match raft_trace::segments::list(dir) {
            Ok(segments) => segments,
            // Not there yet: the cluster has not started.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Failure::io(dir, &err)),
        };
        let mut last = None;
        for segment in &segments {
            if last == Some(segment.node) || known.contains(&segment.node) {
                continue;
            }
            last = Some(segment.node);
            validator.add(Stream::segments(dir, segment.node, segment, true)?)?;
        }
    }
    Ok(())
}

fn progress(validator: &Validator, started: Instant, last: &mut (Instant, usize)) -> Progress {
    let events = validator.events();
    let seconds = last.0.elapsed().as_secs_f64().max(1e-9);
    let rate = (events - last.1) as f64 / seconds;
    *last = (Instant::now(), events);
    Progress {
        events,
        rate,
        nodes: validator.positions(),
        elapsed: started.elapsed(),
    }
}

/// The progress as Prometheus text (written to a temporary file, then
/// renamed over the file: a scraper never reads half of it).
fn write_metrics(options: &FollowOptions, progress: &Progress, failure: Option<&Failure>) {
    let Some(path) = &options.metrics_file else {
        return;
    };
    let mut text = String::new();
    text.push_str(
        "# HELP raft_trace_follow_events_validated Core events the model allowed so far.\n\
         # TYPE raft_trace_follow_events_validated counter\n",
    );
    text.push_str(&format!(
        "raft_trace_follow_events_validated {}\n",
        progress.events
    ));
    for (node, events, _) in &progress.nodes {
        text.push_str(&format!(
            "raft_trace_follow_events_validated_node{{node=\"{node}\"}} {events}\n"
        ));
    }
    text.push_str(
        "# HELP raft_trace_follow_violation 1 once an event the model does not allow was found.\n\
         # TYPE raft_trace_follow_violation gauge\n",
    );
    text.push_str(&format!(
        "raft_trace_follow_violation {}\n",
        u8::from(failure.is_some())
    ));
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// `raft-interop validate --follow DIRS` (and `raft-lab follow`, which
/// `raft-lab compare --follow` runs): follows until a violation, prints
/// progress on stderr, and returns the exit code: 0 valid (stopped by
/// `idle_exit`), 1 a violation, 2 an error (unreadable traces).
pub fn run_command(dirs: &[PathBuf], options: &FollowOptions) -> u8 {
    for dir in dirs {
        if dir.exists() && !dir.is_dir() {
            eprintln!("error: --follow takes trace directories: {}", dir.display());
            return 2;
        }
    }
    let stop = AtomicBool::new(false);
    eprintln!(
        "follow: validating {} as the nodes write",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    match follow(dirs, options, &stop, |progress| eprintln!("{progress}")) {
        Ok(validated) => {
            println!("{}", validated.summary());
            0
        }
        Err(failure) => {
            eprintln!("INVALID: {failure}");
            if failure.line == 0 { 2 } else { 1 }
        }
    }
}
