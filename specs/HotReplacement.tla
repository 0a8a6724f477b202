--------------------------- MODULE HotReplacement ---------------------------
(***************************************************************************)
(* Hot code replacement (seed 9.3) of one named deployment: versions are   *)
(* deployed (compiled while the current one serves), swapped in once       *)
(* Ready, and the replaced version is retired and evicted when drained.   *)
(* Clients start requests on the current version and finish them on the  *)
(* version they started on.                                               *)
(*                                                                         *)
(* Mapping to the Rust code (host/src/deploy.rs unless noted):            *)
(*   Versions      the artifacts a deployment goes through; a version     *)
(*                 here is one artifact (one lifecycle context).  The     *)
(*                 refresh in Host::invoke after a failed artifact is a   *)
(*                 Deploy of a new artifact under the same number.        *)
(*   vstate[v]     the artifact's Lifecycle state; the pipeline           *)
(*                 GraphReceived..Compiling is one "Compiling" here       *)
(*                 (JitLifecycle has the detail).                         *)
(*   current       Deployment::current in HostInner::deployments: the set *)
(*                 of versions new requests may go to (the Rust code      *)
(*                 holds one; the invariant AtMostOneCurrent says so).    *)
(*   retired[v], inflight[v]   Lifecycle's Cell::retired / in_flight      *)
(*   req[c]        the version client c's request runs on (0: none):      *)
(*                 the Running guard and the Arc<Artifact> Host::invoke   *)
(*                 holds for the whole request.                           *)
(*   Deploy(v)     Host::deploy -> Host::compile_async starts             *)
(*   Compiled(v) / CompileFailed(v)   the build ends (Host::build)        *)
(*   Swap(v)       Host::deploy's critical section under the deployments  *)
(*                 lock: std::mem::replace of Deployment::current         *)
(*   RetireOld(v)  Host::unpin -> Cache::retire -> Lifecycle::retire,     *)
(*                 after the lock is released                             *)
(*   Start(c)      Host::invoke: reads current and calls Lifecycle::begin *)
(*                 under the same deployments lock                        *)
(*   Finish(c)     Host::run_on drops the Running guard: Lifecycle::end   *)
(*   Break(c)      a request finds the artifact no longer instantiates    *)
(*                 (Running::artifact_failed)                             *)
(*   Evict(v)      Lifecycle::end of the last request of a retired one    *)
(*                                                                         *)
(* Properties: TypeOK; OnlyServingVersionsServe (a request runs only on a *)
(* version that was Ready: Executing, or Failed by a request); CurrentIs-  *)
(* Ready (a version becomes current only once Ready); NoRequestLost (each  *)
(* version's in-flight count is exactly the clients running on it, so     *)
(* every started request finishes on the version it started on);          *)
(* EvictedOnlyAfterDrain; AtMostOneCurrent; and, under fairness,          *)
(* RequestsFinish and ReplacedVersionsEvicted.                            *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Versions,   \* 1..N: the artifacts deployed, in deploy order
    Clients     \* the clients invoking the deployment

VARIABLES vstate, current, retired, inflight, req, swapped
vars == <<vstate, current, retired, inflight, req, swapped>>

VStates == {"None", "Compiling", "Ready", "Executing", "Failed", "Evicted"}

TypeOK ==
    /\ vstate \in [Versions -> VStates]
    /\ current \subseteq Versions
    /\ retired \in [Versions -> BOOLEAN]
    /\ inflight \in [Versions -> 0..Cardinality(Clients)]
    /\ req \in [Clients -> Versions \cup {0}]
    /\ swapped \subseteq Versions

Init ==
    /\ vstate = [v \in Versions |-> "None"]
    /\ current = {}
    /\ retired = [v \in Versions |-> FALSE]
    /\ inflight = [v \in Versions |-> 0]
    /\ req = [c \in Clients |-> 0]
    /\ swapped = {}

\* Host::deploy starts compiling v (deploys may overlap).
Deploy(v) ==
    /\ vstate[v] = "None"
    /\ vstate' = [vstate EXCEPT ![v] = "Compiling"]
    /\ UNCHANGED <<current, retired, inflight, req, swapped>>

Compiled(v) ==
    /\ vstate[v] = "Compiling"
    /\ vstate' = [vstate EXCEPT ![v] = "Ready"]
    /\ UNCHANGED <<current, retired, inflight, req, swapped>>

\* deploy returns the error; the current version keeps serving.
CompileFailed(v) ==
    /\ vstate[v] = "Compiling"
    /\ vstate' = [vstate EXCEPT ![v] = "Failed"]
    /\ UNCHANGED <<current, retired, inflight, req, swapped>>

\* Under the deployments lock: v replaces whatever was current.
Swap(v) ==
    /\ vstate[v] \in {"Ready", "Executing"}
    /\ v \notin swapped
    /\ current' = {v}
    /\ swapped' = swapped \cup {v}
    /\ UNCHANGED <<vstate, retired, inflight, req>>

\* After the lock: a replaced version is retired (Ready -> Evicted if idle).
RetireOld(v) ==
    /\ v \in swapped
    /\ v \notin current
    /\ ~retired[v]
    /\ retired' = [retired EXCEPT ![v] = TRUE]
    /\ vstate' = [vstate EXCEPT ![v] = IF @ = "Ready" THEN "Evicted" ELSE @]
    /\ UNCHANGED <<current, inflight, req, swapped>>

\* Host::invoke: under the same lock, begin on a current version.
Start(c) ==
    /\ req[c] = 0
    /\ \E v \in current :
        /\ ~retired[v]
        /\ vstate[v] \in {"Ready", "Executing"}
        /\ req' = [req EXCEPT ![c] = v]
        /\ inflight' = [inflight EXCEPT ![v] = @ + 1]
        /\ vstate' = [vstate EXCEPT ![v] = "Executing"]
    /\ UNCHANGED <<current, retired, swapped>>

\* The request ends on the version it started on.
Finish(c) ==
    /\ req[c] # 0
    /\ LET v == req[c] IN
        /\ inflight' = [inflight EXCEPT ![v] = @ - 1]
        /\ vstate' = [vstate EXCEPT ![v] =
                        IF @ = "Executing" /\ inflight[v] = 1 THEN "Ready" ELSE @]
    /\ req' = [req EXCEPT ![c] = 0]
    /\ UNCHANGED <<current, retired, swapped>>

\* The request finds its artifact broken: it ends, the artifact is Failed.
Break(c) ==
    /\ req[c] # 0
    /\ vstate[req[c]] = "Executing"
    /\ LET v == req[c] IN
        /\ inflight' = [inflight EXCEPT ![v] = @ - 1]
        /\ vstate' = [vstate EXCEPT ![v] = "Failed"]
    /\ req' = [req EXCEPT ![c] = 0]
    /\ UNCHANGED <<current, retired, swapped>>

Evict(v) ==
    /\ retired[v]
    /\ vstate[v] = "Ready"
    /\ inflight[v] = 0
    /\ vstate' = [vstate EXCEPT ![v] = "Evicted"]
    /\ UNCHANGED <<current, retired, inflight, req, swapped>>

\* Nothing left to do: every version deployed and settled, no request.
Done ==
    /\ \A v \in Versions : vstate[v] \in {"Ready", "Failed", "Evicted"}
    /\ \A v \in Versions : v \in swapped \/ vstate[v] = "Failed"
    /\ \A v \in Versions : (v \in swapped /\ v \notin current) => retired[v]
    /\ \A c \in Clients : req[c] = 0
    /\ UNCHANGED vars

Next ==
    \/ \E v \in Versions :
        Deploy(v) \/ Compiled(v) \/ CompileFailed(v) \/ Swap(v) \/ RetireOld(v) \/ Evict(v)
    \/ \E c \in Clients : Start(c) \/ Finish(c) \/ Break(c)
    \/ Done

Fairness ==
    /\ \A c \in Clients : WF_vars(Finish(c) \/ Break(c))
    /\ \A v \in Versions :
        /\ WF_vars(Compiled(v) \/ CompileFailed(v))
        /\ WF_vars(Swap(v))
        /\ WF_vars(RetireOld(v))
        /\ WF_vars(Evict(v))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------

OnlyServingVersionsServe ==
    \A c \in Clients : req[c] # 0 => vstate[req[c]] \in {"Executing", "Failed"}

CurrentIsReady ==
    \A v \in current : vstate[v] \in {"Ready", "Executing", "Failed"}

NoRequestLost ==
    \A v \in Versions : inflight[v] = Cardinality({c \in Clients : req[c] = v})

EvictedOnlyAfterDrain ==
    \A v \in Versions :
        vstate[v] = "Evicted" => /\ retired[v]
                                 /\ inflight[v] = 0
                                 /\ \A c \in Clients : req[c] # v

AtMostOneCurrent == Cardinality(current) <= 1

RequestsFinish == \A c \in Clients : req[c] # 0 ~> req[c] = 0

ReplacedVersionsEvicted ==
    \A v \in Versions :
        (v \in swapped /\ v \notin current) ~> vstate[v] \in {"Evicted", "Failed"}
=============================================================================
