//! # raft-lab: the laboratory around raft-node
//!
//! Everything that tests, measures or deliberately breaks the node, kept out
//! of the node crate (which holds only what a deployed node runs):
//!
//! - [`chaos`]: a cluster of node processes under injected faults, with
//!   concurrent clients, and a linearizability and durability check of the
//!   history;
//! - [`compare`]: the same closed-loop load against this node and against
//!   etcd (its client is generated here from `proto/etcd_kv.proto`);
//! - [`bench`]: put throughput and latency and snapshot cost on an
//!   in-process loopback cluster;
//! - [`powerfs`]: a FUSE file system that keeps what was not fsynced in a
//!   volatile layer and drops (or tears) it at a simulated power cut, and
//!   injects disk faults; the chaos harness mounts one per node;
//! - [`seeded_bugs`]: the node's deliberate bugs, which the chaos harness
//!   must catch. They switch on hooks that raft-node compiles only with its
//!   `seeded-bugs` feature, which this crate enables.
//!
//! The `raft-lab` binary runs each of them, and `raft-lab node`: the node
//! library with those hooks compiled in — the very node of `raft-node run`,
//! with the same flags, unless `--seeded-bug` is given. Chaos and compare
//! start their nodes as `raft-lab node` processes.

pub mod bench;
pub mod chaos;
pub mod compare;
pub mod powerfs;
pub mod seeded_bugs;

/// Code generated from `proto/` by tonic-prost-build.
pub mod proto {
    /// The slice of etcd's v3 API that `compare` calls (client only).
    pub mod etcd {
        tonic::include_proto!("etcdserverpb");
    }
}
