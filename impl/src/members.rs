//! Who the members are and where they are reached: the node's address book
//! (issue 15, membership changes).
//!
//! The core's configuration ([`raft_model::Config`]) holds server ids only.
//! A node must also know where each voter listens, on every server: the
//! leader replicates to a member it just added, and any follower may become
//! leader later and must then reach every member.
//!
//! **Design: the address book is replicated through the log.** When the
//! leader changes the configuration, it first appends a
//! [`KvOp::SetMemberAddress`] command for every member of the new
//! configuration whose address the replicated book does not yet hold (the
//! member being added, and on the first change the starting members, whose
//! addresses were only in the config files), and then, in the same batch,
//! the joint configuration C_old,new. So:
//!
//! - a server whose log holds the configuration entry holds the addresses
//!   before it (Log Matching): the book is derived like the configuration,
//!   from what is *appended*, not only what is applied ([`derive`]), so a new
//!   leader elected with the change uncommitted reaches the new members;
//! - the state machine applies the commands into [`KvImage::addresses`], so
//!   snapshots carry the book and a server catching up by InstallSnapshot
//!   learns it with the configuration;
//! - nothing in the core changes: to it, these are client commands.
//!
//! The alternative, addresses carried beside the configuration entry in the
//! node's encodings, would make encoding an entry depend on a side table
//! (the core's entry has no room for them) on the peer and disk paths alike,
//! and snapshots would need a copy of the table too. etcd, for comparison,
//! carries the member's URLs in the ConfChange's context and keeps them in
//! its store; here the log entry before the change plays that role.
//!
//! The book is layered: the node's config file (`members`) first, then the
//! replicated addresses on top (the replicated book is the cluster's
//! agreement; a config file is one node's view). A joining node's config
//! file needs only its own address.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft_model::{Config, Index, Log, NodeId, Payload};
use tokio::sync::watch;

use crate::incarnation::Incarnations;
use crate::kv::{KvCommand, KvImage, KvOp};

/// Every known member's address (ids not in the configuration too: a
/// member removed keeps its entry, harmless).
pub type Addresses = BTreeMap<NodeId, String>;

/// What the event loop publishes after every batch that changed it: the
/// configuration in force, the addresses, and the leader, for the client
/// and admin services (leader hints, MemberList) and the peer service.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub config: Option<Config>,
    /// The index of the configuration's entry, and whether it is known
    /// committed.
    pub config_index: Index,
    pub committed: bool,
    pub addresses: Addresses,
    /// The incarnation the replicated book records for each member, where
    /// it records one (crate::incarnation).
    pub incarnations: Incarnations,
}

/// The replicated address book: every recorded address, and the
/// incarnations recorded with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    pub addresses: Addresses,
    pub incarnations: Incarnations,
}

/// One record of the book, as a leader appends it ([`KvOp::SetMemberAddress`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberAddress {
    pub id: NodeId,
    pub address: String,
    /// Empty: none known.
    pub incarnation: String,
}

impl MemberAddress {
    pub fn command(self) -> KvCommand {
        KvCommand::new(
            0,
            0,
            KvOp::SetMemberAddress {
                id: self.id,
                address: self.address,
                incarnation: self.incarnation,
            },
        )
    }
}

/// The response metadata with which a member tells a server asking for
/// votes that the cluster's committed configuration, which the asker's log
/// does not reach, does not include it: it was removed (see
/// [`Directory::removed`]). Only informs: the vote itself is the core's.
pub const NOT_A_MEMBER_HEADER: &str = "raft-not-a-member";

impl Directory {
    /// Whether a server `from` whose log ends at `last_log_index` asking for
    /// votes was removed: this node's configuration is committed, does not
    /// hold `from`, and lies beyond the asker's log (so the asker has not
    /// seen it, and no later change of the asker's can have added it back).
    /// A server being added whose log lags is not taken for a removed one:
    /// the configuration that adds it is beyond this node's, not before.
    pub fn removed(&self, from: NodeId, last_log_index: Index) -> Option<String> {
        let config = self.config.as_ref()?;
        let removed = self.committed
            && !config.is_joint()
            && !config.contains(from)
            && self.config_index > last_log_index
            && config.voters().next().is_some();
        removed.then(|| {
            format!(
                "the configuration committed at index {} has members {:?}",
                self.config_index,
                config.voters().collect::<Vec<_>>()
            )
        })
    }
}

/// A shared, always-current view of the [`Directory`].
pub type DirectoryWatch = watch::Receiver<Arc<Directory>>;

/// A directory that holds only the config file's addresses (before the
/// event loop first publishes, and in services built without a loop).
pub fn static_directory(addresses: Addresses) -> DirectoryWatch {
    watch::channel(Arc::new(Directory {
        addresses,
        ..Directory::default()
    }))
    .1
}

/// The replicated address book: the applied image's, overlaid with the
/// address commands appended after `applied` (in log order, the later
/// winning, as [`KvImage::apply`] does). The result may name ids that are
/// not members.
pub fn replicated(image: &KvImage, log: &Log<KvCommand>, applied: Index) -> Book {
    let mut book = Book {
        addresses: image
            .addresses
            .iter()
            .map(|(id, address)| (*id, address.clone()))
            .collect(),
        incarnations: image
            .incarnations
            .iter()
            .map(|(id, incarnation)| (*id, incarnation.clone()))
            .collect(),
    };
    for index in applied + 1..=log.last_index() {
        if let Some(entry) = log.entry(index)
            && let Payload::Command(command) = &entry.payload
            && let KvOp::SetMemberAddress {
                id,
                address,
                incarnation,
            } = command.op()
        {
            book.addresses.insert(*id, address.clone());
            if incarnation.is_empty() {
                book.incarnations.remove(id);
            } else {
                book.incarnations.insert(*id, incarnation.clone());
            }
        }
    }
    book
}

/// The book a node uses: its config file's addresses, overlaid with the
/// replicated ones (incarnations are only ever replicated).
pub fn derive(
    config_file: &Addresses,
    image: &KvImage,
    log: &Log<KvCommand>,
    applied: Index,
) -> Book {
    let replicated = replicated(image, log, applied);
    let mut addresses = config_file.clone();
    addresses.extend(replicated.addresses);
    Book {
        addresses,
        incarnations: replicated.incarnations,
    }
}

/// The address records a leader appends before changing to `members`:
/// one for each server being added (`new`, from the request: its address
/// and incarnation, always recorded, so that an id added again is never
/// held to an earlier server's incarnation), and one for each other member
/// whose address the replicated book lacks or holds differently from
/// `known` (the leader's own book), keeping the incarnation recorded for
/// it. Err names a member whose address nobody knows.
pub fn addresses_to_replicate(
    members: impl IntoIterator<Item = NodeId>,
    known: &Addresses,
    replicated: &Book,
    new: &[MemberAddress],
) -> Result<Vec<MemberAddress>, NodeId> {
    let mut records = Vec::new();
    for id in members {
        if let Some(added) = new.iter().find(|added| added.id == id) {
            records.push(added.clone());
            continue;
        }
        let address = known.get(&id).ok_or(id)?;
        if replicated.addresses.get(&id) != Some(address) {
            records.push(MemberAddress {
                id,
                address: address.clone(),
                incarnation: replicated
                    .incarnations
                    .get(&id)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }
    Ok(records)
}

/// A member address as an operator gives it: `host:port`, with a port.
/// Resolved only when connecting (names need not resolve yet).
pub fn check_address(address: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("invalid member address {address:?}: {why}"));
    if address.is_empty() || address.len() > 255 {
        return invalid("it must be HOST:PORT, at most 255 bytes");
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return invalid("it must be HOST:PORT");
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return invalid("the host is empty or holds spaces or slashes");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => invalid("the port must be a number from 1 to 65535"),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_model::Entry;

    fn set(id: NodeId, address: &str) -> Entry<KvCommand> {
        set_with(id, address, "")
    }

    fn set_with(id: NodeId, address: &str, incarnation: &str) -> Entry<KvCommand> {
        Entry {
            term: 1,
            payload: Payload::Command(record(id, address, incarnation).command()),
        }
    }

    fn record(id: NodeId, address: &str, incarnation: &str) -> MemberAddress {
        MemberAddress {
            id,
            address: address.into(),
            incarnation: incarnation.into(),
        }
    }

    #[test]
    fn the_book_is_the_config_file_overlaid_with_image_and_appended_entries() {
        let mut image = KvImage::default();
        image.addresses.insert(2, "b:2".into());
        let mut log = Log::default();
        log.append(set(3, "c:3"));
        log.append(set(2, "b2:2"));
        let file: Addresses = [(1, "a:1".to_string()), (2, "file:2".to_string())].into();
        let book = derive(&file, &image, &log, 0).addresses;
        assert_eq!(book.get(&1).map(String::as_str), Some("a:1"));
        assert_eq!(book.get(&2).map(String::as_str), Some("b2:2"));
        assert_eq!(book.get(&3).map(String::as_str), Some("c:3"));
        // Entries already applied are the image's.
        let book = derive(&file, &image, &log, 2).addresses;
        assert_eq!(book.get(&2).map(String::as_str), Some("b:2"));
        assert_eq!(book.get(&3), None);
    }

    #[test]
    fn a_record_without_an_incarnation_forgets_the_one_before() {
        let mut image = KvImage::default();
        image.apply(1, &record(3, "c:3", "aa").command()).unwrap();
        assert_eq!(image.incarnations.get(&3).map(String::as_str), Some("aa"));
        let mut log = Log::default();
        log.append(set_with(4, "d:4", "dd"));
        log.append(set(3, "c:3"));
        let book = replicated(&image, &log, 0);
        assert_eq!(book.incarnations.get(&4).map(String::as_str), Some("dd"));
        assert_eq!(
            book.incarnations.get(&3),
            None,
            "re-added: the old one is forgotten"
        );
        image.apply(2, &record(3, "c:3", "").command()).unwrap();
        assert_eq!(image.incarnations.get(&3), None, "the image agrees");
    }

    #[test]
    fn a_change_replicates_the_addresses_the_book_lacks() {
        let known: Addresses = [(1, "a:1".into()), (2, "b:2".into()), (4, "d:4".into())].into();
        let replicated = Book {
            addresses: [(1, "a:1".into()), (2, "old:2".into())].into(),
            incarnations: [(2, "22".into())].into(),
        };
        assert_eq!(
            addresses_to_replicate([1, 2, 4], &known, &replicated, &[]),
            Ok(vec![record(2, "b:2", "22"), record(4, "d:4", "")])
        );
        // A server added is recorded with its incarnation, even at an
        // address the book already holds for its id.
        assert_eq!(
            addresses_to_replicate([1, 2], &known, &replicated, &[record(1, "a:1", "a1")]),
            Ok(vec![record(1, "a:1", "a1"), record(2, "b:2", "22")])
        );
        assert_eq!(
            addresses_to_replicate([1, 5], &known, &replicated, &[]),
            Err(5)
        );
    }

    /// A server is told it was removed only when this node's committed
    /// configuration lies beyond its log and leaves it out: not a new
    /// member that lags, not while a change is under way.
    #[test]
    fn only_a_removed_server_is_told_so() {
        let directory = Directory {
            config: Some(Config::new([1, 2, 3])),
            config_index: 40,
            committed: true,
            ..Directory::default()
        };
        assert!(
            directory.removed(4, 39).is_some(),
            "removed at 40, its log ends at 39"
        );
        assert!(directory.removed(4, 40).is_none(), "its log holds index 40");
        assert!(directory.removed(2, 10).is_none(), "a member");
        let uncommitted = Directory {
            committed: false,
            ..directory.clone()
        };
        assert!(uncommitted.removed(4, 39).is_none());
        let joint = Directory {
            config: Some(Config::joint(
                [1u64, 2, 3].into_iter().collect(),
                [1u64, 2].into_iter().collect(),
            )),
            ..directory.clone()
        };
        assert!(joint.removed(4, 39).is_none());
        assert!(
            Directory::default().removed(4, 0).is_none(),
            "no configuration yet"
        );
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("127.0.0.1:7004").is_ok());
        assert!(check_address("node-4.peers.svc:7001").is_ok());
        for bad in ["", "host", ":7", "h:0", "h:x", "a b:1", "http://h:1"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
