//! Concurrency management: the word that says whether a worker counts in its
//! pool's `nr_running`, and every transition of it, shared by the worker loop,
//! the `blocking`/`sleep` hints (the kernel's scheduler hooks
//! `wq_worker_sleeping` and `wq_worker_running`) and the sleep monitor.
//!
//! ## The word (`WorkerShared::cm`)
//!
//! A worker counts in `nr_running` exactly when its word is 0:
//!
//! | `CM_NOT_RUNNING` | `CM_SLEEPING` | counted | meaning |
//! |---|---|---|---|
//! | 0 | 0 | yes | executing (or between items without `PREP`) |
//! | 1 | 0 | no  | a `WORKER_NOT_RUNNING` flag is set (`PREP`, `CPU_INTENSIVE`) |
//! | 0 | 1 | no  | asleep: a hint (`blocking`) or the sleep monitor took it out |
//! | 1 | 1 | no  | both; clearing one bit leaves it uncounted |
//!
//! Every transition is one read-modify-write on the word, and whoever moves the
//! word to or from 0 adjusts `nr_running` by one, so a hint, the worker and the
//! monitor can never count the same change twice (`pool/README.md`, "Who changes
//! `nr_running`").
//!
//! ## Orderings
//!
//! Every access to the word and to `nr_running` is `Relaxed`; the pool lock
//! orders what must be ordered. Bits are *set* only under the pool lock, and
//! `nr_running` is *decremented* only under it, so a predicate, which reads
//! under the lock, sees every decrement before it. The one change made without
//! the lock is the way back from a sleep (`clear_sleeping` and the increment in
//! [`worker_running`]): a predicate that misses it reads `nr_running` too low,
//! which can only make it wake a worker or keep one going, never leave work
//! unattended (`pool/README.md`, "Why no wake-up is lost", 4). The counts stay
//! exact because each change is a single RMW on one word.

use std::time::Instant;

use super::batch::Batch;
use super::policy::kick_pool;
use super::worker_pool::{PoolLocked, WorkerPool, WORKER_CPU_INTENSIVE, WORKER_NOT_RUNNING};
use crate::platform::loom::{AtomicU32, Ordering};

/// Mirror of `flags & WORKER_NOT_RUNNING`; written under the pool lock.
pub(crate) const CM_NOT_RUNNING: u32 = 1;
/// Taken out of `nr_running` for a sleep, by a hint or by the monitor.
pub(crate) const CM_SLEEPING: u32 = 2;

/// What a worker shares outside the pool lock: with the hints and the sleep
/// monitor, which move it in and out of `nr_running`.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    /// I.
    pub(crate) pool: &'static WorkerPool,
    /// I: its slot in the pool.
    pub(crate) idx: usize,
    /// A: the concurrency-management word (module docs). Bits are set only under
    /// the pool lock; `CM_SLEEPING` may be cleared without it.
    pub(crate) cm: AtomicU32,
    /// The spawned closures it took in a batch and has not started yet
    /// (`batch.rs`); taken back when it stops counting.
    pub(crate) batch: Batch,
    /// How the sleep monitor observes this thread; set once by the thread when
    /// it starts.
    #[cfg(not(loom))]
    pub(crate) probe: std::sync::OnceLock<crate::platform::sys::probe::Probe>,
    /// Its thread id, set once by the thread when it starts (`debug::dump`
    /// shows it, and reads the thread's CPU from `/proc`).
    #[cfg(not(loom))]
    pub(crate) tid: std::sync::OnceLock<i32>,
}

impl WorkerShared {
    pub(crate) fn new(pool: &'static WorkerPool, idx: usize) -> WorkerShared {
        WorkerShared {
            pool,
            idx,
            cm: AtomicU32::new(CM_NOT_RUNNING),
            batch: Batch::default(),
            #[cfg(not(loom))]
            probe: std::sync::OnceLock::new(),
            #[cfg(not(loom))]
            tid: std::sync::OnceLock::new(),
        }
    }

    /// Whether the worker counts in `nr_running` now (exact under the pool lock
    /// but for a sleep ending meanwhile).
    #[inline]
    pub(crate) fn counted(&self) -> bool {
        self.cm.load(Ordering::Relaxed) == 0
    }

    /// Marks a counted worker asleep (0 → `CM_SLEEPING`); wakes nobody. Caller
    /// holds the pool lock and, on `true`, owes `nr_running` its decrement.
    #[must_use]
    fn mark_sleeping(&self) -> bool {
        self.cm.compare_exchange(0, CM_SLEEPING, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Clears `CM_SLEEPING`; wakes nobody. On `true` the worker counts again and
    /// the caller owes `nr_running` its increment. Needs no lock.
    #[must_use]
    fn clear_sleeping(&self) -> bool {
        self.cm.fetch_and(!CM_SLEEPING, Ordering::Relaxed) == CM_SLEEPING
    }

    /// Whether a hint or the monitor has this worker asleep.
    #[inline]
    pub(crate) fn is_sleeping(&self) -> bool {
        self.cm.load(Ordering::Relaxed) & CM_SLEEPING != 0
    }
}

// ---- nr_running accounting of the worker flags (`worker_set_flags`, `worker_clr_flags`) ----

impl PoolLocked {
    /// `worker_set_flags`: setting a NOT_RUNNING bit on a counted worker leaves
    /// `nr_running`.
    pub(crate) fn worker_set_flags(&mut self, pool: &WorkerPool, idx: usize, f: u32) {
        let w = self.workers.get_mut(idx);
        let old = w.flags;
        w.flags |= f;
        // The word went from 0 only if the worker was counted (not asleep).
        if old & WORKER_NOT_RUNNING == 0
            && w.flags & WORKER_NOT_RUNNING != 0
            && w.shared.cm.fetch_or(CM_NOT_RUNNING, Ordering::Relaxed) == 0
        {
            pool.nr_running.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `worker_clr_flags`: clearing the last NOT_RUNNING bit enters `nr_running`
    /// (unless a sleep keeps the worker out).
    pub(crate) fn worker_clr_flags(&mut self, pool: &WorkerPool, idx: usize, f: u32) {
        let w = self.workers.get_mut(idx);
        let old = w.flags;
        w.flags &= !f;
        if old & WORKER_NOT_RUNNING != 0
            && w.flags & WORKER_NOT_RUNNING == 0
            && w.shared.cm.fetch_and(!CM_NOT_RUNNING, Ordering::Relaxed) == CM_NOT_RUNNING
        {
            pool.nr_running.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---- the scheduler hooks ----

/// `wq_worker_sleeping`: the worker leaves `nr_running`; if that leaves work
/// waiting with nobody running, an idle worker is woken (or the first created).
/// `due` is when a timed sleep is certainly over (`None`: unknown, any other
/// block). Returns whether this call did the transition (and so owes a
/// [`worker_running`]).
pub(crate) fn worker_sleeping(w: &WorkerShared, due: Option<Instant>) -> bool {
    // A worker outside concurrency management (CPU-intensive, between items)
    // or already asleep is not counted, so it has nothing to give back.
    if !w.counted() {
        // A BH item must not wait: reported and counted (`bh.rs`).
        if w.pool.bh {
            super::bh::bh_blocking_hint(w);
        }
        return false;
    }
    let pool = w.pool;
    let mut g = pool.lock();
    sleeping_locked(pool, &mut g, w, due)
}

/// An unbound pool of several CPUs blocks: for a second its saturations arm the
/// idle sentinels (`WorkerPool::blocks_announced`). A saturation reported
/// before it (not arming them) is reported again, arming them: a pool that
/// stays saturated reports only once.
#[cfg(not(loom))]
fn note_announced_block(pool: &WorkerPool, g: &mut PoolLocked) {
    if pool.remember_block(g, true, Instant::now()) && pool.saturation_noted.load(Ordering::Relaxed) {
        pool.ctx.doorbell.saturated(&pool.pod, true);
    }
}

/// The transition of [`worker_sleeping`], under the pool lock: the CAS on the
/// worker's word and the decrement happen in one critical section, followed by
/// the kick (`pool/README.md`, "Why no wake-up is lost", 3).
fn sleeping_locked(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    w: &WorkerShared,
    due: Option<Instant>,
) -> bool {
    if !w.mark_sleeping() {
        return false;
    }
    g.workers.get_mut(w.idx).sleep_due = due;
    pool.nr_running.fetch_sub(1, Ordering::Relaxed);
    #[cfg(not(loom))]
    if pool.concurrency > 1 {
        note_announced_block(pool, g);
    }
    // What is left of its batch must not wait for it (`batch.rs`).
    w.batch.take_back(pool, g);
    crate::platform::loom::ltrace!("W{}: sleeping", w.idx);
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

/// `wq_worker_running`: the worker counts as running again. No lock: an
/// increment can only make the predicates more eager, never lose a wake-up
/// (module docs). Returns whether this call did the transition.
pub(crate) fn worker_running(w: &WorkerShared) -> bool {
    let woke = w.clear_sleeping();
    if woke {
        w.pool.nr_running.fetch_add(1, Ordering::Relaxed);
    }
    woke
}

/// Gives the count back when a [`blocking_until`] region ends, unwinding
/// included.
struct LeaveSleepOnDrop<'a>(Option<&'a WorkerShared>);

impl Drop for LeaveSleepOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.0 {
            let _ = worker_running(w);
        }
    }
}

/// Runs `f`, which may block, outside concurrency management if the calling
/// thread is a counted worker (`cmwq::blocking`, with when the block is certainly
/// over if that is known). A plain call anywhere else.
pub(crate) fn blocking_until<R>(due: Option<Instant>, f: impl FnOnce() -> R) -> R {
    let me = crate::current::worker();
    let took = me.as_deref().filter(|w| worker_sleeping(w, due));
    let _guard = LeaveSleepOnDrop(took);
    f()
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
    let Some(w) = still_on(g, idx, progress) else { return false };
    if !sleeping_locked(pool, g, &w, None) {
        return false;
    }
    if let Some(cur) = g.workers.get(idx).current {
        g.pwqs.get_mut(cur.pwq as usize).stats.monitor_blocks += 1;
    }
    true
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
    if !w.counted() {
        return None;
    }
    let pwq = g.workers.get(idx).current?.pwq;
    g.worker_set_flags(pool, idx, WORKER_CPU_INTENSIVE);
    w.batch.take_back(pool, g);
    g.pwqs.get_mut(pwq as usize).stats.cpu_intensive += 1;
    if kick_pool(pool, g) {
        g.pwqs.get_mut(pwq as usize).stats.cm_wakeup += 1;
    }
    Some(pwq)
}
