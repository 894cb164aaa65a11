//! # raft-checker: exhaustive model checking of the raft-model core
//!
//! A stateright [`Model`](stateright::Model) whose state is the spec's
//! variables (spec/README.md) and whose actions are the spec's actions, the
//! model's one list ([`raft_model::Step`], taken by `Server::step`): the checker
//! explores the very code the node runs. The network ([`network`]) is a bag
//! of messages in flight: it reorders them, and duplicates and loses them in
//! bounded numbers; servers restart; leaders compact their logs and send
//! snapshots.
//!
//! Modules: [`bounds`] (the spec constants), [`state`] (the spec variables),
//! [`action`] and [`step`] (the spec actions, driving the core), [`model`]
//! (the stateright model and its properties), [`properties`] (the paper's
//! safety properties), [`symmetry`] (reduction over server ids), [`run`] and
//! [`report`] (running a check), [`shorten`] (shortest counterexamples), [`trace`] (counterexamples, written in the
//! node's trace format `raft-trace/5`), [`bugs`] (seeded bug names).

pub mod action;
pub mod bounds;
pub mod bugs;
pub mod describe;
pub mod memory;
pub mod model;
pub mod mutants;
pub mod network;
pub mod progress;
pub mod properties;
pub mod report;
pub mod run;
pub mod shared_server;
pub mod shorten;
pub mod state;
pub mod step;
pub mod symmetry;
pub mod trace;
pub mod violation;
