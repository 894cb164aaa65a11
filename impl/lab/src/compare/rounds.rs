//! Each round's own figures, and how busy the machine was around them.
//!
//! The merged row of a cell (its histograms added up) hides what a goal
//! "in every round" needs and what a noisy machine does: one round stalled
//! by something else moves the merged p99.9 and the throughput together.
//! So each round keeps its throughput and tail, the table adds the median
//! and the spread (lowest to highest) per row and the ours/etcd ratio of
//! every round, and each round measures the CPU the rest of the machine
//! used meanwhile: the processes other than the measured system's nodes and
//! this harness (the load generator) — the other system's idle cluster, a
//! `--follow` validator, anything else running. Not counted: kernel threads
//! and interrupt time, which on a loaded node are mostly its own disk and
//! network completions (0.10-0.14 CPUs at puts on five nodes, which made
//! every put round of ours look busy when they were counted). A round
//! counts as *busy* past [`BUSY_CPUS`].

use serde::Serialize;

use super::load::ProcessStat;

/// Other processes' CPU use, in CPUs (1.0 = one core all the time), above
/// which a round is reported as run on a busy machine (a test suite running
/// beside the comparison used 1.1-1.3 CPUs of two).
pub const BUSY_CPUS: f64 = 0.10;

/// One round of one cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoundFigures {
    pub ops_per_sec: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// CPUs used by everything on the machine but the measured nodes and
    /// this harness over the round (warm-up included), and CPUs stolen by
    /// the hypervisor; None where /proc could not be read.
    pub other_cpus: Option<f64>,
    pub steal_cpus: Option<f64>,
}

impl RoundFigures {
    /// Whether something else on the machine may have shaped this round.
    pub fn busy(&self) -> bool {
        self.other_cpus.is_some_and(|cpus| cpus > BUSY_CPUS)
            || self.steal_cpus.is_some_and(|cpus| cpus > BUSY_CPUS)
    }

    /// What a round's line says of the machine.
    pub fn machine_text(&self) -> String {
        match (self.other_cpus, self.steal_cpus) {
            (Some(other), Some(steal)) => format!(
                "  others {other:.2} CPUs{}{}",
                if steal >= 0.005 {
                    format!(", stolen {steal:.2}")
                } else {
                    String::new()
                },
                if self.busy() { " (BUSY)" } else { "" }
            ),
            _ => String::new(),
        }
    }
}

/// The machine's CPU time so far, from the first line of /proc/stat (clock
/// ticks of 1/100 s): the processes' (user, nice, system; guest time is
/// inside user) less the kernel threads', and stolen.
#[derive(Clone, Copy, Debug)]
pub struct MachineCpu {
    busy_seconds: f64,
    steal_seconds: f64,
}

impl MachineCpu {
    pub fn now() -> Option<MachineCpu> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut cpu = Self::parse(stat.lines().next()?)?;
        cpu.busy_seconds -= kernel_thread_seconds()?;
        Some(cpu)
    }

    fn parse(line: &str) -> Option<MachineCpu> {
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal ...
        let at = |i: usize| ticks.get(i).copied();
        let busy = at(0)? + at(1)? + at(2)?;
        Some(MachineCpu {
            busy_seconds: busy as f64 / 100.0,
            steal_seconds: at(7).unwrap_or(0) as f64 / 100.0,
        })
    }

    /// Other processes' CPUs and stolen CPUs between `self` and `later`,
    /// `elapsed` seconds apart, given the CPU seconds the measured servers
    /// and this harness used in that time.
    pub fn others_until(
        &self,
        later: &MachineCpu,
        elapsed: f64,
        measured_seconds: f64,
    ) -> (f64, f64) {
        let elapsed = elapsed.max(1e-3);
        let other = (later.busy_seconds - self.busy_seconds - measured_seconds).max(0.0);
        let steal = (later.steal_seconds - self.steal_seconds).max(0.0);
        (other / elapsed, steal / elapsed)
    }
}

/// CPU seconds used so far by the kernel's own threads (PF_KTHREAD in the
/// flags of /proc/<pid>/stat), which the machine's process time includes.
fn kernel_thread_seconds() -> Option<f64> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process may exit between the listing and the read: skipped.
        if let Some(stat) = ProcessStat::read(&format!("/proc/{name}/stat"))
            && stat.flags & PF_KTHREAD != 0
        {
            ticks += stat.cpu_ticks;
        }
    }
    Some(ticks as f64 / 100.0)
}

/// The median of `values` (the mean of the middle two for an even count);
/// None for none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// "lowest–highest" of `values`, with `digits` decimals.
pub fn spread(values: &[f64], digits: usize) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        String::new()
    } else {
        format!("{low:.digits$}–{high:.digits$}")
    }
}

/// Round-by-round ratios of `ours` to `etcd` (round i with round i), of
/// the figure `pick`.
pub fn by_round(
    ours: &[RoundFigures],
    etcd: &[RoundFigures],
    pick: fn(&RoundFigures) -> f64,
) -> Vec<f64> {
    ours.iter()
        .zip(etcd)
        .map(|(o, e)| pick(o) / pick(e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_line_of_proc_stat_is_read() {
        let cpu = MachineCpu::parse("cpu  1000 50 300 90000 20 10 40 7 0 0").unwrap();
        assert!((cpu.busy_seconds - 13.5).abs() < 1e-9);
        assert!((cpu.steal_seconds - 0.07).abs() < 1e-9);
        assert!(MachineCpu::parse("cpu0 1 2 3 4 5 6 7 8").is_none());
        assert!(MachineCpu::parse("cpu  1 2 x").is_none());
        // This machine's kernel threads (kthreadd at least) are found.
        if std::path::Path::new("/proc/2/stat").exists() {
            assert!(kernel_thread_seconds().is_some());
            assert!(MachineCpu::now().is_some());
        }
    }

    #[test]
    fn others_are_what_the_machine_used_beyond_the_measured_processes() {
        let before = MachineCpu {
            busy_seconds: 10.0,
            steal_seconds: 1.0,
        };
        let after = MachineCpu {
            busy_seconds: 19.0,
            steal_seconds: 1.5,
        };
        let (other, steal) = before.others_until(&after, 5.0, 8.0);
        assert!((other - 0.2).abs() < 1e-9);
        assert!((steal - 0.1).abs() < 1e-9);
        // Sampling skew never makes it negative.
        assert_eq!(before.others_until(&after, 5.0, 12.0).0, 0.0);
        let round = RoundFigures {
            other_cpus: Some(other),
            steal_cpus: Some(0.0),
            ..RoundFigures::default()
        };
        assert!(round.busy());
        assert!(round.machine_text().contains("(BUSY)"));
        let quiet = RoundFigures {
            other_cpus: Some(0.03),
            ..round
        };
        assert!(!quiet.busy());
    }

    #[test]
    fn medians_spreads_and_ratios_by_round() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(spread(&[2.0, 1.26, 3.5], 1), "1.3–3.5");
        let round = |ops_per_sec| RoundFigures {
            ops_per_sec,
            ..RoundFigures::default()
        };
        let ratios = by_round(
            &[round(200.0), round(330.0)],
            &[round(100.0), round(150.0)],
            |r| r.ops_per_sec,
        );
        assert_eq!(ratios, vec![2.0, 2.2]);
    }
}
