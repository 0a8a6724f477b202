//! The service's two pieces of admission state that are not semaphores: a tenant's budget of
//! compile time (a token bucket) and the drain of a shutdown (refuse new work, let the work in
//! flight finish).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A tenant's compile time: `per_minute` of it refills evenly over each minute, and at most one
/// minute's worth is saved up. A compile is admitted while the balance is positive and charged
/// afterwards with the time it held a compiler, so one compile may overdraw the balance (by at
/// most the compile timeout); the next waits until the debt is repaid.
pub(crate) struct CompileBudget {
    per_minute: Duration,
    state: Mutex<Balance>,
}

struct Balance {
    /// Seconds of compile time available (negative: owed).
    seconds: f64,
    at: Instant,
}

impl CompileBudget {
    pub(crate) fn new(per_minute: Duration) -> CompileBudget {
        CompileBudget {
            per_minute,
            state: Mutex::new(Balance {
                seconds: per_minute.as_secs_f64(),
                at: Instant::now(),
            }),
        }
    }

    fn refilled(&self) -> std::sync::MutexGuard<'_, Balance> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let capacity = self.per_minute.as_secs_f64();
        let earned = now.duration_since(state.at).as_secs_f64() * capacity / 60.0;
        state.seconds = (state.seconds + earned).min(capacity);
        state.at = now;
        state
    }

    /// `Ok` when a compile may start now; else the whole seconds until one may.
    pub(crate) fn admit(&self) -> Result<(), u64> {
        let state = self.refilled();
        if state.seconds > 0.0 {
            return Ok(());
        }
        let rate = self.per_minute.as_secs_f64() / 60.0;
        if rate <= 0.0 {
            return Err(60);
        }
        // Whole seconds, at least one: when the balance is positive again.
        let wait = (-state.seconds / rate).ceil().max(1.0);
        Err(if wait < 3600.0 { wait as u64 } else { 3600 })
    }

    /// Charges a compile that held a compiler for `spent`.
    pub(crate) fn charge(&self, spent: Duration) {
        self.refilled().seconds -= spent.as_secs_f64();
    }
}

/// Whether the service is draining, and how many requests are in its handlers.
#[derive(Default)]
pub(crate) struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// One request counted as in flight until dropped.
pub(crate) struct InFlight<'a>(&'a Drain);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drain {
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Counts a request in, unless the service is draining.
    pub(crate) fn enter(&self) -> Option<InFlight<'_>> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        // Checked after counting: `drain` sets the flag and then waits for the count, so a
        // request either sees the flag or is counted before the wait reads zero.
        if self.is_draining() {
            None
        } else {
            Some(guard)
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Starts refusing new requests, then waits until those in flight are done or `limit`
    /// has passed; returns how many were still running.
    pub(crate) async fn drain(&self, limit: Duration) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_until_it_refills() {
        let budget = CompileBudget::new(Duration::from_secs(60));
        assert_eq!(budget.admit(), Ok(()));
        // Overdrawn by 3 s at 1 s per second of refill: about 3 s to wait.
        budget.charge(Duration::from_secs(63));
        let wait = budget.admit().expect_err("an overdrawn budget refuses");
        assert!((3..=4).contains(&wait), "{wait}");
    }

    #[test]
    fn a_zero_budget_admits_nothing() {
        let budget = CompileBudget::new(Duration::ZERO);
        assert_eq!(budget.admit(), Err(60));
    }

    #[tokio::test]
    async fn drain_waits_for_the_request_in_flight_and_refuses_new_ones() {
        let drain = std::sync::Arc::new(Drain::default());
        let first = drain.enter();
        assert!(first.is_some());
        let waiter = {
            let drain = std::sync::Arc::clone(&drain);
            tokio::spawn(async move { drain.drain(Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(drain.is_draining());
        assert!(
            drain.enter().is_none(),
            "a new request during the drain is refused"
        );
        assert!(
            !waiter.is_finished(),
            "the drain waits for the request in flight"
        );
        drop(first);
        assert_eq!(waiter.await.ok(), Some(0));
    }
}
