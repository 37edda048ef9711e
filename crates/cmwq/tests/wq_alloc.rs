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

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};
use support::{pin_current_thread, plain_sleeper_with_one_behind, DEADLINE};

struct Counting;

/// Allocations (alloc, alloc_zeroed, realloc) since the process started.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// While set, the sizes of the first allocations are kept for the failure report.
static RECORD: AtomicBool = AtomicBool::new(false);
static NR_RECORDED: AtomicUsize = AtomicUsize::new(0);
static SIZES: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// Whether the process's main thread runs the test (`--test-threads=1`). Otherwise
/// the main thread is libtest's harness, which runs no cmwq code but may allocate
/// meanwhile (its "has been running for over 60 seconds" note on a slow machine),
/// so its allocations are not counted.
static MAIN_RUNS_TEST: AtomicBool = AtomicBool::new(false);

fn on_main_thread() -> bool {
    // SAFETY: gettid and getpid have no preconditions and cannot fail.
    unsafe { libc::gettid() == libc::getpid() }
}

#[inline]
fn note(size: usize) {
    if !MAIN_RUNS_TEST.load(Ordering::Relaxed) && on_main_thread() {
        return;
    }
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

/// A counter that threads can wait on, with blocking waits (no yield loops, which a
/// loaded machine stretches) that allocate nothing once each thread has parked once.
#[derive(Default)]
struct Event {
    value: parking_lot::Mutex<u64>,
    cv: parking_lot::Condvar,
}

impl Event {
    fn set(&self, v: u64) {
        *self.value.lock() = v;
        self.cv.notify_all();
    }

    /// Waits until the value is at least `v`. Panics after [`DEADLINE`].
    fn wait_at_least(&self, v: u64) {
        let start = Instant::now();
        let mut g = self.value.lock();
        while *g < v {
            assert!(start.elapsed() < DEADLINE, "timed out");
            self.cv.wait_for(&mut g, Duration::from_millis(100));
        }
    }
}

/// Warm-up and measured iterations.
#[derive(Clone, Copy)]
struct Rounds {
    warm: usize,
    measured: usize,
}

/// The main check: 10 000 measured queue+execute cycles after 3 000 of warm-up.
const MAIN: Rounds = Rounds { warm: 3000, measured: 10_000 };
/// The other paths: fewer, so the file stays short on a loaded machine (each
/// cycle is a cross-thread round trip).
const MORE: Rounds = Rounds { warm: 1000, measured: 2000 };

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
fn queue_and_flush(wq: &Workqueue, cpus: &[usize], r: Rounds) -> (u64, Vec<usize>) {
    let (w, n) = counter_item();
    let mut cycle = |i: usize| {
        assert_eq!(wq.queue_on(cpus[i % cpus.len()], &w), Ok(true));
        assert!(w.flush().unwrap() || n.load(Ordering::SeqCst) == i as u64 + 1);
    };
    (0..r.warm).for_each(&mut cycle);
    let res = measure(|| (r.warm..r.warm + r.measured).for_each(&mut cycle));
    assert_eq!(n.load(Ordering::SeqCst), (r.warm + r.measured) as u64);
    res
}

/// `queue()` (the local-CPU path) from a thread pinned to one CPU.
fn local_queue_and_flush(wq: &Workqueue, cpu: usize, r: Rounds) -> (u64, Vec<usize>) {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(cpu);
            let (w, n) = counter_item();
            let cycle = |_: usize| {
                assert_eq!(wq.queue(&w), Ok(true));
                w.flush().unwrap();
            };
            (0..r.warm).for_each(cycle);
            let res = measure(|| (0..r.measured).for_each(cycle));
            assert_eq!(n.load(Ordering::SeqCst), (r.warm + r.measured) as u64);
            res
        })
        .join()
        .unwrap()
    })
}

/// An item that queues itself again from its callback until it ran `total` times.
fn self_requeue(wq: &Workqueue, r: Rounds) -> (u64, Vec<usize>) {
    let n = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(Event::default());
    let (c, l, f, q) = (n.clone(), limit.clone(), finished.clone(), wq.clone());
    let w = Work::new(move |me| {
        let i = c.fetch_add(1, Ordering::SeqCst) + 1;
        if i < l.load(Ordering::SeqCst) {
            assert_eq!(q.queue(me), Ok(true));
        } else {
            f.set(i);
        }
    });
    let run = |total: u64| {
        limit.store(total, Ordering::SeqCst);
        assert_eq!(wq.queue(&w), Ok(true));
        finished.wait_at_least(total);
        w.flush().unwrap();
    };
    run(r.warm as u64);
    let res = measure(|| run((r.warm + r.measured) as u64));
    assert_eq!(n.load(Ordering::SeqCst), (r.warm + r.measured) as u64);
    res
}

/// The item runs on `c0`; the test thread, pinned to `c1`, queues it on `c1` while
/// it runs: the non-reentrancy redirect puts it behind the running instance on
/// `c0`. The item waits until the requeue is done without announcing it (a plain
/// condvar wait, not `cmwq::blocking`), so the pool starts nothing else meanwhile.
fn requeue_on_other_cpu_while_running(wq: &Workqueue, c0: usize, c1: usize, r: Rounds) -> (u64, Vec<usize>) {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(c1);
            let runs = Arc::new(AtomicU64::new(0));
            let started = Arc::new(Event::default());
            let go = Arc::new(Event::default());
            let (n, st, g) = (runs.clone(), started.clone(), go.clone());
            let w = Work::new(move |_| {
                let i = n.fetch_add(1, Ordering::SeqCst) + 1;
                if i % 2 == 1 {
                    st.set(i);
                    g.wait_at_least(i);
                }
            });
            let cycle = |k: usize| {
                let first = 2 * k as u64 + 1;
                assert_eq!(wq.queue_on(c0, &w), Ok(true));
                started.wait_at_least(first);
                assert_eq!(wq.queue_on(c1, &w), Ok(true), "queued while running");
                go.set(first);
                w.flush().unwrap();
                assert_eq!(runs.load(Ordering::SeqCst), first + 1);
            };
            // Each cycle runs the item twice.
            let (warm, measured) = (r.warm / 2, r.measured / 2);
            (0..warm).for_each(cycle);
            let res = measure(|| (warm..warm + measured).for_each(cycle));
            assert_eq!(runs.load(Ordering::SeqCst), 2 * (warm + measured) as u64);
            res
        })
        .join()
        .unwrap()
    })
}

/// `spawn` in batches, each flushed before the next. Before the warm-up, the pool's
/// worklist is grown past a batch: an item that holds its CPU without announcing a
/// block keeps every spawned closure on the worklist.
fn spawn_batches(wq: &Workqueue, cpu: usize, r: Rounds) -> (u64, Vec<usize>, u64) {
    const BATCH: usize = 50;
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(cpu);
            let done = Arc::new(AtomicU64::new(0));
            let (started, release) = (Arc::new(Event::default()), Arc::new(Event::default()));
            let (st, rel) = (started.clone(), release.clone());
            wq.spawn(move || {
                st.set(1);
                rel.wait_at_least(1); // not announced: the pool runs nothing else
            })
            .unwrap();
            started.wait_at_least(1);
            for _ in 0..4 * BATCH {
                let d = done.clone();
                wq.spawn(move || {
                    d.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            release.set(1);
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
            (0..r.warm / BATCH).for_each(|_| batch());
            let before = done.load(Ordering::SeqCst);
            let spawned = (r.measured / BATCH * BATCH) as u64;
            let (n, sizes) = measure(|| (0..r.measured / BATCH).for_each(|_| batch()));
            assert_eq!(done.load(Ordering::SeqCst) - before, spawned);
            (n, sizes, spawned)
        })
        .join()
        .unwrap()
    })
}

/// Calibration: an item that allocates once per execution on a worker thread must
/// be counted exactly once per execution more than the same item without the
/// allocation; otherwise the zero counts would prove nothing.
fn worker_allocations_are_counted(wq: &Workqueue, r: Rounds) -> (u64, u64, Vec<usize>) {
    let allocate = Arc::new(AtomicBool::new(false));
    let a = allocate.clone();
    let w = Work::new(move |_| {
        if a.load(Ordering::SeqCst) {
            drop(std::hint::black_box(Box::new(1u64)));
        }
    });
    let cpu = cmwq::allowed_cpus()[0];
    let cycle = |_: usize| {
        assert_eq!(wq.queue_on(cpu, &w), Ok(true));
        w.flush().unwrap();
    };
    (0..r.warm).for_each(cycle);
    let runs = r.measured / 2;
    let (without, sizes) = measure(|| (0..runs).for_each(cycle));
    allocate.store(true, Ordering::SeqCst);
    let (with, _) = measure(|| (0..runs).for_each(cycle));
    (with.wrapping_sub(without), runs as u64, sizes)
}

/// parking_lot keeps one global hash table of parked threads, sized for the number
/// of threads alive that have ever parked; when one more thread parks for the
/// first time, the table may grow (2 allocations: 64 bytes per bucket, then 32 for
/// the header; seen as `[2048, 32]`). A worker thread whose first contended pool
/// lock falls in a measured window would then allocate: not a cost of queueing,
/// but a count that depends on timing. So the table is grown once, up front, by
/// parking many threads at the same time.
fn pregrow_parking_lot_table() {
    const THREADS: usize = 128;
    let arrived = parking_lot::Mutex::new(0usize);
    let cv = parking_lot::Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mut g = arrived.lock();
                *g += 1;
                cv.notify_all();
                while *g < THREADS {
                    cv.wait(&mut g);
                }
                // Everyone has parked at least once; the last one woke the others.
            });
        }
    });
}

/// The sleep monitor and each CPU's idle sentinel are threads started the first
/// time a pool of that CPU saturates (work waiting behind a running worker; for a
/// sentinel, in a pool that blocked unannounced before), which a phase below may
/// do at any moment of its window: their start allocates (a thread), once per
/// process. So they are started up front: on each CPU, an item that sleeps
/// without saying so with another queued behind it, until the CPU's sentinel
/// exists.
fn start_monitor_and_sentinels(wq: &Workqueue, cpus: &[usize]) {
    let deadline = Instant::now() + DEADLINE;
    for (i, &cpu) in cpus.iter().enumerate() {
        while cmwq::debug::monitor().sentinels < (i + 1) as u64 && Instant::now() < deadline {
            plain_sleeper_with_one_behind(wq, cpu);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn workers_created() -> u64 {
    cmwq::debug::pools().iter().map(|p| p.created).sum()
}

/// Runs a measured phase again (up to 5 times in all) while a worker thread was
/// created during it. Creating a worker allocates (its thread, its name, its probe)
/// and is not on the queueing path, but it happens when it happens: on a loaded
/// machine a plain wait of an item below can outlast the sleep monitor's stall
/// window, and the monitor then creates a worker for the blocked CPU. Each phase
/// builds its own items, so a run again measures the same thing.
fn without_new_workers<T>(phase: impl Fn() -> T) -> T {
    let mut result = None;
    for _ in 0..5 {
        let before = workers_created();
        let r = phase();
        if workers_created() == before {
            return r;
        }
        result = Some(r);
    }
    result.expect("at least one run")
}

#[test]
fn hot_paths_do_not_allocate_and_spawn_allocates_once() {
    MAIN_RUNS_TEST.store(on_main_thread(), Ordering::SeqCst);
    // The stall watchdog's first check, 7.5 s after the first push, sizes its
    // per-pool records: a one-off allocation on its own thread, off the hot
    // paths, which a slow run's last phase would otherwise count. Off here.
    cmwq::watchdog::set_thresh(Duration::ZERO).unwrap();
    pregrow_parking_lot_table();
    let cpus = cmwq::allowed_cpus();
    let (c0, c1) = (cpus[0], *cpus.get(1).unwrap_or(&cpus[0]));
    let percpu = Workqueue::builder("alloc-percpu").flags(WqFlags::PERCPU).build().unwrap();
    start_monitor_and_sentinels(&percpu, &cpus);
    let unbound = Workqueue::builder("alloc-unbound").flags(WqFlags::UNBOUND).build().unwrap();
    let highpri =
        Workqueue::builder("alloc-highpri").flags(WqFlags::HIGHPRI | WqFlags::PERCPU).build().unwrap();
    let ordered = Workqueue::ordered("alloc-ordered").build().unwrap();

    let (n, expected, without) = without_new_workers(|| worker_allocations_are_counted(&percpu, MORE));
    assert_eq!(
        n, expected,
        "calibration: one more allocation per execution on a worker thread (without it: {without:?})"
    );

    let mut report = Vec::new();
    let mut zero = |what: &str, (n, sizes): (u64, Vec<usize>)| {
        if n != 0 {
            report.push(format!("{what}: {n} allocations (first sizes: {sizes:?})"));
        }
    };
    zero(
        "per-CPU queue_on + flush, alternating CPUs",
        without_new_workers(|| queue_and_flush(&percpu, &[c0, c1], MAIN)),
    );
    zero(
        "per-CPU queue() from a pinned thread + flush",
        without_new_workers(|| local_queue_and_flush(&percpu, c1, MORE)),
    );
    zero("HIGHPRI queue_on + flush", without_new_workers(|| queue_and_flush(&highpri, &[c1, c0], MORE)));
    zero("unbound queue_on + flush", without_new_workers(|| queue_and_flush(&unbound, &[c0, c1], MORE)));
    zero("ordered queue_on + flush", without_new_workers(|| queue_and_flush(&ordered, &[c0], MORE)));
    zero("per-CPU self-requeue from the callback", without_new_workers(|| self_requeue(&percpu, MAIN)));
    zero(
        "per-CPU requeue on another CPU while running",
        without_new_workers(|| requeue_on_other_cpu_while_running(&percpu, c0, c1, MORE)),
    );

    let (n, sizes, spawned) = without_new_workers(|| spawn_batches(&percpu, c0, MAIN));
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
