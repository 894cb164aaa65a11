//! Progress while the checker runs, fed from stateright's `Reporter` events:
//! an indicatif spinner line on a terminal, a plain line every ten seconds
//! otherwise (CI logs). stateright does not expose its DFS stack or BFS queue,
//! so the line shows what it reports: states, rate, depth, elapsed time. When
//! the run is a named bound of known size (`Preset::states`, measured), the
//! line adds how far along it is and an estimate of the time left.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use stateright::report::{ReportData, ReportDiscovery, Reporter};
use stateright::{Model, Path};

/// The final figures stateright reported.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub generated: usize,
    pub distinct: usize,
    pub max_depth: usize,
    pub duration: Duration,
}

pub struct Progress<M: Model> {
    bar: Option<ProgressBar>,
    quiet: bool,
    last_line: Option<Instant>,
    /// Distinct states this search is expected to store, when known.
    expected: Option<usize>,
    pub totals: Totals,
    /// The discoveries, handed over at the end of the run.
    pub discoveries: BTreeMap<&'static str, Path<M::State, M::Action>>,
}

impl<M: Model> Progress<M> {
    /// `quiet` prints nothing (tests).
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            quiet,
            last_line: None,
            expected: None,
            totals: Totals::default(),
            discoveries: BTreeMap::new(),
        }
    }
}

impl<M: Model> Progress<M> {
    /// Shows progress against `states` distinct states (a named bound's
    /// recorded size).
    pub fn expecting(mut self, states: Option<usize>) -> Self {
        self.expected = states;
        self
    }
}

fn line(data: &ReportData, expected: Option<usize>) -> String {
    let seconds = data.duration.as_secs_f64().max(1e-3);
    let rate = data.unique_states as f64 / seconds;
    let mut line = format!(
        "distinct {} | generated {} | {:.0} distinct/s | depth {}",
        data.unique_states, data.total_states, rate, data.max_depth
    );
    if let Some(expected) = expected.filter(|n| *n > 0) {
        if data.unique_states <= expected {
            let left = (expected - data.unique_states) as f64 / rate.max(1.0);
            line.push_str(&format!(
                " | {:.0}% of {expected}, about {:.0} s left",
                100.0 * data.unique_states as f64 / expected as f64,
                left
            ));
        } else {
            line.push_str(&format!(" | past the recorded {expected}"));
        }
    }
    line
}

impl<M: Model> Reporter<M> for Progress<M>
where
    M::State: Clone,
    M::Action: Clone,
{
    fn report_checking(&mut self, data: ReportData) {
        if data.done {
            self.totals = Totals {
                generated: data.total_states,
                distinct: data.unique_states,
                max_depth: data.max_depth,
                duration: data.duration,
            };
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(line(&data, self.expected));
        } else if !self.quiet
            && self
                .last_line
                .is_none_or(|last| last.elapsed() >= Duration::from_secs(10))
        {
            self.last_line = Some(Instant::now());
            eprintln!(
                "[{:>6.0}s] {}",
                data.duration.as_secs_f64(),
                line(&data, self.expected)
            );
        }
    }

    fn report_discoveries(
        &mut self,
        _model: &M,
        discoveries: BTreeMap<&'static str, ReportDiscovery<M>>,
    ) where
        M::Action: Debug + PartialEq,
        M::State: Debug + Hash + PartialEq,
    {
        self.discoveries = discoveries
            .into_iter()
            .map(|(name, discovery)| (name, discovery.path))
            .collect();
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(250)
    }
}
