//! The `cmwq` comparison benchmarks: a harness that runs the same workloads on
//! cmwq and on peer executors and writes markdown, JSON and plots, plus the
//! helpers the micro-benchmarks share (percentiles, a counting latch, a one-shot
//! timestamp slot, CPU pinning).
//!
//! # The harness
//!
//! [`run`] (also the `cmwq-bench` binary; `--quick` for a CI smoke run):
//!
//! ```no_run
//! let opts = cmwq_bench::BenchOpts {
//!     quick: true,
//!     out_dir: "bench-results".into(),
//!     only: Some(vec!["mixed".into(), "cmwq-bound".into(), "tokio-blocking".into()]),
//! };
//! let report = cmwq_bench::run(&opts, &mut |line| eprintln!("{line}"))?;
//! println!("{}", report.to_markdown());
//! # Ok::<(), cmwq_bench::Error>(())
//! ```
//!
//! Executors ([`executors`]): `cmwq-bound` (per-CPU workqueue, blocking announced
//! with `cmwq::sleep`), `cmwq-bound-plain` (the same, blocking with a plain
//! `std::thread::sleep`), `cmwq-unbound`, `rayon` (global pool),
//! `tokio-blocking` (`spawn_blocking` on a default runtime), `fixed-pool` (one
//! thread per CPU on a crossbeam channel), `thread-per-item`, and `mt-wq` (the
//! pre-cmwq kernel multi-threaded workqueue: dedicated threads per queue per CPU).
//!
//! Workloads: `noop` (throughput, one producer and one per CPU), `wake`
//! (queue-to-start latency on an idle executor, beside a bare park/unpark),
//! `mixed` (items burn X of CPU then block Y, at several X:Y; makespan against
//! the ideal bound, peak threads), `many-queues` (10,000 workqueues: threads,
//! RSS per idle queue, create/destroy time), `timers` (cmwq's delayed work beside
//! `tokio::time`: arm/cancel cost with 10⁶ timers armed, firing lateness idle
//! and with every CPU busy), `detect` (the sleep monitor: time from an
//! unannotated block to the next item starting on that CPU, beside an announced
//! one, and the monitor thread's own CPU time idle and with every pool saturated).
//!
//! # The micro-benchmarks
//!
//! In `benches/`:
//!
//! - `queue` (criterion): queue + execute throughput of a batch of no-op items,
//!   cmwq beside `rayon::spawn` and a plain channel feeding one thread.
//! - `wake` (custom harness): queue-to-start latency on an idle pool, beside a bare
//!   thread-to-thread handoff (park/unpark and Mutex+Condvar) and rayon.

mod config;
pub mod detect;
mod error;
pub mod executors;
mod harness;
pub mod plot;
pub mod procfs;
pub mod producers;
pub mod report;
pub mod timers;
mod workloads;

pub use config::Config;
pub use error::Error;
pub use harness::{
    executor_threads, output_paths, retire_cmwq_workers, run, run_with_config, select, warmup_items,
    BenchOpts, Selection, WORKLOADS,
};
pub use report::Report;
pub use workloads::burn;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// The `p`-th percentile (0..=100) of an ascending slice, nearest-rank method:
/// the smallest value such that at least `p` % of the samples are at or below it.
/// `None` for an empty slice.
///
/// # Panics
/// If `p` is not within 0..=100 (NaN included).
pub fn percentile_sorted<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    assert!((0.0..=100.0).contains(&p), "percentile {p} out of 0..=100");
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Nearest rank: ceil(p/100 * n), 1-based, at least 1.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// The median of unsorted values (the lower middle for an even count, like
/// [`percentile_sorted`] at 50). `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, 50.0)
}

/// Summary of a set of latency samples in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample (ns).
    pub min: u64,
    /// Median (ns).
    pub p50: u64,
    /// 90th percentile (ns).
    pub p90: u64,
    /// 99th percentile (ns).
    pub p99: u64,
    /// Largest sample (ns).
    pub max: u64,
    /// Arithmetic mean (ns).
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (ns; any order). `None` when empty.
    pub fn from_samples(samples: &[u64]) -> Option<Summary> {
        let mut s = samples.to_vec();
        s.sort_unstable();
        let n = s.len();
        let pct = |p| percentile_sorted(&s, p);
        Some(Summary {
            n,
            min: *s.first()?,
            p50: pct(50.0)?,
            p90: pct(90.0)?,
            p99: pct(99.0)?,
            max: *s.last()?,
            mean: s.iter().map(|&x| x as f64).sum::<f64>() / n as f64,
        })
    }
}

/// Nanoseconds as microseconds, for printing.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

// ---------------------------------------------------------------------------
// Latch
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// A process-wide time base, so that timestamps fit in a `u64` of nanoseconds.
pub fn epoch() -> Instant {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`] (monotonic clock; comparable across threads).
#[inline]
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A one-shot timestamp slot: a consumer thread [`stamp`](Self::stamp)s it once,
/// the producer [`take`](Self::take)s the value. Empty is encoded as 0.
#[derive(Debug, Default)]
pub struct StampSlot(AtomicU64);

impl StampSlot {
    /// An empty slot.
    pub const fn new() -> StampSlot {
        StampSlot(AtomicU64::new(0))
    }

    /// Records [`now_ns`] (never 0, so it reads as present).
    #[inline]
    pub fn stamp(&self) {
        self.0.store(now_ns().max(1), Ordering::Release);
    }

    /// Takes the recorded timestamp, leaving the slot empty.
    pub fn take(&self) -> Option<u64> {
        match self.0.swap(0, Ordering::AcqRel) {
            0 => None,
            t => Some(t),
        }
    }
}

// ---------------------------------------------------------------------------
// CPU placement
// ---------------------------------------------------------------------------

/// The CPUs in the calling thread's affinity mask, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bitmask; all-zero bytes are a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads bit `c` < CPU_SETSIZE of an initialised set.
    (0..max).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Restricts the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "cpu beyond CPU_SETSIZE"));
    }
    // SAFETY: all-zero bytes are a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE (checked above) and `set` is initialised.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Restores the calling thread's affinity to `cpus`.
pub fn set_current_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: all-zero bytes are a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus.iter().filter(|&&c| c < 8 * std::mem::size_of::<libc::cpu_set_t>()) {
        // SAFETY: `c` < CPU_SETSIZE (filtered) and `set` is initialised.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads the caller's CPU.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_sorted(&v, 0.0), Some(1));
        assert_eq!(percentile_sorted(&v, 1.0), Some(1));
        assert_eq!(percentile_sorted(&v, 50.0), Some(50));
        assert_eq!(percentile_sorted(&v, 90.0), Some(90));
        assert_eq!(percentile_sorted(&v, 99.0), Some(99));
        assert_eq!(percentile_sorted(&v, 99.5), Some(100));
        assert_eq!(percentile_sorted(&v, 100.0), Some(100));
        let e: [u64; 0] = [];
        assert_eq!(percentile_sorted(&e, 50.0), None);
        assert_eq!(percentile_sorted(&[7u64], 99.0), Some(7));
        // Small sets: p50 of 4 values is the 2nd, p99 the last.
        assert_eq!(percentile_sorted(&[10u64, 20, 30, 40], 50.0), Some(20));
        assert_eq!(percentile_sorted(&[10u64, 20, 30, 40], 99.0), Some(40));
    }

    #[test]
    #[should_panic]
    fn percentile_out_of_range() {
        let _ = percentile_sorted(&[1u64], 101.0);
    }

    #[test]
    fn median_of_floats() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn summary_of_samples() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        v.push(1_000_000);
        let s = Summary::from_samples(&v).unwrap();
        assert_eq!(s.n, 1001);
        assert_eq!(s.min, 1);
        assert_eq!(s.max, 1_000_000);
        assert_eq!(s.p50, 501);
        assert_eq!(s.p90, 901);
        assert_eq!(s.p99, 991);
        assert!((s.mean - (500_500.0 + 1_000_000.0) / 1001.0).abs() < 1e-6);
        assert_eq!(Summary::from_samples(&[]), None);
    }

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
    fn stamp_slot_roundtrip() {
        let s = StampSlot::new();
        assert_eq!(s.take(), None);
        let before = now_ns();
        s.stamp();
        let t = s.take().unwrap();
        assert!(t >= before.max(1));
        assert_eq!(s.take(), None);
    }

    #[test]
    fn pinning_moves_the_thread() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        let last = *cpus.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            assert_eq!(current_cpu(), Some(last));
        })
        .join()
        .unwrap();
        std::thread::spawn(move || {
            set_current_affinity(&cpus).unwrap();
            assert_eq!(allowed_cpus(), cpus);
        })
        .join()
        .unwrap();
    }
}
