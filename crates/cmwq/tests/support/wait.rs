//! The deadline and the bounded waits built on it.

use std::time::{Duration, Instant};

/// How long a test waits for something that must happen before it declares
/// failure: a liveness bound, never an assertion about speed. Generous on purpose:
/// a loaded machine (concurrent builds, CPU hogs) slows the tests down, it must not
/// fail them.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// How long a test gives a *forbidden* event the chance to show itself before it
/// moves on. Passing never depends on it; a wrong implementation is caught as long
/// as it misbehaves within this window, which it does on any sane machine. Never
/// use it for something that must happen: that is what [`DEADLINE`] is for.
pub(crate) const SETTLE: Duration = Duration::from_millis(60);

/// Tries `cond` until it holds or `max` passes, calling `pause(tries)` between
/// tries. Returns whether `cond` held.
fn retry_until(max: Duration, mut cond: impl FnMut() -> bool, mut pause: impl FnMut(u32)) -> bool {
    let deadline = Instant::now() + max;
    let mut tries = 0u32;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        pause(tries);
        tries = tries.saturating_add(1);
    }
}

/// Polls `cond` from a plain thread until it holds or `max` passes; returns whether
/// it held. Yields for the first tries, then sleeps, 100 µs more each try up to
/// 1 ms: quick to see a quick event, cheap while waiting for a slow one.
pub(crate) fn poll_until(max: Duration, cond: impl FnMut() -> bool) -> bool {
    retry_until(max, cond, |tries| match tries {
        0..10 => std::thread::yield_now(),
        n => std::thread::sleep(Duration::from_micros(100 * u64::from(n - 9)).min(Duration::from_millis(1))),
    })
}

/// Polls `cond` until it holds; panics, naming `what`, after [`DEADLINE`].
#[track_caller]
pub(crate) fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    assert!(poll_until(DEADLINE, cond), "timed out after {DEADLINE:?} waiting for: {what}");
}

/// Busy-waits (no blocking, no yielding to the pool) until `cond` holds or `max`
/// passes. Returns whether `cond` held. This is "burning CPU" in the kernel's sense.
pub(crate) fn spin_until(max: Duration, cond: impl FnMut() -> bool) -> bool {
    retry_until(max, cond, |_| {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    })
}

/// Burns CPU for `d` of wall time without blocking.
pub(crate) fn burn(d: Duration) {
    spin_until(d, || false);
}

/// Burns `d` of the calling thread's CPU time without blocking: longer in wall
/// time when the thread loses its CPU meanwhile. Bounded by [`DEADLINE`] of wall
/// time, in case the thread's CPU clock stops moving.
pub(crate) fn burn_cpu(d: Duration) {
    let t0 = cmwq::debug::thread_cpu_time();
    spin_until(DEADLINE, || cmwq::debug::thread_cpu_time() - t0 >= d);
}

/// Runs `f` on a fresh thread and waits at most [`DEADLINE`] for it, so a stalled
/// pool or a lost wake-up fails the test instead of hanging it. Panics in `f`
/// propagate.
pub(crate) fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("{what}: sender dropped without a result"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {DEADLINE:?}")
        }
    }
}

/// Joins `h`, failing the test if the thread does not finish within [`DEADLINE`].
pub(crate) fn join_bounded<T>(h: std::thread::JoinHandle<T>) -> T {
    assert!(poll_until(DEADLINE, || h.is_finished()), "a helper thread did not finish within {DEADLINE:?}");
    match h.join() {
        Ok(t) => t,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Waiting calls of the library, bounded by [`DEADLINE`] (see [`bounded`]).
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

/// `drain` and `destroy`, bounded by [`DEADLINE`].
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

/// `cancel_sync` and `disable_sync`, bounded by [`DEADLINE`].
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
/// probe item cannot tell (the whole flush is announced as blocking). Returns
/// false if that did not happen within [`DEADLINE`].
pub(crate) fn wait_parked(tid: i32) -> bool {
    let deadline = Instant::now() + DEADLINE;
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
