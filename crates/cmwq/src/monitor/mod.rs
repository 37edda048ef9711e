//! The sleep monitor: automatic detection of blocking nobody announced, of CPU
//! hogs, and the retry of pools whose worker creation was refused. One thread
//! per process, parked while no concurrency-managed pool is saturated, and an
//! idle sentinel per CPU (a `SCHED_IDLE` thread that runs, while its CPU's pool
//! is saturated, exactly when the running worker blocked). The protocol, and why
//! it never double-counts, is in `README.md` beside this file.

#[cfg(any(not(loom), test))] // under loom only its model uses it
mod arming;
mod cpus;
#[cfg(not(loom))]
mod hog;
#[cfg(not(loom))]
mod probe;
#[cfg(not(loom))]
mod scan;
#[cfg(not(loom))]
mod sentinel;

pub(crate) use cpus::allowed_cpu_count;
#[cfg(not(loom))]
pub(crate) use probe::Probe;
#[cfg(not(loom))]
pub use scan::MonitorStats;
#[cfg(not(loom))]
pub(crate) use scan::{note_saturated, note_starved, stats, TICK_DETECTS};

/// Under loom there is no monitor thread: the models drive its transitions
/// (`hooks::monitor_*`) from a model thread instead.
#[cfg(loom)]
#[inline]
pub(crate) fn note_saturated(_pool: &'static crate::pool::WorkerPool) {}
#[cfg(loom)]
pub(crate) fn note_starved() {}

use std::time::Duration;

use crate::registry::Registry;

/// Sets the stall window (default 200 µs; also `CMWQ_STALL_US`): the sleep monitor
/// wakes an idle spare for a blocked worker at once if another spare stays in
/// reserve, but anything that leads to creating a thread waits until the block
/// has lasted this long, so that short blocks do not churn threads. Any value is
/// valid; zero acts at once.
pub fn set_stall_window(d: Duration) {
    Registry::global().config.set_stall_window(d)
}

/// Sets the CPU-intensive threshold (the kernel's `wq_cpu_intensive_thresh_us`;
/// default 10 ms; also `CMWQ_CPU_INTENSIVE_THRESH_US`). An item of a per-CPU
/// queue found on the CPU this long in one stretch stops counting toward
/// concurrency until it ends, so the other items of its CPU can start; it is
/// counted in [`WqStats::cpu_intensive`](crate::WqStats) and reported in the log
/// with exponential back-off. Zero disables the detection.
pub fn set_cpu_intensive_thresh(d: Duration) {
    Registry::global().config.set_cpu_intensive_thresh(d)
}

/// Sets the ceiling on workers of concurrency-managed (per-CPU) pools, process
/// wide (default max(64, 5 × allowed CPUs), where the allowed CPUs are those of
/// the affinity mask, fewer if the cgroup CPU quota is lower; also
/// `CMWQ_MAX_CM_WORKERS`). At the ceiling work waits; nothing is dropped. Values
/// below 1 are taken as 1.
pub fn set_max_cm_workers(n: usize) {
    Registry::global().config.set_max_cm_workers(n)
}

/// Turns the automatic detection of unannotated blocking and of CPU hogs on or
/// off (default on where `/proc` exists; also `CMWQ_MONITOR=0`). Off, only the
/// [`blocking`](crate::blocking) and [`sleep`](crate::sleep) hints move workers
/// out of concurrency management. Workers started while it is off are never
/// probed.
pub fn set_sleep_monitor(on: bool) {
    Registry::global().config.set_monitor(on)
}

/// The number of CPUs cmwq considers usable: the affinity mask at start (of the
/// first thread to use cmwq and of the main thread, together), or the
/// cgroup CPU quota rounded up if that is lower.
pub fn allowed_cpus() -> usize {
    let topo = &Registry::global().topo;
    allowed_cpu_count(topo.allowed.len())
}
