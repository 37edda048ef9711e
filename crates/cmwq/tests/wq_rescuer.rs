//! `WQ_MEM_RECLAIM` (issue 14, part 2): rescuer threads and the mayday timer.
//! Worker creation is refused here the two ways a process meets it: a failed
//! `pthread_create` (`debug::fail_next_spawns`, then the 1 s cooldown) and the
//! thread ceiling (`set_max_workers`). Both are process-wide, so the tests of
//! this binary take one lock and run one at a time, and each chain runs on a
//! pool no other test of the binary uses.
//!
//! Nothing here asserts on time: the figures printed (chain time, rescue
//! latency) are for reading, with `--nocapture`.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, ErrorKind, Work, Workqueue, WqFlags};
use parking_lot::Mutex;
use support::{cpu0, poll_until, Bounded, BoundedQueue, DropGuard, Gate, DEADLINE, SETTLE};

/// One test at a time: refusals are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// How worker creation is refused while a [`Refused`] lives.
#[derive(Debug, Clone, Copy)]
enum Refuse {
    /// Every thread creation fails with `EAGAIN` (then the pool cools down 1 s).
    Spawns,
    /// The worker ceiling is the number of workers alive now.
    Ceiling,
}

/// Refuses worker creation until dropped (also when the test panics).
struct Refused {
    kind: Refuse,
    max_workers: usize,
}

fn refuse(kind: Refuse) -> Refused {
    let max_workers = cmwq::max_workers();
    match kind {
        Refuse::Spawns => cmwq::debug::fail_next_spawns(1 << 30),
        Refuse::Ceiling => {
            // The lowest ceiling, 1, with a worker that holds it (idle workers
            // stay for the 300 s idle timeout). A ceiling at the number of
            // workers alive would not do: a worker of another pool that exits
            // meanwhile frees a place, and a creation the test counts on being
            // refused succeeds (seen under two CPU hogs).
            let w = Work::new(|_| {});
            cmwq::system::percpu().queue(&w).unwrap();
            w.flush_bounded().unwrap();
            cmwq::set_max_workers(1);
        }
    }
    Refused { kind, max_workers }
}

impl Drop for Refused {
    fn drop(&mut self) {
        match self.kind {
            Refuse::Spawns => cmwq::debug::fail_next_spawns(0),
            Refuse::Ceiling => cmwq::set_max_workers(self.max_workers),
        }
    }
}

/// Attributes of an unbound pool of one CPU that no other test uses (its own
/// nice value): a pool whose workers this test alone decides.
fn own_pod(cpu: usize, nice: i32) -> Attrs {
    Attrs { nice, cpumask: Some(vec![cpu]), affinity_scope: AffinityScope::Cpu, affinity_strict: true }
}

/// Gives the pool behind `wq`'s `cpu` its first worker and that worker's idle
/// reserve, so that the chain starts on a pool with workers, which then all
/// block.
fn warm(wq: &Workqueue, cpu: usize) {
    for _ in 0..2 {
        let w = Work::new(|_| {});
        wq.queue_on(cpu, &w).unwrap();
        w.flush_bounded().unwrap();
    }
}

/// The kernel's documented use of `MEM_RECLAIM`: items that depend on each
/// other go to separate queues. Item `i` queues item `i + 1` on queue `i + 1`,
/// all on `cpu`, and waits (announced) until it has finished. Returns whether
/// the whole chain finished within `bound`, and each item's run count.
struct Chain {
    items: Vec<Work>,
    done: Vec<Gate>,
    runs: Vec<Arc<AtomicUsize>>,
    rescued_by_rescuer: Arc<AtomicUsize>,
}

fn chain(queues: &[Workqueue], cpu: usize) -> Chain {
    let n = queues.len();
    let done: Vec<Gate> = (0..n).map(|_| Gate::new()).collect();
    let runs: Vec<Arc<AtomicUsize>> = (0..n).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let by_rescuer = Arc::new(AtomicUsize::new(0));
    let mut items: Vec<Work> = Vec::new();
    let mut next: Option<(Workqueue, Work)> = None;
    for i in (0..n).rev() {
        let (me, after, runs, by_rescuer) =
            (done[i].clone(), done.get(i + 1).cloned(), runs[i].clone(), by_rescuer.clone());
        let next_item = next.take();
        let w = Work::new(move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            if cmwq::current_is_workqueue_rescuer() {
                by_rescuer.fetch_add(1, Ordering::SeqCst);
            }
            if let (Some((q, w)), Some(after)) = (&next_item, &after) {
                q.queue_on(cpu, w).unwrap();
                if !after.wait_blocking() {
                    return;
                }
            }
            me.open();
        });
        next = Some((queues[i].clone(), w.clone()));
        items.insert(0, w);
    }
    Chain { items, done, runs, rescued_by_rescuer: by_rescuer }
}

fn rescue_stats(queues: &[Workqueue]) -> Vec<(u64, u64)> {
    queues.iter().map(|q| (q.stats().mayday, q.stats().rescued)).collect()
}

/// Five `MEM_RECLAIM` queues, each item waiting for the next one, all on one
/// CPU, with worker creation refused from before the first item to the end:
/// the chain completes, through the rescuers.
fn reclaim_chain_completes(refusal: Refuse, queues: &[Workqueue], warm_q: &Workqueue, cpu: usize) {
    warm(warm_q, cpu);
    let c = chain(queues, cpu);
    let refused = refuse(refusal);
    let t0 = Instant::now();
    queues[0].queue_on(cpu, &c.items[0]).unwrap();
    let finished = c.done[0].wait_for(DEADLINE);
    let took = t0.elapsed();
    drop(refused);
    let stats = rescue_stats(queues);
    println!("{refusal:?}: chain of {} took {took:?}; (mayday, rescued) per queue: {stats:?}", queues.len());
    assert!(finished, "the chain did not complete with creation refused ({refusal:?}); {stats:?}");
    for (i, r) in c.runs.iter().enumerate() {
        assert_eq!(r.load(Ordering::SeqCst), 1, "item {i} ran {} times", r.load(Ordering::SeqCst));
    }
    let rescued: u64 = stats.iter().map(|s| s.1).sum();
    assert!(rescued >= 1, "no item was rescued, yet the pool could create nothing: {stats:?}");
    assert_eq!(
        rescued as usize,
        c.rescued_by_rescuer.load(Ordering::SeqCst),
        "rescued count vs items run by rescuers"
    );
    assert!(stats.iter().all(|s| s.1 == 0 || s.0 >= 1), "a rescue without a mayday: {stats:?}");
    for q in queues {
        q.destroy_bounded().unwrap();
    }
}

#[test]
fn reclaim_chain_completes_through_the_rescuers_when_spawns_fail() {
    let _serial = SERIAL.lock();
    // The highpri pool of the CPU: used by no other test of this binary.
    let flags = WqFlags::PERCPU | WqFlags::HIGHPRI;
    let queues: Vec<Workqueue> = (0..5)
        .map(|i| {
            Workqueue::builder(format!("reclaim{i}")).flags(flags | WqFlags::MEM_RECLAIM).build().unwrap()
        })
        .collect();
    let warm_q = Workqueue::builder("warm-h").flags(flags).build().unwrap();
    reclaim_chain_completes(Refuse::Spawns, &queues, &warm_q, cpu0());
}

#[test]
fn reclaim_chain_completes_through_the_rescuers_at_the_ceiling() {
    let _serial = SERIAL.lock();
    let attrs = own_pod(cpu0(), 3);
    let queues: Vec<Workqueue> = (0..5)
        .map(|i| {
            Workqueue::builder(format!("ureclaim{i}"))
                .flags(WqFlags::MEM_RECLAIM)
                .attrs(attrs.clone())
                .build()
                .unwrap()
        })
        .collect();
    let warm_q = Workqueue::builder("warm-u3").attrs(attrs).build().unwrap();
    reclaim_chain_completes(Refuse::Ceiling, &queues, &warm_q, cpu0());
}

/// The same chain without `MEM_RECLAIM` stalls while creation is refused (the
/// watchdog reports such a stall; that half is its own test), and completes
/// once creation is allowed again.
#[test]
fn the_same_chain_without_mem_reclaim_stalls() {
    let _serial = SERIAL.lock();
    let attrs = own_pod(cpu0(), 7);
    let queues: Vec<Workqueue> = (0..5)
        .map(|i| Workqueue::builder(format!("plain{i}")).attrs(attrs.clone()).build().unwrap())
        .collect();
    warm(&queues[0], cpu0());
    let c = chain(&queues, cpu0());
    let refused = refuse(Refuse::Spawns);
    queues[0].queue_on(cpu0(), &c.items[0]).unwrap();
    // Two workers block in the first two items; nothing runs the third.
    assert!(poll_until(DEADLINE, || c.runs[1].load(Ordering::SeqCst) == 1), "the second item never ran");
    std::thread::sleep(SETTLE.max(Duration::from_millis(200)));
    assert_eq!(c.runs[2].load(Ordering::SeqCst), 0, "the third item ran, yet nothing could run it");
    assert!(!c.done[0].is_open(), "the chain completed without a rescuer while creation was refused");
    drop(refused);
    assert!(c.done[0].wait_for(DEADLINE), "the chain did not complete once creation was allowed again");
    assert!(rescue_stats(&queues).iter().all(|&s| s == (0, 0)));
    for q in &queues {
        q.destroy_bounded().unwrap();
    }
}

/// Exactly once, drops counted: a rescuer runs a `MEM_RECLAIM` queue's items
/// while creation is refused, then the refusal is lifted and workers come
/// back, taking items from the same worklist while the rescuer still runs.
/// Every queueing that returned true runs once, never concurrently with
/// itself, and every closure is dropped once.
#[test]
fn exactly_once_while_the_rescuer_and_returning_workers_share_the_work() {
    let _serial = SERIAL.lock();
    const N: usize = 200;
    let cpu = cpu0();
    let attrs = own_pod(cpu, 9);
    let wq = Workqueue::builder("reclaim-once").flags(WqFlags::MEM_RECLAIM).attrs(attrs).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicBool::new(false));
    let runs: Vec<Arc<AtomicUsize>> = (0..N).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let queued = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..N)
        .map(|i| {
            let (runs, overlap, queued, wq) = (runs[i].clone(), overlap.clone(), queued.clone(), wq.clone());
            let guard = DropGuard(drops.clone());
            let inside = AtomicBool::new(false);
            Work::new(move |w| {
                let _keep = &guard;
                if inside.swap(true, Ordering::SeqCst) {
                    overlap.store(true, Ordering::SeqCst);
                }
                // Every seventh item queues itself once more, while it runs.
                if runs.fetch_add(1, Ordering::SeqCst) == 0 && i % 7 == 0 && wq.queue_on(cpu, w).unwrap() {
                    queued.fetch_add(1, Ordering::SeqCst);
                }
                cmwq::sleep(Duration::from_millis(2));
                inside.store(false, Ordering::SeqCst);
            })
        })
        .collect();
    let refused = refuse(Refuse::Ceiling);
    for w in &items {
        assert!(wq.queue_on(cpu, w).unwrap());
        queued.fetch_add(1, Ordering::SeqCst);
    }
    // The rescuer alone for a while ...
    assert!(poll_until(DEADLINE, || wq.stats().rescued >= 10), "nothing was rescued: {:?}", wq.stats());
    // ... then workers come back and share the worklist with it.
    drop(refused);
    wq.flush_bounded().unwrap();
    wq.destroy_bounded().unwrap();
    let s = wq.stats();
    println!("exactly once: {s:?}");
    assert!(!overlap.load(Ordering::SeqCst), "an item ran concurrently with itself");
    let total: usize = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
    assert_eq!(total, queued.load(Ordering::SeqCst), "runs differ from successful queueings");
    for (i, r) in runs.iter().enumerate() {
        let want = if i % 7 == 0 { 2 } else { 1 };
        assert_eq!(r.load(Ordering::SeqCst), want, "item {i}");
    }
    assert_eq!(s.started as usize, total);
    assert_eq!(s.completed as usize, total);
    assert!(s.rescued >= 10 && s.mayday >= 1, "{s:?}");
    assert!((s.rescued as usize) < total, "the workers never came back: {s:?}");
    drop(items);
    assert!(
        poll_until(DEADLINE, || drops.load(Ordering::SeqCst) == N),
        "closures dropped {} times, want {N}",
        drops.load(Ordering::SeqCst)
    );
    std::thread::sleep(SETTLE);
    assert_eq!(drops.load(Ordering::SeqCst), N, "a closure was dropped twice");
}

/// Rescue latency, from the refusal to the rescued item's start, against the
/// 10 ms `MAYDAY_INITIAL_TIMEOUT`. Each trial queues one item on a pool that
/// has no worker and may not create one (the thread ceiling), so the refusal
/// happens inside `queue_on`, and only the rescuer can run the item; between
/// trials the mayday timer is given time to disarm. Printed, never asserted.
#[test]
fn rescue_latency_is_the_mayday_timeout() {
    let _serial = SERIAL.lock();
    const TRIALS: usize = 50;
    let cpu = cpu0();
    let wq = Workqueue::builder("reclaim-lat")
        .flags(WqFlags::MEM_RECLAIM)
        .attrs(own_pod(cpu, 11))
        .build()
        .unwrap();
    let refused = refuse(Refuse::Ceiling);
    let mut lat = Vec::with_capacity(TRIALS);
    // Trials whose own `queue_on` took over 1 ms (the test thread lost its CPU
    // inside it): when the refusal happened is not known to the millisecond.
    let mut unsure = 0;
    for _ in 0..TRIALS {
        let started: Arc<Mutex<Option<(Instant, bool)>>> = Arc::default();
        let s = started.clone();
        let w = Work::new(move |_| *s.lock() = Some((Instant::now(), cmwq::current_is_workqueue_rescuer())));
        let t0 = Instant::now();
        wq.queue_on(cpu, &w).unwrap();
        let queued = t0.elapsed();
        w.flush_bounded().unwrap();
        let (at, by_rescuer) = started.lock().expect("flushed, so it ran");
        assert!(by_rescuer, "the pool has no worker and may create none: only the rescuer can run it");
        if queued > Duration::from_millis(1) {
            unsure += 1;
        } else {
            lat.push(at - t0);
        }
        // The timer fires again 100 ms after the rescue, finds the need over, and
        // disarms: the next trial starts from a quiet pool.
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(refused);
    assert!(!lat.is_empty(), "every trial's queue_on took over 1 ms");
    let first = lat[0];
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    let line = format!(
        "rescue latency (refusal -> first rescued item starts), {} of {TRIALS} trials ({unsure} left out: \
         queue_on itself took > 1 ms): min {:?} p50 {:?} p99 {:?} max {:?}, first trial {first:?} \
         (MAYDAY_INITIAL_TIMEOUT 10 ms)",
        lat.len(),
        lat[0],
        pct(50),
        pct(99),
        lat[lat.len() - 1]
    );
    println!("{line}");
    let s = wq.stats();
    assert_eq!(s.rescued as usize, TRIALS, "{s:?}");
    println!("latency trials: {s:?}");
    // Nothing wakes once no pool needs rescue: the timers disarm and the
    // monitor parks (its ticks stop; a timer re-armed for good would tick it
    // every 100 ms).
    let quiet = poll_until(DEADLINE, || {
        let before = cmwq::debug::monitor().ticks;
        std::thread::sleep(Duration::from_millis(300));
        cmwq::debug::monitor().ticks == before
    });
    assert!(quiet, "the monitor keeps ticking with no pool in need: {:?}", cmwq::debug::monitor());
    wq.destroy_bounded().unwrap();
}

/// `check_flush_dependency`: a `MEM_RECLAIM` item flushing a queue without it
/// is reported, once per flushed queue; flushing a `MEM_RECLAIM` queue, or
/// flushing from an item of a plain queue, is not. The flushes themselves work.
#[test]
fn flushing_a_plain_queue_from_a_reclaim_item_is_reported_once() {
    let _serial = SERIAL.lock();
    let reclaim = Workqueue::builder("fd-reclaim").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    let reclaim2 = Workqueue::builder("fd-reclaim2").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    let plain = Workqueue::builder("fd-plain").build().unwrap();
    let plain2 = Workqueue::builder("fd-plain2").build().unwrap();
    let before = cmwq::debug::nr_flush_dependency_warnings();
    let (p, r2) = (plain.clone(), reclaim2.clone());
    let w = Work::new(move |_| {
        p.flush().unwrap();
        p.flush().unwrap();
        p.drain().unwrap();
        r2.flush().unwrap(); // MEM_RECLAIM: nothing to report
    });
    reclaim.queue(&w).unwrap();
    w.flush_bounded().unwrap();
    assert_eq!(cmwq::debug::nr_flush_dependency_warnings(), before + 1, "one warning for fd-plain");
    let p2 = plain2.clone();
    let w2 = Work::new(move |_| p2.flush().unwrap());
    plain.queue(&w2).unwrap();
    w2.flush_bounded().unwrap();
    assert_eq!(cmwq::debug::nr_flush_dependency_warnings(), before + 1, "a plain item flushing: no warning");
    for q in [reclaim, reclaim2, plain, plain2] {
        q.destroy_bounded().unwrap();
    }
}

/// The same for a single item: `Work::flush` from a `MEM_RECLAIM` item of an
/// item queued on (or running for) a queue without it is reported (the kernel
/// checks in `start_flush_work`); of an item of a `MEM_RECLAIM` queue it is not.
#[test]
fn flushing_a_plain_queues_item_from_a_reclaim_item_is_reported() {
    let _serial = SERIAL.lock();
    let reclaim = Workqueue::builder("fdw-reclaim").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    let reclaim2 = Workqueue::builder("fdw-reclaim2").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    let plain = Workqueue::builder("fdw-plain").build().unwrap();
    let before = cmwq::debug::nr_flush_dependency_warnings();
    // The target runs until the flush below has found it and warned (a
    // flush of an item that already finished waits for nothing and, as in the
    // kernel, checks nothing), at most 5 s.
    let target = Work::new(move |_| {
        poll_until(Duration::from_secs(5), || cmwq::debug::nr_flush_dependency_warnings() > before);
    });
    let other = Work::new(|_| {});
    let (t, o, p, r2) = (target.clone(), other.clone(), plain.clone(), reclaim2.clone());
    let w = Work::new(move |_| {
        r2.queue(&o).unwrap();
        o.flush().unwrap(); // MEM_RECLAIM: nothing to report
        p.queue(&t).unwrap();
        t.flush().unwrap();
    });
    reclaim.queue(&w).unwrap();
    w.flush_bounded().unwrap();
    assert_eq!(cmwq::debug::nr_flush_dependency_warnings(), before + 1, "one warning for fdw-plain's item");
    for q in [reclaim, reclaim2, plain] {
        q.destroy_bounded().unwrap();
    }
}

fn task_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect()
}

/// The rescuer exists from `build` on, whatever the ceilings say, is named
/// after its queue (cut to Linux's 15 bytes at a character boundary), and is
/// gone once the queue is destroyed, or once its last handle is dropped.
#[test]
fn a_rescuer_is_made_at_build_named_after_its_queue_and_gone_with_it() {
    let _serial = SERIAL.lock();
    let refused = refuse(Refuse::Ceiling);
    let a = Workqueue::builder("réclamé-long-name").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    let b = Workqueue::ordered("rq-ordered").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    drop(refused);
    // A new thread names itself as it starts: look until it has.
    let named = |name: &str| poll_until(DEADLINE, || task_names().iter().any(|n| n == name));
    assert!(named("cmwq/R-réclam"), "no rescuer thread for a: {:?}", task_names());
    assert!(named("cmwq/R-rq-order"), "no rescuer thread for b: {:?}", task_names());
    a.destroy().unwrap();
    assert!(
        poll_until(DEADLINE, || !task_names().iter().any(|n| n == "cmwq/R-réclam")),
        "a's rescuer outlived destroy()"
    );
    drop(b);
    assert!(
        poll_until(DEADLINE, || !task_names().iter().any(|n| n == "cmwq/R-rq-order")),
        "b's rescuer outlived its last handle"
    );
}

/// Ordered and legacy forms: `alloc_ordered_workqueue(name, WQ_MEM_RECLAIM)`
/// keeps its order; `create_workqueue` (per-CPU, `max_active` 1,
/// `MEM_RECLAIM`) builds; `BH` refuses it (`__WQ_BH_ALLOWS`).
#[test]
fn ordered_and_legacy_reclaim_queues() {
    let _serial = SERIAL.lock();
    let ordered = Workqueue::ordered("rq-journal").flags(WqFlags::MEM_RECLAIM).build().unwrap();
    assert!(ordered.flags().contains(WqFlags::MEM_RECLAIM | WqFlags::UNBOUND));
    let order = Arc::new(Mutex::new(Vec::new()));
    let items: Vec<Work> = (0..5)
        .map(|i| {
            let o = order.clone();
            Work::new(move |_| o.lock().push(i))
        })
        .collect();
    for w in &items {
        ordered.queue(w).unwrap();
    }
    ordered.flush_bounded().unwrap();
    assert_eq!(*order.lock(), [0, 1, 2, 3, 4]);
    let legacy = Workqueue::builder("rq-legacy")
        .flags(WqFlags::PERCPU | WqFlags::MEM_RECLAIM)
        .max_active(1)
        .build()
        .unwrap();
    assert_eq!(legacy.max_active(), 1);
    let err = Workqueue::builder("rq-bh").flags(WqFlags::BH | WqFlags::MEM_RECLAIM).build().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidFlags(m) if m.contains("MEM_RECLAIM")), "{err:?}");
    ordered.destroy().unwrap();
    legacy.destroy().unwrap();
}
