//! Who hears a ReadIndex round: as few voters as can confirm it.
//!
//! A read is confirmed once a quorum, the leader included, echoes a round
//! opened after it (`raft_model` `read_index`). In a cluster of three one
//! follower's echo is enough, yet `SendAppendEntries` sends the round's
//! heartbeat to every peer: each follower paid a gRPC request and its
//! answer per round. Measured at 16 readers (issue 17), the followers spent
//! a quarter of a core each on those heartbeats alone.
//!
//! So a batch that sends AppendEntries only for its reads sends the empty
//! requests (heartbeats) only to the voters a quorum needs besides the
//! leader, those that echoed the latest rounds; requests carrying entries
//! go to every peer as before. To the core and the checker a heartbeat not
//! sent is a heartbeat lost, which the checker's network does at every
//! step: no safety argument changes. The heartbeat timer still reaches
//! every peer, so a follower left out keeps its leader (and learns the
//! commit index) as before, and a chosen follower that stops answering
//! falls behind the others' echoes at the next heartbeat: reads wait at
//! most one heartbeat interval for it, as for any lost request.

use raft_model::{Config, NodeId};

/// The peers a read round's heartbeat goes to, or `None` for every peer:
/// while joint (a quorum of each half, not worth choosing), or when the
/// leader is not a voter of its configuration (it does not count itself).
/// `acked` is the latest round each peer echoed.
pub(super) fn read_round_peers(
    config: &Config,
    me: NodeId,
    acked: impl Fn(NodeId) -> u64,
) -> Option<Vec<NodeId>> {
    if config.old.is_some() || !config.members.contains(&me) {
        return None;
    }
    let mut peers: Vec<NodeId> = config
        .members
        .iter()
        .copied()
        .filter(|p| *p != me)
        .collect();
    // Those that echoed the newest rounds first (a stable sort: ties in
    // id order).
    peers.sort_by_key(|peer| std::cmp::Reverse(acked(*peer)));
    // A majority of n is n / 2 + 1; the leader is one of them.
    let needed = config.members.len() / 2;
    peers.truncate(needed);
    debug_assert!(
        peers.len() + 1 > config.members.len() / 2,
        "a quorum with the leader"
    );
    Some(peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imbl::OrdSet;

    fn acks(pairs: &[(NodeId, u64)]) -> impl Fn(NodeId) -> u64 + '_ {
        move |peer| {
            pairs
                .iter()
                .find(|(p, _)| *p == peer)
                .map_or(0, |(_, seq)| *seq)
        }
    }

    #[test]
    fn three_voters_need_the_follower_that_echoed_last() {
        let config = Config::new([1, 2, 3]);
        assert_eq!(
            read_round_peers(&config, 1, acks(&[(2, 4), (3, 9)])),
            Some(vec![3])
        );
        assert_eq!(
            read_round_peers(&config, 1, acks(&[(2, 9), (3, 4)])),
            Some(vec![2])
        );
        // None echoed yet: the lowest id.
        assert_eq!(read_round_peers(&config, 2, acks(&[])), Some(vec![1]));
    }

    #[test]
    fn five_voters_need_two_followers_four_need_two() {
        let config = Config::new([1, 2, 3, 4, 5]);
        let chosen = read_round_peers(&config, 3, acks(&[(1, 1), (2, 7), (4, 5), (5, 7)]));
        assert_eq!(chosen, Some(vec![2, 5]));
        // Four voters: a quorum is three, the leader and two others.
        let config = Config::new([1, 2, 3, 4]);
        assert_eq!(
            read_round_peers(&config, 1, acks(&[(4, 2)])),
            Some(vec![4, 2])
        );
    }

    #[test]
    fn a_single_voter_sends_to_nobody() {
        assert_eq!(
            read_round_peers(&Config::new([1]), 1, acks(&[])),
            Some(vec![])
        );
    }

    #[test]
    fn joint_or_not_a_voter_sends_to_every_peer() {
        let mut joint = Config::new([1, 2, 3]);
        joint.old = Some(OrdSet::from(vec![1, 2, 4]));
        assert_eq!(read_round_peers(&joint, 1, acks(&[])), None);
        // A leader removing itself leads without counting itself.
        assert_eq!(
            read_round_peers(&Config::new([2, 3, 4]), 1, acks(&[])),
            None
        );
    }

    #[test]
    fn learners_are_never_chosen() {
        let mut config = Config::new([1, 2, 3]);
        config.learners = OrdSet::from(vec![4]);
        assert_eq!(
            read_round_peers(&config, 1, acks(&[(4, 99), (2, 1)])),
            Some(vec![2])
        );
    }
}
