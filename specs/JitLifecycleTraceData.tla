------------------------ MODULE JitLifecycleTraceData ------------------------
(***************************************************************************)
(* A small hand-made trace for specs/check (tests/all/conformance.rs       *)
(* writes its own from a real host): two contexts interleaved; context 1   *)
(* serves, is retired while a request runs, drains and is Evicted;         *)
(* context 2 serves and fails; context 3 fails to compile.                 *)
(***************************************************************************)
EXTENDS Sequences

TraceContexts == {1, 2, 3}

RustTransitions ==
    { <<"None", "GraphReceived">>, <<"GraphReceived", "Optimizing">>,
      <<"Optimizing", "Generating">>, <<"Optimizing", "Failed">>,
      <<"Generating", "Compiling">>, <<"Generating", "Failed">>,
      <<"Compiling", "Ready">>, <<"Compiling", "Failed">>,
      <<"Ready", "Executing">>, <<"Executing", "Ready">>,
      <<"Executing", "Failed">>, <<"Ready", "Evicted">> }

Trace == <<
    [ctx |-> 1, from |-> "None", to |-> "GraphReceived"],
    [ctx |-> 1, from |-> "GraphReceived", to |-> "Optimizing"],
    [ctx |-> 1, from |-> "Optimizing", to |-> "Generating"],
    [ctx |-> 2, from |-> "None", to |-> "GraphReceived"],
    [ctx |-> 1, from |-> "Generating", to |-> "Compiling"],
    [ctx |-> 1, from |-> "Compiling", to |-> "Ready"],
    [ctx |-> 1, from |-> "Ready", to |-> "Executing"],
    [ctx |-> 2, from |-> "GraphReceived", to |-> "Optimizing"],
    [ctx |-> 2, from |-> "Optimizing", to |-> "Generating"],
    [ctx |-> 2, from |-> "Generating", to |-> "Compiling"],
    [ctx |-> 2, from |-> "Compiling", to |-> "Ready"],
    [ctx |-> 1, from |-> "Executing", to |-> "Ready"],
    [ctx |-> 2, from |-> "Ready", to |-> "Executing"],
    [ctx |-> 1, from |-> "Ready", to |-> "Executing"],
    [ctx |-> 1, from |-> "Executing", to |-> "Ready"],
    [ctx |-> 1, from |-> "Ready", to |-> "Evicted"],
    [ctx |-> 2, from |-> "Executing", to |-> "Failed"],
    [ctx |-> 3, from |-> "None", to |-> "GraphReceived"],
    [ctx |-> 3, from |-> "GraphReceived", to |-> "Optimizing"],
    [ctx |-> 3, from |-> "Optimizing", to |-> "Generating"],
    [ctx |-> 3, from |-> "Generating", to |-> "Compiling"],
    [ctx |-> 3, from |-> "Compiling", to |-> "Failed"]
>>
=============================================================================
