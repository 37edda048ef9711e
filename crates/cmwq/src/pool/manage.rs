//! Worker creation (the manager role), thread setup, idle waiting and culling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cm::WorkerShared;
use super::policy::kick_pool;
use super::worker::{self, Deferred};
use super::worker_pool::{
    PoolGuard, PoolLocked, WorkerPool, WorkerSlot, WORKER_DIE, WORKER_IDLE, WORKER_PREP,
};
use crate::context::threads::{CreateRequest, Refusal};
use crate::platform::log;
use crate::platform::loom::thread;

/// `CREATE_COOLDOWN`: after a failed thread creation, wait this long before retrying.
pub(crate) const CREATE_COOLDOWN: Duration = Duration::from_secs(1);
/// Kernel nice level of highpri pools (`HIGHPRI_NICE_LEVEL`).
pub(crate) const HIGHPRI_NICE: i32 = -20;
/// Worker threads are named this, the pool's label, `:` and the slot (`cmwq/3:0`).
pub(crate) const WORKER_THREAD_PREFIX: &str = "cmwq/";

type Guard = PoolGuard<'static>;

/// Fault injection: the next this-many thread creations fail with `EAGAIN`
/// (`debug::fail_next_spawns`, for tests of the recovery path). A test hook, not
/// a protocol: plain std atomic.
pub(crate) static FAIL_SPAWNS: AtomicUsize = AtomicUsize::new(0);

/// Fault injection: the next this-many workers are refused their pool's nice
/// value (`EPERM`), as a process without `CAP_SYS_NICE` is refused a nice below
/// its `RLIMIT_NICE` (`debug::fail_next_nice`). A test hook: plain std atomic.
pub(crate) static FAIL_NICE: AtomicUsize = AtomicUsize::new(0);

/// Consumes one injected failure of `hook`, if any is left.
fn injected(hook: &AtomicUsize) -> bool {
    let fail = |n: usize| n.checked_sub(1);
    hook.load(Ordering::Relaxed) > 0 && hook.fetch_update(Ordering::Relaxed, Ordering::Relaxed, fail).is_ok()
}

/// Whether a worker may be created now: not cooling down after a failure, under
/// every ceiling. On `true` the thread is already counted in `nr_threads` (and
/// `nr_cm_threads` for a per-CPU pool), reserved by a CAS, so concurrent managers
/// of different pools never overshoot a ceiling. A refusal is counted, logged
/// with back-off, and the pool is marked starved so that the monitor retries.
fn may_create(pool: &'static WorkerPool, g: &mut PoolLocked) -> bool {
    match reserve_thread(pool, g) {
        Ok(()) => true,
        Err(why) => {
            throttled(pool, why);
            g.starved = true;
            pool.ctx.doorbell.starved();
            // MEM_RECLAIM: call the rescuers if the need outlasts 10 ms.
            super::mayday::need_rescue(pool, g);
            false
        }
    }
}

/// The pool's cooldown after a failed spawn, then the context's ceilings.
fn reserve_thread(pool: &WorkerPool, g: &mut PoolLocked) -> Result<(), Refusal> {
    let now = Instant::now();
    if let Some(until) = g.create_cooldown_until {
        if now < until {
            return Err(Refusal::Cooldown);
        }
        g.create_cooldown_until = None;
    }
    pool.ctx.threads.reserve(&pool.ctx.config, pool.is_bound(), now)
}

/// Gives back a reservation of [`reserve_thread`] (a worker exited, or its spawn failed).
fn release_thread(pool: &WorkerPool) {
    pool.ctx.threads.release(pool.is_bound());
}

/// Counts a refusal and warns, with exponential back-off (the 1st, 2nd, 4th, …).
fn throttled(pool: &WorkerPool, why: Refusal) {
    let n = pool.ctx.counters.count_throttled();
    if n.is_power_of_two() {
        log::warn!(
            pool = log::display(pool.label()),
            refusals = n,
            "cmwq: {why}; work waits for a free worker"
        );
    }
}

/// Allocates a worker slot, counted idle at once (as `create_worker` does with
/// `worker_enter_idle`), so `may_start_working` holds before the thread runs.
/// A new reserve waits for a kick (`kicked == false`), so that creating one never
/// cascades into creating more; the first worker of a pool starts kicked.
fn new_slot(pool: &'static WorkerPool, g: &mut PoolLocked, kicked: bool) -> (usize, Arc<WorkerShared>) {
    let idx = g.workers.next_index();
    let shared = Arc::new(WorkerShared::new(pool, idx));
    // Room for a few collisions up front: a worker's first one must not
    // allocate on the queueing path (tests/wq_alloc.rs).
    let inserted = g.workers.insert(WorkerSlot::new(shared.clone(), WORKER_PREP | WORKER_IDLE, kicked, 4));
    debug_assert_eq!(inserted, idx);
    g.idle.push(idx);
    g.nr_workers += 1;
    g.peak_workers = g.peak_workers.max(g.nr_workers);
    g.workers_created += 1;
    (idx, shared)
}

fn thread_name(pool: &WorkerPool, idx: usize) -> String {
    format!("{WORKER_THREAD_PREFIX}{}:{idx}", pool.label())
}

/// Undoes `new_slot` after a failed spawn: the pool cools down for 1 s and the
/// process-wide ceiling drops to the thread count it failed at (`EAGAIN` or
/// `pids.max`: more threads would fail too) until then.
fn spawn_failed(pool: &WorkerPool, g: &mut PoolLocked, idx: usize, err: std::io::Error) {
    g.worker_leave_idle(idx);
    g.workers.remove(idx);
    g.nr_workers -= 1;
    g.workers_created -= 1;
    release_thread(pool);
    let until = Instant::now() + CREATE_COOLDOWN;
    g.create_cooldown_until = Some(until);
    g.starved = true;
    // MEM_RECLAIM: call the rescuers if the need outlasts 10 ms.
    super::mayday::need_rescue(pool, g);
    let at = pool.ctx.threads.spawn_failed(until);
    pool.ctx.counters.count_throttled();
    log::warn!(
        pool = log::display(pool.label()),
        error = log::display(&err),
        threads = at,
        "cmwq: failed to create a worker thread; holding at this many threads, retrying in 1 s"
    );
    pool.ctx.doorbell.starved();
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
            if pool.ctx.threads.spawn_worked() {
                log::info!(pool = log::display(pool.label()), "cmwq: thread creation works again");
            }
            // Always woken to look again (a spurious wake parks again in
            // `idle_wait`): it may be kicked, told to die, or of a pool nobody
            // uses (it may leave now); and it may have parked on an idle
            // timeout read before a `set_idle_timeout` whose `wake_all_idle`
            // could not reach it, having no handle yet. Left parked, such a
            // reserve slept out the old timeout (300 s by default) as the
            // pool's oldest idle worker, which alone may expire: the pool kept
            // every worker that long.
            t.unpark();
            g.workers.get_mut(idx).thread = Some(t);
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
    if injected(&FAIL_SPAWNS) {
        return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
    }
    thread::spawn_named(thread_name(pool, idx), move || worker::worker_thread(pool, shared))
}

/// Creates a worker where no worker could manage: the first of a pool that has
/// none (its first use, or after it shrank to zero), or one for a pool whose
/// reserve a refused creation took (`kick_pool`). The slot is counted idle and
/// kicked at once; the creator thread spawns the thread, so the queuing thread
/// neither pays for it nor passes on its nice value, and the lock is not held
/// across a thread creation. Without a creator (loom), it spawns here.
pub(crate) fn create_worker_locked(pool: &'static WorkerPool, g: &mut PoolLocked) -> bool {
    may_create(pool, g) && create_reserved(pool, g, true)
}

/// Creates a worker whose thread [`reserve_thread`] has counted: `kicked`, it
/// looks for work as soon as it runs; otherwise it is a reserve that waits for
/// its first kick. Returns whether it was created (or handed to the creator).
fn create_reserved(pool: &'static WorkerPool, g: &mut PoolLocked, kicked: bool) -> bool {
    let (idx, shared) = new_slot(pool, g, kicked);
    let req: CreateRequest = Box::new(move || {
        let res = spawn(pool, idx, shared);
        record_thread(pool, &mut pool.lock(), idx, res);
    });
    if let Err(req) = pool.ctx.threads.to_creator(req) {
        drop(req);
        let shared = g.workers.get(idx).shared.clone();
        return record_thread(pool, g, idx, spawn(pool, idx, shared));
    }
    true
}

/// What [`retry_starved`] did.
#[cfg_attr(loom, allow(dead_code))] // the monitor is absent under loom
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The pool cools down after a failed creation until then: look again then.
    Cooling(Instant),
    /// Creation is still refused (a ceiling): the pool stays starved.
    Refused,
    /// A worker was created (or handed to the creator thread).
    Created,
    /// The pool lacks nothing any more: the starved mark is cleared.
    Satisfied,
}

/// The retry of a refused creation, for a pool marked starved: the monitor
/// calls it at each tick while the mark holds. The kernel's manager retries
/// every `CREATE_COOLDOWN` while `need_to_create_worker()`, with the mayday
/// timer armed (`maybe_create_worker`); a cmwq worker refused a reserve goes on
/// without one instead, so the mark holds while the pool
/// [`lacks_reserve`](PoolLocked::lacks_reserve), not only while work waits: a
/// worker that blocks later must find a reserve to wake (pool/README.md,
/// "Reserve invariant"). Once no cooldown holds, it creates the missing worker,
/// kicked if work waits for one (`worker_wanted`), else an idle reserve. A
/// repeated refusal is not counted again: the first one was.
#[cfg_attr(loom, allow(dead_code))] // driven by the monitor thread; the loom model calls it
pub(crate) fn retry_starved(pool: &'static WorkerPool, g: &mut PoolLocked) -> Retry {
    if pool.bh {
        return super::bh::retry_bh(pool, g);
    }
    if let Some(until) = g.cooling_down() {
        return Retry::Cooling(until);
    }
    // Mutant for the loom model: the rule before issue 14, which cleared the
    // mark once the cooldown was over and created a worker only for work
    // waiting: a worker that went on without its reserve stayed without one.
    #[cfg(all(loom, cmwq_loom_mutant))]
    if !g.worker_wanted(pool) {
        g.starved = false;
        return Retry::Satisfied;
    }
    if !g.lacks_reserve() {
        g.starved = false;
        return Retry::Satisfied;
    }
    if reserve_thread(pool, g).is_err() {
        return Retry::Refused;
    }
    // The slot is counted idle at once: the pool lacks nothing now, unless its
    // spawn fails, which marks it starved again (`spawn_failed`).
    g.starved = false;
    let kicked = g.worker_wanted(pool);
    if create_reserved(pool, g, kicked) {
        Retry::Created
    } else {
        Retry::Cooling(g.create_cooldown_until.unwrap_or_else(Instant::now))
    }
}

/// `manage_workers` + `maybe_create_worker`: become the manager and create an idle
/// worker while one is needed, dropping the lock around the thread creation.
/// Returns the guard and whether the caller must re-check the predicates (the lock
/// was released). Returns `false` without releasing the lock if another worker
/// manages, or if no worker may be created now: then the caller proceeds without
/// a reserve, and the work waits rather than fails. The refusal has marked the
/// pool starved: the monitor creates the missing reserve once creation is
/// allowed again ([`retry_starved`]), and until then a worker that blocks with
/// work waiting tries to create one itself (`kick_pool`).
pub(super) fn manage_workers(pool: &'static WorkerPool, mut g: Guard) -> (Guard, bool) {
    if g.manager_active || !may_create(pool, &mut g) {
        return (g, false);
    }
    g.manager_active = true;
    crate::platform::loom::ltrace!("manage: creating");
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
    let topo = &pool.ctx.topo;
    if !topo.real {
        return;
    }
    let cpus = &pool.affinity[..];
    // A non-strict unbound worker starts in its pod, then may run anywhere in
    // its queue's cpumask (the kernel starts it on a pod CPU through `wake_cpu`):
    // confined first, the thread moves to a pod CPU at once.
    if pool.pod != pool.affinity {
        let _ = crate::platform::sys::set_current_thread_affinity(&pool.pod);
    }
    if let Err(e) = crate::platform::sys::set_current_thread_affinity(cpus) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            log::warn!(
                cpus = log::display(crate::platform::topology::CpuList(cpus)),
                error = log::display(&e),
                "cmwq: cannot set worker affinity; workers float"
            )
        });
    }
    if crate::platform::sys::current_thread_nice() == pool.nice {
        return;
    }
    let set = if injected(&FAIL_NICE) {
        Err(std::io::Error::from_raw_os_error(libc::EPERM))
    } else {
        crate::platform::sys::set_current_thread_nice(pool.nice)
    };
    match set {
        Ok(()) => {
            pool.nice_applied.store(pool.nice, Ordering::Relaxed);
            if pool.highpri {
                pool.ctx.counters.note_highpri_nice(true);
            }
        }
        Err(e) => {
            if pool.highpri {
                pool.ctx.counters.note_highpri_nice(false);
            }
            // Not permitted to raise priority this far: the nearest value allowed
            // is the process's own (a thread may always go back to it).
            let _ = crate::platform::sys::set_current_thread_nice(topo.base_nice);
            pool.nice_applied.store(crate::platform::sys::current_thread_nice(), Ordering::Relaxed);
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                log::info!(
                    pool = log::display(pool.label()),
                    nice = topo.base_nice,
                    wanted = pool.nice,
                    error = log::display(&e),
                    "cmwq: a pool's workers run at the process's nice value: theirs is not permitted"
                )
            });
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
        let timeout = pool.ctx.config.idle_timeout();
        let now = Instant::now();
        let expires = w.last_active + timeout;
        // A worker leaves only once its creator has recorded its thread: its slot
        // must outlive `record_thread` (which then wakes it to look again).
        let recorded = w.thread.is_some();
        let expired = now >= expires && g.idle.first() == Some(&idx);
        // A pool no workqueue uses lets its workers go at once (`put_unbound_pool`).
        let unused = pool.is_unused() && g.quiescent(pool);
        if recorded && (unused || (expired && (g.too_many_workers() || g.quiescent(pool)))) {
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
        crate::platform::loom::ltrace!("W{idx}: park");
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
    release_thread(pool);
    pool.worker_exited();
    // Work that came while this worker was on its way out (`retire_idle`):
    // with no worker left, the kick creates one.
    kick_pool(pool, &mut g);
    // A pool nobody uses lets its workers go once it is quiescent (`idle_wait`).
    // A worker that went idle while this one was still counted found it not
    // quiescent and parked for the idle timeout: wake the idle ones to look again.
    if pool.is_unused() && g.quiescent(pool) {
        for &i in &g.idle {
            if let Some(t) = &g.workers.get(i).thread {
                t.unpark();
            }
        }
    }
    drop(g);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::platform::topology::Topology;
    use crate::registry::Registry;
    use crate::workqueue::PoolKey;

    /// A worker whose creator has not recorded its thread yet must not be told
    /// to leave when its pool's last user goes: its slot would be gone (or reused)
    /// when the creator records the thread. It stays idle, and leaves by itself
    /// once recorded (`idle_wait`; `record_thread` wakes it).
    #[test]
    fn an_unused_pool_keeps_a_worker_whose_thread_is_not_recorded() {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let pool = reg.get_unbound_pool(&PoolKey::new(0, vec![0], false, &[0]));
        let (idx, _) = new_slot(pool, &mut pool.lock(), false);
        reg.put_unbound_pool(pool); // the last user: `retire_idle`
        assert!(pool.is_unused());
        let g = pool.lock();
        assert_eq!(g.workers.get(idx).flags & WORKER_DIE, 0, "told to leave before it was recorded");
        assert!(g.idle.contains(&idx), "taken off the idle list before it was recorded");
    }

    /// A reserve whose thread parked on the idle timeout before its creator
    /// recorded the thread, while `set_idle_timeout` shortened the timeout (its
    /// `wake_all_idle` cannot reach a worker without a handle), looks again
    /// once recorded: it expires on the new timeout, not the old 300 s.
    #[test]
    fn a_worker_recorded_after_a_timeout_change_looks_again() {
        use std::time::{Duration, Instant};
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let pool = reg.cpu_pool(0, false);
        reg.ctx.config.set_idle_timeout(Duration::from_secs(300));
        let (idx, shared) = {
            let mut g = pool.lock();
            reserve_thread(pool, &mut g).unwrap();
            // An unkicked reserve, as `retry_starved` and `manage_workers` make.
            new_slot(pool, &mut g, false)
        };
        let res = spawn(pool, idx, shared.clone());
        // Its thread parks in `idle_wait` on the 300 s timeout, unrecorded.
        let deadline = Instant::now() + Duration::from_secs(60);
        let tid = loop {
            if let Some(&t) = shared.tid.get() {
                break t;
            }
            assert!(Instant::now() < deadline, "the worker never started");
            std::thread::yield_now();
        };
        let parked = || {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|f| f.trim_start().starts_with('S')))
        };
        while !parked() {
            assert!(Instant::now() < deadline, "the worker never parked");
            std::thread::yield_now();
        }
        // `cmwq::set_idle_timeout`: its wake-up cannot reach the worker yet.
        reg.ctx.config.set_idle_timeout(Duration::from_millis(5));
        pool.wake_all_idle();
        assert!(record_thread(pool, &mut pool.lock(), idx, res));
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.lock().nr_workers > 0 {
            assert!(Instant::now() < deadline, "parked on the old idle timeout: the pool keeps its worker");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
