//! Queue + execute throughput of no-op work, one producer, warm pools.
//!
//! Where the producer runs matters: a per-CPU queue sends `queue()` to the
//! producer's own CPU, whose worker is pinned there; so the worker mostly runs
//! while the producer waits (batched, one CPU). Rayon's and the channel's
//! consumers float and run concurrently with the producer.
//!
//! Every benchmark has the same batch shape: the producer hands `K` distinct tasks
//! to the executor, then waits until all of them have run; criterion measures the
//! whole batch and reports `Throughput::Elements(K)`, so "time" is per batch and
//! "thrpt" per item (ns/item = time / K).
//!
//! - `cmwq_queue_latch`: `wq.queue(&w)` of `K` preallocated `Work` items on a per-CPU
//!   queue (`WqFlags::PERCPU`, as every per-CPU queue here; each must return `Ok(true)`); each item counts a latch down, the
//!   producer parks on the latch. No allocation per item.
//! - `cmwq_queue_flush`: the same with truly empty items, waited for by `wq.flush()`.
//! - `cmwq_unbound_latch`: as `cmwq_queue_latch` on an `UNBOUND` queue.
//! - `cmwq_spawn_latch`: `wq.spawn(closure)`, one allocation per item (like rayon).
//! - `cmwq_queue_on_other_latch`: the producer pinned to the first allowed CPU
//!   queues with `queue_on(second CPU)`: producer and worker run concurrently on two
//!   CPUs (skipped on a 1-CPU machine).
//! - `rayon_spawn_latch`: `rayon::spawn(closure)` on the global pool.
//! - `channel_1thread_latch`: `std::sync::mpsc` (crossbeam's list channel) feeding
//!   one dedicated thread: the floor of a cross-thread handoff.
//!
//! Run: `cargo bench -p cmwq-bench --bench queue -- --warm-up-time 1 --measurement-time 3`

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};
use cmwq_bench::{allowed_cpus, pin_current_thread, set_current_affinity, CountLatch};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

/// Items per batch: below `WQ_DFL_ACTIVE`, so that an item of the previous batch
/// still finishing its bookkeeping never pushes one of this batch inactive.
const K: usize = 1000;
const _: () = assert!(K < cmwq::WQ_DFL_ACTIVE);

/// Runs `iters` batches: `produce` hands out `K` tasks, `wait` waits for them.
fn batches(iters: u64, mut produce: impl FnMut(), mut wait: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        produce();
        wait();
    }
    start.elapsed()
}

/// `K` preallocated items, each counting `latch` down.
fn latch_works(latch: &'static CountLatch) -> Vec<Work> {
    (0..K)
        .map(|_| {
            Work::new(move |_| {
                latch.count_down();
            })
        })
        .collect()
}

/// Benchmarks `name`: each batch resets `latch` to `K`, runs `produce` (which hands
/// out the `K` tasks) and waits on the latch.
fn bench_latched(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    latch: &'static CountLatch,
    mut produce: impl FnMut(),
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            batches(
                iters,
                || {
                    latch.reset(K);
                    produce();
                },
                || latch.wait(),
            )
        })
    });
}

/// Benchmarks `name`: `K` preallocated latch items, each batch queued on `wq` with
/// `queue()`; destroys `wq` afterwards.
fn bench_queue_latch(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, wq: Workqueue) {
    let latch = CountLatch::leaked();
    let works = latch_works(latch);
    bench_latched(g, name, latch, || {
        queue_all(&works, "queue() refused a preallocated item", |w| wq.queue(w));
    });
    wq.destroy().unwrap();
}

/// Queues every item of `works` with `queue`, which must accept each one (`refused`
/// is the failure message).
fn queue_all(works: &[Work], refused: &str, mut queue: impl FnMut(&Work) -> Result<bool, cmwq::Error>) {
    for w in works {
        assert!(matches!(queue(w), Ok(true)), "{refused}");
    }
}

fn queue_execute(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_execute");
    g.throughput(Throughput::Elements(K as u64));

    // --- cmwq: preallocated items, per-CPU queue, latch ---
    bench_queue_latch(
        &mut g,
        "cmwq_queue_latch",
        Workqueue::builder("bench-percpu").flags(WqFlags::PERCPU).build().unwrap(),
    );

    // --- cmwq: preallocated empty items, per-CPU queue, wq.flush() ---
    {
        let wq = Workqueue::builder("bench-flush").flags(WqFlags::PERCPU).build().unwrap();
        let works: Vec<Work> = (0..K).map(|_| Work::new(|_| {})).collect();
        g.bench_function("cmwq_queue_flush", |b| {
            b.iter_custom(|iters| {
                batches(
                    iters,
                    || queue_all(&works, "queue() refused a preallocated item", |w| wq.queue(w)),
                    || wq.flush().unwrap(),
                )
            })
        });
        wq.destroy().unwrap();
    }

    // --- cmwq: preallocated items, unbound queue, latch ---
    bench_queue_latch(
        &mut g,
        "cmwq_unbound_latch",
        Workqueue::builder("bench-unbound").flags(WqFlags::UNBOUND).build().unwrap(),
    );

    // --- cmwq: one-shot closures (one allocation each), per-CPU queue, latch ---
    {
        let wq = Workqueue::builder("bench-spawn").flags(WqFlags::PERCPU).build().unwrap();
        let latch = CountLatch::leaked();
        bench_latched(&mut g, "cmwq_spawn_latch", latch, || {
            for _ in 0..K {
                let spawned = wq.spawn(move || {
                    latch.count_down();
                });
                assert!(spawned.is_ok(), "spawn() refused");
            }
        });
        wq.destroy().unwrap();
    }

    // --- cmwq: preallocated items, producer pinned to CPU A, queue_on(B), latch ---
    // The cross-CPU case: producer and worker run at the same time on two CPUs
    // (with `queue()` above, a per-CPU worker shares the producer's CPU).
    let cpus = allowed_cpus();
    if let [a, b, ..] = cpus[..] {
        let wq = Workqueue::builder("bench-on-other").flags(WqFlags::PERCPU).build().unwrap();
        let latch = CountLatch::leaked();
        let works = latch_works(latch);
        pin_current_thread(a).unwrap();
        bench_latched(&mut g, "cmwq_queue_on_other_latch", latch, || {
            queue_all(&works, "queue_on() refused an item", |w| wq.queue_on(b, w));
        });
        // Threads created from here on (rayon's pool) must not inherit the pinning.
        set_current_affinity(&cpus).unwrap();
        wq.destroy().unwrap();
    }

    // --- rayon::spawn on the global pool, latch ---
    {
        let latch = CountLatch::leaked();
        bench_latched(&mut g, "rayon_spawn_latch", latch, || {
            for _ in 0..K {
                rayon::spawn(move || {
                    latch.count_down();
                });
            }
        });
    }

    // --- floor: an mpsc channel feeding one dedicated thread, latch ---
    {
        let latch = CountLatch::leaked();
        let (tx, rx) = mpsc::channel::<usize>();
        let consumer = std::thread::Builder::new()
            .name("bench-chan".into())
            .spawn(move || {
                for i in rx {
                    std::hint::black_box(i);
                    latch.count_down();
                }
            })
            .unwrap();
        bench_latched(&mut g, "channel_1thread_latch", latch, || {
            for i in 0..K {
                tx.send(i).unwrap();
            }
        });
        drop(tx);
        consumer.join().unwrap();
    }

    g.finish();
}

criterion_group!(benches, queue_execute);
criterion_main!(benches);
