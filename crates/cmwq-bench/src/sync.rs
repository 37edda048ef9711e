//! A process-wide time base, a counting latch, and the bare pinned thread
//! that the latency workloads compare with (the floor of a hand-off).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A process-wide time base, so that timestamps fit in a `u64` of nanoseconds.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process-wide epoch (monotonic; comparable across threads).
#[inline]
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A reusable countdown latch with a single waiter: the thread that created it.
///
/// Producers of a batch call [`reset`](Self::reset)`(n)`, hand out `n` tasks that
/// each call [`count_down`](Self::count_down) once, and [`wait`](Self::wait). The
/// waiter spins only briefly, then parks (a futex wait), so that on a small machine
/// it does not steal the CPU that the tasks need. The last `count_down` unparks it:
/// one wake-up per batch, not per task.
#[derive(Debug)]
pub struct CountLatch {
    remaining: AtomicUsize,
    waiter: Thread,
}

/// How many times [`CountLatch::wait`] polls before parking.
const LATCH_SPINS: u32 = 64;

impl CountLatch {
    /// A latch at zero (open), to be waited on by the calling thread.
    pub fn new() -> CountLatch {
        CountLatch { remaining: AtomicUsize::new(0), waiter: std::thread::current() }
    }

    /// A latch at zero that lives for the rest of the process, so that tasks can
    /// capture a plain `&'static` reference (no reference counting per task).
    pub fn leaked() -> &'static CountLatch {
        Box::leak(Box::new(CountLatch::new()))
    }

    /// Arms the latch for `n` count-downs. Only while no count-down is outstanding.
    pub fn reset(&self, n: usize) {
        debug_assert_eq!(self.remaining.load(Ordering::Relaxed), 0, "reset of a latch in use");
        // Release: pairs with the Acquire of `is_open`, which must not see the
        // latch open from before this reset.
        self.remaining.store(n, Ordering::Release);
    }

    /// One task is done; the last one wakes the waiter. Returns whether this was the last.
    #[inline]
    pub fn count_down(&self) -> bool {
        self.count_down_then(|| ())
    }

    /// [`count_down`](Self::count_down); the last one runs `on_last` before it wakes the waiter.
    #[inline]
    pub fn count_down_then(&self, on_last: impl FnOnce()) -> bool {
        // AcqRel: the task's effects happen before the waiter's Acquire in `is_open`.
        let prev = self.remaining.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev > 0, "count_down below zero");
        if prev == 1 {
            on_last();
            self.waiter.unpark();
            true
        } else {
            false
        }
    }

    /// Whether every count-down has happened.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    /// The count-downs still outstanding.
    pub fn remaining(&self) -> usize {
        self.remaining.load(Ordering::Acquire)
    }

    /// Waits until the count reaches zero. Must be called by the creating thread.
    pub fn wait(&self) {
        debug_assert_eq!(std::thread::current().id(), self.waiter.id(), "wait() from a foreign thread");
        for _ in 0..LATCH_SPINS {
            if self.is_open() {
                return;
            }
            std::hint::spin_loop();
        }
        while !self.is_open() {
            // A stale token from an earlier batch only causes one extra loop.
            std::thread::park();
        }
    }

    /// As [`wait`](Self::wait), giving up after `timeout`. Returns whether it opened.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_open() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::park_timeout(deadline - now);
        }
        true
    }
}

impl Default for CountLatch {
    fn default() -> Self {
        CountLatch::new()
    }
}

/// A thread pinned to a CPU that parks until [`fire`](Self::fire) unparks it,
/// then runs its action once: the bare hand-off the latency workloads measure
/// beside the executors. Stopped and joined when dropped.
pub(crate) struct ParkedThread {
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    th: Option<std::thread::JoinHandle<()>>,
}

impl ParkedThread {
    /// Starts the thread `name`, pinned to `cpu`, running `on_go` at each fire.
    pub(crate) fn spawn(
        name: String,
        cpu: usize,
        on_go: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (go, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let th = {
            let (go, stop) = (go.clone(), stop.clone());
            std::thread::Builder::new().name(name).spawn(move || {
                let _ = crate::cpu::pin_current_thread(cpu);
                while !stop.load(Ordering::Acquire) {
                    std::thread::park();
                    // A spurious wake-up finds no `go` and parks again.
                    if go.swap(false, Ordering::AcqRel) {
                        on_go();
                    }
                }
            })?
        };
        Ok(ParkedThread { go, stop, th: Some(th) })
    }

    /// Unparks the thread to run its action once; returns [`now_ns`] just
    /// before the unpark.
    pub(crate) fn fire(&self) -> u64 {
        self.go.store(true, Ordering::Release);
        let t0 = now_ns();
        if let Some(th) = &self.th {
            th.thread().unpark();
        }
        t0
    }
}

impl Drop for ParkedThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(th) = self.th.take() {
            th.thread().unpark();
            let _ = th.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn latch_counts_down_across_threads() {
        let latch = Arc::new(CountLatch::new());
        for round in 0..50 {
            let n = 1 + round % 7;
            latch.reset(n);
            assert!(!latch.is_open());
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    let l = latch.clone();
                    std::thread::spawn(move || l.count_down())
                })
                .collect();
            latch.wait();
            assert!(latch.is_open());
            let lasts = hs.into_iter().map(|h| h.join().unwrap()).filter(|&last| last).count();
            assert_eq!(lasts, 1, "exactly one count-down is the last");
        }
    }

    #[test]
    fn latch_wait_timeout() {
        let latch = CountLatch::new();
        assert!(latch.wait_timeout(Duration::from_millis(1)));
        latch.reset(1);
        assert!(!latch.wait_timeout(Duration::from_millis(5)));
        assert_eq!(latch.remaining(), 1);
        assert!(latch.count_down());
        assert!(latch.wait_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        std::thread::sleep(Duration::from_millis(1));
        assert!(now_ns() >= a + 1_000_000);
    }
}
