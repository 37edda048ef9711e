//! Injectable time sources for the timer wheel.
//!
//! Timer code reads time only through [`Clock`]: [`RealClock`] in production;
//! the timer base layers its pausable clock on top of it (`cmwq::timer::pause`),
//! and the wheel's unit tests use `ManualClock`.

#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// A monotonic time source, in nanoseconds since an arbitrary fixed origin.
pub(crate) trait Clock: Send + Sync {
    /// The current time in nanoseconds since this clock's origin. Never decreases.
    fn now_ns(&self) -> u64;
}

/// The real monotonic clock: nanoseconds elapsed since the `Instant` captured
/// when it was created (saturating at `u64::MAX`, about 584 years).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RealClock {
    origin: Instant,
}

impl RealClock {
    /// A clock whose origin (time 0) is now.
    pub(crate) fn new() -> Self {
        RealClock { origin: Instant::now() }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to: for the wheel's unit tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct ManualClock {
    now: AtomicU64,
}

#[cfg(test)]
impl ManualClock {
    /// A manual clock reading `start_ns`.
    pub(crate) fn new(start_ns: u64) -> Self {
        ManualClock { now: AtomicU64::new(start_ns) }
    }

    /// Moves the clock forward by `d` (saturating).
    pub(crate) fn advance(&self, d: Duration) {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        // Relaxed: a test clock; its readers are ordered by the test's own joins.
        let _ = self.now.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_add(d)));
    }

    /// Sets the clock to `now_ns`. Callers keep it monotonic.
    pub(crate) fn set(&self, now_ns: u64) {
        self.now.store(now_ns, Ordering::Relaxed);
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(5);
        assert_eq!(c.now_ns(), 5);
        c.advance(Duration::from_millis(2));
        assert_eq!(c.now_ns(), 2_000_005);
        c.set(7);
        assert_eq!(c.now_ns(), 7);
        c.set(u64::MAX - 1);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now_ns(), u64::MAX);
    }

    #[test]
    fn real_clock_is_monotonic() {
        let c = RealClock::new();
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a);
        let dynclock: &dyn Clock = &c;
        assert!(dynclock.now_ns() >= b);
    }
}
