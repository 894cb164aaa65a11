//! Random runs of a small cluster, for quickcheck.
//!
//! A [`Scenario`] is a cluster size, a cap on entries per AppendEntries
//! request and up to [`MAX_OPS`] operations. Operations name servers and
//! messages by numbers taken modulo what exists, so every sequence is valid
//! and shrinking (dropping operations) keeps it valid.

use quickcheck::{Arbitrary, Gen};
use raft_model::{Bug, NodeId};

use super::Cmd;
use super::cluster::{Cluster, Stats};
use super::observer::{Property, Violation};

/// The longest run generated.
pub const MAX_OPS: usize = 200;

/// One thing that happens to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Server `i`'s election timer fires.
    Timeout(u8),
    /// The heartbeat of the `i`-th server that believes it is leader is due.
    SendAppendEntries(u8),
    /// A client sends server `i` a new command; a follower that knows the
    /// leader redirects it there, as the node does.
    ClientRequest(u8),
    /// One of the oldest messages is delivered (and leaves the network):
    /// see [`Mix::window`].
    Deliver(u16),
    /// Message `k` is duplicated; the copy joins the end of the network.
    Duplicate(u16),
    /// One of the oldest messages is lost.
    Drop(u16),
    /// Server `i` crashes and restarts from its disk.
    Restart(u8),
    /// Server `i` snapshots everything it has committed.
    CompactLog(u8),
    /// The parallel write of the `i`-th leader with entries not yet durable
    /// completes (parallel writes only).
    LogPersisted(u8),
}

/// 0..100, to pick operations by percentage.
const PERCENT: [u8; 100] = {
    let mut percent = [0; 100];
    let mut i = 0;
    while i < 100 {
        percent[i] = i as u8;
        i += 1;
    }
    percent
};

/// How often each kind of operation happens, in percent (deliveries take
/// the rest), and how far deliveries reorder messages.
///
/// Deliveries dominate so that elections finish and entries commit;
/// timeouts are rare enough that leaders usually survive a while and
/// frequent enough for many terms and competing candidates per run.
/// (tests/sim_reaches_interesting_states.rs measures what runs reach. Drawing
/// a different mix per scenario, "swarm testing", was tried: it reached
/// fewer commits and found no seeded bug more often.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub timeout: u8,
    pub heartbeat: u8,
    pub client_request: u8,
    pub duplicate: u8,
    pub drop: u8,
    pub restart: u8,
    pub compact: u8,
    /// Parallel writes completing: 0 unless the scenario's leaders write in
    /// parallel (`Scenario::parallel`).
    pub log_persisted: u8,
    /// Deliveries and drops pick among this many of the oldest messages:
    /// reordered enough to interleave rounds, while duplicates (which join
    /// the end) still arrive long after their original.
    pub window: usize,
}

impl Mix {
    /// The mix for a cluster of `servers`. A heartbeat puts a message per
    /// peer on the network and a 5-server election needs more deliveries,
    /// so a 5-server cluster gets fewer of both.
    pub fn for_cluster(servers: u8) -> Mix {
        let (timeout, heartbeat, client_request) = if servers > 3 { (2, 4, 14) } else { (5, 8, 7) };
        Mix {
            timeout,
            heartbeat,
            client_request,
            duplicate: 2,
            drop: 3,
            restart: 2,
            compact: 2,
            log_persisted: 0,
            window: 8,
        }
    }

    /// A random operation drawn from this mix.
    pub fn op(&self, g: &mut Gen) -> Op {
        let server = u8::arbitrary(g);
        let message = u16::arbitrary(g);
        let percent = *g.choose(&PERCENT).unwrap_or(&0);
        let kinds = [
            (self.timeout, Op::Timeout(server)),
            (self.heartbeat, Op::SendAppendEntries(server)),
            (self.client_request, Op::ClientRequest(server)),
            (self.duplicate, Op::Duplicate(message)),
            (self.drop, Op::Drop(message)),
            (self.restart, Op::Restart(server)),
            (self.compact, Op::CompactLog(server)),
            (self.log_persisted, Op::LogPersisted(server)),
        ];
        let mut threshold = 0;
        for (weight, op) in kinds {
            threshold += weight;
            if percent < threshold {
                return op;
            }
        }
        Op::Deliver(message)
    }
}

/// Needed to shrink a `Vec<Op>`; operations themselves do not shrink.
impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        Mix::for_cluster(3).op(g)
    }
}

/// A random run: cluster size, AppendEntries cap, mix and operations.
/// (The mix is recorded so that a printed counterexample is self-contained.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub servers: u8,
    pub max_append_entries: usize,
    /// Leaders write their own appends in parallel with replication.
    pub parallel_write: bool,
    /// Pipelined replication's window (0: off).
    pub max_inflight: usize,
    pub mix: Mix,
    pub ops: Vec<Op>,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Scenario {
        let servers = *g.choose(&[3, 3, 3, 5]).unwrap_or(&3);
        // Small caps make leaders send several batches, so requests whose
        // leader_commit runs ahead of their entries really occur.
        let max_append_entries = *g.choose(&[1, 2, 3, 256]).unwrap_or(&256);
        let mix = Mix::for_cluster(servers);
        // Long runs: a short one rarely gets past its first elections.
        // (Shrinking, not generation, makes the short counterexamples.)
        let len = MAX_OPS / 2 + usize::from(u16::arbitrary(g)) % (MAX_OPS / 2 + 1);
        Scenario {
            servers,
            max_append_entries,
            parallel_write: false,
            max_inflight: 0,
            mix,
            ops: (0..len).map(|_| mix.op(g)).collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Scenario>> {
        let this = self.clone();
        Box::new(self.ops.shrink().map(move |ops| Scenario {
            ops,
            ..this.clone()
        }))
    }
}

impl Scenario {
    /// A random run whose leaders write in parallel with replication:
    /// drawn like any other, with one operation in ten a leader's write
    /// completing (taken from the deliveries' share).
    pub fn parallel(g: &mut Gen) -> Scenario {
        let mut scenario = Scenario::arbitrary(g);
        scenario.parallel_write = true;
        scenario.mix.log_persisted = 10;
        scenario.ops = (0..scenario.ops.len())
            .map(|_| scenario.mix.op(g))
            .collect();
        scenario
    }
}

/// A random run whose leaders pipeline their requests (a window of one,
/// two or four requests), on a network that reorders, duplicates and loses
/// as in any other run: a lost or overtaken request leaves a gap that a
/// rejection must take the leader back over.
#[derive(Clone, Debug)]
pub struct PipelinedScenario(pub Scenario);

impl Arbitrary for PipelinedScenario {
    fn arbitrary(g: &mut Gen) -> PipelinedScenario {
        let mut scenario = Scenario::arbitrary(g);
        scenario.max_inflight = *g.choose(&[1, 2, 4]).unwrap_or(&2);
        PipelinedScenario(scenario)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = PipelinedScenario>> {
        Box::new(self.0.shrink().map(PipelinedScenario))
    }
}

/// A scenario of [`Scenario::parallel`], for quickcheck.
#[derive(Clone, Debug)]
pub struct ParallelScenario(pub Scenario);

impl Arbitrary for ParallelScenario {
    fn arbitrary(g: &mut Gen) -> ParallelScenario {
        ParallelScenario(Scenario::parallel(g))
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = ParallelScenario>> {
        Box::new(self.0.shrink().map(ParallelScenario))
    }
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The first violation, and the number of the operation that caused it.
    pub violation: Option<(Violation, usize)>,
    pub stats: Stats,
}

/// Runs `scenario` with `bugs` switched on in every server, checking
/// `checks` after every step; stops at the first violation.
pub fn run(scenario: &Scenario, bugs: &[Bug], checks: &[Property]) -> Outcome {
    let n = NodeId::from(scenario.servers);
    let mut cluster = Cluster::new(n, checks)
        .with_max_append_entries(scenario.max_append_entries)
        .with_parallel_write(scenario.parallel_write)
        .with_max_inflight(scenario.max_inflight)
        .with_bugs(bugs);
    let mut next_command: Cmd = 1;
    let server = |i: u8| NodeId::from(i) % n + 1;
    for (step, op) in scenario.ops.iter().enumerate() {
        let messages = cluster.network.len();
        let message = |k: u16| usize::from(k) % messages.min(scenario.mix.window);
        match *op {
            Op::Timeout(i) => {
                cluster.timeout(server(i));
            }
            Op::SendAppendEntries(i) => {
                // Only leaders send: pick among them (stale ones included)
                // rather than waste the operation on a follower.
                let leaders: Vec<NodeId> = cluster
                    .servers
                    .iter()
                    .filter(|s| s.is_leader())
                    .map(|s| s.id())
                    .collect();
                if !leaders.is_empty() {
                    cluster.send_append_entries(leaders[usize::from(i) % leaders.len()]);
                }
            }
            Op::ClientRequest(i) => {
                let asked = cluster.server(server(i));
                let to = if asked.is_leader() {
                    asked.id()
                } else {
                    asked.leader_id().unwrap_or(asked.id())
                };
                if cluster.client_request(to, next_command).is_some() {
                    next_command += 1;
                }
            }
            Op::Deliver(k) if messages > 0 => {
                cluster.deliver(message(k));
            }
            Op::Duplicate(k) if messages > 0 => {
                let copy = cluster.network[usize::from(k) % messages].clone();
                cluster.network.push(copy);
            }
            Op::Drop(k) if messages > 0 => {
                cluster.network.remove(message(k));
            }
            Op::Deliver(_) | Op::Duplicate(_) | Op::Drop(_) => {}
            Op::Restart(i) => cluster.restart(server(i)),
            Op::CompactLog(i) => cluster.compact(server(i)),
            Op::LogPersisted(i) => {
                let writing: Vec<NodeId> = cluster
                    .servers
                    .iter()
                    .filter(|s| s.durable_index() < s.log().last_index())
                    .map(|s| s.id())
                    .collect();
                if !writing.is_empty() {
                    cluster.log_persisted(writing[usize::from(i) % writing.len()]);
                }
            }
        }
        if let Some(violation) = cluster.violation.take() {
            return Outcome {
                violation: Some((violation, step)),
                stats: cluster.stats(),
            };
        }
    }
    Outcome {
        violation: None,
        stats: cluster.stats(),
    }
}

/// A quickcheck property: `scenario` runs with no bug and `property` holds.
pub fn holds(scenario: &Scenario, property: Property) -> quickcheck::TestResult {
    match run(scenario, &[], &[property]).violation {
        None => quickcheck::TestResult::passed(),
        Some((violation, step)) => {
            quickcheck::TestResult::error(format!("at operation {step}: {violation}"))
        }
    }
}

/// The number of quickcheck cases per property: 1,000 by default,
/// `QUICKCHECK_TESTS` for a longer soak.
pub fn cases() -> u64 {
    std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|tests| tests.parse().ok())
        .unwrap_or(1000)
}

/// Searches seeds `0..seeds` (deterministic, so a failure reproduces) for a
/// scenario where `bugs` make some property of `checks` fail. Returns the
/// seed, the scenario shrunk to a minimal one still failing, and the
/// violation it shows.
pub fn find_violation(
    bugs: &[Bug],
    checks: &[Property],
    seeds: u64,
) -> Option<(u64, Scenario, Violation)> {
    for seed in 0..seeds {
        let mut g = Gen::from_size_and_seed(MAX_OPS, seed);
        let scenario = Scenario::arbitrary(&mut g);
        if let Some((violation, _)) = run(&scenario, bugs, checks).violation {
            let (shrunk, violation) = shrink(scenario, violation, bugs, checks);
            return Some((seed, shrunk, violation));
        }
    }
    None
}

/// Greedy shrinking: keep taking the first smaller scenario that still
/// violates the same property (bounded, like everything in tests).
fn shrink(
    mut scenario: Scenario,
    mut violation: Violation,
    bugs: &[Bug],
    checks: &[Property],
) -> (Scenario, Violation) {
    for _ in 0..MAX_OPS * 4 {
        let smaller =
            scenario
                .shrink()
                .find_map(|candidate| match run(&candidate, bugs, checks).violation {
                    Some((found, _)) if found.property == violation.property => {
                        Some((candidate, found))
                    }
                    _ => None,
                });
        match smaller {
            Some((candidate, found)) => {
                scenario = candidate;
                violation = found;
            }
            None => break,
        }
    }
    (scenario, violation)
}
