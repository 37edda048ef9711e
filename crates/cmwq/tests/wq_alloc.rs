//! Allocation counts on the hot paths, with a counting global allocator.
//!
//! Once a pool is warm (its lists have grown to their working size and its workers
//! exist), queueing a preallocated `Work` and executing it allocates nothing, in any
//! thread; `Workqueue::spawn` allocates exactly once per closure (the closure lives
//! in the same allocation as the work header).
//!
//! The counter is process-wide: it counts allocations by every thread, workers
//! included. So this file holds a single test, and each measured phase is built so
//! that the pool does the same thing in the measured window as in its warm-up
//! (no worker creation can be triggered by timing), whatever the machine's load.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};

struct Counting;

/// Allocations (alloc, alloc_zeroed, realloc) since the process started.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// While set, the sizes of the first allocations are kept for the failure report.
static RECORD: AtomicBool = AtomicBool::new(false);
static NR_RECORDED: AtomicUsize = AtomicUsize::new(0);
static SIZES: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

#[inline]
fn note(size: usize) {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    if RECORD.load(Ordering::Relaxed) {
        let i = NR_RECORDED.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = SIZES.get(i) {
            slot.store(size, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged,
// so `System`'s guarantees are ours; the bookkeeping only touches atomics and never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `f` and returns the allocations made meanwhile by all threads, with the
/// sizes of the first ones.
fn measure(f: impl FnOnce()) -> (u64, Vec<usize>) {
    NR_RECORDED.store(0, Ordering::SeqCst);
    RECORD.store(true, Ordering::SeqCst);
    let before = ALLOCS.load(Ordering::SeqCst);
    f();
    // Let the workers finish their bookkeeping after the last completion (anything
    // they allocate there shows up in earlier iterations too).
    std::thread::sleep(Duration::from_millis(5));
    let n = ALLOCS.load(Ordering::SeqCst) - before;
    RECORD.store(false, Ordering::SeqCst);
    let k = NR_RECORDED.load(Ordering::SeqCst).min(SIZES.len());
    (n, SIZES[..k].iter().map(|s| s.load(Ordering::SeqCst)).collect())
}

/// Spins (yielding) until `cond` holds; no allocation unless it times out.
fn spin_until(cond: impl Fn() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        spins += 1;
        std::thread::yield_now();
        if spins % 1024 == 0 {
            assert!(start.elapsed() < DEADLINE, "timed out");
        }
    }
}

fn pin_current_thread(cpu: usize) {
    // SAFETY: all-zero bytes are a valid, empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    assert!(cpu < 8 * std::mem::size_of::<libc::cpu_set_t>());
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above) and `set` is initialised.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
}

const WARMUP: usize = 3000;
const MEASURED: usize = 10_000;

/// A counting item.
fn counter_item() -> (Work, Arc<AtomicU64>) {
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    let w = Work::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    (w, n)
}

/// Queue a preallocated item and wait for its execution (`Work::flush`), on the
/// given CPUs in turn.
fn queue_and_flush(wq: &Workqueue, cpus: &[usize]) -> (u64, Vec<usize>) {
    let (w, n) = counter_item();
    let mut cycle = |i: usize| {
        assert_eq!(wq.queue_on(cpus[i % cpus.len()], &w), Ok(true));
        assert!(w.flush().unwrap() || n.load(Ordering::SeqCst) == i as u64 + 1);
    };
    (0..WARMUP).for_each(&mut cycle);
    let r = measure(|| (WARMUP..WARMUP + MEASURED).for_each(&mut cycle));
    assert_eq!(n.load(Ordering::SeqCst), (WARMUP + MEASURED) as u64);
    r
}

/// `queue()` (the local-CPU path) from a thread pinned to one CPU.
fn local_queue_and_flush(wq: &Workqueue, cpu: usize) -> (u64, Vec<usize>) {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(cpu);
            let (w, n) = counter_item();
            let cycle = |_: usize| {
                assert_eq!(wq.queue(&w), Ok(true));
                w.flush().unwrap();
            };
            (0..WARMUP).for_each(cycle);
            let r = measure(|| (0..MEASURED).for_each(cycle));
            assert_eq!(n.load(Ordering::SeqCst), (WARMUP + MEASURED) as u64);
            r
        })
        .join()
        .unwrap()
    })
}

/// An item that queues itself again from its callback until it ran `total` times.
fn self_requeue(wq: &Workqueue) -> (u64, Vec<usize>) {
    let n = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(AtomicU64::new(0));
    let (c, l, q) = (n.clone(), limit.clone(), wq.clone());
    let w = Work::new(move |me| {
        let i = c.fetch_add(1, Ordering::SeqCst) + 1;
        if i < l.load(Ordering::SeqCst) {
            assert_eq!(q.queue(me), Ok(true));
        }
    });
    let run = |total: u64| {
        limit.store(total, Ordering::SeqCst);
        assert_eq!(wq.queue(&w), Ok(true));
        spin_until(|| n.load(Ordering::SeqCst) >= total);
        w.flush().unwrap();
    };
    run(WARMUP as u64);
    let r = measure(|| run((WARMUP + MEASURED) as u64));
    // The closure holds a handle of the queue: break the cycle.
    drop(w);
    r
}

/// The item runs on `c0`; the test thread, pinned to `c1`, queues it on `c1` while
/// it runs: the non-reentrancy redirect puts it behind the running instance on
/// `c0`. The item waits (without announcing it, so the pool starts nothing else)
/// until the requeue is done.
fn requeue_on_other_cpu_while_running(wq: &Workqueue, c0: usize, c1: usize) -> (u64, Vec<usize>) {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(c1);
            let runs = Arc::new(AtomicU64::new(0));
            let go = Arc::new(AtomicU64::new(0));
            let (r, g) = (runs.clone(), go.clone());
            let w = Work::new(move |_| {
                let i = r.fetch_add(1, Ordering::SeqCst) + 1;
                if i % 2 == 1 {
                    let start = Instant::now();
                    while g.load(Ordering::SeqCst) < i {
                        std::thread::yield_now();
                        assert!(start.elapsed() < DEADLINE, "timed out");
                    }
                }
            });
            let cycle = |k: usize| {
                let first = 2 * k as u64 + 1;
                assert_eq!(wq.queue_on(c0, &w), Ok(true));
                spin_until(|| runs.load(Ordering::SeqCst) >= first);
                assert_eq!(wq.queue_on(c1, &w), Ok(true), "queued while running");
                go.store(first, Ordering::SeqCst);
                spin_until(|| runs.load(Ordering::SeqCst) > first);
                w.flush().unwrap();
            };
            // Fewer cycles: each crosses CPUs four times.
            let (warm, measured) = (WARMUP / 3, MEASURED / 4);
            (0..warm).for_each(cycle);
            let r = measure(|| (warm..warm + measured).for_each(cycle));
            assert_eq!(runs.load(Ordering::SeqCst), 2 * (warm + measured) as u64);
            r
        })
        .join()
        .unwrap()
    })
}

/// `spawn` in batches, each flushed before the next. Before the warm-up, the pool's
/// worklist is grown past a batch: an item that holds its CPU without announcing a
/// block keeps every spawned closure on the worklist.
fn spawn_batches(wq: &Workqueue, cpu: usize) -> (u64, Vec<usize>, u64) {
    const BATCH: usize = 50;
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(cpu);
            let done = Arc::new(AtomicU64::new(0));
            let hold = Arc::new(AtomicBool::new(true));
            let (h, started) = (hold.clone(), Arc::new(AtomicBool::new(false)));
            let st = started.clone();
            wq.spawn(move || {
                st.store(true, Ordering::SeqCst);
                while h.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
            })
            .unwrap();
            spin_until(|| started.load(Ordering::SeqCst));
            for _ in 0..4 * BATCH {
                let d = done.clone();
                wq.spawn(move || {
                    d.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            hold.store(false, Ordering::SeqCst);
            wq.flush().unwrap();

            let batch = || {
                for _ in 0..BATCH {
                    let d = done.clone();
                    wq.spawn(move || {
                        d.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                }
                wq.flush().unwrap();
            };
            (0..WARMUP / BATCH).for_each(|_| batch());
            let before = done.load(Ordering::SeqCst);
            let (n, sizes) = measure(|| (0..MEASURED / BATCH).for_each(|_| batch()));
            assert_eq!(done.load(Ordering::SeqCst) - before, MEASURED as u64);
            (n, sizes, (MEASURED / BATCH * BATCH) as u64)
        })
        .join()
        .unwrap()
    })
}

/// Calibration: an item that allocates once per execution, on a worker thread,
/// must be counted exactly once per execution; otherwise the zero counts above
/// would prove nothing.
fn worker_allocations_are_counted(wq: &Workqueue) -> (u64, u64) {
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    let w = Work::new(move |_| {
        let b = std::hint::black_box(Box::new(c.fetch_add(1, Ordering::SeqCst)));
        drop(b);
    });
    let cycle = |_: usize| {
        assert_eq!(wq.queue(&w), Ok(true));
        w.flush().unwrap();
    };
    (0..WARMUP).for_each(cycle);
    let (allocs, _) = measure(|| (0..MEASURED / 10).for_each(cycle));
    (allocs, (MEASURED / 10) as u64)
}

#[test]
fn hot_paths_do_not_allocate_and_spawn_allocates_once() {
    let cpus = cmwq::online_cpus();
    let (c0, c1) = (cpus[0], *cpus.get(1).unwrap_or(&cpus[0]));
    let percpu = Workqueue::builder("alloc-percpu").build().unwrap();
    let unbound = Workqueue::builder("alloc-unbound").flags(WqFlags::UNBOUND).build().unwrap();
    let highpri = Workqueue::builder("alloc-highpri").flags(WqFlags::HIGHPRI).build().unwrap();
    let ordered = Workqueue::ordered("alloc-ordered").build().unwrap();

    let (n, expected) = worker_allocations_are_counted(&percpu);
    assert_eq!(n, expected, "calibration: one Box per execution on a worker thread");

    let mut report = Vec::new();
    let mut zero = |what: &str, (n, sizes): (u64, Vec<usize>)| {
        if n != 0 {
            report.push(format!("{what}: {n} allocations (first sizes: {sizes:?})"));
        }
    };
    zero("per-CPU queue_on + flush, alternating CPUs", queue_and_flush(&percpu, &[c0, c1]));
    zero("per-CPU queue() from a pinned thread + flush", local_queue_and_flush(&percpu, c1));
    zero("HIGHPRI queue_on + flush", queue_and_flush(&highpri, &[c1, c0]));
    zero("unbound queue_on + flush", queue_and_flush(&unbound, &[c0, c1]));
    zero("ordered queue_on + flush", queue_and_flush(&ordered, &[c0]));
    zero("per-CPU self-requeue from the callback", self_requeue(&percpu));
    zero("per-CPU requeue on another CPU while running", requeue_on_other_cpu_while_running(&percpu, c0, c1));

    let (n, sizes, spawned) = spawn_batches(&percpu, c0);
    if n != spawned {
        report.push(format!(
            "spawn: {n} allocations for {spawned} closures, expected exactly one each (first sizes: {sizes:?})"
        ));
    }
    for wq in [percpu, unbound, highpri, ordered] {
        wq.destroy().unwrap();
    }
    assert!(report.is_empty(), "allocations on hot paths:\n{}", report.join("\n"));
}
