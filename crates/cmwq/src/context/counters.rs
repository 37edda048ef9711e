//! Statistics that pools write and `cmwq::debug` reads: relaxed counters, never
//! on a synchronisation edge, so plain std atomics rather than the loom shim's.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Whether workers time their items: each item's start (for the age of a
/// running item in `cmwq::debug::dump`) and its thread CPU time (two reads of
/// the thread's CPU clock, ~0.3 µs each, added to its pwq's `cpu_time`). Off
/// until someone looks (`debug::dump`, `debug::set_accounting`), so that an
/// unobserved process pays one relaxed load of this read-mostly flag per item.
/// Process-wide; relaxed: a worker that misses a change times its next item.
static ACCOUNTING: AtomicBool = AtomicBool::new(false);

/// Whether items are timed now (see [`ACCOUNTING`]).
#[inline]
pub(crate) fn accounting() -> bool {
    ACCOUNTING.load(Ordering::Relaxed)
}

/// Switches item timing on or off (see [`ACCOUNTING`]).
pub(crate) fn set_accounting(on: bool) {
    if ACCOUNTING.load(Ordering::Relaxed) != on {
        ACCOUNTING.store(on, Ordering::Relaxed);
    }
}

/// The counters of one context.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Work items that panicked.
    panics: AtomicU64,
    /// Times a pool wanted a worker and a ceiling or a failed spawn refused it.
    throttled: AtomicU64,
    /// Flush-dependency warnings given (`check_flush_dependency`).
    flush_dependency: AtomicU64,
    /// Whether highpri workers got their nice value: 0 no highpri worker yet,
    /// 1 applied, 2 not permitted.
    highpri_nice: AtomicU8,
}

impl Counters {
    pub(crate) fn count_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Counts a refusal; returns how many there have been, this one included.
    pub(crate) fn count_throttled(&self) -> u64 {
        self.throttled.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    pub(crate) fn count_flush_dependency(&self) {
        self.flush_dependency.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn flush_dependency(&self) -> u64 {
        self.flush_dependency.load(Ordering::Relaxed)
    }

    pub(crate) fn note_highpri_nice(&self, applied: bool) {
        self.highpri_nice.store(if applied { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// `None` before the first highpri worker started.
    pub(crate) fn highpri_nice_applied(&self) -> Option<bool> {
        match self.highpri_nice.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }
}
