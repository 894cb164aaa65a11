//! Conversions between the wire (protobuf) and the core's types.
//!
//! Every inbound value is checked here before the core sees it: a malformed
//! message becomes a [`ConvertError`] (and a gRPC `INVALID_ARGUMENT`), never
//! a panic. Indexes are capped at [`MAX_INDEX`] so that no arithmetic in the
//! core can overflow, whatever a peer sends.

use imbl::Vector;
use raft_model::{Body, Config, Entry, Index, Message, NodeId, Payload, SnapshotMeta};

use crate::command::EntryMessage;
use crate::kv::{KvCommand, KvImage, KvOp};
use crate::limits::{MAX_ENTRIES_PER_REQUEST, MAX_INDEX};
use crate::proto::peer as pb;

/// The message type the node exchanges with its core.
pub type Msg = Message<KvCommand, KvImage>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("`{field}` = {value} is out of range (at most {MAX_INDEX})")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("too many entries in one request: {0} (at most {MAX_ENTRIES_PER_REQUEST})")]
    TooManyEntries(usize),
    #[error("node id 0 is not a valid member")]
    ZeroMember,
    #[error("a configuration names a voter as a learner")]
    LearnerIsVoter,
    #[error("inconsistent AppendEntries response: {0}")]
    BadConflictHint(&'static str),
    #[error("member address command: {0}")]
    BadMemberAddress(String),
    #[error("invalid etcd transaction in a command: {0}")]
    EtcdTxn(String),
}

fn index(field: &'static str, value: u64) -> Result<Index, ConvertError> {
    if value > MAX_INDEX {
        return Err(ConvertError::OutOfRange { field, value });
    }
    Ok(value)
}

// --- commands and entries ---

/// The protobuf `Command` of a command's fields. [`KvCommand::new`] encodes
/// it once, when the command is made; nothing converts a command again.
pub fn command_to_proto(client_id: u64, seq: u64, op: &KvOp) -> pb::Command {
    let op = match op {
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
        client_id,
        seq,
        op: Some(op),
    }
}

pub fn command_from_proto(command: pb::Command) -> Result<KvCommand, ConvertError> {
    let op = match command.op.ok_or(ConvertError::Missing("command.op"))? {
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
        pb::command::Op::MemberAddress(member) => {
            if member.id == 0 {
                return Err(ConvertError::ZeroMember);
            }
            crate::members::check_address(&member.address)
                .map_err(ConvertError::BadMemberAddress)?;
            crate::incarnation::check(&member.incarnation)
                .map_err(ConvertError::BadMemberAddress)?;
            KvOp::SetMemberAddress {
                id: member.id,
                address: member.address,
                incarnation: member.incarnation,
            }
        }
        pb::command::Op::EtcdTxn(bytes) => {
            return KvCommand::etcd_from_bytes(command.client_id, command.seq, bytes)
                .map_err(ConvertError::EtcdTxn);
        }
    };
    Ok(KvCommand::new(command.client_id, command.seq, op))
}

/// An entry as the generated type: what [`EntryMessage`] must encode alike
/// (the tests compare them).
#[cfg(test)]
pub fn entry_to_proto(entry: &Entry<KvCommand>) -> pb::Entry {
    let payload = match &entry.payload {
        Payload::Noop => pb::entry::Payload::Noop(pb::Noop {}),
        Payload::Command(command) => pb::entry::Payload::Command(command_to_proto(
            command.client_id(),
            command.seq(),
            command.op(),
        )),
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

pub fn entry_from_proto(entry: pb::Entry) -> Result<Entry<KvCommand>, ConvertError> {
    let payload = match entry
        .payload
        .ok_or(ConvertError::Missing("entry.payload"))?
    {
        pb::entry::Payload::Noop(_) => Payload::Noop,
        pb::entry::Payload::Command(command) => Payload::Command(command_from_proto(command)?),
        pb::entry::Payload::Config(config) => Payload::Config(config_from_members(
            &config.members,
            &config.old,
            &config.learners,
        )?),
    };
    Ok(Entry {
        term: index("entry.term", entry.term)?,
        payload,
    })
}

/// A configuration from its members (C_new), when joint C_old (empty
/// otherwise), and its learners.
pub fn config_from_members(
    members: &[u64],
    old: &[u64],
    learners: &[u64],
) -> Result<Config, ConvertError> {
    if members.contains(&0) || old.contains(&0) || learners.contains(&0) {
        return Err(ConvertError::ZeroMember);
    }
    if members.is_empty() {
        return Err(ConvertError::Missing("config.members"));
    }
    let config = Config::new(members.iter().copied());
    let config = if old.is_empty() {
        config
    } else {
        Config::joint(old.iter().copied().collect(), config.members)
    };
    if learners.iter().any(|id| config.contains(*id)) {
        return Err(ConvertError::LearnerIsVoter);
    }
    Ok(config.with_learners(learners.iter().copied().collect()))
}

pub fn snapshot_meta_to_proto(meta: &SnapshotMeta, size: u64) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_index: meta.last_index,
        last_term: meta.last_term,
        members: meta.config.members.iter().copied().collect(),
        old_members: meta.config.old.iter().flatten().copied().collect(),
        learners: meta.config.learners.iter().copied().collect(),
        size,
    }
}

// --- message headers ---

pub fn header(cluster_id: &str, message: &Msg) -> pb::Header {
    pb::Header {
        cluster_id: cluster_id.to_owned(),
        from: message.from,
        to: message.to,
        term: message.term,
        // Stamped by the sender (crate::incarnation::Identity::stamp).
        from_incarnation: String::new(),
        to_incarnation: String::new(),
    }
}

/// The addressing of an inbound message, checked for range.
pub struct Addressing {
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
}

pub fn addressing(header: &pb::Header) -> Result<Addressing, ConvertError> {
    Ok(Addressing {
        from: header.from,
        to: header.to,
        term: index("header.term", header.term)?,
    })
}

fn message(addressing: &Addressing, body: Body<KvCommand, KvImage>) -> Msg {
    Message {
        from: addressing.from,
        to: addressing.to,
        term: addressing.term,
        body,
    }
}

// --- RequestVote ---

pub fn vote_request_to_proto(cluster_id: &str, message: &Msg) -> Option<pb::RequestVoteRequest> {
    let Body::RequestVoteRequest {
        last_log_index,
        last_log_term,
        pre_vote,
    } = message.body
    else {
        return None;
    };
    Some(pb::RequestVoteRequest {
        header: Some(header(cluster_id, message)),
        last_log_index,
        last_log_term,
        pre_vote,
    })
}

pub fn vote_request_from_proto(
    addressing: &Addressing,
    request: &pb::RequestVoteRequest,
) -> Result<Msg, ConvertError> {
    Ok(message(
        addressing,
        Body::RequestVoteRequest {
            last_log_index: index("last_log_index", request.last_log_index)?,
            last_log_term: index("last_log_term", request.last_log_term)?,
            pre_vote: request.pre_vote,
        },
    ))
}

pub fn vote_response_to_proto(cluster_id: &str, message: &Msg) -> Option<pb::RequestVoteResponse> {
    let Body::RequestVoteResponse {
        vote_granted,
        pre_vote,
    } = message.body
    else {
        return None;
    };
    Some(pb::RequestVoteResponse {
        header: Some(header(cluster_id, message)),
        vote_granted,
        pre_vote,
    })
}

pub fn vote_response_from_proto(
    addressing: &Addressing,
    response: &pb::RequestVoteResponse,
) -> Msg {
    message(
        addressing,
        Body::RequestVoteResponse {
            vote_granted: response.vote_granted,
            pre_vote: response.pre_vote,
        },
    )
}

// --- AppendEntries ---

/// An AppendEntries request as a leader sends it: the fields and tags of
/// `pb::AppendEntriesRequest`, whose bytes it encodes to, with each entry
/// written from its command's encoding ([`EntryMessage`]) rather than
/// converted to the generated `Entry` — once per follower, that was a copy
/// of every key and value and, for an etcd write, a whole transaction
/// rebuilt and encoded. Receivers decode the generated type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendEntriesOut {
    #[prost(message, optional, tag = "1")]
    pub header: Option<pb::Header>,
    #[prost(uint64, tag = "2")]
    pub prev_log_index: u64,
    #[prost(uint64, tag = "3")]
    pub prev_log_term: u64,
    #[prost(message, repeated, tag = "4")]
    pub entries: Vec<EntryMessage>,
    #[prost(uint64, tag = "5")]
    pub leader_commit: u64,
    #[prost(uint64, tag = "6")]
    pub read_seq: u64,
}

pub fn append_request_to_proto(cluster_id: &str, message: &Msg) -> Option<AppendEntriesOut> {
    let Body::AppendEntriesRequest {
        prev_log_index,
        prev_log_term,
        ref entries,
        leader_commit,
        read_seq,
    } = message.body
    else {
        return None;
    };
    Some(AppendEntriesOut {
        header: Some(header(cluster_id, message)),
        prev_log_index,
        prev_log_term,
        // Shares the commands (a reference count each), copies nothing.
        entries: entries.iter().cloned().map(EntryMessage).collect(),
        leader_commit,
        read_seq,
    })
}

pub fn append_request_from_proto(
    addressing: &Addressing,
    request: pb::AppendEntriesRequest,
) -> Result<Msg, ConvertError> {
    if request.entries.len() > MAX_ENTRIES_PER_REQUEST {
        return Err(ConvertError::TooManyEntries(request.entries.len()));
    }
    let entries = request
        .entries
        .into_iter()
        .map(entry_from_proto)
        .collect::<Result<Vector<_>, _>>()?;
    Ok(message(
        addressing,
        Body::AppendEntriesRequest {
            prev_log_index: index("prev_log_index", request.prev_log_index)?,
            prev_log_term: index("prev_log_term", request.prev_log_term)?,
            entries,
            leader_commit: index("leader_commit", request.leader_commit)?,
            read_seq: request.read_seq,
        },
    ))
}

pub fn append_response_to_proto(
    cluster_id: &str,
    message: &Msg,
) -> Option<pb::AppendEntriesResponse> {
    let Body::AppendEntriesResponse {
        success,
        match_index,
        conflict_term,
        conflict_index,
        read_seq,
    } = message.body
    else {
        return None;
    };
    Some(pb::AppendEntriesResponse {
        header: Some(header(cluster_id, message)),
        success,
        match_index,
        read_seq,
        conflict_term,
        conflict_index,
    })
}

pub fn append_response_from_proto(
    addressing: &Addressing,
    response: &pb::AppendEntriesResponse,
) -> Result<Msg, ConvertError> {
    let match_index = index("match_index", response.match_index)?;
    let conflict_term = index("conflict_term", response.conflict_term)?;
    let conflict_index = index("conflict_index", response.conflict_index)?;
    check_conflict_hint(
        addressing.term,
        response.success,
        match_index,
        conflict_term,
        conflict_index,
    )?;
    Ok(message(
        addressing,
        Body::AppendEntriesResponse {
            success: response.success,
            match_index,
            conflict_term,
            conflict_index,
            read_seq: response.read_seq,
        },
    ))
}

/// What the core's follower can send (`Log::conflict_at`): a hint only on a
/// failure; a conflict term with the first index of the follower's run of
/// it, which is an entry it holds (at least 1, at most its last index,
/// `match_index`), of a term no later than the response's own (a server
/// holds no entry of a term it has not reached); no term, no index. The
/// leader would only back off less far on anything else (its back-off is
/// clamped), but a peer that sends it is broken, and saying so beats acting
/// on it.
fn check_conflict_hint(
    term: u64,
    success: bool,
    match_index: Index,
    conflict_term: u64,
    conflict_index: Index,
) -> Result<(), ConvertError> {
    let problem = if success && (conflict_term != 0 || conflict_index != 0) {
        "a success carries a conflict hint"
    } else if conflict_term == 0 && conflict_index != 0 {
        "a conflict index without a conflict term"
    } else if conflict_term != 0 && conflict_index == 0 {
        "a conflict term without its first index"
    } else if conflict_index > match_index {
        "the conflict index is past the follower's last index"
    } else if conflict_term > term {
        "the conflict term is later than the response's term"
    } else {
        return Ok(());
    };
    Err(ConvertError::BadConflictHint(problem))
}

// --- InstallSnapshot ---

pub fn snapshot_response_to_proto(
    cluster_id: &str,
    message: &Msg,
) -> Option<pb::InstallSnapshotResponse> {
    let Body::InstallSnapshotResponse { match_index } = message.body else {
        return None;
    };
    Some(pb::InstallSnapshotResponse {
        header: Some(header(cluster_id, message)),
        match_index,
    })
}

pub fn snapshot_response_from_proto(
    addressing: &Addressing,
    response: &pb::InstallSnapshotResponse,
) -> Result<Msg, ConvertError> {
    Ok(message(
        addressing,
        Body::InstallSnapshotResponse {
            match_index: index("match_index", response.match_index)?,
        },
    ))
}

// --- TimeoutNow ---

pub fn timeout_now_to_proto(cluster_id: &str, message: &Msg) -> Option<pb::TimeoutNowRequest> {
    let Body::TimeoutNow {} = message.body else {
        return None;
    };
    Some(pb::TimeoutNowRequest {
        header: Some(header(cluster_id, message)),
    })
}

pub fn timeout_now_from_proto(addressing: &Addressing) -> Msg {
    message(addressing, Body::TimeoutNow {})
}

pub fn check_snapshot_meta(meta: &pb::SnapshotMeta) -> Result<SnapshotMeta, ConvertError> {
    Ok(SnapshotMeta {
        last_index: index("snapshot.last_index", meta.last_index)?,
        last_term: index("snapshot.last_term", meta.last_term)?,
        config: config_from_members(&meta.members, &meta.old_members, &meta.learners)?,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_received_etcd_write_keeps_the_bytes_it_was_decoded_from() {
        use crate::kv::{Txn, TxnOp};
        let txn = Txn {
            success: vec![TxnOp::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                prev_kv: true,
            }],
            ..Txn::default()
        };
        let leader = crate::etcd_convert::command(txn.clone()).unwrap();
        let received = command_from_proto(pb::Command::decode(leader.encoded()).unwrap()).unwrap();
        assert_eq!(received, leader);
        assert_eq!(received.op(), &KvOp::Txn(txn));
        // The same bytes as rebuilding the command would have made.
        assert_eq!(received.encoded(), leader.encoded());
        let rebuilt = KvCommand::new(0, 0, received.op().clone());
        assert_eq!(received.encoded(), rebuilt.encoded());
    }

    fn addressing() -> Addressing {
        Addressing {
            from: 1,
            to: 2,
            term: 3,
        }
    }

    #[test]
    fn append_entries_round_trip() {
        let entries: Vector<_> = [
            Entry {
                term: 1,
                payload: Payload::Noop,
            },
            Entry {
                term: 3,
                payload: Payload::Command(KvCommand::new(
                    9,
                    4,
                    KvOp::Cas {
                        key: "k".into(),
                        expected: None,
                        new_value: Some("v".into()),
                    },
                )),
            },
            // The address of a member about to be added (issue 15).
            Entry {
                term: 3,
                payload: Payload::Command(KvCommand::new(
                    0,
                    0,
                    KvOp::SetMemberAddress {
                        id: 4,
                        address: "10.0.0.4:7001".into(),
                        incarnation: "0123456789abcdef0123456789abcdef".into(),
                    },
                )),
            },
            // Configuration entries: joint, then simple.
            Entry {
                term: 3,
                payload: Payload::Config(Config::joint(
                    [1u64, 2, 3].into_iter().collect(),
                    [1u64, 2, 4].into_iter().collect(),
                )),
            },
            Entry {
                term: 3,
                payload: Payload::Config(Config::new([1, 2, 4])),
            },
        ]
        .into_iter()
        .collect();
        let original = heartbeat(entries);
        let sent = append_request_to_proto("c", &original)
            .unwrap()
            .encode_to_vec();
        let wire = pb::AppendEntriesRequest::decode(sent.as_slice()).unwrap();
        let back = append_request_from_proto(&addressing(), wire).unwrap();
        assert_eq!(back, original);
    }

    /// What a leader sends is, byte for byte, the generated request with
    /// the generated entries: the wire did not change.
    #[test]
    fn an_append_entries_request_is_the_generated_types_bytes() {
        let entries: Vector<_> = crate::command::tests::entries().into_iter().collect();
        for (entries, header) in [
            (entries, Some(header("c", &heartbeat(Vector::new())))),
            (Vector::new(), None),
        ] {
            let message = heartbeat(entries.clone());
            let mut sent = append_request_to_proto("cluster", &message).unwrap();
            sent.header = header.clone();
            let generated = pb::AppendEntriesRequest {
                header,
                prev_log_index: 5,
                prev_log_term: 1,
                entries: entries.iter().map(entry_to_proto).collect(),
                leader_commit: 4,
                read_seq: 7,
            };
            assert_eq!(sent.encode_to_vec(), generated.encode_to_vec());
            assert_eq!(sent.encoded_len(), generated.encoded_len());
        }
    }

    fn heartbeat(entries: Vector<Entry<KvCommand>>) -> Msg {
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: Body::AppendEntriesRequest {
                prev_log_index: 5,
                prev_log_term: 1,
                entries,
                leader_commit: 4,
                read_seq: 7,
            },
        }
    }

    /// A member address command from a peer is checked like an operator's.
    #[test]
    fn a_malformed_member_address_is_refused() {
        for (id, address) in [(0, "h:1"), (4, "no-port"), (4, "")] {
            let command = pb::Command {
                client_id: 0,
                seq: 0,
                op: Some(pb::command::Op::MemberAddress(pb::MemberAddress {
                    id,
                    address: address.into(),
                    incarnation: String::new(),
                })),
            };
            assert!(command_from_proto(command).is_err(), "{id} {address:?}");
        }
    }

    #[test]
    fn append_response_round_trip_with_a_conflict_hint() {
        for (success, match_index, conflict_term, conflict_index) in
            [(true, 4, 0, 0), (false, 2, 0, 0), (false, 6, 2, 3)]
        {
            let original: Msg = Message {
                from: 1,
                to: 2,
                term: 3,
                body: Body::AppendEntriesResponse {
                    success,
                    match_index,
                    conflict_term,
                    conflict_index,
                    read_seq: 7,
                },
            };
            let wire = append_response_to_proto("c", &original).unwrap();
            assert_eq!(
                append_response_from_proto(&addressing(), &wire),
                Ok(original)
            );
        }
    }

    #[test]
    fn nonsense_conflict_hints_are_refused() {
        let rejection = |conflict_term, conflict_index| pb::AppendEntriesResponse {
            success: false,
            match_index: 6,
            conflict_term,
            conflict_index,
            ..Default::default()
        };
        let cases = [
            (
                pb::AppendEntriesResponse {
                    success: true,
                    ..rejection(2, 3)
                },
                "a success carries a conflict hint",
            ),
            (rejection(0, 3), "a conflict index without a conflict term"),
            (rejection(2, 0), "a conflict term without its first index"),
            (
                rejection(2, 7),
                "the conflict index is past the follower's last index",
            ),
            (
                rejection(4, 3),
                "the conflict term is later than the response's term",
            ),
        ];
        for (wire, problem) in cases {
            let refused = append_response_from_proto(&addressing(), &wire).unwrap_err();
            assert_eq!(refused, ConvertError::BadConflictHint(problem));
            assert!(refused.to_string().contains(problem), "{refused}");
        }
        assert!(matches!(
            append_response_from_proto(&addressing(), &rejection(u64::MAX, 3)),
            Err(ConvertError::OutOfRange {
                field: "conflict_term",
                ..
            })
        ));
    }

    #[test]
    fn hostile_values_are_refused() {
        let request = pb::AppendEntriesRequest {
            prev_log_index: u64::MAX,
            ..Default::default()
        };
        assert!(matches!(
            append_request_from_proto(&addressing(), request),
            Err(ConvertError::OutOfRange { .. })
        ));
        let request = pb::AppendEntriesRequest {
            entries: vec![pb::Entry {
                term: 1,
                payload: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            append_request_from_proto(&addressing(), request).unwrap_err(),
            ConvertError::Missing("entry.payload")
        );
    }
}
