---------------------------- MODULE CompileCache ----------------------------
(***************************************************************************)
(* The compile cache (seed 9.2, DESIGN 8): an in-memory L1 of ready       *)
(* artifacts, an on-disk L2 of precompiled components, and single flight: *)
(* concurrent requests for one key build it once and share the builder's  *)
(* result.  The key covers the graph and everything else that decides the *)
(* component (here one such ingredient, the toolchain, which can change). *)
(*                                                                         *)
(* Mapping to the Rust code (host/src/cache/mod.rs unless noted):         *)
(*   Key(g, t)     cache::CacheKey from KeyIngredients (cache/key.rs):    *)
(*                 blake3 of the canonical graph, pass config, target,    *)
(*                 toolchain and guest-template hash                      *)
(*   Slot(k)       where an entry for key k is kept: the L1 map, the L2   *)
(*                 file name and the flights map are all indexed by the   *)
(*                 full key                                               *)
(*   memory        L1: memory::MemoryCache<Arc<Artifact>>                 *)
(*   disk[s]       L2: the key a file under that name was built for       *)
(*                 (cache/disk.rs records it and blake3 in the file)      *)
(*   flights       Cache::flights: one OnceLock per key being built        *)
(*   Request(r,g)  Host::compile computes the key (Host::cache_key)       *)
(*   Lookup(r)     Cache::memory_get at the top of Cache::get_or_build    *)
(*   Flight(r)     the flights entry: the first caller of                 *)
(*                 OnceLock::get_or_init leads, the others wait           *)
(*   Build(r)      the leader's closure: re-check L1, else Host::build,   *)
(*                 which loads a verified L2 file (DiskCache::get, then   *)
(*                 Runtime::load_precompiled) or compiles and writes L2;  *)
(*                 Cache::admit puts the result in L1; every waiter reads  *)
(*                 the same OnceLock value; the flight is removed         *)
(*   EvictL1(s)    LRU pressure (Cache::admit retiring what it pushes out) *)
(*   ChangeToolchain   a new rustc/wasmtime/guest template: every key     *)
(*                 computed from now on differs                           *)
(*   Init's disk   L2 may start with a foreign file: another key's file   *)
(*                 under a key's name (DiskCache::get discards it:        *)
(*                 Lookup::Discarded)                                     *)
(*                                                                         *)
(* Properties: TypeOK; SingleFlight (at most one build per key at a time);*)
(* WaitersGetBuildersResult; NoStaleArtifact (an artifact is only served, *)
(* kept in L1, or loaded from L2 for the key it was built for: the        *)
(* property host/src/runtime/mod.rs's unsafe block relies on); and, under *)
(* fairness, RequestsAnswered.                                            *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Graphs,        \* graph contents
    Requesters,    \* concurrent callers of Host::compile (each asks once)
    MaxToolchain   \* toolchain versions 0..MaxToolchain

Toolchains == 0..MaxToolchain
Keys == Graphs \X Toolchains
Key(g, t) == <<g, t>>
Slot(k) == k

\* An artifact: the key it was built for and which build made it.
Artifacts == [for : Keys, build : 1..Cardinality(Requesters)]
\* Sentinels of the same shapes as keys and artifacts (TLC compares only
\* values of one kind): no key / no file, no artifact, a failed build.
NoKey == <<"none", 0>>
None == [for |-> NoKey, build |-> 0]
Error == [for |-> <<"error", 0>>, build |-> 0]

VARIABLES toolchain, pc, key, got, leader, memory, disk, flights, builds
vars == <<toolchain, pc, key, got, leader, memory, disk, flights, builds>>

TypeOK ==
    /\ toolchain \in Toolchains
    /\ pc \in [Requesters -> {"idle", "lookup", "flight", "building", "waiting", "done"}]
    /\ key \in [Requesters -> Keys \cup {NoKey}]
    /\ got \in [Requesters -> Artifacts \cup {None, Error}]
    /\ leader \in [Requesters -> Requesters \cup {0}]
    /\ memory \in [Keys -> Artifacts \cup {None}]
    /\ disk \in [Keys -> Keys \cup {NoKey}]
    /\ flights \in [Keys -> Requesters \cup {0}]
    /\ builds \in 0..Cardinality(Requesters)

Init ==
    /\ toolchain = 0
    /\ pc = [r \in Requesters |-> "idle"]
    /\ key = [r \in Requesters |-> NoKey]
    /\ got = [r \in Requesters |-> None]
    /\ leader = [r \in Requesters |-> 0]
    /\ memory = [k \in Keys |-> None]
    \* L2 starts empty, or with one foreign file: another key's file under
    \* a key's name (copied, or left by another toolchain).
    /\ disk \in {[k \in Keys |-> NoKey]} \cup
               UNION {{[k \in Keys |-> IF k = s THEN f ELSE NoKey] : f \in Keys \ {s}} :
                      s \in Keys}
    /\ flights = [k \in Keys |-> 0]
    /\ builds = 0

Request(r, g) ==
    /\ pc[r] = "idle"
    /\ key' = [key EXCEPT ![r] = Key(g, toolchain)]
    /\ pc' = [pc EXCEPT ![r] = "lookup"]
    /\ UNCHANGED <<toolchain, got, leader, memory, disk, flights, builds>>

\* L1 first: a hit answers at once.
Lookup(r) ==
    /\ pc[r] = "lookup"
    /\ LET s == Slot(key[r]) IN
        IF memory[s] # None
        THEN /\ got' = [got EXCEPT ![r] = memory[s]]
             /\ pc' = [pc EXCEPT ![r] = "done"]
        ELSE /\ pc' = [pc EXCEPT ![r] = "flight"]
             /\ UNCHANGED got
    /\ UNCHANGED <<toolchain, key, leader, memory, disk, flights, builds>>

\* Join the key's flight: lead it if there is none, else wait for it.
Flight(r) ==
    /\ pc[r] = "flight"
    /\ LET s == Slot(key[r]) IN
        IF flights[s] = 0
        THEN /\ flights' = [flights EXCEPT ![s] = r]
             /\ pc' = [pc EXCEPT ![r] = "building"]
             /\ UNCHANGED leader
        ELSE /\ pc' = [pc EXCEPT ![r] = "waiting"]
             /\ leader' = [leader EXCEPT ![r] = flights[s]]
             /\ UNCHANGED flights
    /\ UNCHANGED <<toolchain, key, got, memory, disk, builds>>

\* A file may be used only if it was built for the key asked for.
DiskUsable(k) == disk[Slot(k)] = k

\* The leader's build ends with `result`; waiters get the same value.
Publish(r, result) ==
    LET s == Slot(key[r]) IN
    /\ got' = [w \in Requesters |->
                 IF w = r \/ (pc[w] = "waiting" /\ leader[w] = r) THEN result ELSE got[w]]
    /\ pc' = [w \in Requesters |->
                 IF w = r \/ (pc[w] = "waiting" /\ leader[w] = r) THEN "done" ELSE pc[w]]
    /\ flights' = [flights EXCEPT ![s] = 0]

Build(r) ==
    /\ pc[r] = "building"
    /\ LET k == key[r]
           s == Slot(k)
           fresh == [for |-> k, build |-> builds + 1]
           loaded == [for |-> disk[s], build |-> builds + 1]
       IN
        \/ \* someone finished this key between the L1 check and the flight
           /\ memory[s] # None
           /\ Publish(r, memory[s])
           /\ UNCHANGED <<memory, disk, builds>>
        \/ \* a verified L2 file: load it (Runtime::load_precompiled); what
           \* loads is whatever the file holds
           /\ memory[s] = None
           /\ DiskUsable(k)
           /\ Publish(r, loaded)
           /\ memory' = [memory EXCEPT ![s] = loaded]
           /\ builds' = builds + 1
           /\ UNCHANGED disk
        \/ \* compile, write L2, admit to L1
           /\ memory[s] = None
           /\ ~DiskUsable(k)
           /\ Publish(r, fresh)
           /\ memory' = [memory EXCEPT ![s] = fresh]
           /\ disk' = [disk EXCEPT ![s] = k]
           /\ builds' = builds + 1
        \/ \* the build failed: everyone waiting gets the error; nothing cached
           /\ memory[s] = None
           /\ Publish(r, Error)
           /\ UNCHANGED <<memory, disk, builds>>
    /\ UNCHANGED <<toolchain, key, leader>>

EvictL1(s) ==
    /\ memory[s] # None
    /\ memory' = [memory EXCEPT ![s] = None]
    /\ UNCHANGED <<toolchain, pc, key, got, leader, disk, flights, builds>>

ChangeToolchain ==
    /\ toolchain < MaxToolchain
    /\ toolchain' = toolchain + 1
    /\ UNCHANGED <<pc, key, got, leader, memory, disk, flights, builds>>

Done ==
    /\ \A r \in Requesters : pc[r] = "done"
    /\ UNCHANGED vars

Next ==
    \/ \E r \in Requesters :
        \/ \E g \in Graphs : Request(r, g)
        \/ Lookup(r) \/ Flight(r) \/ Build(r)
    \/ \E s \in Keys : EvictL1(s)
    \/ ChangeToolchain
    \/ Done

Fairness == \A r \in Requesters : WF_vars(Lookup(r) \/ Flight(r) \/ Build(r))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------

SingleFlight ==
    \A k \in Keys :
        Cardinality({r \in Requesters : pc[r] = "building" /\ key[r] = k}) <= 1

WaitersGetBuildersResult ==
    \A r \in Requesters :
        (pc[r] = "done" /\ leader[r] # 0) => got[r] = got[leader[r]]

\* Cache!NoStaleArtifact, cited by the unsafe block in Runtime::load_precompiled.
NoStaleArtifact ==
    /\ \A r \in Requesters :
          (pc[r] = "done" /\ got[r] \in Artifacts) => got[r].for = key[r]
    /\ \A k \in Keys : memory[k] # None => memory[k].for = k

RequestsAnswered == \A r \in Requesters : pc[r] = "lookup" ~> pc[r] = "done"
=============================================================================
