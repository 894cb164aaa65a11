//! Whether a node is ready to serve clients: what gRPC health, the status RPC
//! and `client health` report.
//!
//! A node that answers RPCs is not necessarily useful. A lone candidate with
//! no quorum, a follower cut off from its leader, or a leader that a
//! partition has left without a majority accepts connections but cannot
//! commit a write or confirm a read. Load balancers and orchestrators ask
//! gRPC health which nodes to send traffic to, so health says SERVING only
//! when this node knows a leader it has heard from recently — or is that
//! leader and has heard from a quorum recently. "Recently" is within one
//! election timeout (its upper end), the span after which a follower would
//! start an election itself.
//!
//! The event loop records contacts as messages arrive ([`Contacts`]) and
//! re-assesses after every batch; the heartbeat timer runs the loop at least
//! once per heartbeat interval, so a contact that grows stale is noticed
//! within one interval. [`assess`] is pure: time is an argument.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use raft_model::{NodeId, Role, Term};

/// Serving or not, and why. The reason is kept as data and put into
/// words only when shown ([`Reason`]'s `Display`): the loop assesses after
/// every batch, and most assessments change nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub serving: bool,
    pub reason: Reason,
}

/// Why a node serves or not, in words an operator can act on (`Display`).
/// No elapsed time is part of it: the reason must stay the same while the
/// state does, or every loop would report a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Before the event loop's first assessment.
    Starting,
    /// A leader, with `heard` of `members` (itself included) within
    /// `within_ms`, `needed` being a quorum.
    Leader {
        term: Term,
        heard: usize,
        members: usize,
        needed: usize,
        within_ms: u128,
    },
    Candidate {
        term: Term,
    },
    /// Asking for pre-votes: no leader heard within an election timeout.
    PreCandidate {
        term: Term,
    },
    NoLeader {
        term: Term,
    },
    Follower {
        leader: NodeId,
        term: Term,
    },
    /// The leader was heard in this term, but not within `within_ms`.
    LeaderSilent {
        leader: NodeId,
        term: Term,
        within_ms: u128,
    },
    /// The leader is known but has not reached us yet in this term.
    LeaderNotYetHeard {
        leader: NodeId,
        term: Term,
    },
}

impl Readiness {
    /// Before the event loop's first assessment.
    pub fn starting() -> Readiness {
        Readiness {
            serving: false,
            reason: Reason::Starting,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::Starting => write!(f, "starting"),
            Reason::Leader {
                term,
                heard,
                members,
                needed,
                within_ms,
            } => {
                if heard >= needed {
                    write!(
                        f,
                        "leader of term {term}, {heard} of {members} members heard within {within_ms} ms"
                    )
                } else {
                    write!(
                        f,
                        "leader of term {term} without a quorum: {heard} of {members} members heard within {within_ms} ms, {needed} needed"
                    )
                }
            }
            Reason::Candidate { term } => {
                write!(f, "candidate in term {term}: an election is under way")
            }
            Reason::PreCandidate { term } => write!(
                f,
                "pre-candidate in term {term}: no leader heard within an election timeout; asking whether an election could be won"
            ),
            Reason::NoLeader { term } => write!(f, "no leader known in term {term}"),
            Reason::Follower { leader, term } => {
                write!(f, "follower of node {leader} in term {term}")
            }
            Reason::LeaderSilent {
                leader,
                term,
                within_ms,
            } => write!(
                f,
                "no word from leader {leader} of term {term} within {within_ms} ms"
            ),
            Reason::LeaderNotYetHeard { leader, term } => {
                write!(f, "no word yet from leader {leader} of term {term}")
            }
        }
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.serving {
            "SERVING"
        } else {
            "NOT_SERVING"
        };
        write!(f, "{status}: {}", self.reason)
    }
}

/// When this node last heard from whom, in its current term.
#[derive(Debug, Default)]
pub struct Contacts {
    /// The term the contacts below belong to; a new term forgets them.
    term: Term,
    /// As a follower: the last AppendEntries or InstallSnapshot request from
    /// the leader of `term`.
    leader: Option<Instant>,
    /// As the leader of `term`: each peer's last response.
    peers: BTreeMap<NodeId, Instant>,
    /// As the leader of `term`: when each peer last took a chunk of a
    /// snapshot we stream to it. Not a response (it says nothing of the
    /// peer's term), so readiness does not count it: it only lets the loop
    /// put off CheckQuorum while the snapshot is under way
    /// ([`Contacts::reading_snapshot`]).
    streaming: BTreeMap<NodeId, Instant>,
}

impl Contacts {
    /// Forgets every contact of an earlier term (a leader's contact vouches
    /// for its own term only).
    pub fn enter_term(&mut self, term: Term) {
        if term != self.term {
            *self = Contacts {
                term,
                ..Contacts::default()
            };
        }
    }

    /// The leader of `term` reached us (a request the core accepted).
    pub fn heard_from_leader(&mut self, term: Term, at: Instant) {
        self.enter_term(term);
        self.leader = Some(at);
    }

    /// `peer` answered our request of `term`.
    pub fn heard_from_peer(&mut self, term: Term, peer: NodeId, at: Instant) {
        self.enter_term(term);
        self.peers.insert(peer, at);
    }

    /// `peer` took another chunk of our snapshot of `term`.
    pub fn snapshot_progress(&mut self, term: Term, peer: NodeId, at: Instant) {
        self.enter_term(term);
        self.streaming.insert(peer, at);
    }

    /// The peers reading a snapshot of ours of `term` within `window` of `now`.
    pub fn reading_snapshot(
        &self,
        term: Term,
        now: Instant,
        window: Duration,
    ) -> impl Iterator<Item = NodeId> + '_ {
        self.streaming
            .iter()
            .filter(move |(_, at)| {
                self.term == term && now.saturating_duration_since(**at) <= window
            })
            .map(|(peer, _)| *peer)
    }
}

/// What the node knows of itself, as the core holds it.
pub struct View {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    /// The configuration in force: a leader is ready when the servers it
    /// heard from (itself included) are a quorum of it — of both halves
    /// while a membership change is under way (joint).
    pub config: raft_model::Config,
}

/// Is a chunk of an InstallSnapshot stream from `from`, whose first chunk
/// named `term`, word from the leader this node follows (so that it may
/// restart the election timer before the core has seen the request)? Only
/// if `term` is the node's current term — the core decides terms: a chunk
/// of an older term is a deposed leader's, one of a newer term counts for
/// nothing until the core has taken the request — and the node does not
/// lead it. Then `from` is the leader of that term (only a leader sends
/// InstallSnapshot, and a term has at most one: Election Safety), even if
/// the node has not learned its id yet: a restarted follower's, or a
/// candidate's, first message from that leader may be this snapshot. The
/// core makes the node its follower and restarts the timer when the whole
/// request arrives; a chunk does the same for the timer, earlier. A known
/// leader of the term that is someone else would contradict Election
/// Safety: not counted.
pub fn snapshot_chunk_from_leader(view: &View, from: NodeId, term: Term) -> bool {
    term == view.term
        && view.role != Role::Leader
        && from != view.id
        && view.leader.is_none_or(|leader| leader == from)
}

/// Is the node ready at `now`, given its `contacts` and the election
/// timeout's upper end `window`?
pub fn assess(view: &View, contacts: &Contacts, now: Instant, window: Duration) -> Readiness {
    let recent = |at: &Instant| now.saturating_duration_since(*at) <= window;
    let within_ms = window.as_millis();
    let term = view.term;
    let of_this_term = contacts.term == term;
    let (serving, reason) = match (view.role, view.leader) {
        (Role::Leader, _) => {
            let mut heard_from: Vec<NodeId> = contacts
                .peers
                .iter()
                .filter(|(peer, at)| of_this_term && **peer != view.id && recent(at))
                .map(|(peer, _)| *peer)
                .filter(|peer| view.config.contains(*peer))
                .collect();
            // A leader being removed leads without counting itself.
            if view.config.contains(view.id) {
                heard_from.push(view.id);
            }
            let members = view.config.voters().count();
            let reason = Reason::Leader {
                term,
                heard: heard_from.len(),
                members,
                // A majority of C_new (and of C_old while joint).
                needed: view.config.members.len() / 2 + 1,
                within_ms,
            };
            (view.config.is_quorum(&heard_from), reason)
        }
        (Role::Candidate, _) => (false, Reason::Candidate { term }),
        (Role::PreCandidate, _) => (false, Reason::PreCandidate { term }),
        (Role::Follower, None) => (false, Reason::NoLeader { term }),
        (Role::Follower, Some(leader)) => match contacts.leader.filter(|_| of_this_term) {
            Some(at) if recent(&at) => (true, Reason::Follower { leader, term }),
            Some(_) => (
                false,
                Reason::LeaderSilent {
                    leader,
                    term,
                    within_ms,
                },
            ),
            None => (false, Reason::LeaderNotYetHeard { leader, term }),
        },
    };
    Readiness { serving, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(300);
    fn view(role: Role, term: Term, leader: Option<NodeId>) -> View {
        View {
            id: 1,
            role,
            term,
            leader,
            config: raft_model::Config::new([1, 2, 3]),
        }
    }

    #[test]
    fn a_leader_needs_a_quorum_heard_recently() {
        let start = Instant::now();
        let mut contacts = Contacts::default();
        let leader = view(Role::Leader, 2, Some(1));
        let alone = assess(&leader, &contacts, start, WINDOW);
        assert!(!alone.serving, "{alone}");
        assert!(
            alone
                .reason
                .to_string()
                .contains("without a quorum: 1 of 3"),
            "{alone}"
        );

        contacts.heard_from_peer(2, 2, start);
        let with_one = assess(&leader, &contacts, start + WINDOW, WINDOW);
        assert!(with_one.serving, "{with_one}");

        let later = assess(&leader, &contacts, start + WINDOW * 2, WINDOW);
        assert!(
            !later.serving,
            "a contact older than the window no longer counts: {later}"
        );
    }

    #[test]
    fn a_leader_does_not_count_contacts_of_an_earlier_term() {
        let now = Instant::now();
        let mut contacts = Contacts::default();
        contacts.heard_from_peer(2, 2, now);
        contacts.heard_from_peer(2, 3, now);
        let leader_of_3 = view(Role::Leader, 3, Some(1));
        assert!(!assess(&leader_of_3, &contacts, now, WINDOW).serving);
        contacts.enter_term(3);
        assert!(contacts.peers.is_empty(), "a new term forgets old contacts");
    }

    #[test]
    fn the_leaders_own_id_is_not_a_peer_contact() {
        let now = Instant::now();
        let mut contacts = Contacts::default();
        contacts.heard_from_peer(2, 1, now);
        assert!(!assess(&view(Role::Leader, 2, Some(1)), &contacts, now, WINDOW).serving);
    }

    #[test]
    fn a_follower_needs_a_known_leader_heard_recently() {
        let start = Instant::now();
        let mut contacts = Contacts::default();
        let no_leader = assess(&view(Role::Follower, 4, None), &contacts, start, WINDOW);
        assert_eq!(no_leader.reason.to_string(), "no leader known in term 4");
        assert!(!no_leader.serving);

        let follower = view(Role::Follower, 4, Some(2));
        assert!(!assess(&follower, &contacts, start, WINDOW).serving);
        contacts.heard_from_leader(4, start);
        assert!(assess(&follower, &contacts, start + WINDOW, WINDOW).serving);
        let stale = assess(&follower, &contacts, start + WINDOW * 3, WINDOW);
        assert!(!stale.serving);
        assert!(
            stale.reason.to_string().contains("no word from leader 2"),
            "{stale}"
        );
    }

    #[test]
    fn a_candidate_is_never_ready() {
        let now = Instant::now();
        let mut contacts = Contacts::default();
        contacts.heard_from_leader(5, now);
        let candidate = assess(&view(Role::Candidate, 5, None), &contacts, now, WINDOW);
        assert!(!candidate.serving);
        assert!(
            candidate
                .to_string()
                .starts_with("NOT_SERVING: candidate in term 5")
        );
    }

    #[test]
    fn only_a_snapshot_chunk_of_the_current_term_from_its_leader_is_contact() {
        let follower = view(Role::Follower, 5, Some(2));
        assert!(snapshot_chunk_from_leader(&follower, 2, 5));
        assert!(
            !snapshot_chunk_from_leader(&follower, 2, 4),
            "a stale term's chunk (a deposed leader's) is not contact"
        );
        assert!(
            !snapshot_chunk_from_leader(&follower, 2, 6),
            "a newer term is the core's to adopt first"
        );
        assert!(
            !snapshot_chunk_from_leader(&follower, 3, 5),
            "not the leader we follow"
        );
        let restarted = view(Role::Follower, 5, None);
        assert!(
            snapshot_chunk_from_leader(&restarted, 3, 5),
            "the leader of our term, not learned yet"
        );
        let candidate = view(Role::Candidate, 5, None);
        assert!(snapshot_chunk_from_leader(&candidate, 3, 5));
        assert!(!snapshot_chunk_from_leader(&candidate, 3, 4));
        let leader = view(Role::Leader, 5, Some(1));
        assert!(!snapshot_chunk_from_leader(&leader, 2, 5));
    }

    #[test]
    fn snapshot_progress_is_kept_apart_from_answers() {
        let start = Instant::now();
        let mut contacts = Contacts::default();
        contacts.snapshot_progress(2, 3, start);
        let leader = view(Role::Leader, 2, Some(1));
        assert!(
            !assess(&leader, &contacts, start, WINDOW).serving,
            "a peer reading a snapshot has not answered: no quorum for readiness"
        );
        let reading: Vec<_> = contacts.reading_snapshot(2, start, WINDOW).collect();
        assert_eq!(reading, vec![3]);
        assert_eq!(
            contacts
                .reading_snapshot(2, start + WINDOW * 2, WINDOW)
                .count(),
            0,
            "progress older than the window does not count"
        );
        assert_eq!(contacts.reading_snapshot(3, start, WINDOW).count(), 0);
        contacts.enter_term(3);
        assert_eq!(contacts.reading_snapshot(3, start, WINDOW).count(), 0);
    }

    /// While a membership change is under way, a leader is ready only with
    /// a quorum of both C_old and C_new; a leader being removed does not
    /// count itself.
    #[test]
    fn a_joint_configuration_needs_both_majorities() {
        let now = Instant::now();
        let joint = raft_model::Config::joint(
            [1u64, 2, 3].into_iter().collect(),
            [1u64, 4, 5].into_iter().collect(),
        );
        let leader = View {
            config: joint,
            ..view(Role::Leader, 2, Some(1))
        };
        let mut contacts = Contacts::default();
        contacts.heard_from_peer(2, 2, now);
        assert!(
            !assess(&leader, &contacts, now, WINDOW).serving,
            "C_new has 1 of 3"
        );
        contacts.heard_from_peer(2, 4, now);
        assert!(assess(&leader, &contacts, now, WINDOW).serving);

        let leaving = View {
            config: raft_model::Config::new([2, 3, 4]),
            ..view(Role::Leader, 2, Some(1))
        };
        let mut contacts = Contacts::default();
        contacts.heard_from_peer(2, 2, now);
        assert!(
            !assess(&leaving, &contacts, now, WINDOW).serving,
            "1 of 3 heard"
        );
        contacts.heard_from_peer(2, 3, now);
        assert!(assess(&leaving, &contacts, now, WINDOW).serving);
    }

    #[test]
    fn a_single_node_leader_is_its_own_quorum() {
        let solo = View {
            id: 1,
            role: Role::Leader,
            term: 1,
            leader: Some(1),
            config: raft_model::Config::new([1]),
        };
        assert!(assess(&solo, &Contacts::default(), Instant::now(), WINDOW).serving);
    }
}
