-------------------------------- MODULE Raft --------------------------------
(***************************************************************************)
(* Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus    *)
(* Algorithm") exactly as the Rust core `raft-model` (model/src) implements *)
(* it: leader election, log replication with a no-op per new leader, log   *)
(* compaction into snapshots and InstallSnapshot, crash/restart,          *)
(* linearizable reads through ReadIndex (paper 8), leadership transfer,    *)
(* membership changes by joint consensus (paper 6, dissertation ch. 4),    *)
(* a leader writing its own log in parallel with replication               *)
(* (dissertation 10.2.1: ParallelWriteOn, durableIndex, LogPersisted),     *)
(* and pipelined replication (MaxInflight: nextIndex advanced as entries   *)
(* are sent, a bounded window of them unacknowledged, ReplicateTo).        *)
(*                                                                         *)
(* One action per transition function of the core, with the same name      *)
(* (Timeout <-> timeout, HandleAppendEntriesRequest <->                    *)
(* handle_append_entries_request, ...); one variable per field of          *)
(* raft_model::Server, plus the network and the history/counter variables  *)
(* the checker keeps too. spec/README.md maps every action and             *)
(* variable to its Rust counterpart.                                       *)
(*                                                                         *)
(* How the actions mirror the Rust code. A Rust transition mutates `self`  *)
(* step by step and collects messages in `effects`. Here a transition of   *)
(* server i reads the server into a record s (Load(i): one field per       *)
(* variable, plus `sent` for the messages of this transition and the       *)
(* history deltas `electedNow`, `committedNow`, `registeredNow` and        *)
(* `readyNow`), passes it through operators that mirror the Rust helpers   *)
(* one for one (UpdateTerm, BecomeFollower, BecomeLeader,                  *)
(* AdvanceCommitIndex, AppendEntriesFor, AcknowledgeReadRound,             *)
(* ReleaseConfirmedReads, the log operations of model/src/log.rs), and     *)
(* writes the final record back with Store(i, s) (StoreReceived(i, m, s)  *)
(* for a handler, which consumes the received copy of m). So each action   *)
(* reads top to bottom like its Rust function, including the early returns *)
(* (an IF that returns s unchanged).                                       *)
(*                                                                         *)
(* The network is a bag (multiset) of messages: a function from each      *)
(* message in flight to its number of copies. A send adds a copy; a        *)
(* handler consumes the copy it receives, in the same step as it adds what *)
(* it sends. Any copy may be delivered next: reordering. The network's own *)
(* actions add a copy (DuplicateMessage) or lose one (DropMessage), each   *)
(* at most MaxDuplicates / MaxDrops times in a behaviour. A message that    *)
(* is never delivered stays in flight, so loss needs no action for safety; *)
(* DropMessage frees room under the bound on messages in flight.           *)
(*                                                                         *)
(* The constants MaxTerm, MaxClientRequests, MaxRestarts, MaxCompactions,  *)
(* MaxReads, MaxDuplicates and MaxDrops bound how often the environment    *)
(* fires the corresponding actions; they are the same guards the          *)
(* stateright checker places on its actions. The state constraint on log   *)
(* length and messages in flight lives in MCRaft.tla.                      *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets, Bags

CONSTANTS
    Server,             \* the server ids (raft_model::NodeId)
    Nil,                \* "no server": Rust `None` for votedFor and leaderId
    Noop,               \* the payload a new leader appends (Payload::Noop)
    MaxAppendEntries,   \* entries per AppendEntries request (Server::with_max_append_entries)
    MaxTerm,            \* Timeout is enabled only below this term
    MaxClientRequests,  \* how many ClientRequest actions may happen
    MaxRestarts,        \* how many Restart actions may happen
    MaxCompactions,     \* how many CompactLog actions may happen
    MaxReads,           \* how many ReadIndex actions may happen
    MaxDuplicates,      \* how many DuplicateMessage actions may happen
    MaxDrops,           \* how many DropMessage actions may happen (0: no loss)
    CheckQuorumOn,      \* leaders run CheckQuorum (Server::with_check_quorum)
    PreVoteOn,          \* a Timeout asks for pre-votes first (Server::with_pre_vote)
    MaxTransfers,       \* how many TransferLeadership actions may happen
    InitMembers,        \* the initial configuration (every server starts with it)
    MaxConfigChanges,   \* how many ChangeConfig actions may happen
    MaxLearnerChanges,  \* how many ChangeLearners actions may happen
    ParallelWriteOn,    \* a leader writes its appends in parallel with sending them
                        \* (Server::with_parallel_write)
    MaxInflight         \* pipelined replication's window, in requests of
                        \* MaxAppendEntries entries; 0: off (Server::with_max_inflight)

ASSUME /\ Server # {}
       /\ Nil \notin Server
       /\ Noop \notin Nat
       /\ MaxAppendEntries \in Nat \ {0}
       /\ MaxTerm \in Nat
       /\ MaxClientRequests \in Nat
       /\ MaxRestarts \in Nat
       /\ MaxCompactions \in Nat
       /\ MaxReads \in Nat
       /\ MaxDuplicates \in Nat
       /\ MaxDrops \in Nat
       /\ CheckQuorumOn \in BOOLEAN
       /\ PreVoteOn \in BOOLEAN
       /\ MaxTransfers \in Nat
       /\ InitMembers \subseteq Server /\ InitMembers # {}
       /\ MaxLearnerChanges \in Nat
       /\ MaxConfigChanges \in Nat
       /\ ParallelWriteOn \in BOOLEAN
       /\ MaxInflight \in Nat

\* Roles (raft_model::Role).
Follower == "Follower"
Candidate == "Candidate"
Leader == "Leader"
PreCandidate == "PreCandidate"  \* PreVote: asking before campaigning

-----------------------------------------------------------------------------
(* Variables. Per server, named after the fields of raft_model::Server.    *)

\* Persistent state: survives Restart.
VARIABLES
    currentTerm,    \* current_term
    votedFor,       \* voted_for: a server or Nil
    log,            \* log.entries: the entries AFTER the snapshot, [term, payload]
                    \* or, for a configuration entry, [term, config]
    snapshotIndex,  \* log.snapshot_index: index of the last entry in the snapshot
    snapshotTerm,   \* log.snapshot_term: its term
    snapshot,       \* snapshot: [lastIndex, lastTerm, config, data]; data is the
                    \* state-machine image = every entry up to lastIndex
    config          \* config: who votes, [members, old] (old = {} unless joint); a
                    \* function of log and snapshot: the latest configuration
                    \* entry in the log, else the snapshot's (LogConfig)

\* Volatile state: reset by Restart.
VARIABLES
    role,           \* role
    commitIndex,    \* commit_index
    leaderId,       \* leader_id: the leader of currentTerm once heard from, or Nil
    votesGranted,   \* votes_granted: candidate only
    nextIndex,      \* next_index: leader only, a function peer -> index
    matchIndex,     \* match_index: leader only, a function peer -> index
    readSeq,        \* read_seq: leader only, the latest ReadIndex round (0: none)
    readAcks,       \* read_acks: leader only, a function peer -> highest round it echoed
    pendingReads,   \* pending_reads: leader only, a sequence of [id, seq], seq increasing
    recentActive,   \* recent_active: leader only, with CheckQuorumOn: the peers that
                    \* answered a request of its term since its last CheckQuorum
    restartLease,   \* restart_lease: with PreVoteOn set by Restart past term 0, cleared by the next
                    \* Timeout: a restarted server refuses pre-votes for an election
                    \* timeout (always FALSE without PreVoteOn, which alone reads it)
    leadTransferee, \* lead_transferee: leader only, the peer it hands leadership to, or Nil
    durableIndex    \* durable_index: how far the server's own log is known durable.
                    \* LastIndex, but at a leader with ParallelWriteOn whose latest
                    \* appends are still being written (LogPersisted raises it)

\* The durable image of each server: what its storage holds, a record of the
\* persistent variables. Every action of server i sets durable[i] to what the
\* action persisted, and Restart(i) reloads the persistent variables from it.
\* The Rust core persists everything it changes before it speaks (its
\* Effects say what to persist), but for a leader's own appends with
\* ParallelWriteOn, which are durable from LogPersisted on: so durable[i]
\* always equals i's persistent state with the log cut at durableIndex[i]
\* (Persisted), a function of the other variables that adds no distinct
\* state. A Restart of a leader still writing loses its unwritten entries.
\* The variable is here because the checker also explores seeded bugs that
\* omit a persist effect (the change is made in memory but not written):
\* there the checker's durable image lags, a restart loses the change, and a
\* counterexample exported as a trace must fail TLC at that Restart, which
\* it does only if Restart reads the durable image rather than the
\* in-memory values.
VARIABLE durable

\* The network: a bag of messages, message -> number of copies in flight
\* (at least 1; DOMAIN messages is the set of messages in flight).
VARIABLE messages

\* History, read by the properties only; never by an action's guard.
VARIABLES
    elected,        \* {<<term, server>>}: every server that became leader, and when
    committed,      \* {<<index, entry term, leader term>>}: every entry a leader committed
    readBound,      \* <<b1, b2, ...>>: for read id k, the highest index in `committed`
                    \* when ReadIndex registered it (0 if none); Len(readBound) = reads
    readsReady      \* {<<id, index>>}: every read a leader released (Rust effects.reads_ready)

\* How often the bounded environment actions happened.
VARIABLES clientRequests, restarts, compactions, reads, duplicates, drops, transfers,
          configChanges, learnerChanges

persistentVars == <<currentTerm, votedFor, log, snapshotIndex, snapshotTerm, snapshot, config>>
volatileVars == <<role, commitIndex, leaderId, votesGranted, nextIndex, matchIndex,
                  readSeq, readAcks, pendingReads, recentActive, restartLease, leadTransferee,
                  durableIndex>>
historyVars == <<elected, committed, readBound, readsReady>>
counterVars == <<clientRequests, restarts, compactions, reads, duplicates, drops, transfers,
                 configChanges, learnerChanges>>
vars == <<persistentVars, durable, volatileVars, messages, historyVars, counterVars>>

-----------------------------------------------------------------------------
(* Small helpers.                                                          *)

Min(a, b) == IF a < b THEN a ELSE b
Max(a, b) == IF a > b THEN a ELSE b

\* The largest element of a non-empty finite set of naturals.
SetMax(S) == CHOOSE x \in S : \A y \in S : y <= x

\* The highest index any leader has committed so far (history; 0 if none).
CommittedIndex == IF committed = {} THEN 0 ELSE SetMax({c[1] : c \in committed})

\* The empty map a non-leader keeps in nextIndex and matchIndex (an empty OrdMap).
EmptyMap == [p \in {} |-> 0]

\* The network as a bag (the standard Bags module): one more copy of each
\* message of the set ms, one copy fewer of m (m leaves the bag at 0).
BagAdd(b, ms) == b (+) SetToBag(ms)
BagRemove(b, m) == b (-) SetToBag({m})

\* The number of copies in flight.
InFlight == BagCardinality(messages)

\* A configuration (raft_model::Config) is a record [members, old, learners]:
\* members is C_new of a joint configuration C_old,new, or the configuration
\* itself; old is C_old while joint, {} otherwise (Rust None); learners the
\* non-voting members, replicated to and counted in no quorum.
SimpleConfig(ms) == [members |-> ms, old |-> {}, learners |-> {}]
IsJoint(cfg) == cfg.old # {}

\* Config::contains / Config::voters: the servers of C_old and C_new.
Voters(cfg) == cfg.members \cup cfg.old

\* Config::replicas: every voter and learner but i, whom a leader replicates to.
ReplicasOf(cfg, i) == (Voters(cfg) \cup cfg.learners) \ {i}

\* A strict majority of the set ms is among ids.
Majority(ms, ids) == 2 * Cardinality(ids \cap ms) > Cardinality(ms)

\* Config::is_quorum: a majority of the members and, while joint, of C_old.
IsQuorum(cfg, ids) == Majority(cfg.members, ids) /\ (IsJoint(cfg) => Majority(cfg.old, ids))

-----------------------------------------------------------------------------
(* A transition's working copy of one server (the Rust `self`), plus what  *)
(* the transition produced so far (the Rust `effects.messages`, and the    *)
(* history it adds).                                                       *)

Load(i) ==
    [id |-> i,
     currentTerm |-> currentTerm[i], votedFor |-> votedFor[i], log |-> log[i],
     snapshotIndex |-> snapshotIndex[i], snapshotTerm |-> snapshotTerm[i],
     snapshot |-> snapshot[i], config |-> config[i],
     role |-> role[i], commitIndex |-> commitIndex[i], leaderId |-> leaderId[i],
     votesGranted |-> votesGranted[i], nextIndex |-> nextIndex[i],
     matchIndex |-> matchIndex[i],
     readSeq |-> readSeq[i], readAcks |-> readAcks[i], pendingReads |-> pendingReads[i],
     recentActive |-> recentActive[i], restartLease |-> restartLease[i],
     leadTransferee |-> leadTransferee[i], durableIndex |-> durableIndex[i],
     sent |-> {}, electedNow |-> {}, committedNow |-> {},
     registeredNow |-> <<>>, readyNow |-> {}]

Send(s, m) == [s EXCEPT !.sent = @ \cup {m}]

\* Config::peers: every voter (of C_old or C_new) except me.
Peers(s) == Voters(s.config) \ {s.id}
Replicas(s) == ReplicasOf(s.config, s.id)

-----------------------------------------------------------------------------
(* The log (model/src/log.rs). Entry n (1-based, global) of a server lives *)
(* at log[n - snapshotIndex].                                              *)

LastIndex(s) == s.snapshotIndex + Len(s.log)

LastTerm(s) == IF s.log = <<>> THEN s.snapshotTerm ELSE s.log[Len(s.log)].term

\* Log::term_at(n) is Some(_): n is the snapshot's last entry or a held entry.
HasTerm(s, n) == n = s.snapshotIndex \/ (s.snapshotIndex < n /\ n <= LastIndex(s))

\* The term inside that Some(_); meaningful only when HasTerm(s, n).
TermAt(s, n) == IF n = s.snapshotIndex THEN s.snapshotTerm ELSE s.log[n - s.snapshotIndex].term

\* Log::term_at(n) == Some(t).
TermIs(s, n, t) == HasTerm(s, n) /\ TermAt(s, n) = t

\* Log::entries_from: up to max held entries starting at index from.
EntriesFrom(s, from, max) ==
    IF from < s.snapshotIndex + 1 \/ from - (s.snapshotIndex + 1) >= Len(s.log)
    THEN <<>>
    ELSE LET offset == from - (s.snapshotIndex + 1)
         IN SubSeq(s.log, offset + 1, Min(Len(s.log), offset + max))

\* Log::append.
AppendEntry(s, e) == [s EXCEPT !.log = Append(@, e)]

\* Log::truncate_from: drop entry from and everything after it; never the snapshot.
TruncateFrom(s, from) ==
    LET keep == IF from > s.snapshotIndex + 1 THEN from - (s.snapshotIndex + 1) ELSE 0
    IN [s EXCEPT !.log = SubSeq(@, 1, Min(keep, Len(@)))]

\* Log::compact_to: fold entries up to index (of the given term) into the
\* snapshot, keeping held entries after it.
CompactTo(s, index, term) ==
    IF index <= s.snapshotIndex
    THEN s
    ELSE LET drop == index - s.snapshotIndex
         IN [s EXCEPT !.log = IF drop >= Len(@) THEN <<>> ELSE SubSeq(@, drop + 1, Len(@)),
                      !.snapshotIndex = index,
                      !.snapshotTerm = term]

\* Log::first_index_of_term_at: where the run of entries of n's term that
\* ends at n begins, never below the snapshot's index (the lowest index whose
\* term is known; the run may reach further back, so this can only be too
\* high). Meaningful only when HasTerm(s, n).
RECURSIVE FirstIndexOfTermAt(_, _)
FirstIndexOfTermAt(s, n) ==
    IF n > s.snapshotIndex /\ TermAt(s, n - 1) = TermAt(s, n)
    THEN FirstIndexOfTermAt(s, n - 1)
    ELSE n

\* Log::conflict_at: what a follower failing the consistency check at n
\* tells the leader (paper 5.3's optimization): <<the term of its entry at
\* n, the first index of its run of that term>>, or <<0, 0>> if it holds no
\* entry at n. No entry has term 0.
ConflictAt(s, n) ==
    IF HasTerm(s, n) /\ TermAt(s, n) > 0
    THEN <<TermAt(s, n), FirstIndexOfTermAt(s, n)>>
    ELSE <<0, 0>>

\* Log::last_index_of_term(t, upTo): the highest index at or below
\* Min(upTo, LastIndex(s)) holding an entry of term t, scanning down past
\* entries of later terms; 0 (Rust None) if the scan meets an entry of an
\* earlier term first (terms never decrease along a log) or the compacted
\* prefix. t > 0, so index 0 (term 0) is never the answer.
RECURSIVE LastIndexOfTermFrom(_, _, _)
LastIndexOfTermFrom(s, t, n) ==
    IF ~HasTerm(s, n) THEN 0
    ELSE IF TermAt(s, n) = t THEN n
    ELSE IF TermAt(s, n) > t /\ n > s.snapshotIndex THEN LastIndexOfTermFrom(s, t, n - 1)
    ELSE 0

LastIndexOfTerm(s, t, upTo) == LastIndexOfTermFrom(s, t, Min(upTo, LastIndex(s)))

\* A configuration entry ([term, config]) rather than a command or a no-op
\* ([term, payload]): records of different fields, which TLC compares as
\* different without error.
IsConfigEntry(e) == "config" \in DOMAIN e

\* Server::config_at(n)'s index: the latest configuration entry held at or
\* below n, or the snapshot's index when the log holds none there.
ConfigIndexAt(s, n) ==
    LET held == {k \in (s.snapshotIndex + 1)..Min(n, LastIndex(s)) :
                   IsConfigEntry(s.log[k - s.snapshotIndex])}
    IN IF held = {} THEN s.snapshotIndex ELSE SetMax(held)

\* Server::config_at(n): the configuration in force at index n.
ConfigAt(s, n) ==
    LET k == ConfigIndexAt(s, n)
    IN IF k = s.snapshotIndex THEN s.snapshot.config ELSE s.log[k - s.snapshotIndex].config

\* Server::config_of_log: the latest configuration in the log, else the
\* snapshot's (dissertation 4.1: a configuration takes effect when appended).
LogConfig(s) == ConfigAt(s, LastIndex(s))

\* Server::refresh_config: the log changed; its latest configuration is in force.
RefreshConfig(s) == [s EXCEPT !.config = LogConfig(s)]

\* Server::config_change_pending: joint, or the latest configuration entry
\* not yet known committed.
ConfigChangePending(s) == IsJoint(s.config) \/ ConfigIndexAt(s, LastIndex(s)) > s.commitIndex

\* Log::is_up_to_date (paper 5.4.1): is a log ending at (lastIndex, lastTerm)
\* at least as up-to-date as s's?
IsUpToDate(s, lastIndex, lastTerm) ==
    \/ lastTerm > LastTerm(s)
    \/ lastTerm = LastTerm(s) /\ lastIndex >= LastIndex(s)

-----------------------------------------------------------------------------
(* Writing a transition's working copy back: Load's inverse, and what     *)
(* the step made durable.                                                 *)

\* What a step of server i persisted: with the core's persist effects all
\* carried out (the only behaviour specified here), its new persistent
\* state, the log up to durableIndex only: a leader's entries written in
\* parallel are durable from its LogPersisted on. (The configuration is the
\* one that log holds: a restart refreshes it from the log.)
Persisted(s) ==
    [currentTerm |-> s.currentTerm, votedFor |-> s.votedFor,
     log |-> SubSeq(s.log, 1, s.durableIndex - s.snapshotIndex),
     snapshotIndex |-> s.snapshotIndex, snapshotTerm |-> s.snapshotTerm,
     snapshot |-> s.snapshot,
     config |-> IF s.durableIndex = LastIndex(s) THEN s.config ELSE ConfigAt(s, s.durableIndex)]

\* Writes the working copy s of server i back, with the network `net` before
\* the step's sends (the network, less the received copy for a handler),
\* sends what it sent and records its history. Counters are each action's
\* own business.
StoreWith(i, s, net) ==
    /\ currentTerm' = [currentTerm EXCEPT ![i] = s.currentTerm]
    /\ votedFor' = [votedFor EXCEPT ![i] = s.votedFor]
    /\ log' = [log EXCEPT ![i] = s.log]
    /\ snapshotIndex' = [snapshotIndex EXCEPT ![i] = s.snapshotIndex]
    /\ snapshotTerm' = [snapshotTerm EXCEPT ![i] = s.snapshotTerm]
    /\ snapshot' = [snapshot EXCEPT ![i] = s.snapshot]
    /\ config' = [config EXCEPT ![i] = s.config]
    /\ role' = [role EXCEPT ![i] = s.role]
    /\ commitIndex' = [commitIndex EXCEPT ![i] = s.commitIndex]
    /\ leaderId' = [leaderId EXCEPT ![i] = s.leaderId]
    /\ votesGranted' = [votesGranted EXCEPT ![i] = s.votesGranted]
    /\ nextIndex' = [nextIndex EXCEPT ![i] = s.nextIndex]
    /\ matchIndex' = [matchIndex EXCEPT ![i] = s.matchIndex]
    /\ readSeq' = [readSeq EXCEPT ![i] = s.readSeq]
    /\ readAcks' = [readAcks EXCEPT ![i] = s.readAcks]
    /\ pendingReads' = [pendingReads EXCEPT ![i] = s.pendingReads]
    /\ recentActive' = [recentActive EXCEPT ![i] = s.recentActive]
    /\ restartLease' = [restartLease EXCEPT ![i] = s.restartLease]
    /\ leadTransferee' = [leadTransferee EXCEPT ![i] = s.leadTransferee]
    /\ durableIndex' = [durableIndex EXCEPT ![i] = s.durableIndex]
    /\ durable' = [durable EXCEPT ![i] = Persisted(s)]
    /\ messages' = BagAdd(net, s.sent)
    /\ elected' = elected \cup s.electedNow
    /\ committed' = committed \cup s.committedNow
    /\ readBound' = readBound \o s.registeredNow
    /\ readsReady' = readsReady \cup s.readyNow

\* A step that receives no message.
Store(i, s) == StoreWith(i, s, messages)

\* A handler's step: it consumes the copy of m it received.
StoreReceived(i, m, s) == StoreWith(i, s, BagRemove(messages, m))

\* record_activity (check_quorum.rs), which Server::step runs after every
\* handler of a response: a leader with CheckQuorumOn notes that the peer
\* answered a request of its term.
RecordActivity(s, m) ==
    IF CheckQuorumOn /\ s.role = Leader /\ m.term = s.currentTerm
    THEN [s EXCEPT !.recentActive = @ \cup {m.from}]
    ELSE s

\* A response handler's step: StoreReceived after RecordActivity.
StoreAnswered(i, m, s) == StoreReceived(i, m, RecordActivity(s, m))

-----------------------------------------------------------------------------
(* Messages (model/src/message.rs). Every constructor is the Rust `reply`  *)
(* helper with one Body variant: from me, to `to`, carrying my term.       *)

RequestVoteRequest(s, to) ==
    [type |-> "RequestVoteRequest", from |-> s.id, to |-> to, term |-> s.currentTerm,
     lastLogIndex |-> LastIndex(s), lastLogTerm |-> LastTerm(s), preVote |-> FALSE]

RequestVoteResponse(s, to, voteGranted) ==
    [type |-> "RequestVoteResponse", from |-> s.id, to |-> to, term |-> s.currentTerm,
     voteGranted |-> voteGranted, preVote |-> FALSE]

\* PreVote's request carries the election's term to be, one past the sender's.
PreVoteRequest(s, to) ==
    [type |-> "RequestVoteRequest", from |-> s.id, to |-> to, term |-> s.currentTerm + 1,
     lastLogIndex |-> LastIndex(s), lastLogTerm |-> LastTerm(s), preVote |-> TRUE]

\* A granted pre-vote answers in the requested term, a refused one in ours.
PreVoteResponse(s, to, granted, term) ==
    [type |-> "RequestVoteResponse", from |-> s.id, to |-> to, term |-> term,
     voteGranted |-> granted, preVote |-> TRUE]

AppendEntriesRequest(s, to, prevLogIndex, prevLogTerm, entries, leaderCommit, seq) ==
    [type |-> "AppendEntriesRequest", from |-> s.id, to |-> to, term |-> s.currentTerm,
     prevLogIndex |-> prevLogIndex, prevLogTerm |-> prevLogTerm,
     entries |-> entries, leaderCommit |-> leaderCommit, readSeq |-> seq]

\* conflict: <<conflictTerm, conflictIndex>>, <<0, 0>> but on a rejection
\* whose sender holds an entry at prevLogIndex of another term (ConflictAt).
AppendEntriesResponse(s, to, success, matchIdx, conflict, seq) ==
    [type |-> "AppendEntriesResponse", from |-> s.id, to |-> to, term |-> s.currentTerm,
     success |-> success, matchIndex |-> matchIdx,
     conflictTerm |-> conflict[1], conflictIndex |-> conflict[2], readSeq |-> seq]

InstallSnapshotRequest(s, to, snap) ==
    [type |-> "InstallSnapshotRequest", from |-> s.id, to |-> to, term |-> s.currentTerm,
     snapshot |-> snap]

InstallSnapshotResponse(s, to, matchIdx) ==
    [type |-> "InstallSnapshotResponse", from |-> s.id, to |-> to, term |-> s.currentTerm,
     matchIndex |-> matchIdx]

TimeoutNow(s, to) ==
    [type |-> "TimeoutNow", from |-> s.id, to |-> to, term |-> s.currentTerm]

-----------------------------------------------------------------------------
(* ReadIndex rounds (model/src/actions/read_index.rs). Each ReadIndex      *)
(* opens a round readSeq + 1; AppendEntries requests carry the leader's    *)
(* latest round and responses echo it, so an acknowledgement of round r    *)
(* proves leadership after every read of round <= r was registered.        *)

\* Server::confirmed_read_round: the highest round a quorum has
\* acknowledged, the leader counting its own readSeq. Rust sorts the
\* members' rounds in decreasing order and takes the element at position
\* len / 2 (0-based): the largest round that at least len / 2 + 1 members
\* have reached.
\* While joint, a round must be confirmed by a majority of each half.
ConfirmedBy(s, ms) ==
    LET Round(m) == IF m = s.id THEN s.readSeq
                    ELSE IF m \in DOMAIN s.readAcks THEN s.readAcks[m] ELSE 0
        k == Cardinality(ms) \div 2 + 1
        Reached(r) == Cardinality({m \in ms : Round(m) >= r}) >= k
    IN IF ms = {}
       THEN 0
       ELSE SetMax({r \in {Round(m) : m \in ms} : Reached(r)})

ConfirmedReadRound(s) ==
    IF IsJoint(s.config)
    THEN Min(ConfirmedBy(s, s.config.members), ConfirmedBy(s, s.config.old))
    ELSE ConfirmedBy(s, s.config.members)

\* The loop of release_confirmed_reads: pop reads from the front while
\* their round is confirmed, each ready at the current commit index.
RECURSIVE ReleaseFront(_, _)
ReleaseFront(s, confirmed) ==
    IF s.pendingReads = <<>> \/ Head(s.pendingReads).seq > confirmed
    THEN s
    ELSE ReleaseFront([s EXCEPT !.readyNow = @ \cup {<<Head(s.pendingReads).id, s.commitIndex>>},
                                !.pendingReads = Tail(@)],
                      confirmed)

\* Server::release_confirmed_reads: only a leader that has committed an
\* entry of its own term (so its commit index covers everything committed
\* before its term) answers reads.
ReleaseConfirmedReads(s) ==
    IF \/ s.role # Leader
       \/ s.pendingReads = <<>>
       \/ ~TermIs(s, s.commitIndex, s.currentTerm)
    THEN s
    ELSE ReleaseFront(s, ConfirmedReadRound(s))

\* Server::acknowledge_read_round: peer p echoed round seq. Round 0 (no
\* round), rounds never opened and acknowledgements not newer than the
\* one recorded change nothing.
AcknowledgeReadRound(s, p, seq) ==
    IF \/ seq = 0
       \/ seq > s.readSeq
       \/ p \in DOMAIN s.readAcks /\ s.readAcks[p] >= seq
    THEN s
    ELSE ReleaseConfirmedReads(
           [s EXCEPT !.readAcks = [q \in DOMAIN @ \cup {p} |-> IF q = p THEN seq ELSE @[q]]])

\* Server::fail_pending_reads: leadership is gone; every waiting read fails
\* (Rust effects.reads_failed, not recorded here) and rounds start over.
FailPendingReads(s) ==
    [s EXCEPT !.pendingReads = <<>>, !.readAcks = EmptyMap, !.readSeq = 0]

-----------------------------------------------------------------------------
(* Internal steps: the private helpers of model/src/actions. None is an    *)
(* action of its own; each runs inside the action that needs it.           *)

\* become_follower: drop candidate/leader volatile state, failing waiting
\* reads. A leader's entries still being written in parallel join the step's
\* write (Rust: persist.log_from): a follower speaks from durable state only.
BecomeFollower(s) ==
    FailPendingReads([s EXCEPT !.role = Follower,
                               !.votesGranted = {},
                               !.nextIndex = EmptyMap,
                               !.matchIndex = EmptyMap,
                               !.recentActive = {},
                               !.leadTransferee = Nil,
                               !.durableIndex = LastIndex(s)])

\* leader_append (replication.rs): a leader appends an entry of its term.
\* Durable before the step's messages leave, like every write; or, with
\* ParallelWriteOn, written in parallel with them (Rust:
\* effects.parallel_log_from), durable from LogPersisted on.
LeaderAppend(s, e) ==
    LET s1 == AppendEntry(s, e)
    IN IF ParallelWriteOn THEN s1 ELSE [s1 EXCEPT !.durableIndex = LastIndex(s1)]

\* update_term: a message with a newer term makes us a follower of that
\* term with no vote cast and no known leader (paper Figure 2, "All Servers").
UpdateTerm(s, term) ==
    IF term > s.currentTerm
    THEN [BecomeFollower([s EXCEPT !.currentTerm = term, !.votedFor = Nil])
            EXCEPT !.leaderId = Nil]
    ELSE s

\* send_timeout_now_if_caught_up (transfer.rs): a leader handing leadership
\* to p, once p matches its last entry, sends it TimeoutNow (again on every
\* such response: the message may be lost).
SendTimeoutNowIfCaughtUp(s, p) ==
    IF s.leadTransferee = p /\ p \in DOMAIN s.matchIndex /\ s.matchIndex[p] = LastIndex(s)
    THEN Send(s, TimeoutNow(s, p))
    ELSE s

\* send_limit (replication.rs): how many entries the request to p may carry.
\* Without pipelining (MaxInflight = 0), MaxAppendEntries. With it, no more
\* than leave MaxInflight * MaxAppendEntries entries sent to p and not known
\* held beyond matchIndex[p] (nextIndex[p] - 1 - matchIndex[p] of them): a
\* full window sends none (a heartbeat). A new leader's nextIndex starts past
\* its log while matchIndex is 0: that unknown stretch counts as in flight.
SendLimit(s, p) ==
    IF MaxInflight = 0 \/ p \notin DOMAIN s.nextIndex \/ p \notin DOMAIN s.matchIndex
    THEN MaxAppendEntries
    ELSE Min(MaxAppendEntries,
             Max(0, MaxInflight * MaxAppendEntries - (s.nextIndex[p] - 1 - s.matchIndex[p])))

\* append_entries_for: the request a leader sends peer p now: entries from
\* nextIndex[p] (SendLimit of them at most), or the snapshot if the entry
\* before them is compacted.
AppendEntriesFor(s, p) ==
    LET next == IF p \in DOMAIN s.nextIndex THEN s.nextIndex[p] ELSE LastIndex(s) + 1
        prevLogIndex == IF next > 0 THEN next - 1 ELSE 0
    IN IF HasTerm(s, prevLogIndex)
       THEN AppendEntriesRequest(s, p, prevLogIndex, TermAt(s, prevLogIndex),
                                 EntriesFrom(s, next, SendLimit(s, p)), s.commitIndex,
                                 s.readSeq)
       ELSE InstallSnapshotRequest(s, p, s.snapshot)

\* The nextIndex of peer p (in DOMAIN s.nextIndex) once AppendEntriesFor(s, p)
\* is sent: with pipelining, past the entries it carries; else unchanged.
NextAfterSend(s, p) ==
    LET request == AppendEntriesFor(s, p)
    IN IF MaxInflight > 0 /\ request.type = "AppendEntriesRequest" /\ request.entries # <<>>
       THEN request.prevLogIndex + Len(request.entries) + 1
       ELSE s.nextIndex[p]

\* replicate_to (replication.rs) for every peer of ps at once: send each its
\* request and, with pipelining, advance its nextIndex past what it carries
\* (only a guess at what p will hold: matchIndex moves on a success alone).
ReplicateToAll(s, ps) ==
    [s EXCEPT !.sent = @ \cup {AppendEntriesFor(s, p) : p \in ps},
              !.nextIndex = [q \in DOMAIN @ |-> IF q \in ps THEN NextAfterSend(s, q) ELSE @[q]]]

\* replicate_to (replication.rs): send peer p its request now.
ReplicateTo(s, p) == ReplicateToAll(s, {p})

\* The loop of advance_commit_index, from index n downwards: the index to
\* commit, or 0 for none. Entries of earlier terms are never committed by
\* counting replicas (paper Figure 8). The leader counts itself as holding
\* entry n only once it is durable (durableIndex).
RECURSIVE CommitCandidate(_, _)
CommitCandidate(s, n) ==
    IF n <= s.commitIndex \/ ~HasTerm(s, n)
    THEN 0
    ELSE IF TermAt(s, n) # s.currentTerm
         THEN IF TermAt(s, n) < s.currentTerm THEN 0 ELSE CommitCandidate(s, n - 1)
         ELSE IF IsQuorum(s.config,
                          (IF s.durableIndex >= n THEN {s.id} ELSE {})
                            \cup {p \in DOMAIN s.matchIndex : s.matchIndex[p] >= n})
              THEN n
              ELSE CommitCandidate(s, n - 1)

\* commit_rule (leaders only), recording every newly committed index in the
\* `committed` history as <<index, entry term, leader's term>>. Reads
\* waiting for the first commit of this term may now be released.
CommitRule(s) ==
    LET n == CommitCandidate(s, LastIndex(s))
    IN IF n = 0
       THEN s
       ELSE ReleaseConfirmedReads(
              [s EXCEPT !.commitIndex = n,
                        !.committedNow = @ \cup {<<k, TermAt(s, k), s.currentTerm>> :
                                                   k \in (s.commitIndex + 1)..n}])

\* append_config (membership.rs): the leader appends configuration c, which
\* is in force at once: it tracks the peers c adds (from the new entry on)
\* and drops those it removes.
AppendConfig(s, c) ==
    LET s1 == LeaderAppend(s, [term |-> s.currentTerm, config |-> c])
        index == LastIndex(s1)
        ps == ReplicasOf(c, s.id)
    IN [s1 EXCEPT !.config = c,
                  !.nextIndex = [p \in ps |-> IF p \in DOMAIN s.nextIndex
                                              THEN s.nextIndex[p] ELSE index],
                  !.matchIndex = [p \in ps |-> IF p \in DOMAIN s.matchIndex
                                               THEN s.matchIndex[p] ELSE 0]]

\* leave_joint_config (membership.rs): a leader whose joint configuration
\* C_old,new has committed appends C_new (also a new leader that inherited it).
LeaveJointConfig(s) ==
    IF s.role = Leader /\ IsJoint(s.config) /\ ConfigIndexAt(s, LastIndex(s)) <= s.commitIndex
    THEN AppendConfig(s, [SimpleConfig(s.config.members) EXCEPT !.learners = s.config.learners])
    ELSE s

\* step_down_if_removed (membership.rs): a leader outside its configuration
\* steps down once that configuration has committed, knowing no leader.
StepDownIfRemoved(s) ==
    IF /\ s.role = Leader
       /\ s.id \notin Voters(s.config)
       /\ ConfigIndexAt(s, LastIndex(s)) <= s.commitIndex
    THEN [BecomeFollower(s) EXCEPT !.leaderId = Nil]
    ELSE s

\* advance_commit_index: the commit rule, then the membership rules that
\* follow a commit. C_new appended by LeaveJointConfig may commit at once
\* (a leader alone in C_new): the commit rule runs again (with nothing new
\* to commit it changes nothing, as Rust's skipped second pass).
AdvanceCommitIndex(s) == StepDownIfRemoved(CommitRule(LeaveJointConfig(CommitRule(s))))

\* become_leader: reset replication state, append a no-op of the new term
\* (paper 8), try to commit (a cluster of one), send every peer its request.
BecomeLeader(s) ==
    LET next == LastIndex(s) + 1
        s1 == [s EXCEPT !.role = Leader,
                        !.leaderId = s.id,
                        !.votesGranted = {},
                        !.nextIndex = [p \in Replicas(s) |-> next],
                        !.matchIndex = [p \in Replicas(s) |-> 0],
                        !.electedNow = @ \cup {<<s.currentTerm, s.id>>}]
        s2 == AdvanceCommitIndex(LeaderAppend(s1, [term |-> s.currentTerm, payload |-> Noop]))
    IN ReplicateToAll(s2, Replicas(s2))

\* The loop of handle_append_entries_request over the new entries es, the
\* first of which has index `index`: keep a matching entry; on a conflict
\* drop our suffix from there; append what we lack.
RECURSIVE AppendNew(_, _, _)
AppendNew(s, index, es) ==
    IF es = <<>>
    THEN s
    ELSE LET e == Head(es)
         IN IF TermIs(s, index, e.term)
            THEN AppendNew(s, index + 1, Tail(es))
            ELSE IF HasTerm(s, index)
                 THEN AppendNew(AppendEntry(TruncateFrom(s, index), e), index + 1, Tail(es))
                 ELSE AppendNew(AppendEntry(s, e), index + 1, Tail(es))

\* Server::skip_conflicting_term: where a rejection's conflict hint says to
\* probe next, an upper bound on the new nextIndex (paper 5.3). If the
\* leader holds entries of the conflicting term t, the last of them, at or
\* below next - 1, is also the follower's (its run of t reaches back to
\* conflictIndex, at or below it) and matches by Log Matching: probe after
\* it. Otherwise none of the follower's entries from conflictIndex on is the
\* leader's: probe there. A hint only lowers nextIndex, which never affects
\* safety: the follower's consistency check guards every entry.
SkipConflictingTerm(s, t, conflictIndex, next) ==
    LET last == LastIndexOfTerm(s, t, IF next > 0 THEN next - 1 ELSE 0)
    IN IF last > 0 THEN last + 1 ELSE conflictIndex

\* Server::accepts: a message to me, from another server. Not "from a member
\* of my configuration": servers process requests without consulting their
\* configuration (dissertation 4.2.1); quorums count members only.
Accepts(i, m) == m.to = i /\ m.from # i

\* Server i may receive message m of the given type (a copy in flight; the
\* handler consumes it through StoreReceived).
Receive(i, m, type) == m \in DOMAIN messages /\ m.type = type /\ Accepts(i, m)

-----------------------------------------------------------------------------
(* The actions, one per transition function of the core.                  *)

\* campaign (election.rs): start an election in the next term, vote for
\* oneself and ask every peer for its vote.
Campaign(s0) ==
    LET s == [s0 EXCEPT !.currentTerm = @ + 1,
                        !.role = Candidate,
                        !.votedFor = s0.id,
                        !.leaderId = Nil,
                        !.votesGranted = {s0.id}]
    IN IF IsQuorum(s.config, s.votesGranted)
       THEN BecomeLeader(s)  \* a cluster of one elects itself
       ELSE [s EXCEPT !.sent = @ \cup {RequestVoteRequest(s, p) : p \in Peers(s)}]

\* Server::in_lease: heard from the leader of its term (or is it) since its
\* election timer last fired, or restarted since then.
InLease(s) == s.leaderId # Nil \/ s.restartLease

\* timeout (model/src/actions/election.rs): the election timer fired. A
\* follower, candidate or pre-candidate that is a voting member forgets its
\* lease and campaigns, or with PreVoteOn becomes a pre-candidate of its
\* term, forgetting the leader it knew (etcd#9586), and asks for pre-votes.
Timeout(i) ==
    /\ role[i] # Leader
    /\ i \in Voters(config[i])
    /\ currentTerm[i] < MaxTerm
    /\ LET s0 == [Load(i) EXCEPT !.restartLease = FALSE]
           s == [s0 EXCEPT !.role = PreCandidate,
                           !.leaderId = Nil,
                           !.votesGranted = {i}]
       IN Store(i, IF ~PreVoteOn THEN Campaign(s0)
                   ELSE IF IsQuorum(s.config, s.votesGranted)
                   THEN Campaign(s)  \* a cluster of one needs no one's word
                   ELSE [s EXCEPT !.sent = {PreVoteRequest(s, p) : p \in Peers(s)}])
    /\ UNCHANGED counterVars

\* handle_request_vote_request (election.rs): grant the vote if the request
\* is of our term, we have not voted for someone else in it, and the
\* candidate's log is at least as up-to-date as ours.
\* handle_pre_vote_request (election.rs), the pre-vote branch: grant if the
\* requested term is past ours, the log is up to date and we hold no lease.
\* No term rule (no one holds the requested term) and no other change.
HandlePreVoteRequest(i, m) ==
    LET s == Load(i)
        granted == /\ m.term > s.currentTerm
                   /\ IsUpToDate(s, m.lastLogIndex, m.lastLogTerm)
                   /\ ~InLease(s)
    IN StoreReceived(i, m, Send(s, PreVoteResponse(s, m.from, granted,
                                    IF granted THEN m.term ELSE s.currentTerm)))

HandleRequestVoteRequest(i, m) ==
    /\ Receive(i, m, "RequestVoteRequest")
    /\ IF m.preVote
       THEN HandlePreVoteRequest(i, m)
       ELSE LET s1 == UpdateTerm(Load(i), m.term)
                logOk == IsUpToDate(s1, m.lastLogIndex, m.lastLogTerm)
                freeToVote == s1.votedFor = Nil \/ s1.votedFor = m.from
                voteGranted == m.term = s1.currentTerm /\ logOk /\ freeToVote
                s2 == IF voteGranted THEN [s1 EXCEPT !.votedFor = m.from] ELSE s1
            IN StoreReceived(i, m, Send(s2, RequestVoteResponse(s2, m.from, voteGranted)))
    /\ UNCHANGED counterVars

\* handle_request_vote_response (election.rs): a candidate counts granted
\* votes of its own term and becomes leader on a quorum.
\* With PreVoteOn, a granted pre-vote (of our next term, which no one holds:
\* no term rule) counts for a pre-candidate, and a quorum of them starts the
\* real election; a refused one carries the voter's term: the term rule only.
HandleRequestVoteResponse(i, m) ==
    /\ Receive(i, m, "RequestVoteResponse")
    /\ IF m.preVote /\ m.voteGranted
       THEN LET s0 == Load(i)
                s1 == [s0 EXCEPT !.votesGranted = @ \cup {m.from}]
            IN StoreAnswered(i, m, IF s0.role # PreCandidate \/ m.term # s0.currentTerm + 1
                                   THEN s0
                                   ELSE IF IsQuorum(s1.config, s1.votesGranted)
                                        THEN Campaign(s1)
                                        ELSE s1)
       ELSE IF m.preVote
       THEN StoreAnswered(i, m, UpdateTerm(Load(i), m.term))
       ELSE LET s1 == UpdateTerm(Load(i), m.term)
                s2 == [s1 EXCEPT !.votesGranted = @ \cup {m.from}]
            IN StoreAnswered(i, m, IF m.term # s1.currentTerm \/ s1.role # Candidate
                                      \/ ~m.voteGranted
                                   THEN s1
                                   ELSE IF IsQuorum(s2.config, s2.votesGranted)
                                        THEN BecomeLeader(s2)
                                        ELSE s2)
    /\ UNCHANGED counterVars

\* client_request (model/src/actions/replication.rs): a leader appends the
\* next client command (the values 1, 2, ... in order). Replication waits
\* for the next SendAppendEntries.
ClientRequest(i) ==
    /\ role[i] = Leader
    /\ leadTransferee[i] = Nil  \* refused during a leadership transfer
    /\ clientRequests < MaxClientRequests
    /\ Store(i, AdvanceCommitIndex(  \* a cluster of one commits by itself
                 LeaderAppend(Load(i), [term |-> currentTerm[i],
                                        payload |-> clientRequests + 1])))
    /\ clientRequests' = clientRequests + 1
    /\ UNCHANGED <<restarts, compactions, reads, duplicates, drops, transfers, configChanges, learnerChanges>>

\* send_append_entries (replication.rs): a leader sends every peer, learners
\* too, the entries it lacks (or the snapshot): heartbeat and replication in one.
SendAppendEntries(i) ==
    /\ role[i] = Leader
    /\ LET s == Load(i)
       IN Store(i, ReplicateToAll(s, Replicas(s)))
    /\ UNCHANGED counterVars

\* handle_append_entries_request (replication.rs): reject a stale leader;
\* otherwise recognise the leader, skip entries our snapshot covers, run the
\* consistency check at prevLogIndex, drop a conflicting suffix, append what
\* is new, and learn the commit index, never beyond the last entry this
\* request proved to match. A rejection by the consistency check says which
\* term conflicts at prevIndex and where our run of it begins (ConflictAt;
\* prevIndex is never below our snapshot, so the hint never names an index
\* whose term we do not know). Every answer echoes the request's read round,
\* except the stale-term rejection: it carries our newer term, and if its
\* addressee later leads that term it must not take the old round as an
\* acknowledgement of a round it opened since (it answers round 0).
HandleAppendEntriesRequest(i, m) ==
    /\ Receive(i, m, "AppendEntriesRequest")
    /\ LET s1 == UpdateTerm(Load(i), m.term)
           s2 == [BecomeFollower(s1) EXCEPT !.leaderId = m.from]
           \* Entries at or below our snapshot are committed, hence already
           \* match (Log Matching): skip them, check consistency at the snapshot.
           skip == m.prevLogIndex < s2.snapshotIndex
           covered == s2.snapshotIndex - m.prevLogIndex  \* meaningful when skip
           prevIndex == IF skip THEN s2.snapshotIndex ELSE m.prevLogIndex
           prevTerm == IF skip THEN s2.snapshotTerm ELSE m.prevLogTerm
           entries == IF skip THEN SubSeq(m.entries, covered + 1, Len(m.entries))
                              ELSE m.entries
           \* The latest configuration in the log is in force (refresh_config);
           \* all the log holds is durable before the answer (persist.log_from).
           s3a == RefreshConfig(AppendNew(s2, prevIndex + 1, entries))
           s3 == [s3a EXCEPT !.durableIndex = LastIndex(s3a)]
           lastNew == prevIndex + Len(entries)
           newCommit == Min(m.leaderCommit, lastNew)
           s4 == IF newCommit > s3.commitIndex THEN [s3 EXCEPT !.commitIndex = newCommit] ELSE s3
       IN StoreReceived(i, m,
            IF m.term < s1.currentTerm
            THEN Send(s1, AppendEntriesResponse(s1, m.from, FALSE, 0, <<0, 0>>, 0))
            ELSE IF skip /\ covered >= Len(m.entries)
            THEN Send(s2, AppendEntriesResponse(s2, m.from, TRUE,
                                                m.prevLogIndex + Len(m.entries), <<0, 0>>,
                                                m.readSeq))
            ELSE IF ~TermIs(s2, prevIndex, prevTerm)
            THEN Send(s2, AppendEntriesResponse(s2, m.from, FALSE, LastIndex(s2),
                                                ConflictAt(s2, prevIndex), m.readSeq))
            ELSE Send(s4, AppendEntriesResponse(s4, m.from, TRUE, lastNew, <<0, 0>>, m.readSeq)))
    /\ UNCHANGED counterVars

\* handle_append_entries_response (replication.rs): any answer of our term
\* acknowledges our leadership as of the read round it echoes. Then, on
\* success the leader records how far the peer matches and tries to commit;
\* on failure it backs nextIndex off to min(next - 1, hint + 1), and, if the
\* rejection names a conflicting term, to no more than SkipConflictingTerm,
\* never below match + 1, and retries at once. A peer that still lags after a success
\* gets its next batch.
HandleAppendEntriesResponse(i, m) ==
    /\ Receive(i, m, "AppendEntriesResponse")
    /\ LET s1 == UpdateTerm(Load(i), m.term)
           p == m.from
           ignore == \/ m.term # s1.currentTerm
                     \/ s1.role # Leader
                     \/ p \notin DOMAIN s1.nextIndex
                     \/ p \notin DOMAIN s1.matchIndex
           sa == AcknowledgeReadRound(s1, p, m.readSeq)
           next == sa.nextIndex[p]
           matched == sa.matchIndex[p]
           \* success
           s2 == IF m.matchIndex > matched
                 THEN AdvanceCommitIndex([sa EXCEPT !.matchIndex[p] = m.matchIndex])
                 ELSE sa
           \* The commit may have ended the leadership (StepDownIfRemoved) or
           \* dropped p (LeaveJointConfig): then nothing more for p.
           gone == p \notin DOMAIN s2.nextIndex
           s3 == IF m.matchIndex + 1 > next THEN [s2 EXCEPT !.nextIndex[p] = m.matchIndex + 1] ELSE s2
           \* (with pipelining, a full window waits for the answers to come)
           s4 == IF s3.nextIndex[p] <= LastIndex(s3) /\ SendLimit(s3, p) > 0
                 THEN ReplicateTo(s3, p) ELSE s3
           \* failure
           oneStep == Min(IF next > 0 THEN next - 1 ELSE 0, m.matchIndex + 1)
           backedOff == IF m.conflictTerm > 0
                        THEN Min(oneStep, SkipConflictingTerm(sa, m.conflictTerm,
                                                              m.conflictIndex, next))
                        ELSE oneStep
           newNext == Max(backedOff, matched + 1)
           s5 == [sa EXCEPT !.nextIndex[p] = newNext]
       IN StoreAnswered(i, m,
            IF ignore THEN s1
            ELSE IF m.success
            THEN IF m.matchIndex > LastIndex(sa)
                 THEN sa  \* a peer cannot match entries we never had
                 ELSE IF gone THEN s2
                 ELSE SendTimeoutNowIfCaughtUp(s4, p)
            ELSE IF newNext < next
                 THEN ReplicateTo(s5, p)
                 ELSE sa)
    /\ UNCHANGED counterVars

\* compact_log(index, image) (model/src/actions/snapshot.rs): fold the
\* entries up to a committed index into a snapshot whose image is the old
\* image followed by the newly applied entries. The node compacts to the
\* index its state machine had applied when the snapshot started, which may
\* trail the commit index; trace validation (TraceRaft.tla) needs this form.
CompactLogTo(i, index) ==
    /\ snapshotIndex[i] < index
    /\ index <= commitIndex[i]
    /\ compactions < MaxCompactions
    /\ LET s == Load(i)
           data == s.snapshot.data \o SubSeq(s.log, 1, index - s.snapshotIndex)
           s1 == [s EXCEPT !.snapshot = [lastIndex |-> index,
                                          lastTerm |-> TermAt(s, index),
                                          config |-> ConfigAt(s, index),
                                          data |-> data]]
           \* The snapshot is durable: it may cover entries a leader was still
           \* writing in parallel.
           s2 == [s1 EXCEPT !.durableIndex = Max(@, index)]
       IN Store(i, CompactTo(s2, index, TermAt(s, index)))
    /\ compactions' = compactions + 1
    /\ UNCHANGED <<clientRequests, restarts, reads, duplicates, drops, transfers, configChanges, learnerChanges>>

\* compact_log as the checker drives it: up to the commit index. Next uses
\* only this form, as the checker does, so the two tools' counts stay equal.
CompactLog(i) == CompactLogTo(i, commitIndex[i])

\* handle_install_snapshot_request (snapshot.rs): reject a stale leader;
\* otherwise recognise it and, unless our commit index already covers the
\* snapshot, adopt it: keep the log after it if our entry at its last index
\* matches (paper 7), else discard the whole log.
HandleInstallSnapshotRequest(i, m) ==
    /\ Receive(i, m, "InstallSnapshotRequest")
    /\ LET s1 == UpdateTerm(Load(i), m.term)
           s2 == [BecomeFollower(s1) EXCEPT !.leaderId = m.from]
           snap == m.snapshot
           stale == snap.lastIndex <= s2.commitIndex
           kept == IF TermIs(s2, snap.lastIndex, snap.lastTerm)
                   THEN CompactTo(s2, snap.lastIndex, snap.lastTerm)
                   ELSE [s2 EXCEPT !.log = <<>>,
                                   !.snapshotIndex = snap.lastIndex,
                                   !.snapshotTerm = snap.lastTerm]
           \* The configuration is again the log's: the snapshot's, or a later
           \* one in the suffix kept; all the log holds is durable.
           s3a == RefreshConfig([kept EXCEPT !.snapshot = snap,
                                             !.commitIndex = snap.lastIndex])
           s3 == IF stale
                 THEN s2
                 ELSE [s3a EXCEPT !.durableIndex = LastIndex(s3a)]
       IN StoreReceived(i, m,
            IF m.term < s1.currentTerm
            THEN Send(s1, InstallSnapshotResponse(s1, m.from, 0))
            ELSE Send(s3, InstallSnapshotResponse(s3, m.from, snap.lastIndex)))
    /\ UNCHANGED counterVars

\* handle_install_snapshot_response (snapshot.rs): the peer now holds
\* everything up to the snapshot's last index; continue from there.
HandleInstallSnapshotResponse(i, m) ==
    /\ Receive(i, m, "InstallSnapshotResponse")
    /\ LET s1 == UpdateTerm(Load(i), m.term)
           p == m.from
           ignore == \/ m.term # s1.currentTerm
                     \/ s1.role # Leader
                     \/ m.matchIndex > LastIndex(s1)
                     \/ p \notin DOMAIN s1.matchIndex
           s2 == IF m.matchIndex > s1.matchIndex[p]
                 THEN AdvanceCommitIndex([s1 EXCEPT !.matchIndex[p] = m.matchIndex])
                 ELSE s1
           s3 == IF p \in DOMAIN s2.nextIndex /\ s2.nextIndex[p] <= m.matchIndex
                 THEN [s2 EXCEPT !.nextIndex[p] = m.matchIndex + 1]
                 ELSE s2
           s4 == IF p \in DOMAIN s3.nextIndex /\ s3.nextIndex[p] <= LastIndex(s3)
                 THEN ReplicateTo(s3, p)
                 ELSE s3
       IN StoreAnswered(i, m, IF ignore THEN s1 ELSE SendTimeoutNowIfCaughtUp(s4, p))
    /\ UNCHANGED counterVars

\* restart (model/src/actions/restart.rs): crash and come back. The
\* persistent state is what storage holds (durable[i], not the in-memory
\* values: a leader's entries still being written in parallel are lost);
\* volatile state is lost (become_follower, which also fails the waiting
\* reads, and knows the whole log it came back with durable) and the commit
\* index falls back to the snapshot.
Restart(i) ==
    /\ restarts < MaxRestarts
    /\ LET d == durable[i]
           s0 == [Load(i) EXCEPT !.currentTerm = d.currentTerm, !.votedFor = d.votedFor,
                                 !.log = d.log, !.snapshotIndex = d.snapshotIndex,
                                 !.snapshotTerm = d.snapshotTerm, !.snapshot = d.snapshot,
                                 !.config = d.config]
           s == BecomeFollower(s0)
       IN Store(i, [s EXCEPT !.commitIndex = s.snapshotIndex,
                             !.leaderId = Nil,
                             \* it may have heard from a leader past term 0
                             !.restartLease = PreVoteOn /\ s.currentTerm > 0])
    /\ restarts' = restarts + 1
    /\ UNCHANGED <<clientRequests, compactions, reads, duplicates, drops, transfers, configChanges, learnerChanges>>

\* check_quorum (model/src/actions/check_quorum.rs): the leader's election
\* timer fired. Counting itself and the peers that answered since the last
\* check, it steps down without a quorum, a follower of the same term with
\* no known leader; either way a new period of observation begins.
CheckQuorum(i) ==
    /\ CheckQuorumOn
    /\ role[i] = Leader
    /\ LET s == Load(i)
           s1 == [s EXCEPT !.recentActive = {}]
       IN Store(i, IF IsQuorum(s.config, s.recentActive \cup {i})
                   THEN s1
                   ELSE [BecomeFollower(s1) EXCEPT !.leaderId = Nil])
    /\ UNCHANGED counterVars

\* transfer_leadership(t) (model/src/actions/transfer.rs, dissertation
\* 3.10): the operator asks the leader to hand leadership to t, another
\* member. It records t (and refuses client requests meanwhile) and sends t
\* TimeoutNow at once if t matches its last entry, else what t lacks. One
\* transfer at a time, and none while a configuration change is pending.
TransferLeadership(i, t) ==
    /\ role[i] = Leader
    /\ t \in Voters(config[i]) \ {i}
    /\ leadTransferee[i] = Nil
    /\ ~ConfigChangePending(Load(i))
    /\ transfers < MaxTransfers
    /\ LET s == [Load(i) EXCEPT !.leadTransferee = t]
       IN Store(i, IF t \in DOMAIN s.matchIndex /\ s.matchIndex[t] = LastIndex(s)
                   THEN Send(s, TimeoutNow(s, t))
                   ELSE ReplicateTo(s, t))
    /\ transfers' = transfers + 1
    /\ UNCHANGED <<clientRequests, restarts, compactions, reads, duplicates, drops, configChanges, learnerChanges>>

\* handle_timeout_now (transfer.rs): after the term rule, a TimeoutNow of
\* our term makes a voting member that is not leader campaign at once,
\* forgetting its lease, without a pre-election (which the followers,
\* still hearing from the old leader, would refuse). A stale one is ignored.
HandleTimeoutNow(i, m) ==
    /\ Receive(i, m, "TimeoutNow")
    /\ LET s1 == UpdateTerm(Load(i), m.term)
       IN StoreReceived(i, m,
            IF m.term = s1.currentTerm /\ s1.role # Leader /\ i \in Voters(s1.config)
            THEN Campaign([s1 EXCEPT !.restartLease = FALSE])
            ELSE s1)
    /\ UNCHANGED counterVars

\* abort_transfer (transfer.rs): the leader's election timer fired with a
\* transfer under way; it gives the transfer up and accepts client
\* requests again.
AbortTransfer(i) ==
    /\ role[i] = Leader
    /\ leadTransferee[i] # Nil
    /\ Store(i, [Load(i) EXCEPT !.leadTransferee = Nil])
    /\ UNCHANGED counterVars

\* read_index(reads + 1) (model/src/actions/read_index.rs): a leader
\* registers the next read in a new round and releases what is confirmed
\* (a cluster of one confirms at once). The history records, for the read,
\* the highest index committed so far: ReadIndexSafety compares the index
\* the read is released at against it.
ReadIndex(i) ==
    /\ role[i] = Leader
    /\ reads < MaxReads
    /\ LET s == Load(i)
           s1 == [s EXCEPT !.readSeq = @ + 1,
                           !.pendingReads = Append(@, [id |-> reads + 1, seq |-> s.readSeq + 1]),
                           !.registeredNow = <<CommittedIndex>>]
       IN Store(i, ReleaseConfirmedReads(s1))
    /\ reads' = reads + 1
    /\ UNCHANGED <<clientRequests, restarts, compactions, duplicates, drops, transfers,
                   configChanges, learnerChanges>>

\* change_config(c) (model/src/actions/membership.rs, paper 6, dissertation
\* ch. 4): the operator asks the leader to change the configuration to the
\* members c. The leader appends the joint configuration C_old,new (old =
\* its members, members = c), in force at once, and tries to commit (a
\* cluster of one). Refused (the guards) during a transfer, for an empty or
\* unchanged set, before an entry of the leader's term has committed
\* (Ongaro's rule: no earlier leader's change can then still commit), and
\* while another change is pending.
ChangeConfig(i, c) ==
    /\ role[i] = Leader
    /\ configChanges < MaxConfigChanges
    /\ leadTransferee[i] = Nil
    /\ c # {}
    /\ ~(~IsJoint(config[i]) /\ config[i].members = c)
    /\ LET s == Load(i)
       IN /\ TermIs(s, s.commitIndex, s.currentTerm)
          /\ ~ConfigChangePending(s)
          /\ Store(i, AdvanceCommitIndex(AppendConfig(s, [members |-> c,
                                                          old |-> s.config.members,
                                                          learners |-> s.config.learners \ c])))
    /\ configChanges' = configChanges + 1
    /\ UNCHANGED <<clientRequests, restarts, compactions, reads, duplicates, drops, transfers,
                   learnerChanges>>

\* change_learners(l) (membership.rs): the operator asks the leader to make
\* the servers l its learners. The leader appends its configuration with
\* learners l (a simple one: learners change no quorum), in force at once,
\* under ChangeConfig's rules, and refuses an l that names a voter.
ChangeLearners(i, l) ==
    /\ role[i] = Leader
    /\ learnerChanges < MaxLearnerChanges
    /\ leadTransferee[i] = Nil
    /\ l \cap Voters(config[i]) = {}
    /\ ~(~IsJoint(config[i]) /\ config[i].learners = l)
    /\ LET s == Load(i)
       IN /\ TermIs(s, s.commitIndex, s.currentTerm)
          /\ ~ConfigChangePending(s)
          /\ Store(i, AdvanceCommitIndex(AppendConfig(s, [s.config EXCEPT !.learners = l])))
    /\ learnerChanges' = learnerChanges + 1
    /\ UNCHANGED <<clientRequests, restarts, compactions, reads, duplicates, drops, transfers,
                   configChanges>>

\* log_persisted(n, t) (model/src/actions/replication.rs, dissertation
\* 10.2.1): the driver's write of server i's own log up to entry n, of term
\* t, is durable. Enabled only when it tells something new: only a leader
\* with ParallelWriteOn has entries not known durable (Server::step refuses
\* the rest). The leader may now count itself as holding them, and commit.
LogPersistedTo(i, n, t) ==
    /\ n > durableIndex[i]
    /\ TermIs(Load(i), n, t)
    /\ Store(i, AdvanceCommitIndex([Load(i) EXCEPT !.durableIndex = n]))
    /\ UNCHANGED counterVars

\* log_persisted as the checker drives it: the whole log written. (A write
\* of a prefix is this one taken before the later appends.) Next uses only
\* this form, as the checker does; TraceRaft.tla replays the node's
\* LogPersistedTo.
LogPersisted(i) == LogPersistedTo(i, LastIndex(Load(i)), LastTerm(Load(i)))

\* The network delivers one more copy of a message in flight (no core
\* function): a retransmission or a duplicating link.
DuplicateMessage(m) ==
    /\ m \in DOMAIN messages
    /\ duplicates < MaxDuplicates
    /\ messages' = BagAdd(messages, {m})
    /\ duplicates' = duplicates + 1
    /\ UNCHANGED <<persistentVars, durable, volatileVars, historyVars,
                   clientRequests, restarts, compactions, reads, drops, transfers,
                   configChanges, learnerChanges>>

\* The network loses one copy of a message in flight (no core function).
\* Safety does not depend on it (a copy never delivered is as good as lost);
\* it frees room under the bound on messages in flight.
DropMessage(m) ==
    /\ m \in DOMAIN messages
    /\ drops < MaxDrops
    /\ messages' = BagRemove(messages, m)
    /\ drops' = drops + 1
    /\ UNCHANGED <<persistentVars, durable, volatileVars, historyVars,
                   clientRequests, restarts, compactions, reads, duplicates, transfers,
                   configChanges, learnerChanges>>

-----------------------------------------------------------------------------
(* The specification.                                                      *)

\* Server i's configuration when its data directory is initialised: the
\* initial one (TraceRaft overrides it for a server initialised to join,
\* `raft-node init --join`, which records none).
InitConfig(i) == SimpleConfig(InitMembers)

Init ==
    /\ currentTerm = [i \in Server |-> 0]
    /\ votedFor = [i \in Server |-> Nil]
    /\ log = [i \in Server |-> <<>>]
    /\ snapshotIndex = [i \in Server |-> 0]
    /\ snapshotTerm = [i \in Server |-> 0]
    /\ snapshot = [i \in Server |-> [lastIndex |-> 0, lastTerm |-> 0,
                                     config |-> InitConfig(i), data |-> <<>>]]
    /\ config = [i \in Server |-> InitConfig(i)]
    /\ durable = [i \in Server |-> [currentTerm |-> 0, votedFor |-> Nil, log |-> <<>>,
                                    snapshotIndex |-> 0, snapshotTerm |-> 0,
                                    snapshot |-> [lastIndex |-> 0, lastTerm |-> 0,
                                                  config |-> InitConfig(i),
                                                  data |-> <<>>],
                                    config |-> InitConfig(i)]]
    /\ role = [i \in Server |-> Follower]
    /\ commitIndex = [i \in Server |-> 0]
    /\ leaderId = [i \in Server |-> Nil]
    /\ votesGranted = [i \in Server |-> {}]
    /\ nextIndex = [i \in Server |-> EmptyMap]
    /\ matchIndex = [i \in Server |-> EmptyMap]
    /\ readSeq = [i \in Server |-> 0]
    /\ readAcks = [i \in Server |-> EmptyMap]
    /\ pendingReads = [i \in Server |-> <<>>]
    /\ recentActive = [i \in Server |-> {}]
    /\ restartLease = [i \in Server |-> FALSE]
    /\ leadTransferee = [i \in Server |-> Nil]
    /\ durableIndex = [i \in Server |-> 0]
    /\ messages = EmptyBag
    /\ elected = {}
    /\ committed = {}
    /\ readBound = <<>>
    /\ readsReady = {}
    /\ clientRequests = 0
    /\ restarts = 0
    /\ compactions = 0
    /\ reads = 0
    /\ duplicates = 0
    /\ drops = 0
    /\ transfers = 0
    /\ configChanges = 0
    /\ learnerChanges = 0

Next ==
    \/ \E i \in Server : Timeout(i)
    \/ \E i \in Server : SendAppendEntries(i)
    \/ \E i \in Server : ClientRequest(i)
    \/ \E i \in Server : CompactLog(i)
    \/ \E i \in Server : Restart(i)
    \/ \E i \in Server : ReadIndex(i)
    \/ \E i \in Server : CheckQuorum(i)
    \/ \E i, t \in Server : TransferLeadership(i, t)
    \/ \E i \in Server, m \in DOMAIN messages : HandleTimeoutNow(i, m)
    \/ \E i \in Server : AbortTransfer(i)
    \/ \E i \in Server, c \in SUBSET Server : ChangeConfig(i, c)
    \/ \E i \in Server, l \in SUBSET Server : ChangeLearners(i, l)
    \/ \E i \in Server : LogPersisted(i)
    \/ \E i \in Server, m \in DOMAIN messages : HandleRequestVoteRequest(i, m)
    \/ \E i \in Server, m \in DOMAIN messages : HandleRequestVoteResponse(i, m)
    \/ \E i \in Server, m \in DOMAIN messages : HandleAppendEntriesRequest(i, m)
    \/ \E i \in Server, m \in DOMAIN messages : HandleAppendEntriesResponse(i, m)
    \/ \E i \in Server, m \in DOMAIN messages : HandleInstallSnapshotRequest(i, m)
    \/ \E i \in Server, m \in DOMAIN messages : HandleInstallSnapshotResponse(i, m)
    \/ \E m \in DOMAIN messages : DuplicateMessage(m)
    \/ \E m \in DOMAIN messages : DropMessage(m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Types.                                                                  *)

\* A TimeoutNow makes its target campaign past MaxTerm (only Timeout is
\* bounded by it): at most one more term per transfer.
Terms == 0..(MaxTerm + MaxTransfers)
ConfigType == [members : SUBSET Server, old : SUBSET Server, learners : SUBSET Server]
EntryType == [term : Terms, payload : {Noop} \cup (1..MaxClientRequests)]
             \cup [term : Terms, config : ConfigType]
SnapshotType == [lastIndex : Nat, lastTerm : Terms, config : ConfigType,
                 data : Seq(EntryType)]

MessageType ==
    [type : {"RequestVoteRequest"}, from : Server, to : Server, term : Terms,
     lastLogIndex : Nat, lastLogTerm : Terms, preVote : BOOLEAN]
  \cup
    [type : {"RequestVoteResponse"}, from : Server, to : Server, term : Terms,
     voteGranted : BOOLEAN, preVote : BOOLEAN]
  \cup
    [type : {"AppendEntriesRequest"}, from : Server, to : Server, term : Terms,
     prevLogIndex : Nat, prevLogTerm : Terms, entries : Seq(EntryType), leaderCommit : Nat,
     readSeq : 0..MaxReads]
  \cup
    [type : {"AppendEntriesResponse"}, from : Server, to : Server, term : Terms,
     success : BOOLEAN, matchIndex : Nat, conflictTerm : Terms, conflictIndex : Nat,
     readSeq : 0..MaxReads]
  \cup
    [type : {"InstallSnapshotRequest"}, from : Server, to : Server, term : Terms,
     snapshot : SnapshotType]
  \cup
    [type : {"InstallSnapshotResponse"}, from : Server, to : Server, term : Terms,
     matchIndex : Nat]
  \cup
    [type : {"TimeoutNow"}, from : Server, to : Server, term : Terms]

\* A map peer -> index (an OrdMap<NodeId, Index>).
IsIndexMap(f) == DOMAIN f \subseteq Server /\ \A p \in DOMAIN f : f[p] \in Nat

TypeOK ==
    /\ \A i \in Server :
         /\ currentTerm[i] \in Terms
         /\ votedFor[i] \in Server \cup {Nil}
         /\ log[i] \in Seq(EntryType)
         /\ snapshotIndex[i] \in Nat
         /\ snapshotTerm[i] \in Terms
         /\ snapshot[i] \in SnapshotType
         /\ snapshot[i].lastIndex = snapshotIndex[i]
         /\ snapshot[i].lastTerm = snapshotTerm[i]
         /\ Len(snapshot[i].data) = snapshotIndex[i]
         /\ config[i] \in ConfigType
         /\ config[i].learners \cap Voters(config[i]) = {}
         /\ config[i] = LogConfig(Load(i))
         /\ role[i] \in {Follower, Candidate, Leader, PreCandidate}
         /\ restartLease[i] \in BOOLEAN
         /\ ~PreVoteOn => ~restartLease[i]
         /\ ~PreVoteOn => role[i] # PreCandidate
         /\ commitIndex[i] \in Nat
         /\ leaderId[i] \in Server \cup {Nil}
         /\ votesGranted[i] \in SUBSET Server
         /\ IsIndexMap(nextIndex[i])
         /\ IsIndexMap(matchIndex[i])
         /\ readSeq[i] \in 0..MaxReads
         /\ IsIndexMap(readAcks[i])
         /\ pendingReads[i] \in Seq([id : 1..MaxReads, seq : 1..MaxReads])
         /\ role[i] # Leader => readSeq[i] = 0 /\ readAcks[i] = EmptyMap /\ pendingReads[i] = <<>>
         /\ recentActive[i] \in SUBSET (Server \ {i})
         /\ (role[i] # Leader \/ ~CheckQuorumOn) => recentActive[i] = {}
         /\ leadTransferee[i] \in (Voters(config[i]) \ {i}) \cup {Nil}
         /\ role[i] # Leader => leadTransferee[i] = Nil
         /\ durableIndex[i] \in snapshotIndex[i]..(snapshotIndex[i] + Len(log[i]))
         /\ (role[i] # Leader \/ ~ParallelWriteOn) => durableIndex[i] = snapshotIndex[i] + Len(log[i])
    /\ IsABag(messages) /\ BagToSet(messages) \subseteq MessageType
    \* Every action persists what it changed (see `durable`): storage holds
    \* exactly the persistent state, the log up to durableIndex, so `durable`
    \* adds no distinct state.
    /\ \A i \in Server : durable[i] = Persisted(Load(i))
    /\ elected \subseteq Terms \X Server
    /\ committed \subseteq Nat \X Terms \X Terms
    /\ readBound \in Seq(Nat) /\ Len(readBound) = reads
    /\ readsReady \subseteq (1..MaxReads) \X Nat
    /\ clientRequests \in 0..MaxClientRequests
    /\ restarts \in 0..MaxRestarts
    /\ compactions \in 0..MaxCompactions
    /\ reads \in 0..MaxReads
    /\ duplicates \in 0..MaxDuplicates
    /\ drops \in 0..MaxDrops
    /\ transfers \in 0..MaxTransfers
    /\ configChanges \in 0..MaxConfigChanges
    /\ learnerChanges \in 0..MaxLearnerChanges

-----------------------------------------------------------------------------
(* Safety properties (paper Figure 3).                                     *)

\* The whole log of server i: the snapshot's image holds exactly the entries
\* up to snapshotIndex (TypeOK checks the length), the log the rest.
FullLog(i) == snapshot[i].data \o log[i]

\* What server i has applied to its state machine.
Applied(i) == SubSeq(FullLog(i), 1, Min(commitIndex[i], Len(FullLog(i))))

IsPrefix(a, b) == Len(a) <= Len(b) /\ SubSeq(b, 1, Len(a)) = a

\* At most one leader per term.
ElectionSafety ==
    \A e, f \in elected : e[1] = f[1] => e[2] = f[2]

\* A leader never overwrites or deletes entries of its log, only appends
\* (compaction moves entries into the image, which FullLog includes).
LeaderAppendOnly ==
    [][\A i \in Server :
          (role[i] = Leader /\ role'[i] = Leader /\ currentTerm'[i] = currentTerm[i])
            => IsPrefix(FullLog(i), snapshot'[i].data \o log'[i])]_vars

\* Two logs holding an entry with the same index and term are identical up
\* to that index (compacted prefixes compared through the snapshot image).
LogMatching ==
    \A i, j \in Server :
      LET a == FullLog(i)
          b == FullLog(j)
      IN \A n \in 1..Min(Len(a), Len(b)) :
           a[n].term = b[n].term => SubSeq(a, 1, n) = SubSeq(b, 1, n)

\* Terms never decrease along a log (snapshot image included): a leader
\* appends only entries of its current term, at least every term its log
\* holds; a follower keeps a leader's prefix and drops its own entries from
\* the first conflict on; a snapshot keeps the log after it only when the
\* entry at its last index is of its last term. Keeping entries past a
\* conflict breaks it on the spot (Log Matching needs a second holder).
LogTermsMonotonic ==
    \A i \in Server :
      LET a == FullLog(i)
      IN \A n \in 1..(Len(a) - 1) : a[n].term <= a[n + 1].term

\* An entry committed in term ct is in the log of every leader of a later
\* term (or covered by its snapshot, which holds only committed entries).
LeaderCompleteness ==
    \A c \in committed, l \in Server :
      (role[l] = Leader /\ currentTerm[l] > c[3]) =>
        \/ c[1] <= snapshotIndex[l]
        \/ TermIs(Load(l), c[1], c[2])

\* No two servers apply different entries at the same index.
StateMachineSafety ==
    \A i, j \in Server :
      LET a == Applied(i)
          b == Applied(j)
      IN \A n \in 1..Min(Len(a), Len(b)) : a[n] = b[n]

-----------------------------------------------------------------------------
(* Linearizable reads (paper 8).                                           *)

\* A read released at index r reflects every write committed before the
\* read was registered: r is at least the highest committed index at
\* registration (readBound). A leader answering from a stale view (deposed
\* without knowing it, or before committing in its own term) would release
\* a read below it.
ReadIndexSafety ==
    \A ready \in readsReady : ready[2] >= readBound[ready[1]]

-----------------------------------------------------------------------------
(* PreVote (dissertation 9.6). What it is for is liveness (a server cut    *)
(* off and back must not depose a healthy leader); what can be checked on  *)
(* every state and step is what that rests on.                             *)

\* A candidate or pre-candidate knows no leader of its term: its election
\* timeout forgot the leader, and hearing from one ends a candidacy. A
\* pre-candidate that kept it would keep its lease and refuse every other
\* pre-candidate (etcd#9586).
CandidateKnowsNoLeader ==
    \A i \in Server : role[i] \in {Candidate, PreCandidate} => leaderId[i] = Nil

\* A pre-vote request or grant: its term is one no one holds.
IsPreVoteTerm(m) ==
    /\ m.type \in {"RequestVoteRequest", "RequestVoteResponse"}
    /\ m.preVote
    /\ m.type = "RequestVoteResponse" => m.voteGranted

\* A server's term rises only by its own campaign (to the next term, voting
\* for itself) or to the term of a message to it that is not a pre-vote.
PreVoteRaisesNoTerm ==
    [][\A i \in Server :
          currentTerm'[i] > currentTerm[i] =>
            \/ /\ currentTerm'[i] = currentTerm[i] + 1
               /\ votedFor'[i] = i
               /\ role'[i] \in {Candidate, Leader}
            \/ \E m \in DOMAIN messages : m.to = i /\ m.term = currentTerm'[i] /\ ~IsPreVoteTerm(m)]_vars

\* No server grants a pre-vote while it holds a lease (InLease: it heard from
\* the leader of its term, or restarted, since its election timer last
\* fired). (The checker also checks the Rust core against the lease's
\* definition: a Restart gives one and a Timeout takes it away, which
\* Restart and Timeout do here by construction.)
PreVoteRespectsLease ==
    [][\A i \in Server :
          (/\ duplicates' = duplicates
           /\ \E m \in DOMAIN messages' :
                /\ m.from = i /\ m.type = "RequestVoteResponse" /\ IsPreVoteTerm(m)
                /\ CopiesIn(m, messages') > CopiesIn(m, messages))
            => ~(leaderId[i] # Nil \/ restartLease[i])]_vars

-----------------------------------------------------------------------------
(* Leadership transfer (dissertation 3.10).                                *)

\* A leader handing leadership over appends nothing to its log (it refuses
\* client requests), so that the target can catch up with its last entry.
TransferFreezesLog ==
    [][\A i \in Server :
          (/\ role[i] = Leader /\ leadTransferee[i] # Nil
           /\ role'[i] = Leader /\ currentTerm'[i] = currentTerm[i])
            => snapshotIndex'[i] + Len(log'[i]) <= snapshotIndex[i] + Len(log[i])]_vars

\* A voting member that receives a TimeoutNow of its term (after the term
\* rule: of its term or a later one), and is not that term's leader,
\* campaigns in that very step: the next term, a vote for itself, no
\* pre-election. (A copy of a TimeoutNow to i leaves the network, other than
\* by DropMessage, only when i handles it.)
TimeoutNowCampaigns ==
    [][\A i \in Server, m \in DOMAIN messages :
          (/\ drops' = drops
           /\ m.type = "TimeoutNow" /\ m.to = i /\ Accepts(i, m)
           /\ CopiesIn(m, messages') < CopiesIn(m, messages)
           /\ m.term >= currentTerm[i]
           /\ i \in Voters(config[i])
           /\ ~(role[i] = Leader /\ m.term = currentTerm[i]))
            => /\ currentTerm'[i] = m.term + 1
               /\ votedFor'[i] = i
               /\ role'[i] \in {Candidate, Leader}]_vars

-----------------------------------------------------------------------------
(* Membership changes by joint consensus (paper 6, dissertation ch. 4).    *)

\* The configuration in force at index n of server i's whole log: the latest
\* configuration entry at or below n, else the initial one.
WholeConfigAt(i, n) ==
    LET a == FullLog(i)
        held == {k \in 1..Min(n, Len(a)) : IsConfigEntry(a[k])}
    IN IF held = {} THEN SimpleConfig(InitMembers) ELSE a[SetMax(held)].config

\* Server i's whole log reaches the highest committed index and holds every
\* committed entry as committed: only such a log's later entries may commit.
IsLive(i) ==
    /\ Len(FullLog(i)) >= CommittedIndex
    /\ \A c \in committed : c[1] <= Len(FullLog(i)) => FullLog(i)[c[1]].term = c[2]

\* The configurations of the live logs' entries past the highest committed
\* index: the changes not yet committed.
PendingConfigsOf(i) ==
    {FullLog(i)[k].config : k \in {n \in (CommittedIndex + 1)..Len(FullLog(i)) :
                                     IsConfigEntry(FullLog(i)[n])}}

PendingConfigs == UNION {PendingConfigsOf(i) : i \in {j \in Server : IsLive(j)}}

\* At most one configuration change is uncommitted, cluster-wide (copies of
\* C_new that a new leader appends again count once).
SingleUncommittedChange == Cardinality(PendingConfigs) <= 1

\* Every quorum of a meets every quorum of b: no quorum of a leaves a quorum
\* of b outside it (quorums are closed upwards).
QuorumsOverlap(a, b) == \A q \in SUBSET Server : ~(IsQuorum(a, q) /\ IsQuorum(b, Server \ q))

\* The configurations that could decide the next index: of every live server,
\* the one in force at the highest committed index, every later one in its
\* log, and the one it holds.
DecidingConfigs ==
    PendingConfigs
      \cup {WholeConfigAt(i, CommittedIndex) : i \in {j \in Server : IsLive(j)}}
      \cup {config[i] : i \in {j \in Server : IsLive(j)}}

\* Every two configurations that could decide the same index have
\* intersecting quorums.
QuorumsIntersect == \A a, b \in DecidingConfigs : QuorumsOverlap(a, b)

\* No leader is outside its configuration once that configuration has
\* committed: it steps down in the step that commits it.
RemovedLeaderStepsDown ==
    \A i \in Server :
      (role[i] = Leader /\ i \notin Voters(config[i]))
        => ConfigIndexAt(Load(i), LastIndex(Load(i))) > commitIndex[i]

\* No leader hands leadership over while a configuration change is pending.
TransferNotDuringChange ==
    \A i \in Server :
      (role[i] = Leader /\ leadTransferee[i] # Nil) => ~ConfigChangePending(Load(i))

=============================================================================
