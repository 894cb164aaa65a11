//! The bounds of an exploration: the TLA+ constants of spec/MCRaft.cfg, as
//! command-line flags.
//!
//! Two kinds of bound, as in the spec:
//! - action guards (`max_term`, `max_requests`, `max_restarts`,
//!   `max_compactions`, `max_reads`, `max_transfers`) disable an action once its counter is used up
//!   (and so do the checker's own `max_timeouts` and `max_heartbeats`, which
//!   the spec lacks and which are counted only when set);
//! - the state predicate `WithinBounds` (`max_log`, `max_messages`) is TLC's
//!   `CONSTRAINT`: a state outside it is still checked against every property
//!   but never expanded (see `model.rs` for how this maps onto stateright).

use clap::Args;
use serde::{Deserialize, Serialize};

/// Spec constants (spec/MCRaft*.cfg). The command line builds them from
/// [`BoundArgs`]: a named bound, flags, or both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Number of servers (`Server`); the spec is symmetric in them.
    pub servers: u8,
    /// Highest term a Timeout may reach (`MaxTerm`).
    pub max_term: u8,
    /// Longest log, snapshot prefix included (`MaxLogLength`, in `WithinBounds`).
    pub max_log: u8,
    /// Client requests over the whole run (`MaxClientRequests`).
    pub max_requests: u8,
    /// Most messages in flight at once, copies counted (`MaxMessages`, in
    /// `WithinBounds`). A delivery consumes its message, so this bounds the
    /// network's contents, not the messages a behaviour sends.
    pub max_messages: u8,
    /// Server restarts over the whole run (`MaxRestarts`).
    pub max_restarts: u8,
    /// Log compactions (snapshots taken) over the whole run (`MaxCompactions`).
    pub max_compactions: u8,
    /// Entries per AppendEntries request (`MaxAppendEntries`).
    pub max_append_entries: u8,
    /// ReadIndex steps over the whole run (`MaxReads`); 0 leaves reads out.
    pub max_reads: u8,
    /// Messages the network may duplicate over a run (`MaxDuplicates`): the
    /// DuplicateMessage action adds one more copy of a message in flight.
    pub max_duplicates: u8,
    /// Messages the network may lose over a run (`MaxDrops`): the
    /// DropMessage action takes one copy out of flight undelivered.
    pub max_drops: u8,
    /// CheckQuorum on (`CheckQuorumOn`): leaders take the CheckQuorum step
    /// and step down without a quorum of answers since the last one.
    /// (Absent from bounds recorded before it: off.)
    #[serde(default)]
    pub check_quorum: bool,
    /// PreVote on (`PreVoteOn`): a Timeout makes a pre-candidate that
    /// campaigns only with a quorum of pre-votes. (Absent from bounds
    /// recorded before it: off.)
    #[serde(default)]
    pub pre_vote: bool,
    /// Leadership transfers over the whole run (`MaxTransfers`): a leader
    /// takes TransferLeadership to a peer while the counter allows. (Absent
    /// from bounds recorded before it: 0, no transfer.)
    #[serde(default)]
    pub max_transfers: u8,
    /// Servers outside the initial configuration (`Server \ InitMembers`):
    /// the initial configuration is servers `1..=servers - spare_servers`;
    /// the others start with it too, as non-voters a change can add.
    /// (Absent from bounds recorded before it: 0, every server a member.)
    #[serde(default)]
    pub spare_servers: u8,
    /// Configuration changes over the whole run (`MaxConfigChanges`): a
    /// leader takes ChangeConfig to any non-empty set of servers while the
    /// counter allows. (Absent from bounds recorded before it: 0.)
    #[serde(default)]
    pub max_config_changes: u8,
    /// Changes of the learner set over the whole run (`MaxLearnerChanges`):
    /// a leader takes ChangeLearners to any set of servers while the
    /// counter allows. (Absent from bounds recorded before it: 0.)
    #[serde(default)]
    pub max_learner_changes: u8,
    /// Election timeouts over the whole run (`Timeout` steps, pre-vote ones
    /// included; a TimeoutNow's campaign is not one): `None`, the default,
    /// leaves them bounded by `max_term` alone. A guard of the checker's,
    /// not a constant of spec/MCRaft*.cfg: the same as a counter in the
    /// spec's `Timeout` guard, so it only prunes runs. Five servers make
    /// every idle follower a possible candidate, and most of their space is
    /// campaigns that change nothing a bug needs.
    #[serde(default)]
    pub max_timeouts: Option<u8>,
    /// `SendAppendEntries` steps (a leader's heartbeat round to every peer)
    /// over the whole run; `None`, the default, leaves them unbounded. A
    /// checker guard like `max_timeouts`. A new leader's first round and
    /// every answer's follow-up are sent without one, so with 0 a leader
    /// still replicates; only a retry after a loss needs a heartbeat.
    #[serde(default)]
    pub max_heartbeats: Option<u8>,
    /// Parallel writes on (`ParallelWriteOn`): a leader writes its own
    /// appends in parallel with sending them, takes `LogPersisted` when the
    /// write completes, and counts itself in the commit quorum only up to
    /// what is durable. (Absent from bounds recorded before it: off.)
    #[serde(default)]
    pub parallel_write: bool,
    /// Pipelined replication's window (`MaxInflight`): with W > 0 a leader
    /// advances a peer's `next_index` past what it sends and keeps at most
    /// W requests' worth of entries unacknowledged beyond its match; 0 is
    /// off. (Absent from bounds recorded before it: 0.)
    #[serde(default)]
    pub max_inflight: u8,
}

impl Bounds {
    /// The base of every named bound and of the tests' bounds: three servers,
    /// one entry per request, a network that neither loses nor duplicates.
    pub const BASE: Bounds = Bounds {
        servers: 3,
        max_term: 2,
        max_log: 2,
        max_requests: 1,
        max_messages: 4,
        max_restarts: 0,
        max_compactions: 0,
        max_append_entries: 1,
        max_reads: 0,
        max_duplicates: 0,
        max_drops: 0,
        check_quorum: false,
        pre_vote: false,
        max_transfers: 0,
        spare_servers: 0,
        max_config_changes: 0,
        max_learner_changes: 0,
        max_timeouts: None,
        max_heartbeats: None,
        parallel_write: false,
        max_inflight: 0,
    };

    /// The small base bound the tests derive theirs from (debug builds).
    pub const DEFAULT: Bounds = Bounds {
        max_restarts: 1,
        max_compactions: 1,
        ..Bounds::BASE
    };

    /// A named bound.
    pub fn preset(name: &str) -> Option<Bounds> {
        PRESETS
            .iter()
            .find(|preset| preset.name == name)
            .map(|preset| preset.bounds.clone())
    }

    pub fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|preset| preset.name).collect()
    }
}

/// A bound with a name, and what it is for.
pub struct Preset {
    pub name: &'static str,
    pub bounds: Bounds,
    pub about: &'static str,
    /// Distinct states within bounds an exhaustive search of it stores (with
    /// symmetry), as measured on the correct core (checker/README.md,
    /// "Figures"): only for the progress line's estimate of what is left.
    pub states: Option<usize>,
}

/// The recorded size of the named bound `name`, if `bounds` are its own.
pub fn recorded_states(name: &str, bounds: &Bounds) -> Option<usize> {
    PRESETS
        .iter()
        .find(|preset| preset.name == name && preset.bounds == *bounds)
        .and_then(|preset| preset.states)
}

/// The named bounds (`--bound NAME`). Each member of the default suite is
/// chosen so that the seeded bugs of its class are found within it
/// (checker/README.md, "Seeded bugs", gives the measured table).
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "elections",
        bounds: Bounds {
            max_term: 4,
            max_requests: 0,
            ..Bounds::BASE
        },
        about: "four terms, logs of two (the no-ops of the elections), four messages in flight: \
                Figure 8 (commit-old-term), votes, up-to-date and consistency checks, stale responses",
        states: Some(4_483_047),
    },
    Preset {
        name: "crashes",
        bounds: Bounds {
            max_restarts: 1,
            ..Bounds::BASE
        },
        about: "two terms, one command, one restart: what a crash loses (persist effects omitted)",
        states: Some(1_925_906),
    },
    Preset {
        name: "snapshots",
        bounds: Bounds {
            max_compactions: 1,
            max_append_entries: 2,
            ..Bounds::BASE
        },
        about: "two terms, one command, one compaction, batches of two: InstallSnapshot against stale and conflicting logs, batches the snapshot partly covers",
        states: Some(2_222_833),
    },
    Preset {
        name: "reads",
        bounds: Bounds {
            max_requests: 0,
            max_reads: 1,
            ..Bounds::BASE
        },
        about: "two terms, one ReadIndex: a read served by a deposed or a brand-new leader",
        states: Some(1_019_234),
    },
    Preset {
        name: "batching",
        bounds: Bounds {
            max_term: 3,
            max_append_entries: 2,
            ..Bounds::BASE
        },
        about: "three terms, one command, two entries per AppendEntries: conflicts inside a batch",
        states: Some(1_834_623),
    },
    Preset {
        name: "stale",
        bounds: Bounds {
            max_term: 3,
            ..Bounds::BASE
        },
        about: "three terms, one command, one entry per request: a follower's rejection of an old \
                leader's request reaching the follower's new leader, which backs off past what the \
                follower holds (commit-beyond-leader)",
        states: Some(2_099_936),
    },
    Preset {
        name: "ahead",
        bounds: Bounds {
            max_term: 1,
            max_messages: 5,
            max_compactions: 1,
            max_append_entries: 2,
            ..Bounds::BASE
        },
        about: "one term, one command, one compaction, batches of two, five messages in flight: a \
                snapshot reaching a follower that already holds the batch past it, whose matching \
                suffix it keeps",
        states: Some(1_946_618),
    },
    Preset {
        name: "conflicts",
        bounds: Bounds {
            max_term: 3,
            max_log: 3,
            max_requests: 2,
            max_messages: 3,
            max_drops: 1,
            ..Bounds::BASE
        },
        about: "three terms, logs of three, two commands, three messages in flight and one lost: \
                a deposed leader's run of two entries of its term skipped by one rejection \
                (ConflictTermSkipped, paper §5.3's conflict hint)",
        states: Some(1_761_871),
    },
    Preset {
        name: "quorum",
        bounds: Bounds {
            check_quorum: true,
            ..Bounds::BASE
        },
        about: "two terms, one command, CheckQuorum on: leaders step down without a quorum of \
                answers anywhere in a run, and every safety property still holds",
        states: Some(2_026_997),
    },
    Preset {
        name: "prevote",
        bounds: Bounds {
            check_quorum: true,
            pre_vote: true,
            max_requests: 0,
            ..Bounds::BASE
        },
        about: "two terms, PreVote and CheckQuorum on (the node's setting): pre-elections, \
                the lease check, a pre-candidate standing down, leaders stepping down; no \
                pre-vote raises a term, and every safety property still holds",
        states: Some(1_742_183),
    },
    Preset {
        name: "lease-restart",
        bounds: Bounds {
            check_quorum: true,
            pre_vote: true,
            max_term: 1,
            max_log: 1,
            max_requests: 0,
            max_restarts: 1,
            ..Bounds::BASE
        },
        about: "one term, one restart, PreVote and CheckQuorum on: a restarted server holds \
                the lease of a leader it may have heard just before its crash \
                (restart-forgets-lease breaks it). With one term the lease is only set: a \
                pre-vote refused by it and a timeout clearing it need a second term, which \
                `prevote-restart` (the thorough suite) has",
        states: Some(138_762),
    },
    Preset {
        name: "transfer",
        bounds: Bounds {
            pre_vote: true,
            max_transfers: 1,
            max_messages: 3,
            ..Bounds::BASE
        },
        about: "two terms, one command, three messages in flight, PreVote on, one leadership \
                transfer: TimeoutNow campaigns past the pre-election, a leader handing over \
                takes no command, a transfer interleaved with a rival election and aborted; \
                every safety property still holds",
        states: Some(163_846),
    },
    Preset {
        name: "prevote-restart",
        bounds: Bounds {
            check_quorum: true,
            pre_vote: true,
            max_requests: 0,
            max_restarts: 1,
            ..Bounds::BASE
        },
        about: "`prevote` with a restart anywhere in its two terms (the default suite's \
                `prevote` until 2026-12-01; in the `thorough` suite)",
        states: Some(11_508_124),
    },
    Preset {
        name: "transfer-four",
        bounds: Bounds {
            pre_vote: true,
            max_transfers: 1,
            ..Bounds::BASE
        },
        about: "`transfer` with four messages in flight (the default suite's `transfer` until \
                2026-12-01; in the `thorough` suite)",
        states: Some(6_965_386),
    },
    Preset {
        name: "changes",
        bounds: Bounds {
            servers: 4,
            spare_servers: 1,
            max_log: 3,
            max_requests: 0,
            max_messages: 3,
            max_config_changes: 2,
            max_transfers: 1,
            ..Bounds::BASE
        },
        about: "four servers, three of them the initial configuration, two terms, two \
                configuration changes and a leadership transfer: a change proposed before the \
                leader's term commits, a second change while one is pending, a leader removing \
                itself, a transfer during a change; the four membership properties hold",
        states: Some(1_428_486),
    },
    Preset {
        name: "config-snapshots",
        bounds: Bounds {
            servers: 4,
            spare_servers: 1,
            max_log: 3,
            max_requests: 0,
            max_messages: 3,
            max_config_changes: 1,
            max_compactions: 1,
            ..Bounds::BASE
        },
        about: "four servers, three of them the initial configuration, two terms, one change and \
                one compaction: a snapshot that carries a configuration, installed by a server \
                that must adopt it",
        states: Some(1_469_137),
    },
    Preset {
        name: "learners",
        bounds: Bounds {
            servers: 4,
            spare_servers: 1,
            max_requests: 0,
            max_messages: 4,
            max_learner_changes: 1,
            ..Bounds::BASE
        },
        about: "four servers, three of them the initial configuration, two terms, the fourth made \
                a learner: replicated to, caught up by its leader, never counted in a quorum \
                (learner-counted-in-quorum commits what only the leader and the learner hold)",
        states: Some(348_387),
    },
    Preset {
        name: "parallel",
        bounds: Bounds {
            parallel_write: true,
            max_messages: 3,
            max_restarts: 1,
            ..Bounds::BASE
        },
        about: "two terms, one command, one restart, three messages in flight, parallel writes \
                on (spec/MCRaft_parallel.cfg with a restart): a leader's entries committed by its \
                followers before its own write of them completes, and a leader that crashes \
                before it completes losing entries a follower holds; every safety property \
                still holds (leader-counts-itself-before-durable breaks it)",
        states: Some(224_152),
    },
    Preset {
        name: "crash-answers",
        bounds: Bounds {
            parallel_write: true,
            max_term: 3,
            max_log: 1,
            max_requests: 0,
            max_messages: 4,
            max_restarts: 1,
            ..Bounds::BASE
        },
        about: "three terms, no command, four messages in flight, one restart, parallel writes \
                on: a leader that crashes before its no-op is durable and is elected again while \
                answers to its earlier term are still in flight, then a third election; every \
                safety property still holds (count-stale-append-success breaks it: three \
                servers hide it when a leader's log is durable before it is sent)",
        states: Some(1_200_169),
    },
    Preset {
        name: "pipeline",
        bounds: Bounds {
            max_inflight: 2,
            ..Bounds::BASE
        },
        about: "two terms, one command, four messages in flight, pipelined replication with a \
                window of two requests (spec/MCRaft_pipeline.cfg with a fourth message): a \
                leader's command sent before its no-op is acknowledged, requests overtaking \
                one another, and the rejection taking next_index back over the gap; every \
                safety property still holds (match-everything-sent breaks it)",
        states: Some(596_461),
    },
    Preset {
        name: "pipeline-loss",
        bounds: Bounds {
            max_inflight: 2,
            max_drops: 1,
            ..Bounds::BASE
        },
        about: "`pipeline` with one message lost (the default suite's `pipeline` until \
                2026-12-01; in the `thorough` suite)",
        states: Some(3_398_724),
    },
    Preset {
        name: "promotion",
        bounds: Bounds {
            servers: 4,
            spare_servers: 1,
            max_term: 1,
            max_log: 3,
            max_requests: 0,
            max_messages: 3,
            max_config_changes: 1,
            max_learner_changes: 1,
            ..Bounds::BASE
        },
        about: "spec/MCRaft_learners.cfg: four servers, one term, a learner added and promoted \
                through C_old,new (or a change and a learner change in any other order); \
                compared with TLC state for state",
        states: Some(75_341),
    },
    Preset {
        name: "deep",
        bounds: Bounds {
            max_term: 4,
            max_log: 3,
            max_requests: 2,
            ..Bounds::BASE
        },
        about: "four terms, logs of three, two commands: 153,076,756 states, 23 min 28 s on \
                two cores (2026-12-02, checker/README.md, \"Figures\")",
        states: Some(153_076_756),
    },
    Preset {
        name: "membership",
        bounds: Bounds {
            servers: 4,
            spare_servers: 1,
            max_log: 3,
            max_requests: 0,
            max_messages: 3,
            max_config_changes: 1,
            ..Bounds::BASE
        },
        about: "spec/MCRaft_membership.cfg: four servers, three of them the initial \
                configuration, one change through C_old,new (adding the spare, removing the \
                leader...) interleaved with two terms of elections; compared with TLC state for \
                state",
        states: Some(185_961),
    },
    Preset {
        name: "spec",
        bounds: Bounds {
            max_messages: 3,
            max_restarts: 1,
            max_compactions: 1,
            ..Bounds::BASE
        },
        about: "spec/MCRaft.cfg: compared with TLC state for state (302,222 each), every core action",
        states: Some(302_222),
    },
    Preset {
        name: "tiny",
        bounds: Bounds {
            max_messages: 3,
            ..Bounds::BASE
        },
        about: "a smoke test: too small for a command to commit",
        states: Some(8_156),
    },
    Preset {
        name: "five",
        bounds: Bounds {
            servers: 5,
            max_term: 1,
            max_messages: 5,
            ..Bounds::BASE
        },
        about: "five servers, one term",
        states: None,
    },
];

/// Named lists of bounds, checked one after the other. `default` is what
/// `check` runs without a bound: together its members find every seeded bug.
/// Each suite is the concatenation of its lists, in order.
pub const SUITES: &[(&str, &[&[&str]])] = &[
    ("default", &[DEFAULT_SUITE]),
    ("thorough", &[DEFAULT_SUITE, THOROUGH_EXTRA]),
];

/// The default suite: each member is the bound its seeded bugs and goals
/// need, no bigger, so that the whole suite fits in ten minutes on two
/// cores (checker/README.md, "Figures").
const DEFAULT_SUITE: &[&str] = &[
    "elections",
    "crashes",
    "snapshots",
    "reads",
    "batching",
    "stale",
    "ahead",
    "quorum",
    "conflicts",
    "prevote",
    "lease-restart",
    "transfer",
    "changes",
    "config-snapshots",
    "learners",
    "parallel",
    "crash-answers",
    "pipeline",
];

/// What the `thorough` suite runs after the default suite: the bigger
/// bounds its `prevote`, `transfer` and `pipeline` members were until
/// 2026-12-01, the same features with a restart, a fourth message or a
/// loss interleaved (about 24 minutes more on two cores).
const THOROUGH_EXTRA: &[&str] = &["prevote-restart", "transfer-four", "pipeline-loss"];

/// The members of a suite, or the one named bound.
pub fn resolve(name: &str) -> Option<Vec<(&'static str, Bounds)>> {
    if let Some((_, lists)) = SUITES.iter().find(|(suite, _)| *suite == name) {
        return lists
            .iter()
            .flat_map(|members| members.iter())
            .map(|member| {
                PRESETS
                    .iter()
                    .find(|preset| preset.name == *member)
                    .map(|preset| (preset.name, preset.bounds.clone()))
            })
            .collect();
    }
    PRESETS
        .iter()
        .find(|preset| preset.name == name)
        .map(|preset| vec![(preset.name, preset.bounds.clone())])
}

/// Every name `--bound` accepts.
pub fn names() -> Vec<&'static str> {
    SUITES
        .iter()
        .map(|(name, _)| *name)
        .chain(PRESETS.iter().map(|preset| preset.name))
        .collect()
}

/// The bound flags of the command line. Without `--bound` and without any
/// flag, the `default` suite; with `--bound NAME`, that bound or suite, each
/// member with the given flags overriding its constants; with flags alone,
/// [`Bounds::BASE`] with the flags.
#[derive(Args, Clone, Debug, Default)]
pub struct BoundArgs {
    /// A named bound or suite: `default` (the suite `check` runs), one of
    /// its members, `spec`, `tiny`, `five`, `deep` (checker/README.md,
    /// "Bounds"; an unknown name is refused with the list).
    #[arg(long, value_name = "NAME")]
    pub bound: Option<String>,
    /// Number of servers (`Server`); the spec is symmetric in them.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub servers: Option<u8>,
    /// Highest term a Timeout may reach (`MaxTerm`).
    #[arg(long)]
    pub max_term: Option<u8>,
    /// Longest log, snapshot prefix included (`MaxLogLength`, in `WithinBounds`).
    #[arg(long)]
    pub max_log: Option<u8>,
    /// Client requests over the whole run (`MaxClientRequests`).
    #[arg(long)]
    pub max_requests: Option<u8>,
    /// Most messages in flight at once, copies counted (`MaxMessages`, in
    /// `WithinBounds`); a delivery consumes its message.
    #[arg(long)]
    pub max_messages: Option<u8>,
    /// Server restarts over the whole run (`MaxRestarts`).
    #[arg(long)]
    pub max_restarts: Option<u8>,
    /// Log compactions (snapshots taken) over the whole run (`MaxCompactions`).
    #[arg(long)]
    pub max_compactions: Option<u8>,
    /// Entries per AppendEntries request (`MaxAppendEntries`).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_append_entries: Option<u8>,
    /// ReadIndex steps over the whole run (`MaxReads`); 0 leaves reads out.
    #[arg(long)]
    pub max_reads: Option<u8>,
    /// Copies the network may add to messages in flight over a run
    /// (`MaxDuplicates`, the DuplicateMessage action).
    #[arg(long)]
    pub max_duplicates: Option<u8>,
    /// Copies the network may lose over a run (`MaxDrops`, the DropMessage
    /// action).
    #[arg(long)]
    pub max_drops: Option<u8>,
    /// CheckQuorum on or off (`CheckQuorumOn`): leaders step down without a
    /// quorum of answers between two CheckQuorum steps.
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new())]
    pub check_quorum: Option<bool>,
    /// PreVote on or off (`PreVoteOn`): a Timeout asks for pre-votes first,
    /// and a server that hears from a leader refuses them.
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new())]
    pub pre_vote: Option<bool>,
    /// Leadership transfers over the whole run (`MaxTransfers`); 0 leaves
    /// TransferLeadership out.
    #[arg(long)]
    pub max_transfers: Option<u8>,
    /// Servers outside the initial configuration (`Server \ InitMembers`),
    /// which a configuration change can add.
    #[arg(long)]
    pub spare_servers: Option<u8>,
    /// Configuration changes over the whole run (`MaxConfigChanges`); 0
    /// leaves ChangeConfig out.
    #[arg(long)]
    pub max_config_changes: Option<u8>,
    /// Changes of the learner set over the whole run
    /// (`MaxLearnerChanges`); 0 leaves ChangeLearners out.
    #[arg(long)]
    pub max_learner_changes: Option<u8>,
    /// Election timeouts over the whole run (`Timeout` steps); without it,
    /// only `--max-term` bounds them. A guard of the checker's that only
    /// prunes runs (checker/README.md, "Bounds").
    #[arg(long)]
    pub max_timeouts: Option<u8>,
    /// Heartbeat rounds over the whole run (`SendAppendEntries` steps);
    /// without it, unbounded. A guard of the checker's that only prunes runs.
    #[arg(long)]
    pub max_heartbeats: Option<u8>,
    /// Parallel writes on or off (`ParallelWriteOn`): a leader's own appends
    /// are written in parallel with replication (`LogPersisted` when done),
    /// and it counts itself only up to what is durable.
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new())]
    pub parallel_write: Option<bool>,
    /// Pipelined replication's window in requests (`MaxInflight`; 0, the
    /// default, is off): a leader sends a peer new entries before the
    /// previous ones are acknowledged, advancing `next_index` as it sends.
    #[arg(long)]
    pub max_inflight: Option<u8>,
}

impl BoundArgs {
    /// The bounds to check, each with its name (`custom` for flags alone).
    pub fn resolve(&self) -> Result<Vec<(String, Bounds)>, String> {
        let base = match (&self.bound, self.any_flag()) {
            (Some(name), _) => resolve(name).ok_or_else(|| {
                format!(
                    "unknown bound `{name}`; named bounds and suites: {}",
                    names().join(", ")
                )
            })?,
            (None, true) => vec![("custom", Bounds::BASE)],
            (None, false) => resolve("default").ok_or("the default suite is missing")?,
        };
        Ok(base
            .into_iter()
            .map(|(name, bounds)| {
                let name = if self.any_flag() && name != "custom" {
                    format!("{name} (with flags)")
                } else {
                    name.to_string()
                };
                (name, self.apply(bounds))
            })
            .collect())
    }

    /// Exactly one bound (commands that cannot run a suite); without
    /// `--bound` and flags, [`Bounds::BASE`].
    pub fn resolve_one(&self) -> Result<(String, Bounds), String> {
        if self.bound.is_none() && !self.any_flag() {
            return Ok(("base".to_string(), Bounds::BASE));
        }
        let mut all = self.resolve()?;
        if all.len() != 1 {
            return Err(format!(
                "this command takes one bound, not a suite of {}: give --bound NAME or bound flags",
                all.len()
            ));
        }
        Ok(all.remove(0))
    }

    fn any_flag(&self) -> bool {
        [
            self.servers,
            self.max_term,
            self.max_log,
            self.max_requests,
            self.max_messages,
            self.max_restarts,
            self.max_compactions,
            self.max_append_entries,
            self.max_reads,
            self.max_duplicates,
            self.max_drops,
            self.max_transfers,
            self.spare_servers,
            self.max_config_changes,
            self.max_learner_changes,
            self.max_timeouts,
            self.max_heartbeats,
            self.max_inflight,
        ]
        .iter()
        .any(Option::is_some)
            || self.check_quorum.is_some()
            || self.pre_vote.is_some()
            || self.parallel_write.is_some()
    }

    fn apply(&self, bounds: Bounds) -> Bounds {
        Bounds {
            servers: self.servers.unwrap_or(bounds.servers),
            max_term: self.max_term.unwrap_or(bounds.max_term),
            max_log: self.max_log.unwrap_or(bounds.max_log),
            max_requests: self.max_requests.unwrap_or(bounds.max_requests),
            max_messages: self.max_messages.unwrap_or(bounds.max_messages),
            max_restarts: self.max_restarts.unwrap_or(bounds.max_restarts),
            max_compactions: self.max_compactions.unwrap_or(bounds.max_compactions),
            max_append_entries: self.max_append_entries.unwrap_or(bounds.max_append_entries),
            max_reads: self.max_reads.unwrap_or(bounds.max_reads),
            max_duplicates: self.max_duplicates.unwrap_or(bounds.max_duplicates),
            max_drops: self.max_drops.unwrap_or(bounds.max_drops),
            check_quorum: self.check_quorum.unwrap_or(bounds.check_quorum),
            pre_vote: self.pre_vote.unwrap_or(bounds.pre_vote),
            max_transfers: self.max_transfers.unwrap_or(bounds.max_transfers),
            spare_servers: self.spare_servers.unwrap_or(bounds.spare_servers),
            max_config_changes: self.max_config_changes.unwrap_or(bounds.max_config_changes),
            max_learner_changes: self
                .max_learner_changes
                .unwrap_or(bounds.max_learner_changes),
            max_timeouts: self.max_timeouts.or(bounds.max_timeouts),
            max_heartbeats: self.max_heartbeats.or(bounds.max_heartbeats),
            parallel_write: self.parallel_write.unwrap_or(bounds.parallel_write),
            max_inflight: self.max_inflight.unwrap_or(bounds.max_inflight),
        }
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::BASE
    }
}

impl Bounds {
    /// The bound as `check`'s flags, every constant spelled out (the
    /// checker's own guards only when set: unset, they bound nothing): what
    /// the mutation report, the counterexamples and the tests print and run.
    pub fn flags(&self) -> Vec<(&'static str, String)> {
        let on_off = |on: bool| if on { "on" } else { "off" }.to_string();
        let mut flags = vec![
            ("servers", self.servers.to_string()),
            ("max-term", self.max_term.to_string()),
            ("max-log", self.max_log.to_string()),
            ("max-requests", self.max_requests.to_string()),
            ("max-messages", self.max_messages.to_string()),
            ("max-restarts", self.max_restarts.to_string()),
            ("max-compactions", self.max_compactions.to_string()),
            ("max-append-entries", self.max_append_entries.to_string()),
            ("max-reads", self.max_reads.to_string()),
            ("max-duplicates", self.max_duplicates.to_string()),
            ("max-drops", self.max_drops.to_string()),
            ("check-quorum", on_off(self.check_quorum)),
            ("pre-vote", on_off(self.pre_vote)),
            ("max-transfers", self.max_transfers.to_string()),
            ("spare-servers", self.spare_servers.to_string()),
            ("max-config-changes", self.max_config_changes.to_string()),
        ];
        if self.max_learner_changes > 0 {
            flags.push(("max-learner-changes", self.max_learner_changes.to_string()));
        }
        if let Some(max) = self.max_timeouts {
            flags.push(("max-timeouts", max.to_string()));
        }
        if let Some(max) = self.max_heartbeats {
            flags.push(("max-heartbeats", max.to_string()));
        }
        if self.parallel_write {
            flags.push(("parallel-write", on_off(true)));
        }
        if self.max_inflight > 0 {
            flags.push(("max-inflight", self.max_inflight.to_string()));
        }
        flags
    }

    /// [`Bounds::flags`] as one command-line string (`--servers 3 ...`).
    pub fn command_line(&self) -> String {
        self.flags()
            .iter()
            .map(|(flag, value)| format!("--{flag} {value}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self
            .flags()
            .iter()
            .map(|(flag, value)| format!("{flag}={value}"))
            .collect();
        f.write_str(&pairs.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `thorough` is the default suite and more: nothing the default checks
    /// is left out of it.
    #[test]
    fn the_thorough_suite_extends_the_default_one() {
        let default = resolve("default").expect("every default member is a named bound");
        let thorough = resolve("thorough").expect("every thorough member is a named bound");
        assert!(thorough.starts_with(&default));
        assert!(thorough.len() > default.len());
    }
}
