//! Worker pools: the shared worklist, the workers, `nr_running` and the policy
//! predicates. The protocol, and why no wake-up is lost, is in `README.md` beside
//! this file.

mod manage;
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use manage::{create_worker_locked, FAIL_SPAWNS, HIGHPRI_NICE};
#[cfg(all(test, loom))]
mod tests;
mod worker;

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::loom::{thread::Thread, AtomicI64, AtomicU32, Condvar, Mutex, MutexGuard, Ordering};
use crate::pwq::{Entry, PwqState};
use crate::registry::Registry;
use crate::work::{Snapshot, Work};

pub(crate) use crate::registry::pool_by_id as by_id;

// Worker flags (`enum worker_flags`).
/// The worker must exit.
pub(crate) const WORKER_DIE: u32 = 1 << 1;
/// On the idle list.
pub(crate) const WORKER_IDLE: u32 = 1 << 2;
/// Between items: not yet (or no longer) processing.
pub(crate) const WORKER_PREP: u32 = 1 << 3;
/// Running an item of a `CPU_INTENSIVE` queue.
pub(crate) const WORKER_CPU_INTENSIVE: u32 = 1 << 6;
/// A worker of an unbound pool: never concurrency managed.
pub(crate) const WORKER_UNBOUND: u32 = 1 << 7;
/// Any of these takes a worker out of `nr_running` (`WORKER_NOT_RUNNING`).
pub(crate) const WORKER_NOT_RUNNING: u32 = WORKER_PREP | WORKER_CPU_INTENSIVE | WORKER_UNBOUND;

/// `MAX_IDLE_WORKERS_RATIO`.
const MAX_IDLE_WORKERS_RATIO: usize = 4;

// The concurrency-management word (`WorkerShared::cm`). A worker counts in
// `nr_running` exactly when the word is 0:
//
// | CM_NOT_RUNNING | CM_SLEEPING | counted | meaning                                     |
// |---|---|---|---|
// | 0 | 0 | yes | executing (or between items without PREP)                          |
// | 1 | 0 | no  | a `WORKER_NOT_RUNNING` flag is set (PREP, CPU_INTENSIVE, UNBOUND)  |
// | 0 | 1 | no  | asleep: a hint (`blocking`) or the sleep monitor took it out        |
// | 1 | 1 | no  | both; clearing one bit leaves it uncounted                          |
//
// Every transition is one RMW on the word, and whoever moves the word to or from 0
// adjusts `nr_running` by one: so a hint, the worker and the monitor can never
// count the same change twice (pool/README.md, "Who changes nr_running").
/// Mirror of `flags & WORKER_NOT_RUNNING`; written under the pool lock.
pub(crate) const CM_NOT_RUNNING: u32 = 1;
/// Taken out of `nr_running` for a sleep, by a hint or by the monitor.
pub(crate) const CM_SLEEPING: u32 = 2;

/// What a worker shares outside the pool lock: with the hooks and the sleep
/// monitor, which move it in and out of `nr_running`.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    pub(crate) pool: &'static WorkerPool,
    pub(crate) idx: usize,
    /// The concurrency-management word (`CM_*` above). Bits are set only under
    /// the pool lock; `CM_SLEEPING` may be cleared without it.
    pub(crate) cm: AtomicU32,
    /// How the sleep monitor observes this thread; set by the thread when it starts.
    #[cfg(not(loom))]
    pub(crate) probe: std::sync::OnceLock<crate::monitor::Probe>,
}

impl WorkerShared {
    pub(crate) fn new(pool: &'static WorkerPool, idx: usize) -> WorkerShared {
        WorkerShared {
            pool,
            idx,
            cm: AtomicU32::new(CM_NOT_RUNNING),
            #[cfg(not(loom))]
            probe: std::sync::OnceLock::new(),
        }
    }

    /// Whether the worker counts in `nr_running` now.
    #[inline]
    pub(crate) fn counted(&self) -> bool {
        self.cm.load(Ordering::SeqCst) == 0
    }

    /// Marks a counted worker asleep (0 → `CM_SLEEPING`). Caller holds the pool
    /// lock and, on `true`, owes `nr_running` its decrement.
    #[must_use]
    pub(crate) fn try_sleep(&self) -> bool {
        self.cm.compare_exchange(0, CM_SLEEPING, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Clears `CM_SLEEPING`. On `true` the worker counts again and the caller owes
    /// `nr_running` its increment. Needs no lock.
    #[must_use]
    pub(crate) fn wake(&self) -> bool {
        self.cm.fetch_and(!CM_SLEEPING, Ordering::SeqCst) == CM_SLEEPING
    }

    /// Whether a hint or the monitor has this worker asleep.
    #[inline]
    pub(crate) fn is_sleeping(&self) -> bool {
        self.cm.load(Ordering::Relaxed) & CM_SLEEPING != 0
    }
}

/// The item a worker executes (the kernel's `current_work`/`current_pwq`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Running {
    pub(crate) pwq: u32,
}

/// A worker as the pool sees it. Every field is protected by the pool lock.
#[derive(Debug)]
pub(crate) struct WorkerSlot {
    pub(crate) shared: Arc<WorkerShared>,
    /// `None` until the creator has spawned the thread.
    pub(crate) thread: Option<Thread>,
    pub(crate) flags: u32,
    /// Woken by `kick_pool` (not by a timeout or a spurious wake-up).
    pub(crate) kicked: bool,
    pub(crate) current: Option<Running>,
    /// Bumped at the start of each item: the sleep monitor's progress sequence
    /// (a worker whose number has not moved for a tick is a suspect).
    pub(crate) progress: u64,
    /// Items assigned to this worker: collisions with the item it runs.
    pub(crate) scheduled: VecDeque<Entry>,
    pub(crate) last_active: Instant,
    /// Set by each transition into `CM_SLEEPING`: when the sleep is certainly
    /// over, for a timed sleep ([`crate::sleep`]: its deadline plus the thread's
    /// timer slack plus a wake-up allowance); `None` for any other block. Meaningful only while the worker
    /// is asleep (see [`PoolLocked::runnable_sleeper`]).
    pub(crate) sleep_due: Option<Instant>,
}

/// A slab: stable indices, reused after removal.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { items: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, t: T) -> usize {
        if let Some(i) = self.free.pop() {
            self.items[i] = Some(t);
            i
        } else {
            self.items.push(Some(t));
            self.items.len() - 1
        }
    }
    /// The index the next `insert` will use.
    pub(crate) fn next_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.items.len())
    }
    pub(crate) fn remove(&mut self, i: usize) -> Option<T> {
        let t = self.items.get_mut(i)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }
    #[inline]
    pub(crate) fn try_get(&self, i: usize) -> Option<&T> {
        self.items.get(i).and_then(Option::as_ref)
    }
    #[inline]
    pub(crate) fn try_get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i).and_then(Option::as_mut)
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &T {
        self.items[i].as_ref().expect("slab slot in use")
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut T {
        self.items[i].as_mut().expect("slab slot in use")
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items.iter().enumerate().filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
    }
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.items.iter_mut().enumerate().filter_map(|(i, t)| t.as_mut().map(|t| (i, t)))
    }
}

/// Pool state protected by the pool lock (the kernel's `L:` fields).
#[derive(Debug, Default)]
pub(crate) struct PoolLocked {
    /// Active items waiting for a worker, in order.
    pub(crate) worklist: VecDeque<Entry>,
    pub(crate) workers: Slab<WorkerSlot>,
    pub(crate) nr_workers: usize,
    /// Idle workers; the last one idled most recently (LIFO, as the kernel's list head).
    pub(crate) idle: Vec<usize>,
    /// A worker kicked under the lock, unparked when the lock is released, so the
    /// woken thread does not find the lock held (see `PoolGuard`).
    pub(crate) to_wake: Option<Thread>,
    /// The pool_workqueues attached to this pool.
    pub(crate) pwqs: Slab<PwqState>,
    /// One worker at a time creates workers (`POOL_MANAGER_ACTIVE`).
    pub(crate) manager_active: bool,
    /// After a failed thread creation, no new attempt before this (`CREATE_COOLDOWN`).
    pub(crate) create_cooldown_until: Option<Instant>,
    /// A worker was wanted and refused (a ceiling, a failed spawn): the monitor
    /// retries until the pool has what it needs (`monitor/README.md`).
    pub(crate) starved: bool,
    /// Workers the idle sentinel took out of `nr_running` (slot, item number), for
    /// the sleep monitor to adopt: it gives the count back once they run again.
    #[cfg_attr(loom, allow(dead_code))] // the sentinels and monitor are absent under loom
    pub(crate) sentinel_marks: Vec<(usize, u64)>,
    /// When a worker the monitor took out was last seen still blocked past the
    /// stall window (`monitor/README.md`, "Hysteresis").
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) long_block_at: Option<Instant>,
    /// When a worker was last found blocked without saying so (see
    /// `WorkerPool::blocks_unannounced`).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) unannounced_block_at: Option<Instant>,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    /// Workers executing an item.
    pub(crate) nr_busy: usize,
    /// Idle spinning is off until then (see `worker.rs`, "idle spin").
    pub(crate) spin_off_until: Option<Instant>,
    pub(crate) workers_created: u64,
    pub(crate) workers_culled: u64,
}

/// A pool of workers serving one CPU at one priority, or the unbound pool.
#[derive(Debug)]
pub(crate) struct WorkerPool {
    pub(crate) id: u32,
    /// `None` for an unbound pool.
    pub(crate) cpu: Option<usize>,
    pub(crate) highpri: bool,
    pub(crate) registry: &'static Registry,
    /// Workers that count as running (`nr_running`). Decremented only under the lock;
    /// incremented without it by a worker that returns from a sleep (see README).
    pub(crate) nr_running: AtomicI64,
    /// This saturation was reported to the sleep monitor (`note_saturated`);
    /// cleared when the worklist drains or the monitor or a sentinel finds the
    /// pool unsaturated, so each new saturation is reported once, not at every
    /// queued item. Written under the lock only; the idle sentinel reads it
    /// without the lock as a hint (`monitor/sentinel.rs`).
    pub(crate) saturation_noted: AtomicBool,
    /// A worker of this pool was found blocked without saying so in the last
    /// second (`monitor/README.md`, "The idle sentinel"): only then does a
    /// saturation arm the CPU's idle sentinel. Set by the monitor and the
    /// sentinel, cleared by the monitor.
    #[cfg_attr(loom, allow(dead_code))] // the monitor and sentinels are absent under loom
    pub(crate) blocks_unannounced: AtomicBool,
    locked: Mutex<PoolLocked>,
    /// Signalled when a worker exits (used by `shutdown`).
    exit_cv: Condvar,
}

impl WorkerPool {
    pub(crate) fn new(id: u32, registry: &'static Registry, cpu: Option<usize>, highpri: bool) -> Self {
        WorkerPool {
            id,
            cpu,
            highpri,
            registry,
            nr_running: AtomicI64::new(0),
            saturation_noted: AtomicBool::new(false),
            blocks_unannounced: AtomicBool::new(false),
            // Room for the marks of the CPU's sentinel, so that marking allocates nothing.
            locked: Mutex::new(PoolLocked {
                sentinel_marks: Vec::with_capacity(16),
                ..PoolLocked::default()
            }),
            exit_cv: Condvar::new(),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> PoolGuard<'_> {
        PoolGuard(Some(self.locked.lock()))
    }

    /// The saturation reported (`saturation_noted`) is over: the next one is news.
    /// Called under the lock.
    #[inline]
    pub(crate) fn saturation_over(&self) {
        self.saturation_noted.store(false, Ordering::Relaxed);
    }

    /// The lock if it is free now (the idle sentinel never waits for it).
    #[cfg(not(loom))]
    pub(crate) fn try_lock(&self) -> Option<PoolGuard<'_>> {
        self.locked.try_lock().map(|g| PoolGuard(Some(g)))
    }

    /// Bound pools are concurrency managed; unbound ones are not.
    pub(crate) fn is_bound(&self) -> bool {
        self.cpu.is_some()
    }

    pub(crate) fn nr_running(&self) -> i64 {
        self.nr_running.load(Ordering::SeqCst)
    }

    /// A short name for logs and thread names: `3`, `3H`, `u`, `uH`.
    pub(crate) fn label(&self) -> String {
        let h = if self.highpri { "H" } else { "" };
        match self.cpu {
            Some(c) => format!("{c}{h}"),
            None => format!("u{h}"),
        }
    }

    pub(crate) fn wake_all_idle(&self) {
        let g = self.lock();
        for &i in &g.idle {
            if let Some(t) = &g.workers.get(i).thread {
                t.unpark();
            }
        }
    }

    /// Retires every worker and waits for them to exit (loom models only).
    #[cfg(all(loom, test))]
    pub(crate) fn shutdown(&'static self) {
        let mut g = self.lock();
        crate::loom::ltrace!("shutdown pool {}: {} workers", self.id, g.nr_workers);
        let ids: Vec<usize> = g.workers.iter().map(|(i, _)| i).collect();
        for i in ids {
            let w = g.workers.get_mut(i);
            w.flags |= WORKER_DIE;
            if let Some(t) = &w.thread {
                t.unpark();
            }
        }
        while g.nr_workers > 0 {
            g = g.wait(&self.exit_cv);
        }
    }
}

/// The pool lock's guard. A worker kicked under the lock is unparked after the lock
/// is released: woken while we still held it, it would only find the lock taken
/// and yield the CPU back (the kernel's spinlocks disable preemption instead).
pub(crate) struct PoolGuard<'a>(Option<MutexGuard<'a, PoolLocked>>);

impl PoolGuard<'_> {
    /// Waits on `cv`, releasing the lock meanwhile (delivering a pending wake first).
    #[cfg(all(loom, test))]
    pub(crate) fn wait(mut self, cv: &Condvar) -> Self {
        let mut g = self.0.take().expect("guard present");
        let t = g.to_wake.take();
        if let Some(t) = t {
            t.unpark();
        }
        PoolGuard(Some(cv.wait(g)))
    }
}

impl Deref for PoolGuard<'_> {
    type Target = PoolLocked;
    #[inline]
    fn deref(&self) -> &PoolLocked {
        self.0.as_ref().expect("guard present")
    }
}

impl DerefMut for PoolGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut PoolLocked {
        self.0.as_mut().expect("guard present")
    }
}

impl Drop for PoolGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(mut g) = self.0.take() {
            let t = g.to_wake.take();
            drop(g);
            if let Some(t) = t {
                t.unpark();
            }
        }
    }
}

impl std::fmt::Debug for PoolGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolGuard").finish_non_exhaustive()
    }
}

// ---- the policy predicates (§5.1), all under the pool lock ----

impl PoolLocked {
    /// Is there work waiting and nobody running to take it? (`need_more_worker`)
    #[inline]
    pub(crate) fn need_more_worker(&self, pool: &WorkerPool) -> bool {
        !self.worklist.is_empty() && pool.nr_running() == 0
    }

    /// Is a worker of this pool asleep in a timed sleep that is over by now? Its
    /// thread is runnable (its timer fired), so the CPU goes to it as soon as the
    /// running worker blocks, and it counts as running the moment it runs
    /// (`hooks::worker_running`). The kernel counts a worker when it runs again
    /// too, but a woken spare costs it a context switch; here a futex wake and two
    /// switches (~20 µs), and a spare woken beside a runnable sleeper starts a
    /// second item on the CPU. So `kick_pool` lets such a sleeper cover the CPU
    /// (pool/README.md, "Runnable sleepers"). No clock read unless a timed sleep
    /// is in progress.
    fn runnable_sleeper(&self) -> bool {
        let mut now = None;
        self.workers.iter().any(|(_, w)| {
            w.sleep_due
                .filter(|_| w.shared.is_sleeping())
                .is_some_and(|due| due <= *now.get_or_insert_with(Instant::now))
        })
    }

    /// [`need_more_worker`](Self::need_more_worker), unless a runnable sleeper of
    /// a bound pool covers the CPU: what `kick_pool` and the monitor's worker
    /// creation act on.
    pub(crate) fn worker_wanted(&self, pool: &WorkerPool) -> bool {
        self.need_more_worker(pool) && !(pool.is_bound() && self.runnable_sleeper())
    }

    /// Is an idle worker in reserve, so that a blocking item can be covered? (`may_start_working`)
    #[inline]
    pub(crate) fn may_start_working(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Should a worker that just finished an item take another? (`keep_working`)
    #[inline]
    pub(crate) fn keep_working(&self, pool: &WorkerPool) -> bool {
        !self.worklist.is_empty() && pool.nr_running() <= 1
    }

    /// Is work waiting with no worker to run it and none idle? (`need_to_create_worker`)
    #[inline]
    pub(crate) fn need_to_create_worker(&self, pool: &WorkerPool) -> bool {
        self.need_more_worker(pool) && !self.may_start_working()
    }

    /// Are there more idle workers than the busy ones justify? (`too_many_workers`)
    pub(crate) fn too_many_workers(&self) -> bool {
        let nr_idle = self.idle.len() + self.manager_active as usize;
        let nr_busy = self.nr_workers.saturating_sub(nr_idle);
        nr_idle > 2 && (nr_idle - 2) * MAX_IDLE_WORKERS_RATIO >= nr_busy
    }

    /// May a worker that ran out of work spin for more? Not right after a yield
    /// showed the CPU to be contended.
    pub(crate) fn may_spin(&mut self) -> bool {
        match self.spin_off_until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                self.spin_off_until = None;
                true
            }
            None => true,
        }
    }

    /// Is nothing queued, running or being created? An idle pool may shrink to zero.
    pub(crate) fn quiescent(&self, pool: &WorkerPool) -> bool {
        self.worklist.is_empty()
            && pool.nr_running() == 0
            && self.idle.len() == self.nr_workers
            && !self.manager_active
    }

    // ---- nr_running accounting (§5.2) ----

    /// `worker_set_flags`: setting a NOT_RUNNING bit on a counted worker leaves nr_running.
    pub(crate) fn worker_set_flags(&mut self, pool: &WorkerPool, idx: usize, f: u32) {
        let w = self.workers.get_mut(idx);
        let old = w.flags;
        w.flags |= f;
        if old & WORKER_NOT_RUNNING == 0 && w.flags & WORKER_NOT_RUNNING != 0 {
            // The word went from 0 only if the worker was counted (not asleep).
            // Pairs with the SeqCst loads in the predicates (all under this lock too).
            if w.shared.cm.fetch_or(CM_NOT_RUNNING, Ordering::SeqCst) == 0 {
                pool.nr_running.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// `worker_clr_flags`: clearing the last NOT_RUNNING bit enters nr_running
    /// (unless a sleep keeps the worker out).
    pub(crate) fn worker_clr_flags(&mut self, pool: &WorkerPool, idx: usize, f: u32) {
        let w = self.workers.get_mut(idx);
        let old = w.flags;
        w.flags &= !f;
        if old & WORKER_NOT_RUNNING != 0
            && w.flags & WORKER_NOT_RUNNING == 0
            && w.shared.cm.fetch_and(!CM_NOT_RUNNING, Ordering::SeqCst) == CM_NOT_RUNNING
        {
            pool.nr_running.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// `worker_enter_idle`: push on the LIFO idle list.
    pub(crate) fn worker_enter_idle(&mut self, idx: usize) {
        let w = self.workers.get_mut(idx);
        debug_assert!(w.flags & WORKER_IDLE == 0);
        w.flags |= WORKER_IDLE;
        w.kicked = false;
        w.last_active = Instant::now();
        self.idle.push(idx);
    }

    /// `worker_leave_idle`.
    pub(crate) fn worker_leave_idle(&mut self, idx: usize) {
        let w = self.workers.get_mut(idx);
        if w.flags & WORKER_IDLE == 0 {
            return;
        }
        w.flags &= !WORKER_IDLE;
        w.kicked = false;
        if let Some(p) = self.idle.iter().rposition(|&i| i == idx) {
            self.idle.remove(p);
        }
    }

    /// Items held back by `max_active` on the inactive lists of all pwqs.
    pub(crate) fn nr_inactive(&self) -> usize {
        self.pwqs.iter().map(|(_, p)| p.inactive.len()).sum()
    }
}

/// `kick_pool`: wake the most recently idled worker if work waits and nobody runs
/// (and no runnable sleeper covers the CPU: `worker_wanted`). With no worker at
/// all (a new pool, or one shrunk to zero) create the first one.
/// Returns whether a worker was woken or created.
pub(crate) fn kick_pool(pool: &'static WorkerPool, g: &mut PoolLocked) -> bool {
    crate::loom::ltrace!(
        "kick_pool: worklist={} nr_running={} idle={:?}",
        g.worklist.len(),
        pool.nr_running(),
        g.idle
    );
    if !g.worker_wanted(pool) {
        if pool.is_bound()
            && !g.worklist.is_empty()
            && g.nr_busy > 0
            && !pool.saturation_noted.load(Ordering::Relaxed)
        {
            // Saturated: work waits while a worker counts as running (or, covered
            // by a runnable sleeper, will count in a moment). If that worker
            // blocked without saying so, only the sleep monitor can tell. (A worker
            // counted between items, in its idle spin, is about to take the work: no
            // block to find, and no reason to wake the monitor or arm a sentinel.)
            pool.saturation_noted.store(true, Ordering::Relaxed);
            crate::monitor::note_saturated(pool);
        }
        return false;
    }
    if let Some(&i) = g.idle.last() {
        let w = g.workers.get_mut(i);
        if !w.kicked {
            w.kicked = true;
            // No handle yet: its creator delivers the kick when it records one.
            if let Some(t) = w.thread.clone() {
                if let Some(earlier) = g.to_wake.replace(t) {
                    earlier.unpark();
                }
            }
        }
        return true;
    }
    if g.nr_workers == 0 && !g.manager_active {
        return manage::create_worker_locked(pool, g);
    }
    false
}

/// Takes a queued item off whatever list of `snap`'s pool holds it, keeping
/// `PENDING` for the caller (`try_to_grab_pending`). False if it moved meanwhile.
pub(crate) fn steal(work: &Work, snap: Snapshot) -> bool {
    let Some(pool) = by_id(snap.pool_id()) else { return false };
    let mut g = pool.lock();
    let cur = work.state().load();
    if !(cur.queued() && cur.pool_id() == pool.id) {
        return false;
    }
    let key = work.key();
    let slot = cur.pwq_slot();
    let take = |q: &mut VecDeque<Entry>| q.iter().position(|e| e.is_work(key)).and_then(|i| q.remove(i));
    // Active items are on the worklist or a worker's scheduled list; the others
    // wait on their pwq's inactive list (the word does not say which).
    let active =
        take(&mut g.worklist).or_else(|| g.workers.iter_mut().find_map(|(_, w)| take(&mut w.scheduled)));
    let (entry, active) = match active {
        Some(e) => (Some(e), true),
        None => (take(&mut g.pwqs.get_mut(slot as usize).inactive), false),
    };
    let Some(entry) = entry else {
        // The word says queued on this pool, under its lock: a broken invariant.
        crate::abort_on_bug("queued work item missing from its pool's lists");
    };
    work.state().set_offq_keep_pending(pool.id);
    crate::pwq::dec_nr_in_flight(pool, &mut g, slot, entry.color, active);
    drop(g);
    drop(entry);
    true
}

/// Whether a worker of the pool `pool_id` executes `work` (`work_busy` RUNNING).
pub(crate) fn is_running(work: &Work, pool_id: u32) -> bool {
    work.running_on(pool_id).is_some()
}

/// If the calling thread executes an item of a pwq with `max_active <= 1` and `work`
/// is queued inactive behind it on that pwq, the name of its workqueue: waiting
/// for `work` would wait for ourselves.
pub(crate) fn blocked_behind_current(work: &Work, snap: Snapshot) -> Option<String> {
    let me = crate::current::worker()?;
    if me.pool.id != snap.pool_id() {
        return None;
    }
    let g = me.pool.lock();
    let cur = work.state().load();
    if !(cur.queued() && cur.pool_id() == me.pool.id) {
        return None;
    }
    let running = g.workers.get(me.idx).current?;
    let pwq = g.pwqs.get(running.pwq as usize);
    let key = work.key();
    (running.pwq == cur.pwq_slot() && pwq.max_active <= 1 && pwq.inactive.iter().any(|e| e.is_work(key)))
        .then(|| pwq.wq.name.to_string())
}
