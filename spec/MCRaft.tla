------------------------------- MODULE MCRaft -------------------------------
(***************************************************************************)
(* Model-checking harness for Raft.tla: the state constraint bounding the  *)
(* log length and the messages in flight, and symmetry over the servers.   *)
(* MCRaft.cfg gives the default bound, which the stateright checker        *)
(* (checker/) explores too; spec/README.md maps each constant to its flag. *)
(***************************************************************************)
EXTENDS Raft, TLC

CONSTANTS
    MaxLogLength,   \* longest whole log (snapshot + entries) explored further
    MaxMessages     \* most copies of messages in flight explored further

ASSUME MaxLogLength \in Nat /\ MaxMessages \in Nat

\* The TLC CONSTRAINT and the checker's `within_boundary`: states outside it
\* are still checked against the invariants but not explored further.
WithinBounds ==
    /\ \A i \in Server : snapshotIndex[i] + Len(log[i]) <= MaxLogLength
    /\ InFlight <= MaxMessages  \* copies, duplicates included

\* Servers are interchangeable: the spec never compares server ids except
\* for equality, and every server of the initial configuration starts alike
\* (so does every spare one: Server \ InitMembers). Only renamings that keep
\* the initial configuration map initial states to initial states, so the
\* symmetry permutes InitMembers among themselves. (With more than one spare
\* server the spares could be permuted too; every cfg has at most one.)
Symmetry == Permutations(InitMembers)

=============================================================================
