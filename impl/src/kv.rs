//! The replicated state machine: a key-value map plus the client session
//! table that makes retried writes exactly-once.
//!
//! Both live in `imbl::OrdMap`s, so a snapshot of the whole state machine is
//! an O(1) clone that can be serialized on another thread while the node
//! keeps applying: a persistent structure shares everything unchanged with
//! its clone, so taking a snapshot never stops the event loop. The sessions
//! are part of the image, so exactly-once survives snapshots and
//! InstallSnapshot.

use imbl::OrdMap;
use raft_model::{Index, NodeId};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_SESSIONS;

/// A write, as stored in the log: the operation and the client session it
/// belongs to. `client_id == 0` means "no session" (a one-off write, e.g. from
/// grpcurl): applied every time it is committed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvCommand {
    pub client_id: u64,
    pub seq: u64,
    pub op: KvOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOp {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Replace the value of `key` if it currently is `expected` (`None`: the
    /// key is absent); `new_value: None` deletes it.
    Cas {
        key: String,
        expected: Option<String>,
        new_value: Option<String>,
    },
    /// Record the address at which the other servers reach member `id`
    /// (the replicated address book, see `crate::members`). Not a client
    /// operation: only the leader appends it, just before the
    /// configuration change that adds `id`.
    SetMemberAddress {
        id: NodeId,
        address: String,
    },
}

/// What applying a command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommandResult {
    /// The key's value before the command.
    pub previous: Option<String>,
    /// Whether the command took effect (always true except for a failed CAS).
    pub succeeded: bool,
}

/// One client's session: its last applied sequence number and that
/// command's result, returned again if the command is retried.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    pub last_seq: u64,
    pub result: CommandResult,
    /// The log index at which `last_seq` was applied (for eviction order).
    pub last_index: Index,
}

/// Why a command was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "sequence number {seq} of client {client_id} is older than its last applied one ({last_seq}); a client must not reuse or reorder sequence numbers"
    )]
    StaleSequence {
        client_id: u64,
        seq: u64,
        last_seq: u64,
    },
}

/// The state-machine image: what a snapshot carries (`S` of the core).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KvImage {
    pub data: OrdMap<String, String>,
    pub sessions: OrdMap<u64, Session>,
    /// The replicated address book: the address of every member added at
    /// runtime (the starting members' addresses are in the config files).
    pub addresses: OrdMap<NodeId, String>,
}

impl KvImage {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.data.get(key)
    }

    /// Applies the command committed at log `index`. A retried command of a
    /// session (same sequence number as the last applied) is not applied
    /// again: its first result is returned.
    pub fn apply(
        &mut self,
        index: Index,
        command: &KvCommand,
    ) -> Result<CommandResult, ApplyError> {
        if command.client_id != 0
            && let Some(session) = self.sessions.get(&command.client_id)
        {
            if command.seq == session.last_seq {
                return Ok(session.result.clone());
            }
            if command.seq < session.last_seq {
                return Err(ApplyError::StaleSequence {
                    client_id: command.client_id,
                    seq: command.seq,
                    last_seq: session.last_seq,
                });
            }
        }
        let result = self.execute(&command.op);
        if command.client_id != 0 {
            let session = Session {
                last_seq: command.seq,
                result: result.clone(),
                last_index: index,
            };
            if self.sessions.insert(command.client_id, session).is_none() {
                self.evict_sessions();
            }
        }
        Ok(result)
    }

    fn execute(&mut self, op: &KvOp) -> CommandResult {
        match op {
            KvOp::Put { key, value } => CommandResult {
                previous: self.data.insert(key.clone(), value.clone()),
                succeeded: true,
            },
            KvOp::Delete { key } => CommandResult {
                previous: self.data.remove(key),
                succeeded: true,
            },
            KvOp::SetMemberAddress { id, address } => CommandResult {
                previous: self.addresses.insert(*id, address.clone()),
                succeeded: true,
            },
            KvOp::Cas {
                key,
                expected,
                new_value,
            } => {
                let current = self.data.get(key).cloned();
                if current != *expected {
                    return CommandResult {
                        previous: current,
                        succeeded: false,
                    };
                }
                match new_value {
                    Some(value) => self.data.insert(key.clone(), value.clone()),
                    None => self.data.remove(key),
                };
                CommandResult {
                    previous: current,
                    succeeded: true,
                }
            }
        }
    }

    /// Keeps the session table within [`MAX_SESSIONS`]. The scan is O(n) but
    /// runs only when a new client arrives at a full table.
    fn evict_sessions(&mut self) {
        while self.sessions.len() > MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, session)| session.last_index)
                .map(|(client, _)| *client);
            match oldest {
                Some(client) => {
                    self.sessions.remove(&client);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client_id: u64, seq: u64, key: &str, value: &str) -> KvCommand {
        KvCommand {
            client_id,
            seq,
            op: KvOp::Put {
                key: key.into(),
                value: value.into(),
            },
        }
    }

    #[test]
    fn a_retried_write_is_applied_once() {
        let mut image = KvImage::default();
        let first = image.apply(1, &put(7, 1, "k", "a")).unwrap();
        assert_eq!(first.previous, None);
        // Someone else overwrites the key; the retry must not write "a" again.
        image.apply(2, &put(8, 1, "k", "b")).unwrap();
        let retry = image.apply(3, &put(7, 1, "k", "a")).unwrap();
        assert_eq!(retry, first, "the retry gets the first answer");
        assert_eq!(image.get("k").map(String::as_str), Some("b"));
        assert!(matches!(
            image.apply(4, &put(7, 0, "k", "c")),
            Err(ApplyError::StaleSequence { .. })
        ));
    }

    #[test]
    fn writes_without_a_session_apply_every_time() {
        let mut image = KvImage::default();
        image.apply(1, &put(0, 0, "k", "a")).unwrap();
        let again = image.apply(2, &put(0, 0, "k", "a")).unwrap();
        assert_eq!(again.previous.as_deref(), Some("a"));
        assert!(image.sessions.is_empty());
    }

    #[test]
    fn compare_and_swap() {
        let mut image = KvImage::default();
        let cas = |expected: Option<&str>, new_value: Option<&str>| KvOp::Cas {
            key: "k".into(),
            expected: expected.map(Into::into),
            new_value: new_value.map(Into::into),
        };
        assert!(image.execute(&cas(None, Some("1"))).succeeded);
        let failed = image.execute(&cas(Some("0"), Some("2")));
        assert!(!failed.succeeded);
        assert_eq!(failed.previous.as_deref(), Some("1"));
        assert!(image.execute(&cas(Some("1"), None)).succeeded);
        assert_eq!(image.get("k"), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let mut image = KvImage::default();
        for client in 1..=(MAX_SESSIONS as u64 + 5) {
            image.apply(client, &put(client, 1, "k", "v")).unwrap();
        }
        assert_eq!(image.sessions.len(), MAX_SESSIONS);
        assert!(
            !image.sessions.contains_key(&1),
            "the oldest session goes first"
        );
    }
}
