//! Liveness under partial failure (issue 16), as deterministic scenarios over
//! the real core: servers driven by ticks, a randomized but seeded election
//! timeout per server, and a network of directed links that tests cut and
//! restore one way or both ways (not only whole partitions). A message sent
//! over a link that is down when it would arrive is lost.
//!
//! The core is the one the node runs; what the scenario plays is the node's
//! driver: a follower's or candidate's timer fires `Timeout`, a leader's
//! paces `CheckQuorum`, a leader sends heartbeats every few ticks.
//!
//! The scenarios that need PreVote (a server rejoining with a higher term, a
//! non-transitive partition) are written and `#[ignore]`d with what they
//! measure on today's core: they are the acceptance tests of that work.

mod common;

use std::collections::{BTreeSet, VecDeque};

use common::{Msg, TestEffects, TestServer, members, server};
use raft_model::{NodeId, Refused, Role, Step, Term};

/// Ticks of one heartbeat interval.
const HEARTBEAT: u64 = 2;
/// The election timeout is drawn from `ELECTION..2 * ELECTION` ticks.
const ELECTION: u64 = 10;

struct Sim {
    servers: Vec<TestServer>,
    /// Ticks left on each server's election timer.
    timers: Vec<u64>,
    /// Messages in flight, each with the tick it arrives at (one tick later).
    in_flight: VecDeque<(u64, Msg)>,
    /// Directed links that are down.
    down: BTreeSet<(NodeId, NodeId)>,
    now: u64,
    /// xorshift state: the "random" timeouts are a function of the seed.
    rng: u64,
    /// Every (term, leader) that won an election, in order.
    elections: Vec<(Term, NodeId)>,
}

impl Sim {
    fn new(n: u64, check_quorum: bool, seed: u64) -> Sim {
        let config = members(n);
        let mut sim = Sim {
            servers: (1..=n)
                .map(|id| server(id, &config).with_check_quorum(check_quorum))
                .collect(),
            timers: vec![0; n as usize],
            in_flight: VecDeque::new(),
            down: BTreeSet::new(),
            now: 0,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            elections: Vec::new(),
        };
        for at in 0..n as usize {
            sim.timers[at] = sim.election_timeout();
        }
        sim
    }

    fn election_timeout(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ELECTION + self.rng % ELECTION
    }

    fn cut(&mut self, a: NodeId, b: NodeId) {
        self.down.insert((a, b));
        self.down.insert((b, a));
    }

    fn heal(&mut self) {
        self.down.clear();
    }

    /// Cuts every link of `id`, both ways.
    fn isolate(&mut self, id: NodeId) {
        for other in 1..=self.servers.len() as NodeId {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    fn perform(&mut self, at: usize, effects: TestEffects) {
        if effects.reset_election_timer {
            self.timers[at] = self.election_timeout();
        }
        for message in effects.messages {
            self.in_flight.push_back((self.now + 1, message));
        }
    }

    /// One driver step on server `at`; a step the core does not enable is
    /// no step (as the node's `step_timer`).
    fn step(&mut self, at: usize, step: Step<u32, common::Image, Msg>) {
        let was = (self.servers[at].role(), self.servers[at].current_term());
        match self.servers[at].step(step) {
            Ok(effects) => self.perform(at, effects),
            Err(Refused::NotEnabled(_)) => {}
            Err(refused) => panic!("a driver step was refused: {refused}"),
        }
        let s = &self.servers[at];
        if s.role() == Role::Leader && was != (Role::Leader, s.current_term()) {
            self.elections.push((s.current_term(), s.id()));
        }
    }

    fn tick(&mut self) {
        self.now += 1;
        while self
            .in_flight
            .front()
            .is_some_and(|(due, _)| *due <= self.now)
        {
            let Some((_, message)) = self.in_flight.pop_front() else {
                break;
            };
            if self.down.contains(&(message.from, message.to)) {
                continue;
            }
            let at = (message.to - 1) as usize;
            self.step(at, Step::receive(message));
        }
        for at in 0..self.servers.len() {
            if self.servers[at].is_leader() && self.now % HEARTBEAT == 0 {
                self.step(at, Step::SendAppendEntries);
            }
            self.timers[at] = self.timers[at].saturating_sub(1);
            if self.timers[at] == 0 {
                let fire = if self.servers[at].is_leader() {
                    Step::CheckQuorum
                } else {
                    Step::Timeout
                };
                self.step(at, fire);
                self.timers[at] = self.election_timeout();
            }
        }
    }

    fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick();
        }
    }

    /// Runs until `done` holds, at most `ticks` ticks; the ticks it took.
    fn run_until(&mut self, ticks: u64, done: impl Fn(&Sim) -> bool) -> Option<u64> {
        let start = self.now;
        while self.now - start < ticks {
            if done(self) {
                return Some(self.now - start);
            }
            self.tick();
        }
        done(self).then_some(self.now - start)
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.servers
            .iter()
            .filter(|s| s.is_leader())
            .map(|s| s.id())
            .collect()
    }

    /// The leader of the highest term any server knows, if that term has one.
    fn leader(&self) -> Option<NodeId> {
        let top = self.servers.iter().map(|s| s.current_term()).max()?;
        self.servers
            .iter()
            .find(|s| s.is_leader() && s.current_term() == top)
            .map(|s| s.id())
    }

    fn max_term(&self) -> Term {
        self.servers
            .iter()
            .map(|s| s.current_term())
            .max()
            .unwrap_or(0)
    }
}

/// A cluster of `n` that has elected a leader, within bounded time.
fn settled(n: u64, check_quorum: bool, seed: u64) -> (Sim, NodeId) {
    let mut sim = Sim::new(n, check_quorum, seed);
    sim.run_until(20 * ELECTION, |s| s.leader().is_some())
        .expect("a leader within twenty election timeouts");
    // Let the leader's heartbeats settle every follower.
    sim.run(2 * ELECTION);
    let leader = sim.leader().expect("still a leader");
    (sim, leader)
}

/// etcd#9586's first half: the leader loses every link. With CheckQuorum it
/// steps down within two of its election timeouts (one full period without
/// answers), and the two others elect a leader among themselves; without
/// it, the isolated server stays leader of its term for as long as the
/// partition lasts (here, fifty timeouts).
#[test]
fn an_isolated_leader_steps_down_and_the_majority_elects_another() {
    for seed in 0..20 {
        let (mut sim, old) = settled(3, true, seed);
        sim.isolate(old);
        let took = sim
            .run_until(4 * ELECTION, |s| !s.servers[(old - 1) as usize].is_leader())
            .unwrap_or_else(|| panic!("seed {seed}: the isolated leader {old} never stepped down"));
        assert!(took <= 4 * ELECTION, "seed {seed}: {took} ticks");
        sim.run_until(20 * ELECTION, |s| s.leader().is_some_and(|l| l != old))
            .unwrap_or_else(|| panic!("seed {seed}: the connected majority elected no leader"));
        sim.run(5 * ELECTION);
        assert_eq!(
            sim.leaders().len(),
            1,
            "seed {seed}: one leader, not the isolated one"
        );

        // The same partition without CheckQuorum: the old leader leads on.
        let (mut sim, old) = settled(3, false, seed);
        sim.isolate(old);
        sim.run(50 * ELECTION);
        assert!(
            sim.servers[(old - 1) as usize].is_leader(),
            "seed {seed}: without CheckQuorum nothing makes it step down"
        );
    }
}

/// A leader whose quorum stays connected stays leader: CheckQuorum must not
/// cost a healthy cluster its leader (no needless churn), over a hundred
/// election timeouts.
#[test]
fn a_connected_cluster_keeps_its_leader() {
    for seed in 0..20 {
        let (mut sim, leader) = settled(5, true, seed);
        let before = sim.elections.len();
        sim.run(100 * ELECTION);
        assert_eq!(sim.leader(), Some(leader), "seed {seed}");
        assert_eq!(
            sim.elections.len(),
            before,
            "seed {seed}: an election in a healthy cluster"
        );
    }
}

/// A leader that loses one follower of two keeps a quorum and its place.
#[test]
fn a_leader_with_a_quorum_left_stays_leader() {
    for seed in 0..20 {
        let (mut sim, leader) = settled(3, true, seed);
        let follower = (leader % 3) + 1;
        sim.isolate(follower);
        sim.run(20 * ELECTION);
        // The cut-off follower campaigns in vain (without PreVote its term
        // climbs); the leader keeps leading the other one until it heals.
        assert!(
            sim.servers[(leader - 1) as usize].is_leader(),
            "seed {seed}"
        );
    }
}

/// Issue 16: a server cut off for a while campaigns again and again and
/// raises its term; when its links come back, its higher term deposes the
/// healthy leader and forces an election nobody needed. PreVote prevents it
/// (a pre-vote does not raise the term, and is refused while the voters
/// hear from their leader). Measured on today's core (CheckQuorum on, seeds
/// 0..20, 20 timeouts apart): 20 of 20 seeds force an election on rejoin,
/// the term climbing to 14-17. Enable with PreVote.
#[test]
#[ignore = "needs PreVote (issue 16): a rejoining server with a high term deposes the leader today (20 of 20 seeds)"]
fn a_server_rejoining_with_a_higher_term_does_not_disrupt_the_leader() {
    let mut disrupted = Vec::new();
    for seed in 0..20 {
        let (mut sim, leader) = settled(3, true, seed);
        let follower = (leader % 3) + 1;
        sim.isolate(follower);
        sim.run(20 * ELECTION);
        let before = sim.elections.len();
        sim.heal();
        sim.run(20 * ELECTION);
        if sim.elections.len() != before || sim.leader() != Some(leader) {
            disrupted.push((seed, sim.max_term()));
        }
    }
    assert!(
        disrupted.is_empty(),
        "{} of 20 seeds: the rejoining server forced an election (seed, max term): {disrupted:?}",
        disrupted.len()
    );
}

/// Issue 16: a non-transitive partition (A–B and B–C up, A–C down), with the
/// leader at A. C hears from no leader and campaigns; B, which still hears
/// from A, should not let C depose A over and over. PreVote with the lease
/// check (no vote while a leader was heard within the election timeout)
/// makes the cluster settle on one leader. Measured on today's core
/// (CheckQuorum on, seeds 0..20): 3 of 20 seeds hold 2 to 4 elections in
/// fifty timeouts, the term reaching 12-16. Enable with PreVote.
#[test]
#[ignore = "needs PreVote and the lease check (issue 16): leadership churns today (3 of 20 seeds)"]
fn a_non_transitive_partition_settles_on_one_leader() {
    let mut churned = Vec::new();
    for seed in 0..20 {
        let (mut sim, a) = settled(3, true, seed);
        let c = (a % 3) + 1;
        sim.cut(a, c);
        sim.run(10 * ELECTION);
        let before = sim.elections.len();
        sim.run(50 * ELECTION);
        if sim.elections.len() - before > 1 {
            churned.push((seed, sim.elections.len() - before, sim.max_term()));
        }
    }
    assert!(
        churned.is_empty(),
        "{} of 20 seeds churn (seed, elections in fifty timeouts, max term): {churned:?}",
        churned.len()
    );
}
