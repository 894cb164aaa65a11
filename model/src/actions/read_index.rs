//! Linearizable reads without writing to the log: spec `ReadIndex` (paper §8,
//! dissertation §6.4).
//!
//! A leader may answer a read from its state machine once (1) it has
//! committed an entry of its own term — so its commit index covers every
//! entry committed before it took office — and (2) a quorum has acknowledged
//! it as leader *after* the read arrived, so no newer leader can have
//! committed anything it does not know. The read is then served at the commit
//! index of that moment, once the state machine has applied it.
//!
//! Rounds: each `read_index` call opens a round (`read_seq + 1`). Every
//! AppendEntries request carries the leader's latest round and every response
//! echoes it, so an acknowledgement of round `r` is proof of leadership after
//! every read of round `<= r` arrived. Many reads share one heartbeat.

use crate::bugs::Bug;
use crate::effects::Effects;
use crate::refused::NotLeader;
use crate::server::{Role, Server};
use crate::types::{NodeId, PendingRead, ReadReady};

impl<C: Clone, S: Clone> Server<C, S> {
    /// Spec `ReadIndex`: a leader registers read `read_id` in a new round. The
    /// round is confirmed by the acknowledgements of the next
    /// `send_append_entries`, so a driver batches reads as it batches writes.
    /// A cluster of one confirms at once.
    pub fn read_index(&mut self, read_id: u64) -> Result<Effects<C, S>, NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader_id,
            });
        }
        let mut effects = Effects::default();
        self.read_seq += 1;
        self.pending_reads.push_back(PendingRead {
            id: read_id,
            seq: self.read_seq,
        });
        self.release_confirmed_reads(&mut effects);
        Ok(effects)
    }

    /// Records that `peer` acknowledged our leadership as of round `seq`.
    pub(crate) fn acknowledge_read_round(
        &mut self,
        peer: NodeId,
        seq: u64,
        effects: &mut Effects<C, S>,
    ) {
        // A peer cannot acknowledge a round we never opened. Round 0 means "no
        // round": recording it would change nothing `confirmed_read_round`
        // reads, but would make states differ by a map entry alone (the
        // checker's state space must stay exactly the spec's).
        if seq == 0
            || seq > self.read_seq
            || self.read_acks.get(&peer).is_some_and(|acked| *acked >= seq)
        {
            return;
        }
        self.read_acks.insert(peer, seq);
        self.release_confirmed_reads(effects);
    }

    /// The highest round a quorum (this leader included) has acknowledged.
    /// While joint, a round must be acknowledged by a majority of each half.
    fn confirmed_read_round(&self) -> u64 {
        let confirmed_by = |members: &imbl::OrdSet<NodeId>| {
            let mut rounds: Vec<u64> = members
                .iter()
                .map(|member| {
                    if *member == self.id {
                        self.read_seq
                    } else {
                        self.read_acks.get(member).copied().unwrap_or(0)
                    }
                })
                .collect();
            if rounds.is_empty() {
                return 0;
            }
            // The quorum-th highest acknowledgement is held by a majority.
            rounds.sort_unstable_by(|a, b| b.cmp(a));
            rounds[rounds.len() / 2]
        };
        let new = confirmed_by(&self.config.members);
        match &self.config.old {
            Some(old) => new.min(confirmed_by(old)),
            None => new,
        }
    }

    /// Moves reads whose round a quorum confirmed to `effects.reads_ready`,
    /// once this leader has committed an entry of its own term.
    pub(crate) fn release_confirmed_reads(&mut self, effects: &mut Effects<C, S>) {
        if self.role != Role::Leader || self.pending_reads.is_empty() {
            return;
        }
        if self.log.term_at(self.commit_index) != Some(self.current_term)
            && !self.bugs.has(Bug::ReadBeforeTermCommit)
        {
            return;
        }
        let confirmed = if self.bugs.has(Bug::ReadWithoutQuorum) {
            // Every round counts as confirmed the moment it is opened.
            self.read_seq
        } else {
            self.confirmed_read_round()
        };
        while let Some(read) = self.pending_reads.front() {
            if read.seq > confirmed {
                break;
            }
            effects.reads_ready.push(ReadReady {
                id: read.id,
                index: self.commit_index,
            });
            self.pending_reads.pop_front();
        }
    }

    /// Leadership is gone: every waiting read fails and rounds start over.
    pub(crate) fn fail_pending_reads(&mut self, effects: &mut Effects<C, S>) {
        effects
            .reads_failed
            .extend(self.pending_reads.iter().map(|read| read.id));
        self.pending_reads = Default::default();
        self.read_acks = Default::default();
        self.read_seq = 0;
    }
}

#[cfg(test)]
mod tests {
    use crate::{Body, Config, Message, Server};

    type TestServer = Server<u8, ()>;

    /// Server 1 wins the election of term 1 with server 2's vote and both
    /// followers accept its no-op, so it has committed in its own term.
    /// Returns the three servers.
    fn cluster_with_leader() -> Vec<TestServer> {
        let config = Config::new([1, 2, 3]);
        let mut servers: Vec<TestServer> = (1..=3)
            .map(|id| Server::new(id, config.clone(), ()))
            .collect();
        let votes = servers[0].timeout().messages;
        let vote = servers[1].receive(&votes[0]).messages.remove(0);
        let appends = servers[0].receive(&vote).messages;
        assert!(servers[0].is_leader());
        for append in appends {
            let to = append.to as usize - 1;
            let reply = servers[to].receive(&append).messages.remove(0);
            servers[0].receive(&reply);
        }
        assert_eq!(servers[0].commit_index, 1);
        servers
    }

    /// Delivers `request` to its addressee and the answer back to the leader.
    fn round_trip(servers: &mut [TestServer], request: &Message<u8, ()>) -> crate::Effects<u8, ()> {
        let to = request.to as usize - 1;
        let reply = servers[to].receive(request).messages.remove(0);
        servers[0].receive(&reply)
    }

    #[test]
    fn a_read_waits_for_a_quorum_after_it_arrived() {
        let mut servers = cluster_with_leader();
        let effects = servers[0].read_index(7).expect("leader");
        assert!(effects.reads_ready.is_empty(), "no confirmation yet");
        let heartbeats = servers[0].send_append_entries().messages;
        assert!(
            heartbeats
                .iter()
                .all(|m| matches!(m.body, Body::AppendEntriesRequest { read_seq: 1, .. }))
        );
        let effects = round_trip(&mut servers, &heartbeats[0]);
        assert_eq!(
            effects.reads_ready.len(),
            1,
            "leader + one follower is a quorum of 3"
        );
        assert_eq!(
            (effects.reads_ready[0].id, effects.reads_ready[0].index),
            (7, 1)
        );
    }

    #[test]
    fn an_acknowledgement_of_an_older_round_does_not_confirm_a_newer_read() {
        let mut servers = cluster_with_leader();
        let old_heartbeats = servers[0].send_append_entries().messages;
        servers[0].read_index(7).expect("leader");
        let effects = round_trip(&mut servers, &old_heartbeats[0]);
        assert!(
            effects.reads_ready.is_empty(),
            "round 0 says nothing about a read of round 1"
        );
    }

    #[test]
    fn reads_fail_when_leadership_is_lost_and_followers_refuse() {
        let mut servers = cluster_with_leader();
        servers[0].read_index(7).expect("leader");
        let higher = Message {
            from: 2,
            to: 1,
            term: 5,
            body: Body::RequestVoteRequest {
                last_log_index: 0,
                last_log_term: 0,
                pre_vote: false,
            },
        };
        let effects = servers[0].receive(&higher);
        assert_eq!(effects.reads_failed, vec![7]);
        assert_eq!(servers[1].read_index(8).unwrap_err().leader_hint, Some(1));
    }

    /// Server 1, holding an entry of term 1 nobody else has, wins term 2
    /// with server 2's vote. Server 2's log is empty, so it rejects the new
    /// leader's first AppendEntries — but the rejection is of term 2 and
    /// echoes the read round, so it confirms leadership without committing
    /// anything of term 2.
    #[test]
    fn a_new_leader_answers_reads_only_after_committing_in_its_term() {
        let config = Config::new([1, 2, 3]);
        let mut log = crate::Log::default();
        log.append(crate::Entry {
            term: 1,
            payload: crate::Payload::Noop,
        });
        let snapshot = crate::Snapshot {
            meta: crate::SnapshotMeta {
                last_index: 0,
                last_term: 0,
                config: config.clone(),
            },
            data: (),
        };
        let mut leader: TestServer = Server::recover(1, 1, None, snapshot, log);
        let mut follower: TestServer = Server::new(2, config, ());
        let votes = leader.timeout().messages;
        let vote = follower.receive(&votes[0]).messages.remove(0);
        leader.receive(&vote);
        assert!(leader.is_leader());
        assert_eq!(leader.current_term(), 2);

        leader.read_index(7).expect("leader");
        let heartbeat = leader
            .send_append_entries()
            .messages
            .into_iter()
            .find(|m| m.to == 2)
            .expect("a request to server 2");
        let rejection = follower.receive(&heartbeat).messages.remove(0);
        assert!(matches!(
            rejection.body,
            Body::AppendEntriesResponse {
                success: false,
                read_seq: 1,
                ..
            }
        ));
        let effects = leader.receive(&rejection);
        assert_eq!(leader.read_acks().get(&2), Some(&1), "round 1 confirmed");
        assert!(
            effects.reads_ready.is_empty(),
            "nothing of term 2 is committed: the commit index may lag entries \
             committed by earlier leaders, so a read must wait"
        );

        // The retry from index 1 matches; the no-op of term 2 commits and
        // the read is answered at it.
        let retry = effects
            .messages
            .into_iter()
            .find(|m| m.to == 2)
            .expect("a retry");
        let success = follower.receive(&retry).messages.remove(0);
        let effects = leader.receive(&success);
        assert_eq!(leader.commit_index(), 2);
        assert_eq!(
            effects
                .reads_ready
                .iter()
                .map(|r| (r.id, r.index))
                .collect::<Vec<_>>(),
            vec![(7, 2)]
        );
    }

    #[test]
    fn a_cluster_of_one_confirms_reads_at_once() {
        let config = Config::new([1]);
        let mut solo: TestServer = Server::new(1, config, ());
        solo.timeout();
        assert!(solo.is_leader());
        let effects = solo.read_index(1).expect("leader");
        assert_eq!(
            effects.reads_ready.len(),
            1,
            "a cluster of one confirms at once"
        );
    }
}

#[cfg(test)]
mod stale_rejection {
    use crate::{Body, Config, Message, Server};

    /// Regression: a follower of a newer term rejects an old-term request
    /// that carried read round 3. If the old sender later leads that newer
    /// term and opens its own read round, the old rejection proves nothing
    /// about leadership after the read arrived and must not confirm it.
    #[test]
    fn a_stale_term_rejection_does_not_echo_the_read_round() {
        let mut follower: Server<u8, ()> = Server::new(2, Config::new([1, 2, 3]), ());
        follower.current_term = 5;
        let old_request = Message {
            from: 1,
            to: 2,
            term: 4,
            body: Body::AppendEntriesRequest {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: Default::default(),
                leader_commit: 0,
                read_seq: 3,
            },
        };
        let reply = follower.receive(&old_request).messages.remove(0);
        assert!(
            matches!(
                reply.body,
                Body::AppendEntriesResponse {
                    success: false,
                    read_seq: 0,
                    ..
                }
            ),
            "{reply:?}"
        );
    }
}
