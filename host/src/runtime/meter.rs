//! The effect caps of one run, counted one way for both engines: a compiled run's host
//! imports ([`super::host_imports`]) and `eval`'s effect server (`Host::eval_effects`) each
//! hold an [`EffectMeter`] and ask it, so the two cannot drift apart.
//!
//! The rule (docs/graph-format.md, "Effects", Accounting):
//! - every effect call counts against the call cap, `log` included, in the order the calls are
//!   made; a call past the cap is refused with [`EffectError::Limit`] and not sent;
//! - a refused `log` line is dropped (the WIT `log` has no error, so a log never changes what a
//!   run computes), a refused DB, HTTP or kernel call is that node's error;
//! - the bytes of every answer count against the byte cap; the answer that passes it is
//!   refused with [`EffectError::Limit`].

use crate::effects::EffectError;

/// What one run's effects have used against its caps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EffectMeter {
    calls: u32,
    max_calls: u32,
    bytes: u64,
    max_bytes: u64,
}

impl EffectMeter {
    pub(crate) fn new(max_calls: u32, max_bytes: u64) -> EffectMeter {
        EffectMeter {
            calls: 0,
            max_calls,
            bytes: 0,
            max_bytes,
        }
    }

    /// Admits the first of `wanted` calls that fit under the call cap and counts them; how
    /// many were admitted (the rest are refused, [`EffectMeter::refusal`]).
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
    use super::EffectMeter;

    #[test]
    fn the_cap_admits_exactly_max_calls() {
        let mut meter = EffectMeter::new(1_000, u64::MAX);
        for _ in 0..1_000 {
            assert!(meter.admit_one().is_ok());
        }
        assert!(meter.admit_one().is_err());
        assert_eq!(meter.calls(), 1_000);
        let mut round = EffectMeter::new(5, u64::MAX);
        assert_eq!(round.admit(3), 3);
        assert_eq!(round.admit(3), 2);
        assert_eq!(round.admit(1), 0);
        assert_eq!(round.calls(), 5);
    }

    #[test]
    fn the_answer_that_passes_the_byte_cap_is_refused() {
        let mut meter = EffectMeter::new(10, 100);
        assert!(meter.account(60).is_ok());
        assert!(meter.account(40).is_ok());
        assert!(meter.account(1).is_err());
    }
}
