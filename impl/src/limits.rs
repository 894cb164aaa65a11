//! Every bound the node enforces, in one place: sizes of client requests and
//! peer messages, batching and queue capacities, and the caps that keep a
//! hostile or buggy peer's numbers away from overflow. Configuration
//! ([`crate::config`]) and the services check against these; nothing else
//! defines a limit (the record and file bounds of the data directory are the
//! storage modules' own).

use raft_model::Index;

// --- Client requests ---------------------------------------------------------

/// Largest key a client may write or read. Keys and values are bounded so that
/// a full AppendEntries request (`max_append_entries` entries of the largest
/// size) always fits in one gRPC message.
pub const MAX_KEY_BYTES: usize = 4 << 10;
/// Largest value a client may write.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// The largest encoded log entry: a compare-and-swap with a maximal key,
/// expected value and new value, plus framing.
pub const MAX_ENTRY_BYTES: usize = MAX_KEY_BYTES + 2 * MAX_VALUE_BYTES + 64;

/// The most client sessions the state machine remembers. Past it, the session
/// applied longest ago is forgotten (deterministically: every replica applies
/// the same log, so every replica evicts the same session). A client whose
/// session was evicted loses exactly-once only for a write it retries after
/// that many other clients have written since.
pub const MAX_SESSIONS: usize = 100_000;

// --- Peer messages -----------------------------------------------------------

/// Largest gRPC message a node sends or accepts on the peer service.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// InstallSnapshot streams the image in chunks of this size. Each chunk that
/// arrives is word from the leader for the follower's election timer, and
/// each one the peer reads is word from the follower for the leader's
/// CheckQuorum (crate::node): small enough that one crosses even a slow link
/// (2 Mbit/s) well within an election timeout.
pub const SNAPSHOT_CHUNK: usize = 64 << 10;
/// Largest snapshot a follower accepts over InstallSnapshot.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// The most entries one AppendEntries request may carry.
pub const MAX_ENTRIES_PER_REQUEST: usize = 100_000;
/// No honest log gets anywhere near this; refusing larger values keeps every
/// `index + n` in the core far from overflow.
pub const MAX_INDEX: Index = 1 << 62;

// --- Queues and batching -----------------------------------------------------

/// The most inputs the event loop folds into one batch (one fsync).
pub const MAX_BATCH: usize = 1024;
/// Capacity of the event loop's input channel: senders wait when it is full.
pub const INBOX_CAPACITY: usize = 4096;
/// Capacity of each peer's outbound queue: a full queue drops (Raft tolerates
/// lost messages; see [`crate::peer_client`]).
pub const PEER_QUEUE: usize = 256;
