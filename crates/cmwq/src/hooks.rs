//! The userspace scheduler hooks. The kernel's scheduler calls
//! `wq_worker_sleeping()` when a worker blocks and `wq_worker_running()` when it
//! runs again; a process gets no such calls, so code that may block says so with
//! [`blocking`] or [`sleep`]. The transitions themselves are the pools'
//! (`pool/cm.rs`), shared with the sleep monitor, which drives them for blocking
//! nobody announced.

use std::time::{Duration, Instant};

use crate::pool::blocking_until;

/// Runs `f`, which may block, telling the worker pool first (like Go's
/// `entersyscall` or Java's `ForkJoinPool.managedBlock`).
///
/// Inside a work item, the worker leaves `nr_running` for the duration, so
/// another item of its pool (per-CPU or unbound) can start at once instead of
/// waiting behind the block. Outside a worker, and in CPU-intensive items, this
/// is a plain call. Nesting is allowed.
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

/// A sleep that tells the worker pool (`blocking(|| std::thread::sleep(d))`).
///
/// The pool also knows when the sleep ends: once the deadline, the thread's timer
/// slack and a wake-up allowance have passed, the sleeping worker is taken to be
/// runnable, and a worker of the same per-CPU pool that blocks then leaves the CPU
/// to it instead of waking a spare (pool/README.md, "Runnable sleepers"). The
/// sleep lasts at least `d` from the call. Outside a work item it is a plain
/// sleep.
///
/// Here `waiter` polls with `cmwq::sleep`, and `setter`, queued behind it on
/// the same CPU, gets to run during those sleeps:
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cmwq::{Work, Workqueue};
///
/// let wq = Workqueue::builder("poll").build()?;
/// let cpu = cmwq::allowed_cpus()[0];
/// let flag = Arc::new(AtomicBool::new(false));
/// let (f1, f2) = (flag.clone(), flag.clone());
/// let waiter = Work::new(move |_| {
///     for _ in 0..10_000 {
///         if f1.load(Ordering::Acquire) {
///             break;
///         }
///         cmwq::sleep(Duration::from_millis(1)); // the pool starts `setter` meanwhile
///     }
/// });
/// let setter = Work::new(move |_| f2.store(true, Ordering::Release));
/// wq.queue_on(cpu, &waiter)?;
/// wq.queue_on(cpu, &setter)?;
/// waiter.flush()?;
/// assert!(flag.load(Ordering::Acquire)); // set while `waiter` still ran
/// # Ok::<(), cmwq::Error>(())
/// ```
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
            let slack = crate::platform::sys::current_thread_timer_slack();
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

    use crate::platform::topology::Topology;
    use crate::registry::Registry;
    use crate::Workqueue;

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
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
        /// Waits until opened, 60 s at most (a liveness bound: a hung pool fails
        /// the test instead of hanging it).
        fn wait(&self) {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut open = self.0.lock().unwrap();
            while !*open {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "the gate was never opened");
                open = self.1.wait_timeout(open, left).unwrap().0;
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
        reg.ctx.config.set_monitor(false);
        let wq = Workqueue::builder("cover").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
        let release_a = Arc::new(Gate::default());
        let (b_tx, b_rx) = mpsc::channel::<()>();
        let a_due_at = Arc::new(OnceLock::<Instant>::new());
        let b_blocking = Arc::new(AtomicBool::new(false));
        let c_ran = Arc::new(AtomicBool::new(false));

        let (due, release) = (a_due_at.clone(), release_a.clone());
        wq.spawn(move || {
            let at = *due.get_or_init(|| Instant::now() + a_due);
            crate::pool::blocking_until(Some(at), || release.wait());
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
