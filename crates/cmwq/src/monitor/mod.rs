//! The monitor layer: automatic detection of blocking nobody announced, of CPU
//! hogs, and the retry of pools whose worker creation was refused. One thread
//! per process, parked while no concurrency-managed pool is saturated, and an
//! idle sentinel per CPU (a `SCHED_IDLE` thread that runs, while its CPU's pool
//! is saturated, exactly when the running worker blocked). The protocol, and why
//! it never double-counts, is in `README.md` beside this file.
//!
//! It sits above the core: it reads the pools and drives their transitions
//! (`pool::monitor_*`); the pools reach it only through the context's doorbell.
//!
//! - `thread`: the monitor thread, its tick and parking;
//! - `scan`: what a tick looks at;
//! - `act`: what the monitor and the sentinels do on a block they found;
//! - `sentinel`: the idle sentinels;
//! - `hog`: the CPU-hog report;
//! - `stats`: counters for `cmwq::debug`;
//! - `watchdog`: the stall watchdog (`cmwq::watchdog`), a thread of its own,
//!   woken through the context's watchdog bell.

#[cfg(not(loom))]
mod act;
#[cfg(not(loom))]
mod hog;
#[cfg(not(loom))]
mod scan;
#[cfg(not(loom))]
mod sentinel;
mod stats;
#[cfg(not(loom))]
mod thread;
pub(crate) mod watchdog;

pub(crate) use stats::stats;
pub use stats::MonitorStats;

use std::time::Duration;

use crate::registry::Registry;

/// The name of the monitor thread.
pub(crate) const MONITOR_THREAD: &str = "cmwq/monitor";
/// The names of the sentinel threads: this prefix and the CPU number.
pub(crate) const SENTINEL_THREAD_PREFIX: &str = "cmwq/sentinel";
/// The monitor's longest tick: it starts at 50 µs and doubles, up to this,
/// while it finds nothing.
pub(crate) const TICK_MAX: Duration = Duration::from_millis(10);

/// Watches `reg`'s pools: installs the monitor's start function on its doorbell,
/// so that the first saturation or starvation starts the thread, and the
/// stall watchdog's on its watchdog bell, so that the first item queued
/// starts that one. Under loom there
/// is no monitor: the models drive its transitions from a model thread.
pub(crate) fn install(reg: &'static Registry) {
    watchdog::install(reg);
    #[cfg(not(loom))]
    reg.ctx.doorbell.install(move || thread::start(reg));
    #[cfg(loom)]
    let _ = reg;
}
