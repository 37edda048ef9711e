//! The pool itself: its locked state, its workers' slots, the lock's guard.
//!
//! Field legend (the kernel's, `kernel/workqueue.c`; `pool/README.md` has the
//! whole table):
//! - `I:` set when the object is made, read-only after;
//! - `L:` the pool lock: read and written only with it held (everything inside
//!   [`PoolLocked`], which the lock guards);
//! - `K:` written only by the worker itself, with the pool lock held; read by
//!   others with the lock held;
//! - `A:` an atomic, read anywhere; the field says who writes it and how.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;

use super::cm::WorkerShared;
use crate::context::Context;
use crate::platform::loom::{
    thread::Thread, AtomicBool, AtomicI64, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering,
};
use crate::platform::slab::Slab;
use crate::pwq::{Entry, PwqState};
use crate::workqueue::WqCore;

// Worker flags (`enum worker_flags`), in `WorkerSlot::flags` (L).
/// The worker must exit.
pub(crate) const WORKER_DIE: u32 = 1 << 1;
/// On the idle list.
pub(crate) const WORKER_IDLE: u32 = 1 << 2;
/// Between items: not yet (or no longer) processing.
pub(crate) const WORKER_PREP: u32 = 1 << 3;
/// Running an item of a `CPU_INTENSIVE` queue, or found hogging the CPU.
pub(crate) const WORKER_CPU_INTENSIVE: u32 = 1 << 6;
/// Any of these takes a worker out of `nr_running` (`WORKER_NOT_RUNNING`). The
/// kernel's `WORKER_UNBOUND` has no counterpart: every pool here, unbound ones
/// included, is concurrency managed (`README.md`, "Unbound pools").
pub(crate) const WORKER_NOT_RUNNING: u32 = WORKER_PREP | WORKER_CPU_INTENSIVE;

/// The item a worker executes: its pwq (the kernel's `current_pwq`; the work
/// item itself records its worker, `WorkInner::running`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentItem {
    pub(crate) pwq: u32,
}

/// A worker as the pool sees it. L: every field, with the pool lock.
#[derive(Debug)]
pub(crate) struct WorkerSlot {
    /// I: what the worker shares outside the lock.
    pub(crate) shared: Arc<WorkerShared>,
    /// `None` until the creator has spawned the thread.
    pub(crate) thread: Option<Thread>,
    /// `WORKER_*`: K, but for `WORKER_CPU_INTENSIVE`, which the monitor may set
    /// (`cm::monitor_cpu_intensive`), and `WORKER_DIE`.
    pub(crate) flags: u32,
    /// Woken by `kick_pool` (not by a timeout or a spurious wake-up).
    pub(crate) kicked: bool,
    /// K: the item it executes.
    pub(crate) current: Option<CurrentItem>,
    /// K: bumped at the start of each item: the sleep monitor's progress
    /// sequence (a worker whose number has not moved for a tick is a suspect).
    pub(crate) progress: u64,
    /// K: while items are timed (`context::counters::accounting`), the item
    /// number (`progress`), the start and the id (`Entry::id`) of the last
    /// item timed; an older number means the item running now was not timed.
    pub(crate) started: Option<(u64, Instant, usize)>,
    /// Items assigned to this worker: collisions with the item it runs.
    pub(crate) scheduled: VecDeque<Entry>,
    pub(crate) last_active: Instant,
    /// Set by each transition into `CM_SLEEPING`: when the sleep is certainly
    /// over, for a timed sleep (`cmwq::sleep`: its deadline plus the thread's
    /// timer slack plus a wake-up allowance); `None` for any other block.
    /// Meaningful only while the worker is asleep (`runnable_sleeper`).
    pub(crate) sleep_due: Option<Instant>,
}

impl WorkerSlot {
    /// A slot for a worker (or an attached rescuer) with these `WORKER_*` flags,
    /// its thread not recorded yet, and room for `scheduled` collisions.
    pub(crate) fn new(shared: Arc<WorkerShared>, flags: u32, kicked: bool, scheduled: usize) -> WorkerSlot {
        WorkerSlot {
            shared,
            thread: None,
            flags,
            kicked,
            current: None,
            progress: 0,
            started: None,
            scheduled: VecDeque::with_capacity(scheduled),
            last_active: Instant::now(),
            sleep_due: None,
        }
    }
}

/// Pool state behind the pool lock (the kernel's `L:` fields).
#[derive(Debug, Default)]
pub(crate) struct PoolLocked {
    /// Active items waiting for a worker, in order.
    pub(crate) worklist: VecDeque<Entry>,
    pub(crate) workers: Slab<WorkerSlot>,
    pub(crate) nr_workers: usize,
    /// Idle workers; the last one idled most recently (LIFO, as the kernel's list head).
    pub(crate) idle: Vec<usize>,
    /// A worker kicked under the lock, unparked when the lock is released, so the
    /// woken thread does not find the lock held (see [`PoolGuard`]).
    pub(crate) to_wake: Option<Thread>,
    /// The pool_workqueues attached to this pool (their state is `L:` too).
    pub(crate) pwqs: Slab<PwqState>,
    /// A BH pool's context: its slot, once started (`bh.rs`).
    pub(crate) bh_ctx: Option<usize>,
    /// A BH pool: the item (the context's `progress` number) last reported
    /// blocking, so the sleep monitor does not report an item twice, nor one
    /// whose blocks were announced.
    pub(crate) bh_reported: Option<u64>,
    /// One worker at a time creates workers (`POOL_MANAGER_ACTIVE`).
    pub(crate) manager_active: bool,
    /// After a failed thread creation, no new attempt before this (`CREATE_COOLDOWN`).
    pub(crate) create_cooldown_until: Option<Instant>,
    /// A worker was wanted and refused (a ceiling, a failed spawn): the monitor
    /// retries until the pool has what it needs (`monitor/README.md`).
    pub(crate) starved: bool,
    /// The mayday timer (`mayday.rs`): armed by a refused creation while the
    /// pool serves a `MEM_RECLAIM` queue, fired by the sleep monitor.
    pub(crate) mayday: super::mayday::MaydayTimer,
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
    /// When a worker of this pool, an unbound one of several CPUs, last announced
    /// a block (see `WorkerPool::blocks_announced`).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) announced_block_at: Option<Instant>,
    /// Items completed. `completed + nr_busy` is the number of items started,
    /// which the stall watchdog reads as the pool's progress (`monitor/watchdog/README.md`).
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    /// Workers executing an item.
    pub(crate) nr_busy: usize,
    /// Counted workers in their idle spin, about to look at the worklist again:
    /// that many waiting items need no other worker woken (`worker_wanted`).
    pub(crate) nr_spinning: usize,
    /// Idle spinning is off until then (`worker.rs`, "idle spin").
    pub(crate) spin_off_until: Option<Instant>,
    /// Workers running a batch (`batch.rs`): each keeps `HELD_BACK` waiting
    /// items from waking another worker (`worker_wanted`).
    pub(crate) nr_batching: usize,
    /// The last batch ran its closures within `BATCH_TIME` (`batch.rs`): only
    /// then does a batch hold back wake-ups.
    pub(crate) items_short: bool,
    pub(crate) workers_created: u64,
    /// The most workers it had at once.
    pub(crate) peak_workers: usize,
    pub(crate) workers_culled: u64,
    /// Freed pwqs, dropped once the lock is released: the last reference to a
    /// workqueue may go with one, and its drop releases unbound pools (which
    /// takes their locks).
    pub(crate) to_free: Vec<PwqState>,
    /// Node counts with a slot freed here for a pending pwq of another pool:
    /// handed over once the lock is released (`workqueue/nr_active.rs`).
    pub(crate) to_activate: Vec<(Arc<WqCore>, u16)>,
}

/// A pool of workers serving one CPU at one priority, or the unbound pool.
#[derive(Debug)]
pub(crate) struct WorkerPool {
    /// I: its index in the pool table; work items record it.
    pub(crate) id: u32,
    /// I: `None` for an unbound pool.
    pub(crate) cpu: Option<usize>,
    /// I.
    pub(crate) highpri: bool,
    /// I: a BH pool (`POOL_BH`): served by its one BH context (`bh.rs`), never
    /// concurrency managed, never given a second worker.
    pub(crate) bh: bool,
    /// I: the CPUs of its pod, ascending (`[cpu]` for a per-CPU pool).
    pub(crate) pod: Box<[usize]>,
    /// I: the CPUs its workers may run on: `pod` for a per-CPU or strict pool,
    /// the workqueue's cpumask for a non-strict unbound pool.
    pub(crate) affinity: Box<[usize]>,
    /// I: the NUMA node of the pod, if it lies in one (`pool->node`).
    pub(crate) node: Option<usize>,
    /// A: the worklist's length, stored under the lock at each change and read
    /// without it as a hint of how busy the pool is (where to put unbound work,
    /// `workqueue/unbound.rs`) and by spinning workers (`worker.rs`); relaxed.
    /// On a cache line of its own: the producer stores it at every item while
    /// the spinners of an unbound pool, on other CPUs, read it at every yield,
    /// and sharing a line with the pool's other fields cost the default queue
    /// about 10% of its noop throughput from one unpinned producer (`cmwq bench
    /// --only noop`, 479 against 432 ns an item, medians of 7, interleaved).
    pub(crate) queued: crossbeam_utils::CachePadded<AtomicUsize>,
    /// A: workqueues whose pwq tables use this unbound pool (the pool's
    /// `refcnt`); written under the registry's unbound-pool lock; relaxed.
    pub(crate) refs: AtomicUsize,
    /// I: the nice value its attributes ask for its workers.
    pub(crate) nice: i32,
    /// A: the nice value its workers run at: `nice`, or the process's own where
    /// raising a thread's priority that far was refused (`manage::setup_thread`,
    /// each new worker stores what it got); relaxed, a report.
    pub(crate) nice_applied: std::sync::atomic::AtomicI32,
    /// I: how many workers may count as running before work waits for one of
    /// them (1 for a per-CPU pool; the pod's CPUs for an unbound pool).
    pub(crate) concurrency: i64,
    /// I: the context its instance shares.
    pub(crate) ctx: &'static Context,
    /// A: workers that count as running (`nr_running`). Decremented only under
    /// the lock; incremented without it by a worker that returns from a sleep
    /// (`cm.rs` says why every access may be relaxed).
    pub(crate) nr_running: AtomicI64,
    /// A: this saturation was reported to the sleep monitor (`kick_pool`);
    /// cleared when the worklist drains or the monitor or a sentinel finds the
    /// pool unsaturated, so each new saturation is reported once, not at every
    /// queued item. Written under the lock only; the idle sentinel reads it
    /// without the lock as a hint (`monitor/sentinel.rs`), so relaxed.
    pub(crate) saturation_noted: AtomicBool,
    /// A: a worker of this pool was found blocked without saying so in the last
    /// second (`monitor/README.md`, "The idle sentinel"): only then does a
    /// saturation arm the CPU's idle sentinel. Written under the lock (set by
    /// the monitor and the sentinel, cleared by the monitor), read under it by
    /// `kick_pool` and without it by the sentinel as a hint
    /// ([`sentinel_covers`](Self::sentinel_covers)); relaxed.
    #[cfg_attr(loom, allow(dead_code))] // the monitor and sentinels are absent under loom
    pub(crate) blocks_unannounced: AtomicBool,
    /// A: a worker of this pool, an unbound one of several CPUs, announced a
    /// block in the last second (`cm::worker_sleeping`): a blocking pool, whose
    /// woken and waking workers the scheduler may stack on one CPU of the pod
    /// while another idles, so its saturations arm the sentinels too, for the
    /// waiting rule (`monitor/README.md`, "Waiting for a CPU counts as
    /// stalled"). Written under the lock (set by the sleeping worker, cleared by
    /// the monitor), read like `blocks_unannounced`; relaxed.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) blocks_announced: AtomicBool,
    locked: Mutex<PoolLocked>,
    /// Signalled when a worker exits (used by `shutdown`).
    exit_cv: Condvar,
}

impl WorkerPool {
    /// The normal or highpri pool of `cpu`.
    pub(crate) fn new_percpu(id: u32, ctx: &'static Context, cpu: usize, highpri: bool) -> Self {
        let nice = if highpri { super::manage::HIGHPRI_NICE } else { ctx.topo.base_nice };
        Self::new(id, ctx, Some(cpu), (Box::new([cpu]), Box::new([cpu])), nice, highpri)
    }

    /// The normal or highpri BH pool of `cpu` (`bh_worker_pools`): one context,
    /// pinned to `cpu`, runs its items in queueing order (`bh.rs`). `nice` is
    /// what the context asks for; `debug::PoolSnapshot` shows it.
    pub(crate) fn new_bh(id: u32, ctx: &'static Context, cpu: usize, highpri: bool) -> Self {
        let mut pool = Self::new(
            id,
            ctx,
            Some(cpu),
            (Box::new([cpu]), Box::new([cpu])),
            super::manage::HIGHPRI_NICE,
            highpri,
        );
        pool.bh = true;
        pool
    }

    /// An unbound pool for one pod: it lets as many workers run at once as the
    /// pod has CPUs (`README.md`, "Unbound pools").
    pub(crate) fn new_unbound(
        id: u32,
        ctx: &'static Context,
        pod: Box<[usize]>,
        affinity: Box<[usize]>,
        nice: i32,
    ) -> Self {
        Self::new(id, ctx, None, (pod, affinity), nice, nice <= super::manage::HIGHPRI_NICE)
    }

    fn new(
        id: u32,
        ctx: &'static Context,
        cpu: Option<usize>,
        (pod, affinity): (Box<[usize]>, Box<[usize]>),
        nice: i32,
        highpri: bool,
    ) -> Self {
        // The node containing the pod, if one does (`pool->node`).
        let node = pod
            .first()
            .map(|&c| ctx.topo.cpu_node(c))
            .filter(|&n| pod.iter().all(|&c| ctx.topo.cpu_node(c) == n));
        WorkerPool {
            id,
            cpu,
            highpri,
            bh: false,
            concurrency: pod.len().max(1) as i64,
            pod,
            affinity,
            node,
            queued: crossbeam_utils::CachePadded::new(AtomicUsize::new(0)),
            refs: AtomicUsize::new(0),
            nice,
            nice_applied: std::sync::atomic::AtomicI32::new(nice),
            ctx,
            nr_running: AtomicI64::new(0),
            saturation_noted: AtomicBool::new(false),
            blocks_unannounced: AtomicBool::new(false),
            blocks_announced: AtomicBool::new(false),
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

    /// The lock if it is free now (the idle sentinel never waits for it).
    #[cfg(not(loom))]
    pub(crate) fn try_lock(&self) -> Option<PoolGuard<'_>> {
        self.locked.try_lock().map(|g| PoolGuard(Some(g)))
    }

    /// The saturation reported (`saturation_noted`) is over: the next one is news.
    /// Called under the lock.
    #[inline]
    pub(crate) fn saturation_over(&self) {
        self.saturation_noted.store(false, Ordering::Relaxed);
    }

    /// A block of a worker of this pool was seen at `now`, announced or not:
    /// the pool remembers it for a while (`blocks_announced`,
    /// `blocks_unannounced`; [`forget_blocks`](Self::forget_blocks)). The flag
    /// is stored only when it changes, so a storm of blocks writes no shared
    /// line. Returns whether the pool remembered no such block before. Called
    /// under the lock.
    #[cfg(not(loom))]
    pub(crate) fn remember_block(&self, g: &mut PoolLocked, announced: bool, now: Instant) -> bool {
        let (flag, at) = if announced {
            (&self.blocks_announced, &mut g.announced_block_at)
        } else {
            (&self.blocks_unannounced, &mut g.unannounced_block_at)
        };
        *at = Some(now);
        let was_off = !flag.load(Ordering::Relaxed);
        if was_off {
            flag.store(true, Ordering::Relaxed);
        }
        was_off
    }

    /// Forgets the blocks of each kind whose last one is `memory` old (the
    /// monitor's tick). Called under the lock.
    #[cfg(not(loom))]
    pub(crate) fn forget_blocks(&self, g: &PoolLocked, memory: std::time::Duration) {
        for (flag, at) in [
            (&self.blocks_unannounced, g.unannounced_block_at),
            (&self.blocks_announced, g.announced_block_at),
        ] {
            if flag.load(Ordering::Relaxed) && at.is_none_or(|at| at.elapsed() >= memory) {
                flag.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Whether this pool's saturations arm its CPUs' idle sentinels, and whether
    /// a sentinel counts a worker of it that waits for a CPU as stalled: only a
    /// pool that blocked unannounced lately, an unbound pool of several CPUs that
    /// blocked at all lately (or every pool, while the monitor's ticks look for
    /// no blocks). The others, CPU-bound or per-CPU pools announcing their
    /// blocks, pay nothing for the sentinels and keep exactly as many items
    /// running as they count (`monitor/README.md`, "The idle sentinel").
    #[inline]
    pub(crate) fn sentinel_covers(&self) -> bool {
        self.blocks_unannounced.load(Ordering::Relaxed)
            || self.blocks_announced.load(Ordering::Relaxed)
            || !self.ctx.config.monitor_ticks()
    }

    /// A per-CPU pool (the kernel's bound pools); every pool is concurrency
    /// managed all the same.
    pub(crate) fn is_bound(&self) -> bool {
        self.cpu.is_some()
    }

    /// Stores the worklist's length for [`queued`](Self::queued) readers, after
    /// an item left it. Caller holds the lock.
    #[inline]
    pub(crate) fn note_queued(&self, g: &PoolLocked) {
        self.queued.store(g.worklist.len(), Ordering::Relaxed);
    }

    /// [`note_queued`](Self::note_queued) after a push; if the push made the
    /// worklist non-empty (`was_empty`), makes sure the stall watchdog is awake
    /// while work waits (one relaxed load while it is). A push onto a worklist
    /// that was not empty need not: its watchdog has not parked since that
    /// worklist's first push (`monitor/watchdog/README.md`, "Arming"). Caller
    /// holds the lock.
    #[inline]
    pub(crate) fn note_pushed(&self, g: &PoolLocked, was_empty: bool) {
        self.note_queued(g);
        if was_empty {
            self.ctx.watchdog.arm();
        }
    }

    /// How busy the pool is, without its lock: workers running plus items
    /// waiting, a hint.
    pub(crate) fn load(&self) -> usize {
        self.nr_running().max(0) as usize + self.queued.load(Ordering::Relaxed)
    }

    /// An unbound pool that no workqueue uses (a hint: a new user may come).
    #[inline]
    pub(crate) fn is_unused(&self) -> bool {
        self.cpu.is_none() && self.refs.load(Ordering::Relaxed) == 0
    }

    /// Its last workqueue left it (`put_unbound_pool`): idle workers exit now
    /// rather than after the idle timeout. A worker busy with a last item exits
    /// when it goes idle and finds the pool quiescent; one that went idle while
    /// another was still on its way out is woken by that one's exit
    /// (`manage::worker_exit`).
    pub(crate) fn retire_idle(&self) {
        let mut g = self.lock();
        if !g.worklist.is_empty() || !g.pwqs.is_empty() {
            return;
        }
        // A worker whose thread is not recorded yet (its creator is between the
        // spawn and `record_thread`) must not exit before it is: it stays, and
        // leaves by itself once recorded (`idle_wait`, the unused pool).
        let idle = std::mem::take(&mut g.idle);
        for i in idle {
            let w = g.workers.get_mut(i);
            let Some(t) = w.thread.clone() else {
                g.idle.push(i);
                continue;
            };
            w.flags &= !WORKER_IDLE;
            w.flags |= WORKER_DIE;
            g.workers_culled += 1;
            t.unpark();
        }
    }

    /// `nr_running`: exact under the lock but for increments in flight, which
    /// can only make a predicate more eager (`cm.rs`).
    #[inline]
    pub(crate) fn nr_running(&self) -> i64 {
        self.nr_running.load(Ordering::Relaxed)
    }

    /// A short name for logs and thread names, the kernel's: `3`, `3H` for a
    /// per-CPU pool, `bh3`, `bh3H` for a BH pool, `u7` (`u` and the pool id)
    /// for an unbound one.
    pub(crate) fn label(&self) -> String {
        let h = if self.highpri { "H" } else { "" };
        match self.cpu {
            Some(c) if self.bh => format!("bh{c}{h}"),
            Some(c) => format!("{c}{h}"),
            None => format!("u{}", self.id),
        }
    }

    /// Lets every idle worker re-check its timeout (after the timeout changed).
    pub(crate) fn wake_all_idle(&self) {
        let g = self.lock();
        for &i in &g.idle {
            if let Some(t) = &g.workers.get(i).thread {
                t.unpark();
            }
        }
    }

    /// Signals that a worker exited. Caller holds the lock.
    pub(crate) fn worker_exited(&self) {
        self.exit_cv.notify_all();
    }

    /// Retires every worker and waits for them to exit (loom models only).
    #[cfg(all(loom, test))]
    pub(crate) fn shutdown(&'static self) {
        let mut g = self.lock();
        crate::platform::loom::ltrace!("shutdown pool {}: {} workers", self.id, g.nr_workers);
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

impl WorkerSlot {
    /// Whether it runs outside concurrency management as CPU-intensive.
    pub(crate) fn is_cpu_intensive(&self) -> bool {
        self.flags & WORKER_CPU_INTENSIVE != 0
    }
}

impl PoolLocked {
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
            // Freed pwqs and handed-over node slots are rare: the common release
            // tests two lengths, and the lists' walk stays out of line.
            if g.to_free.is_empty() && g.to_activate.is_empty() {
                drop(g);
                if let Some(t) = t {
                    t.unpark();
                }
            } else {
                release_deferred(g, t);
            }
        }
    }
}

/// Releases the lock, then wakes `t`, hands the node slots over and lets the
/// freed pwqs go (see [`PoolLocked::to_free`] and [`PoolLocked::to_activate`]).
#[cold]
#[inline(never)]
fn release_deferred(mut g: MutexGuard<'_, PoolLocked>, t: Option<Thread>) {
    let freed = std::mem::take(&mut g.to_free);
    let activate = std::mem::take(&mut g.to_activate);
    drop(g);
    if let Some(t) = t {
        t.unpark();
    }
    for (wq, node) in activate {
        wq.node_activate_pending(node);
    }
    for p in freed {
        p.wq.pwq_freed();
    }
}

impl std::fmt::Debug for PoolGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolGuard").finish_non_exhaustive()
    }
}
