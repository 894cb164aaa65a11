//! Deliberate bugs in the node's edge, to prove that the chaos harness
//! catches them (a test that cannot fail proves nothing).
//!
//! They are not a fork of the protocol: the core (raft-model) runs unchanged;
//! a seeded bug only makes the node *answer a client* when it should not
//! yet. Enabling one takes a hidden flag (`--seeded-bug NAME`, absent from
//! `--help`) *and* the environment variable `RAFT_ALLOW_SEEDED_BUGS=1`;
//! the node then logs at error level that it is broken on purpose.

use std::collections::BTreeMap;
use std::str::FromStr;

use raft_model::{Index, Log, Payload, Term};
use tokio::sync::oneshot;

use crate::kv::{KvCommand, KvImage};
use crate::types::{Applied, ClientError};

/// The environment variable that must be "1" for a seeded bug to be accepted.
pub const ALLOW_ENV: &str = "RAFT_ALLOW_SEEDED_BUGS";

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
}

impl SeededBug {
    pub const NAMES: [&'static str; 2] = ["ack-before-commit", "stale-read"];

    pub fn name(self) -> &'static str {
        match self {
            SeededBug::AckBeforeCommit => "ack-before-commit",
            SeededBug::StaleRead => "stale-read",
        }
    }
}

impl FromStr for SeededBug {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ack-before-commit" => Ok(SeededBug::AckBeforeCommit),
            "stale-read" => Ok(SeededBug::StaleRead),
            _ => Err(format!(
                "unknown seeded bug {text:?}; known: {}",
                SeededBug::NAMES.join(", ")
            )),
        }
    }
}

/// Parses `--seeded-bug NAME`, refusing unless [`ALLOW_ENV`] is "1", and
/// logs loudly that the node is broken on purpose.
pub fn enable(name: &str) -> Result<SeededBug, String> {
    let bug: SeededBug = name.parse()?;
    if std::env::var(ALLOW_ENV).as_deref() != Ok("1") {
        return Err(format!(
            "--seeded-bug {name} makes this node violate its guarantees on purpose (for testing the chaos harness); refusing unless {ALLOW_ENV}=1 is set"
        ));
    }
    tracing::error!(
        bug = bug.name(),
        "SEEDED BUG ENABLED: this node deliberately breaks linearizability or durability; never use it for real data"
    );
    Ok(bug)
}

/// The event loop's writes waiting for their entries to apply: log index →
/// (term proposed in, where to answer).
pub type WaitingWrites = BTreeMap<Index, (Term, oneshot::Sender<Result<Applied, ClientError>>)>;

/// [`SeededBug::AckBeforeCommit`]: answers every waiting write whose entry is
/// in the (just persisted) log, with the result it *would* have once applied,
/// computed on a scratch copy of the state machine. The entries are then
/// forgotten by the loop: their commit, if it ever comes, answers no one.
pub fn ack_uncommitted(
    image: &KvImage,
    applied: Index,
    log: &Log<KvCommand>,
    proposals: &mut WaitingWrites,
) {
    if proposals.is_empty() {
        return;
    }
    let mut scratch = image.clone();
    for index in applied + 1..=log.last_index() {
        let Some(entry) = log.entry(index) else {
            continue;
        };
        let Payload::Command(command) = &entry.payload else {
            continue;
        };
        let result = scratch.apply(index, command);
        if let Some((_, reply)) = proposals.remove(&index) {
            let _ = reply.send(
                result
                    .map(|result| Applied { index, result })
                    .map_err(ClientError::from),
            );
        }
    }
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
}
