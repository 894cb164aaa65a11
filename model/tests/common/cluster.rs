//! A cluster of servers, each with a disk, and a network between them:
//! everything happens through the core's own transition functions.
//!
//! Each step runs one transition on one server, performs its effects in the
//! documented order — `persist` onto that server's [`Disk`], then the
//! messages onto the network — and lets the [`Observer`] check the result.
//! The network is a bag: any message can be delivered, duplicated or dropped.
//! A restart rebuilds the server from its disk alone, so whatever a
//! transition failed to ask to persist is really lost.

use raft_model::{Body, Bug, Durable, Index, NodeId};

use super::observer::{Observer, Property, Violation, entry_at};
use super::{Cmd, Image, Msg, TestEffects, TestServer, members, server};

/// What a driver has made durable for one server: the core's own
/// [`raft_model::Durable`], updated only through `Persist` effects.
pub type Disk = Durable<Cmd, Image>;

/// Does the disk hold exactly what the server's storage should (its
/// persistent state, but a leader's entries still written in parallel)?
pub fn check_disk(disk: &Disk, server: &TestServer) -> Result<(), String> {
    if disk.holds(server) {
        Ok(())
    } else {
        Err(format!(
            "server {}: the disk holds {disk:?} but the persistent state is {:?}",
            server.id(),
            Disk::of(server)
        ))
    }
}

/// Counts of what happened in a run, to show the random runs are not vacuous.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub steps: usize,
    pub elections_won: usize,
    pub committed_commands: usize,
    pub max_commit_index: Index,
    pub truncations: usize,
    pub restarts: usize,
    pub compactions: usize,
    pub snapshots_installed: usize,
    /// Steps where a leader's commit index passed the entries its own
    /// storage holds (parallel writes).
    pub commits_ahead_of_leader_write: usize,
    /// Restarts that lost entries a leader was still writing in parallel.
    pub crashes_losing_unwritten_entries: usize,
}

/// A state machine fed only by effects: what a driver has applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Every entry applied so far, index `i` at position `i - 1` (the
    /// snapshot image is exactly the entries it replaced).
    pub entries: Image,
}

impl Applied {
    /// The state machine of a server that starts from its snapshot.
    pub fn of(server: &TestServer) -> Applied {
        Applied {
            entries: server.snapshot().data.clone(),
        }
    }

    fn index(&self) -> Index {
        self.entries.len() as Index
    }

    /// Applies `effects` as a driver does; then the applied prefix must be
    /// the server's committed prefix.
    fn apply(&mut self, server: &TestServer, effects: &TestEffects) -> Result<(), String> {
        if effects.snapshot_installed {
            *self = Applied::of(server);
        }
        for (index, entry) in effects.committed.iter() {
            if index <= self.index() {
                continue;
            }
            if index != self.index() + 1 {
                return Err(format!(
                    "server {}: entry {index} delivered after {}: a gap",
                    server.id(),
                    self.index()
                ));
            }
            self.entries.push_back(entry.clone());
        }
        if self.index() != server.commit_index() {
            return Err(format!(
                "server {}: effects delivered entries up to {}, but it committed up to {}",
                server.id(),
                self.index(),
                server.commit_index()
            ));
        }
        for (index, entry) in server.log().iter() {
            if index > self.index() {
                break;
            }
            if Some(entry) != self.entries.get(index as usize - 1) {
                return Err(format!(
                    "server {}: applied entry {index} is not its log's",
                    server.id()
                ));
            }
        }
        Ok(())
    }
}

/// Servers `1..=n` (server `id` at position `id - 1`), their disks and the
/// network.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub servers: Vec<TestServer>,
    pub disks: Vec<Disk>,
    /// Each server's state machine, fed only by effects.
    pub applied: Vec<Applied>,
    pub network: Vec<Msg>,
    pub observer: Observer,
    /// The first property found false; steps keep running, the test decides.
    pub violation: Option<Violation>,
    stats: Stats,
}

impl Cluster {
    /// A new cluster of `n` fresh servers, checking `checks`.
    pub fn new(n: u64, checks: &[Property]) -> Cluster {
        let config = members(n);
        Cluster::of((1..=n).map(|id| server(id, &config)).collect(), checks)
    }

    /// A cluster of hand-built servers, whose ids must be `1..=n` in order;
    /// their current persistent state counts as durable.
    pub fn of(servers: Vec<TestServer>, checks: &[Property]) -> Cluster {
        for (position, server) in servers.iter().enumerate() {
            assert_eq!(
                server.id(),
                position as NodeId + 1,
                "ids must be 1..=n in order"
            );
        }
        Cluster {
            disks: servers.iter().map(Disk::of).collect(),
            applied: servers.iter().map(Applied::of).collect(),
            servers,
            network: Vec::new(),
            observer: Observer::new(checks),
            violation: None,
            stats: Stats::default(),
        }
    }

    /// Switches `bugs` on in every server (a recovered server keeps them).
    pub fn with_bugs(mut self, bugs: &[Bug]) -> Cluster {
        for server in &mut self.servers {
            *server = server.clone().with_bugs(bugs);
        }
        self
    }

    /// Turns parallel writes on or off in every server (a leader's own
    /// appends written while the requests carrying them are on their way).
    pub fn with_parallel_write(mut self, on: bool) -> Cluster {
        for server in &mut self.servers {
            *server = server.clone().with_parallel_write(on);
        }
        self
    }

    /// Sets every server's pipelining window (0: off).
    pub fn with_max_inflight(mut self, max_inflight: usize) -> Cluster {
        for server in &mut self.servers {
            *server = server.clone().with_max_inflight(max_inflight);
        }
        self
    }

    /// Sets every server's cap on entries per AppendEntries request.
    pub fn with_max_append_entries(mut self, max: usize) -> Cluster {
        for server in &mut self.servers {
            *server = server.clone().with_max_append_entries(max);
        }
        self
    }

    pub fn server(&self, id: NodeId) -> &TestServer {
        &self.servers[position(id)]
    }

    pub fn server_mut(&mut self, id: NodeId) -> &mut TestServer {
        &mut self.servers[position(id)]
    }

    pub fn stats(&self) -> Stats {
        Stats {
            elections_won: self.observer.leaders.len(),
            committed_commands: self
                .observer
                .committed
                .values()
                .filter(|(entry, _)| matches!(entry.payload, raft_model::Payload::Command(_)))
                .count(),
            max_commit_index: self.observer.committed.keys().last().copied().unwrap_or(0),
            ..self.stats.clone()
        }
    }

    /// Runs one transition on server `id` and performs its effects.
    pub fn act(
        &mut self,
        id: NodeId,
        transition: impl FnOnce(&mut TestServer) -> TestEffects,
    ) -> TestEffects {
        let at = position(id);
        let last_before = self.servers[at].log().last_index();
        let commit_before = self.servers[at].commit_index();
        let effects = transition(&mut self.servers[at]);
        self.stats.steps += 1;
        let after = &self.servers[at];
        if after.is_leader()
            && after.commit_index() > commit_before
            && after.commit_index() > after.durable_index()
        {
            self.stats.commits_ahead_of_leader_write += 1;
        }
        if effects
            .persist
            .log_from
            .is_some_and(|from| from <= last_before)
        {
            self.stats.truncations += 1;
        }
        // Durability before speech: persist, check, and only then send.
        let durable = self.disks[at]
            .apply(&self.servers[at], &effects.persist)
            .map_err(|error| format!("server {id}: {error}"))
            .and_then(|()| check_disk(&self.disks[at], &self.servers[at]));
        if let Err(detail) = durable {
            // The disk keeps only what was written: a later restart loses
            // the rest, and the safety properties see what follows.
            self.report(Property::Durability, detail);
        }
        self.network.extend(effects.messages.iter().cloned());
        self.observe(at, false);
        if let Err(detail) = self.applied[at].apply(&self.servers[at], &effects) {
            self.report(Property::Applied, detail);
            self.applied[at] = Applied::of(&self.servers[at]);
        }
        effects
    }

    /// Server `id`'s parallel write of its whole log completes, as a
    /// driver's storage reports it: the disk gains the entries the core let
    /// it write in parallel (`Effects::parallel_log_from`), then the core
    /// takes `Step::LogPersisted`. Nothing when its log is all durable.
    pub fn log_persisted(&mut self, id: NodeId) -> TestEffects {
        let at = position(id);
        let server = &self.servers[at];
        let (index, term) = (server.log().last_index(), server.log().last_term());
        if server.durable_index() >= index {
            return TestEffects::default();
        }
        if let Err(error) = self.disks[at].complete_parallel_write(server, index) {
            self.report(Property::Durability, format!("server {id}: {error}"));
        }
        self.act(id, |server| {
            server
                .step::<Msg>(raft_model::Step::LogPersisted { index, term })
                .unwrap_or_else(|refused| panic!("a completed write refused: {refused}"))
        })
    }

    pub fn timeout(&mut self, id: NodeId) -> TestEffects {
        self.act(id, |server| server.timeout())
    }

    pub fn send_append_entries(&mut self, id: NodeId) -> TestEffects {
        self.act(id, |server| server.send_append_entries())
    }

    /// A client request to server `id`; the index it was appended at, if
    /// `id` is leader.
    pub fn client_request(&mut self, id: NodeId, command: Cmd) -> Option<Index> {
        let mut appended = None;
        self.act(id, |server| match server.client_request(command) {
            Ok((index, effects)) => {
                appended = Some(index);
                effects
            }
            Err(_) => TestEffects::default(),
        });
        appended
    }

    /// Server `id` compacts its log at its commit index, handing over the
    /// committed entries as the image. No-op when there is nothing new.
    pub fn compact(&mut self, id: NodeId) {
        let server = self.server(id);
        let index = server.commit_index();
        if index <= server.log().snapshot_index {
            return;
        }
        let image: Option<Image> = (1..=index).map(|i| entry_at(server, i).cloned()).collect();
        let Some(image) = image else {
            self.report(
                Property::StateMachineSafety,
                format!("server {id} lacks a committed entry below {index}"),
            );
            return;
        };
        self.stats.compactions += 1;
        self.act(id, |server| {
            server
                .compact_log(index, image)
                .unwrap_or_else(|error| panic!("compaction at the commit index refused: {error}"))
        });
    }

    /// Server `id` crashes and comes back with what its disk holds.
    pub fn restart(&mut self, id: NodeId) {
        let at = position(id);
        // The server restarted in memory; a leader with entries still being
        // written in parallel, from what the core says its storage holds
        // (`Durable::of`): a crash loses those entries.
        let server = &self.servers[at];
        if server.durable_index() < server.log().last_index() {
            self.stats.crashes_losing_unwritten_entries += 1;
        }
        let mut restarted = if server.durable_index() < server.log().last_index() {
            Disk::of(server).recover(server)
        } else {
            server.clone()
        };
        restarted.restart();
        // As the checker and the trace validator do: recover from the disk,
        // then take the Restart step.
        let mut recovered = self.disks[at].recover(&self.servers[at]);
        recovered.restart();
        // A crash must lose nothing it was not allowed to: recovering from
        // what the effects wrote and from what the core says is durable
        // must be one thing.
        if recovered != restarted {
            self.report(
                Property::Durability,
                format!(
                    "server {id}: restart() gives {restarted:?} but recovery from disk gives {recovered:?}"
                ),
            );
        }
        self.servers[at] = recovered;
        self.applied[at] = Applied::of(&self.servers[at]);
        self.stats.restarts += 1;
        self.observe(at, true);
    }

    /// Delivers the message at position `k` of the network (removing it).
    pub fn deliver(&mut self, k: usize) -> TestEffects {
        let message = self.network.remove(k);
        self.deliver_message(message)
    }

    /// Delivers `message` (which need not be on the network) to its addressee.
    pub fn deliver_message(&mut self, message: Msg) -> TestEffects {
        let Some(at) = self.servers.iter().position(|s| s.id() == message.to) else {
            return TestEffects::default();
        };
        let id = self.servers[at].id();
        let effects = self.act(id, |server| server.receive(&message));
        if effects.snapshot_installed && matches!(message.body, Body::InstallSnapshotRequest { .. })
        {
            self.stats.snapshots_installed += 1;
        }
        effects
    }

    /// Delivers, oldest first, every message now on the network that
    /// `wanted` selects (not the replies this produces). Returns how many.
    pub fn deliver_where(&mut self, wanted: impl Fn(&Msg) -> bool) -> usize {
        let (selected, rest) = std::mem::take(&mut self.network)
            .into_iter()
            .partition::<Vec<_>, _>(|message| wanted(message));
        self.network = rest;
        let count = selected.len();
        for message in selected {
            self.deliver_message(message);
        }
        count
    }

    /// Drops every message now on the network that `unwanted` selects.
    pub fn drop_where(&mut self, unwanted: impl Fn(&Msg) -> bool) -> usize {
        let before = self.network.len();
        self.network.retain(|message| !unwanted(message));
        before - self.network.len()
    }

    /// Delivers the oldest message until the network is empty; panics past
    /// `limit` deliveries (a livelock in a test scenario is a failure).
    pub fn deliver_all(&mut self, limit: usize) -> usize {
        let mut delivered = 0;
        while !self.network.is_empty() {
            assert!(
                delivered < limit,
                "network still busy after {limit} deliveries"
            );
            self.deliver(0);
            delivered += 1;
        }
        delivered
    }

    fn observe(&mut self, at: usize, restarted: bool) {
        if let Err(found) = self.observer.observe(&self.servers, at, restarted) {
            self.violation.get_or_insert(found);
        }
    }

    fn report(&mut self, property: Property, detail: String) {
        if self.observer.checks(property) {
            self.violation.get_or_insert(Violation { property, detail });
        }
    }
}

fn position(id: NodeId) -> usize {
    usize::try_from(id - 1).expect("server ids start at 1")
}
