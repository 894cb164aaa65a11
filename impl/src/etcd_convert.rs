//! etcd's v3 messages (`proto/etcd/`) to the state machine's types and back,
//! checking every inbound value, with etcd's error codes and messages.
//!
//! An etcd write travels the log as one [`Txn`] (a put or a delete range is
//! a transaction of one operation), encoded as etcd's own `TxnRequest`: the
//! peer protocol's and the disk format's `Command.etcd_txn` hold those bytes.
//! etcd's field numbers are fixed by its wire compatibility, so the encoding
//! is as stable as the disk needs. Decoding checks what the service checked
//! (a peer's or a file's bytes are hostile too).

use prost::Message as _;
use tonic::{Code, Status};

use crate::kv::{
    Compare, CompareResult, CompareTarget, Entry, KeyRange, KeyValue, KvCommand, KvOp, OpResult,
    RangeQuery, RangeResult, SortOrder, SortTarget, Txn, TxnOp, TxnResult,
};
use crate::limits::{MAX_ENTRY_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::proto::etcdserverpb as pb;
use crate::proto::mvccpb;

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// A request refused before it reaches the log, as etcd's gRPC error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Self {
        Refusal {
            code: Code::InvalidArgument,
            message: message.into(),
        }
    }
    /// etcd's `ErrGRPCEmptyKey`.
    pub fn empty_key() -> Self {
        Refusal::invalid("etcdserver: key is not provided")
    }
    /// etcd's `ErrGRPCRequestTooLarge`.
    pub fn too_large() -> Self {
        Refusal::invalid("etcdserver: request is too large")
    }
    fn unsupported(what: &str) -> Self {
        Refusal::invalid(format!(
            "etcdserver: {what} is not supported by raft-node (see impl/README.md, etcd API)"
        ))
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        Status::new(refusal.code, refusal.message)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn check_key(key: &[u8]) -> Result<(), Refusal> {
    if key.is_empty() {
        return Err(Refusal::empty_key());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Refusal::too_large());
    }
    Ok(())
}

fn check_range_end(range_end: &[u8]) -> Result<(), Refusal> {
    if range_end.len() > MAX_KEY_BYTES {
        return Err(Refusal::too_large());
    }
    Ok(())
}

fn key_range(key: Vec<u8>, range_end: Vec<u8>) -> Result<KeyRange, Refusal> {
    check_key(&key)?;
    check_range_end(&range_end)?;
    Ok(KeyRange { key, range_end })
}

/// A `RangeRequest` as a query of the current state. Its `revision`
/// (0: the latest) is checked at read time (`etcd_service`), against the
/// revision read; `serializable` is the service's.
pub fn range_query(request: &pb::RangeRequest) -> Result<RangeQuery, Refusal> {
    if request.min_mod_revision != 0
        || request.max_mod_revision != 0
        || request.min_create_revision != 0
        || request.max_create_revision != 0
    {
        return Err(Refusal::unsupported("filtering a range by revision"));
    }
    if request.limit < 0 {
        return Err(Refusal::invalid("etcdserver: limit must not be negative"));
    }
    let sort_order = match pb::range_request::SortOrder::try_from(request.sort_order) {
        Ok(pb::range_request::SortOrder::None) => SortOrder::None,
        Ok(pb::range_request::SortOrder::Ascend) => SortOrder::Ascend,
        Ok(pb::range_request::SortOrder::Descend) => SortOrder::Descend,
        Err(_) => return Err(Refusal::invalid("etcdserver: unknown sort order")),
    };
    let sort_target = match pb::range_request::SortTarget::try_from(request.sort_target) {
        Ok(pb::range_request::SortTarget::Key) => SortTarget::Key,
        Ok(pb::range_request::SortTarget::Version) => SortTarget::Version,
        Ok(pb::range_request::SortTarget::Create) => SortTarget::Create,
        Ok(pb::range_request::SortTarget::Mod) => SortTarget::Mod,
        Ok(pb::range_request::SortTarget::Value) => SortTarget::Value,
        Err(_) => return Err(Refusal::invalid("etcdserver: unknown sort target")),
    };
    Ok(RangeQuery {
        range: key_range(request.key.clone(), request.range_end.clone())?,
        limit: request.limit as u64,
        keys_only: request.keys_only,
        count_only: request.count_only,
        sort_order,
        sort_target,
    })
}

pub fn put_op(request: pb::PutRequest) -> Result<TxnOp, Refusal> {
    check_key(&request.key)?;
    if request.value.len() > MAX_VALUE_BYTES {
        return Err(Refusal::too_large());
    }
    if request.lease != 0 {
        // No lease exists on this node: etcd's answer for an unknown lease,
        // word for word, since clients classify errors by their exact
        // message (tests/etcd_rust_client.rs).
        return Err(Refusal {
            code: Code::NotFound,
            message: "etcdserver: requested lease not found".to_owned(),
        });
    }
    if request.ignore_value {
        return Err(Refusal::unsupported("ignore_value"));
    }
    if request.ignore_lease {
        return Err(Refusal::unsupported("ignore_lease"));
    }
    Ok(TxnOp::Put {
        key: request.key,
        value: request.value,
        prev_kv: request.prev_kv,
    })
}

pub fn delete_op(request: pb::DeleteRangeRequest) -> Result<TxnOp, Refusal> {
    Ok(TxnOp::DeleteRange {
        range: key_range(request.key, request.range_end)?,
        prev_kv: request.prev_kv,
    })
}

fn request_op(op: pb::RequestOp) -> Result<TxnOp, Refusal> {
    match op.request {
        Some(pb::request_op::Request::RequestRange(range)) => {
            if range.revision != 0 {
                return Err(Refusal::unsupported("a range at a revision inside a txn"));
            }
            Ok(TxnOp::Range(range_query(&range)?))
        }
        Some(pb::request_op::Request::RequestPut(put)) => put_op(put),
        Some(pb::request_op::Request::RequestDeleteRange(delete)) => delete_op(delete),
        Some(pb::request_op::Request::RequestTxn(_)) => Err(Refusal::unsupported("a nested txn")),
        None => Err(Refusal::invalid("etcdserver: a txn operation is empty")),
    }
}

fn compare(compare: pb::Compare) -> Result<Compare, Refusal> {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let result = match R::try_from(compare.result) {
        Ok(R::Equal) => CompareResult::Equal,
        Ok(R::Greater) => CompareResult::Greater,
        Ok(R::Less) => CompareResult::Less,
        Ok(R::NotEqual) => CompareResult::NotEqual,
        Err(_) => return Err(Refusal::invalid("etcdserver: unknown compare result")),
    };
    let target_kind = T::try_from(compare.target)
        .map_err(|_| Refusal::invalid("etcdserver: unknown compare target"))?;
    // etcd reads the union member the target names; an absent one is its
    // zero value.
    let union = compare.target_union;
    let target = match target_kind {
        T::Version => CompareTarget::Version(match union {
            Some(U::Version(v)) => v,
            _ => 0,
        }),
        T::Create => CompareTarget::Create(match union {
            Some(U::CreateRevision(v)) => v,
            _ => 0,
        }),
        T::Mod => CompareTarget::Mod(match union {
            Some(U::ModRevision(v)) => v,
            _ => 0,
        }),
        T::Value => {
            let value = match union {
                Some(U::Value(v)) => v,
                _ => Vec::new(),
            };
            if value.len() > MAX_VALUE_BYTES {
                return Err(Refusal::too_large());
            }
            CompareTarget::Value(value)
        }
        T::Lease => return Err(Refusal::unsupported("a compare on a lease")),
    };
    Ok(Compare {
        range: key_range(compare.key, compare.range_end)?,
        target,
        result,
    })
}

/// etcd refuses a branch that writes a key twice (two puts, or a put inside
/// a deleted range): `ErrGRPCDuplicateKey`.
fn check_duplicates(ops: &[TxnOp]) -> Result<(), Refusal> {
    // One operation writes no key twice (a lone put or delete: every etcd
    // Put and DeleteRange, checked on every member for every entry).
    if ops.len() < 2 {
        return Ok(());
    }
    let puts: Vec<&Vec<u8>> = ops
        .iter()
        .filter_map(|op| match op {
            TxnOp::Put { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    let mut sorted = puts.clone();
    sorted.sort();
    let duplicate = sorted.windows(2).any(|pair| pair[0] == pair[1])
        || ops.iter().any(|op| match op {
            TxnOp::DeleteRange { range, .. } => puts.iter().any(|key| range.contains(key)),
            _ => false,
        });
    if duplicate {
        return Err(Refusal::invalid(
            "etcdserver: duplicate key given in txn request",
        ));
    }
    Ok(())
}

pub fn txn(request: pb::TxnRequest) -> Result<Txn, Refusal> {
    if request
        .compare
        .len()
        .max(request.success.len())
        .max(request.failure.len())
        > MAX_TXN_OPS
    {
        return Err(Refusal::invalid(
            "etcdserver: too many operations in txn request",
        ));
    }
    let txn = Txn {
        compares: request
            .compare
            .into_iter()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: request
            .success
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
        failure: request
            .failure
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
    };
    check_duplicates(&txn.success)?;
    check_duplicates(&txn.failure)?;
    Ok(txn)
}

// --- the log's encoding of a transaction ---

fn range_request(query: &RangeQuery) -> pb::RangeRequest {
    pb::RangeRequest {
        key: query.range.key.clone(),
        range_end: query.range.range_end.clone(),
        limit: query.limit as i64,
        keys_only: query.keys_only,
        count_only: query.count_only,
        sort_order: match query.sort_order {
            SortOrder::None => pb::range_request::SortOrder::None,
            SortOrder::Ascend => pb::range_request::SortOrder::Ascend,
            SortOrder::Descend => pb::range_request::SortOrder::Descend,
        } as i32,
        sort_target: match query.sort_target {
            SortTarget::Key => pb::range_request::SortTarget::Key,
            SortTarget::Version => pb::range_request::SortTarget::Version,
            SortTarget::Create => pb::range_request::SortTarget::Create,
            SortTarget::Mod => pb::range_request::SortTarget::Mod,
            SortTarget::Value => pb::range_request::SortTarget::Value,
        } as i32,
        ..pb::RangeRequest::default()
    }
}

fn to_request_op(op: &TxnOp) -> pb::RequestOp {
    use pb::request_op::Request;
    let request = match op {
        TxnOp::Range(query) => Request::RequestRange(range_request(query)),
        TxnOp::Put {
            key,
            value,
            prev_kv,
        } => Request::RequestPut(pb::PutRequest {
            key: key.clone(),
            value: value.clone(),
            prev_kv: *prev_kv,
            ..pb::PutRequest::default()
        }),
        TxnOp::DeleteRange { range, prev_kv } => {
            Request::RequestDeleteRange(pb::DeleteRangeRequest {
                key: range.key.clone(),
                range_end: range.range_end.clone(),
                prev_kv: *prev_kv,
            })
        }
    };
    pb::RequestOp {
        request: Some(request),
    }
}

fn to_compare(compare: &Compare) -> pb::Compare {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let (target, union) = match &compare.target {
        CompareTarget::Version(v) => (T::Version, U::Version(*v)),
        CompareTarget::Create(v) => (T::Create, U::CreateRevision(*v)),
        CompareTarget::Mod(v) => (T::Mod, U::ModRevision(*v)),
        CompareTarget::Value(v) => (T::Value, U::Value(v.clone())),
    };
    pb::Compare {
        result: match compare.result {
            CompareResult::Equal => R::Equal,
            CompareResult::Greater => R::Greater,
            CompareResult::Less => R::Less,
            CompareResult::NotEqual => R::NotEqual,
        } as i32,
        target: target as i32,
        key: compare.range.key.clone(),
        range_end: compare.range.range_end.clone(),
        target_union: Some(union),
    }
}

/// A transaction as etcd's request: what `Command.etcd_txn` encodes, and
/// what a follower forwards to the leader. [`txn`], [`put_op`] and
/// [`delete_op`] refuse every field they do not carry over (leases,
/// `ignore_*`, revisions, filters), so the request rebuilt from what they
/// made asks what the client's asked.
pub fn txn_request(txn: &Txn) -> pb::TxnRequest {
    pb::TxnRequest {
        compare: txn.compares.iter().map(to_compare).collect(),
        success: txn.success.iter().map(to_request_op).collect(),
        failure: txn.failure.iter().map(to_request_op).collect(),
    }
}

/// The bytes of `Command.etcd_txn`.
pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    txn_request(txn).encode_to_vec()
}

/// The one operation of a lone put's or delete's command, as a request.
fn single_request(command: &KvCommand) -> Option<pb::request_op::Request> {
    match command.op() {
        KvOp::Txn(Txn {
            compares,
            success,
            failure,
        }) if compares.is_empty() && failure.is_empty() => match success.as_slice() {
            [op] => to_request_op(op).request,
            _ => None,
        },
        _ => None,
    }
}

/// The `PutRequest` an etcd put's command was made of (for forwarding;
/// see [`txn_request`]). None for any other command.
pub fn put_request(command: &KvCommand) -> Option<pb::PutRequest> {
    match single_request(command)? {
        pb::request_op::Request::RequestPut(put) => Some(put),
        _ => None,
    }
}

/// The `DeleteRangeRequest` an etcd delete's command was made of (for
/// forwarding; see [`txn_request`]). None for any other command.
pub fn delete_request(command: &KvCommand) -> Option<pb::DeleteRangeRequest> {
    match single_request(command)? {
        pb::request_op::Request::RequestDeleteRange(delete) => Some(delete),
        _ => None,
    }
}

/// A transaction from `Command.etcd_txn`, checked as a client's would be.
pub fn decode_txn(bytes: &[u8]) -> Result<Txn, String> {
    let request = pb::TxnRequest::decode(bytes).map_err(|err| err.to_string())?;
    txn(request).map_err(|refusal| refusal.message)
}

/// The log's command for an etcd write, if its encoded size fits one log
/// entry. The transaction is encoded once, here: the size check measures
/// the bytes the command then keeps for the log file and every follower.
pub fn command(txn: Txn) -> Result<KvCommand, Refusal> {
    let bytes = encode_txn(&txn);
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(Refusal::too_large());
    }
    Ok(KvCommand::etcd(txn, bytes))
}

// --- results ---

pub fn key_value(entry: &Entry) -> mvccpb::KeyValue {
    let KeyValue {
        value,
        create_revision,
        mod_revision,
        version,
    } = &entry.kv;
    mvccpb::KeyValue {
        key: entry.key.clone(),
        create_revision: *create_revision,
        mod_revision: *mod_revision,
        version: *version,
        value: value.clone(),
        lease: 0,
    }
}

pub fn range_response(result: &RangeResult, header: pb::ResponseHeader) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(header),
        kvs: result.kvs.iter().map(key_value).collect(),
        more: result.more,
        count: result.count as i64,
    }
}

pub fn op_response(result: &OpResult, header: &pb::ResponseHeader) -> pb::ResponseOp {
    use pb::response_op::Response;
    let response = match result {
        OpResult::Range(range) => Response::ResponseRange(range_response(range, *header)),
        OpResult::Put { prev_kv } => Response::ResponsePut(pb::PutResponse {
            header: Some(*header),
            prev_kv: prev_kv.as_ref().map(key_value),
        }),
        OpResult::DeleteRange { deleted, prev_kvs } => {
            Response::ResponseDeleteRange(pb::DeleteRangeResponse {
                header: Some(*header),
                deleted: *deleted as i64,
                prev_kvs: prev_kvs.iter().map(key_value).collect(),
            })
        }
    };
    pb::ResponseOp {
        response: Some(response),
    }
}

pub fn txn_response(result: &TxnResult, header: pb::ResponseHeader) -> pb::TxnResponse {
    pb::TxnResponse {
        responses: result
            .responses
            .iter()
            .map(|op| op_response(op, &header))
            .collect(),
        succeeded: result.succeeded,
        header: Some(header),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txn_survives_the_log_encoding() {
        let request = pb::TxnRequest {
            compare: vec![pb::Compare {
                result: pb::compare::CompareResult::Greater as i32,
                target: pb::compare::CompareTarget::Value as i32,
                key: b"k".to_vec(),
                range_end: Vec::new(),
                target_union: Some(pb::compare::TargetUnion::Value(vec![0xff, 0])),
            }],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                    prev_kv: true,
                    ..Default::default()
                })),
            }],
            failure: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestDeleteRange(
                    pb::DeleteRangeRequest {
                        key: b"a".to_vec(),
                        range_end: vec![0],
                        prev_kv: false,
                    },
                )),
            }],
        };
        let txn = txn(request.clone()).unwrap();
        assert_eq!(decode_txn(&encode_txn(&txn)).unwrap(), txn);
        // What a follower forwards is the client's request.
        assert_eq!(txn_request(&txn), request);
    }

    /// A lone put or delete goes into its command uncopied; the request a
    /// follower forwards is rebuilt from the command, and is the client's.
    #[test]
    fn a_forwarded_put_or_delete_is_the_clients_request() {
        let put = pb::PutRequest {
            key: b"k".to_vec(),
            value: vec![0xff, 0],
            prev_kv: true,
            ..Default::default()
        };
        let delete = pb::DeleteRangeRequest {
            key: b"a".to_vec(),
            range_end: b"z".to_vec(),
            prev_kv: true,
        };
        let lone = |op| Txn {
            success: vec![op],
            ..Txn::default()
        };
        let put_command = command(lone(put_op(put.clone()).unwrap())).unwrap();
        let delete_command = command(lone(delete_op(delete.clone()).unwrap())).unwrap();
        assert_eq!(put_request(&put_command), Some(put));
        assert_eq!(delete_request(&delete_command), Some(delete));
        assert_eq!(put_request(&delete_command), None);
        assert_eq!(delete_request(&put_command), None);
    }

    /// The size check refuses what it refused when it encoded the
    /// transaction only to measure it: an encoding longer than
    /// MAX_ENTRY_BYTES, not one byte less.
    #[test]
    fn the_size_check_measures_the_encoded_transaction() {
        let txn_of = |len| Txn {
            success: vec![TxnOp::Put {
                key: b"k".to_vec(),
                value: vec![7; len],
                prev_kv: false,
            }],
            ..Txn::default()
        };
        let largest = (0..=MAX_ENTRY_BYTES)
            .rev()
            .find(|len| encode_txn(&txn_of(*len)).len() <= MAX_ENTRY_BYTES)
            .unwrap();
        assert_eq!(encode_txn(&txn_of(largest)).len(), MAX_ENTRY_BYTES);
        let fits = command(txn_of(largest)).unwrap();
        assert_eq!(
            fits.encoded(),
            KvCommand::new(0, 0, KvOp::Txn(txn_of(largest))).encoded()
        );
        assert_eq!(
            command(txn_of(largest + 1)).unwrap_err(),
            Refusal::too_large()
        );
    }

    #[test]
    fn refusals_use_etcds_messages() {
        let put = |key: &[u8], value: Vec<u8>, lease| pb::PutRequest {
            key: key.to_vec(),
            value,
            lease,
            ..Default::default()
        };
        assert_eq!(put_op(put(b"", vec![], 0)), Err(Refusal::empty_key()));
        assert_eq!(
            put_op(put(b"k", vec![0; MAX_VALUE_BYTES + 1], 0)),
            Err(Refusal::too_large())
        );
        assert_eq!(
            put_op(put(b"k", vec![], 7)).unwrap_err().code,
            Code::NotFound
        );
        let twice = pb::TxnRequest {
            success: vec![
                pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(put(b"k", vec![], 0))),
                },
                pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(put(b"k", vec![], 0))),
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            txn(twice).unwrap_err().message,
            "etcdserver: duplicate key given in txn request"
        );
        assert!(decode_txn(b"\xff\xff\xff").is_err());
    }
}
