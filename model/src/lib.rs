//! # raft-model: the Raft protocol core
//!
//! The one implementation of Raft's state transitions in this project. It is
//! pure and deterministic: no clock, no randomness, no I/O, no async. Time,
//! randomness, the network and the disk are inputs and outputs at its edge:
//!
//! - inputs are the spec's actions, listed once as [`Step`] and taken by
//!   [`Server::step`] — an election timeout fired, a heartbeat is due, a
//!   client request, a linearizable read, a message arrived (the `Handle*`
//!   action of its kind), a snapshot taken, a crash;
//! - each returns [`Effects`]: what to make durable, then the messages to send,
//!   then the entries newly committed, to apply in order;
//! - drivers read a server through its methods (`current_term()`, `log()`,
//!   ...); only the transition functions change it.
//!
//! The checker (`checker/`) explores these very functions; the node (`impl/`)
//! runs them under tokio; `interop/` replays recorded traces through them.
//! `spec/Raft.tla` mirrors them action for action (see spec/README.md).
//!
//! Generic parameters: `C` is the command type, `S` the state-machine image a
//! snapshot carries. Every persistent collection is an `imbl` structure, so
//! cloning a whole server is O(1).

mod action;
mod actions;
pub mod bugs;
mod durable;
mod effects;
mod log;
mod message;
mod refused;
mod server;
mod snapshot;
mod step;
mod types;

pub use action::Action;
pub use bugs::{Bug, Bugs};
pub use durable::{Durable, DurableError};
pub use effects::{Committed, Effects, Persist};
pub use log::Log;
pub use message::{Body, Message};
pub use refused::{CompactError, ConfigChangeError, NotLeader, Refused};
pub use server::{DEFAULT_MAX_APPEND_ENTRIES, Role, Server};
pub use snapshot::{Snapshot, SnapshotMeta};
pub use step::Step;
pub use types::{
    Config, Entry, Index, NodeId, Payload, PendingRead, ReadReady, RenameIds, Term, hash_sorted,
};
