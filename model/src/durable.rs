//! What a driver has made durable for one server: the image its storage
//! holds, changed only by the [`Persist`] effects of the server's steps.
//!
//! A crash keeps exactly this. Drivers that model crashes (the checker, the
//! test harness) keep one per server, perform every step's `persist` on it
//! with [`Durable::apply`], and rebuild a crashed server with
//! [`Durable::recover`]: a transition that changes persistent state without
//! naming it in `persist` then really loses it at the next restart.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::effects::Persist;
use crate::log::Log;
use crate::server::Server;
use crate::snapshot::Snapshot;
use crate::types::{Index, NodeId, Term};

/// A server's durable state: the persistent fields [`Server::recover`] takes.
///
/// Invariant (asserted after every change): the log starts at the snapshot,
/// `log.snapshot_index == snapshot.meta.last_index` (and the same term).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Durable<C: Clone, S> {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    pub snapshot: Snapshot<S>,
    pub log: Log<C>,
}

/// A `persist` effect no storage can perform on the image it holds. The
/// correct core never asks for one; a seeded bug that skipped an earlier
/// write can (the node's storage refuses the same writes and stops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurableError {
    /// `log_from` neither continues nor overwrites the stored log: writing
    /// it would leave a gap (or rewrite entries the snapshot covers).
    LogGap {
        from: Index,
        snapshot_index: Index,
        last_index: Index,
    },
    /// The server does not hold entry `log_from` (compacted, or past its end
    /// plus one): it cannot have written entries from there.
    EntryNotHeld { from: Index },
    /// The new snapshot ends before the stored one, or at the same index
    /// with another term: a snapshot never goes backwards.
    SnapshotBackwards {
        stored: (Index, Term),
        new: (Index, Term),
    },
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::LogGap {
                from,
                snapshot_index,
                last_index,
            } => write!(
                f,
                "log_from {from} does not continue the stored log (snapshot {snapshot_index}, last {last_index})"
            ),
            DurableError::EntryNotHeld { from } => {
                write!(f, "log_from {from}: the server does not hold that entry")
            }
            DurableError::SnapshotBackwards { stored, new } => write!(
                f,
                "the snapshot at (index, term) {stored:?} would be replaced by {new:?}"
            ),
        }
    }
}

impl std::error::Error for DurableError {}

impl<C: Clone, S: Clone> Durable<C, S> {
    /// The image a driver that performed every write the core asked for
    /// holds: the server's persistent state, its log up to its durable index
    /// (a leader's entries past it are still being written in parallel,
    /// [`crate::Effects::parallel_log_from`]; for every other server, the
    /// whole log).
    pub fn of(server: &Server<C, S>) -> Self {
        let mut log = server.log().clone();
        if server.durable_index() < log.last_index() {
            log.truncate_from(server.durable_index() + 1);
        }
        let durable = Durable {
            current_term: server.current_term(),
            voted_for: server.voted_for(),
            snapshot: server.snapshot().clone(),
            log,
        };
        durable.assert_log_starts_at_snapshot();
        durable
    }

    /// Does this image hold exactly what [`Durable::of`] says `server`'s
    /// storage holds? (What `*self == Durable::of(server)` says, without
    /// building the image in the common case of a whole log durable.)
    pub fn holds(&self, server: &Server<C, S>) -> bool
    where
        C: PartialEq,
        S: PartialEq,
    {
        if server.durable_index() < server.log().last_index() {
            return *self == Durable::of(server);
        }
        (self.current_term, self.voted_for, &self.log, &self.snapshot) == persistent(server)
    }

    /// Would a correct driver's storage hold the same for two servers
    /// (`Durable::of(a) == Durable::of(b)`)? Cheaply, for the common case
    /// of the same persistent state and durable index: a driver that checks
    /// every step for an unnamed write asks it of most steps.
    pub fn same_durable_state(a: &Server<C, S>, b: &Server<C, S>) -> bool
    where
        C: PartialEq,
        S: PartialEq,
    {
        if a.durable_index() != b.durable_index() {
            return false;
        }
        persistent(a) == persistent(b)
            || (a.durable_index() < a.log().last_index() && Durable::of(a) == Durable::of(b))
    }

    /// A leader's parallel write completed: the storage now also holds the
    /// server's entries after its stored log, up to `index` (the write the
    /// driver started for [`crate::Effects::parallel_log_from`], which
    /// [`crate::Step::LogPersisted`] reports). Entries the image already
    /// holds are not written again.
    pub fn complete_parallel_write(
        &mut self,
        server: &Server<C, S>,
        index: Index,
    ) -> Result<(), DurableError> {
        let from = self.log.last_index() + 1;
        if index < from {
            return Ok(());
        }
        let held = server.log();
        if from <= held.snapshot_index || index > held.last_index() {
            return Err(DurableError::EntryNotHeld { from });
        }
        self.log
            .entries
            .append(held.entries_from(from, (index + 1 - from) as usize));
        debug_assert_eq!(self.log.last_index(), index);
        self.assert_log_starts_at_snapshot();
        Ok(())
    }

    /// Performs one step's `persist` effect exactly as the docs of
    /// [`Persist`] tell a driver to, copying from the server's state after
    /// the step (`server`) only what the effect names: the term and vote for
    /// `hard_state`; the snapshot, dropping the log prefix it covers, for
    /// `snapshot`; entries `log_from..=last` for `log_from`, dropping
    /// whatever was stored after the server's new last index.
    ///
    /// Atomic: a write no storage can perform is refused whole and leaves
    /// the image as it was (as the node's storage refuses a whole batch).
    pub fn apply(&mut self, server: &Server<C, S>, persist: &Persist) -> Result<(), DurableError>
    where
        C: PartialEq,
    {
        // Check everything first, so that a refused write changes nothing.
        let (mut snapshot_index, mut last_index) = (self.log.snapshot_index, self.log.last_index());
        if persist.snapshot {
            let meta = &server.snapshot().meta;
            let stored = (self.log.snapshot_index, self.log.snapshot_term);
            let new = (meta.last_index, meta.last_term);
            if new.0 < stored.0 || (new.0 == stored.0 && new != stored) {
                return Err(DurableError::SnapshotBackwards { stored, new });
            }
            snapshot_index = new.0;
            last_index = last_index.max(new.0);
        }
        if let Some(from) = persist.log_from {
            if from <= snapshot_index || from > last_index + 1 {
                return Err(DurableError::LogGap {
                    from,
                    snapshot_index,
                    last_index,
                });
            }
            // The entries `from..=last` must be the server's own; `from` one
            // past its end writes none (a truncation only).
            let held = server.log();
            if from <= held.snapshot_index || from > held.last_index() + 1 {
                return Err(DurableError::EntryNotHeld { from });
            }
        }
        if persist.hard_state {
            self.current_term = server.current_term();
            self.voted_for = server.voted_for();
        }
        if persist.snapshot {
            // "the log prefix up to the snapshot's last index may be
            // discarded": the entries after it stay, as the docs say.
            self.snapshot = server.snapshot().clone();
            let meta = &self.snapshot.meta;
            self.log.compact_to(meta.last_index, meta.last_term);
        }
        if let Some(from) = persist.log_from {
            // "Log entries from this index on were written; anything the
            // driver stored past the log's new last index is gone."
            self.log.truncate_from(from);
            let held = server.log();
            let kept = &self.log.entries;
            if self.log.snapshot_index == held.snapshot_index
                && kept.len() <= held.entries.len()
                && kept.iter().zip(held.entries.iter()).all(|(a, b)| a == b)
            {
                // What the image keeps is the start of the server's log, so
                // with the entries written it is the server's log: shared,
                // not copied entry by entry (the model checker applies a
                // write at nearly every step).
                self.log.entries = held.entries.clone();
            } else {
                self.log.entries.append(held.entries_from(from, usize::MAX));
            }
            debug_assert_eq!(self.log.last_index(), server.log().last_index());
        }
        self.assert_log_starts_at_snapshot();
        Ok(())
    }

    /// The server rebuilt from this image after `crashed` crashed
    /// ([`Server::recover`]): what the node loads from its data directory.
    /// Only the deployment's constants are taken from `crashed` — its id,
    /// its cap on entries per AppendEntries request and its seeded bugs —
    /// never any of its state. The driver then takes `Step::Restart`.
    pub fn recover(&self, crashed: &Server<C, S>) -> Server<C, S> {
        self.assert_log_starts_at_snapshot();
        let mut server = Server::recover(
            crashed.id(),
            self.current_term,
            self.voted_for,
            self.snapshot.clone(),
            self.log.clone(),
        )
        .with_max_append_entries(crashed.max_append_entries())
        .with_check_quorum(crashed.check_quorum_enabled())
        .with_pre_vote(crashed.pre_vote_enabled())
        .with_parallel_write(crashed.parallel_write_enabled())
        .with_max_inflight(crashed.max_inflight());
        server.bugs = crashed.bugs;
        server
    }

    /// A copy with every server id passed through `f` (the checker's
    /// symmetry reduction), as [`Server::rename_ids`] does to the same fields.
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Self
    where
        S: crate::types::RenameIds,
    {
        let mut renamed = self.clone();
        renamed.log = self.log.rename_ids(f);
        renamed.snapshot.data = self.snapshot.data.rename_ids(f);
        renamed.voted_for = self.voted_for.map(f);
        renamed.snapshot.meta.config = self.snapshot.meta.config.rename_ids(f);
        renamed
    }

    /// `Server::recover` needs the log to start right after the snapshot; a
    /// storage whose log and snapshot disagree would lose or invent entries.
    fn assert_log_starts_at_snapshot(&self) {
        assert_eq!(
            (self.log.snapshot_index, self.log.snapshot_term),
            (self.snapshot.meta.last_index, self.snapshot.meta.last_term),
            "the durable log does not start at the durable snapshot"
        );
    }
}

/// A server's persistent fields, in the order of [`Durable`]'s comparisons
/// (cheapest first).
#[allow(clippy::type_complexity)]
fn persistent<C: Clone, S>(server: &Server<C, S>) -> (Term, Option<NodeId>, &Log<C>, &Snapshot<S>) {
    (
        server.current_term(),
        server.voted_for(),
        server.log(),
        server.snapshot(),
    )
}

#[cfg(test)]
mod tests {
    use imbl::Vector;

    use super::*;
    use crate::types::{Config, Entry, Payload};

    type S = Server<u8, Vector<Entry<u8>>>;

    fn fresh(id: NodeId) -> S {
        Server::new(id, Config::new(1..=3), Vector::new())
    }

    #[test]
    fn a_step_that_names_its_writes_keeps_the_image_equal_to_the_server() {
        let mut server = fresh(1);
        let before = server.clone();
        let mut image = Durable::of(&server);
        let effects = server.timeout();
        assert!(!Durable::same_durable_state(&before, &server));
        assert!(Durable::same_durable_state(&server, &server.clone()));
        image.apply(&server, &effects.persist).expect("well formed");
        assert!(image.holds(&server));
        assert_eq!(image, Durable::of(&server));
    }

    #[test]
    fn a_leader_s_parallel_write_is_durable_only_once_completed() {
        // A cluster of one: the new leader's no-op commits once durable.
        let mut server: S =
            Server::new(1, Config::new(1..=1), Vector::new()).with_parallel_write(true);
        let effects = server.timeout();
        assert!(server.is_leader());
        assert!(effects.persist.hard_state && effects.persist.log_from.is_none());
        assert_eq!(
            effects.parallel_log_from,
            Some(1),
            "the no-op is written in parallel"
        );
        assert_eq!(server.commit_index(), 0, "not counted before it is durable");
        let mut image = Durable::of(&server);
        assert_eq!(
            image.log.last_index(),
            0,
            "its storage does not hold the no-op yet"
        );
        let recovered = image.recover(&server);
        assert_eq!(recovered.log().last_index(), 0, "a crash now loses it");
        image.complete_parallel_write(&server, 1).expect("held");
        assert_eq!(image.log.last_index(), 1);
        let persisted = server
            .step::<crate::Message<u8, Vector<Entry<u8>>>>(crate::Step::LogPersisted {
                index: 1,
                term: 1,
            })
            .expect("enabled");
        assert_eq!(persisted.commit_index, Some(1), "durable, it commits alone");
        assert!(image.holds(&server));
        assert_eq!(image, Durable::of(&server));
    }

    #[test]
    fn what_persist_does_not_name_is_not_copied() {
        let mut server = fresh(1);
        let mut image = Durable::of(&server);
        let effects = server.timeout();
        let mut persist = effects.persist.clone();
        persist.hard_state = false;
        image.apply(&server, &persist).expect("well formed");
        assert_eq!((image.current_term, image.voted_for), (0, None));
        assert!(!image.holds(&server));
        let recovered = image.recover(&server);
        assert_eq!(recovered.current_term(), 0, "the term was never written");
        assert_eq!(recovered.id(), 1);
    }

    #[test]
    fn a_write_past_the_stored_end_is_refused_and_changes_nothing() {
        let mut server = fresh(1);
        let image = Durable::of(&server);
        server.log.append(Entry {
            term: 1,
            payload: Payload::Noop,
        });
        server.log.append(Entry {
            term: 1,
            payload: Payload::Noop,
        });
        let mut written = image.clone();
        let persist = Persist {
            log_from: Some(2),
            ..Persist::default()
        };
        assert_eq!(
            written.apply(&server, &persist),
            Err(DurableError::LogGap {
                from: 2,
                snapshot_index: 0,
                last_index: 0
            })
        );
        assert_eq!(written, image);
    }

    #[test]
    fn recovery_keeps_the_deployment_constants() {
        let mut server = fresh(2)
            .with_max_append_entries(7)
            .with_check_quorum(true)
            .with_pre_vote(true);
        server.current_term = 3;
        let mut recovered = Durable::of(&server).recover(&server);
        // The one difference: a recovered server holds a restart lease, a
        // fresh one none.
        assert!(recovered.restart_lease && !server.restart_lease);
        recovered.restart_lease = false;
        assert_eq!(recovered, server);
    }
}
