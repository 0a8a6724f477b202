------------------------ MODULE HotReplacementTrace ------------------------
(***************************************************************************)
(* Trace conformance for hot replacement: is the sequence of deployment    *)
(* events the host recorded (graphjit::Host::deploy_trace, host/src/       *)
(* lifecycle/deployments.rs) a behaviour of HotReplacement's Next?  The   *)
(* rules come from HotReplacement itself (INSTANCE), not from a copy.      *)
(*                                                                         *)
(* The data module HotReplacementTraceData defines                        *)
(*   TraceVersions  the artifacts (lifecycle contexts) of one deployment: *)
(*                  the spec's versions                                   *)
(*   TraceClients   1..K: the request slots; tests/all/conformance.rs     *)
(*                  gives each request the lowest slot free when it       *)
(*                  starts (a renaming: the spec's clients are symmetric) *)
(*   Trace          records [kind, v, c, replaced] in the order recorded: *)
(*                  kind is the spec action's name, v the version, c the  *)
(*                  client (0 where the action has none), replaced the    *)
(*                  version a Swap replaced (0: none)                     *)
(* tests/all/conformance.rs writes it from a real host; specs/ holds a     *)
(* small hand-made one so that specs/check exercises this module.         *)
(*                                                                         *)
(* Events and actions, one to one (host/src/lifecycle/deployments.rs):    *)
(*   Compiled -> Compiled(v)     Swapped -> Swap(v)   Retired -> RetireOld *)
(*   RequestStarted -> Start(c)  RequestFinished -> Finish(c)             *)
(*   RequestBroke -> Break(c)    Evicted -> Evict(v)                      *)
(* Two actions leave no event, because the host cannot record them as    *)
(* deployment events: Deploy(v) (the build starting: Host::deploy learns   *)
(* the context only from the built artifact) and CompileFailed(v) (a      *)
(* failed build returns an error, not an artifact; such a version never   *)
(* appears in the trace, so it is not in TraceVersions at all).  Deploy(v) *)
(* is a hidden step, taken only for the version of the next event: it     *)
(* touches nothing but vstate[v], which no other action reads while it is  *)
(* "None", so it can always wait until then.  Done is a stuttering step.  *)
(*                                                                         *)
(* Acceptance, as in JitLifecycleTrace: the "invariant" TraceIncomplete is *)
(* violated exactly when some behaviour matched every entry; a trace that *)
(* cannot be matched leaves TLC with no error to report (rejected).  Run  *)
(* TLC with -deadlock.  HotReplacement's invariants are checked along the  *)
(* matched prefix.                                                        *)
(***************************************************************************)
EXTENDS Naturals, Sequences, TLC, HotReplacementTraceData

VARIABLES vstate, current, retired, inflight, req, swapped, i

H == INSTANCE HotReplacement
        WITH Versions <- TraceVersions, Clients <- TraceClients

traceVars == <<vstate, current, retired, inflight, req, swapped, i>>

TraceInit == H!Init /\ i = 1 /\ TLCSet(1, 1)

\* Reports each new furthest match (register 1), so that a rejected trace
\* shows how far it got.
Progress(n) ==
    IF n > TLCGet(1) THEN TLCSet(1, n) /\ PrintT(<<"matched", n - 1>>) ELSE TRUE

\* The action an event records, with what the event observed: the version
\* a request started on or ends on, the version a swap replaced.
Matches(e) ==
    CASE e.kind = "Compiled"  -> H!Compiled(e.v)
      [] e.kind = "Swap"      -> /\ current = IF e.replaced = 0 THEN {} ELSE {e.replaced}
                                 /\ H!Swap(e.v)
      [] e.kind = "RetireOld" -> H!RetireOld(e.v)
      [] e.kind = "Start"     -> H!Start(e.c) /\ req'[e.c] = e.v
      [] e.kind = "Finish"    -> req[e.c] = e.v /\ H!Finish(e.c)
      [] e.kind = "Break"     -> req[e.c] = e.v /\ H!Break(e.c)
      [] e.kind = "Evict"     -> H!Evict(e.v)
      [] OTHER                -> FALSE

\* The next recorded event, as that action.
Recorded ==
    /\ i <= Len(Trace)
    /\ Matches(Trace[i])
    /\ i' = i + 1
    /\ Progress(i')

\* The build of the next event's version starting: not recorded (see above).
Hidden ==
    /\ i <= Len(Trace)
    /\ Trace[i].v \in TraceVersions
    /\ H!Deploy(Trace[i].v)
    /\ UNCHANGED i

TraceNext == Recorded \/ Hidden

TraceSpec == TraceInit /\ [][TraceNext]_traceVars

\* Violated exactly when the whole trace was matched (see above).
TraceIncomplete == i <= Len(Trace)

\* HotReplacement's invariants hold along the matched prefix too.
ReplacementInvariants ==
    /\ H!TypeOK
    /\ H!OnlyServingVersionsServe
    /\ H!CurrentIsReady
    /\ H!NoRequestLost
    /\ H!EvictedOnlyAfterDrain
    /\ H!AtMostOneCurrent
=============================================================================
