//! Worker creation (the manager role), thread setup, idle waiting and culling.

use std::sync::atomic::Ordering as StdOrdering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::worker::Deferred;
use super::PoolGuard;
use super::{
    worker, PoolLocked, WorkerPool, WorkerShared, WorkerSlot, WORKER_DIE, WORKER_IDLE, WORKER_PREP,
    WORKER_UNBOUND,
};
use crate::loom::{thread, AtomicBool};

/// `CREATE_COOLDOWN`: after a failed thread creation, wait this long before retrying.
pub(crate) const CREATE_COOLDOWN: Duration = Duration::from_secs(1);
/// Kernel nice level of highpri pools (`HIGHPRI_NICE_LEVEL`).
pub(crate) const HIGHPRI_NICE: i32 = -20;

type Guard = PoolGuard<'static>;

/// Whether a worker may be created now: under the thread ceiling and not cooling
/// down after a failure. Counts a refusal.
fn may_create(pool: &WorkerPool, g: &mut PoolLocked) -> bool {
    if let Some(until) = g.create_cooldown_until {
        if Instant::now() < until {
            pool.registry.nr_throttled.fetch_add(1, StdOrdering::Relaxed);
            return false;
        }
        g.create_cooldown_until = None;
    }
    let reg = pool.registry;
    if reg.nr_threads.load(StdOrdering::Relaxed) >= reg.config.max_workers() {
        let n = reg.nr_throttled.fetch_add(1, StdOrdering::Relaxed);
        if n.is_power_of_two() {
            tracing::warn!(
                "cmwq: worker ceiling of {} threads reached; work waits for a free worker ({} times so far)",
                reg.config.max_workers(),
                n + 1
            );
        }
        return false;
    }
    true
}

/// Allocates a worker slot, counted idle at once (as `create_worker` does with
/// `worker_enter_idle`), so `may_start_working` holds before the thread runs.
/// A new reserve waits for a kick (`kicked == false`), so that creating one never
/// cascades into creating more; the first worker of a pool starts kicked.
fn new_slot(pool: &'static WorkerPool, g: &mut PoolLocked, kicked: bool) -> (usize, Arc<WorkerShared>) {
    let idx = g.workers.next_index();
    let shared = Arc::new(WorkerShared {
        pool,
        idx,
        sleeping: AtomicBool::new(false),
        not_running: AtomicBool::new(true),
    });
    let inserted = g.workers.insert(WorkerSlot {
        shared: shared.clone(),
        thread: None,
        flags: WORKER_PREP | WORKER_IDLE | if pool.is_bound() { 0 } else { WORKER_UNBOUND },
        kicked,
        current: None,
        scheduled: Default::default(),
        last_active: Instant::now(),
    });
    debug_assert_eq!(inserted, idx);
    g.idle.push(idx);
    g.nr_workers += 1;
    g.workers_created += 1;
    pool.registry.nr_threads.fetch_add(1, StdOrdering::Relaxed);
    (idx, shared)
}

fn thread_name(pool: &WorkerPool, idx: usize) -> String {
    format!("cmwq/{}:{}", pool.label(), idx)
}

/// Undoes `new_slot` after a failed spawn and starts the cooldown.
fn spawn_failed(pool: &WorkerPool, g: &mut PoolLocked, idx: usize, err: std::io::Error) {
    g.worker_leave_idle(idx);
    g.workers.remove(idx);
    g.nr_workers -= 1;
    g.workers_created -= 1;
    pool.registry.nr_threads.fetch_sub(1, StdOrdering::Relaxed);
    g.create_cooldown_until = Some(Instant::now() + CREATE_COOLDOWN);
    pool.registry.nr_throttled.fetch_add(1, StdOrdering::Relaxed);
    tracing::warn!(
        "cmwq: failed to create a worker thread for pool {}: {err}; retrying in 1 s",
        pool.label()
    );
}

/// Records a spawned worker's thread handle, delivering a kick (or DIE) that came
/// while there was no handle: the new thread may already have parked. Undoes the
/// slot if the spawn failed. Caller holds the lock. Returns whether it spawned.
fn record_thread(
    pool: &WorkerPool,
    g: &mut PoolLocked,
    idx: usize,
    res: std::io::Result<thread::Thread>,
) -> bool {
    match res {
        Ok(t) => {
            let w = g.workers.get_mut(idx);
            if w.kicked || w.flags & WORKER_DIE != 0 {
                t.unpark();
            }
            w.thread = Some(t);
            true
        }
        Err(e) => {
            spawn_failed(pool, g, idx, e);
            false
        }
    }
}

fn spawn(
    pool: &'static WorkerPool,
    idx: usize,
    shared: Arc<WorkerShared>,
) -> std::io::Result<thread::Thread> {
    thread::spawn_named(thread_name(pool, idx), move || worker::worker_thread(pool, shared))
}

/// Creates the first worker of a pool that has none (its first use, or after it
/// shrank to zero), where no worker could manage. The slot is counted idle and
/// kicked at once; the creator thread spawns the thread, so the queuing thread
/// neither pays for it nor passes on its nice value, and the lock is not held
/// across a thread creation. Without a creator (loom), it spawns here.
pub(super) fn create_worker_locked(pool: &'static WorkerPool, g: &mut PoolLocked) -> bool {
    if !may_create(pool, g) {
        return false;
    }
    let (idx, shared) = new_slot(pool, g, true);
    let req: crate::registry::CreateRequest = Box::new(move || {
        let res = spawn(pool, idx, shared);
        record_thread(pool, &mut pool.lock(), idx, res);
    });
    if let Err(req) = pool.registry.to_creator(req) {
        drop(req);
        let shared = g.workers.get(idx).shared.clone();
        return record_thread(pool, g, idx, spawn(pool, idx, shared));
    }
    true
}

/// `manage_workers` + `maybe_create_worker`: become the manager and create an idle
/// worker while one is needed, dropping the lock around the thread creation.
/// Returns the guard and whether the caller must re-check the predicates (the lock
/// was released). Returns `false` without releasing the lock if another worker
/// manages, or if no worker may be created now: then the caller proceeds without
/// a reserve, and the work waits rather than fails.
pub(super) fn manage_workers(pool: &'static WorkerPool, mut g: Guard) -> (Guard, bool) {
    if g.manager_active || !may_create(pool, &mut g) {
        return (g, false);
    }
    g.manager_active = true;
    crate::loom::ltrace!("manage: creating");
    loop {
        let (idx, shared) = new_slot(pool, &mut g, false);
        drop(g);
        let res = spawn(pool, idx, shared);
        g = pool.lock();
        if !record_thread(pool, &mut g, idx, res) {
            break;
        }
        // The new worker may already be busy; create another if still needed.
        if !g.need_to_create_worker(pool) || !may_create(pool, &mut g) {
            break;
        }
    }
    g.manager_active = false;
    (g, true)
}

/// Pins a bound pool's worker to its CPU and raises a highpri worker's priority.
///
/// A new thread inherits its creator's affinity and nice value, and the creator may
/// be any thread (the first worker of a pool is created by whoever queued first),
/// so both are always set explicitly.
pub(super) fn setup_thread(pool: &WorkerPool) {
    let topo = &pool.registry.topo;
    if !topo.real {
        return;
    }
    let cpus = match &pool.cpu {
        Some(cpu) => std::slice::from_ref(cpu),
        None => &topo.allowed[..],
    };
    if let Err(e) = crate::sys::set_current_thread_affinity(cpus) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| tracing::warn!("cmwq: cannot set worker affinity to {cpus:?}: {e}; they float"));
    }
    if !pool.highpri && crate::sys::current_thread_nice() != topo.base_nice {
        let _ = crate::sys::set_current_thread_nice(topo.base_nice);
    }
    if pool.highpri {
        match crate::sys::set_current_thread_nice(HIGHPRI_NICE) {
            Ok(()) => crate::debug::note_highpri_nice(true),
            Err(e) => {
                crate::debug::note_highpri_nice(false);
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    tracing::info!(
                        "cmwq: highpri workers run at the default priority: nice {HIGHPRI_NICE} is not permitted ({e})"
                    )
                });
            }
        }
    }
}

/// Parks an idle worker until it is kicked or told to die. On each idle timeout,
/// the oldest idle worker exits if the pool has too many idle workers, or if the
/// pool is completely quiescent (so an unused pool shrinks to zero threads).
/// Returns with the lock held; the caller checks `WORKER_DIE`.
pub(super) fn idle_wait(pool: &'static WorkerPool, mut g: Guard, idx: usize, d: &mut Deferred) -> Guard {
    loop {
        let w = g.workers.get(idx);
        if w.kicked || w.flags & WORKER_DIE != 0 || w.flags & WORKER_IDLE == 0 {
            return g;
        }
        if d.is_pending() {
            // Publish the last completion first, then re-check: nothing that can
            // block may sit between the `kicked` check and `park` (an unpark that
            // arrives while we wait for some other lock must still find us parked
            // or leave its token; loom's model drops it otherwise).
            drop(g);
            d.release();
            g = pool.lock();
            continue;
        }
        let timeout = pool.registry.config.idle_timeout();
        let now = Instant::now();
        let expires = w.last_active + timeout;
        if now >= expires && g.idle.first() == Some(&idx) && (g.too_many_workers() || g.quiescent(pool)) {
            g.worker_leave_idle(idx);
            g.workers.get_mut(idx).flags |= WORKER_DIE;
            g.workers_culled += 1;
            // Let the next oldest re-check now, so expired workers go in one sweep.
            if let Some(&next) = g.idle.first() {
                if g.workers.get(next).last_active + timeout <= now {
                    if let Some(t) = &g.workers.get(next).thread {
                        t.unpark();
                    }
                }
            }
            return g;
        }
        crate::loom::ltrace!("W{idx}: park");
        drop(g);
        thread::park_timeout(if now >= expires { timeout } else { expires - now });
        g = pool.lock();
    }
}

/// Unregisters an exiting worker.
pub(super) fn worker_exit(pool: &'static WorkerPool, mut g: Guard, idx: usize) {
    g.worker_leave_idle(idx);
    g.workers.remove(idx);
    g.nr_workers -= 1;
    pool.registry.nr_threads.fetch_sub(1, StdOrdering::Relaxed);
    pool.exit_cv.notify_all();
    drop(g);
}
