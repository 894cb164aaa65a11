//! The spec's per-server variables, written once: each name as spec/Raft.tla
//! declares it, whether it survives a restart, and how to read it from a
//! [`Server`]. The ITF export, the TLC export (raft-interop) and the
//! checker's list of what a step changed all read servers through this
//! table, each rendering the [`Value`]s its own way.
//!
//! The spec's global variables (`messages`, the histories, the counters) are
//! not a server's; the checker keeps them in its own state.

use raft_model::{Config, Log, NodeId, PendingRead, Role, Server, Snapshot};

/// A spec variable's value at one server, as the spec sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a, C: Clone, S> {
    /// A natural: a term, an index, a round.
    Nat(u64),
    /// A server or `Nil` (`None`).
    Server(Option<NodeId>),
    /// `Follower`, `Candidate`, `Leader` or `PreCandidate`.
    Role(Role),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// A set of servers, in id order.
    Servers(Vec<NodeId>),
    /// A function from servers to naturals, in id order.
    Function(Vec<(NodeId, u64)>),
    /// A sequence of entries: the log after the snapshot (`log.entries`).
    Log(&'a Log<C>),
    /// The latest snapshot: `[lastIndex, lastTerm, config, data]`.
    Snapshot(&'a Snapshot<S>),
    /// A sequence of `[id, seq]` reads.
    Reads(Vec<PendingRead>),
    /// A configuration: `[members, old]` (`old` = `{}` unless joint).
    Config(&'a Config),
}

/// One per-server spec variable.
pub struct Variable<C: Clone, S> {
    /// Its name in spec/Raft.tla.
    pub name: &'static str,
    /// Kept across `Restart` (the spec's `persistentVars`).
    pub persistent: bool,
    /// Its value at a server.
    pub read: for<'a> fn(&'a Server<C, S>) -> Value<'a, C, S>,
}

impl<C: Clone, S> Variable<C, S> {
    pub fn of<'a>(&self, server: &'a Server<C, S>) -> Value<'a, C, S> {
        (self.read)(server)
    }
}

/// How many per-server variables the spec has.
pub const COUNT: usize = 20;

/// Every per-server variable of spec/Raft.tla, in the order of its
/// `VARIABLES` declarations: persistent first, then volatile.
pub fn per_server<C: Clone, S>() -> [Variable<C, S>; COUNT] {
    fn var<C: Clone, S>(
        name: &'static str,
        persistent: bool,
        read: for<'a> fn(&'a Server<C, S>) -> Value<'a, C, S>,
    ) -> Variable<C, S> {
        Variable {
            name,
            persistent,
            read,
        }
    }
    fn function<'a, V: Copy + Into<u64> + 'a>(
        map: impl IntoIterator<Item = (&'a NodeId, &'a V)>,
    ) -> Vec<(NodeId, u64)> {
        map.into_iter().map(|(k, v)| (*k, (*v).into())).collect()
    }
    [
        var("currentTerm", true, |s| Value::Nat(s.current_term())),
        var("votedFor", true, |s| Value::Server(s.voted_for())),
        var("log", true, |s| Value::Log(s.log())),
        var("snapshotIndex", true, |s| {
            Value::Nat(s.log().snapshot_index)
        }),
        var("snapshotTerm", true, |s| Value::Nat(s.log().snapshot_term)),
        var("snapshot", true, |s| Value::Snapshot(s.snapshot())),
        var("config", true, |s| Value::Config(s.config())),
        var("role", false, |s| Value::Role(s.role())),
        var("commitIndex", false, |s| Value::Nat(s.commit_index())),
        var("leaderId", false, |s| Value::Server(s.leader_id())),
        var("votesGranted", false, |s| {
            Value::Servers(s.votes_granted().iter().copied().collect())
        }),
        var("nextIndex", false, |s| {
            Value::Function(function(s.next_index()))
        }),
        var("matchIndex", false, |s| {
            Value::Function(function(s.match_index()))
        }),
        var("readSeq", false, |s| Value::Nat(s.read_seq())),
        var("readAcks", false, |s| {
            Value::Function(function(s.read_acks()))
        }),
        var("pendingReads", false, |s| {
            Value::Reads(s.pending_reads().iter().cloned().collect())
        }),
        var("recentActive", false, |s| {
            Value::Servers(s.recent_active().iter().copied().collect())
        }),
        var("restartLease", false, |s| Value::Bool(s.restart_lease())),
        var("leadTransferee", false, |s| {
            Value::Server(s.lead_transferee())
        }),
        var("durableIndex", false, |s| Value::Nat(s.durable_index())),
    ]
}

/// The variable named `name`.
pub fn named<C: Clone, S>(name: &str) -> Option<Variable<C, S>> {
    per_server().into_iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_persistent_ones_come_first() {
        let vars = per_server::<u8, ()>();
        let mut names: Vec<&str> = vars.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COUNT);
        let first_volatile = vars.iter().position(|v| !v.persistent).unwrap();
        assert!(vars[first_volatile..].iter().all(|v| !v.persistent));
    }

    #[test]
    fn a_fresh_server_reads_as_the_spec_init() {
        let server: Server<u8, ()> = Server::new(1, Config::new([1, 2, 3]), ());
        let read = |name| (named::<u8, ()>(name).unwrap().read)(&server);
        assert_eq!(read("currentTerm"), Value::Nat(0));
        assert_eq!(read("votedFor"), Value::Server(None));
        assert_eq!(read("role"), Value::Role(Role::Follower));
        assert_eq!(read("config"), Value::Config(&Config::new([1, 2, 3])));
        assert_eq!(read("nextIndex"), Value::Function(Vec::new()));
    }
}
