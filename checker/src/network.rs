//! The network: a bag of messages in flight (spec `messages`).
//!
//! Delivery consumes one copy; duplication and loss are the network's own
//! actions (`DuplicateMessage`, `DropMessage`), each bounded by a counter of
//! the state. Why a bag that empties, rather than the set of every message
//! ever sent: with a set, `MaxMessages` bounds every message a behaviour
//! *sends*, so a bug that needs four terms (three elections and the fatal
//! AppendEntries) never fits. A bag bounds only the messages *in flight*, so
//! depth is bounded by terms, requests and log length, as it is in the
//! Raft specifications TLC users write, while duplicates and losses stay
//! explored, explicitly and countably.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use imbl::OrdMap;
use raft_model::NodeId;
use serde::{Serialize, Serializer};

use crate::state::{Msg, SharedMsg};

/// Messages in flight, each with how many copies of it are (at least 1).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network {
    copies: OrdMap<SharedMsg, u8>,
}

impl Network {
    pub fn new() -> Network {
        Network::default()
    }

    /// One more copy of `message` in flight (a send, or a duplication).
    pub fn send(&mut self, message: SharedMsg) {
        let count = self.copies.entry(message).or_insert(0);
        // A bound of 255 copies of one message is far past any bound the
        // checker can exhaust; saturating keeps a simulation from panicking.
        *count = count.saturating_add(1);
    }

    /// Takes one copy of `message` out of flight (a delivery or a loss);
    /// false if none was in flight.
    pub fn take(&mut self, message: &Msg) -> bool {
        match self.copies.get_mut(message) {
            Some(count) if *count > 1 => {
                *count -= 1;
                true
            }
            Some(_) => {
                self.copies.remove(message);
                true
            }
            None => false,
        }
    }

    /// The distinct messages in flight, in a fixed order.
    pub fn messages(&self) -> impl Iterator<Item = &SharedMsg> {
        self.copies.keys()
    }

    /// Each distinct message in flight with its number of copies.
    pub fn iter(&self) -> impl Iterator<Item = (&SharedMsg, u8)> {
        self.copies.iter().map(|(m, n)| (m, *n))
    }

    /// Copies of `message` in flight.
    pub fn count(&self, message: &Msg) -> u8 {
        self.copies.get(message).copied().unwrap_or(0)
    }

    /// Copies in flight, all messages together (what `MaxMessages` bounds).
    pub fn copies(&self) -> usize {
        self.copies.values().map(|n| usize::from(*n)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// The same network with every server id passed through `f`.
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Network {
        Network {
            copies: self
                .copies
                .iter()
                .map(|(m, n)| (Arc::new(m.rename_ids(f)), *n))
                .collect(),
        }
    }
}

impl Network {
    /// Feeds `h` exactly what `self.rename_ids(f).hash(h)` would, without
    /// building the renamed bag: the renamed messages in their order, each
    /// with its copies (the checker's orbit fingerprint).
    pub fn hash_renamed<H: Hasher>(&self, f: &impl Fn(NodeId) -> NodeId, h: &mut H) {
        let mut renamed: Vec<(Msg, u8)> = self
            .copies
            .iter()
            .map(|(m, n)| (m.rename_ids(f), *n))
            .collect();
        renamed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (message, copies) in renamed {
            message.hash(h);
            copies.hash(h);
        }
    }
}

/// As the spec's bag: a list of (message, copies).
impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.copies.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_model::{Body, Message};

    fn heartbeat(to: NodeId) -> SharedMsg {
        Arc::new(Message {
            from: 1,
            to,
            term: 1,
            body: Body::RequestVoteRequest {
                last_log_index: 0,
                last_log_term: 0,
                pre_vote: false,
            },
        })
    }

    #[test]
    fn a_delivery_takes_one_copy_and_the_last_one_empties_the_slot() {
        let mut network = Network::new();
        network.send(heartbeat(2));
        network.send(heartbeat(2));
        network.send(heartbeat(3));
        assert_eq!((network.copies(), network.count(&heartbeat(2))), (3, 2));
        assert!(network.take(&heartbeat(2)));
        assert_eq!(network.count(&heartbeat(2)), 1);
        assert!(network.take(&heartbeat(2)));
        assert_eq!(network.messages().count(), 1);
        assert!(!network.take(&heartbeat(2)), "nothing left to take");
        assert_eq!(network.copies(), 1);
    }

    #[test]
    fn equal_bags_are_equal_whatever_the_order_of_sends() {
        let (mut a, mut b) = (Network::new(), Network::new());
        a.send(heartbeat(2));
        a.send(heartbeat(3));
        b.send(heartbeat(3));
        b.send(heartbeat(2));
        assert_eq!(a, b);
    }
}
