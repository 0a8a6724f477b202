----------------------- MODULE HotReplacementTraceData -----------------------
(***************************************************************************)
(* A small hand-made trace for specs/check (tests/all/conformance.rs       *)
(* writes its own from a real host): artifact 2 serves; 5 replaces it     *)
(* while a request runs on 2, which is retired Executing, drains and is   *)
(* Evicted; a request finds 5 broken (Failed); 7 replaces 5 and serves.   *)
(***************************************************************************)
EXTENDS Sequences

TraceVersions == {2, 5, 7}

TraceClients == {1, 2}

Trace == <<
    [kind |-> "Compiled", v |-> 2, c |-> 0, replaced |-> 0],
    [kind |-> "Swap", v |-> 2, c |-> 0, replaced |-> 0],
    [kind |-> "Start", v |-> 2, c |-> 1, replaced |-> 0],
    [kind |-> "Compiled", v |-> 5, c |-> 0, replaced |-> 0],
    [kind |-> "Start", v |-> 2, c |-> 2, replaced |-> 0],
    [kind |-> "Swap", v |-> 5, c |-> 0, replaced |-> 2],
    [kind |-> "Finish", v |-> 2, c |-> 1, replaced |-> 0],
    [kind |-> "RetireOld", v |-> 2, c |-> 0, replaced |-> 0],
    [kind |-> "Start", v |-> 5, c |-> 1, replaced |-> 0],
    [kind |-> "Finish", v |-> 2, c |-> 2, replaced |-> 0],
    [kind |-> "Evict", v |-> 2, c |-> 0, replaced |-> 0],
    [kind |-> "Break", v |-> 5, c |-> 1, replaced |-> 0],
    [kind |-> "Compiled", v |-> 7, c |-> 0, replaced |-> 0],
    [kind |-> "Swap", v |-> 7, c |-> 0, replaced |-> 5],
    [kind |-> "RetireOld", v |-> 5, c |-> 0, replaced |-> 0],
    [kind |-> "Start", v |-> 7, c |-> 2, replaced |-> 0],
    [kind |-> "Finish", v |-> 7, c |-> 2, replaced |-> 0]
>>
=============================================================================
