//! # raft-model: the Raft protocol core
//!
//! The one implementation of Raft's state transitions in this project. It is
//! pure and deterministic: no clock, no randomness, no I/O, no async. Time,
//! randomness, the network and the disk are inputs and outputs at its edge:
//!
//! - inputs are the spec's actions — an election timeout fired
//!   ([`Server::timeout`]), a heartbeat is due ([`Server::send_append_entries`]),
//!   a client request ([`Server::client_request`]), a message arrived
//!   ([`Server::receive`] or the `handle_*` function of its kind), a crash
//!   ([`Server::restart`]), a snapshot taken ([`Server::compact_log`]);
//! - each returns [`Effects`]: what to make durable, then the messages to send,
//!   then how far entries are committed.
//!
//! The checker (`checker/`) explores these very functions; the node (`impl/`)
//! runs them under tokio; `interop/` replays recorded traces through them.
//! `spec/Raft.tla` mirrors them action for action (see spec/README.md).
//!
//! Generic parameters: `C` is the command type, `S` the state-machine image a
//! snapshot carries. Every persistent collection is an `imbl` structure, so
//! cloning a whole server is O(1).

mod actions;
pub mod bugs;
mod effects;
mod log;
mod message;
mod server;
mod snapshot;
mod types;

pub use actions::{CompactError, NotLeader, PendingRead, ReadReady};
pub use bugs::{Bug, Bugs};
pub use effects::{Effects, Persist};
pub use log::Log;
pub use message::{Body, Message};
pub use server::{DEFAULT_MAX_APPEND_ENTRIES, Role, Server};
pub use snapshot::{Snapshot, SnapshotMeta};
pub use types::{Config, Entry, Index, NodeId, Payload, Term};
