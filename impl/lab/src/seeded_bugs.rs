//! Deliberate bugs in the node's edge, to prove that the chaos harness
//! catches them (a test that cannot fail proves nothing).
//!
//! They are not a fork of the protocol: the core (raft-model) runs unchanged;
//! a seeded bug only makes the node *answer a client* when it should not
//! yet. Each bug turns on a hook of the node's event loop that exists only
//! when raft-node is built with its `seeded-bugs` feature (as this crate
//! builds it); `raft-lab node --seeded-bug NAME` is the only way to turn one
//! on, and the node then logs at error level that it is broken on purpose.

use std::str::FromStr;

use raft_node::config::NodeConfig;
use raft_node::seeded_bugs::SeededBugs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeededBug {
    /// The leader answers a write once the entry is durable in its *own*
    /// log, before a majority has it (before it commits): a leader that
    /// crashes or is deposed then loses acknowledged writes.
    AckBeforeCommit,
    /// A node that believes it leads answers reads from its own state
    /// machine without confirming its leadership (no ReadIndex round): a
    /// deposed leader serves stale reads.
    StaleRead,
    /// The node sends a batch's messages (votes, AppendEntries replies, its
    /// own requests) before the batch is durable: a power cut in between
    /// loses what a peer was told. SIGKILL cannot expose it (the write
    /// still reaches the page cache, which survives a killed process).
    SendBeforeDurable,
    /// The log file's appends are never fdatasynced: a power cut loses
    /// entries and votes the node acted on. SIGKILL cannot expose it.
    SkipFdatasync,
}

impl SeededBug {
    pub const NAMES: [&'static str; 4] = [
        "ack-before-commit",
        "stale-read",
        "send-before-durable",
        "skip-fdatasync",
    ];

    pub fn name(self) -> &'static str {
        match self {
            SeededBug::AckBeforeCommit => "ack-before-commit",
            SeededBug::StaleRead => "stale-read",
            SeededBug::SendBeforeDurable => "send-before-durable",
            SeededBug::SkipFdatasync => "skip-fdatasync",
        }
    }

    /// The node's hooks this bug turns on.
    pub fn hooks(self) -> SeededBugs {
        match self {
            SeededBug::AckBeforeCommit => SeededBugs {
                ack_before_commit: true,
                ..SeededBugs::default()
            },
            SeededBug::StaleRead => SeededBugs {
                stale_read: true,
                ..SeededBugs::default()
            },
            SeededBug::SendBeforeDurable => SeededBugs {
                send_before_durable: true,
                ..SeededBugs::default()
            },
            SeededBug::SkipFdatasync => SeededBugs {
                skip_fdatasync: true,
                ..SeededBugs::default()
            },
        }
    }
}

impl std::fmt::Display for SeededBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SeededBug {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ack-before-commit" => Ok(SeededBug::AckBeforeCommit),
            "stale-read" => Ok(SeededBug::StaleRead),
            "send-before-durable" => Ok(SeededBug::SendBeforeDurable),
            "skip-fdatasync" => Ok(SeededBug::SkipFdatasync),
            _ => Err(format!(
                "unknown seeded bug {text:?}; known: {}",
                SeededBug::NAMES.join(", ")
            )),
        }
    }
}

/// Breaks the node configured by `config` with `bug`, and logs loudly that
/// it is broken on purpose.
pub fn enable(bug: SeededBug, config: &mut NodeConfig) {
    tracing::error!(
        bug = bug.name(),
        "SEEDED BUG ENABLED: this node deliberately breaks linearizability or durability; never use it for real data"
    );
    config.seeded_bugs = bug.hooks();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for name in SeededBug::NAMES {
            assert_eq!(name.parse::<SeededBug>().unwrap().name(), name);
        }
        assert!("off-by-one".parse::<SeededBug>().is_err());
    }

    #[test]
    fn each_bug_turns_on_one_hook() {
        for name in SeededBug::NAMES {
            let hooks = name.parse::<SeededBug>().unwrap().hooks();
            assert!(hooks.any());
            let on = [
                hooks.ack_before_commit,
                hooks.stale_read,
                hooks.send_before_durable,
                hooks.skip_fdatasync,
            ];
            assert_eq!(on.iter().filter(|h| **h).count(), 1, "{name}");
        }
    }
}
