//! BH pools (`WQ_BH`): per CPU a normal and a highpri pool, each served by one
//! *BH context*, a thread pinned to the CPU that stands for the kernel's
//! softirq (`bh_worker`, `kick_bh_pool`, `workqueue_softirq_action` in
//! `kernel/workqueue.c`). `pool/README.md`, "BH pools", has the protocol and
//! the reasons.
//!
//! - The context is the pool's only worker (slot `PoolLocked::bh_ctx`), made
//!   by the first kick, never culled, not counted against the thread ceilings.
//!   It is flagged `WORKER_PREP` for good, so it never counts in `nr_running`
//!   (the kernel's BH pseudo worker carries `WORKER_UNBOUND`): no concurrency
//!   management, no second worker, items one at a time in queueing order.
//! - `kick_pool` on a BH pool is [`kick_bh_pool`]: wake the context if it is
//!   idle. It never creates a worker, never marks the pool starved, never arms
//!   the mayday timer.
//! - The context's loop is [`bh_worker`]'s: while items wait, run them, at most
//!   [`BH_WORKER_RESTARTS`] or for [`BH_WORKER_TIME`]; then, with items left,
//!   give the CPU up and come back for the rest.
//! - "Must not wait": a BH item that blocks ([`crate::blocking`] or
//!   [`crate::sleep`] inside it, or the sleep monitor finding the context
//!   asleep) is reported and counted ([`bh_blocked`]); the items behind it
//!   wait, no second context is started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cm::WorkerShared;
use super::worker::{self, Deferred};
use super::worker_pool::{PoolGuard, PoolLocked, WorkerPool, WorkerSlot, WORKER_PREP};
use crate::platform::bug::AbortOnPanic;
use crate::platform::log;
use crate::platform::loom::{thread, Ordering};

/// `BH_WORKER_RESTARTS`: items one run of the context takes before it gives
/// the CPU up, when more wait.
pub(crate) const BH_WORKER_RESTARTS: u32 = 10;
/// `BH_WORKER_JIFFIES` (2 ms): how long one run of the context may last
/// before it gives the CPU up, when more items wait.
pub(crate) const BH_WORKER_TIME: Duration = Duration::from_millis(2);
/// The real-time priority of a highpri BH context (`SCHED_FIFO`): the lowest,
/// so that the process's own real-time threads, if any, come first.
#[cfg(not(loom))]
const BH_HIGHPRI_RT_PRIO: i32 = 1;

type Guard = PoolGuard<'static>;

/// `kick_bh_pool`: work waits on a BH pool; wake its context if it is idle, or
/// start it on first use (or after a failed start, once the cooldown is over).
/// Work waiting behind a running item is noted for the sleep monitor, which
/// watches the context for a block or a hog (report only). Caller holds the
/// lock. Returns whether the context was woken or started.
#[cold]
pub(super) fn kick_bh_pool(pool: &'static WorkerPool, g: &mut PoolLocked) -> bool {
    if g.worklist.is_empty() {
        return false;
    }
    let Some(i) = g.bh_ctx else {
        if g.cooling_down().is_some() {
            return false;
        }
        start_bh_context(pool, g);
        return true;
    };
    if g.nr_busy > 0 && !pool.saturation_noted.load(Ordering::Relaxed) {
        // Items wait behind a running one: if it sleeps, only the monitor can
        // tell (no sentinel: nothing else may run in its place).
        pool.saturation_noted.store(true, Ordering::Relaxed);
        pool.ctx.doorbell.saturated(&pool.pod, false);
    }
    let w = g.workers.get_mut(i);
    if w.kicked {
        return false;
    }
    w.kicked = true;
    // No handle yet: `record_bh_thread` delivers the kick.
    if let Some(t) = w.thread.clone() {
        if let Some(earlier) = g.to_wake.replace(t) {
            earlier.unpark();
        }
    }
    true
}

/// Makes the context's slot (kicked) and hands its thread's creation to the
/// creator thread (without one, under loom, spawns it here). Caller holds the
/// lock.
fn start_bh_context(pool: &'static WorkerPool, g: &mut PoolLocked) {
    let idx = g.workers.next_index();
    let shared = Arc::new(WorkerShared::new(pool, idx));
    // `WORKER_PREP` for good: never counted in `nr_running`.
    let inserted = g.workers.insert(WorkerSlot::new(shared.clone(), WORKER_PREP, true, 4));
    debug_assert_eq!(inserted, idx);
    g.bh_ctx = Some(idx);
    g.nr_workers += 1;
    g.peak_workers = g.peak_workers.max(g.nr_workers);
    g.workers_created += 1;
    let req: crate::context::threads::CreateRequest = Box::new(move || {
        let res = spawn(pool, shared);
        record_bh_thread(pool, &mut pool.lock(), idx, res);
    });
    if let Err(req) = pool.ctx.threads.to_creator(req) {
        drop(req);
        let shared = g.workers.get(idx).shared.clone();
        record_bh_thread(pool, g, idx, spawn(pool, shared));
    }
}

fn spawn(pool: &'static WorkerPool, me: Arc<WorkerShared>) -> std::io::Result<thread::Thread> {
    let fail = |n: usize| n.checked_sub(1);
    if super::manage::FAIL_SPAWNS.load(std::sync::atomic::Ordering::Relaxed) > 0
        && super::manage::FAIL_SPAWNS
            .fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, fail)
            .is_ok()
    {
        return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
    }
    let name = format!("{}{}", super::manage::WORKER_THREAD_PREFIX, pool.label());
    thread::spawn_named(name, move || bh_thread(pool, me))
}

/// Records the context's thread and delivers the kick it was made with. A
/// failed spawn removes the slot: the items wait, the pool cools down for
/// `CREATE_COOLDOWN` and is marked starved, so the sleep monitor starts the
/// context again then ([`retry_bh`]), as does any kick after the cooldown.
fn record_bh_thread(pool: &WorkerPool, g: &mut PoolLocked, idx: usize, res: std::io::Result<thread::Thread>) {
    match res {
        Ok(t) => {
            let w = g.workers.get_mut(idx);
            if w.kicked {
                t.unpark();
            }
            w.thread = Some(t);
        }
        Err(err) => {
            g.workers.remove(idx);
            g.bh_ctx = None;
            g.nr_workers -= 1;
            g.workers_created -= 1;
            g.create_cooldown_until = Some(Instant::now() + super::manage::CREATE_COOLDOWN);
            g.starved = true;
            pool.ctx.counters.count_throttled();
            log::warn!(
                pool = log::display(pool.label()),
                error = log::display(&err),
                "cmwq: failed to create a BH context thread; its items wait, retrying in 1 s"
            );
            pool.ctx.doorbell.starved();
        }
    }
}

/// The sleep monitor's retry for a BH pool marked starved (its context's
/// thread could not be created): start it once the cooldown is over.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread
pub(super) fn retry_bh(pool: &'static WorkerPool, g: &mut PoolLocked) -> super::Retry {
    if let Some(until) = g.cooling_down() {
        return super::Retry::Cooling(until);
    }
    g.starved = false;
    if g.bh_ctx.is_some() || g.worklist.is_empty() {
        return super::Retry::Satisfied;
    }
    start_bh_context(pool, g);
    if g.bh_ctx.is_some() {
        super::Retry::Created
    } else {
        super::Retry::Cooling(g.create_cooldown_until.unwrap_or_else(Instant::now))
    }
}

/// The priority a BH context got (`README.md`, "BH pools").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prio {
    /// `SCHED_FIFO` at [`BH_HIGHPRI_RT_PRIO`] (highpri, where permitted).
    Fifo,
    /// `SCHED_OTHER` at this nice value.
    Nice(i32),
}

impl Prio {
    /// Takes this priority; false if it is not permitted.
    fn apply(self) -> bool {
        #[cfg(not(loom))]
        {
            use crate::platform::sys;
            match self {
                Prio::Fifo => sys::set_current_thread_fifo(BH_HIGHPRI_RT_PRIO).is_ok(),
                Prio::Nice(n) => {
                    sys::set_current_thread_other().is_ok() && sys::set_current_thread_nice(n).is_ok()
                }
            }
        }
        #[cfg(loom)]
        {
            let _ = self;
            true
        }
    }
}

/// Pins the context to its CPU and gives it the best priority permitted: a
/// highpri context `SCHED_FIFO`, else nice −20, else the process's nice; a
/// normal one nice −20, else the process's nice. Notes once per kind which
/// it got. Returns it.
fn setup_bh_thread(pool: &WorkerPool) -> Prio {
    let base = Prio::Nice(pool.ctx.topo.base_nice);
    #[cfg(not(loom))]
    if !pool.ctx.topo.real {
        return base;
    }
    #[cfg(not(loom))]
    if let Err(e) = crate::platform::sys::set_current_thread_affinity(&pool.affinity) {
        log::warn!(
            pool = log::display(pool.label()),
            error = log::display(&e),
            "cmwq: cannot pin a BH context to its CPU; its items may run elsewhere"
        );
    }
    let wanted: &[Prio] = if pool.highpri {
        &[Prio::Fifo, Prio::Nice(super::manage::HIGHPRI_NICE)]
    } else {
        &[Prio::Nice(super::manage::HIGHPRI_NICE)]
    };
    let got = wanted.iter().copied().find(|p| p.apply()).unwrap_or_else(|| {
        base.apply();
        base
    });
    static NOTED: [std::sync::Once; 2] = [std::sync::Once::new(), std::sync::Once::new()];
    NOTED[pool.highpri as usize].call_once(|| {
        let how = match got {
            Prio::Fifo => format!("SCHED_FIFO at real-time priority {}", rt_prio()),
            Prio::Nice(n) => format!("SCHED_OTHER at nice {n}"),
        };
        log::info!(
            pool = log::display(pool.label()),
            priority = log::display(&how),
            "cmwq: {} BH contexts run at this priority (the best permitted)",
            if pool.highpri { "highpri" } else { "normal" }
        );
    });
    got
}

fn rt_prio() -> i32 {
    #[cfg(not(loom))]
    return BH_HIGHPRI_RT_PRIO;
    #[cfg(loom)]
    0
}

/// Parks until kicked (a token left by an earlier unpark makes it return at
/// once, so a kick between the look at the worklist and the park is not lost).
fn park() {
    #[cfg(not(loom))]
    std::thread::park();
    #[cfg(loom)]
    thread::park_timeout(Duration::ZERO);
}

/// The body of a BH context: sets itself up, then alternates idling (parked
/// until kicked) and [`bh_worker`].
fn bh_thread(pool: &'static WorkerPool, me: Arc<WorkerShared>) {
    let _abort = AbortOnPanic;
    let prio = setup_bh_thread(pool);
    worker::enter(pool, &me);
    let idx = me.idx;
    let mut d = Deferred::default();
    // Given up for a storm: running at the ordinary priority until it is over
    // (`demoted`: the priority did drop).
    let mut deferred = false;
    let mut demoted = false;
    let mut g = pool.lock();
    loop {
        if g.worklist.is_empty() {
            if d.is_pending() || deferred {
                drop(g);
                d.release();
                if deferred {
                    prio.apply();
                    deferred = false;
                    demoted = false;
                }
                g = pool.lock();
                continue;
            }
            // Idle: a kick from now on unparks us (`kick_bh_pool`).
            g.workers.get_mut(idx).kicked = false;
            drop(g);
            park();
            g = pool.lock();
            continue;
        }
        // Running: kicks meanwhile need not unpark anyone.
        g.workers.get_mut(idx).kicked = true;
        g = bh_worker(pool, g, idx, &mut d);
        if !g.worklist.is_empty() {
            // The budget is spent and items remain: give the CPU up, as the
            // kernel hands the rest of a storm to `ksoftirqd` (a nice-0 thread).
            // `sched_yield` alone would not do it: from `SCHED_FIFO` it yields
            // only to real-time threads, and at nice −20 the fair scheduler
            // hands the CPU back at once. So the context drops to the process's
            // ordinary priority until the storm is over, and yields once. From
            // then on the fair scheduler shares the CPU between the storm and
            // the CPU's other threads, as it does with `ksoftirqd`: a yield
            // after every budget would leave the storm a sliver of the CPU (a
            // yielding thread waits out the other's whole time slice). Only if
            // the priority could not drop does every budget end in a yield.
            drop(g);
            d.release();
            let first = !deferred;
            if first {
                deferred = true;
                demoted = pool.ctx.topo.real && Prio::Nice(pool.ctx.topo.base_nice).apply();
            }
            if first || !demoted {
                #[cfg(not(loom))]
                crate::platform::sys::sched_yield();
                #[cfg(loom)]
                thread::yield_now();
            }
            g = pool.lock();
        }
    }
}

/// `bh_worker`: run the worklist's items, one at a time in order, while items
/// wait, at most [`BH_WORKER_RESTARTS`] of them and for at most
/// [`BH_WORKER_TIME`]. Called and returns with the lock held.
fn bh_worker(pool: &'static WorkerPool, mut g: Guard, idx: usize, d: &mut Deferred) -> Guard {
    let end = Instant::now() + BH_WORKER_TIME;
    let mut restarts = BH_WORKER_RESTARTS;
    while let Some(e) = g.worklist.pop_front() {
        pool.note_queued(&g);
        if g.worklist.is_empty() {
            pool.saturation_over();
        }
        // The context is the pool's only worker: the item is never running
        // elsewhere in it, so it is always ours.
        if let Some(e) = worker::assign_work(pool, &mut g, e, idx) {
            g = worker::process_one_work(pool, g, idx, e, d);
            g = worker::process_scheduled_works(pool, g, idx, d);
        }
        restarts -= 1;
        if restarts == 0 || Instant::now() >= end {
            break;
        }
    }
    g
}

/// A BH item blocked: announced (`cmwq::blocking`, `cmwq::sleep`), or found
/// asleep by the sleep monitor (`by_monitor`). Counted for its workqueue
/// ([`WqStats::bh_blocked`](crate::WqStats::bh_blocked)) and warned once per
/// workqueue. The items behind it wait: no second context is started. Caller
/// holds the lock; `idx` is the context's slot.
fn bh_blocked(pool: &WorkerPool, g: &mut PoolLocked, idx: usize, by_monitor: bool) {
    let Some((cur, progress)) = g.workers.try_get(idx).and_then(|w| Some((w.current?, w.progress))) else {
        return;
    };
    // Every announced block counts; the monitor's finding only if nothing
    // was reported in this item yet.
    if by_monitor && g.bh_reported == Some(progress) {
        return;
    }
    g.bh_reported = Some(progress);
    let p = g.pwqs.get_mut(cur.pwq as usize);
    p.stats.bh_blocked += 1;
    if !p.wq.bh_block_warned.swap(true, Ordering::Relaxed) {
        log::warn!(
            workqueue = &*p.wq.name,
            pool = log::display(pool.label()),
            found_by = if by_monitor { "sleep monitor" } else { "blocking hint" },
            "workqueue: a BH work item blocks; BH items must not wait, and the items queued behind it \
             on this CPU wait for it"
        );
    }
}

/// The BH context of slot `idx`, if it still executes item number `progress`.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
fn still_on(g: &PoolLocked, idx: usize, progress: u64) -> Option<u32> {
    let w = g.workers.try_get(idx).filter(|w| w.progress == progress)?;
    w.current.map(|c| c.pwq)
}

/// The sleep monitor found the BH context asleep in item `progress`: reported
/// and counted as [`bh_blocked`]; nothing else changes (no worker is woken or
/// made). False if the context has moved on.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
pub(crate) fn monitor_bh_blocked(pool: &WorkerPool, g: &mut PoolLocked, idx: usize, progress: u64) -> bool {
    if still_on(g, idx, progress).is_none() {
        return false;
    }
    bh_blocked(pool, g, idx, true);
    true
}

/// The sleep monitor found the BH context on the CPU in item `progress` past
/// the CPU-intensive threshold: counted as the kernel counts a hog
/// (`WqStats::cpu_intensive`), report only (a BH pool has no concurrency to
/// manage). Returns the workqueue's name for the hog report, or `None` if the
/// context has moved on.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread, absent under loom
pub(crate) fn monitor_bh_hog(g: &mut PoolLocked, idx: usize, progress: u64) -> Option<String> {
    let pwq = still_on(g, idx, progress)?;
    let p = g.pwqs.get_mut(pwq as usize);
    p.stats.cpu_intensive += 1;
    Some(p.wq.name.to_string())
}

/// `cmwq::blocking` or `cmwq::sleep` inside a BH item (the context never
/// counts in `nr_running`, so the hint itself changes nothing).
pub(super) fn bh_blocking_hint(w: &WorkerShared) {
    let pool = w.pool;
    let mut g = pool.lock();
    bh_blocked(pool, &mut g, w.idx, false);
}
