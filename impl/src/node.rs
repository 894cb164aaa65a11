//! The event loop: one task owns the core and drives it, etcd-raft style.
//!
//! Inputs arrive on one channel (peer RPCs, client proposals and reads,
//! status and snapshot requests, background-snapshot completions, word of
//! InstallSnapshot chunks arriving or being read while a snapshot streams)
//! or from the two timers (a randomized election timeout and the heartbeat).
//! The loop takes one input, then every input already waiting (up to
//! [`MAX_BATCH`](crate::limits::MAX_BATCH)), feeding each to the core; then
//! it performs the batch's effects in this order:
//!
//! 1. **persist** everything the batch changed — hard state, log entries, a
//!    new snapshot — in one append to the log file and one fdatasync
//!    (group commit); but a leader's own new entries, with parallel writes
//!    (`parallel_write`, the default), are only *started* here when nothing
//!    else is to be written: the write runs beside what follows, and the
//!    loop takes its completion like an input (the core's `LogPersisted`),
//!    until when the core does not count the leader as holding them. One
//!    such write runs at a time: entries appended while it runs wait, and
//!    the next write, started as soon as it completes, takes them all (the
//!    loop never stops for a write it did not need to wait for);
//! 2. **send** the batch's messages (replies to peer RPCs included);
//! 3. **apply** newly committed entries to the state machine;
//! 4. **answer** clients whose writes applied or whose reads are confirmed
//!    and applied, and status requests (so that a status never reports a
//!    term or commit index that is not yet durable, which a crash before
//!    the fdatasync would undo).
//!
//! Sending every message of the batch after the batch's state is durable is
//! the same as running the transitions one by one with their messages delayed
//! until after the later transitions: a legal Raft execution, and each
//! message leaves only after everything it depends on is on disk — but a
//! leader's AppendEntries for entries it is still writing in parallel, which
//! promise nothing about its own disk (Raft dissertation §10.2.1; the core's
//! commit rule counts the leader only for what is durable). Writes reach the
//! disk in the order they were asked for: a write waits for the parallel
//! write before it (one storage, one order).
//!
//! No protocol decision is made here: who votes, what commits, who leads and
//! when a read is safe are all answered by the core (`raft_model::Server`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_model::{
    Body, Committed, Effects, Index, Persist, Refused, Role, SnapshotMeta, Step, Term,
};
use rand::RngExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::NodeConfig;
use crate::convert::Msg;
use crate::kv::{KvCommand, KvImage};
use crate::limits::MAX_BATCH;
use crate::members::{Addresses, Directory};
use crate::metrics as m;
use crate::peer_client::Peers;
use crate::readiness::{self, Contacts, Readiness};
#[cfg(feature = "seeded-bugs")]
use crate::seeded_bugs;
use crate::storage::{Storage, StorageError, WriteBatch};
use crate::trace::Tracer;
use crate::types::{
    Applied, Backup, ClientError, Core, ImageRead, Input, KeyRead, LeaderMoved, MembersChanged,
    NodeStatus, SnapshotReport, WaitingWrite, WaitingWrites,
};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the storage thread failed: {0}")]
    Join(String),
}

/// The effects of a batch of transitions, merged.
#[derive(Default)]
struct Ready {
    persist: Persist,
    messages: Vec<Msg>,
    replies: Vec<(oneshot::Sender<Option<Msg>>, Msg)>,
    snapshot_installed: bool,
    /// Entries committed by the batch's transitions, in order.
    committed: Vec<Committed<KvCommand>>,
    reset_election_timer: bool,
    reads_ready: Vec<(u64, Index)>,
    reads_failed: Vec<u64>,
    /// The leader's own entries from this index on may be written in
    /// parallel with the batch's messages (`Effects::parallel_log_from`).
    parallel_log_from: Option<Index>,
    /// Send AppendEntries at the end of the batch, whatever the peers'
    /// senders are doing: a configuration change reaches new members.
    replicate: bool,
    /// Client requests were accepted: replicate them at the end of the
    /// batch, unless every peer has a request in flight already
    /// (`Peers::all_sending`: each answer sends what is new).
    replicate_entries: bool,
    /// Reads opened a round: send it at the end of the batch, to as few
    /// voters as can confirm it (`send_read_round`), unless the batch sends
    /// AppendEntries to every peer anyway.
    read_round: bool,
    snapshot_reports: Vec<SnapshotReport>,
    /// Status requests of the batch: answered once the batch is durable.
    statuses: Vec<oneshot::Sender<NodeStatus>>,
}

impl Ready {
    fn absorb(&mut self, effects: Effects<KvCommand, KvImage>) {
        let Effects {
            persist,
            parallel_log_from,
            messages,
            commit_index: _,
            committed,
            appended_at: _,
            snapshot_installed,
            reads_ready,
            reads_failed,
            reset_election_timer,
        } = effects;
        self.persist.hard_state |= persist.hard_state;
        if let Some(from) = persist.log_from {
            self.persist.log_written_from(from);
        }
        self.persist.snapshot |= persist.snapshot;
        if let Some(from) = parallel_log_from {
            self.parallel_log_from = Some(self.parallel_log_from.map_or(from, |f| f.min(from)));
        }
        self.messages.extend(messages);
        self.snapshot_installed |= snapshot_installed;
        if !committed.is_empty() {
            self.committed.push(committed);
        }
        self.reset_election_timer |= reset_election_timer;
        self.reads_ready
            .extend(reads_ready.into_iter().map(|read| (read.id, read.index)));
        self.reads_failed.extend(reads_failed);
    }
}

/// A read waiting for its ReadIndex round and for the state machine to
/// reach the confirmed index.
enum PendingRead {
    Key(Vec<u8>, oneshot::Sender<Result<KeyRead, ClientError>>),
    Image(oneshot::Sender<Result<ImageRead, ClientError>>),
    Backup(oneshot::Sender<Result<Backup, ClientError>>),
}

impl PendingRead {
    fn fail(self, err: ClientError) {
        match self {
            PendingRead::Key(_, reply) => {
                let _ = reply.send(Err(err));
            }
            PendingRead::Image(reply) => {
                let _ = reply.send(Err(err));
            }
            PendingRead::Backup(reply) => {
                let _ = reply.send(Err(err));
            }
        }
    }
}

pub(crate) struct EventLoop {
    config: Arc<NodeConfig>,
    core: Core,
    storage: Arc<Storage>,
    image: KvImage,
    applied: Index,
    peers: Peers,
    inbox: mpsc::Receiver<Input>,
    inbox_tx: mpsc::Sender<Input>,
    proposals: WaitingWrites,
    reads: HashMap<u64, PendingRead>,
    /// Confirmed reads waiting for the state machine to reach their index.
    confirmed_reads: Vec<(Index, u64)>,
    next_read_id: u64,
    snapshot_in_progress: bool,
    snapshot_waiters: Vec<oneshot::Sender<Result<SnapshotReport, String>>>,
    /// Core-event trace (`--trace-dir`), off by default.
    trace: Tracer,
    /// Who we heard from lately, for [`Readiness`].
    contacts: Contacts,
    /// Where the loop publishes readiness (gRPC health watches it).
    readiness: watch::Sender<Readiness>,
    /// The leader and term whose snapshot chunks are arriving, once counted
    /// (to say so once per stream).
    snapshot_streaming_from: Option<(raft_model::NodeId, Term)>,
    /// A leadership transfer this node (as leader) started, and who waits
    /// for its outcome.
    transfer: Option<PendingTransfer>,
    /// The address book (crate::members): config file, overlaid with the
    /// replicated addresses; and where it is published with the
    /// configuration, for the services.
    addresses: Addresses,
    /// The incarnations the replicated book records (crate::incarnation).
    incarnations: crate::incarnation::Incarnations,
    directory: watch::Sender<Arc<Directory>>,
    /// A membership change this node (as leader) started, and who waits
    /// for C_new to commit.
    change: Option<PendingChange>,
    /// Whether this node was a voter of its configuration after the last
    /// batch (None before the first): a change is logged once.
    was_member: Option<bool>,
    /// Whether this node was a learner at the last batch (to log the change).
    was_learner: bool,
    /// A member has told this node it was removed (said once).
    told_removed: bool,
    /// The configuration's index, kept without walking the log each batch.
    config_index: config_index::ConfigIndex,
    /// The per-batch metrics' handles (crate::metrics::LoopMetrics).
    metrics: m::LoopMetrics,
    /// What `refresh_members` read last, to skip it when nothing changed.
    members_inputs: members_inputs::MembersInputs,
    /// The leader's write started in parallel with replication and not yet
    /// awaited: every later write waits for it (one order on the disk), and
    /// the loop waits for it beside its inputs. It yields the index and
    /// term of the last entry it wrote.
    parallel_write: Option<JoinHandle<Result<(Index, Term), NodeError>>>,
    /// The first of the leader's own entries appended while the parallel
    /// write ran, none of them written yet: the next write (parallel, when
    /// this one completes, or the next batch's sync write) starts here.
    parallel_pending_from: Option<Index>,
    /// The leader's own entries up to each of these are durable (a parallel
    /// write awaited before another write, or written with the last batch's
    /// write): the core learns it at the next batch (`Step::LogPersisted`;
    /// one it no longer needs is refused and changes nothing).
    written: Vec<(Index, Term)>,
}

/// A membership change under way at this node (as leader).
struct PendingChange {
    /// What is changed: the voters (through C_old,new) or the learners.
    target: membership::Target,
    /// The term in which this node, as leader, appended C_old,new, and its
    /// index: the change is done once a simple configuration equal to
    /// `members` at a later index has committed.
    term: Term,
    joint_index: Index,
    reply: oneshot::Sender<Result<MembersChanged, ClientError>>,
}

/// A leadership transfer under way at this node.
struct PendingTransfer {
    to: raft_model::NodeId,
    /// The term in which this node, as leader, started it.
    term: Term,
    reply: oneshot::Sender<Result<LeaderMoved, ClientError>>,
}

impl EventLoop {
    pub(crate) fn new(
        config: Arc<NodeConfig>,
        core: Core,
        storage: Arc<Storage>,
        peers: Peers,
        inbox: mpsc::Receiver<Input>,
        inbox_tx: mpsc::Sender<Input>,
    ) -> Self {
        let image = core.snapshot().data.clone();
        let applied = core.snapshot().meta.last_index;
        EventLoop {
            config,
            core,
            storage,
            image,
            applied,
            peers,
            inbox,
            inbox_tx,
            proposals: BTreeMap::new(),
            reads: HashMap::new(),
            confirmed_reads: Vec::new(),
            next_read_id: 1,
            snapshot_in_progress: false,
            snapshot_waiters: Vec::new(),
            trace: Tracer::default(),
            contacts: Contacts::default(),
            readiness: watch::channel(Readiness::starting()).0,
            snapshot_streaming_from: None,
            transfer: None,
            addresses: Addresses::new(),
            incarnations: Default::default(),
            directory: watch::channel(Arc::new(Directory::default())).0,
            change: None,
            was_member: None,
            was_learner: false,
            told_removed: false,
            config_index: config_index::ConfigIndex::default(),
            metrics: m::LoopMetrics::registered(),
            members_inputs: members_inputs::MembersInputs::default(),
            parallel_write: None,
            parallel_pending_from: None,
            written: Vec::new(),
        }
    }

    /// Publishes the configuration and the address book to `directory`
    /// after every batch (the services' leader hints, MemberList, and the
    /// peer service's check of vote requests read it).
    pub(crate) fn with_directory(mut self, directory: watch::Sender<Arc<Directory>>) -> Self {
        self.directory = directory;
        self
    }

    /// Publishes the node's readiness to `readiness` after every batch.
    pub(crate) fn with_readiness(mut self, readiness: watch::Sender<Readiness>) -> Self {
        self.readiness = readiness;
        self
    }

    /// Records every call into the core to `trace`.
    pub(crate) fn with_trace(mut self, trace: Tracer) -> Self {
        self.trace = trace;
        self
    }

    fn election_timeout(&self) -> Duration {
        let (low, high) = self.config.election_timeout;
        rand::rng().random_range(low..high)
    }

    /// Runs until the task is aborted (a crash-stop: nothing after the last
    /// completed step is persisted or sent), or until storage fails — then the
    /// node must stop, as it can no longer keep its promises.
    pub(crate) async fn run(mut self) -> Result<(), NodeError> {
        let election = tokio::time::sleep(self.election_timeout());
        tokio::pin!(election);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.refresh_members();
        self.update_metrics();
        loop {
            let mut ready = Ready::default();
            if !self.written.is_empty() {
                // The last batch's write made the leader's own entries
                // durable: no need to wait for an input to say so.
                for (index, term) in std::mem::take(&mut self.written) {
                    self.log_persisted(index, term, &mut ready);
                }
            } else {
                let writing = self.parallel_write.is_some();
                tokio::select! {
                    input = self.inbox.recv() => {
                        let Some(input) = input else { return Ok(()) };
                        self.handle(input, &mut ready);
                    }
                    // The parallel write completed (a failure stops the
                    // node): the core may count the leader for its entries.
                    written = async {
                        match &mut self.parallel_write {
                            Some(write) => write.await,
                            None => std::future::pending().await,
                        }
                    }, if writing => {
                        self.parallel_write = None;
                        let (index, term) =
                            written.map_err(|err| NodeError::Join(err.to_string()))??;
                        self.log_persisted(index, term, &mut ready);
                    }
                    () = &mut election => {
                        debug!(term = self.core.current_term(), "election timeout");
                        // A leader has no election to start; its timer paces
                        // CheckQuorum instead (refused when that is off), unless
                        // a snapshot under way makes up its quorum, and
                        // AbortTransfer.
                        if !self.core.is_leader() {
                            self.step_timer(Step::Timeout, &mut ready);
                        } else {
                            if !self.check_quorum_waits_for_snapshot() {
                                self.step_timer(Step::CheckQuorum, &mut ready);
                            }
                            // A leadership transfer not done within an election
                            // timeout is given up (refused when none is under
                            // way).
                            self.step_timer(Step::AbortTransfer, &mut ready);
                        }
                        ready.reset_election_timer = true;
                    }
                    _ = heartbeat.tick() => {
                        self.step_timer(Step::SendAppendEntries, &mut ready);
                    }
                }
            }
            for _ in 1..MAX_BATCH {
                match self.inbox.try_recv() {
                    Ok(input) => self.handle(input, &mut ready),
                    Err(_) => break,
                }
            }
            if ready.replicate || (ready.replicate_entries && !self.peers.all_sending()) {
                self.step_timer(Step::SendAppendEntries, &mut ready);
            } else if ready.read_round {
                self.send_read_round(&mut ready);
            }
            // The timer restarts once the batch is durable: writing it (a
            // large snapshot from the leader, say) must not use up the
            // timeout that the leader's word in this batch just restarted.
            let reset_election_timer = ready.reset_election_timer;
            self.perform(ready).await?;
            if reset_election_timer {
                election
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.election_timeout());
            }
        }
    }

    fn handle(&mut self, input: Input, ready: &mut Ready) {
        match input {
            Input::PeerRequest { message, reply } => {
                let from = message.from;
                // Only a leader sends these: one accepted in our term is contact.
                let from_a_leader = matches!(
                    message.body,
                    Body::AppendEntriesRequest { .. } | Body::InstallSnapshotRequest { .. }
                );
                let term = message.term;
                if matches!(message.body, Body::InstallSnapshotRequest { .. }) {
                    self.snapshot_streaming_from = None;
                }
                let mut effects = self.receive(message);
                if from_a_leader
                    && term == self.core.current_term()
                    && self.core.leader_id() == Some(from)
                {
                    self.contacts.heard_from_leader(term, Instant::now());
                }
                let position = effects
                    .messages
                    .iter()
                    .position(|out| out.to == from && out.body.is_response());
                match position {
                    Some(at) => {
                        let answer = effects.messages.remove(at);
                        ready.replies.push((reply, answer));
                    }
                    None => {
                        let _ = reply.send(None);
                    }
                }
                ready.absorb(effects);
            }
            Input::SnapshotChunk { from, term } => {
                if readiness::snapshot_chunk_from_leader(&self.view(), from, term) {
                    if self.snapshot_streaming_from != Some((from, term)) {
                        info!(
                            from,
                            term,
                            "a snapshot from the leader is streaming in: each chunk restarts the election timer"
                        );
                        self.snapshot_streaming_from = Some((from, term));
                    }
                    self.contacts.heard_from_leader(term, Instant::now());
                    ready.reset_election_timer = true;
                } else {
                    debug!(
                        from,
                        term,
                        current_term = self.core.current_term(),
                        leader = ?self.core.leader_id(),
                        "snapshot chunk not counted as word from our leader"
                    );
                }
            }
            Input::SnapshotProgress { peer, term } => {
                if self.core.is_leader() && term == self.core.current_term() {
                    self.contacts.snapshot_progress(term, peer, Instant::now());
                }
            }
            Input::PeerResponse(message) => {
                let (term, from) = (message.term, message.from);
                let effects = self.receive(message);
                if self.core.is_leader() && term == self.core.current_term() {
                    self.contacts.heard_from_peer(term, from, Instant::now());
                }
                ready.absorb(effects);
            }
            Input::Propose { command, reply } => match self.step(Step::ClientRequest(command)) {
                Ok(effects) => {
                    // Asserted, not handled: a client request the core
                    // accepted always says where it appended the command.
                    let index = effects
                        .appended_at
                        .expect("an accepted client request names its index");
                    let waiting = WaitingWrite {
                        term: self.core.current_term(),
                        accepted: Instant::now(),
                        reply,
                    };
                    self.proposals.insert(index, waiting);
                    ready.absorb(effects);
                    ready.replicate_entries = true;
                }
                Err(refused) => {
                    let _ = reply.send(Err(ClientError::refused(refused)));
                }
            },
            Input::Read {
                key,
                serializable: true,
                reply,
            } => {
                let _ = reply.send(Ok(self.key_read(&key)));
            }
            Input::Read {
                key,
                serializable: false,
                reply,
            } => {
                #[cfg(feature = "seeded-bugs")]
                if self.config.seeded_bugs.stale_read && self.core.is_leader() {
                    // SEEDED BUG (testing only): no ReadIndex round.
                    let _ = reply.send(Ok(self.key_read(&key)));
                    return;
                }
                self.read_index(PendingRead::Key(key, reply), ready);
            }
            Input::ReadImage {
                serializable: true,
                reply,
            } => {
                let _ = reply.send(Ok(ImageRead {
                    image: self.image.clone(),
                    index: self.applied,
                    term: self.core.current_term(),
                }));
            }
            Input::ReadImage {
                serializable: false,
                reply,
            } => {
                #[cfg(feature = "seeded-bugs")]
                if self.config.seeded_bugs.stale_read && self.core.is_leader() {
                    // SEEDED BUG (testing only): no ReadIndex round.
                    let _ = reply.send(Ok(ImageRead {
                        image: self.image.clone(),
                        index: self.applied,
                        term: self.core.current_term(),
                    }));
                    return;
                }
                self.read_index(PendingRead::Image(reply), ready)
            }
            Input::Backup { reply } => self.read_index(PendingRead::Backup(reply), ready),
            // Answered at the end of the batch, from state made durable
            // (see `perform`): answered now, it could report a term or a
            // commit index that a crash before the batch's fdatasync undoes.
            Input::Status { reply } => ready.statuses.push(reply),
            Input::TransferLeader { to, reply } => self.transfer_leader(to, reply, ready),
            Input::ChangeMembers {
                members,
                addresses,
                reply,
            } => self.change_members(membership::Target::Voters(members), addresses, reply, ready),
            Input::ChangeLearners {
                learners,
                addresses,
                reply,
            } => self.change_members(
                membership::Target::Learners(learners),
                addresses,
                reply,
                ready,
            ),
            Input::Members { reply } => {
                let _ = reply.send(self.member_list());
            }
            Input::NotAMember { from, detail } => self.told_not_a_member(from, &detail),
            Input::PeerIncarnation { peer, incarnation } => {
                self.record_incarnation(peer, incarnation, ready)
            }
            Input::TakeSnapshot { reply } => {
                if self.snapshot_in_progress || self.start_snapshot() {
                    self.snapshot_waiters.push(reply);
                } else {
                    let _ = reply.send(Err(format!(
                        "nothing new to snapshot: the snapshot already covers the applied index {}",
                        self.applied
                    )));
                }
            }
            Input::SnapshotWritten(result, meta, image) => {
                self.snapshot_in_progress = false;
                match result {
                    Ok(report) => match self.compact_log(meta.last_index, image) {
                        Ok(effects) => {
                            ready.absorb(effects);
                            ready.snapshot_reports.push(report);
                        }
                        Err(refused) => {
                            // A snapshot from the leader got there first; ours is stale.
                            debug!(%refused, "local snapshot not used");
                            self.answer_snapshot_waiters(Err(refused.to_string()));
                        }
                    },
                    Err(message) => {
                        error!(%message, "writing a snapshot failed; the log is not compacted");
                        self.answer_snapshot_waiters(Err(message));
                    }
                }
            }
        }
    }

    /// Core CompactLog, with what it lets go of freed off the event loop.
    ///
    /// The prefix a snapshot covers is the whole log since the last one
    /// (`snapshot_threshold` entries, 100,000 by default), and the previous
    /// snapshot's image shares little with the new one after that many
    /// writes: freeing both inside the step took the loop 53-79 ms at 256
    /// clients, and every request in flight waited (issue 17, the p99.9 of
    /// puts); with them freed here, the step took 3-9 ms. O(1) clones taken
    /// before the step keep both alive past it; a blocking thread drops the
    /// clones (what the core still shares only loses a reference count).
    fn compact_log(
        &mut self,
        index: raft_model::Index,
        image: KvImage,
    ) -> Result<Effects<KvCommand, KvImage>, Refused> {
        let before = (
            self.core.log().entries.clone(),
            self.core.snapshot().data.clone(),
        );
        let result = self.step(Step::CompactLog { index, data: image });
        tokio::task::spawn_blocking(move || drop(before));
        result
    }

    /// The one way into the core: takes `step` and records it in the trace
    /// when the core takes it (a refused step changed nothing).
    fn step(
        &mut self,
        step: Step<KvCommand, KvImage, Msg>,
    ) -> Result<Effects<KvCommand, KvImage>, Refused> {
        let traced = self.trace.capture(&step);
        let before = (
            self.core.current_term(),
            self.core.role(),
            self.core.leader_id(),
        );
        let effects = self.core.step(step)?;
        self.trace.record(traced, &self.core, &effects);
        self.log_transition(before);
        Ok(effects)
    }

    /// Says at info level what a step changed in who leads: a new term, an
    /// election started, a leader won or learned, leadership lost. These
    /// are the lines an operator reads to reconstruct an incident.
    fn log_transition(&mut self, (term, role, leader): (Term, Role, Option<raft_model::NodeId>)) {
        let now = (
            self.core.current_term(),
            self.core.role(),
            self.core.leader_id(),
        );
        if now == (term, role, leader) {
            return;
        }
        let (new_term, new_role, new_leader) = now;
        self.contacts.enter_term(new_term);
        match new_role {
            Role::PreCandidate if role != Role::PreCandidate => {
                info!(
                    term = new_term,
                    "election timeout: asking for pre-votes (PreVote), term unchanged"
                )
            }
            Role::Candidate if role == Role::PreCandidate => {
                info!(
                    term = new_term,
                    previous_term = term,
                    "a quorum granted pre-votes: campaigning"
                )
            }
            Role::Candidate if role != Role::Candidate || new_term != term => {
                info!(
                    term = new_term,
                    previous_term = term,
                    "election timeout: campaigning"
                )
            }
            Role::Leader if role != Role::Leader => {
                info!(term = new_term, "elected leader")
            }
            Role::Follower if role == Role::Leader && new_term == term => {
                warn!(
                    term = new_term,
                    "stepped down: no quorum answered within an election timeout (CheckQuorum)"
                )
            }
            Role::Follower if role == Role::Leader => {
                info!(term = new_term, previous_term = term, leader = ?new_leader, "stepped down: no longer leader")
            }
            _ if new_term != term => {
                info!(term = new_term, previous_term = term, leader = ?new_leader, role = ?new_role, "term changed")
            }
            _ => {}
        }
        if new_leader != leader && new_role == Role::Follower {
            if let Some(id) = new_leader {
                info!(term = new_term, leader = id, "following a new leader");
            }
        }
    }

    /// CheckQuorum is due, but the peers that answered since the last check
    /// are no quorum. If the peers reading a snapshot of ours (recently,
    /// within the election timeout) make one, the check waits for the next
    /// firing of the timer: such a peer answers only once the whole snapshot
    /// is installed, and stepping down meanwhile would only restart the
    /// transfer after an election. The core's record of who answered keeps
    /// growing meanwhile, and the core still decides when the check runs.
    /// (Readiness does not count those peers: until they answer, the leader
    /// cannot commit with them.)
    fn check_quorum_waits_for_snapshot(&self) -> bool {
        if !self.core.check_quorum_enabled() {
            return false;
        }
        let me = self.core.id();
        let mut active: Vec<raft_model::NodeId> =
            self.core.recent_active().iter().copied().collect();
        active.push(me);
        let config = self.core.config();
        if config.is_quorum(&active) {
            return false;
        }
        let term = self.core.current_term();
        let reading: Vec<raft_model::NodeId> = self
            .contacts
            .reading_snapshot(term, Instant::now(), self.config.election_timeout.1)
            .filter(|peer| !active.contains(peer))
            .collect();
        if reading.is_empty() || !config.is_quorum(active.iter().chain(&reading)) {
            return false;
        }
        info!(
            term,
            answered = ?active,
            reading_snapshot = ?reading,
            "CheckQuorum put off: a quorum counts peers still reading our snapshot"
        );
        true
    }

    /// A timer fired: the step it asks for, if the core's state enables it
    /// (an election timeout at a leader, a heartbeat at a follower are not
    /// actions).
    fn step_timer(&mut self, step: Step<KvCommand, KvImage, Msg>, ready: &mut Ready) {
        if let Some(effects) = self.step_if_enabled(step) {
            ready.absorb(effects);
        }
    }

    /// A timer's step: its effects, or None when the core's state does not
    /// enable it.
    fn step_if_enabled(
        &mut self,
        step: Step<KvCommand, KvImage, Msg>,
    ) -> Option<Effects<KvCommand, KvImage>> {
        match self.step(step) {
            Ok(effects) => Some(effects),
            Err(Refused::NotEnabled(_)) => None,
            Err(refused) => {
                unreachable!("a timer step is refused only when not enabled: {refused}")
            }
        }
    }

    /// The leader's own entries up to `index` (of `term`) are durable: the
    /// core may count it as holding them. A report that tells the core
    /// nothing new (a step-down made those entries durable first, or they
    /// were replaced since) is refused, and changes nothing.
    fn log_persisted(&mut self, index: Index, term: Term, ready: &mut Ready) {
        match self.step(Step::LogPersisted { index, term }) {
            Ok(effects) => ready.absorb(effects),
            Err(Refused::NotEnabled(_)) => {
                debug!(
                    index,
                    term, "a parallel write completed that the core no longer waits for"
                )
            }
            Err(refused) => {
                unreachable!("LogPersisted is refused only when it is not enabled: {refused}")
            }
        }
    }

    /// Waits for the write started in parallel by an earlier batch, if any:
    /// a write must not overtake it, and its failure stops the node. The
    /// core learns what it wrote at the next batch.
    async fn finish_parallel_write(&mut self) -> Result<(), NodeError> {
        if let Some(write) = self.parallel_write.take() {
            let done = write
                .await
                .map_err(|err| NodeError::Join(err.to_string()))??;
            self.written.push(done);
        }
        Ok(())
    }

    /// Starts writing the leader's own entries `from..=last` without waiting
    /// for the write: it runs while the batch's messages are sent and the
    /// next batches are taken, and the loop takes its completion (`run`).
    async fn start_parallel_write(&mut self, from: Index) -> Result<(), NodeError> {
        self.finish_parallel_write().await?;
        let log = self.core.log();
        let (index, term) = (log.last_index(), log.last_term());
        let mut batch = WriteBatch::default();
        batch.set_log_from(log, from);
        batch.set_commit_index(self.core.commit_index());
        let storage = self.storage.clone();
        let fsync_seconds = self.metrics.fsync_seconds.clone();
        // A blocking thread's task itself, not an async task awaiting one:
        // its completion wakes the loop directly, one cross-thread wake-up
        // per write instead of two.
        self.parallel_write = Some(tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            storage.write(batch)?;
            fsync_seconds.record(started.elapsed().as_secs_f64());
            Ok((index, term))
        }));
        Ok(())
    }

    /// A peer message into the core. One the core does not accept (not
    /// addressed to us by a member) is dropped: peers are not trusted.
    fn receive(&mut self, message: Msg) -> Effects<KvCommand, KvImage> {
        match self.step(Step::receive(message)) {
            Ok(effects) => effects,
            Err(refused) => {
                debug!(%refused, "peer message dropped");
                Effects::default()
            }
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.core.id(),
            role: self.core.role(),
            term: self.core.current_term(),
            leader: self.core.leader_id(),
            commit_index: self.core.commit_index(),
            applied_index: self.applied,
            last_log_index: self.core.log().last_index(),
            snapshot_index: self.core.log().snapshot_index,
            members: self.core.config().members.iter().copied().collect(),
            learners: self.core.config().learners.iter().copied().collect(),
            readiness: self.readiness.borrow().clone(),
            incarnation: self.config.incarnation.clone(),
        }
    }

    /// What the core says of this node, for [`readiness`].
    fn view(&self) -> readiness::View {
        readiness::View {
            id: self.core.id(),
            role: self.core.role(),
            term: self.core.current_term(),
            leader: self.core.leader_id(),
            config: self.core.config().clone(),
        }
    }

    /// Re-assesses readiness (after every batch) and publishes a change,
    /// logging when the node starts or stops serving.
    fn update_readiness(&mut self) {
        let now = readiness::assess(
            &self.view(),
            &self.contacts,
            Instant::now(),
            self.config.election_timeout.1,
        );
        let ready_gauge = &self.metrics.ready;
        self.readiness.send_if_modified(|published| {
            if *published == now {
                return false;
            }
            ready_gauge.set(if now.serving { 1.0 } else { 0.0 });
            if published.serving != now.serving {
                info!(serving = now.serving, reason = %now.reason, "readiness changed");
            } else {
                debug!(serving = now.serving, reason = %now.reason, "readiness");
            }
            *published = now;
            true
        });
    }

    /// Performs a batch's effects in order: persist, send, apply, answer.
    async fn perform(&mut self, ready: Ready) -> Result<(), NodeError> {
        // 0. The batch's trace lines reach the kernel before anything of it
        // is durable or sent (see raft_trace::writer).
        self.trace.flush();

        #[cfg(feature = "seeded-bugs")]
        let mut ready = ready;
        #[cfg(feature = "seeded-bugs")]
        if self.config.seeded_bugs.send_before_durable {
            // SEEDED BUG (testing only): speak before the batch is durable.
            for (reply, message) in ready.replies.drain(..) {
                let _ = reply.send(Some(message));
            }
            for message in ready.messages.drain(..) {
                self.peers.send(message);
            }
        }

        // 1. Persist (one commit, one fsync). The leader's own new entries
        // join it when there is something else to write anyway; alone, they
        // are written in parallel with what follows.
        let mut batch = WriteBatch::default();
        if ready.persist.hard_state {
            batch.set_hard_state(self.core.current_term(), self.core.voted_for());
        }
        if ready.persist.snapshot {
            // An installed snapshot may have discarded the whole log.
            batch.set_snapshot(self.core.snapshot(), self.core.log());
        }
        let sync = !batch.is_empty() || ready.persist.log_from.is_some();
        // The leader's own entries to write: this batch's, and those that
        // waited for the write under way when they were appended.
        let parallel = match (ready.parallel_log_from, self.parallel_pending_from.take()) {
            (Some(new), Some(waiting)) => Some(new.min(waiting)),
            (new, waiting) => new.or(waiting),
        };
        let log_from = match (ready.persist.log_from, parallel) {
            (Some(from), Some(also)) => Some(from.min(also)),
            (Some(from), None) => Some(from),
            (None, also) if sync => also,
            (None, _) => None,
        };
        if let Some(from) = log_from {
            batch.set_log_from(self.core.log(), from);
        }
        if !batch.is_empty() {
            // After the write started in parallel before it, if any.
            self.finish_parallel_write().await?;
            batch.set_commit_index(self.core.commit_index());
            let started = Instant::now();
            // On this task's worker, not a blocking thread: the loop has
            // nothing to do until the write is durable (a follower answers
            // only then), and the hand-off to a blocking thread and back
            // cost two cross-thread wake-ups per batch; the other workers
            // serve the network meanwhile. Measured side by side (issue 17):
            // puts/s +4.6 % at 16 clients, +5.9 % at 64, +1 % at 256. A
            // batch with a snapshot may write its whole file first: that
            // one still goes to a blocking thread, as every write does on a
            // current-thread runtime (unit tests that hold writes at a gate
            // there would stop the one thread that opens it).
            let inline = !batch.has_snapshot()
                && tokio::runtime::Handle::current().runtime_flavor()
                    == tokio::runtime::RuntimeFlavor::MultiThread;
            if inline {
                self.storage.write(batch)?;
            } else {
                let storage = self.storage.clone();
                tokio::task::spawn_blocking(move || storage.write(batch))
                    .await
                    .map_err(|err| NodeError::Join(err.to_string()))??;
            }
            self.metrics
                .fsync_seconds
                .record(started.elapsed().as_secs_f64());
            let log = self.core.log();
            if parallel.is_some() && self.core.durable_index() < log.last_index() {
                // Written with the rest, up to the last entry.
                self.written.push((log.last_index(), log.last_term()));
            }
        } else if let Some(from) = parallel {
            if self
                .parallel_write
                .as_ref()
                .is_some_and(|w| !w.is_finished())
            {
                // One parallel write at a time: these wait for the next, which
                // `run` starts when this one completes, with whatever else
                // waits by then (fewer fdatasyncs, and the loop goes on).
                self.parallel_pending_from = Some(from);
            } else {
                self.start_parallel_write(from).await?;
            }
        }
        // Checked when no write is under way (a parallel one holds the
        // storage's lock for its fdatasync).
        if self.parallel_write.as_ref().is_none_or(|w| w.is_finished()) {
            self.storage.assert_durable(
                self.core.current_term(),
                self.core.voted_for(),
                self.core.log(),
                self.core.durable_index(),
            );
        }
        self.trace.persisted();
        #[cfg(feature = "seeded-bugs")]
        if self.config.seeded_bugs.ack_before_commit && self.core.is_leader() {
            // SEEDED BUG (testing only): answer writes before they commit.
            seeded_bugs::ack_uncommitted(
                &self.image,
                self.applied,
                self.core.log(),
                &mut self.proposals,
            );
        }

        // 2. Send: replies to peer RPCs, then our own requests, to the
        // voters of the configuration in force now (it may have changed in
        // this batch: crate::members).
        self.refresh_members();
        for (reply, message) in ready.replies {
            let _ = reply.send(Some(message));
        }
        for message in ready.messages {
            self.peers.send(message);
        }

        // 3. Apply.
        if ready.snapshot_installed {
            self.install_snapshot_image();
        }
        for committed in &ready.committed {
            self.apply_committed(committed);
        }

        // 4. Answer.
        for report in ready.snapshot_reports {
            info!(
                index = report.index,
                keys = report.keys,
                bytes = report.bytes,
                ms = report.write_time.as_millis() as u64,
                "snapshot taken; log compacted"
            );
            metrics::gauge!(m::SNAPSHOT_BYTES).set(report.bytes as f64);
            metrics::gauge!(m::SNAPSHOT_SECONDS).set(report.write_time.as_secs_f64());
            self.answer_snapshot_waiters(Ok(report));
        }
        for id in ready.reads_failed {
            if let Some(read) = self.reads.remove(&id) {
                read.fail(ClientError::NotLeader {
                    leader: self.core.leader_id(),
                });
            }
        }
        self.confirmed_reads
            .extend(ready.reads_ready.into_iter().map(|(id, index)| (index, id)));
        self.serve_reads();
        self.fail_orphaned_proposals();
        if !self.snapshot_in_progress
            && snapshot_schedule::snapshot_due(
                self.applied,
                self.core.log().snapshot_index,
                self.config.snapshot_threshold,
                self.core.id(),
            )
        {
            self.start_snapshot();
        }
        self.settle_transfer();
        self.settle_change();
        self.update_metrics();
        self.update_readiness();
        // 5. Status, now that everything the batch changed is durable
        // (asserted above): the term, vote, log and snapshot reported are
        // what a restart recovers, and the commit index reported is backed
        // by durable entries.
        if !ready.statuses.is_empty() {
            let status = self.status();
            for reply in ready.statuses {
                let _ = reply.send(status.clone());
            }
        }
        Ok(())
    }

    /// Starts moving leadership to `to` (core TransferLeadership); the
    /// answer waits for the outcome (see [`Self::settle_transfer`]).
    /// Leadership already at `to` is success at once, so that an operator's
    /// retry after a lost answer does not fail.
    fn transfer_leader(
        &mut self,
        to: raft_model::NodeId,
        reply: oneshot::Sender<Result<LeaderMoved, ClientError>>,
        ready: &mut Ready,
    ) {
        let term = self.core.current_term();
        if self.core.is_leader() && to == self.core.id() {
            let _ = reply.send(Ok(LeaderMoved { leader: to, term }));
            return;
        }
        match self.step(Step::TransferLeadership(to)) {
            Ok(effects) => {
                info!(
                    to,
                    term, "leadership transfer started: writes are refused until it ends"
                );
                ready.absorb(effects);
                self.transfer = Some(PendingTransfer { to, term, reply });
            }
            Err(refused) => {
                let _ = reply.send(Err(ClientError::refused(refused)));
            }
        }
    }

    /// Answers the transfer's requester once it has an outcome: a leader of
    /// a later term is known (normally the target), or this node is still
    /// leader of the same term with the transfer given up (AbortTransfer
    /// after an election timeout). Until then, it waits: a deposed leader
    /// learns who won from the winner's first AppendEntries.
    fn settle_transfer(&mut self) {
        let Some(transfer) = &self.transfer else {
            return;
        };
        let (term, leader) = (self.core.current_term(), self.core.leader_id());
        let outcome = if term > transfer.term
            && let Some(leader) = leader
        {
            if leader == transfer.to {
                info!(leader, term, "leadership transfer done");
            } else {
                warn!(
                    to = transfer.to,
                    leader, term, "leadership transfer: another member won the election"
                );
            }
            Ok(LeaderMoved { leader, term })
        } else if term == transfer.term
            && self.core.is_leader()
            && self.core.lead_transferee().is_none()
        {
            warn!(
                to = transfer.to,
                term,
                "leadership transfer given up after an election timeout; writes accepted again"
            );
            Err(ClientError::Aborted(format!(
                "node {} did not take over within an election timeout (is it up, and its log caught up?); node {} is still the leader and accepts writes again",
                transfer.to,
                self.core.id()
            )))
        } else {
            return;
        };
        if let Some(transfer) = self.transfer.take() {
            let _ = transfer.reply.send(outcome);
        }
    }

    /// The core adopted a snapshot (from the leader): the state machine
    /// becomes its image. Writes waiting at indexes it covers can no longer be
    /// matched to their entries; their clients retry with the same sequence
    /// number and the session table answers them.
    fn install_snapshot_image(&mut self) {
        self.image = self.core.snapshot().data.clone();
        self.applied = self.core.snapshot().meta.last_index;
        info!(index = self.applied, "installed a snapshot from the leader");
        let covered: Vec<Index> = self
            .proposals
            .range(..=self.applied)
            .map(|(i, _)| *i)
            .collect();
        for index in covered {
            if let Some(waiting) = self.proposals.remove(&index) {
                let _ = waiting.reply.send(Err(ClientError::Retry(
                    "the outcome is unknown (a snapshot replaced this node's log); retry with the same sequence number".into(),
                )));
            }
        }
    }

    /// Applies the entries the core committed, in order. Entries a snapshot
    /// installed in the same batch already covers are skipped.
    fn apply_committed(&mut self, committed: &Committed<KvCommand>) {
        for (index, entry) in committed.iter() {
            if index <= self.applied {
                continue;
            }
            // The core commits contiguously from its commit index, which
            // the state machine has reached: a gap would apply out of order.
            assert_eq!(
                index,
                self.applied + 1,
                "committed entries must arrive in order"
            );
            let outcome = match &entry.payload {
                // A configuration is the core's: nothing for the KV store.
                raft_model::Payload::Noop | raft_model::Payload::Config(_) => None,
                raft_model::Payload::Command(command) => Some(self.image.apply(index, command)),
            };
            self.applied = index;
            if let Some(waiting) = self.proposals.remove(&index) {
                let answer = match outcome {
                    _ if waiting.term != entry.term => Err(ClientError::Retry(
                        "leadership changed before the write committed; retry with the same sequence number".into(),
                    )),
                    Some(Ok(result)) => Ok(Applied {
                        index,
                        term: entry.term,
                        result,
                    }),
                    Some(Err(err)) => Err(ClientError::Apply(err)),
                    None => Err(ClientError::Retry("entry was replaced".into())),
                };
                self.metrics
                    .proposal_seconds
                    .record(waiting.accepted.elapsed().as_secs_f64());
                let _ = waiting.reply.send(answer);
            }
        }
    }

    /// One key's entry as of what this node has applied.
    fn key_read(&self, key: &[u8]) -> KeyRead {
        KeyRead {
            kv: self.image.get(key).cloned(),
            index: self.applied,
            revision: self.image.revision,
            term: self.core.current_term(),
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let (now, later): (Vec<_>, Vec<_>) = self
            .confirmed_reads
            .drain(..)
            .partition(|(index, _)| *index <= applied);
        self.confirmed_reads = later;
        for (_, id) in now {
            match self.reads.remove(&id) {
                Some(PendingRead::Key(key, reply)) => {
                    let _ = reply.send(Ok(self.key_read(&key)));
                }
                Some(PendingRead::Image(reply)) => {
                    let _ = reply.send(Ok(ImageRead {
                        image: self.image.clone(),
                        index: applied,
                        term: self.core.current_term(),
                    }));
                }
                Some(PendingRead::Backup(reply)) => {
                    let _ = reply.send(Ok(Backup {
                        meta: self.meta_at_applied(),
                        image: self.image.clone(),
                    }));
                }
                None => {}
            }
        }
    }

    /// Steps a ReadIndex for `read`, answered by `serve_reads` once
    /// confirmed and applied; refused at once when the core refuses.
    fn read_index(&mut self, read: PendingRead, ready: &mut Ready) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        match self.step(Step::ReadIndex(id)) {
            Ok(effects) => {
                self.reads.insert(id, read);
                ready.absorb(effects);
                ready.read_round = true;
            }
            Err(refused) => read.fail(ClientError::refused(refused)),
        }
    }

    /// Steps `SendAppendEntries` for the reads of this batch alone, and
    /// sends its heartbeats only to the voters that confirm the round
    /// (`node::read_round`); requests that carry entries go to every peer.
    fn send_read_round(&mut self, ready: &mut Ready) {
        let Some(mut effects) = self.step_if_enabled(Step::SendAppendEntries) else {
            return;
        };
        let acks = self.core.read_acks();
        let chosen = read_round::read_round_peers(self.core.config(), self.core.id(), |peer| {
            acks.get(&peer).copied().unwrap_or(0)
        });
        if let Some(chosen) = chosen {
            effects.messages.retain(|message| {
                let heartbeat = matches!(
                    &message.body,
                    Body::AppendEntriesRequest { entries, .. } if entries.is_empty()
                );
                !heartbeat || chosen.contains(&message.to)
            });
        }
        ready.absorb(effects);
    }

    /// The snapshot metadata of the applied image: the applied index, its
    /// entry's term and the configuration in force there (a later one may
    /// be in the log already).
    fn meta_at_applied(&self) -> SnapshotMeta {
        let index = self.applied;
        let log = self.core.log();
        let term = if index == log.snapshot_index {
            log.snapshot_term
        } else {
            log.term_at(index)
                .expect("an applied entry is in the log or its snapshot")
        };
        SnapshotMeta {
            last_index: index,
            last_term: term,
            config: self.core.config_at(index).0,
        }
    }

    /// Writes proposed in a term this node no longer leads will not be
    /// answered by their entries (a new leader may overwrite them, or commit
    /// them without us knowing which client waits). Their clients retry at the
    /// new leader with the same sequence number; if the write did commit, the
    /// session table answers. (Reads of a lost term are failed by the core,
    /// through `reads_failed`.)
    fn fail_orphaned_proposals(&mut self) {
        let current = self.core.is_leader().then_some(self.core.current_term());
        let orphaned: Vec<Index> = self
            .proposals
            .iter()
            .filter(|(_, waiting)| Some(waiting.term) != current)
            .map(|(index, _)| *index)
            .collect();
        if orphaned.is_empty() {
            return;
        }
        let leader = self.core.leader_id();
        info!(
            term = self.core.current_term(),
            ?leader,
            waiting = orphaned.len(),
            "leadership lost; waiting writes must retry"
        );
        for index in orphaned {
            if let Some(waiting) = self.proposals.remove(&index) {
                let _ = waiting
                    .reply
                    .send(Err(ClientError::LeadershipLost { leader }));
            }
        }
    }

    /// Starts writing a snapshot of the applied state in the background: an
    /// O(1) clone of the image is serialized on a blocking thread while the
    /// loop keeps applying. Returns false when there is nothing new.
    fn start_snapshot(&mut self) -> bool {
        let index = self.applied;
        if index <= self.core.log().snapshot_index {
            return false;
        }
        let Some(term) = self.core.log().term_at(index) else {
            return false;
        };
        let meta = SnapshotMeta {
            last_index: index,
            last_term: term,
            // The configuration in force at `index`: a later one may be in
            // the log already.
            config: self.core.config_at(index).0,
        };
        let image = self.image.clone();
        let storage = self.storage.clone();
        let inbox = self.inbox_tx.clone();
        self.snapshot_in_progress = true;
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = storage
                .write_snapshot_file(&meta, &image)
                .map(|bytes| SnapshotReport {
                    index,
                    keys: image.data.len(),
                    bytes,
                    write_time: started.elapsed(),
                })
                .map_err(|err| err.to_string());
            let _ = inbox.blocking_send(Input::SnapshotWritten(result, meta, image));
        });
        true
    }

    fn answer_snapshot_waiters(&mut self, result: Result<SnapshotReport, String>) {
        for waiter in self.snapshot_waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }

    fn update_metrics(&self) {
        let role = match self.core.role() {
            Role::Follower => 0.0,
            Role::Candidate => 1.0,
            Role::Leader => 2.0,
            Role::PreCandidate => 3.0,
        };
        let gauges = &self.metrics;
        gauges.term.set(self.core.current_term() as f64);
        gauges.role.set(role);
        gauges.commit_index.set(self.core.commit_index() as f64);
        gauges.applied_index.set(self.applied as f64);
        gauges
            .apply_lag
            .set(self.core.commit_index().saturating_sub(self.applied) as f64);
        gauges
            .last_log_index
            .set(self.core.log().last_index() as f64);
        gauges
            .snapshot_index
            .set(self.core.log().snapshot_index as f64);
        let config = self.core.config();
        gauges.voters.set(config.voters().count() as f64);
        gauges.learners.set(config.learners.len() as f64);
        if self.core.is_leader() {
            let last = self.core.log().last_index();
            for learner in &config.learners {
                let matched = self.core.match_index().get(learner).copied().unwrap_or(0);
                metrics::gauge!(m::LEARNER_LAG, "learner" => learner.to_string())
                    .set(last.saturating_sub(matched) as f64);
            }
        }
    }
}

/// The running loop's task and its input channel.
pub(crate) fn spawn_loop(event_loop: EventLoop) -> JoinHandle<Result<(), NodeError>> {
    tokio::spawn(async move {
        let result = event_loop.run().await;
        if let Err(err) = &result {
            error!(%err, "the event loop stopped");
        } else {
            warn!("the event loop stopped: no more inputs");
        }
        result
    })
}

mod config_index;
mod members_inputs;
mod membership;
mod read_round;
mod scanned_to;
mod snapshot_schedule;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, Member};
    use raft_model::Message;

    /// A status request arriving in the same batch as a vote (a new term)
    /// is answered only once that batch is durable: never a term that a
    /// crash before the batch's fdatasync would undo.
    #[tokio::test]
    async fn status_is_answered_only_once_its_batch_is_durable() {
        let root = tempfile::tempdir().unwrap();
        let members = (1..=3)
            .map(|id| Member {
                id,
                // Nothing listens there: this node sends nothing anyway.
                address: format!("127.0.0.1:{}", 9 + id),
            })
            .collect();
        let config = NodeConfig::from_file_config(FileConfig {
            cluster_id: Some("status".into()),
            id: Some(1),
            data_dir: Some(root.path().join("node")),
            // No election while the test runs.
            election_timeout_ms: Some([60_000, 120_000]),
            members: Some(members),
            ..FileConfig::default()
        })
        .unwrap();
        let (event_loop, storage, inbox_tx) = event_loop_over(config);
        // Writes wait until the test opens the gate (`Opens`).
        let gate = Opens(storage.clone());
        gate.0.write_gate.close();
        let running = spawn_loop(event_loop);
        // Both inputs are queued before the loop first runs (this runtime
        // has one thread, and the test has not yielded): one batch.
        let (vote_reply, vote_answer) = oneshot::channel();
        let vote = Message {
            from: 2,
            to: 1,
            term: 5,
            body: Body::RequestVoteRequest {
                last_log_index: 0,
                last_log_term: 0,
                pre_vote: false,
            },
        };
        inbox_tx
            .try_send(Input::PeerRequest {
                message: vote,
                reply: vote_reply,
            })
            .unwrap();
        let (status_reply, mut status_answer) = oneshot::channel();
        inbox_tx
            .try_send(Input::Status {
                reply: status_reply,
            })
            .unwrap();
        let early = tokio::time::timeout(Duration::from_millis(500), &mut status_answer).await;
        drop(gate);
        if let Ok(answer) = early {
            panic!(
                "status answered while its batch (term 5, a vote for node 2) was not yet \
                 durable: term {:?}",
                answer.map(|status| status.term)
            );
        }
        let status = status_answer.await.unwrap();
        assert_eq!(status.term, 5);
        let vote = vote_answer.await.unwrap().expect("a vote response");
        assert_eq!(vote.term, 5);
        running.abort();
    }

    /// A node's event loop over `config`'s freshly initialised data
    /// directory (not yet running): the loop, its storage (with the test's
    /// write gate) and its inbox.
    fn event_loop_over(config: NodeConfig) -> (EventLoop, Arc<Storage>, mpsc::Sender<Input>) {
        crate::server::init_data_dir(&config).unwrap();
        let (storage, recovered) =
            Storage::open(&config.data_dir, &crate::server::identity(&config)).unwrap();
        let core = crate::server::recovered_core(&config, recovered);
        let storage = Arc::new(storage);
        let (inbox_tx, inbox) = mpsc::channel(16);
        let peers = Peers::new(&config, inbox_tx.clone());
        let event_loop = EventLoop::new(
            Arc::new(config),
            core,
            storage.clone(),
            peers,
            inbox,
            inbox_tx.clone(),
        );
        (event_loop, storage, inbox_tx)
    }

    /// A one-member cluster's event loop over a real data directory, run
    /// until it leads and its no-op is committed: its storage (with the
    /// test's write gate), its inbox, and the task.
    async fn single_leader(
        root: &std::path::Path,
        parallel: bool,
    ) -> (
        Arc<Storage>,
        mpsc::Sender<Input>,
        JoinHandle<Result<(), NodeError>>,
    ) {
        let config = NodeConfig::from_file_config(FileConfig {
            cluster_id: Some("parallel".into()),
            id: Some(1),
            data_dir: Some(root.join("node")),
            election_timeout_ms: Some([200, 400]),
            heartbeat_ms: Some(50),
            parallel_write: Some(parallel),
            members: Some(vec![Member {
                id: 1,
                address: "127.0.0.1:10".into(),
            }]),
            ..FileConfig::default()
        })
        .unwrap();
        let (event_loop, storage, inbox_tx) = event_loop_over(config);
        let running = spawn_loop(event_loop);
        // Alone in its configuration, it elects itself and commits its no-op.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = status(&inbox_tx).await.unwrap();
            if now.role == Role::Leader && now.commit_index == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (storage, inbox_tx, running)
    }

    fn status(inbox: &mpsc::Sender<Input>) -> oneshot::Receiver<NodeStatus> {
        let (reply, answer) = oneshot::channel();
        inbox.try_send(Input::Status { reply }).unwrap();
        answer
    }

    /// Proposes a put of `key`; the receiver answers once it applied.
    async fn propose(
        inbox: &mpsc::Sender<Input>,
        seq: u64,
        key: &str,
    ) -> oneshot::Receiver<Result<Applied, ClientError>> {
        let (reply, written) = oneshot::channel();
        let command = KvCommand::new(
            1,
            seq,
            crate::kv::KvOp::Put {
                key: key.into(),
                value: "v".into(),
            },
        );
        inbox.send(Input::Propose { command, reply }).await.unwrap();
        written
    }

    /// Opens the write gate when dropped, however the test ends: a write
    /// left waiting at the gate would hang the runtime's shutdown.
    struct Opens(Arc<Storage>);
    impl Drop for Opens {
        fn drop(&mut self) {
            self.0.write_gate.open();
        }
    }

    /// With parallel writes, a leader's client write does not hold the
    /// event loop at its fdatasync: while the write waits at the disk, a
    /// status request of a later batch is answered; the write itself is
    /// answered only once the leader's own write is durable (alone, it is
    /// its own quorum). Without them, the same status waits for the disk.
    #[tokio::test]
    async fn a_leader_s_write_runs_beside_the_loop_and_commits_once_durable() {
        for parallel in [true, false] {
            let root = tempfile::tempdir().unwrap();
            let (storage, inbox_tx, running) = single_leader(root.path(), parallel).await;
            let gate = Opens(storage.clone());
            gate.0.write_gate.close();
            let mut written = propose(&inbox_tx, 1, "k").await;
            let answered =
                tokio::time::timeout(Duration::from_millis(500), status(&inbox_tx)).await;
            assert_eq!(
                answered.is_ok(),
                parallel,
                "parallel writes {parallel}: a status answered while the write waits at the disk"
            );
            assert!(
                tokio::time::timeout(Duration::from_millis(100), &mut written)
                    .await
                    .is_err(),
                "the write was answered before the leader's own write of it was durable"
            );
            drop(gate);
            let applied = written.await.unwrap().expect("applied");
            assert_eq!(applied.index, 2, "after the leader's no-op");
            running.abort();
        }
    }

    /// Entries proposed while the leader's parallel write waits at the disk
    /// neither stop the loop (it used to wait for that write before starting
    /// theirs) nor commit before a later write of them completes.
    #[tokio::test]
    async fn entries_appended_during_a_parallel_write_wait_for_the_next_without_stopping_the_loop()
    {
        let root = tempfile::tempdir().unwrap();
        let (storage, inbox_tx, running) = single_leader(root.path(), true).await;
        let gate = Opens(storage.clone());
        gate.0.write_gate.close();
        let mut first = propose(&inbox_tx, 1, "a").await;
        // The first write is now under way, held at the gate.
        tokio::time::timeout(Duration::from_millis(500), status(&inbox_tx))
            .await
            .expect("the loop answers while the first write waits")
            .unwrap();
        let mut second = propose(&inbox_tx, 2, "b").await;
        let mut third = propose(&inbox_tx, 3, "c").await;
        let now = tokio::time::timeout(Duration::from_millis(500), status(&inbox_tx))
            .await
            .expect("the loop answers with entries waiting for the next write")
            .unwrap();
        assert_eq!(now.last_log_index, 4, "no-op and three puts appended");
        assert_eq!(
            now.commit_index, 1,
            "none of them durable on the leader yet"
        );
        for waiting in [&mut first, &mut second, &mut third] {
            assert!(
                tokio::time::timeout(Duration::from_millis(50), waiting)
                    .await
                    .is_err(),
                "answered before the leader's own write of it was durable"
            );
        }
        drop(gate);
        for (waiting, index) in [(first, 2), (second, 3), (third, 4)] {
            let applied = waiting.await.unwrap().expect("applied");
            assert_eq!(applied.index, index);
        }
        running.abort();
    }
}
