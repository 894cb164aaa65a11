//! A full disk: client writes are refused before the log runs out of room.
//!
//! The log file is preallocated (`storage::log_file`), so a full disk shows
//! up when it must grow: `fallocate` fails with ENOSPC before anything of
//! the batch is written. A node cannot take a batch back once the core has
//! acted on it, so a failed batch stops the node (see `StorageError::NoSpace`:
//! nothing in it was sent or acknowledged, so nothing acknowledged is lost).
//! To keep a node from getting there through its own clients, a monitor
//! samples the free space of the data directory's file system every
//! [`SAMPLE_EVERY`], and while it is below `min_free_bytes` the node refuses
//! client writes with RESOURCE_EXHAUSTED and a message saying so. Reads, the
//! status call and replication (which needs no new space while the file
//! has room) go on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::{info, warn};

/// The default `min_free_bytes`: the log file grows by up to 64 MiB at once.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;
/// How often the free space is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// The last sample of the data directory's free space (u64::MAX until the
/// first one, or where the file system does not say).
#[derive(Clone, Debug)]
pub struct DiskSpace {
    dir: PathBuf,
    free: Arc<AtomicU64>,
    min_free: u64,
}

impl DiskSpace {
    pub fn new(dir: &Path, min_free: u64) -> DiskSpace {
        DiskSpace {
            dir: dir.to_owned(),
            free: Arc::new(AtomicU64::new(u64::MAX)),
            min_free,
        }
    }

    /// Samples the free space now (blocking: a statfs).
    pub fn sample(&self) {
        if let Ok(free) = fs4::available_space(&self.dir) {
            let before = self.free.swap(free, Ordering::Relaxed);
            let (was_full, full) = (before < self.min_free, free < self.min_free);
            if full && !was_full {
                warn!(
                    dir = %self.dir.display(),
                    free,
                    min_free_bytes = self.min_free,
                    "the disk is (nearly) full: client writes are refused until space is freed; reads go on"
                );
            } else if was_full && !full {
                info!(dir = %self.dir.display(), free, "disk space freed: client writes accepted again");
            }
        }
    }

    /// Samples every [`SAMPLE_EVERY`] until the task is aborted.
    pub fn spawn_monitor(&self) -> tokio::task::JoinHandle<()> {
        let space = self.clone();
        tokio::spawn(async move {
            loop {
                let sampler = space.clone();
                let _ = tokio::task::spawn_blocking(move || sampler.sample()).await;
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    }

    /// Whether a client write may be proposed: `Err` is the message to
    /// give the client.
    pub fn check_write(&self) -> Result<(), String> {
        let free = self.free.load(Ordering::Relaxed);
        if free < self.min_free {
            return Err(format!(
                "the disk is full: the data directory {} has {free} bytes free, less than the \
                 {} bytes (min_free_bytes) this node keeps for its log; writes are refused until \
                 space is freed (reads are still served)",
                self.dir.display(),
                self.min_free
            ));
        }
        Ok(())
    }
}
