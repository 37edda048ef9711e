//! The userspace scheduler hooks. The kernel's scheduler calls
//! `wq_worker_sleeping()` when a worker blocks and `wq_worker_running()` when it
//! runs again; a process gets no such calls, so code that may block says so.
//!
//! [`worker_sleeping`] and [`worker_running`] are the two transitions. They take the
//! worker explicitly, not the calling thread, so that a monitor thread can drive
//! the same transitions for a worker that blocked without saying so. Each
//! transition is one atomic RMW on the worker's concurrency-management word
//! (`WorkerShared::cm`): whoever moves it to or from "counted" does the
//! accounting, so a hint, the worker and the monitor can never both count.

use std::time::Duration;

use crate::loom::Ordering;
#[cfg_attr(all(loom, cmwq_loom_mutant), allow(unused_imports))]
use crate::pool::{kick_pool, PoolLocked, WorkerPool, WorkerShared, WORKER_CPU_INTENSIVE};

/// `wq_worker_sleeping`: the worker leaves `nr_running`; if that leaves work
/// waiting with nobody running, an idle worker is woken (or the first created).
/// Returns whether this call did the transition (and so owes a [`worker_running`]).
pub(crate) fn worker_sleeping(w: &WorkerShared) -> bool {
    // A worker outside concurrency management (unbound, CPU-intensive, between
    // items) or already asleep is not counted, so it has nothing to give back.
    if !w.counted() {
        return false;
    }
    let pool = w.pool;
    let mut g = pool.lock();
    sleeping_locked(pool, &mut g, w)
}

/// The transition of [`worker_sleeping`], under the pool lock: the CAS on the
/// worker's word and the decrement happen in one critical section, followed by
/// the kick (pool/README.md, "Why no wake-up is lost", 3).
fn sleeping_locked(pool: &'static WorkerPool, g: &mut PoolLocked, w: &WorkerShared) -> bool {
    if !w.try_sleep() {
        return false;
    }
    pool.nr_running.fetch_sub(1, Ordering::SeqCst);
    crate::loom::ltrace!("W{}: sleeping", w.idx);
    #[cfg(all(loom, cmwq_loom_mutant))]
    let woke = false; // Mutant for the loom model: the wake-up is lost.
    #[cfg(not(all(loom, cmwq_loom_mutant)))]
    let woke = kick_pool(pool, g);
    if woke {
        if let Some(cur) = g.workers.get(w.idx).current {
            g.pwqs.get_mut(cur.pwq as usize).stats.cm_wakeup += 1;
        }
    }
    true
}

/// `wq_worker_running`: the worker counts as running again. No lock: an increment
/// can only make the predicates less eager, never lose a wake-up (pool/README.md).
/// Returns whether this call did the transition.
pub(crate) fn worker_running(w: &WorkerShared) -> bool {
    let woke = w.wake();
    if woke {
        w.pool.nr_running.fetch_add(1, Ordering::SeqCst);
    }
    woke
}

// ---- the same transitions, driven by the sleep monitor (`monitor/`) ----
//
// The monitor names a worker by its slot and the item it saw it execute (the
// slot's `progress` number). Each call re-checks both under the pool lock, so a
// decision taken on a stale observation (the worker finished that item
// meanwhile) does nothing.

/// Returns the worker in slot `idx` if it still executes item number `progress`.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
fn still_on(g: &PoolLocked, idx: usize, progress: u64) -> Option<std::sync::Arc<WorkerShared>> {
    let w = g.workers.try_get(idx)?;
    (w.current.is_some() && w.progress == progress).then(|| w.shared.clone())
}

/// The monitor found the worker blocked: `wq_worker_sleeping` on its behalf.
/// True if it took the worker out of `nr_running` (the worker, or a later
/// [`monitor_running`], gives the count back).
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
pub(crate) fn monitor_sleeping(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    idx: usize,
    progress: u64,
) -> bool {
    match still_on(g, idx, progress) {
        Some(w) => sleeping_locked(pool, g, &w),
        None => false,
    }
}

/// The monitor saw a worker it had put to sleep run again, still in the same
/// item: `wq_worker_running` on its behalf. (At the end of the item the worker
/// does this itself.) True if the worker counts again.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
pub(crate) fn monitor_running(g: &PoolLocked, idx: usize, progress: u64) -> bool {
    still_on(g, idx, progress).is_some_and(|w| worker_running(&w))
}

/// `wq_worker_tick`'s action: the worker has been on the CPU in one item past the
/// threshold. It becomes `CPU_INTENSIVE` (out of `nr_running` until the item ends)
/// and the pool is kicked. Returns the pwq slot of the item if it did.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
pub(crate) fn monitor_cpu_intensive(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    idx: usize,
    progress: u64,
) -> Option<u32> {
    let w = still_on(g, idx, progress)?;
    // Like the kernel: not for a worker outside concurrency management or asleep.
    if !pool.is_bound() || !w.counted() {
        return None;
    }
    let pwq = g.workers.get(idx).current?.pwq;
    g.worker_set_flags(pool, idx, WORKER_CPU_INTENSIVE);
    g.pwqs.get_mut(pwq as usize).stats.cpu_intensive += 1;
    if kick_pool(pool, g) {
        g.pwqs.get_mut(pwq as usize).stats.cm_wakeup += 1;
    }
    Some(pwq)
}

/// Restores `nr_running` even if the blocking closure panics.
struct Running<'a>(Option<&'a WorkerShared>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.0 {
            let _ = worker_running(w);
        }
    }
}

/// Runs `f`, which may block, telling the worker pool first (like Go's
/// `entersyscall` or Java's `ForkJoinPool.managedBlock`).
///
/// Inside a work item of a concurrency-managed (per-CPU) pool, the worker leaves
/// `nr_running` for the duration, so another item on the same CPU can start at
/// once instead of waiting behind the block. Outside a worker, and in unbound or
/// CPU-intensive items, this is a plain call. Nesting is allowed.
///
/// ```
/// let wq = cmwq::Workqueue::builder("io").build().unwrap();
/// wq.spawn(|| {
///     let data = cmwq::blocking(|| std::fs::read("/proc/self/stat"));
///     assert!(data.is_ok());
/// })
/// .unwrap();
/// wq.flush().unwrap();
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let me = crate::current::worker();
    let took = me.as_deref().filter(|w| worker_sleeping(w));
    let _guard = Running(took);
    f()
}

/// A sleep that tells the worker pool (`blocking(|| std::thread::sleep(d))`).
pub fn sleep(d: Duration) {
    blocking(|| std::thread::sleep(d))
}
