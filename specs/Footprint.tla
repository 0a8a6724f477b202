----------------------------- MODULE Footprint -----------------------------
(***************************************************************************)
(* Footprint enforcement (seed 5.1 "Footprint compliance", DESIGN 7): one *)
(* run of a graph issues effect calls; each is checked against the         *)
(* graph's declared footprint (tables to read, tables to write, HTTP       *)
(* destinations) before any driver sees it.  An allowed call reaches its   *)
(* driver; a denied call ends the run Failed with a typed Denied error.    *)
(* An HTTP server may redirect anywhere: each hop is checked again.        *)
(*                                                                         *)
(* Mapping to the Rust code:                                              *)
(*   Read, Write, Http   footprint::Footprint's db.read, db.write and http *)
(*                 sections (host/src/footprint/mod.rs)                   *)
(*   a db call     one SQL statement; its accesses are what               *)
(*                 footprint::analyze finds (a statement that writes a    *)
(*                 table and observes its rows needs both, see the        *)
(*                 module's "writing does not grant reading")             *)
(*   Check(call)   Footprint::check_sql / check_http returning Ok;        *)
(*                 Declared(call) states the same sets independently,     *)
(*                 for the property                                       *)
(*   Issue(call)   the guest calls an effect import                       *)
(*                 (runtime/host_imports.rs) or eval meets an effect      *)
(*                 node; both reach effects::dispatch::Dispatcher::serve  *)
(*   Admit         the check passed: Dispatcher::serve hands the call to  *)
(*                 its driver (the PostgresRunner, a kernel)              *)
(*   Deny          the check returned Denied: Dispatcher::serve returns   *)
(*                 EffectError::FootprintDenied before any driver; the    *)
(*                 generated code propagates it, so the run ends with     *)
(*                 ErrorKind::FootprintDenied (the request Failed; the    *)
(*                 artifact's lifecycle is JitLifecycle's)                *)
(*   Reply/Redirect  the driver answers; an HTTP redirect is a new call   *)
(*                 checked by Footprint::check_redirect before it is      *)
(*                 followed, at most MaxHops times (the contract for the  *)
(*                 HTTP driver: the dispatcher has none configured yet)   *)
(*   Finish        the guest returns: Executing -> Ready                  *)
(*                                                                         *)
(* Properties: TypeOK; NoUndeclaredEffect (every call a driver saw was    *)
(* allowed by the declared sets); DeniedEndsFailed; NothingAfterDenied    *)
(* (once Failed, no driver sees another call); and, under fairness,       *)
(* RunEnds (every run ends Ready or Failed).                              *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Tables,     \* table names a statement may touch
    Urls,       \* destinations a request or a redirect may name
    Read,       \* declared db.read  (a subset of Tables)
    Write,      \* declared db.write (a subset of Tables)
    Http,       \* declared http     (a subset of Urls)
    MaxCalls,   \* effect calls one run issues, for TLC
    MaxHops     \* redirects followed per request

ASSUME Read \subseteq Tables /\ Write \subseteq Tables /\ Http \subseteq Urls

Accesses == [mode : {"read", "write"}, table : Tables]

\* A db call: the accesses of one statement (one or two, e.g. UPDATE reads
\* and writes); an http call: one destination.
DbCalls == {[effect |-> "db", accesses |-> A] :
                A \in {A \in SUBSET Accesses : Cardinality(A) \in 1..2}}
HttpCalls == {[effect |-> "http", url |-> u] : u \in Urls}
Calls == DbCalls \cup HttpCalls
NoCall == [effect |-> "none"]

\* What the graph declared, stated over the sets a call touches: the
\* property's side.
Declared(call) ==
    IF call.effect = "db"
    THEN /\ {a.table : a \in {x \in call.accesses : x.mode = "read"}} \subseteq Read
         /\ {a.table : a \in {x \in call.accesses : x.mode = "write"}} \subseteq Write
    ELSE call.url \in Http

\* The host's decision, shaped like Footprint::check_sql (each access the
\* statement makes, by mode) and Footprint::check_http / check_redirect.
Check(call) ==
    IF call.effect = "db"
    THEN \A a \in call.accesses :
            IF a.mode = "read" THEN a.table \in Read ELSE a.table \in Write
    ELSE call.url \in Http

VARIABLES run, pending, driver, reached, denied, issued, hops
vars == <<run, pending, driver, reached, denied, issued, hops>>

TypeOK ==
    /\ run \in {"Executing", "Ready", "Failed"}
    /\ pending \in Calls \cup {NoCall}
    /\ driver \in Calls \cup {NoCall}
    /\ reached \subseteq Calls
    /\ denied \in Calls \cup {NoCall}
    /\ issued \in 0..MaxCalls
    /\ hops \in 0..MaxHops

Init ==
    /\ run = "Executing"
    /\ pending = NoCall
    /\ driver = NoCall
    /\ reached = {}
    /\ denied = NoCall
    /\ issued = 0
    /\ hops = 0

\* The guest asks for an effect (one at a time: an import call blocks).
Issue(call) ==
    /\ run = "Executing"
    /\ pending = NoCall /\ driver = NoCall
    /\ issued < MaxCalls
    /\ pending' = call
    /\ issued' = issued + 1
    /\ hops' = 0
    /\ UNCHANGED <<run, driver, reached, denied>>

\* The check passed: the driver sees the call.
Admit ==
    /\ pending # NoCall
    /\ Check(pending)
    /\ driver' = pending
    /\ reached' = reached \cup {pending}
    /\ pending' = NoCall
    /\ UNCHANGED <<run, denied, issued, hops>>

\* The check refused: a typed Denied ends the run.
Deny ==
    /\ pending # NoCall
    /\ ~Check(pending)
    /\ run' = "Failed"
    /\ denied' = pending
    /\ pending' = NoCall
    /\ UNCHANGED <<driver, reached, issued, hops>>

\* The driver answers the guest.
Reply ==
    /\ driver # NoCall
    /\ driver' = NoCall
    /\ UNCHANGED <<run, pending, reached, denied, issued, hops>>

\* An HTTP server redirects to any destination: a new call to check.
Redirect(u) ==
    /\ driver # NoCall
    /\ driver.effect = "http"
    /\ hops < MaxHops
    /\ driver' = NoCall
    /\ pending' = [effect |-> "http", url |-> u]
    /\ hops' = hops + 1
    /\ UNCHANGED <<run, reached, denied, issued>>

\* The guest returns its outputs.
Finish ==
    /\ run = "Executing"
    /\ pending = NoCall /\ driver = NoCall
    /\ run' = "Ready"
    /\ UNCHANGED <<pending, driver, reached, denied, issued, hops>>

\* The run is over; nothing more happens.
Done ==
    /\ run \in {"Ready", "Failed"}
    /\ UNCHANGED vars

Next ==
    \/ \E call \in Calls : Issue(call)
    \/ Admit \/ Deny \/ Reply \/ \E u \in Urls : Redirect(u)
    \/ Finish \/ Done

Spec == Init /\ [][Next]_vars /\ WF_vars(Admit \/ Deny \/ Reply \/ Finish)

-----------------------------------------------------------------------------

NoUndeclaredEffect == \A call \in reached : Declared(call)

DeniedEndsFailed == denied # NoCall => run = "Failed"

NothingAfterDenied == [][run = "Failed" => reached' = reached]_vars

RunEnds == <>(run \in {"Ready", "Failed"})
=============================================================================
