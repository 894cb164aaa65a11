//! Server identity between peers: a node id names a member, an incarnation
//! names the data behind it (issue 15).
//!
//! A data directory draws its incarnation, 128 random bits, when it is
//! initialised (identity.json, `crate::storage`). A node whose data was lost
//! refuses to start as the same member; this module makes the peers hold
//! every server to its incarnation, so that a server wiped, or replaced, and
//! re-added under an old id is never taken for the old one (the wiped-disk
//! split brain known from KRaft and CCF: back at term 0 with an empty log,
//! the old id could vote twice in a term, or acknowledge entries it lost).
//!
//! - Every peer message's header carries the sender's incarnation and the
//!   one the sender's address book records for the receiver.
//! - The replicated address book (`crate::members`) records an incarnation
//!   with a member's address: the one `member add` read from the new
//!   server's status, or, for a member the book has none for (the starting
//!   members, whose config files hold addresses only), the first one the
//!   leader hears from it, which the leader then records in the log.
//! - A receiver refuses a message meant for another incarnation of itself,
//!   or from an incarnation of the sender other than the one its book
//!   records; a sender drops a reply from an unexpected incarnation. Each
//!   refusal is logged and counted (`raft_peer_incarnation_refusals_total`).
//!
//! The spec and the checker need no action for this: their servers are
//! unique by construction. This is the node's mapping of processes onto the
//! spec's servers, which the check keeps one-to-one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_model::NodeId;
use tonic::Status;
use tracing::warn;

use crate::members::DirectoryWatch;
use crate::proto::peer as pb;

/// The incarnation recorded for each member, where one is known.
pub type Incarnations = BTreeMap<NodeId, String>;

/// Counts messages refused or dropped for an incarnation mismatch (label
/// `peer`: the id whose incarnation did not match).
pub const REFUSALS: &str = "raft_peer_incarnation_refusals_total";

/// An incarnation as it may travel: empty (unknown), or up to 64 hex digits
/// (identity.json's are 32).
pub fn check(incarnation: &str) -> Result<(), String> {
    if incarnation.len() <= 64 && incarnation.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "invalid incarnation {:?}: expected at most 64 hexadecimal digits",
            incarnation.chars().take(80).collect::<String>()
        ))
    }
}

/// How often a refusal is logged per peer (each is counted).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// This server's incarnation and the address book's, for the peer service
/// and the peer senders.
#[derive(Clone)]
pub struct Identity {
    pub me: NodeId,
    /// Empty in services built without a data directory (unit tests).
    pub own: String,
    pub directory: DirectoryWatch,
    /// When a refusal was last logged, per peer.
    warned: Arc<Mutex<BTreeMap<NodeId, Instant>>>,
}

impl Identity {
    pub fn new(me: NodeId, own: String, directory: DirectoryWatch) -> Identity {
        Identity {
            me,
            own,
            directory,
            warned: Arc::default(),
        }
    }

    /// Counts a refusal concerning `peer`, and logs it unless one was
    /// logged within [`WARN_EVERY`].
    fn refused(&self, peer: NodeId, why: &str) {
        metrics::counter!(REFUSALS, "peer" => peer.to_string()).increment(1);
        let now = Instant::now();
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if warned
            .get(&peer)
            .is_none_or(|last| now.duration_since(*last) >= WARN_EVERY)
        {
            warned.insert(peer, now);
            warn!(peer, "peer message refused for its incarnation: {why}");
        }
    }

    /// The incarnation the book records for `id`, if any.
    pub fn recorded(&self, id: NodeId) -> Option<String> {
        self.directory.borrow().incarnations.get(&id).cloned()
    }

    /// Fills in a header's incarnations: ours, and the book's for its `to`.
    pub fn stamp(&self, header: &mut pb::Header) {
        header.from_incarnation.clone_from(&self.own);
        header.to_incarnation = self.recorded(header.to).unwrap_or_default();
    }

    /// The receiver's check of a request's header (its addressing already
    /// checked): refused if meant for another incarnation of this node, or
    /// sent by an incarnation of its sender other than the book's.
    pub fn check_request(&self, header: &pb::Header) -> Result<(), Status> {
        if !header.to_incarnation.is_empty()
            && !self.own.is_empty()
            && header.to_incarnation != self.own
        {
            let why = format!(
                "this server is incarnation {} of node {}, but node {} records node {} as \
                 incarnation {}: this server's data directory was replaced since it was added; \
                 it is not that member (remove node {} and add this server under a new id)",
                self.own, self.me, header.from, self.me, header.to_incarnation, self.me
            );
            self.refused(header.from, &why);
            return Err(Status::failed_precondition(why));
        }
        self.check_sender(header.from, &header.from_incarnation)
            .map_err(Status::permission_denied)
    }

    /// Whether `incarnation`, heard from `from` (a request's sender, or the
    /// peer answering a request), is the one the book records for it.
    pub fn check_sender(&self, from: NodeId, incarnation: &str) -> Result<(), String> {
        match self.recorded(from) {
            Some(recorded) if recorded != incarnation => {
                let why = format!(
                    "node {from} is incarnation {recorded} in the cluster's address book, but \
                     this message comes from incarnation {incarnation:?}: a former or a \
                     replaced server under that id, refused"
                );
                self.refused(from, &why);
                Err(why)
            }
            _ => Ok(()),
        }
    }
}

/// The peer messages that carry a [`pb::Header`].
pub trait Headed {
    fn header_mut(&mut self) -> Option<&mut pb::Header>;
}

macro_rules! headed {
    ($($message:ty),*) => {$(
        impl Headed for $message {
            fn header_mut(&mut self) -> Option<&mut pb::Header> {
                self.header.as_mut()
            }
        }
    )*};
}

headed!(
    pb::RequestVoteRequest,
    pb::RequestVoteResponse,
    pb::AppendEntriesRequest,
    crate::convert::AppendEntriesOut,
    pb::AppendEntriesResponse,
    pb::InstallSnapshotChunk,
    pb::InstallSnapshotResponse,
    pb::TimeoutNowRequest
);

impl Identity {
    /// [`Identity::stamp`] on a message's header, if it has one.
    pub fn stamped<M: Headed>(&self, mut message: M) -> M {
        if let Some(header) = message.header_mut() {
            self.stamp(header);
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::members::Directory;

    fn identity(book: &[(NodeId, &str)]) -> Identity {
        let directory = Directory {
            incarnations: book.iter().map(|(id, i)| (*id, i.to_string())).collect(),
            ..Directory::default()
        };
        Identity::new(
            2,
            "bb".into(),
            tokio::sync::watch::channel(Arc::new(directory)).1,
        )
    }

    fn header(from: NodeId, from_incarnation: &str, to_incarnation: &str) -> pb::Header {
        pb::Header {
            cluster_id: "c".into(),
            from,
            to: 2,
            term: 1,
            from_incarnation: from_incarnation.into(),
            to_incarnation: to_incarnation.into(),
        }
    }

    #[test]
    fn a_request_for_another_incarnation_of_this_node_is_refused() {
        let id = identity(&[]);
        assert!(id.check_request(&header(1, "aa", "bb")).is_ok());
        assert!(
            id.check_request(&header(1, "aa", "")).is_ok(),
            "not recorded"
        );
        let refused = id.check_request(&header(1, "aa", "b0")).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(
            refused.message().contains("incarnation bb of node 2"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_sender_other_than_the_recorded_incarnation_is_refused() {
        let id = identity(&[(1, "aa")]);
        assert!(id.check_request(&header(1, "aa", "bb")).is_ok());
        let refused = id.check_request(&header(1, "a0", "bb")).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(refused.message().contains("incarnation aa"), "{refused:?}");
        assert!(
            id.check_request(&header(1, "", "bb")).is_err(),
            "an unstated one too"
        );
        assert!(
            id.check_request(&header(3, "cc", "")).is_ok(),
            "3 not recorded"
        );
    }

    #[test]
    fn stamping_fills_both_incarnations() {
        let id = identity(&[(2, "bb"), (3, "cc")]);
        let mut header = header(2, "", "");
        header.to = 3;
        id.stamp(&mut header);
        assert_eq!(
            (
                header.from_incarnation.as_str(),
                header.to_incarnation.as_str()
            ),
            ("bb", "cc")
        );
    }

    #[test]
    fn incarnations_are_short_hex() {
        assert!(check("").is_ok());
        assert!(check(&"ab12".repeat(16)).is_ok());
        assert!(check(&"a".repeat(65)).is_err());
        assert!(check("not hex").is_err());
    }
}
