----------------------------- MODULE TraceRaft -----------------------------
(***************************************************************************)
(* Trace validation: does a recorded run of the node follow Raft.tla?      *)
(*                                                                         *)
(* `raft-interop validate TRACES --tla DIR` replays the nodes' traces      *)
(* through raft-model, merges them in a causal order, drops the events a   *)
(* crash undid, and writes the run as DIR/trace.ndjson (one JSON object    *)
(* per step, see interop/src/tla.rs) with DIR/TraceRaft.cfg. This module   *)
(* reads those lines with the standard Json module and lets TLC search for *)
(* a behaviour of Raft.tla that takes, at step l, the recorded action of   *)
(* the recorded server on a message of the network matching the recorded  *)
(* one (consuming a copy of it), and leaves that server in the recorded    *)
(* state; a network line duplicates or drops a copy. A step of the trace   *)
(* no Raft.tla action can take is a deadlock with l pointing at it; a      *)
(* trace that is fully consumed ends in the stuttering step Done. The      *)
(* safety invariants of Raft.tla are checked along the way.                *)
(*                                                                         *)
(* Payloads are not compared (the spec numbers client commands itself);    *)
(* entries are matched by term, which identifies them (Log Matching).      *)
(***************************************************************************)
EXTENDS Raft, Json, TLC

CONSTANT TraceFile      \* absolute path of the trace.ndjson to check
CONSTANT Joiners        \* servers initialised with `init --join` (header members [])

\* Overrides Raft!InitConfig (TraceRaft.cfg: InitConfig <- TraceInitConfig):
\* a joiner starts with no configuration, as the node's `init --join` does.
TraceInitConfig(i) == IF i \in Joiners THEN SimpleConfig({}) ELSE SimpleConfig(InitMembers)

Trace == ndJsonDeserialize(TraceFile)

VARIABLE l              \* the next line of Trace to match

traceVars == <<vars, l>>

E == Trace[l]

\* A message of the network is the recorded one (interop/src/tla.rs names
\* the fields as the spec's message records do).
MsgMatches(m, r) ==
    /\ m.type = r.type
    /\ m.from = r.from
    /\ m.to = r.to
    /\ m.term = r.term
    /\ CASE r.type = "RequestVoteRequest" ->
                /\ m.lastLogIndex = r.lastLogIndex /\ m.lastLogTerm = r.lastLogTerm
                /\ m.preVote = r.preVote
         [] r.type = "RequestVoteResponse" ->
                m.voteGranted = r.voteGranted /\ m.preVote = r.preVote
         [] r.type = "AppendEntriesRequest" ->
                /\ m.prevLogIndex = r.prevLogIndex
                /\ m.prevLogTerm = r.prevLogTerm
                /\ m.leaderCommit = r.leaderCommit
                /\ m.readSeq = r.readSeq
                /\ Len(m.entries) = Len(r.entryTerms)
                /\ \A k \in 1..Len(m.entries) : m.entries[k].term = r.entryTerms[k]
         [] r.type = "AppendEntriesResponse" ->
                /\ m.success = r.success
                /\ m.matchIndex = r.matchIndex
                /\ m.conflictTerm = r.conflictTerm
                /\ m.conflictIndex = r.conflictIndex
                /\ m.readSeq = r.readSeq
         [] r.type = "InstallSnapshotRequest" ->
                m.snapshot.lastIndex = r.lastIndex /\ m.snapshot.lastTerm = r.lastTerm
         [] r.type = "InstallSnapshotResponse" ->
                m.matchIndex = r.matchIndex
         [] r.type = "TimeoutNow" -> TRUE

\* The recorded server is left in the recorded state.
StateMatches(i, r) ==
    /\ currentTerm'[i] = r.currentTerm
    /\ votedFor'[i] = r.votedFor
    /\ role'[i] = r.role
    /\ commitIndex'[i] = r.commitIndex
    /\ leaderId'[i] = r.leaderId
    /\ snapshotIndex'[i] = r.snapshotIndex
    /\ snapshotIndex'[i] + Len(log'[i]) = r.lastIndex
    /\ leadTransferee'[i] = r.leadTransferee
    /\ durableIndex'[i] = r.durableIndex
    /\ config'[i].members = {r.configMembers[k] : k \in DOMAIN r.configMembers}
    /\ config'[i].old = {r.configOld[k] : k \in DOMAIN r.configOld}
    /\ config'[i].learners = {r.configLearners[k] : k \in DOMAIN r.configLearners}

Receives(i, Handle(_, _)) == \E m \in DOMAIN messages : MsgMatches(m, E.msg) /\ Handle(i, m)

Step(i) ==
    CASE E.action = "Timeout" -> Timeout(i)
      [] E.action = "SendAppendEntries" -> SendAppendEntries(i)
      [] E.action = "ClientRequest" -> ClientRequest(i)
      [] E.action = "ReadIndex" -> ReadIndex(i)
      [] E.action = "CompactLog" -> CompactLogTo(i, E.index)
      [] E.action = "LogPersisted" -> LogPersistedTo(i, E.index, E.term)
      [] E.action = "Restart" -> Restart(i)
      [] E.action = "CheckQuorum" -> CheckQuorum(i)
      [] E.action = "TransferLeadership" -> TransferLeadership(i, E.target)
      [] E.action = "AbortTransfer" -> AbortTransfer(i)
      [] E.action = "ChangeConfig" ->
            ChangeConfig(i, {E.members[k] : k \in DOMAIN E.members})
      [] E.action = "ChangeLearners" ->
            ChangeLearners(i, {E.learners[k] : k \in DOMAIN E.learners})
      [] E.action = "HandleTimeoutNow" -> Receives(i, HandleTimeoutNow)
      [] E.action = "HandleRequestVoteRequest" -> Receives(i, HandleRequestVoteRequest)
      [] E.action = "HandleRequestVoteResponse" -> Receives(i, HandleRequestVoteResponse)
      [] E.action = "HandleAppendEntriesRequest" -> Receives(i, HandleAppendEntriesRequest)
      [] E.action = "HandleAppendEntriesResponse" -> Receives(i, HandleAppendEntriesResponse)
      [] E.action = "HandleInstallSnapshotRequest" -> Receives(i, HandleInstallSnapshotRequest)
      [] E.action = "HandleInstallSnapshotResponse" -> Receives(i, HandleInstallSnapshotResponse)

\* A line of the network's own step (a checker's trace: `duplicate` and
\* `drop` lines): the network copies or loses a copy of the recorded
\* message. No server's state changes, so there is no state to compare.
\* The duplicates matter: each delivery consumes a copy, so a message the
\* checker delivered twice needs its DuplicateMessage line in between.
IsNetworkLine == E.action \in {"DuplicateMessage", "DropMessage"}

NetworkStep ==
    CASE E.action = "DuplicateMessage" ->
            \E m \in DOMAIN messages : MsgMatches(m, E.msg) /\ DuplicateMessage(m)
      [] E.action = "DropMessage" ->
            \E m \in DOMAIN messages : MsgMatches(m, E.msg) /\ DropMessage(m)

TraceInit == Init /\ l = 1

\* The whole trace matched: stutter, so that the end is not a deadlock.
Done == l > Len(Trace) /\ UNCHANGED traceVars

TraceNext ==
    \/ /\ l <= Len(Trace)
       /\ IF IsNetworkLine
          THEN NetworkStep
          ELSE Step(E.node) /\ StateMatches(E.node, E.state)
       /\ l' = l + 1
    \/ Done

=============================================================================
