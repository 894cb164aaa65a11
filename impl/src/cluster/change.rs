//! `raft-node cluster add` and `raft-node cluster remove`: a node more or a
//! node less in a running `raft-node cluster`, from another terminal, through
//! the cluster directory's record ([`super::record`]) and the admin service
//! (the same client calls as `raft-node client member ...`).
//!
//! **add** asks the cluster first (nothing is created while no leader
//! answers), then picks the next id never used in the directory and a port
//! (base-port + id - 1 as `cluster` does, or one the OS picks for a cluster
//! made with `--base-port 0`), binds it, writes the node's config, initialises
//! its data directory to join (as `raft-node init --join`: it records no
//! configuration, so the node never campaigns on its own), records it, starts
//! it as a detached process handed its socket, with its log in the directory,
//! and waits until it serves. Then it is added as a *learner*, and promoted
//! to voter once caught up (what `member replace` does, without the swap): a
//! voter added directly counts in the quorum of the joint configuration while
//! it is still empty, so in a 3-node cluster growing to 4 one more failure
//! would stall writes until it has caught up; a learner counts in no quorum
//! until it is promoted. `--as-learner` stops after the first step.
//!
//! **remove** asks the cluster to remove the member first (the change
//! commits, a removed leader steps down), then records the node as removed
//! (so `cluster` never starts it again and the id is never reused), stops its
//! process (SIGTERM, then SIGKILL), and archives its files
//! ([`super::record::archive`]).
//!
//! A step that fails leaves what the steps before it did, and says so and how
//! to go on: `cluster add --id N` resumes adding node N (starts it if it is
//! not running, adds it as a learner if it is not one, promotes it), and
//! `cluster remove --id N` undoes an add or finishes a remove.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_model::NodeId;

use super::record::{self, ClusterRecord, NodeRecord};
use crate::client::{ClientError, KvClient};
use crate::member_cli::{changed, learners_line, members_line};
use crate::proto::admin::MemberListResponse;

/// How long `cluster remove` lets a node shut down cleanly before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct AddOptions {
    pub dir: PathBuf,
    /// Resume adding this recorded node, or give a new node this id.
    pub id: Option<NodeId>,
    /// The new node's port (0: one the OS picks); default: as `cluster`
    /// chose the others'.
    pub port: Option<u16>,
    pub as_learner: bool,
    /// How long to wait for a leader, and for the new node to serve.
    pub timeout: Duration,
    pub log_level: Option<String>,
}

pub struct RemoveOptions {
    pub dir: PathBuf,
    pub id: NodeId,
    /// How long to wait for a leader.
    pub timeout: Duration,
}

/// The configuration as the leader sees it (a follower's view may lag by a
/// heartbeat), asked through `endpoints`; waits up to `timeout` for a
/// leader. Fails at once if no endpoint is listening.
pub async fn leader_view(
    endpoints: Vec<String>,
    timeout: Duration,
    dir: &Path,
) -> anyhow::Result<MemberListResponse> {
    let started = Instant::now();
    let quick = Duration::from_secs(2).min(timeout);
    let mut client = KvClient::new(endpoints.clone())?.failing_when_all_refuse();
    client.op_timeout = timeout;
    client.rpc_timeout = quick;
    let mut last;
    loop {
        match client.member_list().await {
            Ok(list) if list.leader_id == 0 => {
                last = format!("node {} knows no leader (term {})", list.id, list.term);
            }
            Ok(list) if list.leader_id == list.id => return Ok(list),
            Ok(list) => {
                let mut leader = KvClient::new(vec![list.leader_address.clone()])?;
                leader.op_timeout = quick;
                leader.rpc_timeout = quick;
                match leader.member_list().await {
                    Ok(view) if view.leader_id == view.id => return Ok(view),
                    Ok(view) => {
                        last = format!(
                            "node {} named node {} as the leader, which does not lead (it knows \
                             {})",
                            list.id,
                            list.leader_id,
                            if view.leader_id == 0 {
                                "no leader".to_owned()
                            } else {
                                format!("node {}", view.leader_id)
                            }
                        );
                    }
                    Err(err) => {
                        last = format!(
                            "node {} named node {} at {} as the leader, which did not answer: \
                             {err}",
                            list.id, list.leader_id, list.leader_address
                        );
                    }
                }
            }
            Err(ClientError::AllRefused(endpoints)) => anyhow::bail!(
                "no node of the cluster is listening (every node refused the connection: {}): \
                 is `raft-node cluster --dir {}` running? Start it, then run this command again",
                endpoints.join(", "),
                dir.display()
            ),
            Err(err) => last = err.to_string(),
        }
        if started.elapsed() >= timeout {
            anyhow::bail!(
                "no leader within {timeout:?} ({last}). A leader needs a majority of the voters \
                 running: see `raft-node client --endpoints {} status`, restart stopped nodes \
                 (or the whole cluster: `raft-node cluster --dir {}`), and try again",
                endpoints.join(","),
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One line: the voters, the learners and any change under way.
pub fn configuration_line(view: &MemberListResponse) -> String {
    let mut line = format!(
        "configuration (node {} leads, term {}): voters {}",
        view.leader_id,
        view.term,
        members_line(&view.members)
    );
    if !view.learners.is_empty() {
        line.push_str(&format!("; learners {}", learners_line(view)));
    }
    if !view.old_members.is_empty() {
        line.push_str(&format!(
            "; changing from {} (joint)",
            members_line(&view.old_members)
        ));
    }
    line
}

fn is_voter(view: &MemberListResponse, id: NodeId) -> bool {
    view.members.iter().any(|member| member.id == id)
}

fn is_learner(view: &MemberListResponse, id: NodeId) -> bool {
    view.learners.iter().any(|learner| learner.id == id)
}

/// Whether `id` is a voter, a learner, or a voter of C_old during a change.
pub fn in_configuration(view: &MemberListResponse, id: NodeId) -> bool {
    is_voter(view, id) || is_learner(view, id) || view.old_members.iter().any(|m| m.id == id)
}

fn client(endpoints: Vec<String>, timeout: Duration) -> anyhow::Result<KvClient> {
    let mut client = KvClient::new(endpoints)?.failing_when_all_refuse();
    client.op_timeout = timeout;
    Ok(client)
}

/// Which node `cluster add` adds: a new id, or a recorded node to resume.
fn choose(
    options: &AddOptions,
    record: &ClusterRecord,
    view: &MemberListResponse,
    dir: &Path,
) -> anyhow::Result<(NodeId, bool)> {
    let Some(id) = options.id else {
        // Above every id the directory used, and not one the cluster knows
        // from elsewhere (a server added by hand with `client member add`).
        let mut id = record.next_id(dir);
        while in_configuration(view, id) {
            id += 1;
        }
        return Ok((id, false));
    };
    match record.node(id) {
        Some(node) if node.removed => anyhow::bail!(
            "node {id} was removed from this cluster{}; an id is never reused (a removed \
             member's data must not come back as that member): run `raft-node cluster add --dir \
             {}` without --id to add a new node",
            node.archived
                .as_ref()
                .map(|path| format!(" (its files are in {})", path.display()))
                .unwrap_or_default(),
            dir.display()
        ),
        Some(_) => {
            if options.port.is_some() {
                anyhow::bail!(
                    "node {id} is recorded already, at its address: --port is for a new node only"
                );
            }
            Ok((id, true))
        }
        None => {
            if record::has_files_of(dir, id) {
                anyhow::bail!(
                    "{} holds files of a node {id} that is not recorded in {} (a `cluster add` \
                     interrupted before it recorded the node?): an id is never reused. Run \
                     `raft-node cluster add --dir {}` without --id (it picks {}), or delete \
                     those files first",
                    dir.display(),
                    record::FILE,
                    dir.display(),
                    record.next_id(dir)
                );
            }
            if in_configuration(view, id) {
                anyhow::bail!(
                    "node {id} is in the cluster's configuration already but is not a node of \
                     {}: choose another id (or none: `cluster add` picks one)",
                    dir.display()
                );
            }
            Ok((id, false))
        }
    }
}

/// A new node's port, bound: `--port`, else base-port + id - 1 as `cluster`
/// chose the others' (or one the OS picks, for `--base-port 0`).
fn bind_new(record: &ClusterRecord, id: NodeId, port: Option<u16>) -> anyhow::Result<TcpListener> {
    let (port, how) = match port {
        Some(port) => (port, "--port".to_owned()),
        None if record.base_port != 0 => (
            super::nth_port("--base-port", record.base_port, id)
                .context("give --port P (or --port 0 for a port the OS picks)")?,
            format!(
                "the cluster's --base-port {} + {}",
                record.base_port,
                id - 1
            ),
        ),
        None => (0, String::new()),
    };
    TcpListener::bind((record.host.as_str(), port)).map_err(|err| {
        if port == 0 {
            anyhow::anyhow!("cannot bind a port for node {id} on {}: {err}", record.host)
        } else {
            anyhow::anyhow!(
                "node {id}'s port {}:{port} ({how}) is not free ({err}): give `--port P` with a \
                 free port, or `--port 0` for one the OS picks",
                record.host
            )
        }
    })
}

/// `raft-node cluster add`.
pub async fn add(options: AddOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = std::path::absolute(&options.dir)
        .with_context(|| format!("bad --dir {}", options.dir.display()))?;
    ClusterRecord::require(&dir)?;
    let _lock = record::lock(&dir)?;
    let mut record = ClusterRecord::require(&dir)?;
    // The cluster first: nothing is created while no leader answers.
    let view = leader_view(record.endpoints(None), options.timeout, &dir).await?;
    let (id, resuming) = choose(&options, &record, &view, &dir)?;
    let show = |path: &Path| path.display().to_string();

    let (node, listener) = if resuming {
        let node = record
            .node(id)
            .cloned()
            .context("the recorded node vanished")?;
        if let Some(pid) = record::running_pid(&dir, id) {
            println!(
                "node {id} runs already (pid {pid}, address {})",
                node.address
            );
            (node, None)
        } else {
            let data = record::data_dir(&dir, id);
            if !data.exists() {
                anyhow::bail!(
                    "node {id}'s data directory {} is gone: it must not come back as the same \
                     node. Drop it with `raft-node cluster remove --dir {} --id {id}`, then add a \
                     new node with `raft-node cluster add --dir {}`",
                    data.display(),
                    dir.display(),
                    dir.display()
                );
            }
            let listener = super::bind_recorded(&node, &dir)?;
            (node, Some(listener))
        }
    } else {
        let listener = Arc::new(bind_new(&record, id, options.port)?);
        let metrics = record
            .metrics_base_port
            .map(|base| super::nth_port("--metrics-base-port", base, id))
            .transpose()?
            .map(|port| format!("{}:{port}", record.host));
        let node = NodeRecord {
            id,
            address: format!("{}:{}", record.host, listener.local_addr()?.port()),
            metrics,
            founder: false,
            removed: false,
            archived: None,
        };
        let launch = super::launch_of(&record, &node, &dir, &exe, None);
        let config = super::write_config(&launch, &listener)?;
        crate::server::init_data_dir_to_join(&config).with_context(|| {
            format!(
                "cannot initialise node {id}'s data directory {}",
                config.data_dir.display()
            )
        })?;
        record.nodes.push(node.clone());
        record.save(&dir).with_context(|| {
            format!(
                "node {id}'s files are written ({}, {}) but it could not be recorded: delete \
                 them, then run `raft-node cluster add` again",
                show(&record::config_path(&dir, id)),
                show(&config.data_dir)
            )
        })?;
        println!(
            "node {id}: config {}, data directory {} (initialised to join cluster {:?})",
            show(&record::config_path(&dir, id)),
            show(&config.data_dir),
            record.cluster_id
        );
        (node, Some(listener))
    };
    let address = node.address.clone();
    let retry = format!(
        "retry with `raft-node cluster add --dir {} --id {id}`, or undo with `raft-node cluster \
         remove --dir {} --id {id}` (it stops the node and archives its files)",
        dir.display(),
        dir.display()
    );

    let pid = match listener {
        None => record::running_pid(&dir, id).unwrap_or_default(),
        Some(listener) => {
            let launch = super::launch_of(&record, &node, &dir, &exe, options.log_level.as_deref())
                .listener(listener)
                .detach(true);
            let mut process = launch.spawn()?;
            record::write_pid(&dir, id, process.pid())?;
            println!(
                "node {id} started: pid {}, address {address}, log {}",
                process.pid(),
                show(&record::log_path(&dir, id))
            );
            process.wait_ready(options.timeout).await.map_err(|err| {
                anyhow::anyhow!(
                    "{err:#}. Node {id} is recorded in {} but is not in the cluster's \
                     configuration: fix the cause (see its log), then {retry}",
                    show(&dir.join(record::FILE))
                )
            })?;
            process.pid()
        }
    };

    let started = Instant::now();
    let mut client = client(record.endpoints(Some(id)), options.timeout)?;
    let view = leader_view(record.endpoints(Some(id)), options.timeout, &dir).await?;
    if is_voter(&view, id) {
        println!("node {id} is a voter already: nothing to change");
    } else {
        if !is_learner(&view, id) {
            let response = client.add_learner(id, &address).await.map_err(|err| {
                anyhow::anyhow!(
                    "the cluster did not add node {id}: {err}. Node {id} runs (pid {pid}) and is \
                     recorded in {}, but is not in the cluster's configuration: {retry}",
                    show(&dir.join(record::FILE))
                )
            })?;
            let step = if options.as_learner {
                ""
            } else {
                "step 1 of 2: "
            };
            changed(
                &format!("{step}node {id} at {address} added as a learner"),
                &response,
                started,
            );
        }
        if options.as_learner {
            println!(
                "node {id} stays a learner (--as-learner): it receives the log and counts in no \
                 quorum; promote it with `raft-node cluster add --dir {} --id {id}`",
                dir.display()
            );
        } else {
            let response = client.promote_learner(id, 0, 0).await.map_err(|err| {
                anyhow::anyhow!(
                    "node {id} was added as a learner but not promoted: {err}. It runs (pid \
                     {pid}), receives the log and counts in no quorum: {retry}"
                )
            })?;
            changed(
                &format!("step 2 of 2: node {id} caught up and was promoted to voter"),
                &response,
                started,
            );
        }
    }
    println!(
        "OK: node {id} at {address} is a {} of cluster {:?} (pid {pid}); `raft-node cluster \
         --dir {}` starts it with the others from now on",
        if options.as_learner && !is_voter(&view, id) {
            "learner"
        } else {
            "voter"
        },
        record.cluster_id,
        dir.display()
    );
    Ok(())
}

/// `raft-node cluster remove`.
pub async fn remove(options: RemoveOptions) -> anyhow::Result<()> {
    let id = options.id;
    let dir = std::path::absolute(&options.dir)
        .with_context(|| format!("bad --dir {}", options.dir.display()))?;
    ClusterRecord::require(&dir)?;
    let _lock = record::lock(&dir)?;
    let mut record = ClusterRecord::require(&dir)?;
    let Some(node) = record.node(id).cloned() else {
        anyhow::bail!(
            "node {id} is not a node of the cluster in {} (its nodes: {}): give one of those ids",
            dir.display(),
            record.describe_nodes()
        );
    };
    if let Some(archived) = &node.archived {
        anyhow::bail!(
            "node {id} was removed already (its files are in {}): nothing to do",
            archived.display()
        );
    }
    let show = |path: &Path| path.display().to_string();

    // The membership change first: until it has committed, the node stays
    // as it is (a member that runs).
    if !node.removed {
        let view = leader_view(record.endpoints(None), options.timeout, &dir).await?;
        let started = Instant::now();
        let mut client = client(record.endpoints(None), options.timeout)?;
        let refused = |err: ClientError| {
            anyhow::anyhow!(
                "the cluster did not remove node {id}: {err}. Nothing was changed: node {id} \
                 still runs and is still a member. Try again once the cluster has a leader and \
                 no other change under way (`raft-node client --endpoints {} member list`)",
                record.endpoints(None).join(",")
            )
        };
        if is_voter(&view, id) {
            if view.members.len() == 1 {
                anyhow::bail!(
                    "node {id} is the cluster's only voter: a cluster cannot remove its last \
                     voter. Stop the cluster instead (Ctrl-C where `raft-node cluster` runs)"
                );
            }
            let response = client.remove_member(id).await.map_err(refused)?;
            changed(&format!("node {id} removed"), &response, started);
        } else if is_learner(&view, id) {
            let response = client.remove_learner(id).await.map_err(refused)?;
            changed(&format!("learner {id} removed"), &response, started);
        } else {
            println!(
                "node {id} is not in the cluster's configuration (a `cluster add` that did not \
                 finish): nothing to change in the cluster"
            );
        }
        // From here on `cluster` never starts it again, and the id is never
        // given to another node.
        if let Some(node) = record.node_mut(id) {
            node.removed = true;
        }
        record.save(&dir).with_context(|| {
            format!(
                "node {id} was removed from the cluster, but {} could not be updated: do not \
                 start node {id} again; fix the cause and run this command again to finish",
                show(&dir.join(record::FILE))
            )
        })?;
    }

    match record::running_pid(&dir, id) {
        Some(pid) => {
            let stopped = tokio::task::spawn_blocking(move || record::stop(pid, STOP_GRACE))
                .await
                .unwrap_or(false);
            if !stopped {
                anyhow::bail!(
                    "node {id} is removed from the cluster, but its process (pid {pid}) did not \
                     stop: kill it (`kill -9 {pid}`), then run `raft-node cluster remove --dir \
                     {} --id {id}` again to archive its files",
                    dir.display()
                );
            }
            println!("node {id} stopped (pid {pid})");
        }
        None => println!("node {id} was not running"),
    }
    let archive = record::archive(&dir, id).with_context(|| {
        format!(
            "node {id} is removed from the cluster and stopped, but its files were not archived"
        )
    })?;
    if let Some(node) = record.node_mut(id) {
        node.archived = Some(archive.clone());
    }
    record.save(&dir)?;
    println!(
        "OK: node {id} removed from cluster {:?}; its data directory, config and log are \
         archived in {} (kept, not deleted: never start node {id} from them again, a removed \
         member's data must not come back as that member; delete them when no longer needed). \
         Its id is never reused; `raft-node cluster --dir {}` no longer starts it",
        record.cluster_id,
        show(&archive),
        dir.display()
    );
    Ok(())
}
