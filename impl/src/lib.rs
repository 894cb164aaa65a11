//! # raft-node: the verified core, deployed
//!
//! A Raft node that drives `raft_model::Server` — the very transition
//! functions the checker explores — from a tokio event loop, with gRPC
//! between peers and to clients, durable storage, and a replicated key-value
//! store with snapshots.
//!
//! - [`node`]: the event loop (inputs → core → persist, send, apply, answer);
//!   [`types`]: what the loop takes and answers, shared by the modules that
//!   feed it; [`limits`]: every size, count and capacity the node enforces;
//! - [`storage`]: the data directory (an append-only, preallocated record
//!   file with checksums, written in batches; why not a database is
//!   explained in `storage`, what counts as a cut or a torn write in
//!   [`storage::log_file`]);
//! - [`kv`] and [`storage::snapshot_file`]: the state machine and its snapshot format;
//! - [`peer_client`] / [`peer_service`]: the peer transport (the mapping of
//!   the core's one-way messages onto RPCs is explained in `peer_client`);
//! - [`kv_service`] and [`client`]: the client API and a leader-following client;
//! - [`config`], [`server`], [`cli`]: running a node (`raft-node run`);
//!   [`launch`]: starting node processes (config file, log, readiness,
//!   signals, kill) for `cluster`, the lab and the process tests;
//!   [`cluster`]: the quick start's cluster of processes, and `cluster
//!   add|remove` to grow and shrink it; [`local`]: a
//!   cluster of in-process nodes, for tests and the lab's bench;
//! - [`trace`]: recording every call into the core (`--trace-dir`);
//! - [`metrics`] and [`tls`]: Prometheus metrics and HTTP `/health`, and mutual TLS.
//!
//! The chaos harness, the etcd comparison, the bench and the seeded node
//! bugs are not here: they are the lab's (crate `raft-lab`, in `impl/lab`).
//! With the cargo feature `seeded-bugs` (off by default; the lab enables it)
//! this crate compiles the event loop's hooks for those bugs
//! (`seeded_bugs`); no flag of the `raft-node` binary can turn one on.
//!
//! No protocol decision is made in this crate: every vote, commit, leader
//! change and read confirmation comes from the core.

pub mod admin_service;
pub mod backup;
pub mod batched_io;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod command;
pub mod config;
pub mod convert;
pub mod disk_space;
pub mod etcd_convert;
pub mod etcd_service;
pub mod gateway;
pub mod incarnation;
pub mod kv;
pub mod kv_service;
pub mod launch;
pub mod limits;
pub mod local;
pub mod member_cli;
pub mod members;
pub mod metrics;
pub mod node;
pub mod peer_client;
pub mod peer_service;
pub mod readiness;
#[cfg(feature = "seeded-bugs")]
pub mod seeded_bugs;
pub mod server;
pub mod storage;
pub mod tls;
pub mod trace;
pub mod types;

/// Code generated from `proto/` by tonic-prost-build.
pub mod proto {
    pub mod peer {
        tonic::include_proto!("raft.peer.v1");
    }
    pub mod kv {
        tonic::include_proto!("raft.kv.v1");
    }
    pub mod admin {
        tonic::include_proto!("raft.admin.v1");
    }
    /// etcd's v3 API, the part this node serves (`proto/etcd/`).
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    /// etcd's key-value message (`proto/etcd/kv.proto`).
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    /// Served by gRPC reflection (so `grpcurl` needs no .proto files).
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("raft_descriptor");
}
