//! Log compaction and snapshot transfer (paper §7): CompactLog,
//! HandleInstallSnapshotRequest, HandleInstallSnapshotResponse.

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::server::{Role, Server};
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::types::Index;

use crate::refused::CompactError;

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `CompactLog`: the state machine has applied entries up to `index`
    /// and hands over its image `data`; the snapshot replaces that log prefix.
    pub fn compact_log(&mut self, index: Index, data: S) -> Result<Effects<C, S>, CompactError> {
        if index > self.commit_index {
            return Err(CompactError::NotCommitted {
                index,
                commit_index: self.commit_index,
            });
        }
        if index <= self.log.snapshot_index {
            return Err(CompactError::AlreadyCompacted {
                index,
                snapshot_index: self.log.snapshot_index,
            });
        }
        let Some(term) = self.log.term_at(index) else {
            // snapshot_index < index <= commit_index <= last_index holds after
            // every step (Server::step asserts it) unless a seeded bug broke
            // it on purpose; then the checker's properties report it.
            assert!(
                self.bugs.any(),
                "entry {index} is committed but not in the log"
            );
            return Err(CompactError::AlreadyCompacted {
                index,
                snapshot_index: self.log.snapshot_index,
            });
        };
        // The configuration in force at `index`: a later one may still be
        // in the log, and stays there.
        let (config, _) = self.config_at(index);
        self.snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: index,
                last_term: term,
                config,
            },
            data,
        };
        self.log.compact_to(index, term);
        // The snapshot is durable before anything else happens: it covers
        // entries a leader with parallel writes may not have written yet.
        self.durable_index = self.durable_index.max(index);
        let mut effects = Effects::default();
        effects.persist.snapshot = true;
        Ok(effects)
    }

    /// Spec `HandleInstallSnapshotRequest`: a follower behind the leader's
    /// compacted prefix adopts the snapshot. A log entry matching the
    /// snapshot's last entry keeps the log after it (paper §7); otherwise the
    /// whole log is discarded. A snapshot the follower already covers with
    /// committed entries changes nothing.
    pub fn handle_install_snapshot_request(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::InstallSnapshotRequest { ref snapshot } = message.body else {
            return effects;
        };
        self.update_term(message.term, &mut effects);
        if message.term < self.current_term {
            let body = Body::InstallSnapshotResponse { match_index: 0 };
            effects.messages.push(self.reply(message.from, body));
            return effects;
        }
        self.become_follower(&mut effects);
        self.leader_id = Some(message.from);
        effects.reset_election_timer = true;

        let meta = &snapshot.meta;
        let stale = meta.last_index <= self.commit_index;
        if !stale || self.bugs.has(Bug::InstallStaleSnapshot) {
            let suffix_matches = self.log.term_at(meta.last_index) == Some(meta.last_term)
                || (self.bugs.has(Bug::SnapshotKeepsConflictingSuffix)
                    && self.log.term_at(meta.last_index).is_some());
            if suffix_matches && !stale {
                self.log.compact_to(meta.last_index, meta.last_term);
            } else {
                self.log.entries = Default::default();
                self.log.snapshot_index = meta.last_index;
                self.log.snapshot_term = meta.last_term;
                // The stored entries past the snapshot conflict with it and
                // must go too: say so, or a driver that only drops the
                // covered prefix would recover them after a crash.
                effects
                    .persist
                    .log_written_from(meta.last_index.saturating_add(1));
            }
            self.snapshot = snapshot.clone();
            // The configuration is again the log's: the snapshot's, or a
            // later one in the suffix kept.
            if !self.bugs.has(Bug::InstallSnapshotIgnoresConfig) {
                self.refresh_config();
            }
            // No entries to deliver: the snapshot's image replaces them.
            self.commit_index = meta.last_index;
            effects.commit_index = Some(meta.last_index);
            effects.persist.snapshot = true;
            effects.snapshot_installed = true;
            // A leader's entries still being written when it stepped down
            // (above) joined this write; the snapshot now covers those at or
            // below its index, and only the rest is written.
            if let Some(from) = effects.persist.log_from
                && from <= meta.last_index
            {
                effects.persist.log_from = Some(meta.last_index + 1);
            }
            // A follower: all it holds is in this step's persist.
            self.durable_index = self.log.last_index();
        }
        let body = Body::InstallSnapshotResponse {
            match_index: meta.last_index,
        };
        effects.messages.push(self.reply(message.from, body));
        effects
    }

    /// Spec `HandleInstallSnapshotResponse`: the peer now holds everything up
    /// to the snapshot's last index; continue from there.
    pub fn handle_install_snapshot_response(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::InstallSnapshotResponse { match_index } = message.body else {
            return effects;
        };
        self.update_term(message.term, &mut effects);
        if message.term != self.current_term
            || self.role != Role::Leader
            || match_index > self.log.last_index()
        {
            return effects;
        }
        let peer = message.from;
        let Some(&matched) = self.match_index.get(&peer) else {
            return effects;
        };
        if match_index > matched {
            self.match_index.insert(peer, match_index);
            self.advance_commit_index(&mut effects);
        }
        if self
            .next_index
            .get(&peer)
            .is_some_and(|next| *next <= match_index)
        {
            self.next_index.insert(peer, match_index + 1);
        }
        if self
            .next_index
            .get(&peer)
            .is_some_and(|next| *next <= self.log.last_index())
        {
            self.replicate_to(peer, &mut effects);
        }
        self.send_timeout_now_if_caught_up(peer, &mut effects);
        effects
    }
}
