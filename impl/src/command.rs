//! A write as the log holds it, encoded once.
//!
//! A command is created once (a client's request at the leader, a
//! follower's received entry, a replayed record) and then travels a lot: the
//! core clones its entries into every AppendEntries request and every batch
//! it persists, the leader sends each entry to every follower, and the log
//! file stores it. Each of those used to copy the command (key and value)
//! and convert it to protobuf again — an etcd write, whose transaction is
//! itself a protobuf message, was built and encoded four times or more. So
//! a [`KvCommand`] is shared (`Arc`: a clone is a reference count) and
//! carries its protobuf encoding, made when it is created; the peer
//! transport and the log file copy those bytes into what they write
//! ([`EntryMessage`]) instead of converting again (issues 17 and 21).
//!
//! **One encoding for the wire and the disk.** The peer protocol's `Command`
//! and `Entry` (`raft_peer.proto`) and the disk format's
//! (`raft_disk.proto`) have the same field numbers and types, so their
//! encodings are the same bytes; the tests below pin [`EntryMessage`] to
//! both generated types, so a change to either format that breaks this
//! fails them rather than going unnoticed. Nothing on the wire or on disk
//! changed: the bytes are the ones the generated types wrote before.
//!
//! **Equality is the command's**, not its bytes': the bytes are a function
//! of (`client_id`, `seq`, `op`), so comparing, ordering, hashing and
//! (de)serializing use those three fields alone, exactly as the derived
//! implementations did when they were the struct's fields.

use std::fmt;
use std::sync::Arc;

use prost::Message as _;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use raft_model::{Entry, Payload};
use serde::{Deserialize, Serialize};

use crate::kv::{KvOp, Txn};
use crate::proto::peer as pb;

/// A write, as stored in the log: the operation and the client session it
/// belongs to. `client_id == 0` means "no session" (a one-off write, e.g. from
/// grpcurl or any etcd client): applied every time it is committed.
#[derive(Clone)]
pub struct KvCommand(Arc<Shared>);

struct Shared {
    client_id: u64,
    seq: u64,
    op: KvOp,
    /// The protobuf `Command` message of the three fields above.
    encoded: Vec<u8>,
}

impl KvCommand {
    /// A command, encoded now: on the task that creates it (a client's
    /// service task, the peer service's), not on the event loop that will
    /// send and store it.
    pub fn new(client_id: u64, seq: u64, op: KvOp) -> Self {
        let encoded = crate::convert::command_to_proto(client_id, seq, &op).encode_to_vec();
        KvCommand(Arc::new(Shared {
            client_id,
            seq,
            op,
            encoded,
        }))
    }

    /// An etcd write (no session) whose transaction's encoding the caller
    /// already holds, so that it is not encoded again: `txn_bytes` must
    /// decode to `txn`. They are `etcd_convert::encode_txn(&txn)`, which the
    /// etcd service measures before proposing (`etcd_convert::command`), or
    /// the bytes a follower received and decoded `txn` from
    /// (`convert::command_from_proto`).
    pub(crate) fn etcd(txn: Txn, txn_bytes: Vec<u8>) -> Self {
        debug_assert_eq!(
            crate::proto::etcdserverpb::TxnRequest::decode(txn_bytes.as_slice()).ok(),
            Some(crate::etcd_convert::txn_request(&txn))
        );
        let encoded = pb::Command {
            client_id: 0,
            seq: 0,
            op: Some(pb::command::Op::EtcdTxn(txn_bytes)),
        }
        .encode_to_vec();
        KvCommand(Arc::new(Shared {
            client_id: 0,
            seq: 0,
            op: KvOp::Txn(txn),
            encoded,
        }))
    }

    /// A command whose operation is the etcd transaction encoded in
    /// `txn_bytes`, as the peer protocol and the log file both carry it: a
    /// write without a session keeps those bytes ([`KvCommand::etcd`])
    /// rather than encoding the transaction again (every follower for every
    /// entry, every restart for every etcd write it replays: issue 21).
    pub(crate) fn etcd_from_bytes(
        client_id: u64,
        seq: u64,
        txn_bytes: Vec<u8>,
    ) -> Result<Self, String> {
        let txn = crate::etcd_convert::decode_txn(&txn_bytes)?;
        if client_id == 0 && seq == 0 {
            return Ok(KvCommand::etcd(txn, txn_bytes));
        }
        Ok(KvCommand::new(client_id, seq, KvOp::Txn(txn)))
    }

    pub fn client_id(&self) -> u64 {
        self.0.client_id
    }

    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    pub fn op(&self) -> &KvOp {
        &self.0.op
    }

    /// The command as the protobuf message `Command` (peer and disk alike).
    pub fn encoded(&self) -> &[u8] {
        &self.0.encoded
    }

    /// The fields equality, order and hashing look at, in the order of the
    /// struct they once were.
    fn key(&self) -> (u64, u64, &KvOp) {
        (self.0.client_id, self.0.seq, &self.0.op)
    }
}

impl PartialEq for KvCommand {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.key() == other.key()
    }
}

impl Eq for KvCommand {}

impl PartialOrd for KvCommand {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KvCommand {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::hash::Hash for KvCommand {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Debug for KvCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvCommand")
            .field("client_id", &self.0.client_id)
            .field("seq", &self.0.seq)
            .field("op", &self.0.op)
            .finish()
    }
}

/// The serialized form: the three fields, as the derived implementation
/// of the former struct wrote them (same name, same fields).
#[derive(Serialize)]
#[serde(rename = "KvCommand")]
struct Fields<'a> {
    client_id: u64,
    seq: u64,
    op: &'a KvOp,
}

#[derive(Deserialize)]
#[serde(rename = "KvCommand")]
struct OwnedFields {
    client_id: u64,
    seq: u64,
    op: KvOp,
}

impl Serialize for KvCommand {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Fields {
            client_id: self.0.client_id,
            seq: self.0.seq,
            op: &self.0.op,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KvCommand {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = OwnedFields::deserialize(deserializer)?;
        Ok(KvCommand::new(fields.client_id, fields.seq, fields.op))
    }
}

/// A log entry as the protobuf message `Entry` (`raft_peer.proto`'s and
/// `raft_disk.proto`'s, the same bytes), written from the command's
/// encoding: the AppendEntries requests a leader sends (`convert`) and the
/// log file's records (`storage`) encode entries through it.
///
/// Only ever encoded: receivers decode the generated types, which check
/// what they read. `Default` and decoding exist because prost's
/// `Message` asks for them; decoding skips every field.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryMessage(pub Entry<KvCommand>);

impl Default for EntryMessage {
    fn default() -> Self {
        EntryMessage(Entry {
            term: 0,
            payload: Payload::Noop,
        })
    }
}

/// `Entry`'s field numbers.
const TERM: u32 = 1;
const NOOP: u32 = 2;
const COMMAND: u32 = 3;
const CONFIG: u32 = 4;

fn config_message(config: &raft_model::Config) -> pb::Config {
    pb::Config {
        members: config.members.iter().copied().collect(),
        old: config.old.iter().flatten().copied().collect(),
        learners: config.learners.iter().copied().collect(),
    }
}

/// A length-delimited field's key and length prefix, then `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    encoding::key_len(tag) + encoding::encoded_len_varint(len as u64) + len
}

impl prost::Message for EntryMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        let Entry { term, payload } = &self.0;
        // proto3: a zero scalar is not written.
        if *term != 0 {
            encoding::uint64::encode(TERM, term, buf);
        }
        match payload {
            Payload::Noop => {
                encoding::encode_key(NOOP, WireType::LengthDelimited, buf);
                encoding::encode_varint(0, buf);
            }
            Payload::Command(command) => {
                let bytes = command.encoded();
                encoding::encode_key(COMMAND, WireType::LengthDelimited, buf);
                encoding::encode_varint(bytes.len() as u64, buf);
                buf.put_slice(bytes);
            }
            // Rare (membership changes): converted as before.
            Payload::Config(config) => {
                encoding::message::encode(CONFIG, &config_message(config), buf)
            }
        }
    }

    fn encoded_len(&self) -> usize {
        let Entry { term, payload } = &self.0;
        let term = if *term != 0 {
            encoding::uint64::encoded_len(TERM, term)
        } else {
            0
        };
        term + match payload {
            Payload::Noop => delimited_len(NOOP, 0),
            Payload::Command(command) => delimited_len(COMMAND, command.encoded().len()),
            Payload::Config(config) => delimited_len(CONFIG, config_message(config).encoded_len()),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn clear(&mut self) {
        *self = EntryMessage::default();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use raft_model::Config;

    use super::*;
    use crate::kv::{Compare, CompareResult, CompareTarget, KeyRange, TxnOp};

    fn txn() -> Txn {
        Txn {
            compares: vec![Compare {
                range: KeyRange {
                    key: b"k".to_vec(),
                    range_end: Vec::new(),
                },
                target: CompareTarget::Version(0),
                result: CompareResult::Equal,
            }],
            success: vec![TxnOp::Put {
                key: b"k".to_vec(),
                value: vec![0xff, 0, 7],
                prev_kv: true,
            }],
            failure: vec![],
        }
    }

    /// One of every kind of operation, with and without a session.
    pub(crate) fn commands() -> Vec<KvCommand> {
        vec![
            KvCommand::new(
                7,
                3,
                KvOp::Put {
                    key: "k".into(),
                    value: "v".repeat(300),
                },
            ),
            KvCommand::new(0, 0, KvOp::Delete { key: "k".into() }),
            KvCommand::new(
                u64::MAX,
                1 << 40,
                KvOp::Cas {
                    key: "k".into(),
                    expected: None,
                    new_value: Some(String::new()),
                },
            ),
            KvCommand::new(
                0,
                0,
                KvOp::SetMemberAddress {
                    id: 4,
                    address: "10.0.0.4:7001".into(),
                    incarnation: "0123456789abcdef0123456789abcdef".into(),
                },
            ),
            KvCommand::new(0, 0, KvOp::Txn(txn())),
            KvCommand::etcd(txn(), crate::etcd_convert::encode_txn(&txn())),
        ]
    }

    /// Entries of every payload, terms zero to large.
    pub(crate) fn entries() -> Vec<Entry<KvCommand>> {
        let mut entries: Vec<_> = commands()
            .into_iter()
            .enumerate()
            .map(|(i, command)| Entry {
                term: (i as u64) << (8 * i),
                payload: Payload::Command(command),
            })
            .collect();
        for config in [
            Config::new([1, 2, 3]),
            Config::joint(
                [1u64, 2, 3].into_iter().collect(),
                [1u64, 2, 4].into_iter().collect(),
            ),
            Config::new([1, 2, 3]).with_learners([4u64].into_iter().collect()),
        ] {
            entries.push(Entry {
                term: 3,
                payload: Payload::Config(config),
            });
        }
        entries.push(Entry {
            term: 9,
            payload: Payload::Noop,
        });
        entries.push(Entry {
            term: 0,
            payload: Payload::Noop,
        });
        entries
    }

    /// The encoding made once is the one the generated type makes of the
    /// fields now; the etcd constructor's equals the general one's.
    #[test]
    fn the_cached_bytes_are_a_fresh_encoding() {
        for command in commands() {
            let fresh =
                crate::convert::command_to_proto(command.client_id(), command.seq(), command.op())
                    .encode_to_vec();
            assert_eq!(command.encoded(), fresh.as_slice(), "{command:?}");
            let decoded = pb::Command::decode(command.encoded()).unwrap();
            assert_eq!(
                crate::convert::command_from_proto(decoded).unwrap(),
                command
            );
        }
        let etcd = KvCommand::etcd(txn(), crate::etcd_convert::encode_txn(&txn()));
        assert_eq!(
            etcd.encoded(),
            KvCommand::new(0, 0, KvOp::Txn(txn())).encoded()
        );
    }

    /// The peer protocol and the log file read an etcd write through one
    /// function: with or without a session, the command is the one the
    /// bytes encode, and bytes that are no transaction are refused.
    #[test]
    fn an_etcd_write_is_read_back_from_its_bytes() {
        let bytes = crate::etcd_convert::encode_txn(&txn());
        for (client_id, seq) in [(0, 0), (7, 3)] {
            let read = KvCommand::etcd_from_bytes(client_id, seq, bytes.clone()).unwrap();
            let made = KvCommand::new(client_id, seq, KvOp::Txn(txn()));
            assert_eq!(read, made);
            assert_eq!(read.encoded(), made.encoded());
        }
        assert!(KvCommand::etcd_from_bytes(0, 0, vec![0xff, 0xff, 0xff]).is_err());
    }

    /// The wire's bytes: what `raft_peer.proto`'s generated `Entry` writes.
    #[test]
    fn an_entry_message_is_the_peer_protocols_entry() {
        for entry in entries() {
            let message = EntryMessage(entry.clone());
            let generated = crate::convert::entry_to_proto(&entry);
            assert_eq!(
                message.encode_to_vec(),
                generated.encode_to_vec(),
                "{entry:?}"
            );
            assert_eq!(message.encoded_len(), generated.encoded_len());
            let back = crate::convert::entry_from_proto(
                pb::Entry::decode(message.encode_to_vec().as_slice()).unwrap(),
            );
            assert_eq!(back, Ok(entry));
        }
    }

    /// Equality, order and hash are the fields', whatever shares what.
    #[test]
    fn equality_is_the_commands() {
        use std::hash::{BuildHasher, RandomState};
        let all = commands();
        let state = RandomState::new();
        for (i, a) in all.iter().enumerate() {
            let twin = KvCommand::new(a.client_id(), a.seq(), a.op().clone());
            assert_eq!(a, &twin);
            assert_eq!(a.cmp(&twin), std::cmp::Ordering::Equal);
            assert_eq!(state.hash_one(a), state.hash_one(&twin));
            for (j, b) in all.iter().enumerate() {
                let expected =
                    (a.client_id(), a.seq(), a.op()).cmp(&(b.client_id(), b.seq(), b.op()));
                assert_eq!(a.cmp(b), expected, "{i} {j}");
                assert_eq!(a == b, expected.is_eq(), "{i} {j}");
            }
        }
    }

    #[test]
    fn serde_sees_the_fields_only() {
        let command = KvCommand::new(
            7,
            3,
            KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        );
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(
            json,
            r#"{"client_id":7,"seq":3,"op":{"Put":{"key":"k","value":"v"}}}"#
        );
        let back: KvCommand = serde_json::from_str(&json).unwrap();
        assert_eq!(back, command);
        assert_eq!(back.encoded(), command.encoded());
    }
}
