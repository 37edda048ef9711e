//! Counters of the monitor's and the sentinels' work, for `cmwq::debug` and the
//! benchmarks: relaxed statistics, never on a synchronisation edge.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the sleep monitor and the idle sentinels have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MonitorStats {
    /// Ticks run.
    pub ticks: u64,
    /// Workers taken out of `nr_running` because they blocked (by the monitor's
    /// ticks and by the idle sentinels).
    pub blocked: u64,
    /// Of those, the ones the monitor counted again because they ran again in
    /// the same item.
    pub resumed: u64,
    /// Items marked CPU-intensive because they hogged the CPU.
    pub cpu_hogs: u64,
    /// Worker creations the monitor started (after a stall window or a refusal).
    pub created: u64,
    /// Times the monitor thread parked (went idle).
    pub parks: u64,
    /// Of `blocked`, the blocks an idle sentinel caught (the moment the CPU went
    /// idle) rather than the monitor's tick.
    pub by_sentinel: u64,
    /// Of `by_sentinel`, workers that had not blocked but were runnable and
    /// waiting for a CPU, queued behind another thread on a CPU of their pool
    /// while the sentinel's CPU (in the same pod) idled.
    pub waiting: u64,
    /// Idle sentinel threads started and set up (one per CPU whose pool ever
    /// saturated after an unannounced block).
    pub sentinels: u64,
}

/// One counter per field of [`MonitorStats`].
#[derive(Debug)]
pub(super) struct Counters {
    pub(super) ticks: AtomicU64,
    pub(super) blocked: AtomicU64,
    pub(super) resumed: AtomicU64,
    pub(super) cpu_hogs: AtomicU64,
    pub(super) created: AtomicU64,
    pub(super) parks: AtomicU64,
    pub(super) by_sentinel: AtomicU64,
    pub(super) waiting: AtomicU64,
    pub(super) sentinels: AtomicU64,
}

pub(super) static COUNTERS: Counters = Counters {
    ticks: AtomicU64::new(0),
    blocked: AtomicU64::new(0),
    resumed: AtomicU64::new(0),
    cpu_hogs: AtomicU64::new(0),
    created: AtomicU64::new(0),
    parks: AtomicU64::new(0),
    by_sentinel: AtomicU64::new(0),
    waiting: AtomicU64::new(0),
    sentinels: AtomicU64::new(0),
};

pub(super) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The counters now.
pub(crate) fn stats() -> MonitorStats {
    let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let c = &COUNTERS;
    MonitorStats {
        ticks: l(&c.ticks),
        blocked: l(&c.blocked),
        resumed: l(&c.resumed),
        cpu_hogs: l(&c.cpu_hogs),
        created: l(&c.created),
        parks: l(&c.parks),
        by_sentinel: l(&c.by_sentinel),
        waiting: l(&c.waiting),
        sentinels: l(&c.sentinels),
    }
}
