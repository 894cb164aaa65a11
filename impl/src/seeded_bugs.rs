//! Hook points for deliberate bugs, compiled only with the cargo feature
//! `seeded-bugs` (off by default; the lab, `raft-lab`, enables it to prove
//! that its chaos harness catches a broken node). The production binary has
//! no way to set these switches: `raft-node run` has no flag for them, and
//! without the feature neither the switches nor the hooks in the event loop
//! exist. The bugs themselves — their names and what each is for — are
//! defined in the lab.
//!
//! They are not a fork of the protocol: the core (raft-model) runs
//! unchanged; a switch only makes the node *answer a client* when it should
//! not yet, or break the rule at the edge that the core relies on
//! (durability before speech: `send_before_durable`, `skip_fdatasync`).

use raft_model::{Index, Log, Payload};

use crate::kv::{KvCommand, KvImage};
use crate::types::{Applied, ClientError, WaitingWrites};

/// Which of the event loop's hooks misbehave (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeededBugs {
    /// After each persist, the leader answers every waiting write whose
    /// entry is durable in its *own* log, before a majority has it (before it
    /// commits): a leader that crashes or is deposed then loses acknowledged
    /// writes.
    pub ack_before_commit: bool,
    /// A node that believes it leads answers linearizable reads (the native
    /// Get and etcd's Range) from its own state machine without confirming
    /// its leadership (no ReadIndex round): a deposed leader serves stale
    /// reads.
    pub stale_read: bool,
    /// The event loop sends a batch's messages (votes, AppendEntries
    /// replies, its own requests) before the batch is durable, and makes
    /// it durable afterwards: a power cut in between loses what a peer was
    /// told (a vote, an entry counted towards a commit). SIGKILL alone
    /// cannot expose it: the write reaches the page cache, which survives.
    pub send_before_durable: bool,
    /// The log file's appends are written but never fdatasynced (the
    /// node behaves as if they were durable): a power cut loses them.
    pub skip_fdatasync: bool,
}

impl SeededBugs {
    /// Whether any hook misbehaves.
    pub fn any(&self) -> bool {
        self.ack_before_commit || self.stale_read || self.send_before_durable || self.skip_fdatasync
    }
}

/// [`SeededBugs::ack_before_commit`]: answers every waiting write whose entry
/// is in the (just persisted) log, with the result it *would* have once
/// applied, computed on a scratch copy of the state machine. The entries are
/// then forgotten by the loop: their commit, if it ever comes, answers no one.
pub(crate) fn ack_uncommitted(
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
        if let Some(waiting) = proposals.remove(&index) {
            let _ = waiting.reply.send(
                result
                    .map(|result| Applied {
                        index,
                        term: entry.term,
                        result,
                    })
                    .map_err(ClientError::from),
            );
        }
    }
}
