//! A server of an explored state, shared by every state that did not step it.
//!
//! A step changes one server; the state it leads to used to copy all of
//! them (and drop them again), and the orbit fingerprint hashed all of them
//! afresh: together about a third of the checker's time. A state now holds
//! its servers behind `Arc`s, so a step copies only the server it steps
//! ([`SharedServer::make_mut`]), and each server keeps the hashes of its last
//! two renamings, so that the servers a step did not touch are not hashed
//! again under the same renaming.
//!
//! A state's fingerprint hashes each server as one `u64`, the server's own
//! hash under the renaming ([`SharedServer::renamed_hash`]); the derived
//! `Hash` of a state does the same ([`Hash`] below), so a state's hash and
//! its identity renaming's streaming hash agree, which
//! `symmetry::renamed_hash` checks in debug builds.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use raft_model::NodeId;
use serde::{Serialize, Serializer};

use crate::state::RaftServer;

/// Servers with ids above this are hashed without the cache: a renaming is
/// packed into a `u32`, four bits per id.
const CACHED_IDS: NodeId = 8;

#[derive(Clone)]
pub struct SharedServer(Arc<Slot>);

struct Slot {
    server: RaftServer,
    /// (packed renaming, hash of the server under it) for the last two
    /// renamings asked for; a packed renaming is never 0. Emptied whenever
    /// the server is changed.
    hashes: Mutex<[(u32, u64); 2]>,
}

impl Clone for Slot {
    /// Only [`SharedServer::make_mut`] clones a cell, to change its server:
    /// the copy starts with no hashes.
    fn clone(&self) -> Slot {
        Slot::new(self.server.clone())
    }
}

impl Slot {
    fn new(server: RaftServer) -> Slot {
        Slot {
            server,
            hashes: Mutex::new([(0, 0); 2]),
        }
    }
}

impl SharedServer {
    pub fn new(server: RaftServer) -> SharedServer {
        SharedServer(Arc::new(Slot::new(server)))
    }

    /// The server, to be changed: copied first if another state shares it,
    /// and its cached hashes dropped either way.
    pub fn make_mut(&mut self) -> &mut RaftServer {
        let cell = Arc::make_mut(&mut self.0);
        *cell.hashes.get_mut().unwrap_or_else(|e| e.into_inner()) = [(0, 0); 2];
        &mut cell.server
    }

    /// The server's hash after renaming its ids by `f`, whose new ids for
    /// 1..=8 are `new_id[1..=8]` (an id past the slice keeps its number).
    /// Equal to `hash_server(&server.rename_ids(f))`.
    pub fn renamed_hash(&self, new_id: &[NodeId]) -> u64 {
        let f = |id: NodeId| crate::symmetry::renamed_id(new_id, id);
        let Some(key) = pack(new_id) else {
            return hash_server_renamed(&self.0.server, &f);
        };
        // Another thread holding the lock (states move between the
        // checker's threads) only costs this lookup its cache.
        if let Ok(hashes) = self.0.hashes.try_lock()
            && let Some(&(_, hash)) = hashes.iter().find(|(k, _)| *k == key)
        {
            debug_assert_eq!(
                hash,
                hash_server_renamed(&self.0.server, &f),
                "a cached server hash is stale"
            );
            return hash;
        }
        let hash = hash_server_renamed(&self.0.server, &f);
        if let Ok(mut hashes) = self.0.hashes.try_lock() {
            // The older entry goes.
            hashes[1] = hashes[0];
            hashes[0] = (key, hash);
        }
        hash
    }

    /// The server's own hash (the identity renaming's).
    pub fn own_hash(&self) -> u64 {
        let hash = self.renamed_hash(&IDENTITY_IDS);
        // The streaming hash feeds the hasher what the server's derived
        // `Hash` does: together with `symmetry::renamed_hash`'s check that
        // a renamed state's stream equals the built renamed state's, this
        // is what catches a field the streaming hash leaves out.
        debug_assert_eq!(
            hash,
            {
                let mut hasher = fingerprint_hasher();
                self.0.server.hash(&mut hasher);
                hasher.finish()
            },
            "Server::hash_renamed under the identity differs from the server's Hash"
        );
        hash
    }
}

/// `new_id` for the identity on 0..=8.
const IDENTITY_IDS: [NodeId; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 8];

/// The renaming packed four bits per id for ids 1..=8, or `None` if it
/// renames ids past 8 (the checker's states have at most five servers). An
/// id the slice does not reach keeps its number, so ids past 8 are left
/// alone whenever the slice stops at 8, and the key tells the whole
/// renaming.
fn pack(new_id: &[NodeId]) -> Option<u32> {
    debug_assert!(
        new_id.first().is_none_or(|&zero| zero == 0),
        "id 0 is never renamed"
    );
    if new_id.len() > CACHED_IDS as usize + 1 {
        return None;
    }
    let mut key = 0u32;
    for id in 1..=CACHED_IDS {
        let new = new_id.get(id as usize).copied().unwrap_or(id);
        if new > CACHED_IDS || new == 0 {
            return None;
        }
        key |= (new as u32 - 1) << (4 * (id - 1));
    }
    // Ids are stored less one (the identity is 0x7654_3210), and the top
    // bit is set so that no packed renaming is 0, the empty slot's key.
    Some(key | 1 << 31)
}

/// A server's hash after renaming by `f`, streamed without building the
/// renamed server (`Server::hash_renamed`).
fn hash_server_renamed(server: &RaftServer, f: &impl Fn(NodeId) -> NodeId) -> u64 {
    let mut hasher = fingerprint_hasher();
    server.hash_renamed(f, &mut hasher);
    hasher.finish()
}

/// A fixed-seed hasher (the one stateright fingerprints with): the same
/// state hashes the same in every thread and every run.
pub fn fingerprint_hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
    .build_hasher()
}

impl Deref for SharedServer {
    type Target = RaftServer;

    fn deref(&self) -> &RaftServer {
        &self.0.server
    }
}

/// A server enters its state's hash as its own hash (see the module's doc).
impl Hash for SharedServer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.own_hash());
    }
}

impl PartialEq for SharedServer {
    fn eq(&self, other: &SharedServer) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.server == other.0.server
    }
}

impl Eq for SharedServer {}

impl PartialOrd for SharedServer {
    fn partial_cmp(&self, other: &SharedServer) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedServer {
    fn cmp(&self, other: &SharedServer) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.server.cmp(&other.0.server)
    }
}

impl fmt::Debug for SharedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.server.fmt(f)
    }
}

impl Serialize for SharedServer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.server.serialize(serializer)
    }
}
