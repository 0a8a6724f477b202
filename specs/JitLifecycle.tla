---------------------------- MODULE JitLifecycle ----------------------------
(***************************************************************************)
(* The seed's JIT code lifecycle (section 9.1) for a set of compiled       *)
(* artifacts ("JIT contexts"), with the two things the host adds to the    *)
(* seed's diagram: requests share an artifact (an in-flight count), and an *)
(* artifact is retired (takes no new request) before it is Evicted.       *)
(*                                                                         *)
(* Mapping to the Rust code (host/src/lifecycle/mod.rs unless noted):      *)
(*   state[c]      Cell::state of the Lifecycle whose context number is c; *)
(*                 "None" is the initial pseudo-state ([*], `None` in      *)
(*                 `Transition::from`).                                    *)
(*   inflight[c]   Cell::in_flight          retired[c]   Cell::retired     *)
(*   Receive(c)    Lifecycle::new (Host::build creates one per build)      *)
(*   Optimize, Generate, Compile, CompileOk, *Fail                         *)
(*                 Lifecycle::advance, called by Host::build               *)
(*                 (host/src/host.rs) in pipeline order; a disk-cache hit  *)
(*                 walks the same states.                                  *)
(*   BeginRequest  Lifecycle::begin (Host::begin, Host::invoke)            *)
(*   EndRequest    Lifecycle::end(failed = false) (Running's Drop)         *)
(*   FailArtifact  Lifecycle::end(failed = true): the artifact no longer   *)
(*                 instantiates (Running::artifact_failed)                 *)
(*   EndOnFailed   Lifecycle::end on an artifact already Failed            *)
(*   Retire        Lifecycle::retire (Cache::admit on LRU pressure,        *)
(*                 Cache::retire from Host::deploy/undeploy, clear_memory) *)
(*   Evict         the second half of Lifecycle::end when retired: the    *)
(*                 last request ended, so Ready -> Evicted                 *)
(*   SeedTransitions  graphjit::TRANSITIONS (lifecycle::TRANSITIONS); the  *)
(*                 conformance test checks the two are equal.              *)
(*                                                                         *)
(* Properties: TypeOK; NoEvictWhileInFlight (never Evicted while requests  *)
(* run); EvictedOnlyIfRetired; IdleIffReady (Ready has no request,         *)
(* Executing at least one); OnlySeedTransitions and FinalStatesFinal       *)
(* (Failed and Evicted are never left); and, under fairness for requests   *)
(* ending and the pipeline progressing, RetiredEventuallyEvicted (a        *)
(* retired artifact whose requests finish is eventually Evicted) and       *)
(* PipelineEnds (every received graph ends Ready, Failed or Evicted).      *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Contexts,      \* the artifacts (context numbers)
    MaxInFlight    \* a bound on concurrent requests per artifact, for TLC

States == {"GraphReceived", "Optimizing", "Generating", "Compiling",
           "Ready", "Executing", "Failed", "Evicted"}

\* The seed's diagram (9.1), "None" standing for [*].
SeedTransitions ==
    { <<"None", "GraphReceived">>,
      <<"GraphReceived", "Optimizing">>,
      <<"Optimizing", "Generating">>,
      <<"Optimizing", "Failed">>,
      <<"Generating", "Compiling">>,
      <<"Generating", "Failed">>,
      <<"Compiling", "Ready">>,
      <<"Compiling", "Failed">>,
      <<"Ready", "Executing">>,
      <<"Executing", "Ready">>,
      <<"Executing", "Failed">>,
      <<"Ready", "Evicted">> }

Final == {"Failed", "Evicted"}

VARIABLES state, inflight, retired
vars == <<state, inflight, retired>>

TypeOK ==
    /\ state \in [Contexts -> States \cup {"None"}]
    /\ inflight \in [Contexts -> 0..MaxInFlight]
    /\ retired \in [Contexts -> BOOLEAN]

Init ==
    /\ state = [c \in Contexts |-> "None"]
    /\ inflight = [c \in Contexts |-> 0]
    /\ retired = [c \in Contexts |-> FALSE]

\* One pipeline step of c from `from` to `to`.
Move(c, from, to) ==
    /\ state[c] = from
    /\ state' = [state EXCEPT ![c] = to]
    /\ UNCHANGED <<inflight, retired>>

Receive(c)      == Move(c, "None", "GraphReceived")
Optimize(c)     == Move(c, "GraphReceived", "Optimizing")
OptimizeFail(c) == Move(c, "Optimizing", "Failed")
Generate(c)     == Move(c, "Optimizing", "Generating")
GenerateFail(c) == Move(c, "Generating", "Failed")
Compile(c)      == Move(c, "Generating", "Compiling")
CompileOk(c)    == Move(c, "Compiling", "Ready")
CompileFail(c)  == Move(c, "Compiling", "Failed")

Pipeline(c) ==
    \/ Receive(c) \/ Optimize(c) \/ OptimizeFail(c) \/ Generate(c)
    \/ GenerateFail(c) \/ Compile(c) \/ CompileOk(c) \/ CompileFail(c)

\* The first request moves Ready -> Executing; later ones only count.
BeginRequest(c) ==
    /\ ~retired[c]
    /\ state[c] \in {"Ready", "Executing"}
    /\ inflight[c] < MaxInFlight
    /\ inflight' = [inflight EXCEPT ![c] = @ + 1]
    /\ state' = [state EXCEPT ![c] = "Executing"]
    /\ UNCHANGED retired

\* A request ends normally (its result may be a typed runtime error); the
\* last one moves Executing -> Ready.
EndRequest(c) ==
    /\ state[c] = "Executing"
    /\ inflight[c] > 0
    /\ inflight' = [inflight EXCEPT ![c] = @ - 1]
    /\ state' = [state EXCEPT ![c] = IF inflight[c] = 1 THEN "Ready" ELSE "Executing"]
    /\ UNCHANGED retired

\* A request finds the artifact broken: Executing -> Failed at once.
FailArtifact(c) ==
    /\ state[c] = "Executing"
    /\ inflight[c] > 0
    /\ inflight' = [inflight EXCEPT ![c] = @ - 1]
    /\ state' = [state EXCEPT ![c] = "Failed"]
    /\ UNCHANGED retired

\* Requests still running on a Failed artifact end without a transition.
EndOnFailed(c) ==
    /\ state[c] = "Failed"
    /\ inflight[c] > 0
    /\ inflight' = [inflight EXCEPT ![c] = @ - 1]
    /\ UNCHANGED <<state, retired>>

\* Out of service: no new request; Ready -> Evicted at once if idle.
Retire(c) ==
    /\ ~retired[c]
    /\ state[c] \in {"Ready", "Executing", "Failed"}
    /\ retired' = [retired EXCEPT ![c] = TRUE]
    /\ state' = [state EXCEPT ![c] = IF @ = "Ready" THEN "Evicted" ELSE @]
    /\ UNCHANGED inflight

\* A retired artifact whose last request ended.
Evict(c) ==
    /\ retired[c]
    /\ state[c] = "Ready"
    /\ inflight[c] = 0
    /\ state' = [state EXCEPT ![c] = "Evicted"]
    /\ UNCHANGED <<inflight, retired>>

\* Everything one artifact can do; contexts never act on each other.
Step(c) ==
    \/ Pipeline(c)
    \/ BeginRequest(c) \/ EndRequest(c) \/ FailArtifact(c) \/ EndOnFailed(c)
    \/ Retire(c) \/ Evict(c)

\* Every artifact has reached a final state and no request is left: the
\* behaviour may stop here (stuttering), which is not a deadlock.
Done ==
    /\ \A c \in Contexts : state[c] \in Final /\ inflight[c] = 0
    /\ UNCHANGED vars

Next == (\E c \in Contexts : Step(c)) \/ Done

\* Request ends and pipeline progress are fair; beginning requests is not
\* (clients may stop coming), and neither is retiring.
Fairness ==
    \A c \in Contexts :
        /\ WF_vars(Pipeline(c))
        /\ WF_vars(EndRequest(c) \/ FailArtifact(c) \/ EndOnFailed(c))
        /\ WF_vars(Evict(c))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
\* Invariants.

NoEvictWhileInFlight ==
    \A c \in Contexts : state[c] = "Evicted" => inflight[c] = 0

EvictedOnlyIfRetired ==
    \A c \in Contexts : state[c] = "Evicted" => retired[c]

IdleIffReady ==
    \A c \in Contexts :
        /\ state[c] = "Ready" => inflight[c] = 0
        /\ state[c] = "Executing" => inflight[c] > 0
        /\ state[c] \notin {"Ready", "Executing", "Failed"} => inflight[c] = 0

\* Action properties.

OnlySeedTransitions ==
    [][\A c \in Contexts :
         state'[c] # state[c] => <<state[c], state'[c]>> \in SeedTransitions]_vars

FinalStatesFinal ==
    [][\A c \in Contexts : state[c] \in Final => state'[c] = state[c]]_vars

\* Liveness.

RetiredEventuallyEvicted ==
    \A c \in Contexts : retired[c] ~> state[c] \in Final

PipelineEnds ==
    \A c \in Contexts :
        state[c] = "GraphReceived" ~> state[c] \in {"Ready", "Executing"} \cup Final
=============================================================================
