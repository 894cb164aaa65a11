//! What a `raft-node cluster` directory records about its nodes, so that
//! `cluster`, `cluster add` and `cluster remove` — separate commands, run in
//! any order, in any terminal — agree on which nodes there are.
//!
//! - `DIR/cluster.toml`, the cluster file: the cluster id, how ports were
//!   chosen, and every node this directory ever had, with its address, whether
//!   it founded the cluster (its data directory records the founding members,
//!   so its config file must keep naming them) or was added by `cluster add`
//!   (initialised to join), and whether it was removed. A removed node stays
//!   in the file: it is never started again, and its id is never given to a
//!   new node. The file is replaced atomically (written aside, then renamed),
//!   so a reader never sees half of it.
//! - `DIR/cluster.lock`: an advisory lock taken by `cluster` while it sets up
//!   and by `cluster add` and `cluster remove` for their whole run, so two of
//!   them never change the file at once.
//! - `DIR/node-<id>.pid`: the process id of the node's process, written by
//!   the command that started it. A pid is only trusted while
//!   `/proc/<pid>/cmdline` is a node's command line naming this node's config
//!   file: a pid reused by another program is never signalled.
//! - `DIR/removed/node-<id>/`: a removed node's data directory, config file
//!   and log, archived (see [`archive`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_model::NodeId;
use serde::{Deserialize, Serialize};

/// The cluster file's name in the directory.
pub const FILE: &str = "cluster.toml";
const LOCK: &str = "cluster.lock";
/// Where removed nodes' files go, under the directory.
pub const ARCHIVE: &str = "removed";

/// `DIR/cluster.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRecord {
    pub cluster_id: String,
    /// The host every node listens on (`--host`).
    pub host: String,
    /// `--base-port` as the cluster was created: node N's port is base + N -
    /// 1, also for the nodes `cluster add` adds; 0: ports the OS picks.
    pub base_port: u16,
    /// `--metrics-base-port` as the cluster was created, if given.
    pub metrics_base_port: Option<u16>,
    /// `--snapshot-threshold` of the last `cluster` start (nodes added later
    /// get the same).
    pub snapshot_threshold: Option<u64>,
    /// `--trace-dir` of the last `cluster` start (nodes added later trace
    /// there too).
    pub trace_dir: Option<PathBuf>,
    /// Every node this directory ever had, removed ones included.
    #[serde(default)]
    pub nodes: Vec<NodeRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub id: NodeId,
    /// Where peers and clients reach it, HOST:PORT.
    pub address: String,
    /// Its metrics address, if the cluster serves metrics.
    pub metrics: Option<String>,
    /// A member of the configuration the cluster was created with (true), or
    /// a node `cluster add` added (false: its data directory was initialised
    /// to join, and records no members).
    pub founder: bool,
    /// Removed by `cluster remove`: never started again.
    #[serde(default)]
    pub removed: bool,
    /// Where its files were archived when it was removed, if they were.
    pub archived: Option<PathBuf>,
}

impl ClusterRecord {
    /// The nodes that are not removed: those `cluster` starts.
    pub fn active(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(|node| !node.removed)
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.iter().find(|node| node.id == id)
    }

    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut NodeRecord> {
        self.nodes.iter_mut().find(|node| node.id == id)
    }

    /// The client endpoints of the active nodes, but `except`.
    pub fn endpoints(&self, except: Option<NodeId>) -> Vec<String> {
        self.active()
            .filter(|node| Some(node.id) != except)
            .map(|node| node.address.clone())
            .collect()
    }

    /// "1, 2, 4", the active nodes' ids, and "; removed: 3" if any was.
    pub fn describe_nodes(&self) -> String {
        let ids = |removed: bool| {
            self.nodes
                .iter()
                .filter(|node| node.removed == removed)
                .map(|node| node.id.to_string())
                .collect::<Vec<_>>()
        };
        let active = ids(false);
        let removed = ids(true);
        let mut text = if active.is_empty() {
            "none".to_owned()
        } else {
            active.join(", ")
        };
        if !removed.is_empty() {
            text.push_str(&format!("; removed: {}", removed.join(", ")));
        }
        text
    }

    /// Reads `dir`'s cluster file; None if it has none.
    pub fn load(dir: &Path) -> anyhow::Result<Option<ClusterRecord>> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let record = toml::from_str(&text).map_err(|err| {
            anyhow::anyhow!(
                "{} is not a valid cluster file ({err}); it is written by `raft-node cluster` \
                 and `cluster add|remove`: restore it, or start a new cluster in another --dir",
                path.display()
            )
        })?;
        Ok(Some(record))
    }

    /// Reads the cluster file of `dir`, which must be a cluster directory.
    pub fn require(dir: &Path) -> anyhow::Result<ClusterRecord> {
        if !dir.is_dir() {
            anyhow::bail!(
                "{} is not a directory: give the --dir of a cluster that `raft-node cluster \
                 --dir DIR` started",
                dir.display()
            );
        }
        match ClusterRecord::load(dir)? {
            Some(record) => Ok(record),
            None if dir.join("node-1.toml").exists() => anyhow::bail!(
                "{} has no {FILE}: it was made by an older `raft-node cluster`, which did not \
                 record its nodes. Start it once with `raft-node cluster --dir {}` (it writes \
                 the file), then run this command again",
                dir.display(),
                dir.display()
            ),
            None => anyhow::bail!(
                "{} is not a cluster directory (it has no {FILE}): give the --dir that \
                 `raft-node cluster --dir DIR` was started with",
                dir.display()
            ),
        }
    }

    /// Replaces `dir`'s cluster file atomically (written aside, synced,
    /// renamed).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(FILE);
        let temporary = dir.join(format!("{FILE}.tmp"));
        let text = format!(
            "# Written by `raft-node cluster` and `raft-node cluster add|remove`: the nodes of \
             this directory.\n# Do not edit it while they run; a removed node stays listed (its \
             id is never reused).\n{}",
            toml::to_string_pretty(self)?
        );
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)
        };
        write().with_context(|| format!("cannot write {}", path.display()))
    }

    /// The next id for a new node: above every id this directory has used,
    /// recorded or found as a file (a node whose `cluster add` stopped before
    /// it was recorded leaves files; its id is skipped too).
    pub fn next_id(&self, dir: &Path) -> NodeId {
        let mut highest = self.nodes.iter().map(|node| node.id).max().unwrap_or(0);
        for folder in [dir.to_owned(), dir.join(ARCHIVE)] {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(id) = id_in_name(&entry.file_name().to_string_lossy()) {
                    highest = highest.max(id);
                }
            }
        }
        highest + 1
    }
}

/// The id in a node's file name: `node-<id>`, `node-<id>.toml`, ...
fn id_in_name(name: &str) -> Option<NodeId> {
    let rest = name.strip_prefix("node-")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether `dir` holds any file of node `id` (in place or archived).
pub fn has_files_of(dir: &Path, id: NodeId) -> bool {
    [dir.to_owned(), dir.join(ARCHIVE)].iter().any(|folder| {
        std::fs::read_dir(folder).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|entry| id_in_name(&entry.file_name().to_string_lossy()) == Some(id))
        })
    })
}

/// Node `id`'s files in the directory.
pub fn config_path(dir: &Path, id: NodeId) -> PathBuf {
    dir.join(format!("node-{id}.toml"))
}

pub fn data_dir(dir: &Path, id: NodeId) -> PathBuf {
    dir.join(format!("node-{id}"))
}

pub fn log_path(dir: &Path, id: NodeId) -> PathBuf {
    dir.join(format!("node-{id}.log"))
}

fn pid_path(dir: &Path, id: NodeId) -> PathBuf {
    dir.join(format!("node-{id}.pid"))
}

/// The directory's lock, held while the returned file lives. Waits (saying
/// so) while another command holds it.
pub fn lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    use fs4::fs_std::FileExt;
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if !file
        .try_lock_exclusive()
        .with_context(|| format!("cannot lock {}", path.display()))?
    {
        println!(
            "waiting for another `raft-node cluster` command on {} to finish",
            dir.display()
        );
        file.lock_exclusive()
            .with_context(|| format!("cannot lock {}", path.display()))?;
    }
    Ok(file)
}

/// Records that node `id` runs as process `pid`.
pub fn write_pid(dir: &Path, id: NodeId, pid: u32) -> anyhow::Result<()> {
    let path = pid_path(dir, id);
    std::fs::write(&path, format!("{pid}\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Node `id`'s process, if its pid file names a live process that is that
/// node (its command line names the node's config file).
pub fn running_pid(dir: &Path, id: NodeId) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_path(dir, id))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (alive(pid) && runs_config(pid, &config_path(dir, id))).then_some(pid)
}

/// Whether process `pid` runs `--config config` (from /proc: a pid reused by
/// another program is not taken for the node).
fn runs_config(pid: u32, config: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
    let config = config.as_os_str().as_encoded_bytes();
    args.windows(2)
        .any(|pair| pair[0] == b"--config" && pair[1] == config)
}

/// Whether process `pid` exists and has not exited (a zombie, exited but
/// not yet reaped by its parent, counts as exited).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (command) state ...": the command may hold spaces and ')'.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

/// Stops process `pid`: SIGTERM (a node shuts down cleanly), then SIGKILL if
/// it still runs after `grace`. Returns whether it is gone.
pub fn stop(pid: u32, grace: Duration) -> bool {
    crate::launch::signal(pid, "TERM");
    if wait_gone(pid, grace) {
        return true;
    }
    crate::launch::signal(pid, "KILL");
    wait_gone(pid, Duration::from_secs(5))
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

/// Moves a removed node's data directory, config file and log into
/// `DIR/removed/node-<id>/` and deletes its pid file; returns the archive.
///
/// Kept, not deleted: the data may still be wanted (to read what the node
/// held, or to investigate), and deleting is the operator's call. Moved out
/// of the way, not left in place: `cluster` must never start the node again
/// and `run --config DIR/node-<id>.toml` must not find it — a removed
/// member's data must never come back as that member.
pub fn archive(dir: &Path, id: NodeId) -> anyhow::Result<PathBuf> {
    let archive = dir.join(ARCHIVE).join(format!("node-{id}"));
    std::fs::create_dir_all(&archive)
        .with_context(|| format!("cannot create {}", archive.display()))?;
    for from in [data_dir(dir, id), config_path(dir, id), log_path(dir, id)] {
        if !from.exists() {
            continue;
        }
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = archive.join(name);
        std::fs::rename(&from, &to).with_context(|| {
            format!(
                "cannot move {} to {}: move it there by hand (never start node {id} from it \
                 again)",
                from.display(),
                to.display()
            )
        })?;
    }
    let _ = std::fs::remove_file(pid_path(dir, id));
    Ok(archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ClusterRecord {
        ClusterRecord {
            cluster_id: "c".into(),
            host: "127.0.0.1".into(),
            base_port: 0,
            metrics_base_port: None,
            snapshot_threshold: Some(100),
            trace_dir: None,
            nodes: (1..=3)
                .map(|id| NodeRecord {
                    id,
                    address: format!("127.0.0.1:{}", 7000 + id),
                    metrics: None,
                    founder: true,
                    removed: id == 2,
                    archived: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_cluster_file_reads_back_and_says_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ClusterRecord::load(dir.path()).unwrap(), None);
        let message = ClusterRecord::require(dir.path()).unwrap_err().to_string();
        assert!(message.contains("is not a cluster directory"), "{message}");
        let record = record();
        record.save(dir.path()).unwrap();
        assert_eq!(
            ClusterRecord::load(dir.path()).unwrap(),
            Some(record.clone())
        );
        assert_eq!(record.describe_nodes(), "1, 3; removed: 2");
        assert_eq!(record.endpoints(Some(3)), vec!["127.0.0.1:7001".to_owned()]);
        std::fs::write(dir.path().join(FILE), "nodes = 3").unwrap();
        let message = ClusterRecord::load(dir.path()).unwrap_err().to_string();
        assert!(message.contains("is not a valid cluster file"), "{message}");
    }

    #[test]
    fn a_new_id_is_above_every_id_ever_used() {
        let dir = tempfile::tempdir().unwrap();
        let record = record();
        assert_eq!(record.next_id(dir.path()), 4);
        // Files of a node whose `cluster add` stopped before recording it.
        std::fs::create_dir_all(dir.path().join("node-7")).unwrap();
        assert_eq!(record.next_id(dir.path()), 8);
        std::fs::create_dir_all(dir.path().join(ARCHIVE).join("node-9")).unwrap();
        assert_eq!(record.next_id(dir.path()), 10);
        assert!(has_files_of(dir.path(), 9));
        assert!(!has_files_of(dir.path(), 5));
    }

    #[test]
    fn a_pid_is_trusted_only_for_the_nodes_own_process() {
        let dir = tempfile::tempdir().unwrap();
        // This test's own process is alive, but is not node 1.
        write_pid(dir.path(), 1, std::process::id()).unwrap();
        assert!(alive(std::process::id()));
        assert_eq!(running_pid(dir.path(), 1), None);
        assert_eq!(running_pid(dir.path(), 2), None);
    }

    #[test]
    fn a_removed_nodes_files_are_archived() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data_dir(dir.path(), 2)).unwrap();
        std::fs::write(config_path(dir.path(), 2), "x").unwrap();
        std::fs::write(log_path(dir.path(), 2), "x").unwrap();
        write_pid(dir.path(), 2, 1).unwrap();
        let archive = archive(dir.path(), 2).unwrap();
        assert_eq!(archive, dir.path().join("removed/node-2"));
        assert!(archive.join("node-2").is_dir());
        assert!(archive.join("node-2.toml").is_file());
        assert!(archive.join("node-2.log").is_file());
        assert!(!data_dir(dir.path(), 2).exists());
        assert!(!pid_path(dir.path(), 2).exists());
    }
}
