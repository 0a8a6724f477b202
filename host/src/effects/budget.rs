//! The effect budget of one run, one rule for both engines: a compiled run's host imports
//! (`runtime::host_imports`) and the interpreter (`eval::interp`) each hold an
//! [`EffectBudget`] and follow the same steps with it, so the two cannot drift apart on caps,
//! fuel or the deadline.
//!
//! The rule (docs/graph-format.md, "Effects", Accounting), step by step for each call:
//! 1. **Admit**: every effect call counts against the call cap, `log` included, in the order
//!    the calls are made; a call past the cap is refused with [`EffectError::Limit`] and not
//!    sent (a refused `log` line is dropped: the WIT `log` has no error, so a log never
//!    changes what a run computes; a refused DB, HTTP or kernel call is that node's error).
//! 2. **Charge the call**: [`EffectBudget::admission_fuel`], [`FUEL_PER_CALL`] plus a kernel's
//!    work or a `db_execute_many`'s rows ([`FUEL_PER_ROW_WRITTEN`] each), from the run's fuel,
//!    before it is sent.
//! 3. **Deadline**: a call is not sent once the run's deadline has passed; it gets what
//!    remains ([`EffectBudget::remaining`]), and one that ends past it ends the run.
//! 4. **Account the answer**: its bytes count against the byte cap; the answer that passes it
//!    is refused with [`EffectError::Limit`]; an accepted answer costs
//!    [`EffectBudget::answer_fuel`].

use std::time::{Duration, Instant};

use crate::effects::{EffectCall, EffectError};

/// Fuel charged for each effect call (about the cost of 10k wasm instructions).
pub(crate) const FUEL_PER_CALL: u64 = 10_000;
/// Fuel charged per byte an effect's answer carries into the run.
pub(crate) const FUEL_PER_BYTE: u64 = 1;
/// Fuel charged per unit of a host kernel's work (`effects::kernel_work`: multiply-adds for
/// matmul and conv2d, four per element for softmax), before the kernel runs: a call whose work
/// is more than the run has left ends it out of fuel, with nothing run.
pub(crate) const FUEL_PER_KERNEL_WORK: u64 = 1;

/// Fuel charged per parameter row of a `db_execute_many`, on top of the call: each row is a
/// statement the database runs, so a list of a million rows costs what it makes the host do.
pub(crate) const FUEL_PER_ROW_WRITTEN: u64 = 1_000;

/// What one run's effects have used against its caps, and when its deadline passes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EffectBudget {
    calls: u32,
    max_calls: u32,
    bytes: u64,
    max_bytes: u64,
    /// `None`: no wall clock (a call then gets `far` as its timeout).
    deadline: Option<Instant>,
}

/// The timeout of a call in a run without a deadline.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

impl EffectBudget {
    pub(crate) fn new(max_calls: u32, max_bytes: u64, deadline: Option<Instant>) -> EffectBudget {
        EffectBudget {
            calls: 0,
            max_calls,
            bytes: 0,
            max_bytes,
            deadline,
        }
    }

    /// The fuel a call costs before it is sent (step 2): the call itself, and a kernel's work.
    pub(crate) fn admission_fuel(call: &EffectCall) -> u64 {
        match call {
            EffectCall::Kernel { name, args } => {
                let shapes: Vec<&[u32]> = args.iter().map(|t| t.shape.as_slice()).collect();
                FUEL_PER_CALL.saturating_add(
                    crate::effects::kernel_work(name, &shapes).saturating_mul(FUEL_PER_KERNEL_WORK),
                )
            }
            EffectCall::DbExecuteMany { rows, .. } => FUEL_PER_CALL
                .saturating_add((rows.len() as u64).saturating_mul(FUEL_PER_ROW_WRITTEN)),
            _ => FUEL_PER_CALL,
        }
    }

    /// The fuel an accepted answer of `bytes` costs (step 4).
    pub(crate) fn answer_fuel(bytes: u64) -> u64 {
        bytes.saturating_mul(FUEL_PER_BYTE)
    }

    /// What remains of the run's deadline (zero once it has passed).
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline
            .map_or(FAR, |at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the run's deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }

    /// Admits the first of `wanted` calls that fit under the call cap and counts them; how
    /// many were admitted (the rest are refused, [`EffectBudget::refusal`]).
    pub(crate) fn admit(&mut self, wanted: usize) -> usize {
        let room = self.max_calls.saturating_sub(self.calls);
        let admitted = u32::try_from(wanted).unwrap_or(u32::MAX).min(room);
        self.calls = self.calls.saturating_add(admitted);
        admitted as usize
    }

    /// Admits one call: `Err` (the refusal) when the cap is reached.
    pub(crate) fn admit_one(&mut self) -> Result<(), EffectError> {
        if self.admit(1) == 1 {
            Ok(())
        } else {
            Err(self.refusal())
        }
    }

    /// The error of a call past the cap.
    pub(crate) fn refusal(&self) -> EffectError {
        EffectError::Limit(format!(
            "the run may make at most {} effect calls",
            self.max_calls
        ))
    }

    /// Counts an answer of `bytes`; `Err` when the run's answers now pass the byte cap.
    pub(crate) fn account(&mut self, bytes: u64) -> Result<(), EffectError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.max_bytes {
            return Err(EffectError::Limit(format!(
                "effect answers may carry at most {} bytes into the run",
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Calls admitted so far.
    pub(crate) fn calls(&self) -> u32 {
        self.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_exactly_max_calls() {
        let mut meter = EffectBudget::new(1_000, u64::MAX, None);
        for _ in 0..1_000 {
            assert!(meter.admit_one().is_ok());
        }
        assert!(meter.admit_one().is_err());
        assert_eq!(meter.calls(), 1_000);
        let mut round = EffectBudget::new(5, u64::MAX, None);
        assert_eq!(round.admit(3), 3);
        assert_eq!(round.admit(3), 2);
        assert_eq!(round.admit(1), 0);
        assert_eq!(round.calls(), 5);
    }

    #[test]
    fn the_answer_that_passes_the_byte_cap_is_refused() {
        let mut meter = EffectBudget::new(10, 100, None);
        assert!(meter.account(60).is_ok());
        assert!(meter.account(40).is_ok());
        assert!(meter.account(1).is_err());
    }

    #[test]
    fn a_kernel_pays_for_its_work_before_it_runs() {
        let matmul = EffectCall::Kernel {
            name: "matmul".into(),
            args: vec![
                graphjit_value::Tensor {
                    shape: vec![2, 3],
                    data: vec![0.0; 6],
                },
                graphjit_value::Tensor {
                    shape: vec![3, 4],
                    data: vec![0.0; 12],
                },
            ],
        };
        assert_eq!(
            EffectBudget::admission_fuel(&matmul),
            FUEL_PER_CALL + 2 * 3 * 4
        );
        let log = EffectCall::Log {
            level: "info".into(),
            message: String::new(),
        };
        assert_eq!(EffectBudget::admission_fuel(&log), FUEL_PER_CALL);
        assert_eq!(EffectBudget::answer_fuel(100), 100 * FUEL_PER_BYTE);
    }

    #[test]
    fn the_deadline_is_what_remains() {
        let past = EffectBudget::new(1, 1, Some(Instant::now()));
        assert!(past.expired());
        assert_eq!(past.remaining(), Duration::ZERO);
        let none = EffectBudget::new(1, 1, None);
        assert!(!none.expired());
        assert!(none.remaining() > Duration::from_secs(3600));
    }
}
