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
use raft_model::{Body, NodeId};
use serde::{Serialize, Serializer};

use crate::shared_server::fingerprint_hasher;
use crate::state::{Msg, SharedMsg};

/// Messages in flight, each with how many copies of it are (at least 1).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Network {
    copies: OrdMap<SharedMsg, InFlight>,
    /// Copies in flight, all messages together: a function of `copies`
    /// kept beside it, since every successor's bound check asks for it.
    total: usize,
}

/// A message's copies in flight, and the hash of its term and body, taken
/// once when it is first sent: every state it stays in flight in, and every
/// renaming of those states, hashes it again (the network was 5 % of the
/// checker's time on `deep` when each hash renamed and re-hashed every
/// message). A function of the message, so it changes no comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    count: u8,
    body_hash: u64,
    /// The body names servers (a configuration in a snapshot or an entry),
    /// so a renaming changes it and `body_hash` holds for the identity only.
    names_servers: bool,
}

impl InFlight {
    fn of(message: &Msg, count: u8) -> InFlight {
        InFlight {
            count,
            body_hash: body_hash(message),
            names_servers: names_servers(message),
        }
    }
}

/// Whether the message's body holds server ids (it always holds `from` and
/// `to`, which are hashed apart from the body).
pub fn names_servers(message: &Msg) -> bool {
    match &message.body {
        Body::InstallSnapshotRequest { .. } => true,
        Body::AppendEntriesRequest { entries, .. } => entries.iter().any(|e| e.config().is_some()),
        _ => false,
    }
}

fn body_hash(message: &Msg) -> u64 {
    let mut hasher = fingerprint_hasher();
    (message.term, &message.body).hash(&mut hasher);
    hasher.finish()
}

impl Network {
    pub fn new() -> Network {
        Network::default()
    }

    /// One more copy of `message` in flight (a send, or a duplication).
    pub fn send(&mut self, message: SharedMsg) {
        // A bound of 255 copies of one message is far past any bound the
        // checker can exhaust; saturating keeps a simulation from panicking.
        if let Some(in_flight) = self.copies.get_mut(&message) {
            if in_flight.count == u8::MAX {
                return;
            }
            in_flight.count += 1;
        } else {
            let in_flight = InFlight::of(&message, 1);
            self.copies.insert(message, in_flight);
        }
        self.total += 1;
    }

    /// Takes one copy of `message` out of flight (a delivery or a loss);
    /// false if none was in flight.
    pub fn take(&mut self, message: &Msg) -> bool {
        match self.copies.get_mut(message) {
            Some(in_flight) if in_flight.count > 1 => {
                in_flight.count -= 1;
                self.total -= 1;
                true
            }
            Some(_) => {
                self.copies.remove(message);
                self.total -= 1;
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
        self.copies.iter().map(|(m, n)| (m, n.count))
    }

    /// Copies of `message` in flight.
    pub fn count(&self, message: &Msg) -> u8 {
        self.copies.get(message).map_or(0, |n| n.count)
    }

    /// Copies in flight, all messages together (what `MaxMessages` bounds).
    pub fn copies(&self) -> usize {
        debug_assert_eq!(
            self.total,
            self.copies
                .values()
                .map(|n| usize::from(n.count))
                .sum::<usize>()
        );
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// The same network with every server id passed through `f`, a
    /// permutation of the ids (a renaming that merged two ids could merge
    /// two messages, and `total` and the hash's count would be wrong).
    pub fn rename_ids(&self, f: &impl Fn(NodeId) -> NodeId) -> Network {
        Network {
            copies: self
                .copies
                .iter()
                .map(|(m, n)| {
                    let renamed = m.rename_ids(f);
                    let in_flight = InFlight::of(&renamed, n.count);
                    (Arc::new(renamed), in_flight)
                })
                .collect(),
            total: self.total,
        }
    }

    /// Feeds `h` exactly what `self.rename_ids(f).hash(h)` would, without
    /// building the renamed bag (the checker's orbit fingerprint).
    ///
    /// The bag is hashed as the number of distinct messages and the
    /// wrapping sum of one well-mixed hash per message (its renamed ends,
    /// its term and body, its copies): a sum does not depend on the order
    /// the renamed messages would sort in, so nothing is sorted or built.
    /// Two different bags share a sum only as two states share any 64-bit
    /// fingerprint, by a collision of hashes.
    pub fn hash_renamed<H: Hasher>(&self, f: &impl Fn(NodeId) -> NodeId, h: &mut H) {
        let mut sum = 0u64;
        for (message, in_flight) in self.copies.iter() {
            let (from, to) = (f(message.from), f(message.to));
            // A configuration in the body may name any server.
            let body = if in_flight.names_servers {
                body_hash(&message.rename_ids(f))
            } else {
                in_flight.body_hash
            };
            let mut one = fingerprint_hasher();
            (from, to, body, in_flight.count).hash(&mut one);
            sum = sum.wrapping_add(one.finish());
        }
        self.copies.len().hash(h);
        h.write_u64(sum);
    }
}

/// The same stream as [`Network::hash_renamed`] under the identity.
impl Hash for Network {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.hash_renamed(&|id| id, h);
    }
}

/// As the spec's bag: a list of (message, copies).
impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
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

    fn hash(network: &Network) -> u64 {
        let mut hasher = fingerprint_hasher();
        network.hash(&mut hasher);
        hasher.finish()
    }

    /// The same two messages sent in both orders.
    fn sent_in_both_orders() -> (Network, Network) {
        let (mut a, mut b) = (Network::new(), Network::new());
        a.send(heartbeat(2));
        a.send(heartbeat(3));
        b.send(heartbeat(3));
        b.send(heartbeat(2));
        (a, b)
    }

    #[test]
    fn a_bag_hashes_by_its_messages_and_copies_not_by_the_order_of_sends() {
        let (a, mut b) = sent_in_both_orders();
        assert_eq!(hash(&a), hash(&b));
        b.send(heartbeat(3));
        assert_ne!(hash(&a), hash(&b), "a second copy changes the hash");
        assert!(b.take(&heartbeat(3)));
        assert_eq!(hash(&a), hash(&b), "taking it back restores it");
        // Swapping the ends (a renaming) changes the hash unless the bag
        // maps onto itself.
        let swap = |id: NodeId| match id {
            2 => 3,
            3 => 2,
            other => other,
        };
        assert_eq!(hash(&a.rename_ids(&swap)), hash(&a));
        let mut only_two = Network::new();
        only_two.send(heartbeat(2));
        assert_ne!(hash(&only_two.rename_ids(&swap)), hash(&only_two));
        let mut streamed = fingerprint_hasher();
        only_two.hash_renamed(&swap, &mut streamed);
        assert_eq!(streamed.finish(), hash(&only_two.rename_ids(&swap)));
    }

    #[test]
    fn equal_bags_are_equal_whatever_the_order_of_sends() {
        let (a, b) = sent_in_both_orders();
        assert_eq!(a, b);
    }
}
