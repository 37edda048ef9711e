//! The worker loop (`worker_thread`) and the execution of one item
//! (`process_one_work`), following the kernel's structure line by line.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::batch;
use super::cm::{worker_running, WorkerShared};
use super::manage;
use super::policy::kick_pool;
use super::worker_pool::{
    CurrentItem, PoolGuard, PoolLocked, WorkerPool, WORKER_CPU_INTENSIVE, WORKER_DIE, WORKER_PREP,
};
use crate::context::counters::accounting;
use crate::current::Item;
use crate::platform::bug::AbortOnPanic;
use crate::platform::log;
use crate::platform::loom::{ltrace, Ordering};
use crate::pwq::{self, Entry, Task};
use crate::work::{Spawned, Work};
use crate::workqueue::WqFlags;

/// The previous item's completion, published right after the lock is next released:
/// flush waiters are woken and the handle dropped outside the pool lock (a user
/// destructor must never run under it), without an extra lock round trip per item.
#[derive(Default)]
pub(super) struct Deferred(pub(super) Option<(Work, u64, &'static WorkerPool)>);

impl Deferred {
    pub(super) fn is_pending(&self) -> bool {
        self.0.is_some()
    }

    pub(super) fn release(&mut self) {
        if let Some((work, seq, pool)) = self.0.take() {
            work.seq_finish(seq);
            // Usually another handle lives on and nothing is dropped here: a
            // worker that held the last one dropped it already, where the
            // workqueue is known (`process_one_work`). If the other holder let go
            // meanwhile, the closure goes here; a panic in its `Drop` is counted
            // and logged with the pool, the queue no longer being at hand.
            let panics = drop_contained(work);
            if panics > 0 {
                for _ in 0..panics {
                    pool.ctx.counters.count_panic();
                }
                log::error!(
                    pool = log::display(pool.label()),
                    panics = panics,
                    "cmwq: a work item's closure panicked when the worker dropped its last handle"
                );
            }
        }
    }
}

/// How many panics in a row (a payload whose `Drop` panics with a payload whose
/// `Drop` panics, ...) [`drop_contained`] catches before it leaks the last one.
const MAX_NESTED_DROP_PANICS: u32 = 8;

/// Drops `x` where a panic in its destructor cannot reach the worker loop
/// (which would abort the process, blaming cmwq): the payload of such a panic is
/// dropped the same way, and after [`MAX_NESTED_DROP_PANICS`] leaked. Returns
/// how many panics it caught.
fn drop_contained<T>(x: T) -> u32 {
    let mut panics = 0;
    let mut next = catch_unwind(AssertUnwindSafe(move || drop(x))).err();
    while let Some(payload) = next.take() {
        panics += 1;
        if panics >= MAX_NESTED_DROP_PANICS {
            std::mem::forget(payload);
            break;
        }
        next = catch_unwind(AssertUnwindSafe(move || drop(payload))).err();
    }
    panics
}

pub(super) type Guard = PoolGuard<'static>;

/// Rounds of `yield` a worker spends looking for more work before it idles.
const IDLE_SPINS: u32 = if cfg!(loom) { 0 } else { 8 };
/// A yield that takes longer than this and brings no work, or one that takes a
/// scheduler time slice (`SPIN_YIELD_SLICE`), means the CPU is contended by other
/// processes ...
const SPIN_YIELD_MAX: std::time::Duration = std::time::Duration::from_micros(50);
const SPIN_YIELD_SLICE: std::time::Duration = std::time::Duration::from_micros(500);
/// ... and the pool stops spinning for this long.
const SPIN_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// Sets up the calling thread as the worker `me` of `pool`: its probe for the
/// sleep monitor (when the monitor runs) and its thread id, recorded before it
/// takes any item, and `current`'s record of it. The BH context does the same.
pub(super) fn enter(pool: &WorkerPool, me: &Arc<WorkerShared>) {
    #[cfg(not(loom))]
    {
        if pool.ctx.config.monitor() {
            let _ = me.probe.set(crate::platform::sys::probe::Probe::current());
        }
        let _ = me.tid.set(crate::platform::sys::gettid());
    }
    #[cfg(loom)]
    let _ = pool;
    crate::current::enter_worker(me.clone());
}

/// The body of every worker thread.
pub(super) fn worker_thread(pool: &'static WorkerPool, me: Arc<WorkerShared>) {
    let _abort = AbortOnPanic;
    manage::setup_thread(pool);
    enter(pool, &me);
    let idx = me.idx;
    let mut deferred = Deferred::default();
    let mut g = pool.lock();
    // A new reserve waits for its first kick; the first worker of a pool is kicked.
    g = manage::idle_wait(pool, g, idx, &mut deferred);
    loop {
        // woke_up:
        ltrace!("W{idx}: woke_up nr_running={} worklist={}", pool.nr_running(), g.worklist.len());
        if g.workers.get(idx).flags & WORKER_DIE != 0 {
            break;
        }
        g.worker_leave_idle(idx);
        // recheck:
        loop {
            if !g.need_more_worker(pool) {
                break;
            }
            // Start only with an idle worker in reserve, so a block can be covered
            // at once. If another worker manages already, go on anyway.
            if !g.may_start_working() {
                let (ng, rechecked) = manage::manage_workers(pool, g);
                g = ng;
                if rechecked {
                    continue;
                }
            }
            g.worker_clr_flags(pool, idx, WORKER_PREP);
            ltrace!("W{idx}: processing, nr_running={}", pool.nr_running());
            let mut spins = 0;
            loop {
                if let Some(e) = g.worklist.pop_front() {
                    pool.note_queued(&g);
                    match g.worklist.front() {
                        Some(next) => next.prefetch(),
                        None => pool.saturation_over(),
                    }
                    if let Some(e) = assign_work(pool, &mut g, e, idx) {
                        g = if batch::may_batch(pool, &g, &e) {
                            batch::process_batch(pool, g, &me, e, &mut deferred)
                        } else {
                            process_one_work(pool, g, idx, e, &mut deferred)
                        };
                        g = process_scheduled_works(pool, g, idx, &mut deferred);
                    }
                    spins = 0;
                }
                if g.keep_working(pool) {
                    continue;
                }
                // Out of work: yield a few rounds before going idle. We still count
                // as running, so a producer on this CPU queues without waking
                // anyone, and we take its items in a batch instead of being woken
                // (and preempting it) once per item. In an unbound pool the item
                // a spinner will take wakes nobody either (`nr_spinning`).
                if spins < IDLE_SPINS
                    && g.worklist.is_empty()
                    && pool.nr_running() <= pool.concurrency
                    && g.may_spin()
                    // Another worker's batch of short closures takes what comes.
                    && g.held_back() == 0
                {
                    g.nr_spinning += 1;
                    drop(g);
                    deferred.release();
                    // Yield until the worklist has something (the lock-free hint;
                    // the lock is taken again only then, or when the spin is over).
                    let mut contended = false;
                    while spins < IDLE_SPINS {
                        spins += 1;
                        let t = std::time::Instant::now();
                        crate::platform::loom::thread::yield_now();
                        let took = t.elapsed();
                        let work = pool.queued.load(Ordering::Relaxed) > 0;
                        if took > SPIN_YIELD_SLICE || (took > SPIN_YIELD_MAX && !work) {
                            // The CPU went to another process for a time slice, not
                            // (only) to a producer of ours: spinning would delay the
                            // next item.
                            contended = true;
                            break;
                        }
                        if work {
                            break;
                        }
                    }
                    g = pool.lock();
                    g.nr_spinning -= 1;
                    if contended {
                        g.spin_off_until = Some(std::time::Instant::now() + SPIN_BACKOFF);
                    }
                    continue;
                }
                break;
            }
            g.worker_set_flags(pool, idx, WORKER_PREP);
            break;
        }
        // sleep:
        ltrace!("W{idx}: idle nr_running={} worklist={}", pool.nr_running(), g.worklist.len());
        g.worker_enter_idle(idx);
        g = manage::idle_wait(pool, g, idx, &mut deferred);
    }
    manage::worker_exit(pool, g, idx);
    deferred.release();
    crate::current::leave_worker();
}

/// `assign_work`: take `e` for this worker unless another worker of the pool
/// executes the same item; then `e` goes behind it on that worker's scheduled list,
/// which keeps the item non-reentrant. Returns the entry if this worker got it.
///
/// The kernel puts its own items on its scheduled list too and then processes the
/// list; ours is always empty here (a worker drains it before it takes more work,
/// and only an item running on it makes others add to it), so the entry is handed
/// back to run at once, and the list is drained after it.
pub(super) fn assign_work(pool: &WorkerPool, g: &mut PoolLocked, e: Entry, idx: usize) -> Option<Entry> {
    // A spawned closure runs once: it never collides with itself.
    if let Some(other) = match &e.task {
        Task::Work(work) => work.running_on(pool.id),
        Task::Spawned(_) => None,
    } {
        if other != idx {
            g.workers.get_mut(other).scheduled.push_back(e);
            return None;
        }
    }
    debug_assert!(
        g.workers.get(idx).scheduled.is_empty(),
        "a worker takes work with its scheduled list drained"
    );
    Some(e)
}

/// `process_scheduled_works`: the list may grow while we run. Usually it is
/// empty (only a collision fills it), so the test is inline and the loop is not.
#[inline(always)]
pub(super) fn process_scheduled_works(
    pool: &'static WorkerPool,
    g: Guard,
    idx: usize,
    d: &mut Deferred,
) -> Guard {
    if g.workers.get(idx).scheduled.is_empty() {
        return g;
    }
    process_scheduled_slow(pool, g, idx, d)
}

#[cold]
#[inline(never)]
fn process_scheduled_slow(pool: &'static WorkerPool, mut g: Guard, idx: usize, d: &mut Deferred) -> Guard {
    while let Some(e) = g.workers.get_mut(idx).scheduled.pop_front() {
        g = process_one_work(pool, g, idx, e, d);
    }
    g
}

/// `process_one_work` (the rescuer runs items through it too, `rescuer.rs`).
///
/// The common case (no panic, another handle alive or a spawned closure, nobody
/// timing or tracing) takes one branch for each of those; their work is out of
/// line (`settle_panics`, `Panics::report`, the events' `cold` bodies).
pub(super) fn process_one_work(
    pool: &'static WorkerPool,
    mut g: Guard,
    idx: usize,
    e: Entry,
    d: &mut Deferred,
) -> Guard {
    let Entry { task, pwq: slot, color } = e;
    if let Task::Work(work) = &task {
        work.set_running_on(pool.id, idx);
    }
    // Timed only while someone looks (`context::counters::accounting`).
    let timed = accounting();
    let wq_ptr = begin_item(pool, &mut g, idx, slot);
    // A spawned closure's only instance is number 1, for the header that
    // `current_work()` may make for it.
    let (item, seq, spawned, id) = match task {
        Task::Work(work) => {
            let seq = work.seq_start();
            work.state().clear_pending_for_execution(pool.id);
            ltrace!("W{idx}: run item {:#x}", work.key());
            let id = work.key();
            (Item::work(work, wq_ptr, pool.id, idx), seq, None, id)
        }
        Task::Spawned(f) => {
            let id = f.data_ptr() as usize;
            (Item::spawned(wq_ptr, pool.id, idx), 1, Some(f), id)
        }
    };
    if timed {
        let me = g.workers.get_mut(idx);
        me.started = Some((me.progress, std::time::Instant::now(), id));
    }
    drop(g);

    d.release();
    // SAFETY: `wq_ptr` comes from the `Arc<WqCore>` of the pwq in `slot`, and
    // that pwq is not freed while it has an item in flight (`pwq::free` runs only
    // at `total_in_flight() == 0`); this item stays in flight until
    // `dec_nr_in_flight` below, after the last use of `wq`.
    let wq: &crate::workqueue::WqCore = unsafe { &*wq_ptr };
    let cpu0 = if timed { crate::platform::sys::thread_cpu_time() } else { std::time::Duration::ZERO };
    let (result, item) = execute(pool, idx, wq, id, item, spawned);
    let cpu_ns = if timed { cpu_ns_since(cpu0) } else { 0 };
    let mut work = item.into_work();
    // Panics are settled before the lock (`settle_panics`); so is the closure
    // when this worker holds the item's last handle.
    let panics = if result.is_err() || work.as_ref().is_some_and(Work::is_last_handle) {
        settle_panics(result, &mut work, seq)
    } else {
        None
    };

    let mut g = pool.lock();
    end_item(pool, &mut g, idx, work.as_ref());
    g.completed += 1;
    let stats = &mut g.pwqs.get_mut(slot as usize).stats;
    stats.completed += 1;
    stats.cpu_time_ns += cpu_ns;
    if let Some(panics) = panics {
        panics.account(pool, &mut g, slot);
    }
    pwq::dec_nr_in_flight(pool, &mut g, slot, color, true);
    d.0 = work.map(|work| (work, seq, pool));
    g
}

/// The worker `idx` starts executing an item of pwq `slot` (one item, or a
/// batch of spawned closures: `batch.rs`): its current item, the pool's busy
/// count, and the kick for the rest of the worklist. Returns the pwq's
/// workqueue, which the caller may use while the item is in flight.
#[inline]
pub(super) fn begin_item(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    idx: usize,
    slot: u32,
) -> *const crate::workqueue::WqCore {
    let me = g.workers.get_mut(idx);
    me.current = Some(CurrentItem { pwq: slot });
    me.progress += 1;
    g.nr_busy += 1;
    let pwq = g.pwqs.get_mut(slot as usize);
    pwq.stats.started += 1;
    let wq_ptr = Arc::as_ptr(&pwq.wq);
    // Outside concurrency management; not counted in `cpu_intensive`, which is
    // the kernel's count of threshold violations (`PWQ_STAT_CPU_INTENSIVE`).
    if pwq.wq.flags.contains(WqFlags::CPU_INTENSIVE) {
        g.worker_set_flags(pool, idx, WORKER_CPU_INTENSIVE);
    }
    // Chain execution: while fewer workers run than the pool's concurrency (an
    // unbound pool's pod has several CPUs, or this item is CPU-intensive and
    // does not count), wake another worker for the rest of the worklist.
    kick_pool(pool, g);
    wq_ptr
}

/// The worker `idx` is done with the item (or batch) [`begin_item`] started;
/// `work` is the item's handle, if it has one. If the sleep monitor took the
/// worker out of `nr_running` during it, or found it hogging the CPU, it counts
/// again (the monitor marks only a worker inside an item, under this lock, so
/// nothing is left behind).
#[inline]
pub(super) fn end_item(pool: &'static WorkerPool, g: &mut PoolLocked, idx: usize, work: Option<&Work>) {
    let me = g.workers.get_mut(idx);
    if me.shared.is_sleeping() {
        let _ = worker_running(&me.shared);
    }
    me.current = None;
    if me.flags & WORKER_CPU_INTENSIVE != 0 {
        g.worker_clr_flags(pool, idx, WORKER_CPU_INTENSIVE);
    }
    if let Some(work) = work {
        work.clear_running_on(pool.id, idx);
    }
    g.nr_busy -= 1;
}

/// Runs an item, without the pool lock, between its trace events: `spawned`,
/// or else the work item of `item`. Returns whether it returned or panicked,
/// and `item` (which holds the handle a spawned closure asked for, if any).
pub(super) fn execute(
    pool: &WorkerPool,
    idx: usize,
    wq: &crate::workqueue::WqCore,
    id: usize,
    item: Item,
    spawned: Option<Spawned>,
) -> (std::thread::Result<()>, Item) {
    // `trace_workqueue_execute_start` (`process_one_work`), with the lock
    // released as in the kernel.
    log::event!(
        "workqueue_execute_start",
        workqueue = &*wq.name,
        work = id,
        pool = pool.id,
        cpu = pool.cpu,
        worker = idx
    );
    // The closure of a spawned item is consumed by the call, so its captures are
    // dropped inside `catch_unwind` too.
    let r = crate::current::run_item(item, |item| {
        catch_unwind(AssertUnwindSafe(move || match spawned {
            Some(f) => f.run(),
            None => item.get().expect("a work item").run(),
        }))
    });
    // `trace_workqueue_execute_end`.
    log::event!("workqueue_execute_end", workqueue = &*wq.name, work = id, pool = pool.id, cpu = pool.cpu);
    r
}

/// The thread CPU time since `cpu0`, in ns.
fn cpu_ns_since(cpu0: std::time::Duration) -> u64 {
    u64::try_from(crate::platform::sys::thread_cpu_time().saturating_sub(cpu0).as_nanos()).unwrap_or(u64::MAX)
}

/// The panics of one item, settled outside the pool lock.
#[derive(Default)]
pub(super) struct Panics {
    /// The item's own panic message, escaped.
    msg: Option<String>,
    /// All of them: the item's own, its payload's `Drop`, its closure's `Drop`.
    total: u32,
    /// Those in the `Drop` of its closure.
    closure: u32,
}

/// The uncommon end of an item: it panicked, or this worker holds its last
/// handle. The message is read and the payload dropped, contained (its `Drop`
/// may panic too); and if nobody else holds the item, so nobody can flush or
/// queue it any more, its closure is dropped here, contained, and a panic there
/// counts for this queue.
#[cold]
#[inline(never)]
pub(super) fn settle_panics(
    result: std::thread::Result<()>,
    work: &mut Option<Work>,
    seq: u64,
) -> Option<Panics> {
    let mut p = Panics::default();
    if let Err(payload) = result {
        p.msg = Some(panic_message(payload.as_ref()));
        p.total = 1 + drop_contained(payload);
    }
    if let Some(w) = work.take_if(|w| w.is_last_handle()) {
        w.seq_finish(seq);
        p.closure = drop_contained(w);
        p.total += p.closure;
    }
    (p.total > 0).then_some(p)
}

impl Panics {
    /// Logs them and counts them for the pwq in `slot`, its pool and the process.
    #[cold]
    #[inline(never)]
    pub(super) fn account(self, pool: &WorkerPool, g: &mut PoolLocked, slot: u32) {
        let pwq = g.pwqs.get_mut(slot as usize);
        report_panic(&pwq.wq.name, self.msg.as_deref(), self.total, self.closure);
        pwq.stats.panicked += u64::from(self.total);
        g.panicked += u64::from(self.total);
        for _ in 0..self.total {
            pool.ctx.counters.count_panic();
        }
    }
}

/// The message of a panic, escaped: a payload is user text, and must not forge
/// log lines either.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>")
        .escape_debug()
        .to_string()
}

/// Logs the panics of one item: its own (`msg`), those of dropping its payload,
/// and `closure` in the `Drop` of its closure when the worker let go of it.
fn report_panic(wq: &str, msg: Option<&str>, panics: u32, closure: u32) {
    if let Some(msg) = msg {
        let payload = panics - 1 - closure;
        if payload == 0 {
            log::error!(workqueue = wq, panic = msg, "workqueue: work item panicked");
        } else {
            log::error!(
                workqueue = wq,
                panic = msg,
                payload_panics = payload,
                "workqueue: work item panicked, and so did dropping its panic payload"
            );
        }
    }
    if closure > 0 {
        log::error!(
            workqueue = wq,
            panics = closure,
            "workqueue: a work item's closure panicked when its last handle was dropped"
        );
    }
}
