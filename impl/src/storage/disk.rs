//! The disk format's messages (`proto/raft_disk.proto`) and their
//! conversion to and from the core's types.
//!
//! **Its own messages, not the wire's.** Until format version 2 the log's
//! records held the peer protocol's `Entry`, so a change to the wire was a
//! change to every data directory. The disk now has its own definitions, and
//! only storage sees them (this module is private to it): the peer protocol
//! can change without a node misreading its own disk, and the disk format
//! changes only with a new `FORMAT_VERSION`.
//!
//! **Why protobuf and not a hand-written codec.** The records' variable part
//! (commands with optional fields, snapshot images of any size) is what
//! protobuf encodes well, prost is already built into the node, its
//! encoding writes straight into the record being framed, and its field
//! numbers make an addition a compatible change by construction. And it
//! keeps reading version 1 free: version 1's entries were protobuf messages
//! with these very field numbers, so they decode here unchanged. (That a
//! decoder skips unknown fields is no danger: a newer format carries a newer
//! version, which this one refuses before reading any record.)
//!
//! Every value read back is checked as a peer's would be (index range, node
//! id 0): the checksums make damage unlikely to get this far, not impossible.

use raft_model::{Config, Entry, Payload};

use crate::kv::{CommandResult, KvCommand, KvOp};
use crate::limits::MAX_INDEX;

/// The messages generated from `proto/raft_disk.proto`.
pub(super) mod pb {
    tonic::include_proto!("raft.disk");
}

/// An entry as the generated type. Entries are written from their
/// commands' encodings (`crate::command::EntryMessage`, see
/// `records::entry_record`); this is what those bytes must decode as, and
/// the tests compare them.
#[cfg(test)]
pub(super) fn entry_to_disk(entry: &Entry<KvCommand>) -> pb::Entry {
    let payload = match &entry.payload {
        Payload::Noop => pb::entry::Payload::Noop(pb::Noop {}),
        Payload::Command(command) => pb::entry::Payload::Command(command_to_disk(command)),
        Payload::Config(config) => pb::entry::Payload::Config(pb::Config {
            members: config.members.iter().copied().collect(),
            old: config.old.iter().flatten().copied().collect(),
            learners: config.learners.iter().copied().collect(),
        }),
    };
    pb::Entry {
        term: entry.term,
        payload: Some(payload),
    }
}

pub(super) fn entry_from_disk(entry: pb::Entry) -> Result<Entry<KvCommand>, String> {
    let payload = match entry.payload.ok_or("the entry has no payload")? {
        pb::entry::Payload::Noop(_) => Payload::Noop,
        pb::entry::Payload::Command(command) => Payload::Command(command_from_disk(command)?),
        pb::entry::Payload::Config(config) => Payload::Config(config_from_disk(
            &config.members,
            &config.old,
            &config.learners,
        )?),
    };
    if entry.term > MAX_INDEX {
        return Err(format!("term {} is out of range", entry.term));
    }
    Ok(Entry {
        term: entry.term,
        payload,
    })
}

#[cfg(test)]
fn command_to_disk(command: &KvCommand) -> pb::Command {
    let op = match command.op() {
        KvOp::Put { key, value } => pb::command::Op::Put(pb::Put {
            key: key.clone(),
            value: value.clone(),
        }),
        KvOp::Delete { key } => pb::command::Op::Delete(pb::Delete { key: key.clone() }),
        KvOp::Cas {
            key,
            expected,
            new_value,
        } => pb::command::Op::Cas(pb::Cas {
            key: key.clone(),
            expected: expected.clone(),
            new_value: new_value.clone(),
        }),
        KvOp::SetMemberAddress {
            id,
            address,
            incarnation,
        } => pb::command::Op::MemberAddress(pb::MemberAddress {
            id: *id,
            address: address.clone(),
            incarnation: incarnation.clone(),
        }),
        KvOp::Txn(txn) => pb::command::Op::EtcdTxn(crate::etcd_convert::encode_txn(txn)),
    };
    pb::Command {
        client_id: command.client_id(),
        seq: command.seq(),
        op: Some(op),
    }
}

fn command_from_disk(command: pb::Command) -> Result<KvCommand, String> {
    let op = match command.op.ok_or("the command has no operation")? {
        pb::command::Op::Put(put) => KvOp::Put {
            key: put.key,
            value: put.value,
        },
        pb::command::Op::Delete(delete) => KvOp::Delete { key: delete.key },
        pb::command::Op::Cas(cas) => KvOp::Cas {
            key: cas.key,
            expected: cas.expected,
            new_value: cas.new_value,
        },
        pb::command::Op::MemberAddress(member) => KvOp::SetMemberAddress {
            id: member.id,
            address: member.address,
            incarnation: member.incarnation,
        },
        pb::command::Op::EtcdTxn(bytes) => {
            return KvCommand::etcd_from_bytes(command.client_id, command.seq, bytes);
        }
    };
    Ok(KvCommand::new(command.client_id, command.seq, op))
}

/// A session's cached result. Its `txn` is never cached (etcd writes have no
/// session).
pub(super) fn result_to_disk(result: &CommandResult) -> pb::CommandResult {
    pb::CommandResult {
        previous: result.previous.clone(),
        succeeded: result.succeeded,
        revision: result.revision,
    }
}

pub(super) fn result_from_disk(result: Option<pb::CommandResult>) -> CommandResult {
    let result = result.unwrap_or_default();
    CommandResult {
        previous: result.previous,
        succeeded: result.succeeded,
        revision: result.revision,
        txn: None,
    }
}

/// The configuration of a snapshot's member list (node id 0 is no member).
/// A configuration from its members (C_new), when joint C_old (empty
/// otherwise), and its learners.
pub(super) fn config_from_disk(
    members: &[u64],
    old: &[u64],
    learners: &[u64],
) -> Result<Config, String> {
    if members.contains(&0) || old.contains(&0) || learners.contains(&0) {
        return Err("node id 0 is not a valid member".into());
    }
    if members.is_empty() {
        return Err("a configuration without members".into());
    }
    let config = Config::new(members.iter().copied());
    let config = if old.is_empty() {
        config
    } else {
        Config::joint(old.iter().copied().collect(), config.members)
    };
    if let Some(voter) = learners.iter().find(|id| config.contains(**id)) {
        return Err(format!("node {voter} is both a voter and a learner"));
    }
    Ok(config.with_learners(learners.iter().copied().collect()))
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::command::EntryMessage;

    /// The log's records hold, byte for byte, the disk format's generated
    /// `Entry` of each entry (its commands' encodings are written as they
    /// are, crate::command): the format did not change, and a change to
    /// `raft_disk.proto` that would make them differ fails here.
    #[test]
    fn entries_are_written_in_the_disk_format() {
        for entry in crate::command::tests::entries() {
            let message = EntryMessage(entry.clone());
            let generated = entry_to_disk(&entry);
            assert_eq!(
                message.encode_to_vec(),
                generated.encode_to_vec(),
                "{entry:?}"
            );
            let read = pb::Entry::decode(message.encode_to_vec().as_slice()).unwrap();
            assert_eq!(entry_from_disk(read), Ok(entry));
        }
    }

    #[test]
    fn configuration_entries_round_trip_and_malformed_ones_are_refused() {
        for config in [
            Config::new([1, 2, 3]),
            Config::joint(
                [1u64, 2, 3].into_iter().collect(),
                [2u64, 3, 4].into_iter().collect(),
            ),
            Config::new([1, 2, 3]).with_learners([4u64, 5].into_iter().collect()),
        ] {
            let entry = Entry {
                term: 2,
                payload: Payload::Config(config),
            };
            assert_eq!(entry_from_disk(entry_to_disk(&entry)).unwrap(), entry);
        }
        let bad = pb::Entry {
            term: 1,
            payload: Some(pb::entry::Payload::Config(pb::Config {
                members: vec![],
                old: vec![1],
                learners: vec![],
            })),
        };
        assert!(
            entry_from_disk(bad).is_err(),
            "a configuration without members"
        );
        let zero = pb::Entry {
            term: 1,
            payload: Some(pb::entry::Payload::Config(pb::Config {
                members: vec![0, 1],
                old: vec![],
                learners: vec![],
            })),
        };
        assert!(entry_from_disk(zero).is_err(), "node id 0");
        let both = pb::Entry {
            term: 1,
            payload: Some(pb::entry::Payload::Config(pb::Config {
                members: vec![1, 2, 3],
                old: vec![],
                learners: vec![3],
            })),
        };
        assert_eq!(
            entry_from_disk(both).unwrap_err(),
            "node 3 is both a voter and a learner"
        );
    }
}
