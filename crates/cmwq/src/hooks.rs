//! The userspace scheduler hooks. The kernel's scheduler calls
//! `wq_worker_sleeping()` when a worker blocks and `wq_worker_running()` when it
//! runs again; a process gets no such calls, so code that may block says so.
//!
//! [`worker_sleeping`] and [`worker_running`] are the two transitions. They take the
//! worker explicitly, not the calling thread, so that a monitor thread can drive
//! the same transitions for a worker that blocked without saying so. Each
//! transition is a `compare_exchange`/`swap` on `WorkerShared::sleeping`: whoever
//! wins it does the accounting, so a hint and a monitor can never both count.

use std::time::Duration;

use crate::loom::Ordering;
#[cfg_attr(all(loom, cmwq_loom_mutant), allow(unused_imports))]
use crate::pool::{kick_pool, WorkerShared};

/// `wq_worker_sleeping`: the worker leaves `nr_running`; if that leaves work
/// waiting with nobody running, an idle worker is woken (or the first created).
/// Returns whether this call did the transition (and so owes a [`worker_running`]).
pub(crate) fn worker_sleeping(w: &WorkerShared) -> bool {
    // A worker outside concurrency management (unbound, CPU-intensive, between
    // items) is not counted, so it has nothing to give back.
    if w.not_running.load(Ordering::SeqCst) {
        return false;
    }
    if w.sleeping.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        return false;
    }
    let pool = w.pool;
    let mut g = pool.lock();
    // Re-check under the lock, as the kernel does.
    if w.not_running.load(Ordering::SeqCst) {
        w.sleeping.store(false, Ordering::SeqCst);
        return false;
    }
    pool.nr_running.fetch_sub(1, Ordering::SeqCst);
    crate::loom::ltrace!("W{}: sleeping", w.idx);
    #[cfg(all(loom, cmwq_loom_mutant))]
    let woke = false; // Mutant for the loom model: the wake-up is lost.
    #[cfg(not(all(loom, cmwq_loom_mutant)))]
    let woke = kick_pool(pool, &mut g);
    if woke {
        if let Some(cur) = g.workers.get(w.idx).current {
            g.pwqs.get_mut(cur.pwq as usize).stats.cm_wakeup += 1;
        }
    }
    true
}

/// `wq_worker_running`: the worker counts as running again. No lock: an increment
/// can only make the predicates less eager, never lose a wake-up (pool/README.md).
pub(crate) fn worker_running(w: &WorkerShared) {
    if w.sleeping.swap(false, Ordering::SeqCst) && !w.not_running.load(Ordering::SeqCst) {
        w.pool.nr_running.fetch_add(1, Ordering::SeqCst);
    }
}

/// Restores `nr_running` even if the blocking closure panics.
struct Running<'a>(Option<&'a WorkerShared>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.0 {
            worker_running(w);
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
