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
//! | default affinity scope | `cache_shard` | `CMWQ_AFFINITY_SCOPE` | [`set_default_affinity_scope`] |
//! | cache shard size (cores) | 8 | `CMWQ_CACHE_SHARD_SIZE` | — |
//! | stall watchdog threshold | 30 s (0: off) | `CMWQ_WATCHDOG_THRESH` (seconds) | [`watchdog::set_thresh`](crate::watchdog::set_thresh) |
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
///
/// ```
/// use std::time::Duration;
///
/// cmwq::set_idle_timeout(Duration::from_secs(5)); // a short-lived tool: let threads go sooner
/// assert_eq!(cmwq::idle_timeout(), Duration::from_secs(5));
/// ```
pub fn set_idle_timeout(d: Duration) {
    let reg = registry();
    reg.ctx.config.set_idle_timeout(d);
    for p in reg.pools() {
        p.wake_all_idle();
    }
}

/// The current idle-worker timeout (see [`set_idle_timeout`]).
pub fn idle_timeout() -> Duration {
    registry().ctx.config.idle_timeout()
}

/// Sets the ceiling on worker threads across all pools (default 512, as XNU's
/// workqueue and tokio's blocking pool; `CMWQ_MAX_WORKERS`). Values below 1 are
/// taken as 1. At the ceiling work waits; nothing is dropped.
///
/// ```
/// cmwq::set_max_workers(64);
/// assert_eq!(cmwq::max_workers(), 64);
/// cmwq::set_max_workers(0);
/// assert_eq!(cmwq::max_workers(), 1); // below 1 is taken as 1
/// ```
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
///
/// ```
/// cmwq::set_max_cm_workers(4 * cmwq::available_parallelism());
/// ```
pub fn set_max_cm_workers(n: usize) {
    registry().ctx.config.set_max_cm_workers(n)
}

/// Sets the stall window (default 200 µs; `CMWQ_STALL_US`): the sleep monitor
/// wakes an idle spare for a blocked worker at once if another spare stays in
/// reserve, but anything that leads to creating a thread waits until the block
/// has lasted this long, so that short blocks do not churn threads. Any value is
/// valid; zero acts at once.
///
/// ```
/// // Blocks here are long (disk I/O): start spare threads for them sooner.
/// cmwq::set_stall_window(std::time::Duration::from_micros(50));
/// ```
pub fn set_stall_window(d: Duration) {
    registry().ctx.config.set_stall_window(d)
}

/// Sets the CPU-intensive threshold (the kernel's `wq_cpu_intensive_thresh_us`;
/// default 10 ms; `CMWQ_CPU_INTENSIVE_THRESH_US`). An item of a per-CPU queue
/// found on the CPU this long in one stretch stops counting toward concurrency
/// until it ends, so the other items of its CPU can start; it is counted in
/// [`WqStats::cpu_intensive`](crate::WqStats) and reported in the log with
/// exponential back-off. Zero disables the detection.
///
/// Here `hog` spins until `other`, queued behind it on the same CPU, has run:
/// only the hog rule lets `other` start.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use cmwq::{Work, Workqueue, WqFlags};
///
/// cmwq::set_cpu_intensive_thresh(Duration::from_millis(1));
/// let wq = Workqueue::builder("crunch").flags(WqFlags::PERCPU).build()?;
/// let cpu = cmwq::allowed_cpus()[0];
/// let other_ran = Arc::new(AtomicBool::new(false));
/// let (seen, set) = (other_ran.clone(), other_ran.clone());
/// let hog = Work::new(move |_| {
///     let start = Instant::now();
///     while !seen.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
///         std::hint::spin_loop();
///     }
/// });
/// let other = Work::new(move |_| set.store(true, Ordering::Release));
/// wq.queue_on(cpu, &hog)?;
/// wq.queue_on(cpu, &other)?;
/// hog.flush()?;
/// assert!(other_ran.load(Ordering::Acquire)); // it ran beside the hog
/// assert_eq!(wq.stats().cpu_intensive, 1);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn set_cpu_intensive_thresh(d: Duration) {
    registry().ctx.config.set_cpu_intensive_thresh(d)
}

/// Turns the automatic detection of unannotated blocking and of CPU hogs on or
/// off (default on where `/proc` exists; `CMWQ_MONITOR=0` turns it off). Off,
/// only the [`blocking`](crate::blocking) and [`sleep`](crate::sleep) hints move
/// workers out of concurrency management. Workers started while it is off are
/// never probed.
///
/// ```
/// // Every blocking call in this program is annotated: skip the detection.
/// cmwq::set_sleep_monitor(false);
/// let wq = cmwq::Workqueue::builder("annotated").build()?;
/// let w = cmwq::Work::new(|_| cmwq::sleep(std::time::Duration::from_millis(1)));
/// wq.queue(&w)?;
/// w.flush()?; // announced blocks need no monitor
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn set_sleep_monitor(on: bool) {
    registry().ctx.config.set_monitor(on)
}

/// Sets the process-wide power-efficient mode (the kernel's
/// `workqueue.power_efficient`; `CMWQ_POWER_EFFICIENT=1`): workqueues created
/// afterwards with [`WqFlags::POWER_EFFICIENT`](crate::WqFlags::POWER_EFFICIENT)
/// are unbound instead of per-CPU. Queues created before keep what they got.
///
/// ```
/// use cmwq::{Workqueue, WqFlags};
///
/// let before = Workqueue::builder("before").flags(WqFlags::POWER_EFFICIENT).build()?;
/// cmwq::set_power_efficient(true);
/// let after = Workqueue::builder("after").flags(WqFlags::POWER_EFFICIENT).build()?;
/// assert!(!before.flags().contains(WqFlags::UNBOUND));
/// assert!(after.flags().contains(WqFlags::UNBOUND));
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn set_power_efficient(on: bool) {
    registry().ctx.config.set_power_efficient(on)
}

/// Sets the process-wide default affinity scope (`workqueue.default_affinity_scope`;
/// default `cache_shard`, as the newest kernel, or `CMWQ_AFFINITY_SCOPE`), and
/// re-maps every unbound workqueue whose [`Attrs`](crate::Attrs) ask for
/// [`AffinityScope::Default`](crate::AffinityScope::Default), as the kernel does. Given `Default` itself, it
/// goes back to the built-in default (the kernel refuses "default" there).
///
/// ```
/// use cmwq::{default_affinity_scope, set_default_affinity_scope, AffinityScope};
///
/// set_default_affinity_scope(AffinityScope::Cpu); // one pod, and one pool, per CPU
/// assert_eq!(default_affinity_scope(), AffinityScope::Cpu);
/// set_default_affinity_scope(AffinityScope::Default);
/// assert_eq!(default_affinity_scope(), AffinityScope::CacheShard);
/// ```
pub fn set_default_affinity_scope(scope: crate::AffinityScope) {
    let reg = registry();
    let scope = match scope {
        crate::AffinityScope::Default => crate::context::config::DEFAULT_AFFINITY_SCOPE,
        s => s,
    };
    reg.ctx.config.set_default_scope(scope);
    let queues: Vec<_> = reg.workqueues().iter().filter_map(std::sync::Weak::upgrade).collect();
    for wq in queues {
        wq.default_scope_changed();
    }
}

/// How many NUMA node ids this machine has (one more than the highest; 1 where
/// sysfs shows no nodes). [`Workqueue::queue_node`](crate::Workqueue::queue_node)
/// takes one of them.
///
/// ```
/// assert!(cmwq::nr_numa_nodes() >= 1);
/// ```
pub fn nr_numa_nodes() -> usize {
    registry().ctx.topo.nr_nodes()
}

/// The process-wide default affinity scope (never `Default`); see
/// [`set_default_affinity_scope`].
pub fn default_affinity_scope() -> crate::AffinityScope {
    registry().ctx.config.default_scope()
}

/// The CPUs the process may use, ascending: those in its affinity mask when cmwq
/// started (of the first thread to use cmwq and of the main thread, together).
/// [`Workqueue::queue_on`](crate::Workqueue::queue_on) accepts exactly these.
///
/// ```
/// let cpus = cmwq::allowed_cpus();
/// assert!(!cpus.is_empty() && cpus.windows(2).all(|w| w[0] < w[1]));
/// let w = cmwq::Work::new(|_| {});
/// for cpu in cpus {
///     cmwq::system::percpu().queue_on(cpu, &w)?;
///     w.flush()?;
/// }
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn allowed_cpus() -> Vec<usize> {
    registry().ctx.topo.allowed.clone()
}

/// How many CPUs' worth of work the process may run at once: the number of
/// [`allowed_cpus`], or the cgroup CPU quota rounded up if that is lower (as Go
/// sizes `GOMAXPROCS` and `std::thread::available_parallelism` does); at least 1.
/// It sizes the ceiling on concurrency-managed workers.
///
/// ```
/// let n = cmwq::available_parallelism();
/// assert!(n >= 1 && n <= cmwq::allowed_cpus().len());
/// ```
pub fn available_parallelism() -> usize {
    registry().ctx.topo.available_parallelism()
}
