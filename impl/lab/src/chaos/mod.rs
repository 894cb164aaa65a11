//! The chaos harness: a cluster of real node processes, concurrent
//! clients, injected faults, and a linearizability and durability check of
//! everything the clients saw.
//!
//! A run:
//! 1. starts N node processes on loopback, each reaching its peers through a
//!    fault-injecting proxy per directed link ([`proxy`]);
//! 2. runs concurrent clients doing get / put / delete / compare-and-swap on
//!    a few keys ([`workload`]), recording every operation ([`history`]);
//! 3. meanwhile injects faults chosen by a seeded RNG ([`faults`]): kill -9
//!    and restart (leader included), partitions (majority/minority, leader
//!    cut off), one-way loss, SIGSTOP/SIGCONT pauses longer than the election
//!    timeout — one at a time, each held and then healed;
//! 4. heals everything, waits for every node to apply the same index, reads
//!    every key once more, and checks the whole history for linearizability
//!    and the final values for durability ([`linearizability`]).
//!
//! When a check fails, the run directory is kept: the seed, the history, the
//! offending slice per key, and each node's data directory, log and trace.
//! Every loop is bounded by the run's deadline or an explicit timeout.
//!
//! Besides the checks, a run measures availability ([`availability`]): time
//! without a ready leader, leader changes per minute, and the longest
//! stretch without an acknowledged write.

pub mod availability;
pub mod cli;
pub mod faults;
pub mod history;
pub mod linearizability;
pub mod membership;
pub mod netns;
pub mod nodes;
pub mod proxy;
pub mod traces;
pub mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_model::NodeId;
use raft_node::config::Member;
use serde::Serialize;
use tokio::task::JoinHandle;

use faults::{FaultKind, Injector};
use history::{Input, Operation, Output};
use linearizability::{LostWrite, Report};
use nodes::{NodeSettings, Processes};
use proxy::{LinkProxy, Network};
use workload::{Client, Connection, Counts, Endpoints, Recorder};

/// What to run.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// The `raft-lab` binary (its nodes run as `raft-lab node`, the node
    /// library with the seeded-bug hooks compiled in).
    pub bin: PathBuf,
    pub nodes: u64,
    pub duration: Duration,
    pub clients: u64,
    pub keys: u64,
    pub seed: u64,
    pub faults: Vec<FaultKind>,
    /// The client API the workload speaks.
    pub api: workload::Api,
    /// Parent directory of the run directory (default: the system temp dir).
    pub dir: Option<PathBuf>,
    /// Keep the run directory even when every check passes.
    pub keep: bool,
    pub settings: NodeSettings,
    /// Configurations the linearizability search may explore per key.
    pub check_budget: u64,
    /// Print each fault as it happens.
    pub verbose: bool,
}

impl ChaosOptions {
    pub fn new(bin: PathBuf) -> ChaosOptions {
        ChaosOptions {
            bin,
            nodes: 3,
            duration: Duration::from_secs(60),
            clients: 5,
            keys: 5,
            seed: 1,
            // Every kind but the membership changes (asked for by name);
            // the power and disk kinds only where FUSE can be
            // mounted (`crate::powerfs::available`; `run` says so).
            faults: FaultKind::ALL
                .into_iter()
                .filter(|kind| !kind.is_membership())
                .filter(|kind| !kind.needs_powerfs() || crate::powerfs::available().is_ok())
                .filter(|kind| !kind.needs_netns() || netns::available().is_ok())
                .collect(),
            api: workload::Api::Native,
            dir: None,
            keep: false,
            settings: NodeSettings {
                cluster_id: "chaos".into(),
                election_timeout_ms: [150, 300],
                heartbeat_ms: 30,
                // Small, so that compaction and InstallSnapshot happen under faults.
                snapshot_threshold: 200,
                trace: true,
                check_quorum: true,
                pre_vote: true,
                seeded_bug: None,
                log_level: "info".into(),
                powerfs: false,
            },
            check_budget: 2_000_000,
            verbose: false,
        }
    }
}

/// Operations per kind and outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OperationCounts {
    pub by_kind: BTreeMap<String, Counts>,
    pub total: Counts,
}

/// What a run found.
#[derive(Clone, Debug, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub nodes: u64,
    /// The client API the workload spoke.
    pub api: workload::Api,
    pub duration: Duration,
    pub faults: BTreeMap<String, u64>,
    /// Outcomes of the leadership transfers asked for (fault kind
    /// `transfer-leader`): moved, other-leader, aborted, failed.
    pub transfers: BTreeMap<String, u64>,
    /// What the power cuts dropped (all zero without power cuts).
    pub power: faults::PowerCuts,
    /// Outcomes of the membership faults (`replace-member`, `remove-add`):
    /// added, removed, add-refused, remove-refused, ...
    pub membership: BTreeMap<String, u64>,
    /// Membership changes that reported success but did not show in
    /// `MemberList`.
    pub membership_problems: Vec<String>,
    /// Every node that ran, in order of id (more than `nodes` after
    /// membership changes), and the members at the end.
    pub node_ids: Vec<NodeId>,
    /// Peer connections through the per-target proxies of a membership
    /// run: (sender found, sender unknown; the harness's own calls).
    pub proxy_senders: (u64, u64),
    pub final_members: Vec<NodeId>,
    pub operations: OperationCounts,
    pub linearizability: Report,
    pub lost_writes: Vec<LostWrite>,
    /// Keys whose final read got no answer.
    pub unread_keys: Vec<String>,
    /// Whether every node applied the same index after the faults healed.
    pub converged: bool,
    pub unexpected_exits: Vec<(NodeId, String)>,
    /// How available the cluster stayed (not a check: a measurement).
    pub availability: availability::Availability,
    /// Client tasks that did not finish (a panic): their operations are in
    /// the history up to the failure, their counts are lost.
    pub client_failures: Vec<String>,
    /// The nodes' traces replayed through the model (`None`: not traced).
    pub traces: Option<traces::TraceCheck>,
    /// The run directory (kept when a check failed or `keep` was set).
    pub dir: PathBuf,
    pub kept: bool,
}

impl ChaosReport {
    pub fn violations(&self) -> usize {
        self.linearizability.violations().count()
    }

    /// Every check passed, and each reached a verdict.
    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }

    /// Why the run did not pass, one line per kind of problem. A key whose
    /// linearizability search ran out of budget has no verdict: that is not
    /// a pass either.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.violations() > 0 {
            problems.push(format!(
                "{} linearizability violation(s)",
                self.violations()
            ));
        }
        let unknown = self.linearizability.unknown_keys();
        if !unknown.is_empty() {
            problems.push(format!(
                "the linearizability search ran out of budget (--check-budget) for keys {}: no verdict",
                unknown
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.lost_writes.is_empty() {
            problems.push(format!("{} lost write(s)", self.lost_writes.len()));
        }
        if !self.unread_keys.is_empty() {
            problems.push(format!(
                "the final read failed for keys {}",
                self.unread_keys.join(", ")
            ));
        }
        if !self.converged {
            problems.push("the nodes did not converge after healing".to_owned());
        }
        if !self.unexpected_exits.is_empty() {
            problems.push(format!(
                "{} node exit(s) nobody caused",
                self.unexpected_exits.len()
            ));
        }
        if !self.client_failures.is_empty() {
            problems.push(format!(
                "client task(s) failed: {}",
                self.client_failures.join("; ")
            ));
        }
        if let Some(check) = self.traces.as_ref().filter(|c| !c.is_valid()) {
            problems.push(check.summary());
        }
        for problem in &self.membership_problems {
            problems.push(format!("membership: {problem}"));
        }
        problems
    }

    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let ops = &self.operations;
        let _ = writeln!(
            out,
            "chaos run: seed {}, {} nodes, {:.1} s, {} client API",
            self.seed,
            self.nodes,
            self.duration.as_secs_f64(),
            self.api
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let total_faults: u64 = self.faults.values().sum();
        let _ = writeln!(out, "faults: {total_faults} ({})", faults.join(", "));
        if !self.transfers.is_empty() {
            let transfers: Vec<String> = self
                .transfers
                .iter()
                .map(|(outcome, n)| format!("{outcome} {n}"))
                .collect();
            let _ = writeln!(out, "leadership transfers: {}", transfers.join(", "));
        }
        if !self.membership.is_empty() {
            let outcomes: Vec<String> = self
                .membership
                .iter()
                .map(|(outcome, n)| format!("{outcome} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "membership changes: {}; nodes that ran: {:?}; members at the end: {:?}; proxy connections: {} from a node, {} from the harness or unknown",
                outcomes.join(", "),
                self.node_ids,
                self.final_members,
                self.proxy_senders.0,
                self.proxy_senders.1
            );
        }
        if self.power.nodes_cut > 0 {
            let p = &self.power;
            let _ = writeln!(
                out,
                "power cuts: {} node cuts; {} files held unsynced data; unsynced sectors: {} lost, {} reached the disk (torn writes)",
                p.nodes_cut, p.files_dirty, p.sectors_lost, p.sectors_kept
            );
        }
        let _ = writeln!(
            out,
            "operations: {} ok, {} failed, {} indeterminate",
            ops.total.ok, ops.total.failed, ops.total.indeterminate
        );
        // Per kind, what the history holds (failed reads are not recorded).
        for (kind, c) in &ops.by_kind {
            let _ = writeln!(
                out,
                "  {kind:<7} {} ok, {} indeterminate",
                c.ok, c.indeterminate
            );
        }
        let lin = &self.linearizability;
        let unknown = lin.unknown_keys();
        let _ = writeln!(
            out,
            "linearizability: {} operations checked over {} keys ({} unanswered writes nobody saw pruned, {} configurations explored): {}",
            lin.checked,
            lin.keys.len(),
            lin.pruned,
            lin.explored,
            if self.violations() > 0 {
                format!("{} VIOLATION(S)", self.violations())
            } else if !unknown.is_empty() {
                format!("no violation found; search bound reached for keys {unknown:?}")
            } else {
                "linearizable".to_owned()
            }
        );
        for violation in lin.violations() {
            let _ = writeln!(
                out,
                "  key {:?}: {} operations linearized, then none of the pending ones fits (value {:?}): {}",
                violation.key,
                violation.longest_prefix.len(),
                violation.value_after_prefix,
                violation
                    .stuck
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let _ = writeln!(
            out,
            "durability: {}",
            if self.lost_writes.is_empty() && self.unread_keys.is_empty() {
                "every acknowledged write is in the final state or superseded".to_owned()
            } else {
                format!(
                    "{} LOST WRITE(S){}",
                    self.lost_writes.len(),
                    if self.unread_keys.is_empty() {
                        String::new()
                    } else {
                        format!("; final read failed for {:?}", self.unread_keys)
                    }
                )
            }
        );
        for lost in &self.lost_writes {
            let _ = writeln!(
                out,
                "  key {:?} ends as {:?}, but this acknowledged write came later: {}",
                lost.key,
                lost.final_value,
                describe(&lost.lost)
            );
        }
        let _ = writeln!(out, "{}", self.availability.summary(self.duration));
        if let Some(check) = &self.traces {
            let _ = writeln!(out, "{}", check.summary());
        }
        let _ = writeln!(
            out,
            "after healing: {}",
            if self.converged {
                "every node applied the same index"
            } else {
                "NODES DID NOT CONVERGE within 30 s"
            }
        );
        for (id, status) in &self.unexpected_exits {
            let _ = writeln!(out, "  node {id} exited on its own: {status}");
        }
        for failure in &self.client_failures {
            let _ = writeln!(out, "CLIENT TASK FAILED: {failure}");
        }
        let problems = self.problems();
        let _ = write!(
            out,
            "result: {}",
            if problems.is_empty() {
                "PASS".to_owned()
            } else {
                format!("FAIL ({})", problems.join("; "))
            }
        );
        if self.kept {
            let _ = write!(
                out,
                "\nrun directory (seed, history, offending slices, node data, logs, traces): {}",
                self.dir.display()
            );
            if self.traces.is_some() {
                let _ = write!(
                    out,
                    "\nwatch the run in a browser: cargo run --release -p raft-interop -- view {}",
                    self.dir.join("traces").display()
                );
            }
        }
        out
    }
}

/// One operation, for humans.
pub fn describe(op: &Operation) -> String {
    let input = match &op.input {
        Input::Get => "get".to_owned(),
        Input::Put { value } => format!("put {value:?}"),
        Input::Delete => "delete".to_owned(),
        Input::Cas {
            expected,
            new_value,
        } => format!("cas {expected:?} -> {new_value:?}"),
    };
    let output = match &op.output {
        Output::Value(v) => format!("= {v:?}"),
        Output::Previous(v) => format!("ok (was {v:?})"),
        Output::Cas {
            succeeded,
            previous,
        } => format!(
            "{} (was {previous:?})",
            if *succeeded { "swapped" } else { "failed" }
        ),
        Output::Unknown => "no answer".to_owned(),
    };
    let ret = op
        .ret
        .map_or("never".to_owned(), |r| format!("{:.3}", r as f64 / 1e6));
    format!(
        "#{} client {} {} {} [{:.3} s .. {} s]",
        op.id,
        op.client,
        input,
        output,
        op.invoke as f64 / 1e6,
        ret
    )
}

/// Ports free right now on loopback.
fn run_dir(options: &ChaosOptions) -> anyhow::Result<PathBuf> {
    let parent = options.dir.clone().unwrap_or_else(std::env::temp_dir);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let dir = parent.join(format!(
        "raft-chaos-seed{}-{}-{stamp}",
        options.seed,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Runs the harness; returns its report (Err only if the harness itself
/// could not run: no binary, no ports, no leader ever elected...).
pub async fn run(options: ChaosOptions) -> anyhow::Result<ChaosReport> {
    anyhow::ensure!(options.nodes >= 3, "chaos needs at least 3 nodes");
    anyhow::ensure!(
        options.keys >= 1 && options.clients >= 1,
        "need keys and clients"
    );
    anyhow::ensure!(!options.faults.is_empty(), "no fault kinds selected");
    let mut options = options;
    if options.faults.iter().any(|kind| kind.needs_powerfs()) {
        if let Err(why) = crate::powerfs::available() {
            anyhow::bail!(
                "the power-cut and disk fault kinds need the power-loss file system, which needs FUSE: {why}"
            );
        }
        options.settings.powerfs = true;
    }
    let uses_netns = options.faults.iter().any(|kind| kind.needs_netns());
    let uses_membership = options.faults.iter().any(|kind| kind.is_membership());
    anyhow::ensure!(
        !(uses_netns && uses_membership),
        "the membership fault kinds (replace-member, remove-add, replace-learner) and the netns-partition kinds cannot run together yet (a new server would need its own namespace)"
    );
    if uses_netns && let Err(why) = netns::available() {
        anyhow::bail!(
            "the netns-partition fault kinds need network namespaces: {why}; leave them out of --faults"
        );
    }
    anyhow::ensure!(
        options.bin.exists(),
        "the raft-lab binary {} does not exist (build it: cargo build --release -p raft-lab)",
        options.bin.display()
    );
    let dir = run_dir(&options)?;
    std::fs::write(dir.join("seed"), format!("{}\n", options.seed))?;
    let ids: Vec<NodeId> = (1..=options.nodes).collect();
    // The nodes' listening sockets, bound first (port 0) and held for the
    // whole run, each handed to every process of its node: the proxies bound
    // below can never take a node's port, nor can anything else.
    // With namespace partitions, each node lives in its own network
    // namespace at its own address (`netns`); the proxies listen on the
    // bridge's address, which every namespace reaches.
    let net = if uses_netns {
        Some(netns::NetNs::setup(std::process::id(), &ids)?)
    } else {
        None
    };
    let listeners: BTreeMap<NodeId, Arc<std::net::TcpListener>> = match &net {
        Some(net) => net.listeners()?,
        None => ids
            .iter()
            .copied()
            .zip(raft_node::launch::loopback_listeners(ids.len())?)
            .collect(),
    };
    let proxy_ip = net
        .as_ref()
        .map_or(std::net::Ipv4Addr::LOCALHOST, |net| net.harness_address());
    let listen: BTreeMap<NodeId, SocketAddr> = listeners
        .iter()
        .map(|(id, listener)| Ok((*id, listener.local_addr()?)))
        .collect::<std::io::Result<_>>()?;
    let network = Network::new();
    let mut proxies = Vec::new();
    let mut members: BTreeMap<NodeId, Vec<Member>> = BTreeMap::new();
    // With membership faults, the cluster replicates one address per
    // member (its address book), which every node uses: so each node is
    // reached through one proxy in front of it, shared by all senders, and
    // the proxy finds which node sent each connection (`proxy::Source`).
    // Otherwise one proxy per directed link, as ever.
    let mut cluster_addresses: BTreeMap<NodeId, String> = BTreeMap::new();
    for &a in ids.iter().filter(|_| uses_membership) {
        members.insert(a, Vec::new());
    }
    for &a in ids.iter().filter(|_| !uses_membership) {
        let mut list = vec![Member {
            id: a,
            address: listen[&a].to_string(),
        }];
        for &b in ids.iter().filter(|b| **b != a) {
            let proxy = LinkProxy::start_on(
                proxy_ip,
                network.clone(),
                proxy::Source::Fixed(a),
                b,
                listen[&b],
            )
            .await?;
            list.push(Member {
                id: b,
                address: proxy.address.to_string(),
            });
            proxies.push(proxy);
        }
        members.insert(a, list);
    }
    let mut processes = Processes::new(
        &options.bin,
        &dir,
        options.settings.clone(),
        &listeners,
        members,
    )?;
    if uses_membership {
        for &b in &ids {
            let proxy = LinkProxy::start_on(
                proxy_ip,
                network.clone(),
                proxy::Source::Resolve(processes.resolver()),
                b,
                listen[&b],
            )
            .await?;
            cluster_addresses.insert(b, proxy.address.to_string());
            proxies.push(proxy);
        }
        let list: Vec<Member> = cluster_addresses
            .iter()
            .map(|(id, address)| Member {
                id: *id,
                address: address.clone(),
            })
            .collect();
        for &a in &ids {
            processes.set_members(a, list.clone());
        }
    }
    if let Some(net) = &net {
        processes.set_namespaces(ids.iter().map(|id| (*id, net.namespace(*id))).collect());
    }
    for &id in &ids {
        processes.start(id)?;
    }
    processes.wait_ready(Duration::from_secs(30)).await?;
    let leader_wait = Instant::now();
    while faults::find_leader(&processes).await.is_none() {
        processes.reap();
        if !processes.unexpected_exits.is_empty() || leader_wait.elapsed() > Duration::from_secs(30)
        {
            anyhow::bail!(
                "the cluster did not elect a leader within 30 s (exits: {:?}); logs in {}",
                processes.unexpected_exits,
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    let deadline = started + options.duration;
    let recorder = Recorder::new(started);
    let endpoints = Endpoints::new(
        listen
            .iter()
            .map(|(id, address)| (*id, address.to_string()))
            .collect(),
    );
    let keys: Vec<String> = (0..options.keys).map(|k| format!("k{k}")).collect();
    let mut tasks = Vec::new();
    for id in 1..=options.clients {
        let seed = options.seed.wrapping_mul(1000).wrapping_add(id);
        let connection = Connection::new(&endpoints, seed)?;
        let client = Client::new(id, options.api, connection, keys.clone(), seed);
        tasks.push((id, tokio::spawn(client.run(recorder.clone(), deadline))));
    }

    let monitor = tokio::spawn(availability::monitor(endpoints.clone(), started, deadline));
    let mut membership = membership::Membership::new(
        ids.len(),
        options.nodes + 1,
        network.clone(),
        processes.resolver(),
        proxy_ip,
        cluster_addresses,
        options.verbose,
    );

    let election_high = options.settings.election_timeout_ms[1];
    let mut injector = Injector::new(options.seed, options.faults.clone(), election_high);
    loop {
        let gap = injector.gap();
        if Instant::now() + gap + Duration::from_millis(election_high) >= deadline {
            break;
        }
        tokio::time::sleep(gap).await;
        let leader = faults::find_leader(&processes).await;
        let (kind, active) = injector.inject(&mut processes, &network, net.as_ref(), leader)?;
        let hold = injector
            .hold()
            .min(deadline.saturating_duration_since(Instant::now()));
        if let faults::Active::Membership {
            victim,
            remove_first,
            through_learner,
        } = active
        {
            // A change takes its own time (bounded); nothing to hold.
            if options.verbose {
                println!(
                    "{:>7.2} s  {:<16} node {victim} leaves (leader was {})",
                    started.elapsed().as_secs_f64(),
                    kind.name(),
                    leader.map_or("unknown".to_owned(), |l| l.to_string())
                );
            }
            membership
                .change(
                    &mut processes,
                    &endpoints,
                    victim,
                    remove_first,
                    through_learner,
                )
                .await?;
            restart_exited(&mut processes)?;
            continue;
        }
        if options.verbose {
            println!(
                "{:>7.2} s  {:<16} held {:.2} s (leader was {})",
                started.elapsed().as_secs_f64(),
                kind.name(),
                hold.as_secs_f64(),
                leader.map_or("unknown".to_owned(), |l| l.to_string())
            );
        }
        // A flapping link changes every third of the election timeout's
        // upper end: often enough to interrupt heartbeats and elections.
        let flap = Duration::from_millis((election_high / 3).max(1));
        faults::hold(&active, &network, hold, flap).await;
        faults::heal(active, &mut processes, &network, net.as_ref())?;
        restart_exited(&mut processes)?;
    }

    // Heal everything and let the clients finish their last operations.
    network.heal();
    if let Some(net) = &net {
        net.heal();
    }
    for id in processes.ids() {
        processes.resume(id);
        processes.set_disk_faults(id, Default::default());
    }
    restart_exited(&mut processes)?;
    for id in processes.ids() {
        if !processes.is_up(id) {
            processes.start(id)?;
        }
    }
    let (counts, client_failures) = join_clients(tasks).await;
    let duration = started.elapsed();
    let samples = monitor.await.unwrap_or_default();
    // A removal that completed after its call gave up: that node is no
    // longer a member, so it is stopped (it would never converge).
    let mut final_members = Vec::new();
    if uses_membership && let Some(list) = membership::member_list(&endpoints).await {
        final_members = list.members.iter().map(|m| m.id).collect();
        if list.old_members.is_empty() {
            for id in processes.ids() {
                if !final_members.contains(&id) {
                    processes.retire(id);
                    endpoints.remove(id);
                }
            }
        }
    }
    let converged = wait_converged(&processes, Duration::from_secs(30)).await;
    processes.reap();

    // The final read of every key, part of the history (so the
    // linearizability check covers it too) and the durability check's input.
    let mut finals = BTreeMap::new();
    let mut unread_keys = Vec::new();
    let mut reader = Client::new(
        0,
        options.api,
        Connection::new(&endpoints, options.seed)?,
        keys.clone(),
        0,
    );
    for key in &keys {
        let mut value = None;
        for _ in 0..5 {
            if let Some(Output::Value(v)) = reader.perform(&recorder, key, Input::Get).await {
                value = Some(v);
                break;
            }
        }
        match value {
            Some(v) => {
                finals.insert(key.clone(), v);
            }
            None => unread_keys.push(key.clone()),
        }
    }
    let history = recorder.history();
    processes.stop_all();
    drop(proxies);
    let membership_outcome = (membership.outcomes.clone(), membership.problems.clone());
    drop(membership.into_proxies());

    let budget = options.check_budget;
    let checked_history = history.clone();
    let linearizability =
        tokio::task::spawn_blocking(move || linearizability::check(&checked_history, budget))
            .await?;
    let lost_writes = linearizability::check_durability(&history, &finals);
    // The nodes have stopped: their traces are complete.
    let traces = if options.settings.trace {
        let traces_dir = dir.join("traces");
        Some(tokio::task::spawn_blocking(move || traces::TraceCheck::of(&traces_dir)).await?)
    } else {
        None
    };

    let mut operations = OperationCounts {
        total: counts,
        ..Default::default()
    };
    for op in &history {
        let kind = match op.input {
            Input::Get => "get",
            Input::Put { .. } => "put",
            Input::Delete => "delete",
            Input::Cas { .. } => "cas",
        };
        let entry = operations.by_kind.entry(kind.to_owned()).or_default();
        if op.is_indeterminate() {
            entry.indeterminate += 1;
        } else {
            entry.ok += 1;
        }
    }
    operations.total.add(reader.counts);
    let mut report = ChaosReport {
        seed: options.seed,
        nodes: options.nodes,
        api: options.api,
        duration,
        faults: injector
            .counts
            .iter()
            .map(|(k, n)| (k.name().to_owned(), *n))
            .collect(),
        transfers: injector
            .transfers
            .lock()
            .map(|outcomes| {
                outcomes
                    .iter()
                    .map(|(k, n)| ((*k).to_owned(), *n))
                    .collect()
            })
            .unwrap_or_default(),
        power: injector.power.clone(),
        membership: membership_outcome.0,
        membership_problems: membership_outcome.1,
        node_ids: processes.all_ids(),
        proxy_senders: network.senders(),
        final_members,
        operations,
        linearizability,
        lost_writes,
        unread_keys,
        converged,
        unexpected_exits: processes.unexpected_exits.clone(),
        availability: availability::Availability::of(&samples, &history, options.duration),
        client_failures,
        traces,
        dir: dir.clone(),
        kept: false,
    };
    drop(processes);
    drop(net);
    if !report.passed() || options.keep {
        save(&dir, &report, &history)?;
        report.kept = true;
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(report)
}

/// Awaits the client tasks (by client id): the sum of their counts, and one
/// line per task that did not finish, with its panic message.
pub async fn join_clients(tasks: Vec<(u64, JoinHandle<Counts>)>) -> (Counts, Vec<String>) {
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for (id, task) in tasks {
        match task.await {
            Ok(c) => counts.add(c),
            Err(error) if error.is_panic() => {
                let panic = error.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(a panic without a message)".to_owned());
                failures.push(format!("client {id} panicked: {message}"));
            }
            Err(error) => failures.push(format!("client {id} did not finish: {error}")),
        }
    }
    (counts, failures)
}

fn restart_exited(processes: &mut Processes) -> anyhow::Result<()> {
    let before = processes.unexpected_exits.len();
    processes.reap();
    let exited: Vec<NodeId> = processes.unexpected_exits[before..]
        .iter()
        .map(|(id, _)| *id)
        .collect();
    for id in exited {
        processes.start(id)?;
    }
    Ok(())
}

/// Waits until a leader exists and every node reports the same commit and
/// applied index.
async fn wait_converged(processes: &Processes, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        let mut seen = Vec::new();
        for id in processes.ids() {
            seen.push(faults::status(&processes.address(id).to_string()).await);
        }
        let all: Option<Vec<_>> = seen.into_iter().collect();
        if let Some(all) = all
            && all.iter().any(|s| s.role == "leader")
            && all.iter().all(|s| {
                s.applied_index == all[0].applied_index && s.commit_index == s.applied_index
            })
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Writes the evidence of a run into its directory.
fn save(dir: &Path, report: &ChaosReport, history: &[Operation]) -> anyhow::Result<()> {
    write_json(dir, "report.json", report)?;
    write_json(dir, "history.json", &history)?;
    for violation in report.linearizability.violations() {
        write_json(dir, &format!("violation-{}.json", violation.key), violation)?;
    }
    for lost in &report.lost_writes {
        write_json(dir, &format!("lost-write-{}.json", lost.key), lost)?;
    }
    std::fs::write(dir.join("summary.txt"), report.summary())?;
    Ok(())
}

fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> anyhow::Result<()> {
    let path = dir.join(name);
    let bytes = serde_json::to_vec_pretty(value)?;
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client task's panic is reported, not dropped with its counts.
    #[tokio::test]
    async fn a_panicking_client_task_is_reported() {
        let fine = tokio::spawn(async {
            Counts {
                ok: 3,
                failed: 1,
                indeterminate: 0,
            }
        });
        let broken = tokio::spawn(async {
            if std::hint::black_box(true) {
                panic!("the connection table is empty");
            }
            Counts::default()
        });
        let (counts, failures) = join_clients(vec![(1, fine), (2, broken)]).await;
        assert_eq!((counts.ok, counts.failed), (3, 1));
        assert_eq!(
            failures,
            vec!["client 2 panicked: the connection table is empty".to_owned()]
        );
    }

    fn report(keys: BTreeMap<String, linearizability::Verdict>) -> ChaosReport {
        ChaosReport {
            seed: 1,
            nodes: 3,
            api: workload::Api::Native,
            duration: Duration::from_secs(1),
            faults: BTreeMap::new(),
            transfers: BTreeMap::new(),
            power: Default::default(),
            membership: BTreeMap::new(),
            membership_problems: Vec::new(),
            node_ids: Vec::new(),
            proxy_senders: (0, 0),
            final_members: Vec::new(),
            operations: OperationCounts::default(),
            linearizability: Report {
                keys,
                checked: 0,
                pruned: 0,
                explored: 0,
            },
            lost_writes: Vec::new(),
            unread_keys: Vec::new(),
            converged: true,
            unexpected_exits: Vec::new(),
            availability: Default::default(),
            client_failures: Vec::new(),
            traces: None,
            dir: PathBuf::new(),
            kept: false,
        }
    }

    /// The verdicts that decide `raft-lab chaos`'s exit status: an unknown
    /// key and a failed client task are failures, and named.
    #[test]
    fn no_verdict_and_a_failed_client_are_not_a_pass() {
        use linearizability::Verdict;
        let linearizable = report([("k0".to_owned(), Verdict::Linearizable)].into());
        assert!(linearizable.passed(), "{}", linearizable.summary());

        let unknown = report(
            [
                ("k0".to_owned(), Verdict::Linearizable),
                ("k1".to_owned(), Verdict::Unknown { explored: 9 }),
            ]
            .into(),
        );
        assert!(!unknown.passed());
        assert!(
            unknown.summary().contains("keys k1: no verdict"),
            "{}",
            unknown.summary()
        );

        let mut client = linearizable.clone();
        client.client_failures = vec!["client 2 panicked: boom".to_owned()];
        assert!(!client.passed());
        assert!(client.summary().contains("client 2 panicked: boom"));
    }
}
