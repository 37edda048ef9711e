//! Process-wide settings. Each can be set at start through its environment
//! variable (read once, when cmwq is first used; a malformed value is reported
//! and the default kept) and changed at run time through its setter.
//!
//! | setting | default | environment | setter |
//! |---|---|---|---|
//! | idle-worker timeout | 300 s | `CMWQ_IDLE_TIMEOUT_MS` | [`set_idle_timeout`] |
//! | all workers, ceiling | 512 | `CMWQ_MAX_WORKERS` | [`set_max_workers`] |
//! | concurrency-managed workers, ceiling | max(64, 5 × [`available_parallelism`]) | `CMWQ_MAX_CM_WORKERS` | [`set_max_cm_workers`] |
//! | stall window | 200 µs | `CMWQ_STALL_US` | [`set_stall_window`] |
//! | CPU-intensive threshold | 10 ms | `CMWQ_CPU_INTENSIVE_THRESH_US` | [`set_cpu_intensive_thresh`] |
//! | CPU-hog warnings from the nth | 4 | `CMWQ_CPU_INTENSIVE_WARNING_THRESH` | — |
//! | sleep monitor | on | `CMWQ_MONITOR=0` turns it off | [`set_sleep_monitor`] |
//! | power-efficient queues unbound | off | `CMWQ_POWER_EFFICIENT=1` | [`set_power_efficient`] |
//!
//! ```
//! use std::time::Duration;
//!
//! cmwq::set_idle_timeout(Duration::from_secs(60));
//! assert_eq!(cmwq::idle_timeout(), Duration::from_secs(60));
//! assert!(cmwq::available_parallelism() >= 1);
//! assert!(cmwq::allowed_cpus().len() >= cmwq::available_parallelism());
//! ```

use std::time::Duration;

use crate::global::registry;

/// Sets how long an idle worker waits before it may exit (default 300 s, the
/// kernel's `IDLE_WORKER_TIMEOUT`; `CMWQ_IDLE_TIMEOUT_MS`). A pool keeps at least
/// two idle workers while it is busy (`too_many_workers`), and lets all of them
/// go once it has been completely idle this long. Any value is valid; idle
/// workers re-check their timeout at once.
pub fn set_idle_timeout(d: Duration) {
    let reg = registry();
    reg.ctx.config.set_idle_timeout(d);
    for p in reg.pools() {
        p.wake_all_idle();
    }
}

/// The current idle-worker timeout.
pub fn idle_timeout() -> Duration {
    registry().ctx.config.idle_timeout()
}

/// Sets the ceiling on worker threads across all pools (default 512, as XNU's
/// workqueue and tokio's blocking pool; `CMWQ_MAX_WORKERS`). Values below 1 are
/// taken as 1. At the ceiling work waits; nothing is dropped.
pub fn set_max_workers(n: usize) {
    registry().ctx.config.set_max_workers(n)
}

/// The ceiling on worker threads across all pools (see [`set_max_workers`]).
pub fn max_workers() -> usize {
    registry().ctx.config.max_workers()
}

/// Sets the ceiling on workers of concurrency-managed (per-CPU) pools, process
/// wide (default max(64, 5 × [`available_parallelism`]); `CMWQ_MAX_CM_WORKERS`).
/// Values below 1 are taken as 1. At the ceiling work waits; nothing is dropped.
pub fn set_max_cm_workers(n: usize) {
    registry().ctx.config.set_max_cm_workers(n)
}

/// Sets the stall window (default 200 µs; `CMWQ_STALL_US`): the sleep monitor
/// wakes an idle spare for a blocked worker at once if another spare stays in
/// reserve, but anything that leads to creating a thread waits until the block
/// has lasted this long, so that short blocks do not churn threads. Any value is
/// valid; zero acts at once.
pub fn set_stall_window(d: Duration) {
    registry().ctx.config.set_stall_window(d)
}

/// Sets the CPU-intensive threshold (the kernel's `wq_cpu_intensive_thresh_us`;
/// default 10 ms; `CMWQ_CPU_INTENSIVE_THRESH_US`). An item of a per-CPU queue
/// found on the CPU this long in one stretch stops counting toward concurrency
/// until it ends, so the other items of its CPU can start; it is counted in
/// [`WqStats::cpu_intensive`](crate::WqStats) and reported in the log with
/// exponential back-off. Zero disables the detection.
pub fn set_cpu_intensive_thresh(d: Duration) {
    registry().ctx.config.set_cpu_intensive_thresh(d)
}

/// Turns the automatic detection of unannotated blocking and of CPU hogs on or
/// off (default on where `/proc` exists; `CMWQ_MONITOR=0` turns it off). Off,
/// only the [`blocking`](crate::blocking) and [`sleep`](crate::sleep) hints move
/// workers out of concurrency management. Workers started while it is off are
/// never probed.
pub fn set_sleep_monitor(on: bool) {
    registry().ctx.config.set_monitor(on)
}

/// Sets the process-wide power-efficient mode (the kernel's
/// `workqueue.power_efficient`; `CMWQ_POWER_EFFICIENT=1`): workqueues created
/// afterwards with [`WqFlags::POWER_EFFICIENT`](crate::WqFlags::POWER_EFFICIENT)
/// are unbound instead of per-CPU.
pub fn set_power_efficient(on: bool) {
    registry().ctx.config.set_power_efficient(on)
}

/// The CPUs the process may use, ascending: those in its affinity mask when cmwq
/// started (of the first thread to use cmwq and of the main thread, together).
/// [`Workqueue::queue_on`](crate::Workqueue::queue_on) accepts exactly these.
pub fn allowed_cpus() -> Vec<usize> {
    registry().ctx.topo.allowed.clone()
}

/// How many CPUs' worth of work the process may run at once: the number of
/// [`allowed_cpus`], or the cgroup CPU quota rounded up if that is lower (as Go
/// sizes `GOMAXPROCS` and `std::thread::available_parallelism` does); at least 1.
/// It sizes the ceiling on concurrency-managed workers.
pub fn available_parallelism() -> usize {
    registry().ctx.topo.available_parallelism()
}
