//! Queue-to-start latency on an idle pool, beside bare thread-to-thread handoffs.
//!
//! A custom harness (criterion reports means; wake-up latency needs percentiles).
//! For every sample the producer sleeps `WAKE_GAP_US` (default 500 µs) so that the
//! consumer is parked again, takes `t0 = now` right before the call that hands the
//! task over (`queue()`, `unpark()`, `notify_one()`, `rayon::spawn`), and the
//! consumer takes `t1 = now` as the first thing it does. The sample is `t1 - t0`.
//! The producer then parks on a latch that the consumer counts down after its stamp.
//!
//! The producer is pinned to CPU A (the first allowed CPU); B is the next one
//! (A again on a 1-CPU machine). Variants:
//!
//! - `cmwq_queue_local`: `wq.queue(&w)` of a preallocated item on a per-CPU queue:
//!   the worker of A's pool (pinned to A) starts it. Same-CPU wake-up.
//! - `cmwq_queue_on_B`: `wq.queue_on(B, &w)`: cross-CPU wake-up of B's worker.
//! - `cmwq_unbound`: `wq.queue(&w)` on an `UNBOUND` queue (workers float).
//! - `cmwq_spawn_local`: `wq.spawn(closure)` on the per-CPU queue.
//! - `park_B`, `condvar_B`: a bare thread pinned to B, parked in `thread::park()` /
//!   `Condvar::wait`; the producer stamps and `unpark()`s / `notify_one()`s it.
//! - `park_A`, `condvar_A`: the same with the thread pinned to A (same CPU).
//! - `park_locked_B`, `park_locked_A`: park/unpark, but the producer unparks while
//!   holding a `parking_lot::Mutex` that the woken thread must take before its stamp,
//!   as `queue()` wakes a cmwq worker under the pool lock. A control that isolates
//!   the cost of waking under a lock.
//! - `rayon_spawn`: `rayon::spawn(closure)` onto the idle global pool (floating).
//!
//! Variants are interleaved in `ROUNDS` rounds, so slow phases of the machine
//! (other builds on it) hit all of them alike.
//!
//! Environment: `WAKE_SAMPLES` (per variant, default 2000), `WAKE_GAP_US` (500).
//!
//! Run: `cargo bench -p cmwq-bench --bench wake`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cmwq::{Work, Workqueue, WqFlags};
use cmwq_bench::{
    allowed_cpus, now_ns, pin_current_thread, set_current_affinity, us, CountLatch, StampSlot, Summary,
};

const ROUNDS: usize = 10;
const WARMUP: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One way of handing a task to another thread: `fire` takes t0 and hands over;
/// the consumer stamps `slot` and counts `latch` down.
struct Variant {
    name: String,
    fire: Box<dyn FnMut() -> u64>,
    slot: &'static StampSlot,
    latch: &'static CountLatch,
    samples: Vec<u64>,
    timeouts: usize,
}

impl Variant {
    fn new(
        name: impl Into<String>,
        slot: &'static StampSlot,
        latch: &'static CountLatch,
        fire: impl FnMut() -> u64 + 'static,
    ) -> Variant {
        Variant { name: name.into(), fire: Box::new(fire), slot, latch, samples: Vec::new(), timeouts: 0 }
    }

    /// One sample (after the idle gap). `None` if the consumer never ran.
    fn sample(&mut self, gap: Duration) -> Option<u64> {
        std::thread::sleep(gap);
        self.latch.reset(1);
        let t0 = (self.fire)();
        if !self.latch.wait_timeout(Duration::from_secs(2)) {
            self.timeouts += 1;
            // Let it finish before the next sample, so the latch is not reset in use.
            self.latch.wait();
        }
        let t1 = self.slot.take()?;
        Some(t1.saturating_sub(t0))
    }
}

/// A bare consumer thread pinned to `cpu`, woken with park/unpark.
struct ParkThread {
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ParkThread {
    /// With `lock`, the woken thread takes it before its stamp, as a cmwq worker
    /// takes its pool lock before it can start the item.
    fn spawn(
        cpu: usize,
        slot: &'static StampSlot,
        latch: &'static CountLatch,
        lock: Option<&'static parking_lot::Mutex<()>>,
    ) -> ParkThread {
        let go = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (go.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("bare-park-{cpu}"))
            .spawn(move || {
                let _ = pin_current_thread(cpu);
                loop {
                    std::thread::park();
                    if g.swap(false, Ordering::AcqRel) {
                        let guard = lock.map(|l| l.lock());
                        slot.stamp();
                        drop(guard);
                        latch.count_down();
                    }
                    if s.load(Ordering::Acquire) {
                        break;
                    }
                }
            })
            .unwrap();
        ParkThread { go, stop, handle: Some(handle) }
    }

    fn thread(&self) -> std::thread::Thread {
        self.handle.as_ref().unwrap().thread().clone()
    }
}

impl Drop for ParkThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// A bare consumer thread pinned to `cpu`, woken with Mutex + Condvar.
struct CondvarThread {
    shared: Arc<(Mutex<(bool, bool)>, Condvar)>, // (go, stop)
    handle: Option<JoinHandle<()>>,
}

impl CondvarThread {
    fn spawn(cpu: usize, slot: &'static StampSlot, latch: &'static CountLatch) -> CondvarThread {
        let shared = Arc::new((Mutex::new((false, false)), Condvar::new()));
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("bare-condvar-{cpu}"))
            .spawn(move || {
                let _ = pin_current_thread(cpu);
                let (m, cv) = &*sh;
                let mut g = m.lock().unwrap();
                loop {
                    while !g.0 && !g.1 {
                        g = cv.wait(g).unwrap();
                    }
                    if g.0 {
                        slot.stamp();
                        g.0 = false;
                        latch.count_down();
                    }
                    if g.1 {
                        break;
                    }
                }
            })
            .unwrap();
        CondvarThread { shared, handle: Some(handle) }
    }
}

impl Drop for CondvarThread {
    fn drop(&mut self) {
        self.shared.0.lock().unwrap().1 = true;
        self.shared.1.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported, ignore arguments.
    let samples = env_usize("WAKE_SAMPLES", 2000).max(ROUNDS);
    let gap = Duration::from_micros(env_usize("WAKE_GAP_US", 500) as u64);
    let all = allowed_cpus();
    let a = *all.first().expect("no allowed CPU");
    let b = all.get(1).copied().unwrap_or(a);
    let _ = now_ns(); // fix the epoch

    // Work queues and peers are created, and their first workers spawned, while the
    // main thread is still unpinned: threads inherit the affinity of their creator,
    // and unbound cmwq workers (and rayon's) do not reset it.
    let wq = Workqueue::builder("wake-percpu").build().unwrap();
    let wq_unbound = Workqueue::builder("wake-unbound").flags(WqFlags::UNBOUND).build().unwrap();
    {
        let warm = Work::new(|_| {});
        for cpu in [a, b] {
            wq.queue_on(cpu, &warm).unwrap();
            warm.flush().unwrap();
        }
        wq_unbound.queue(&warm).unwrap();
        warm.flush().unwrap();
        let l = CountLatch::new();
        l.reset(1);
        let lr: &CountLatch = &l;
        rayon::scope(|s| {
            s.spawn(|_| {
                lr.count_down();
            })
        });
        l.wait();
        // Let the pools' reserve workers come up.
        std::thread::sleep(Duration::from_millis(20));
    }
    pin_current_thread(a).expect("pin the producer");

    let mut variants: Vec<Variant> = Vec::new();
    let mut keep_alive: Vec<Box<dyn std::any::Any>> = Vec::new();

    // --- cmwq, preallocated item, local per-CPU pool (same CPU as the producer) ---
    {
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let w = Work::new(move |_| {
            slot.stamp();
            latch.count_down();
        });
        let wq = wq.clone();
        variants.push(Variant::new("cmwq_queue_local", slot, latch, move || {
            let t0 = now_ns();
            assert!(matches!(wq.queue(&w), Ok(true)));
            t0
        }));
    }
    // --- cmwq, preallocated item, queue_on(B) ---
    {
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let w = Work::new(move |_| {
            slot.stamp();
            latch.count_down();
        });
        let wq = wq.clone();
        variants.push(Variant::new("cmwq_queue_on_B", slot, latch, move || {
            let t0 = now_ns();
            assert!(matches!(wq.queue_on(b, &w), Ok(true)));
            t0
        }));
    }
    // --- cmwq, preallocated item, unbound ---
    {
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let w = Work::new(move |_| {
            slot.stamp();
            latch.count_down();
        });
        let wq = wq_unbound.clone();
        variants.push(Variant::new("cmwq_unbound", slot, latch, move || {
            let t0 = now_ns();
            assert!(matches!(wq.queue(&w), Ok(true)));
            t0
        }));
    }
    // --- cmwq spawn, local per-CPU pool ---
    {
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let wq = wq.clone();
        variants.push(Variant::new("cmwq_spawn_local", slot, latch, move || {
            let t0 = now_ns();
            let r = wq.spawn(move || {
                slot.stamp();
                latch.count_down();
            });
            assert!(r.is_ok());
            t0
        }));
    }
    // --- bare park/unpark and condvar, consumer on B and on A ---
    for (cpu, tag) in [(b, "B"), (a, "A")] {
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let pt = ParkThread::spawn(cpu, slot, latch, None);
        let (go, th) = (pt.go.clone(), pt.thread());
        keep_alive.push(Box::new(pt));
        variants.push(Variant::new(format!("park_{tag}"), slot, latch, move || {
            let t0 = now_ns();
            go.store(true, Ordering::Release);
            th.unpark();
            t0
        }));

        // The same, but the producer unparks while holding a lock that the woken
        // thread takes first: what cmwq's queue() does (kick_pool() unparks the
        // worker under the pool lock). A control for the cmwq variants.
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let lock: &'static parking_lot::Mutex<()> = leak(parking_lot::Mutex::new(()));
        let pt = ParkThread::spawn(cpu, slot, latch, Some(lock));
        let (go, th) = (pt.go.clone(), pt.thread());
        keep_alive.push(Box::new(pt));
        variants.push(Variant::new(format!("park_locked_{tag}"), slot, latch, move || {
            let t0 = now_ns();
            let g = lock.lock();
            go.store(true, Ordering::Release);
            th.unpark();
            drop(g);
            t0
        }));

        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        let ct = CondvarThread::spawn(cpu, slot, latch);
        let sh = ct.shared.clone();
        keep_alive.push(Box::new(ct));
        variants.push(Variant::new(format!("condvar_{tag}"), slot, latch, move || {
            let t0 = now_ns();
            sh.0.lock().unwrap().0 = true;
            sh.1.notify_one();
            t0
        }));
    }
    // --- rayon::spawn onto the idle global pool ---
    {
        let (slot, latch) = (leak(StampSlot::new()), CountLatch::leaked());
        variants.push(Variant::new("rayon_spawn", slot, latch, move || {
            let t0 = now_ns();
            rayon::spawn(move || {
                slot.stamp();
                latch.count_down();
            });
            t0
        }));
    }

    println!(
        "wake: {samples} samples per variant in {ROUNDS} interleaved rounds, idle gap {} µs, \
         producer on CPU {a}, B = CPU {b} (allowed {all:?})",
        gap.as_micros()
    );
    for v in &mut variants {
        for _ in 0..WARMUP {
            v.sample(gap);
        }
    }
    let per_round = samples.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        let n = variants.len();
        for k in 0..n {
            let v = &mut variants[(k + round) % n];
            for _ in 0..per_round {
                if let Some(s) = v.sample(gap) {
                    v.samples.push(s);
                }
            }
        }
    }

    println!(
        "{:<18} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "variant", "n", "min µs", "p50 µs", "p90 µs", "p99 µs", "max µs", "mean µs"
    );
    let mut p50 = std::collections::HashMap::new();
    for v in &variants {
        let Some(s) = Summary::from_samples(&v.samples) else {
            println!("{:<18} no samples", v.name);
            continue;
        };
        p50.insert(v.name.clone(), s.p50);
        println!(
            "{:<18} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>9.2}{}",
            v.name,
            s.n,
            us(s.min),
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.max),
            s.mean / 1000.0,
            if v.timeouts > 0 { format!("  ({} timeouts)", v.timeouts) } else { String::new() }
        );
    }
    println!("ratios of p50:");
    for (x, y) in [
        ("cmwq_queue_on_B", "park_B"),
        ("cmwq_queue_on_B", "condvar_B"),
        ("cmwq_queue_local", "park_A"),
        ("cmwq_queue_local", "condvar_A"),
        ("cmwq_queue_local", "park_locked_A"),
        ("park_locked_A", "park_A"),
        ("cmwq_queue_on_B", "park_locked_B"),
        ("park_locked_B", "park_B"),
        ("cmwq_unbound", "park_B"),
        ("cmwq_spawn_local", "park_A"),
        ("rayon_spawn", "park_B"),
        ("cmwq_queue_on_B", "rayon_spawn"),
    ] {
        if let (Some(&nx), Some(&ny)) = (p50.get(x), p50.get(y)) {
            println!("  {x:>16} / {y:<13} = {:.2}", nx as f64 / ny.max(1) as f64);
        }
    }

    drop(variants);
    drop(keep_alive);
    let _ = set_current_affinity(&all);
    wq.destroy().unwrap();
    wq_unbound.destroy().unwrap();
}
