//! `raft-lab chaos`: the harness as a command, for long runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::faults::FaultKind;
use super::{ChaosOptions, run as run_chaos};
use crate::seeded_bugs::SeededBug;

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// How long to inject faults, in seconds.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Nodes in the cluster (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: u64,
    /// Keys the clients share.
    #[arg(long, default_value_t = 5)]
    keys: u64,
    /// Seed of the fault schedule (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Fault kinds to inject, comma-separated (default: all): kill,
    /// kill-leader, partition, partition-leader, leader-mute, leader-deaf,
    /// one-way, pause, pause-leader, non-transitive, flapping, and, on the
    /// nodes' power-loss file systems (FUSE; left out of the default where
    /// it cannot be mounted), power-cut, power-cut-minority, power-cut-all,
    /// slow-disk, and, with each node in its network namespace (root and
    /// `ip`; likewise left out where unavailable), netns-partition,
    /// netns-partition-leader. Not in the default, asked for by name:
    /// the membership changes replace-member (a fresh server under a new id
    /// joins, then a random member, the leader too, is removed and stopped)
    /// remove-add (a member removed and stopped, then a fresh server
    /// added under a new id) and replace-learner (a fresh server added as a
    /// learner, then promoted in place of a random member in one joint
    /// change); not with the netns kinds.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<FaultKind>,
    /// The client API the workload speaks: the node's own (native; writes
    /// are deduplicated by client session, so they are retried until
    /// answered) or etcd's v3 KV (Range, Put, DeleteRange, and
    /// compare-and-swap as a Txn; no sessions, so a write is retried only if
    /// it was certainly never proposed, and is otherwise indeterminate).
    #[arg(long, value_enum, default_value_t = super::workload::Api::Native)]
    api: super::workload::Api,
    /// Parent of the run directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the run directory even if every check passes.
    #[arg(long)]
    keep: bool,
    /// Do not record the nodes' core-event traces.
    #[arg(long)]
    no_trace: bool,
    /// Compact each node's log after this many applied entries.
    #[arg(long, default_value_t = 200)]
    snapshot_threshold: u64,
    /// Configurations the linearizability search may explore per key.
    #[arg(long, default_value_t = 2_000_000)]
    check_budget: u64,
    /// Testing the harness: run the nodes with a seeded bug
    /// (ack-before-commit, stale-read, send-before-durable, skip-fdatasync),
    /// which the run must catch.
    #[arg(long, value_name = "NAME")]
    seeded_bug: Option<SeededBug>,
    /// Do not print each fault as it is injected.
    #[arg(long)]
    quiet: bool,
    /// Run the nodes with CheckQuorum on (the default) or off, to compare
    /// the availability figures.
    #[arg(long, value_name = "on|off", default_value = "on", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    check_quorum: bool,
    /// Run the nodes with PreVote on (the default) or off, to compare the
    /// availability figures.
    #[arg(long, value_name = "on|off", default_value = "on", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pre_vote: bool,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let bin = std::env::current_exe()?;
    let mut options = ChaosOptions::new(bin);
    options.duration = Duration::from_secs(args.time);
    options.nodes = args.nodes;
    options.clients = args.clients;
    options.keys = args.keys;
    options.seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let default_faults = args.faults.is_empty();
    if !default_faults {
        options.faults = args.faults;
    }
    options.api = args.api;
    options.dir = args.dir;
    options.keep = args.keep;
    options.settings.trace = !args.no_trace;
    options.settings.snapshot_threshold = args.snapshot_threshold;
    options.settings.seeded_bug = args.seeded_bug;
    options.settings.check_quorum = args.check_quorum;
    options.settings.pre_vote = args.pre_vote;
    options.check_budget = args.check_budget;
    options.verbose = !args.quiet;
    println!(
        "chaos: {} nodes, {} clients ({} API) on {} keys, {} s of faults, seed {}",
        options.nodes, options.clients, options.api, options.keys, args.time, options.seed
    );
    if let Err(why) = crate::powerfs::available()
        && default_faults
    {
        println!("no power cuts or disk faults in this run: {why}");
    }
    let report = run_chaos(options).await?;
    println!("{}", report.summary());
    let problems = report.problems();
    anyhow::ensure!(
        problems.is_empty(),
        "the chaos run did not pass: {}",
        problems.join("; ")
    );
    Ok(())
}
