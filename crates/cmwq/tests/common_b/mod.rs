//! Shared helpers for the `wq_flush`, `wq_pool`, `wq_scenarios`, `wq_stress` and
//! `wq_cull` integration tests: gates, an event log, bounded spins and drop counters.
//!
//! Every wait here is bounded: a deadline only turns a hang into a failure, it is
//! never what a test asserts on. Assertions are about the order of events and counts.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How long a test waits for something that must happen before it declares failure.
/// Generous on purpose: the machine may be loaded by concurrent builds.
pub(crate) const LONG: Duration = Duration::from_secs(20);

/// How long a test gives a *forbidden* event the chance to show itself before it
/// moves on. Passing never depends on it; a wrong implementation is caught as long
/// as it misbehaves within this window, which it does on any sane machine.
pub(crate) const SETTLE: Duration = Duration::from_millis(60);

/// A one-way gate: closed until `open`, then open for good.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub(crate) fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    pub(crate) fn open(&self) {
        *self.open.lock() = true;
        self.cv.notify_all();
    }

    pub(crate) fn is_open(&self) -> bool {
        *self.open.lock()
    }

    /// Waits until open or `timeout`; returns whether it is open. Inside a work item
    /// call it through `cmwq::blocking`.
    pub(crate) fn wait_for(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.open.lock();
        while !*g {
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                return *g;
            }
        }
        true
    }

    /// Waits with the [`LONG`] deadline, announced to the pool as a block.
    pub(crate) fn wait_blocking(&self) -> bool {
        cmwq::blocking(|| self.wait_for(LONG))
    }
}

/// An append-only log of events, with waiting for an event to appear.
#[derive(Debug, Default)]
pub(crate) struct Log {
    events: Mutex<Vec<String>>,
    cv: Condvar,
}

impl Log {
    pub(crate) fn new() -> Arc<Log> {
        Arc::new(Log::default())
    }

    pub(crate) fn push(&self, e: impl Into<String>) {
        self.events.lock().push(e.into());
        self.cv.notify_all();
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.events.lock().clone()
    }

    pub(crate) fn has(&self, e: &str) -> bool {
        self.events.lock().iter().any(|x| x == e)
    }

    pub(crate) fn count(&self, e: &str) -> usize {
        self.events.lock().iter().filter(|x| *x == e).count()
    }

    /// Position of the first occurrence of `e`; panics with the whole log if absent.
    pub(crate) fn pos(&self, e: &str) -> usize {
        let ev = self.events.lock();
        ev.iter().position(|x| x == e).unwrap_or_else(|| panic!("event {e:?} missing from log {ev:?}"))
    }

    /// Asserts that `a` was logged before `b` (first occurrences).
    pub(crate) fn assert_before(&self, a: &str, b: &str) {
        let ev = self.events.lock();
        let pa = ev.iter().position(|x| x == a);
        let pb = ev.iter().position(|x| x == b);
        match (pa, pb) {
            (Some(pa), Some(pb)) => assert!(pa < pb, "expected {a:?} before {b:?}; log: {ev:?}"),
            _ => panic!("expected both {a:?} and {b:?} in log: {ev:?}"),
        }
    }

    /// Waits until `e` is logged or `timeout` passes; returns whether it is there.
    pub(crate) fn wait_for(&self, e: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.events.lock();
        loop {
            if g.iter().any(|x| x == e) {
                return true;
            }
            if self.cv.wait_until(&mut g, deadline).timed_out() {
                return g.iter().any(|x| x == e);
            }
        }
    }

    /// Waits for `e` with the [`LONG`] deadline and panics with the log if it never comes.
    pub(crate) fn expect(&self, e: &str) {
        if !self.wait_for(e, LONG) {
            panic!("event {e:?} did not happen within {LONG:?}; log: {:?}", self.snapshot());
        }
    }
}

/// Busy-waits (no blocking, no yielding to the pool) until `cond` holds or `max`
/// passes. Returns whether `cond` held. This is "burning CPU" in the kernel's sense.
pub(crate) fn spin_until(max: Duration, cond: impl FnMut() -> bool) -> bool {
    retry_until(max, cond, || {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    })
}

/// Tries `cond` until it holds or `max` passes, calling `pause` between tries.
/// Returns whether `cond` held.
fn retry_until(max: Duration, mut cond: impl FnMut() -> bool, mut pause: impl FnMut()) -> bool {
    let deadline = Instant::now() + max;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        pause();
    }
}

/// Burns CPU for `d` of wall time without blocking.
pub(crate) fn burn(d: Duration) {
    spin_until(d, || false);
}

/// Polls `cond` (sleeping 1 ms between tries, from a plain thread) until it holds or
/// `max` passes.
pub(crate) fn poll_until(max: Duration, cond: impl FnMut() -> bool) -> bool {
    retry_until(max, cond, || std::thread::sleep(Duration::from_millis(1)))
}

/// Counts its drops; clone the counter to watch it.
#[derive(Debug)]
pub(crate) struct DropGuard(pub(crate) Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Tests that depend on a CPU pool's concurrency accounting (a CPU-bound item must
/// hold back others) take this exclusively; the rest take it shared, so they still
/// run in parallel with each other.
static POOL_LOCK: RwLock<()> = RwLock::new(());

/// Held by a test that needs a CPU-bound item to keep its CPU. It also turns off
/// the CPU-intensive rule (`set_cpu_intensive_thresh`), which would let other
/// items start once the item has burnt 10 ms (or been charged that much for a
/// stolen vCPU); `wq_monitor.rs` tests that rule.
pub(crate) struct Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>);

impl Drop for Exclusive {
    fn drop(&mut self) {
        cmwq::set_cpu_intensive_thresh(Duration::from_millis(10));
    }
}

pub(crate) fn exclusive() -> Exclusive {
    let g = POOL_LOCK.write();
    cmwq::set_cpu_intensive_thresh(Duration::ZERO);
    Exclusive(g)
}

pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    POOL_LOCK.read()
}

/// The CPU used for single-CPU tests.
pub(crate) fn cpu0() -> usize {
    cmwq::allowed_cpus()[0]
}

/// A second CPU, if the process may use one.
pub(crate) fn cpu1() -> Option<usize> {
    cmwq::allowed_cpus().get(1).copied()
}

/// The snapshot of the normal or highpri per-CPU pool of `cpu`, if it exists yet.
pub(crate) fn pool_of(cpu: usize, highpri: bool) -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.cpu == Some(cpu) && p.highpri == highpri)
}

/// The unbound pool's snapshot (normal priority), if it exists yet.
pub(crate) fn unbound_pool() -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.cpu.is_none() && !p.highpri)
}

/// A call running inside a work item, known to be blocked; see [`blocked_in_item`].
#[derive(Debug)]
pub(crate) struct InItem<R> {
    helper: cmwq::Workqueue,
    work: cmwq::Work,
    result: Arc<Mutex<Option<R>>>,
}

impl<R> InItem<R> {
    /// Waits for the call to return and gives its result.
    pub(crate) fn join(self) -> R {
        self.work.flush_bounded().expect("flush of the helper item");
        let r = self.result.lock().take().expect("the helper item ran");
        drop(self.helper);
        r
    }
}

/// Runs `f` in a work item on `cpu`'s pool and returns once `f` is known to be
/// blocked in an announced wait (`cmwq::blocking`, as every wait of the library is):
/// a probe item queued behind it on the same CPU can only start when the pool stops
/// counting it as running. Logs `<tag> called` before and `<tag> returned` after `f`.
///
/// This is how a test knows, without timing, that a flush or cancel is waiting.
/// Requires that nothing else on that CPU burns without blocking meanwhile.
pub(crate) fn blocked_in_item<R: Send + 'static>(
    cpu: usize,
    log: &Arc<Log>,
    tag: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> InItem<R> {
    let helper = cmwq::Workqueue::builder(format!("helper-{tag}")).build().unwrap();
    blocked_in(&helper, cpu, log, tag, f)
}

/// [`blocked_in_item`] with the item on the per-CPU queue `wq`.
pub(crate) fn blocked_in<R: Send + 'static>(
    wq: &cmwq::Workqueue,
    cpu: usize,
    log: &Arc<Log>,
    tag: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> InItem<R> {
    let result = Arc::new(Mutex::new(None));
    let f = Mutex::new(Some(f));
    let work = {
        let (log, tag, result) = (log.clone(), tag.to_string(), result.clone());
        cmwq::Work::new(move |_| {
            let Some(f) = f.lock().take() else { return };
            log.push(format!("{tag} called"));
            let r = f();
            log.push(format!("{tag} returned"));
            *result.lock() = Some(r);
        })
    };
    let probe_tag = format!("{tag} probe");
    let probe = {
        let (log, probe_tag) = (log.clone(), probe_tag.clone());
        cmwq::Work::new(move |_| log.push(probe_tag.clone()))
    };
    // The probe goes on a queue of its own: `wq` may hold it back by max_active.
    let probe_wq = cmwq::Workqueue::builder(format!("probe-{tag}")).build().unwrap();
    assert_eq!(wq.queue_on(cpu, &work), Ok(true));
    log.expect(&format!("{tag} called"));
    assert_eq!(probe_wq.queue_on(cpu, &probe), Ok(true));
    log.expect(&probe_tag);
    probe_wq.destroy_bounded().unwrap();
    InItem { helper: wq.clone(), work, result }
}

/// Waits until `cpu`'s normal pool counts nobody running and nobody busy: a worker
/// of an earlier test may still be between its last item and going idle, and would
/// take the next item without a concurrency-management wake-up.
pub(crate) fn settle_pool(cpu: usize) {
    let ok = poll_until(LONG, || pool_of(cpu, false).is_none_or(|p| p.running == 0 && p.busy == 0));
    assert!(ok, "CPU {cpu}'s pool never settled: {:?}", pool_of(cpu, false));
}

/// Runs `f` on a fresh thread and waits at most [`LONG`] for it, so a stalled pool
/// or a lost wake-up fails the test instead of hanging it. Panics in `f` propagate.
pub(crate) fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LONG) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("{what}: sender dropped without a result"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not return within {LONG:?}"),
    }
}

/// Joins `h`, failing the test if the thread does not finish within [`LONG`].
pub(crate) fn join_bounded<T>(h: std::thread::JoinHandle<T>) -> T {
    assert!(poll_until(LONG, || h.is_finished()), "a helper thread did not finish within {LONG:?}");
    match h.join() {
        Ok(t) => t,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Waiting calls of the library, bounded by [`LONG`] (see [`bounded`]).
pub(crate) trait Bounded {
    type Flushed;
    fn flush_bounded(&self) -> Self::Flushed;
}

impl Bounded for cmwq::Work {
    type Flushed = Result<bool, cmwq::Error>;
    fn flush_bounded(&self) -> Self::Flushed {
        let w = self.clone();
        bounded("Work::flush", move || w.flush())
    }
}

impl Bounded for cmwq::Workqueue {
    type Flushed = Result<(), cmwq::Error>;
    fn flush_bounded(&self) -> Self::Flushed {
        let wq = self.clone();
        bounded("Workqueue::flush", move || wq.flush())
    }
}

/// `drain` and `destroy`, bounded by [`LONG`].
pub(crate) trait BoundedQueue {
    fn drain_bounded(&self) -> Result<(), cmwq::Error>;
    fn destroy_bounded(&self) -> Result<(), cmwq::Error>;
}

impl BoundedQueue for cmwq::Workqueue {
    fn drain_bounded(&self) -> Result<(), cmwq::Error> {
        let wq = self.clone();
        bounded("Workqueue::drain", move || wq.drain())
    }
    fn destroy_bounded(&self) -> Result<(), cmwq::Error> {
        let wq = self.clone();
        bounded("Workqueue::destroy", move || wq.destroy())
    }
}

/// `cancel_sync` and `disable_sync`, bounded by [`LONG`].
pub(crate) trait BoundedWork {
    fn cancel_sync_bounded(&self) -> Result<bool, cmwq::Error>;
    fn disable_sync_bounded(&self) -> Result<bool, cmwq::Error>;
}

impl BoundedWork for cmwq::Work {
    fn cancel_sync_bounded(&self) -> Result<bool, cmwq::Error> {
        let w = self.clone();
        bounded("Work::cancel_sync", move || w.cancel_sync())
    }
    fn disable_sync_bounded(&self) -> Result<bool, cmwq::Error> {
        let w = self.clone();
        bounded("Work::disable_sync", move || w.disable_sync())
    }
}

/// The kernel thread id of the calling thread (from `/proc/thread-self`), if known.
pub(crate) fn current_tid() -> Option<i32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The scheduler state letter and voluntary context-switch count of thread `tid`.
fn sched_state(tid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field =
        |name: &str| s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1));
    let state = field("State:")?.chars().next()?;
    let vol = field("voluntary_ctxt_switches:")?.parse().ok()?;
    Some((state, vol))
}

/// Waits until thread `tid` has stayed in one uninterrupted sleep (state S and no
/// voluntary context switch) for 50 ms: it has reached a real wait, not a short
/// lock hand-off on the way. Used where the library gives no observable sign that
/// a call got past a point (a workqueue flush moving to its next color) and a
/// probe item cannot tell (the whole flush is announced as blocking).
pub(crate) fn wait_parked(tid: i32) -> bool {
    let deadline = Instant::now() + LONG;
    let mut streak: Option<(u64, Instant)> = None;
    while Instant::now() < deadline {
        match sched_state(tid) {
            Some(('S', v)) => match streak {
                Some((v0, t0)) if v0 == v => {
                    if t0.elapsed() >= Duration::from_millis(50) {
                        return true;
                    }
                }
                _ => streak = Some((v, Instant::now())),
            },
            Some(_) => streak = None,
            // No /proc: fall back to a pause.
            None => {
                std::thread::sleep(Duration::from_millis(200));
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// A call running on a thread of its own; see [`parked_in_thread`].
#[derive(Debug)]
pub(crate) struct InThread<R>(std::thread::JoinHandle<R>);

impl<R> InThread<R> {
    pub(crate) fn join(self) -> R {
        join_bounded(self.0)
    }
}

/// Runs `f` on a new thread and returns once that thread sits in a real wait (see
/// [`wait_parked`]). Logs `<tag> called` before and `<tag> returned` after `f`.
pub(crate) fn parked_in_thread<R: Send + 'static>(
    log: &Arc<Log>,
    tag: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> InThread<R> {
    let tid = Arc::new(Mutex::new(None));
    let h = {
        let (log, tag, tid) = (log.clone(), tag.to_string(), tid.clone());
        std::thread::spawn(move || {
            *tid.lock() = Some(current_tid());
            log.push(format!("{tag} called"));
            let r = f();
            log.push(format!("{tag} returned"));
            r
        })
    };
    log.expect(&format!("{tag} called"));
    if let Some(tid) = tid.lock().expect("tid recorded") {
        assert!(wait_parked(tid), "{tag}: the thread never settled into a wait; log: {:?}", log.snapshot());
    } else {
        std::thread::sleep(Duration::from_millis(200));
    }
    InThread(h)
}

/// A per-CPU queue whose pool on `cpu0` is warm: at least two workers exist (the
/// pool's first worker creates an idle reserve before its first item), so nothing
/// a test observes is the pool's first creation.
pub(crate) fn warm_queue(name: &str) -> cmwq::Workqueue {
    let wq = cmwq::Workqueue::builder(name).build().unwrap();
    for _ in 0..2 {
        let w = cmwq::Work::new(|_| {});
        wq.queue_on(cpu0(), &w).unwrap();
        w.flush().unwrap();
    }
    wq
}

/// On `cpu`, an item that sleeps in plain `std::thread::sleep` (telling nobody)
/// until the item queued behind it has run; returns once both ran. Only the sleep
/// monitor can let the second one start; a deadline turns a stall into a failure.
pub(crate) fn plain_sleeper_with_one_behind(wq: &cmwq::Workqueue, cpu: usize) {
    use std::sync::atomic::AtomicBool;
    let deadline = Instant::now() + LONG;
    let behind_ran = Arc::new(AtomicBool::new(false));
    let b = behind_ran.clone();
    let sleeper = cmwq::Work::new(move |_| {
        while !b.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let b = behind_ran.clone();
    let behind = cmwq::Work::new(move |_| b.store(true, Ordering::SeqCst));
    wq.queue_on(cpu, &sleeper).unwrap();
    wq.queue_on(cpu, &behind).unwrap();
    sleeper.flush().unwrap();
    behind.flush().unwrap();
    assert!(behind_ran.load(Ordering::SeqCst), "the item behind the plain sleeper never ran");
}

/// Queues 20 items on `cpu0` that each sleep `sleep` in plain `std::thread::sleep`
/// and then burn 200 µs of CPU, waits for them, and checks that the pool's
/// accounting is exact again: no worker left counted as running or busy (a
/// leaked mark or a double count would leave one).
pub(crate) fn assert_exact_after_plain_sleepers(wq: &cmwq::Workqueue, sleep: Duration) {
    let n = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let n = n.clone();
        let w = cmwq::Work::new(move |_| {
            std::thread::sleep(sleep);
            let t = cmwq::debug::thread_cpu_time();
            while cmwq::debug::thread_cpu_time() - t < Duration::from_micros(200) {}
            n.fetch_add(1, Ordering::SeqCst);
        });
        assert!(wq.queue_on(cpu0(), &w).unwrap());
    }
    wq.flush().unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 20);
    let settled = poll_until(LONG, || pool_of(cpu0(), false).is_some_and(|p| p.running == 0 && p.busy == 0));
    assert!(settled, "nr_running did not return to 0: {:?}", pool_of(cpu0(), false));
}

/// `w1` logs `w1 start`, blocks in `block` without telling the pool, and logs
/// what `block` returns; `w2`, queued behind it on the same CPU, logs `w2 start`
/// and `w2 done` around `release`. Returns the log once both ran.
pub(crate) fn blocked_then_second(
    name: &str,
    block: impl Fn() -> &'static str + Send + Sync + 'static,
    release: impl Fn() + Send + Sync + 'static,
) -> Arc<Log> {
    let wq = warm_queue(name);
    let log = Log::new();
    let w1 = {
        let log = log.clone();
        cmwq::Work::new(move |_| {
            log.push("w1 start");
            log.push(block());
        })
    };
    let w2 = {
        let log = log.clone();
        cmwq::Work::new(move |_| {
            log.push("w2 start");
            release();
            log.push("w2 done");
        })
    };
    let before = cmwq::debug::monitor();
    assert!(wq.queue_on(cpu0(), &w1).unwrap());
    log.expect("w1 start");
    assert!(wq.queue_on(cpu0(), &w2).unwrap());
    w1.flush().unwrap();
    w2.flush().unwrap();
    let after = cmwq::debug::monitor();
    assert!(after.blocked > before.blocked, "the monitor never took the blocked worker out: {after:?}");
    wq.destroy().unwrap();
    log
}

pub(crate) fn assert_second_ran_while_first_blocked(log: &Log, woke: &str) {
    log.assert_before("w1 start", "w2 start");
    // w2 logs "w2 start" before it releases w1, so this order proves that w2
    // started while w1 was blocked.
    log.assert_before("w2 start", woke);
    assert!(log.has(woke), "w1 was not released by w2: {:?}", log.snapshot());
}

/// [`blocked_then_second`] with `w1` in plain sleeps until `w2` releases it.
pub(crate) fn plain_sleeper_then_second(name: &str) -> Arc<Log> {
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = released.clone();
    blocked_then_second(name, move || plain_sleep_until(&released), move || r.store(true, Ordering::SeqCst))
}

/// Plain `std::thread::sleep`s, in 20 ms slices, until `released` is set (or
/// `LONG` passed): what it returns says which.
pub(crate) fn plain_sleep_until(released: &std::sync::atomic::AtomicBool) -> &'static str {
    let deadline = Instant::now() + LONG;
    while !released.load(Ordering::SeqCst) {
        if Instant::now() > deadline {
            return "w1 wake (timed out)";
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    "w1 wake"
}
