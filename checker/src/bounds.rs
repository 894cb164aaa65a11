//! The bounds of an exploration: the TLA+ constants of spec/MCRaft.cfg, as
//! command-line flags.
//!
//! Two kinds of bound, as in the spec:
//! - action guards (`max_term`, `max_requests`, `max_restarts`,
//!   `max_compactions`) disable an action once its counter is used up;
//! - the state predicate `WithinBounds` (`max_log`, `max_messages`) is TLC's
//!   `CONSTRAINT`: a state outside it is still checked against every property
//!   but never expanded (see `model.rs` for how this maps onto stateright).

use clap::Args;
use serde::{Deserialize, Serialize};

/// Spec constants. The defaults are the README's main bound (`MAIN`); its
/// measured size and time are in checker/README.md, "Figures", with the
/// command that prints them.
#[derive(Args, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Number of servers (`Server`); the spec is symmetric in them.
    #[arg(long, default_value_t = Bounds::MAIN.servers, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub servers: u8,
    /// Highest term a Timeout may reach (`MaxTerm`).
    #[arg(long, default_value_t = Bounds::MAIN.max_term)]
    pub max_term: u8,
    /// Longest log, snapshot prefix included (`MaxLogLength`, in `WithinBounds`).
    #[arg(long, default_value_t = Bounds::MAIN.max_log)]
    pub max_log: u8,
    /// Client requests over the whole run (`MaxClientRequests`).
    #[arg(long, default_value_t = Bounds::MAIN.max_requests)]
    pub max_requests: u8,
    /// Most messages in flight at once, copies counted (`MaxMessages`, in
    /// `WithinBounds`). A delivery consumes its message, so this bounds the
    /// network's contents, not the messages a behaviour sends.
    #[arg(long, default_value_t = Bounds::MAIN.max_messages)]
    pub max_messages: u8,
    /// Server restarts over the whole run (`MaxRestarts`).
    #[arg(long, default_value_t = Bounds::MAIN.max_restarts)]
    pub max_restarts: u8,
    /// Log compactions (snapshots taken) over the whole run (`MaxCompactions`).
    #[arg(long, default_value_t = Bounds::MAIN.max_compactions)]
    pub max_compactions: u8,
    /// Entries per AppendEntries request (`MaxAppendEntries`).
    #[arg(long, default_value_t = Bounds::MAIN.max_append_entries, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_append_entries: u8,
    /// Messages the network may duplicate over a run (`MaxDuplicates`): the
    /// DuplicateMessage action adds one more copy of a message in flight.
    #[arg(long, default_value_t = Bounds::MAIN.max_duplicates)]
    pub max_duplicates: u8,
    /// Messages the network may lose over a run (`MaxDrops`): the
    /// DropMessage action takes one copy out of flight undelivered.
    #[arg(long, default_value_t = Bounds::MAIN.max_drops)]
    pub max_drops: u8,
}

impl Bounds {
    /// The CLI's default bound, run by the README's main command
    /// (`cargo run --release -p raft-checker -- check`; its distinct states
    /// and wall time are in checker/README.md, "Figures").
    /// spec/MCRaft_main.cfg states the same bound for TLC.
    pub const MAIN: Bounds = Bounds {
        servers: 3,
        max_term: 3,
        max_log: 3,
        max_requests: 2,
        max_messages: 12,
        max_restarts: 1,
        max_compactions: 1,
        max_append_entries: 1,
        max_duplicates: 0,
        max_drops: 0,
    };

    /// The small base bound the tests derive theirs from (debug builds).
    pub const DEFAULT: Bounds = Bounds {
        servers: 3,
        max_term: 2,
        max_log: 2,
        max_requests: 1,
        max_messages: 8,
        max_restarts: 1,
        max_compactions: 1,
        max_append_entries: 1,
        max_duplicates: 0,
        max_drops: 0,
    };

    /// Named bounds for `bench` and the tests.
    pub const PRESETS: &'static [(&'static str, Bounds)] = &[
        ("default", Bounds::MAIN),
        // spec/MCRaft.cfg: the bound on which TLC and this checker were
        // compared state for state (17,253 distinct states each).
        (
            "spec",
            Bounds {
                max_messages: 10,
                ..Bounds::DEFAULT
            },
        ),
        // A smoke test: one election, too small for a command to commit
        // (43 distinct states, pinned by tests/tlc_agreement.rs).
        (
            "tiny",
            Bounds {
                servers: 3,
                max_term: 2,
                max_log: 2,
                max_requests: 1,
                max_messages: 6,
                max_restarts: 0,
                max_compactions: 1,
                max_append_entries: 1,
                max_duplicates: 0,
                max_drops: 0,
            },
        ),
        (
            "five",
            Bounds {
                servers: 5,
                max_term: 1,
                max_log: 2,
                max_requests: 1,
                max_messages: 10,
                max_restarts: 0,
                max_compactions: 0,
                max_append_entries: 1,
                max_duplicates: 0,
                max_drops: 0,
            },
        ),
    ];

    pub fn preset(name: &str) -> Option<Bounds> {
        Self::PRESETS
            .iter()
            .find(|(preset, _)| *preset == name)
            .map(|(_, bounds)| bounds.clone())
    }

    pub fn preset_names() -> Vec<&'static str> {
        Self::PRESETS.iter().map(|(name, _)| *name).collect()
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::MAIN
    }
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "servers={} max-term={} max-log={} max-requests={} max-messages={} max-restarts={} max-compactions={} max-append-entries={} max-duplicates={} max-drops={}",
            self.servers,
            self.max_term,
            self.max_log,
            self.max_requests,
            self.max_messages,
            self.max_restarts,
            self.max_compactions,
            self.max_append_entries,
            self.max_duplicates,
            self.max_drops
        )
    }
}
