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

use std::time::{Duration, Instant};

use crate::loom::Ordering;
#[cfg_attr(all(loom, cmwq_loom_mutant), allow(unused_imports))]
use crate::pool::{kick_pool, PoolLocked, WorkerPool, WorkerShared, WORKER_CPU_INTENSIVE};

/// `wq_worker_sleeping`: the worker leaves `nr_running`; if that leaves work
/// waiting with nobody running, an idle worker is woken (or the first created).
/// `due` is when a timed sleep is certainly over (`None`: unknown, any other
/// block). Returns whether this call did the transition (and so owes a
/// [`worker_running`]).
pub(crate) fn worker_sleeping(w: &WorkerShared, due: Option<Instant>) -> bool {
    // A worker outside concurrency management (unbound, CPU-intensive, between
    // items) or already asleep is not counted, so it has nothing to give back.
    if !w.counted() {
        return false;
    }
    let pool = w.pool;
    let mut g = pool.lock();
    sleeping_locked(pool, &mut g, w, due)
}

/// The transition of [`worker_sleeping`], under the pool lock: the CAS on the
/// worker's word and the decrement happen in one critical section, followed by
/// the kick (pool/README.md, "Why no wake-up is lost", 3).
fn sleeping_locked(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    w: &WorkerShared,
    due: Option<Instant>,
) -> bool {
    if !w.try_sleep() {
        return false;
    }
    g.workers.get_mut(w.idx).sleep_due = due;
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
        Some(w) => sleeping_locked(pool, g, &w, None),
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
    blocking_until(None, f)
}

/// [`blocking`], with when the block is certainly over if that is known.
pub(crate) fn blocking_until<R>(due: Option<Instant>, f: impl FnOnce() -> R) -> R {
    let me = crate::current::worker();
    let took = me.as_deref().filter(|w| worker_sleeping(w, due));
    let _guard = Running(took);
    f()
}

/// A sleep that tells the worker pool (`blocking(|| std::thread::sleep(d))`).
///
/// The pool also knows when the sleep ends: once the deadline, the thread's timer
/// slack and a wake-up allowance have passed, the sleeping worker is taken to be
/// runnable, and a worker of the same per-CPU pool that blocks then leaves the CPU
/// to it instead of waking a spare (pool/README.md, "Runnable sleepers"). The
/// sleep lasts at least `d` from the call.
pub fn sleep(d: Duration) {
    let Some(deadline) = Instant::now().checked_add(d) else {
        return blocking(|| std::thread::sleep(d));
    };
    // The timer fires by the deadline plus the thread's timer slack; the thread
    // is runnable a wake-up latency later.
    let due = deadline.checked_add(timer_slack() + WAKE_LATENCY);
    blocking_until(due, || std::thread::sleep(deadline.saturating_duration_since(Instant::now())))
}

/// How long past its timer's latest expiry (deadline plus timer slack) a sleeping
/// thread is taken to be runnable: the timer interrupt's and the wake-up's
/// latency. Measured on a 2-vCPU VM (300 µs sleeps with no slack): p50 16 µs,
/// p99 48 µs past the deadline with the CPU busy, which is the case that matters
/// (another worker runs there); p50 36 µs on an idle CPU. A sleeper taken for
/// runnable too early leaves its CPU idle until its timer fires; one taken too
/// late gets a spare woken beside it, as without the rule. (Asking the scheduler
/// instead, through `/proc/self/task/TID/stat`, cost more per block than it saved.)
const WAKE_LATENCY: Duration = Duration::from_micros(50);

/// The calling thread's timer slack, read once per thread.
fn timer_slack() -> Duration {
    thread_local!(static SLACK: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) });
    SLACK.with(|s| {
        s.get().unwrap_or_else(|| {
            let slack = crate::sys::current_thread_timer_slack();
            s.set(Some(slack));
            slack
        })
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, OnceLock};
    use std::time::{Duration, Instant};

    use crate::registry::{Registry, Topology};
    use crate::Workqueue;

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Holds item A until the test opens it.
    #[derive(Default)]
    struct Gate(std::sync::Mutex<bool>, std::sync::Condvar);

    impl Gate {
        fn open(&self) {
            *self.0.lock().unwrap() = true;
            self.1.notify_all();
        }
        fn wait(&self) {
            let mut open = self.0.lock().unwrap();
            while !*open {
                open = self.1.wait(open).unwrap();
            }
        }
    }

    /// Three items on a one-CPU pool: A announces a block with a due time (as a
    /// timed sleep does) and waits for the test; B starts because A blocked, runs past A's due
    /// time and blocks in turn; C is queued behind them. Returns whether C started
    /// while both A and B were in their blocks, within `window` of B blocking. (A
    /// test that expects no start looks for 100 ms: a broken rule starts C at
    /// once, and a slow machine can only hide that, never fake it. One that
    /// expects a start waits long, so a busy machine cannot fail it.)
    fn c_starts_beside_a_and_b(a_due: Duration, window: Duration) -> bool {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        // B spins while it counts as running; the monitor must not call it a block.
        reg.config.set_monitor(false);
        let wq = Workqueue::builder("cover").build_in(reg).unwrap();
        let release_a = Arc::new(Gate::default());
        let (b_tx, b_rx) = mpsc::channel::<()>();
        let a_due_at = Arc::new(OnceLock::<Instant>::new());
        let b_blocking = Arc::new(AtomicBool::new(false));
        let c_ran = Arc::new(AtomicBool::new(false));

        let (due, release) = (a_due_at.clone(), release_a.clone());
        wq.spawn(move || {
            let at = *due.get_or_init(|| Instant::now() + a_due);
            super::blocking_until(Some(at), || release.wait());
        })
        .unwrap();
        let (due, blocking) = (a_due_at.clone(), b_blocking.clone());
        wq.spawn(move || {
            let at = loop {
                if let Some(at) = due.get() {
                    break (*at).min(Instant::now() + Duration::from_millis(50));
                }
                std::hint::spin_loop();
            };
            while Instant::now() <= at {
                std::hint::spin_loop();
            }
            blocking.store(true, Ordering::SeqCst);
            super::blocking(|| b_rx.recv().unwrap());
        })
        .unwrap();
        let ran = c_ran.clone();
        wq.spawn(move || ran.store(true, Ordering::SeqCst)).unwrap();

        wait_for("B to block", || b_blocking.load(Ordering::SeqCst));
        let deadline = Instant::now() + window;
        while Instant::now() < deadline && !c_ran.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let beside = c_ran.load(Ordering::SeqCst);
        // Nothing is lost either way: A's worker takes C when it runs again.
        release_a.open();
        wait_for("C to run", || c_ran.load(Ordering::SeqCst));
        b_tx.send(()).unwrap();
        wq.flush().unwrap();
        beside
    }

    /// A's block is due (a sleep whose timer fired): it covers the CPU, so when B
    /// blocks no spare is woken for C; A's worker takes C once A's item ends. (The
    /// due time alone decides: A here waits for the test in fact.)
    #[test]
    fn a_sleeper_past_its_due_time_covers_the_cpu() {
        assert!(
            !c_starts_beside_a_and_b(Duration::from_millis(5), Duration::from_millis(100)),
            "a spare was woken beside a sleep that was over"
        );
    }

    /// A's due time is ahead: no cover, C starts on a spare when B blocks.
    #[test]
    fn a_sleeper_before_its_due_time_does_not_cover() {
        assert!(
            c_starts_beside_a_and_b(Duration::from_secs(3600), Duration::from_secs(10)),
            "C waited for a sleep not yet over"
        );
    }
}
