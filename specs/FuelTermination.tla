--------------------------- MODULE FuelTermination ---------------------------
(***************************************************************************)
(* Fuel-bounded termination (seed 5.1 "Termination", "Error handling"):   *)
(* a run executes guest code that may loop for ever; every step it takes  *)
(* consumes fuel, and a run whose fuel cannot pay for its next step ends  *)
(* with a typed FuelExhausted error.  So every run ends, Ready (outputs)   *)
(* or Failed (a typed error), whatever the guest does.                    *)
(*                                                                         *)
(* Mapping to the Rust code:                                              *)
(*   fuel[r]       the wasmtime Store's fuel, set from RunLimits::fuel by  *)
(*                 Runtime::run (host/src/runtime/mod.rs); a fresh store  *)
(*                 per run                                                *)
(*   Step(r, c)    guest code runs: wasmtime charges fuel per executed    *)
(*                 instruction, the generated code per loop iteration and *)
(*                 per string byte (no step is free: MinCost >= 1)        *)
(*   OutOfFuel(r)  the store traps with OutOfFuel: RuntimeError's fuel    *)
(*                 variant, ErrorKind's fuel limit for the caller         *)
(*   Trap(r)       any other trap or guest error (overflow, memory limit, *)
(*                 deadline by epoch interruption): a typed RuntimeError  *)
(*   Return(r)     the guest returns its encoded outputs                  *)
(*   status[r]     Executing while the store runs; Ready or Failed after  *)
(*                 Host::run_on (the request's own outcome; the artifact's *)
(*                 lifecycle is JitLifecycle's)                           *)
(*                                                                         *)
(* Properties: TypeOK; FuelNeverNegative; FuelOnlyDecreases; EndsTyped    *)
(* (a run that ended has Ready or Failed with a reason); and, under weak  *)
(* fairness, AllRunsEnd (eventually every run is Ready or Failed), even   *)
(* though the guest may choose to keep looping.                           *)
(***************************************************************************)
EXTENDS Naturals

CONSTANTS
    Runs,      \* concurrent runs (each has its own store)
    Fuel,      \* the fuel each run starts with
    MinCost,   \* the least fuel one step costs
    MaxCost    \* the most fuel one step costs

ASSUME MinCost \in Nat /\ MaxCost \in Nat /\ MinCost <= MaxCost

\* at[r]: where the guest is in its (possibly endless) loop, so that a step
\* is a real state change even when it would cost nothing.
VARIABLES status, fuel, reason, at
vars == <<status, fuel, reason, at>>

Reasons == {"none", "fuel", "trap"}

TypeOK ==
    /\ status \in [Runs -> {"Executing", "Ready", "Failed"}]
    /\ fuel \in [Runs -> 0..Fuel]
    /\ reason \in [Runs -> Reasons]
    /\ at \in [Runs -> {"head", "body"}]

Init ==
    /\ status = [r \in Runs |-> "Executing"]
    /\ fuel = [r \in Runs |-> Fuel]
    /\ reason = [r \in Runs |-> "none"]
    /\ at = [r \in Runs |-> "head"]

\* The guest takes a step costing c; it is only taken if fuel pays for it.
Step(r, c) ==
    /\ status[r] = "Executing"
    /\ fuel[r] >= c
    /\ fuel' = [fuel EXCEPT ![r] = @ - c]
    /\ at' = [at EXCEPT ![r] = IF @ = "head" THEN "body" ELSE "head"]
    /\ UNCHANGED <<status, reason>>

\* The next step costs more than what is left: the store traps.
OutOfFuel(r) ==
    /\ status[r] = "Executing"
    /\ \E c \in MinCost..MaxCost : fuel[r] < c
    /\ status' = [status EXCEPT ![r] = "Failed"]
    /\ reason' = [reason EXCEPT ![r] = "fuel"]
    /\ UNCHANGED <<fuel, at>>

Trap(r) ==
    /\ status[r] = "Executing"
    /\ status' = [status EXCEPT ![r] = "Failed"]
    /\ reason' = [reason EXCEPT ![r] = "trap"]
    /\ UNCHANGED <<fuel, at>>

Return(r) ==
    /\ status[r] = "Executing"
    /\ status' = [status EXCEPT ![r] = "Ready"]
    /\ UNCHANGED <<fuel, reason, at>>

Done ==
    /\ \A r \in Runs : status[r] # "Executing"
    /\ UNCHANGED vars

Next ==
    \/ \E r \in Runs :
        \/ \E c \in MinCost..MaxCost : Step(r, c)
        \/ OutOfFuel(r) \/ Trap(r) \/ Return(r)
    \/ Done

\* Only the run's progress is fair: the guest may loop for ever (Step) and
\* never return; wasmtime traps when fuel runs out (OutOfFuel is weakly
\* fair); Return and Trap are the guest's choice and not fair.
Fairness ==
    \A r \in Runs :
        /\ WF_vars(\E c \in MinCost..MaxCost : Step(r, c))
        /\ WF_vars(OutOfFuel(r))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------

FuelNeverNegative == \A r \in Runs : fuel[r] >= 0

EndsTyped ==
    \A r \in Runs :
        /\ status[r] = "Failed" => reason[r] \in {"fuel", "trap"}
        /\ status[r] = "Ready" => reason[r] = "none"

FuelOnlyDecreases == [][\A r \in Runs : fuel'[r] <= fuel[r]]_vars

AllRunsEnd == <>(\A r \in Runs : status[r] \in {"Ready", "Failed"})
=============================================================================
