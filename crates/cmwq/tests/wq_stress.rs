//! Bounded stress: producer threads race `queue`, `queue_on`, `cancel`, `flush` and
//! `cancel_sync` on shared items across per-CPU, unbound and ordered queues, the
//! default queue (unbound and concurrency managed) and a non-strict queue with a
//! pod per CPU (whose items are placed across pods), and `spawn` against drain,
//! destroy and dropped handles. What is checked is
//! bookkeeping that must balance exactly, whatever the interleaving:
//!
//! - every successful queueing is either executed once or cancelled once;
//! - an item never runs concurrently with itself while it stays on one queue;
//! - every spawned closure runs at most once, exactly when it was accepted, and is
//!   dropped exactly once whether it ran or was refused;
//! - a work item's closure (its captured state) is dropped exactly once, after the
//!   last handle, including the queues' internal ones, is gone.
//!
//! Each loop is bounded both by an iteration count and by a wall-clock cap.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, Work, Workqueue, WqFlags};
use support::{
    current_unbound_pool, join_bounded, poll_until, shared, Bounded, BoundedQueue, DropGuard, DEADLINE,
};

/// A wall-clock cap for each racing phase.
const CAP: Duration = Duration::from_secs(4);

/// xorshift64*: deterministic per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The kinds of queue the tests loop over, besides ordered queues.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `PERCPU`: the per-CPU pools.
    PerCpu,
    /// `UNBOUND`, default attributes.
    Unbound,
    /// Neither flag (`Workqueue::builder(..).build()`): unbound and
    /// concurrency managed, on the default affinity scope.
    Default,
    /// Not strict, a pod per CPU: an item leaves a busy pod for an idle one,
    /// so one item's instances run on different pools in turn.
    CpuScope,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::PerCpu, Kind::Unbound, Kind::Default, Kind::CpuScope];

    fn build(self, name: impl Into<String>, max_active: usize) -> Workqueue {
        let b = Workqueue::builder(name).max_active(max_active);
        match self {
            Kind::PerCpu => b.flags(WqFlags::PERCPU),
            Kind::Unbound => b.flags(WqFlags::UNBOUND),
            Kind::Default => b,
            Kind::CpuScope => b.attrs(Attrs {
                affinity_scope: AffinityScope::Cpu,
                affinity_strict: false,
                ..Attrs::default()
            }),
        }
        .build()
        .unwrap()
    }
}

#[derive(Default)]
struct ItemStats {
    queued: AtomicUsize,
    cancelled: AtomicUsize,
    executed: AtomicUsize,
    running: AtomicBool,
    overlaps: AtomicUsize,
    self_requeues: AtomicUsize,
    /// The unbound pools it ran on, one bit per pool id (modulo 64).
    pools: AtomicU64,
}

struct Item {
    work: Work,
    wq: usize,
    stats: Arc<ItemStats>,
}

#[test]
fn racing_queue_cancel_flush_keeps_exact_counts() {
    let _s = shared();
    let queues = Arc::new(vec![
        Kind::PerCpu.build("stress-percpu", 3),
        Kind::Unbound.build("stress-unbound", 4),
        Workqueue::ordered("stress-ordered").build().unwrap(),
        Kind::Default.build("stress-default", 3),
        Kind::CpuScope.build("stress-cpu-scope", 0),
    ]);
    let cpus = cmwq::allowed_cpus();
    let requeue = Arc::new(AtomicBool::new(true));
    const ITEMS: usize = 30;
    let items: Arc<Vec<Item>> = Arc::new(
        (0..ITEMS)
            .map(|i| {
                let stats = Arc::new(ItemStats::default());
                let wq = i % queues.len();
                let work = {
                    let (stats, queues, requeue) = (stats.clone(), queues.clone(), requeue.clone());
                    Work::new(move |w| {
                        if let Some(id) = current_unbound_pool() {
                            stats.pools.fetch_or(1 << (id % 64), Ordering::Relaxed);
                        }
                        if stats.running.swap(true, Ordering::SeqCst) {
                            stats.overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        let n = stats.executed.fetch_add(1, Ordering::SeqCst);
                        match n % 4 {
                            0 => cmwq::sleep(Duration::from_micros(30)),
                            1 => support::burn(Duration::from_micros(20)),
                            _ => {}
                        }
                        // Now and then the item requeues itself (chained work).
                        if n % 7 == 3
                            && requeue.load(Ordering::SeqCst)
                            && stats.self_requeues.load(Ordering::SeqCst) < 50
                            && queues[wq].queue(w) == Ok(true)
                        {
                            stats.self_requeues.fetch_add(1, Ordering::SeqCst);
                            stats.queued.fetch_add(1, Ordering::SeqCst);
                        }
                        stats.running.store(false, Ordering::SeqCst);
                    })
                };
                Item { work, wq, stats }
            })
            .collect(),
    );
    let start = Instant::now();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let (items, queues, cpus) = (items.clone(), queues.clone(), cpus.clone());
            thread::spawn(move || {
                let mut rng = Rng::new(t + 1);
                let mut ops = 0usize;
                for _ in 0..25_000 {
                    if start.elapsed() > CAP {
                        break;
                    }
                    ops += 1;
                    let it = &items[rng.below(items.len())];
                    let wq = &queues[it.wq];
                    match rng.below(12) {
                        0..=3 => {
                            if wq.queue(&it.work).expect("queue is open") {
                                it.stats.queued.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        4..=5 => {
                            let cpu = cpus[rng.below(cpus.len())];
                            if wq.queue_on(cpu, &it.work).expect("queue is open") {
                                it.stats.queued.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        6..=7 => {
                            if it.work.cancel() {
                                it.stats.cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        8 => {
                            it.work.flush().expect("flush from outside");
                        }
                        9 => {
                            if it.work.cancel_sync().expect("cancel_sync from outside") {
                                it.stats.cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        10 => {
                            if rng.below(8) == 0 {
                                wq.flush().expect("flush from outside");
                            }
                        }
                        _ => {
                            let _ = it.work.busy();
                            let _ = it.work.is_pending();
                        }
                    }
                }
                ops
            })
        })
        .collect();
    let ops: usize = producers.into_iter().map(join_bounded).sum();
    // Stop the chaining, then drain: chained work is waited for too.
    requeue.store(false, Ordering::SeqCst);
    for wq in queues.iter() {
        wq.drain_bounded().unwrap();
    }
    let mut total = 0;
    for (i, it) in items.iter().enumerate() {
        assert_eq!(it.work.flush_bounded(), Ok(false), "item {i} idle after the drain");
        assert!(!it.work.is_pending());
        let s = &it.stats;
        let (q, c, e) = (
            s.queued.load(Ordering::SeqCst),
            s.cancelled.load(Ordering::SeqCst),
            s.executed.load(Ordering::SeqCst),
        );
        assert_eq!(e + c, q, "item {i} on {}: queued {q}, cancelled {c}, executed {e}", queues[it.wq].name());
        assert_eq!(s.overlaps.load(Ordering::SeqCst), 0, "item {i} ran concurrently with itself");
        total += e;
    }
    for wq in queues.iter() {
        let st = wq.stats();
        assert_eq!(st.in_flight, 0, "{}: {st:?}", wq.name());
        assert_eq!(st.started, st.completed, "{}: {st:?}", wq.name());
        assert_eq!(st.panicked, 0);
    }
    // The items of the non-strict queue with a pod per CPU went to more than one
    // pod (`queue_on` names one, placement leaves a busy one): some item ran on
    // more than one pool, and never beside itself (checked above).
    let cpu_scope = queues.iter().position(|q| q.name() == "stress-cpu-scope").expect("the queue");
    if cmwq::allowed_cpus().len() > 1 {
        let moved = items
            .iter()
            .filter(|it| it.wq == cpu_scope && it.stats.pools.load(Ordering::Relaxed).count_ones() > 1)
            .count();
        assert!(moved > 0, "no item of the cpu-scope queue ran on two pods' pools");
    }
    let started: u64 = queues.iter().map(|q| q.stats().started).sum();
    assert_eq!(started, total as u64, "stats agree with the callbacks' own count");
    eprintln!("{ops} racing operations, {total} executions in {:?}", start.elapsed());
    for wq in queues.iter() {
        wq.destroy_bounded().unwrap();
    }
}

/// How a round ends the queue while producers spawn onto it.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Destroy,
    Drain,
    DropHandles,
}

#[test]
fn spawned_closures_run_at_most_once_and_drop_exactly_once() {
    let _s = shared();
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 300;
    let start = Instant::now();
    let mut round = 0u64;
    for ending in [Ending::Destroy, Ending::Drain, Ending::DropHandles] {
        for kind in Kind::ALL {
            round += 1;
            let wq = kind.build(format!("stress-spawn-{round}"), 8);
            let n = PRODUCERS * PER_PRODUCER;
            let counters =
                || -> Arc<Vec<AtomicUsize>> { Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()) };
            let (made, accepted, ran) = (counters(), counters(), counters());
            let dropped: Arc<Vec<Arc<AtomicUsize>>> =
                Arc::new((0..n).map(|_| Arc::new(AtomicUsize::new(0))).collect());
            let halfway = Arc::new(AtomicUsize::new(0));
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|t| {
                    let (wq, made, accepted, ran, dropped, halfway) = (
                        wq.clone(),
                        made.clone(),
                        accepted.clone(),
                        ran.clone(),
                        dropped.clone(),
                        halfway.clone(),
                    );
                    thread::spawn(move || {
                        let mut rng = Rng::new(round * 100 + t as u64);
                        for k in 0..PER_PRODUCER {
                            if k == PER_PRODUCER / 2 {
                                halfway.fetch_add(1, Ordering::SeqCst);
                            }
                            if start.elapsed() > CAP * 3 {
                                break;
                            }
                            let id = t * PER_PRODUCER + k;
                            made[id].store(1, Ordering::SeqCst);
                            let guard = DropGuard(dropped[id].clone());
                            let ran = ran.clone();
                            let closure = move || {
                                let _g = &guard;
                                ran[id].fetch_add(1, Ordering::SeqCst);
                                if id % 5 == 0 {
                                    cmwq::sleep(Duration::from_micros(20));
                                }
                            };
                            match wq.spawn(closure) {
                                Ok(()) => accepted[id].store(1, Ordering::SeqCst),
                                // The refused closure comes back; drop it either way.
                                Err(e) if rng.below(2) == 0 => drop(e.into_inner()),
                                Err(e) => drop(e),
                            }
                        }
                    })
                })
                .collect();
            // End the queue while the producers are mid-way.
            let mut main_handle = Some(wq);
            assert!(poll_until(DEADLINE, || halfway.load(Ordering::SeqCst) >= PRODUCERS / 2));
            match ending {
                Ending::Destroy => main_handle.as_ref().unwrap().destroy_bounded().unwrap(),
                Ending::Drain => main_handle.as_ref().unwrap().drain_bounded().unwrap(),
                // The last producer to finish drops the last handle, maybe with
                // items still pending: they must still run.
                Ending::DropHandles => main_handle = None,
            }
            for p in producers {
                join_bounded(p);
            }
            drop(main_handle);
            let settled = poll_until(DEADLINE, || {
                (0..n).all(|id| {
                    ran[id].load(Ordering::SeqCst) == accepted[id].load(Ordering::SeqCst)
                        && dropped[id].load(Ordering::SeqCst) == made[id].load(Ordering::SeqCst)
                })
            });
            let load = |v: &Vec<AtomicUsize>, id: usize| v[id].load(Ordering::SeqCst);
            for id in 0..n {
                let what = format!("round {round} ({ending:?}, {kind:?}), closure {id}");
                assert_eq!(load(&ran, id), load(&accepted, id), "{what}: runs must equal acceptance");
                assert_eq!(
                    dropped[id].load(Ordering::SeqCst),
                    load(&made, id),
                    "{what}: drops must equal creation"
                );
            }
            assert!(settled);
            let acc = (0..n).filter(|&id| load(&accepted, id) == 1).count();
            let mk = (0..n).filter(|&id| load(&made, id) == 1).count();
            eprintln!(
                "round {round} {ending:?} {kind:?}: {mk} spawned, {acc} accepted, {} refused",
                mk - acc
            );
        }
    }
}

#[test]
fn work_closures_are_dropped_exactly_once_after_the_last_handle() {
    let _s = shared();
    let queues = Arc::new(vec![
        Kind::PerCpu.build("stress-drop-percpu", 0),
        Kind::Unbound.build("stress-drop-unbound", 0),
        Workqueue::ordered("stress-drop-ordered").build().unwrap(),
        Kind::Default.build("stress-drop-default", 0),
        Kind::CpuScope.build("stress-drop-cpu-scope", 0),
    ]);
    const ITEMS: usize = 64;
    let drops: Vec<Arc<AtomicUsize>> = (0..ITEMS).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut items: Vec<Work> = (0..ITEMS)
        .map(|i| {
            let guard = DropGuard(drops[i].clone());
            let runs = runs.clone();
            Work::new(move |_| {
                let _g = &guard;
                runs.fetch_add(1, Ordering::SeqCst);
                if runs.load(Ordering::Relaxed) % 3 == 0 {
                    cmwq::sleep(Duration::from_micros(20));
                }
            })
        })
        .collect();
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            // Each thread owns clones of every handle and drops them as it goes.
            let handles: Vec<Work> = items.to_vec();
            let queues = queues.clone();
            thread::spawn(move || {
                let mut rng = Rng::new(77 + t);
                let mut handles: Vec<Option<Work>> = handles.into_iter().map(Some).collect();
                for _ in 0..20_000 {
                    if start.elapsed() > CAP {
                        break;
                    }
                    let i = rng.below(handles.len());
                    let Some(w) = &handles[i] else { continue };
                    match rng.below(6) {
                        0..=2 => {
                            let _ = queues[i % queues.len()].queue(w).expect("open");
                        }
                        3 => {
                            w.cancel();
                        }
                        4 => {
                            let _ = w.flush();
                        }
                        _ => handles[i] = None,
                    }
                }
            })
        })
        .collect();
    // While the test still holds a handle, nothing is dropped.
    for t in threads {
        join_bounded(t);
    }
    assert!(drops.iter().all(|d| d.load(Ordering::SeqCst) == 0), "dropped while a handle lives");
    // Drop the last handles while some items may still be queued.
    for (i, w) in items.drain(..).enumerate() {
        if i % 2 == 0 {
            w.cancel();
        }
    }
    let all = poll_until(DEADLINE, || drops.iter().all(|d| d.load(Ordering::SeqCst) >= 1));
    assert!(
        all,
        "some closures never dropped: {:?}",
        drops.iter().map(|d| d.load(Ordering::SeqCst)).collect::<Vec<_>>()
    );
    for wq in queues.iter() {
        wq.flush_bounded().unwrap();
    }
    for (i, d) in drops.iter().enumerate() {
        assert_eq!(d.load(Ordering::SeqCst), 1, "closure {i}");
    }
    for wq in queues.iter() {
        wq.destroy_bounded().unwrap();
    }
}

/// Captured state whose destructor calls back into cmwq: it locks every pool (via
/// `debug::pools`) and drops what may be the last handle of a workqueue. If the
/// library ever dropped user state while holding a pool lock, this would deadlock.
struct ReentrantGuard {
    drops: Arc<AtomicUsize>,
    wq: Option<Workqueue>,
}

impl Drop for ReentrantGuard {
    fn drop(&mut self) {
        assert!(!cmwq::debug::pools().is_empty());
        drop(self.wq.take());
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn closures_are_dropped_outside_pool_locks() {
    let _s = shared();
    let shared_queues = [
        Kind::PerCpu.build("stress-reentrant-percpu", 0),
        Kind::Unbound.build("stress-reentrant-unbound", 0),
        Workqueue::ordered("stress-reentrant-ordered").build().unwrap(),
        Kind::Default.build("stress-reentrant-default", 0),
        Kind::CpuScope.build("stress-reentrant-cpu-scope", 0),
    ];
    const N: usize = 48;
    let drops = Arc::new(AtomicUsize::new(0));
    let mut expected = 0;
    let mut works = Vec::new();
    for i in 0..N {
        // Each item holds the last handle of its own queue, and runs on it.
        // Each kind of queue meets each of the four fates below.
        let own = Kind::ALL[(i / 4) % Kind::ALL.len()].build(format!("stress-own-{i}"), 0);
        let guard = ReentrantGuard { drops: drops.clone(), wq: Some(own.clone()) };
        let w = Work::new(move |_| {
            let _g = &guard;
            cmwq::sleep(Duration::from_micros(10));
        });
        assert_eq!(own.queue(&w), Ok(true));
        match i % 4 {
            // Cancelled while queued: the list's handle goes when it is stolen.
            0 => {
                w.cancel();
            }
            // Also queued on a shared queue (it may run there concurrently).
            1 => {
                let _ = shared_queues[i % shared_queues.len()].queue(&w);
            }
            _ => {}
        }
        drop(own);
        works.push(w);
        expected += 1;
        // A spawned closure holding the last handle of the queue it runs on.
        let own2 = Kind::ALL[i % Kind::ALL.len()].build(format!("stress-own-spawn-{i}"), 0);
        let guard2 = ReentrantGuard { drops: drops.clone(), wq: Some(own2.clone()) };
        own2.spawn(move || {
            let _g = &guard2;
        })
        .unwrap();
        drop(own2);
        expected += 1;
    }
    // Drop the test's handles: the last ones go on worker threads or here.
    works.clear();
    let all = poll_until(DEADLINE, || drops.load(Ordering::SeqCst) == expected);
    assert!(
        all,
        "{} of {expected} closures dropped: a destructor that calls into cmwq hung \
         (user state dropped under a pool lock?)",
        drops.load(Ordering::SeqCst)
    );
    for wq in &shared_queues {
        wq.destroy_bounded().unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), expected, "dropped exactly once");
}
