//! The paper's safety properties (Figure 3), plus two contracts of this core,
//! as checks run after every step of a cluster.
//!
//! The observer keeps the history it needs (every leader of every term, every
//! committed entry, each leader's log when last seen) so that properties
//! "over the whole history" are checked, not just the current state.

use std::collections::BTreeMap;
use std::fmt;

use raft_model::{Entry, Index, Log, NodeId, Term};

use super::{Cmd, TestServer};

/// A property the observer can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// At most one leader per term, over the whole history.
    ElectionSafety,
    /// A leader's log only grows while it stays leader in the same term.
    LeaderAppendOnly,
    /// Two logs holding an entry of the same index and term agree on every
    /// entry up to that index.
    LogMatching,
    /// Committed prefixes never diverge: every entry any server has committed
    /// at an index, at any time, is the entry every server commits there.
    StateMachineSafety,
    /// A server's commit index never goes back except by a restart (the
    /// state machine never un-applies entries).
    CommitMonotonic,
    /// After each transition, performing its `persist` effects as documented
    /// leaves the disk holding exactly the server's persistent state, and a
    /// server recovered from that disk is the one `restart` produces.
    Durability,
    /// A driver that applies only what effects hand it — a snapshot's
    /// image when `snapshot_installed`, then the `committed` entries — has
    /// applied exactly the server's committed prefix, each entry once, in
    /// order (etcd's `Ready.CommittedEntries` contract).
    Applied,
}

impl Property {
    pub const ALL: [Property; 7] = [
        Property::ElectionSafety,
        Property::LeaderAppendOnly,
        Property::LogMatching,
        Property::StateMachineSafety,
        Property::CommitMonotonic,
        Property::Durability,
        Property::Applied,
    ];
}

/// A property found false, with what showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: Property,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} violated: {}", self.property, self.detail)
    }
}

fn violation(property: Property, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

/// Entry `index` of a server's whole history: from its snapshot image (the
/// committed entries it replaced) at or below the snapshot, else from its log.
pub fn entry_at(server: &TestServer, index: Index) -> Option<&Entry<Cmd>> {
    if index == 0 {
        None
    } else if index <= server.log().snapshot_index {
        server.snapshot().data.get(usize::try_from(index - 1).ok()?)
    } else {
        server.log().entry(index)
    }
}

/// What the observer remembers of the history.
#[derive(Clone, Debug, Default)]
pub struct Observer {
    checks: Vec<Property>,
    /// The leader seen in each term.
    pub leaders: BTreeMap<Term, NodeId>,
    /// Every committed entry, with the first server seen committing it.
    pub committed: BTreeMap<Index, (Entry<Cmd>, NodeId)>,
    /// Each current leader's log when last seen, with its term.
    leader_logs: BTreeMap<NodeId, (Term, Log<Cmd>)>,
    /// Each server's commit index when last seen.
    commit_seen: BTreeMap<NodeId, Index>,
}

impl Observer {
    pub fn new(checks: &[Property]) -> Self {
        Observer {
            checks: checks.to_vec(),
            ..Observer::default()
        }
    }

    pub fn checks(&self, property: Property) -> bool {
        self.checks.contains(&property)
    }

    /// Records and checks the step `servers[changed]` just took (a restart
    /// when `restarted`). Only that server changed, so only it is examined
    /// (against the history and against the other servers).
    pub fn observe(
        &mut self,
        servers: &[TestServer],
        changed: usize,
        restarted: bool,
    ) -> Result<(), Violation> {
        let server = &servers[changed];
        self.election_safety(server)?;
        self.leader_append_only(server)?;
        self.state_machine_safety(server)?;
        self.commit_monotonic(server, restarted)?;
        if self.checks(Property::LogMatching) {
            for (other_index, other) in servers.iter().enumerate() {
                if other_index != changed {
                    log_matching(server, other)?;
                }
            }
        }
        Ok(())
    }

    fn election_safety(&mut self, server: &TestServer) -> Result<(), Violation> {
        if !server.is_leader() {
            return Ok(());
        }
        let leader = *self
            .leaders
            .entry(server.current_term())
            .or_insert(server.id());
        if leader != server.id() && self.checks(Property::ElectionSafety) {
            return violation(
                Property::ElectionSafety,
                format!(
                    "servers {leader} and {} were both leader in term {}",
                    server.id(),
                    server.current_term()
                ),
            );
        }
        Ok(())
    }

    fn leader_append_only(&mut self, server: &TestServer) -> Result<(), Violation> {
        if !server.is_leader() {
            self.leader_logs.remove(&server.id());
            return Ok(());
        }
        let previous = self
            .leader_logs
            .insert(server.id(), (server.current_term(), server.log().clone()));
        let Some((term, old)) = previous else {
            return Ok(());
        };
        if term != server.current_term() || !self.checks(Property::LeaderAppendOnly) {
            return Ok(());
        }
        let new = &server.log();
        if new.last_index() < old.last_index() {
            return violation(
                Property::LeaderAppendOnly,
                format!(
                    "leader {} of term {term}: log shrank from {} to {} entries",
                    server.id(),
                    old.last_index(),
                    new.last_index()
                ),
            );
        }
        // Entries folded into a snapshot since are committed and compared by
        // StateMachineSafety; every entry still held must be unchanged.
        let from = old.snapshot_index.max(new.snapshot_index) + 1;
        for index in from..=old.last_index() {
            if old.entry(index) != new.entry(index) {
                return violation(
                    Property::LeaderAppendOnly,
                    format!(
                        "leader {} of term {term}: entry {index} changed from {:?} to {:?}",
                        server.id(),
                        old.entry(index),
                        new.entry(index)
                    ),
                );
            }
        }
        Ok(())
    }

    fn state_machine_safety(&mut self, server: &TestServer) -> Result<(), Violation> {
        let check = self.checks(Property::StateMachineSafety);
        for index in 1..=server.commit_index() {
            let Some(entry) = entry_at(server, index) else {
                if !check {
                    break;
                }
                return violation(
                    Property::StateMachineSafety,
                    format!(
                        "server {} has commit index {} but no entry {index}",
                        server.id(),
                        server.commit_index()
                    ),
                );
            };
            let (first, first_server) = self
                .committed
                .entry(index)
                .or_insert_with(|| (entry.clone(), server.id()));
            if first != entry && check {
                return violation(
                    Property::StateMachineSafety,
                    format!(
                        "index {index}: server {first_server} committed {first:?}, server {} committed {entry:?}",
                        server.id()
                    ),
                );
            }
        }
        Ok(())
    }

    fn commit_monotonic(&mut self, server: &TestServer, restarted: bool) -> Result<(), Violation> {
        let before = self
            .commit_seen
            .insert(server.id(), server.commit_index())
            .unwrap_or(0);
        if !restarted && server.commit_index() < before && self.checks(Property::CommitMonotonic) {
            return violation(
                Property::CommitMonotonic,
                format!(
                    "server {}: commit index went back from {before} to {}",
                    server.id(),
                    server.commit_index()
                ),
            );
        }
        Ok(())
    }
}

/// Log Matching between two servers' whole histories (snapshot images
/// included): find the highest index where both hold an entry of the same
/// term; every entry up to it must be identical.
pub fn log_matching(a: &TestServer, b: &TestServer) -> Result<(), Violation> {
    let common = a.log().last_index().min(b.log().last_index());
    let same_term = |index: Index| match (entry_at(a, index), entry_at(b, index)) {
        (Some(x), Some(y)) => x.term == y.term,
        _ => false,
    };
    let Some(highest) = (1..=common).rev().find(|&index| same_term(index)) else {
        return Ok(());
    };
    for index in 1..=highest {
        let (x, y) = (entry_at(a, index), entry_at(b, index));
        if x != y {
            return violation(
                Property::LogMatching,
                format!(
                    "servers {} and {} both hold an entry of term {} at index {highest} \
                     but differ at index {index}: {x:?} vs {y:?}",
                    a.id(),
                    b.id(),
                    entry_at(a, highest).map_or(0, |entry| entry.term)
                ),
            );
        }
    }
    Ok(())
}
