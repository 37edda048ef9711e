//! Introspection: what runs where, for `cmwq top`, `cmwq dump`, tests and
//! anyone debugging a slow program. The kernel answers the same questions with
//! its workqueue tracepoints, `show_all_workqueues()`,
//! `tools/workqueue/wq_dump.py` and `tools/workqueue/wq_monitor.py`.
//!
//! - [`dump`]: every live workqueue and every pool, now (`show_all_workqueues`);
//! - [`Workqueue::stats`](crate::Workqueue::stats): a queue's counters (`wq_monitor.py`);
//! - [`pools`] and the process-wide counters ([`panics`], [`nr_workers`],
//!   [`monitor`], ...);
//! - the [events](#events) named after the kernel's tracepoints.
//!
//! ## Dump
//!
//! [`dump`] returns a [`Dump`]: per workqueue its flags, `max_active` and
//! counters, and per pwq (the queue on one pool) its active, pending and
//! inactive items and the items running, with their worker, its CPU and how
//! long each has run; per pool its workers (busy, idle), `nr_running`, how
//! long its oldest waiting item has waited, and whether it is hung. Its
//! `Display` reads like the kernel's dump:
//!
//! ```text
//! workqueue db-flush: flags=UNBOUND max_active=1 min_active=1 started=41 completed=40 in_flight=3 cpu_time=1.2s ...
//!   pwq 9: pod=0-3 active=1/1 pending=0 inactive=2
//!     in-flight: cmwq/u9:0(81234)@cpu2:0x55d0c1a2e310 for 40.2s sleeping
//! pool 9 (u9): pod=0-3 nice=0 hung=0s workers=2 busy=1 idle=1 nr_running=0 pending=0 inactive=2 completed=40
//! ```
//!
//! A dump costs the process little: each pool's lock is taken once, briefly.
//! Its first call switches item timing on ([`set_accounting`]), so that from
//! then on running items have exact ages and [`WqStats::cpu_time`](crate::WqStats::cpu_time)
//! counts; an item that started before is shown with a lower bound.
//!
//! ```
//! use cmwq::{Work, Workqueue};
//!
//! let wq = Workqueue::builder("inspected").build()?;
//! let w = Work::new(|_| {});
//! wq.queue(&w)?;
//! w.flush()?;
//! let d = cmwq::debug::dump();
//! let row = d.workqueues.iter().find(|q| q.name == "inspected").expect("a live queue is listed");
//! assert_eq!(row.stats.completed, 1);
//! for p in &d.pools {
//!     assert!(p.idle <= p.workers);
//! }
//! println!("{d}"); // the kernel's layout
//! wq.destroy()?;
//! assert!(cmwq::debug::dump().workqueues.iter().all(|q| q.name != "inspected"));
//! # Ok::<(), cmwq::Error>(())
//! ```
//!
//! ## Events
//!
//! With the `tracing` feature (the default), cmwq emits the kernel's workqueue
//! tracepoints (`include/trace/events/workqueue.h`) as `tracing` events of
//! target `cmwq` at level TRACE, named after them; the message is the name,
//! the context is in fields:
//!
//! | event | when | fields |
//! |---|---|---|
//! | `workqueue_queue_work` | an item is queued (at once, or when its delay expires) | `workqueue`, `work`, `req_cpu` (the CPU asked for, if any), `cpu` (a per-CPU pool's), `pod` (the pool's CPUs, `0-3`), `pool` |
//! | `workqueue_activate_work` | it goes onto the pool's worklist: at once, or when `max_active` lets it off the inactive list | `workqueue`, `work`, `pool` |
//! | `workqueue_execute_start` | its callback is about to run | `workqueue`, `work`, `pool`, `cpu`, `worker` (its slot in the pool) |
//! | `workqueue_execute_end` | its callback returned (or panicked) | `workqueue`, `work`, `pool`, `cpu` |
//!
//! `work` is the item's id, [`Work::id`](crate::Work::id) (a spawned
//! closure's is the address of its captures, shared by closures that capture
//! nothing). `queue` and `activate` are emitted under the pool's lock, as in
//! the kernel, so that they come before the item's other events: a subscriber
//! that takes them should be quick. Without a subscriber that wants TRACE
//! events of `cmwq`, each costs what `tracing` costs for a disabled event, a
//! relaxed load or two; without the feature, nothing at all.
//!
//! ```
//! // A subscriber that prints cmwq's tracepoints, such as tracing-subscriber's:
//! // tracing_subscriber::fmt().with_env_filter("cmwq=trace").init();
//! // then prints, per item, lines like
//! // TRACE cmwq: workqueue_queue_work workqueue="events" work=94321 req_cpu=2 cpu=2 pod=2 pool=4
//! let w = cmwq::Work::new(|_| {});
//! cmwq::schedule_work(&w);
//! w.flush()?;
//! # Ok::<(), cmwq::Error>(())
//! ```
//!
//! cmwq's warnings and errors follow the same rule: the message says what
//! happened, and the workqueue, pool, CPU or error are fields.

mod dump;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::global::registry;

pub use dump::{dump, Dump, NodeDump, PoolDump, PwqDump, RunningItem, WqDump};

/// Switches item timing on or off, process-wide. On, each worker records when
/// its item started (so [`dump`] shows exactly how long running items have
/// run) and reads its thread's CPU clock at the start and the end of each item
/// ([`WqStats::cpu_time`](crate::WqStats::cpu_time)): about 0.6 µs per item,
/// which doubles the cost of an item that does nothing. Off (the default until
/// the first [`dump`]), an item pays one relaxed load of a read-mostly flag.
///
/// ```
/// let wq = cmwq::Workqueue::builder("timed").build()?;
/// cmwq::debug::set_accounting(true);
/// assert!(cmwq::debug::accounting());
/// wq.spawn(|| {
///     let t = std::time::Instant::now();
///     while t.elapsed() < std::time::Duration::from_millis(2) {}
/// })?;
/// wq.flush()?;
/// assert!(wq.stats().cpu_time > std::time::Duration::ZERO);
/// cmwq::debug::set_accounting(false);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn set_accounting(on: bool) {
    crate::context::counters::set_accounting(on)
}

/// Whether items are timed now ([`set_accounting`]).
pub fn accounting() -> bool {
    crate::context::counters::accounting()
}

/// One worker pool's live state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PoolSnapshot {
    /// The pool id (work items record it).
    pub id: u32,
    /// The CPU of a per-CPU pool; `None` for an unbound pool.
    pub cpu: Option<usize>,
    /// Whether this is a highpri pool.
    pub highpri: bool,
    /// Whether this is a BH pool ([`WqFlags::BH`](crate::WqFlags::BH)): its
    /// one worker is the CPU's BH context (thread `cmwq/bh<cpu>`, `H` for
    /// highpri), never concurrency managed.
    pub bh: bool,
    /// The CPUs of the pool's pod, ascending: the one CPU of a per-CPU pool,
    /// the pod of an unbound pool (its affinity scope's grouping).
    pub pod: Vec<usize>,
    /// The nice value its workers run at: `nice_wanted`, or the process's own
    /// where the process may not raise a thread's priority that far (no
    /// `CAP_SYS_NICE`, `RLIMIT_NICE`), as its newest worker found.
    pub nice: i32,
    /// The nice value its attributes ask for (`Attrs::nice`; -20 for a highpri
    /// per-CPU pool).
    pub nice_wanted: i32,
    /// How many items it lets run at once before a blocked one must hand its
    /// CPU on: 1 for a per-CPU pool, the pod's CPUs for an unbound pool.
    pub concurrency: usize,
    /// The most worker threads it had at once.
    pub peak_workers: usize,
    /// Worker threads.
    pub workers: usize,
    /// Idle workers.
    pub idle: usize,
    /// Workers counted as running (`nr_running`): at most `concurrency` while
    /// none of them has just come back from a block.
    pub running: i64,
    /// Workers executing an item (running or sleeping inside one).
    pub busy: usize,
    /// Active items waiting on the worklist.
    pub pending: usize,
    /// Items held back by `max_active` on inactive lists.
    pub inactive: usize,
    /// Items completed since the pool was created.
    pub completed: u64,
    /// Items whose callback panicked.
    pub panicked: u64,
    /// Workers created since the pool was created.
    pub created: u64,
    /// Workers that exited after their idle timeout.
    pub culled: u64,
}

/// A snapshot of every pool created so far, per-CPU pools first, then BH
/// pools, then unbound ones (the
/// kernel's `show_all_workqueues` and `wq_dump.py` show the same counts).
///
/// ```
/// let cpu = cmwq::allowed_cpus()[0];
/// let w = cmwq::Work::new(|_| {});
/// cmwq::schedule_work_on(cpu, &w)?;
/// w.flush()?;
/// let pool = cmwq::debug::pools()
///     .into_iter()
///     .find(|p| p.cpu == Some(cpu) && !p.highpri && !p.bh)
///     .expect("a per-CPU pool is created on first use");
/// assert!(pool.workers >= 1 && pool.completed >= 1);
/// assert_eq!(pool.panicked, 0);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn pools() -> Vec<PoolSnapshot> {
    let mut v: Vec<PoolSnapshot> = registry()
        .pools()
        .map(|p| {
            let g = p.lock();
            PoolSnapshot {
                id: p.id,
                cpu: p.cpu,
                highpri: p.highpri,
                bh: p.bh,
                pod: p.pod.to_vec(),
                nice: p.nice_applied.load(Ordering::Relaxed),
                nice_wanted: p.nice,
                concurrency: p.concurrency as usize,
                peak_workers: g.peak_workers,
                workers: g.nr_workers,
                idle: g.idle.len(),
                running: p.nr_running(),
                busy: g.nr_busy,
                pending: g.worklist.len(),
                inactive: g.nr_inactive(),
                completed: g.completed,
                panicked: g.panicked,
                created: g.workers_created,
                culled: g.workers_culled,
            }
        })
        .collect();
    v.sort_by_key(|p| (p.cpu.is_none(), p.bh, p.cpu, p.highpri));
    v
}

/// Work items that panicked, process-wide. Their pools kept working.
///
/// ```
/// let wq = cmwq::Workqueue::builder("fragile").build()?;
/// wq.spawn(|| panic!("caught and logged"))?;
/// wq.flush()?;
/// assert_eq!(cmwq::debug::panics(), 1);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn panics() -> u64 {
    registry().ctx.counters.panics()
}

/// Worker threads alive in all pools.
///
/// ```
/// let wq = cmwq::Workqueue::builder("one").flags(cmwq::WqFlags::UNBOUND).build()?;
/// let w = cmwq::Work::new(|_| {});
/// wq.queue(&w)?;
/// w.flush()?;
/// assert!(cmwq::debug::nr_workers() >= 1); // idle workers stay for the idle timeout
/// assert!(cmwq::debug::nr_workers() <= cmwq::max_workers());
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn nr_workers() -> usize {
    registry().ctx.threads.count().0
}

/// Flush-dependency warnings given: a queue without `MEM_RECLAIM` flushed (or
/// drained) from an item of a `MEM_RECLAIM` queue, reported once per flushed
/// queue (the kernel's `check_flush_dependency`).
#[doc(hidden)]
pub fn nr_flush_dependency_warnings() -> u64 {
    registry().ctx.counters.flush_dependency()
}

/// Times a pool wanted a new worker but the thread ceiling or a failed thread
/// creation refused it (the work waited instead).
pub fn nr_throttled() -> u64 {
    registry().ctx.counters.throttled()
}

/// Workers of concurrency-managed (per-CPU) pools alive now.
///
/// ```
/// assert_eq!(cmwq::debug::nr_cm_workers(), 0); // pools start empty
/// let w = cmwq::Work::new(|_| {});
/// cmwq::schedule_work(&w);
/// w.flush()?;
/// assert!(cmwq::debug::nr_cm_workers() >= 1);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn nr_cm_workers() -> usize {
    registry().ctx.threads.count().1
}

/// The most worker threads that were alive at once: `(all, concurrency-managed)`.
/// Each is counted before its thread starts, so it never exceeds its ceiling.
///
/// ```
/// let w = cmwq::Work::new(|_| {});
/// cmwq::schedule_work(&w); // a per-CPU queue: a concurrency-managed worker runs it
/// w.flush()?;
/// let (all, cm) = cmwq::debug::peak_workers();
/// assert!(cm >= 1 && all >= cm);
/// assert!(all <= cmwq::max_workers());
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn peak_workers() -> (usize, usize) {
    registry().ctx.threads.peak()
}

/// What the sleep monitor has done so far.
///
/// Here `blocker` blocks without telling the pool (a plain channel receive),
/// with `unblocker` queued behind it on the same CPU; only the monitor's finding
/// the block lets `unblocker` run:
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::{mpsc, Arc, Mutex};
/// use std::time::Duration;
/// use cmwq::{Work, Workqueue, WqFlags};
///
/// let wq = Workqueue::builder("unannounced").flags(WqFlags::PERCPU).build()?;
/// let cpu = cmwq::allowed_cpus()[0];
/// let (tx, rx) = mpsc::channel::<()>();
/// let rx = Mutex::new(rx);
/// let met = Arc::new(AtomicBool::new(false));
/// let m = met.clone();
/// let blocker = Work::new(move |_| {
///     let got = rx.lock().unwrap().recv_timeout(Duration::from_secs(10)).is_ok();
///     m.store(got, Ordering::Relaxed);
/// });
/// let unblocker = Work::new(move |_| tx.send(()).unwrap());
/// wq.queue_on(cpu, &blocker)?;
/// wq.queue_on(cpu, &unblocker)?;
/// blocker.flush()?;
/// assert!(met.load(Ordering::Relaxed)); // `unblocker` ran during the block
/// assert!(cmwq::debug::monitor().blocked >= 1);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn monitor() -> MonitorStats {
    crate::monitor::stats()
}

pub use crate::monitor::MonitorStats;

/// Fault injection for tests: the next `n` worker-thread creations fail with
/// `EAGAIN`, as under `pids.max` or `RLIMIT_NPROC`.
#[doc(hidden)]
pub fn fail_next_spawns(n: usize) {
    crate::pool::FAIL_SPAWNS.store(n, Ordering::Relaxed);
}

/// Fault injection for tests: the next `n` new workers are refused their
/// pool's nice value (`EPERM`), as a process without `CAP_SYS_NICE` is.
#[doc(hidden)]
pub fn fail_next_nice(n: usize) {
    crate::pool::FAIL_NICE.store(n, Ordering::Relaxed);
}

/// Test hook: whether the sleep monitor's own ticks look for blocked workers
/// (default on). Off, only the idle sentinels find unannotated blocks, which
/// lets a test see them work alone; they are then armed at every saturation, not
/// only in pools that blocked lately (`monitor/README.md`). CPU hogs are still detected.
#[doc(hidden)]
pub fn monitor_ticks_detect_blocks(on: bool) {
    registry().ctx.config.set_monitor_ticks(on);
}

/// Whether highpri workers got nice -20: `None` before the first one started,
/// `Some(false)` where the process may not raise priority (they then run at the
/// default priority, and a one-time note was logged).
///
/// ```
/// assert_eq!(cmwq::debug::highpri_nice_applied(), None);
/// let w = cmwq::Work::new(|_| {});
/// cmwq::system::highpri().queue(&w)?;
/// w.flush()?;
/// let applied = cmwq::debug::highpri_nice_applied().expect("a highpri worker started");
/// println!("highpri workers at nice -20: {applied}");
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn highpri_nice_applied() -> Option<bool> {
    registry().ctx.counters.highpri_nice_applied()
}

/// The name of the sleep monitor's thread.
pub const MONITOR_THREAD: &str = crate::monitor::MONITOR_THREAD;
/// The names of the idle sentinel threads: this prefix and the CPU number.
pub const SENTINEL_THREAD_PREFIX: &str = crate::monitor::SENTINEL_THREAD_PREFIX;
/// The names of worker threads: this prefix, the pool (`3`, `3H`, `u`, `uH`),
/// `:` and the worker's slot (`cmwq/3:0`).
///
/// ```
/// let cpu = cmwq::allowed_cpus()[0];
/// let name = cmwq::work_on_cpu(cpu, || std::thread::current().name().map(String::from))?;
/// let name = name.expect("workers are named");
/// assert!(name.starts_with(&format!("{}{cpu}:", cmwq::debug::WORKER_THREAD_PREFIX)));
/// # Ok::<(), cmwq::Error>(())
/// ```
pub const WORKER_THREAD_PREFIX: &str = crate::pool::WORKER_THREAD_PREFIX;
/// The names of rescuer threads (`MEM_RECLAIM` queues): this prefix and the
/// queue's name, cut to the 15 bytes Linux keeps (`cmwq/R-reclaim`).
///
/// ```
/// use cmwq::{Workqueue, WqFlags};
///
/// let threads = || -> Vec<String> {
///     std::fs::read_dir("/proc/self/task")
///         .unwrap()
///         .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
///         .map(|n| n.trim_end().to_string())
///         .collect()
/// };
/// let wq = Workqueue::builder("reclaim-io").flags(WqFlags::MEM_RECLAIM).build()?;
/// // The thread names itself as it starts (looked for, at most 10 s).
/// let named = (0..10_000).any(|_| {
///     let found = threads().iter().any(|n| n == "cmwq/R-reclaim-"); // 15 bytes
///     if !found {
///         std::thread::sleep(std::time::Duration::from_millis(1));
///     }
///     found
/// });
/// assert!(named);
/// wq.destroy()?; // and gone with its queue
/// # Ok::<(), cmwq::Error>(())
/// ```
pub const RESCUER_THREAD_PREFIX: &str = crate::pool::RESCUER_THREAD_PREFIX;
/// The name of the creator thread (the kernel's kthreadd), which spawns the
/// first worker of a pool.
pub const CREATOR_THREAD: &str = crate::context::threads::CREATOR_THREAD;
/// The name of the process's timer thread (delayed work).
pub const TIMER_THREAD: &str = crate::platform::timer::base::TIMER_THREAD;
/// The longest tick of the sleep monitor: while it runs it looks at least this
/// often (it starts at 50 µs and doubles while it finds nothing).
pub const MONITOR_TICK_MAX: Duration = crate::monitor::TICK_MAX;

/// CPU time used by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
///
/// ```
/// let t0 = cmwq::debug::thread_cpu_time();
/// let mut x = 0u64;
/// for i in 0..100_000 {
///     x = std::hint::black_box(x.wrapping_add(i));
/// }
/// assert!(cmwq::debug::thread_cpu_time() >= t0);
/// ```
pub fn thread_cpu_time() -> Duration {
    crate::platform::sys::thread_cpu_time()
}

/// The nice value of the calling thread.
///
/// ```
/// use std::sync::atomic::{AtomicI32, Ordering};
/// use std::sync::Arc;
///
/// let nice = Arc::new(AtomicI32::new(0));
/// let n = nice.clone();
/// let w = cmwq::Work::new(move |_| n.store(cmwq::debug::thread_nice(), Ordering::Relaxed));
/// cmwq::system::highpri().queue(&w)?;
/// w.flush()?;
/// if cmwq::debug::highpri_nice_applied() == Some(true) {
///     assert_eq!(nice.load(Ordering::Relaxed), -20);
/// }
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn thread_nice() -> i32 {
    crate::platform::sys::current_thread_nice()
}

/// The CPU the calling thread runs on, if known.
///
/// ```
/// let cpu = *cmwq::allowed_cpus().last().unwrap();
/// assert_eq!(cmwq::work_on_cpu(cpu, cmwq::debug::current_cpu)?, Some(cpu));
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn current_cpu() -> Option<usize> {
    crate::platform::sys::current_cpu()
}
