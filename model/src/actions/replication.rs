//! Log replication (paper §5.3, §5.4.2): ClientRequest, SendAppendEntries,
//! HandleAppendEntriesRequest, HandleAppendEntriesResponse, and the leader's
//! commit rule.

use crate::action::Action;
use crate::bugs::Bug;
use crate::effects::Effects;
use crate::message::{Body, Message};
use crate::refused::{NotLeader, Refused};
use crate::server::{Role, Server};
use crate::types::{Entry, Index, NodeId, Payload, Term};

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `ClientRequest`: a leader appends a client command to its log and
    /// returns the entry's index. Replication happens on the next
    /// `send_append_entries`, so a driver can batch many requests into one
    /// round. Anyone else refuses, naming the leader it knows.
    ///
    /// A leader handing leadership over refuses too (its log must stop
    /// growing for the target to catch up): [`crate::Step::ClientRequest`]
    /// says so with `Refused::Transferring`; here it names itself.
    pub fn client_request(&mut self, command: C) -> Result<(Index, Effects<C, S>), NotLeader> {
        let transferring =
            self.lead_transferee.is_some() && !self.bugs.has(Bug::TransferAcceptsProposals);
        if self.role != Role::Leader || transferring {
            return Err(NotLeader {
                leader_hint: self.leader_id,
            });
        }
        let mut effects = Effects::default();
        let index = self.leader_append(Payload::Command(command), &mut effects);
        effects.appended_at = Some(index);
        // A cluster of one commits by itself.
        self.advance_commit_index(&mut effects);
        Ok((index, effects))
    }

    /// The spec's `LeaderAppend`: a leader appends an entry of its term (a
    /// client command, its no-op, a configuration). Without parallel writes
    /// the entry joins the step's persist: durable before the step's
    /// messages leave, like every other write. With them (dissertation
    /// §10.2.1) it need not be: the driver writes it while the requests
    /// carrying it are on their way (`Effects::parallel_log_from`) and says
    /// when it is durable (`Step::LogPersisted`), and until then the leader
    /// does not count itself as holding it (`commit_rule`). That is safe
    /// because nothing the leader sends promises that it holds the entry:
    /// a commit rests on the acknowledgements of followers, each durable
    /// before it was sent, and on the leader's own copy only once it is
    /// durable. A crash may lose the entry although followers hold it; it
    /// was then never committed by counting the leader.
    pub(crate) fn leader_append(
        &mut self,
        payload: Payload<C>,
        effects: &mut Effects<C, S>,
    ) -> Index {
        debug_assert!(self.is_leader(), "only a leader appends entries of its own");
        let index = self.log.append(Entry {
            term: self.current_term,
            payload,
        });
        if self.parallel_write {
            effects.log_written_in_parallel_from(index);
        } else {
            effects.persist.log_written_from(index);
            self.durable_index = index;
        }
        index
    }

    /// Spec `LogPersisted`: the driver's write of this server's own log up
    /// to entry `index`, of term `term`, is durable. Only a leader with
    /// parallel writes has entries not yet known durable; it may now count
    /// itself as holding them, and commit what that completes a quorum for.
    ///
    /// Refused (`NotEnabled`) when it tells nothing new: entries already
    /// known durable (a step-down or a snapshot made them so first), or an
    /// entry the log no longer holds as written (the server stepped down,
    /// made its log durable, and a later leader's entries replaced it: the
    /// term differs). `(index, term)` names one entry and its whole prefix
    /// (Log Matching: one leader per term, one entry per index in it), and a
    /// leader's own entries of its term are those it wrote itself, so a
    /// report that passes both checks is about this log.
    pub fn log_persisted(&mut self, index: Index, term: Term) -> Result<Effects<C, S>, Refused> {
        if index <= self.durable_index || self.log.term_at(index) != Some(term) {
            return Err(Refused::NotEnabled(Action::LogPersisted));
        }
        debug_assert!(
            self.is_leader() && self.parallel_write,
            "only a leader with parallel writes has entries not known durable"
        );
        let mut effects = Effects::default();
        self.durable_index = index;
        self.advance_commit_index(&mut effects);
        Ok(effects)
    }

    /// Spec `SendAppendEntries`: the heartbeat is due (or new entries wait),
    /// so a leader sends every peer the entries it lacks — or its snapshot,
    /// when they have been compacted away. Others ignore it.
    pub fn send_append_entries(&mut self) -> Effects<C, S> {
        let mut effects = Effects::default();
        if self.role != Role::Leader {
            return effects;
        }
        let replicas: Vec<_> = self.config.replicas(self.id).collect();
        for peer in replicas {
            self.replicate_to(peer, &mut effects);
        }
        effects
    }

    /// The spec's `ReplicateTo`: send `peer` its request now
    /// ([`Self::append_entries_for`]) and, with pipelined replication
    /// (`max_inflight` > 0), move its `next_index` past the entries the
    /// request carries: the next request carries the entries after them
    /// instead of the same ones again, while these are still on their way.
    ///
    /// That is only a guess about what the peer will hold, and safe as
    /// such: `next_index` only says what to send next (the peer's
    /// consistency check guards every entry), and `match_index`, all the
    /// commit rule reads, still moves on a success alone. A request lost,
    /// or overtaken by the next one, leaves a gap the peer's consistency
    /// check refuses: its rejection brings `next_index` back to its last
    /// entry + 1 (`handle_append_entries_response`), and a heartbeat sent
    /// after the last request was lost is refused the same way, so
    /// replication resumes.
    pub(crate) fn replicate_to(&mut self, peer: NodeId, effects: &mut Effects<C, S>) {
        let message = self.append_entries_for(peer);
        if self.max_inflight > 0
            && let Body::AppendEntriesRequest {
                prev_log_index,
                ref entries,
                ..
            } = message.body
            && !entries.is_empty()
            && let Some(next) = self.next_index.get_mut(&peer)
        {
            debug_assert_eq!(*next, prev_log_index + 1, "a request starts at next_index");
            *next = prev_log_index + entries.len() as Index + 1;
        }
        effects.messages.push(message);
    }

    /// The spec's `SendLimit`: how many entries the request to `peer` may
    /// carry now. Without pipelining, `max_append_entries`. With it, no
    /// more than leave `max_inflight * max_append_entries` entries sent and
    /// not known held beyond the peer's `match_index` (etcd's Inflights,
    /// counted in entries: `next_index - 1 - match_index` needs no state of
    /// its own). When the window is full the request carries none: a
    /// heartbeat, whose answer still moves `match_index` (and, if the peer
    /// lacks `next_index - 1`, brings `next_index` back). A new leader's
    /// `next_index` starts past its whole log while `match_index` is 0, so
    /// a peer whose match is unknown is probed with what fits (the window
    /// counts the unknown stretch as in flight) until a success shows where
    /// it stands: etcd's StateProbe, without a state of its own.
    pub(crate) fn send_limit(&self, peer: NodeId) -> usize {
        if self.max_inflight == 0 {
            return self.max_append_entries;
        }
        let (Some(&next), Some(&matched)) =
            (self.next_index.get(&peer), self.match_index.get(&peer))
        else {
            return self.max_append_entries;
        };
        debug_assert!(
            next > matched,
            "next_index {next} at or below match_index {matched}"
        );
        let in_flight = next.saturating_sub(matched + 1);
        let window = (self.max_inflight as Index).saturating_mul(self.max_append_entries as Index);
        let room = window.saturating_sub(in_flight);
        usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(self.max_append_entries)
    }

    /// The request a leader sends `peer` now: entries from its `next_index`
    /// (as many as [`Self::send_limit`] allows), or the snapshot if that
    /// entry is compacted.
    pub(crate) fn append_entries_for(&self, peer: NodeId) -> Message<C, S> {
        let next = self
            .next_index
            .get(&peer)
            .copied()
            .unwrap_or(self.log.last_index() + 1);
        let prev_log_index = next.saturating_sub(1);
        match self.log.term_at(prev_log_index) {
            Some(prev_log_term) => self.reply(
                peer,
                Body::AppendEntriesRequest {
                    prev_log_index,
                    prev_log_term,
                    entries: self.log.entries_from(next, self.send_limit(peer)),
                    leader_commit: self.commit_index,
                    read_seq: self.read_seq,
                },
            ),
            None => self.reply(
                peer,
                Body::InstallSnapshotRequest {
                    snapshot: self.snapshot.clone(),
                },
            ),
        }
    }

    /// Spec `HandleAppendEntriesRequest`: reject a stale leader; otherwise
    /// recognise the leader, run the consistency check on `prev_log_index`,
    /// drop a conflicting suffix, append what is new and learn the commit
    /// index — never beyond the last entry this request proved to match.
    pub fn handle_append_entries_request(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::AppendEntriesRequest {
            prev_log_index,
            prev_log_term,
            ref entries,
            leader_commit,
            read_seq,
        } = message.body
        else {
            return effects;
        };
        self.update_term(message.term, &mut effects);
        let stale = message.term < self.current_term;
        if stale && !self.bugs.has(Bug::AcceptStaleAppend) {
            // The reply carries our newer term, so it must not echo the
            // request's read round: if its sender later leads that newer
            // term, it would take this old reply as confirming a read round
            // it opened after the reply was sent.
            let body = Body::AppendEntriesResponse {
                success: false,
                match_index: 0,
                conflict_term: 0,
                conflict_index: 0,
                read_seq: 0,
            };
            effects.messages.push(self.reply(message.from, body));
            return effects;
        }
        if !stale {
            // A candidate (or a follower of an unknown leader) of this term
            // learns who won.
            self.become_follower(&mut effects);
            self.leader_id = Some(message.from);
            effects.reset_election_timer = true;
        }

        // Entries at or below our snapshot are committed, hence already match
        // (Log Matching): skip them and check consistency at the snapshot.
        let mut prev_index = prev_log_index;
        let mut prev_term = prev_log_term;
        let mut entries = entries.clone();
        if prev_index < self.log.snapshot_index {
            let covered = self.log.snapshot_index - prev_index;
            if covered >= entries.len() as Index {
                let last = prev_index + entries.len() as Index;
                let body = Body::AppendEntriesResponse {
                    success: true,
                    match_index: last,
                    conflict_term: 0,
                    conflict_index: 0,
                    read_seq,
                };
                effects.messages.push(self.reply(message.from, body));
                return effects;
            }
            entries = entries.skip(covered as usize);
            prev_index = self.log.snapshot_index;
            prev_term = self.log.snapshot_term;
        }

        let consistent = if self.bugs.has(Bug::SkipPrevTermCheck) {
            self.log.term_at(prev_index).is_some()
        } else {
            self.log.term_at(prev_index) == Some(prev_term)
        };
        if !consistent {
            // Say which term conflicts and where our run of it begins, so
            // that the leader can skip the whole term (paper §5.3); or, if we
            // lack the entry, only our last index. `prev_index` is never
            // below our snapshot (moved up to it above), so the hint never
            // names a compacted index, whose term we do not know.
            let (conflict_term, conflict_index) = self.log.conflict_at(prev_index);
            if self.bugs.has(Bug::CommitToConflictIndex) && conflict_term > 0 {
                let proven = leader_commit.min(conflict_index);
                if proven > self.commit_index {
                    self.commit_to(proven, &mut effects);
                }
            }
            let body = Body::AppendEntriesResponse {
                success: false,
                match_index: self.log.last_index(),
                conflict_term,
                conflict_index,
                read_seq,
            };
            effects.messages.push(self.reply(message.from, body));
            return effects;
        }

        let mut index = prev_index;
        // The configuration is the log's latest: it changes when a
        // configuration entry arrives or a truncation takes one away.
        let mut config_changed = false;
        for (position, entry) in entries.iter().enumerate() {
            index += 1;
            config_changed |= entry.config().is_some();
            match self.log.term_at(index) {
                Some(term) if term == entry.term => {}
                Some(_) if position > 0 && self.bugs.has(Bug::BatchChecksFirstEntryOnly) => {}
                Some(_) if self.bugs.has(Bug::KeepConflictingSuffix) => {
                    let offset = (index - self.log.snapshot_index - 1) as usize;
                    self.log.entries.set(offset, entry.clone());
                    effects.persist.log_written_from(index);
                    config_changed = true;
                }
                Some(_) => {
                    // Losing a committed entry would break State Machine
                    // Safety: Log Matching says a committed entry never
                    // conflicts with the leader's (unless a bug is seeded).
                    assert!(
                        index > self.commit_index || self.bugs.any(),
                        "entry {index} conflicts with the leader's, but is committed (commit index {})",
                        self.commit_index
                    );
                    self.log.truncate_from(index);
                    self.log.append(entry.clone());
                    effects.persist.log_written_from(index);
                    config_changed = true;
                }
                None => {
                    self.log.append(entry.clone());
                    // The success reply acknowledges the entry: it must be
                    // durable first (the seeded bug forgets to say so).
                    if !self.bugs.has(Bug::OmitPersistLog) {
                        effects.persist.log_written_from(index);
                    }
                }
            }
        }
        let last_new = index;
        if config_changed {
            self.refresh_config();
        }
        // Every entry written is in this step's persist, durable before the
        // reply: a follower's acknowledgement is a promise.
        self.durable_index = self.log.last_index();

        let new_commit = if self.bugs.has(Bug::CommitBeyondLeader) {
            leader_commit.min(self.log.last_index())
        } else {
            leader_commit.min(last_new)
        };
        if new_commit > self.commit_index {
            self.commit_to(new_commit, &mut effects);
        }
        let body = Body::AppendEntriesResponse {
            success: true,
            match_index: last_new,
            conflict_term: 0,
            conflict_index: 0,
            read_seq,
        };
        effects.messages.push(self.reply(message.from, body));
        effects
    }

    /// Spec `HandleAppendEntriesResponse`: on success the leader records how
    /// far the peer matches and tries to advance its commit index; on
    /// failure it backs `next_index` off and retries at once. Either way, a
    /// peer that still lags is sent its next batch.
    pub fn handle_append_entries_response(&mut self, message: &Message<C, S>) -> Effects<C, S> {
        let mut effects = Effects::default();
        let Body::AppendEntriesResponse {
            success,
            match_index,
            conflict_term,
            conflict_index,
            read_seq,
        } = message.body
        else {
            return effects;
        };
        self.update_term(message.term, &mut effects);
        // A success of an older term says how far the peer matched that
        // term's leader, not us: it must not count.
        let stale_success = self.bugs.has(Bug::CountStaleAppendSuccess)
            && success
            && message.term < self.current_term;
        if (message.term != self.current_term && !stale_success) || self.role != Role::Leader {
            return effects;
        }
        let peer = message.from;
        let (Some(&next), Some(&matched)) =
            (self.next_index.get(&peer), self.match_index.get(&peer))
        else {
            return effects;
        };
        // Any answer of our term, success or not, acknowledges our leadership
        // as of the round it echoes. (The seeded bug above is about the
        // commit rule only: its stale answer confirms no read.)
        if !stale_success {
            self.acknowledge_read_round(peer, read_seq, &mut effects);
        }
        if success {
            // A peer cannot match entries we never had: ignore such a claim.
            if match_index > self.log.last_index() {
                return effects;
            }
            // Seeded: everything sent counted as held, though with
            // pipelining the requests after the one answered are still on
            // their way (or lost).
            let match_index = if self.bugs.has(Bug::MatchEverythingSent) {
                match_index.max(next - 1)
            } else {
                match_index
            };
            if match_index > matched {
                self.match_index.insert(peer, match_index);
                self.advance_commit_index(&mut effects);
                // The commit may have ended this leadership (a removed
                // leader steps down) or dropped the peer (C_new appended).
                if !self.next_index.contains_key(&peer) {
                    return effects;
                }
            }
            if match_index + 1 > next {
                self.next_index.insert(peer, match_index + 1);
            }
            // With pipelining, a full window waits for the answers still
            // to come (or the heartbeat) rather than sending an empty
            // request; without it the limit is never 0.
            if self.next_index[&peer] <= self.log.last_index() && self.send_limit(peer) > 0 {
                self.replicate_to(peer, &mut effects);
            }
            self.send_timeout_now_if_caught_up(peer, &mut effects);
        } else {
            // Step back one entry, or straight past the peer's short log, or
            // past the peer's whole run of the conflicting term, but never
            // below what the peer is known to match. `next_index` only says
            // what to send next: the peer's consistency check guards every
            // entry, so a back-off too far only resends entries, and one not
            // far enough only costs a round trip. Safety never rests on it.
            // With pipelining this is the fall-back: `next` may lie far past
            // what the peer holds (requests lost or overtaken), and its last
            // index + 1 (`match_index` here) takes it back to the gap,
            // emptying the window; the requests still in flight are then
            // sent again, and their answers, if they come, count as usual.
            let mut backed_off = next.saturating_sub(1).min(match_index.saturating_add(1));
            if conflict_term > 0 {
                backed_off =
                    backed_off.min(self.skip_conflicting_term(conflict_term, conflict_index, next));
            }
            let new_next = backed_off.max(matched + 1);
            if new_next < next {
                self.next_index.insert(peer, new_next);
                self.replicate_to(peer, &mut effects);
            }
        }
        effects
    }

    /// Where a rejection's conflict hint says to probe next (paper §5.3): an
    /// upper bound on the new `next_index`. The peer holds entries of
    /// `conflict_term` from `conflict_index` up to the request's
    /// `prev_log_index`, none below its snapshot.
    ///
    /// If we hold entries of that term, let `j` be the last of them at or
    /// below `next - 1`. Both logs took their entries of that term from its
    /// leader, whose run of them the peer's reaches back into, so the peer
    /// holds our entry `j` and matches us up to it (Log Matching): probe
    /// `j + 1`. (If the peer compacted `j`, the probe falls in its snapshot,
    /// which it checks at the snapshot's index: committed, so matching.)
    /// Otherwise none of the peer's entries from `conflict_index` on is ours:
    /// probe `conflict_index`. Our scan stops at our snapshot: a term lying
    /// wholly in our compacted prefix is not found, and the peer's index,
    /// perhaps inside our snapshot, is taken (the peer is then sent the
    /// snapshot, as for any compacted entry).
    ///
    /// Either way the result is only where to probe, never a claim that the
    /// peer matches: `match_index` moves on a success alone.
    pub(crate) fn skip_conflicting_term(
        &self,
        conflict_term: Term,
        conflict_index: Index,
        next: Index,
    ) -> Index {
        debug_assert!(conflict_term > 0, "no entry has term 0");
        match self
            .log
            .last_index_of_term(conflict_term, next.saturating_sub(1))
        {
            Some(last) => last + 1,
            None => conflict_index,
        }
    }

    /// The leader's commit rule (paper §5.3, §5.4.2): the highest index `N`
    /// stored on a quorum whose entry is of the current term. Entries of
    /// earlier terms are never committed by counting (Figure 8); they commit
    /// with the first current-term entry after them.
    ///
    /// "Stored on a quorum" holds for every index below one where it holds,
    /// so `N` is found among the servers' match indexes, highest first — the
    /// leader runs this on every AppendEntries response, and walking down
    /// from its last index would cost a quorum count per uncommitted entry.
    /// Terms never decrease along the log, so if the entry at `N` is of an
    /// older term, no lower entry qualifies either.
    ///
    /// Then the membership rules that follow a commit (dissertation ch. 4):
    /// a committed joint configuration is left by appending C_new (which a
    /// leader alone in C_new commits at once, hence the second pass), and a
    /// leader outside its committed configuration steps down.
    pub(crate) fn advance_commit_index(&mut self, effects: &mut Effects<C, S>) {
        self.commit_rule(effects);
        if self.leave_joint_config(effects) {
            self.commit_rule(effects);
        }
        self.step_down_if_removed(effects);
    }

    /// The spec's `CommitRule`: the commit rule itself.
    ///
    /// The leader counts itself as holding the entries up to its durable
    /// index only: with parallel writes, its latest entries may not be in
    /// its storage yet, and an entry a crash can take from it must be held
    /// durably by a quorum without it.
    fn commit_rule(&mut self, effects: &mut Effects<C, S>) {
        let last = self.log.last_index();
        let own = if self.bugs.has(Bug::LeaderCountsItselfBeforeDurable) {
            last
        } else {
            self.durable_index
        };
        let mut matched: Vec<Index> = std::iter::once(own)
            .chain(self.match_index.values().map(|m| (*m).min(last)))
            .filter(|m| *m > self.commit_index)
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched.dedup();
        let stored_on_quorum = |n: Index| {
            let me = (own >= n).then_some(&self.id);
            let holders = me.into_iter().chain(
                self.match_index
                    .iter()
                    .filter(|(_, matched)| **matched >= n)
                    .map(|(peer, _)| peer),
            );
            if self.bugs.has(Bug::LearnerCountedInQuorum) && !self.config.is_joint() {
                // Seeded: a learner's acknowledgement counted as a voter's.
                let counted = holders
                    .filter(|id| self.config.contains(**id) || self.config.is_learner(**id))
                    .count();
                return 2 * counted > self.config.members.len();
            }
            self.config.is_quorum(holders)
        };
        let Some(candidate) = matched.into_iter().find(|n| stored_on_quorum(*n)) else {
            return;
        };
        let Some(term) = self.log.term_at(candidate) else {
            return;
        };
        if term == self.current_term || self.bugs.has(Bug::CommitOldTerm) {
            self.commit_to(candidate, effects);
            // Reads wait for the first commit of this term (paper §8).
            self.release_confirmed_reads(effects);
        }
    }
}
