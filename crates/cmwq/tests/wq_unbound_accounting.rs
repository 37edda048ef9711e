//! Exact `nr_running` accounting of the concurrency-managed unbound pools under
//! load (`pool/cm.rs`, "Who changes `nr_running`"): rounds of CPU-bound items,
//! items that block announced (`cmwq::blocking`, `cmwq::sleep`) and items that
//! sleep without telling anybody (found by the sleep monitor), on a queue with
//! one pod of every allowed CPU and on a non-strict queue with a pod per CPU
//! (items placed across pods). After each round every unbound pool it touched
//! counts nobody running and nobody busy: each transition was counted once and
//! given back once. And while nothing blocks, no pod's pool runs more items at
//! once than it has CPUs.
//!
//! Every test takes the pool lock exclusively (which turns the CPU-intensive rule
//! off, so a CPU-bound item stays counted). Loops are bounded in rounds and in
//! time; every wait is bounded by the deadline.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, Work, Workqueue};
use support::{
    assert_pools_settle, burn_cpu, current_unbound_pool, exclusive, join_bounded, pin_current_thread,
    pool_by_id, Bounded, BoundedQueue, Concurrency,
};

/// Rounds per queue, at most.
const ROUNDS: usize = 12;
/// A wall-clock cap on each test's rounds (at least one round runs per queue).
const CAP: Duration = Duration::from_secs(20);
/// Pool ids of this process are below this: the per-CPU pools of the few CPUs a
/// test machine has and the unbound pools of these tests.
const MAX_POOLS: usize = 512;

/// The queues under test: one pod of every allowed CPU, and a pod per CPU, not
/// strict, so that items leave a busy pod for an idle one.
fn queues(tag: &str) -> Vec<Workqueue> {
    let system = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default() };
    let cpu = Attrs { affinity_scope: AffinityScope::Cpu, affinity_strict: false, ..Attrs::default() };
    vec![
        Workqueue::builder(format!("{tag}-system")).attrs(system).build().unwrap(),
        Workqueue::builder(format!("{tag}-cpu-loose")).attrs(cpu).build().unwrap(),
    ]
}

/// The unbound pools items ran on, by id, recorded by the items themselves.
#[derive(Debug)]
struct Touched(Vec<AtomicBool>);

impl Touched {
    fn new() -> Arc<Touched> {
        Arc::new(Touched((0..MAX_POOLS).map(|_| AtomicBool::new(false)).collect()))
    }

    /// Records the calling item's pool and returns its id. Allocates and blocks
    /// on nothing.
    fn note(&self) -> usize {
        let id = current_unbound_pool().expect("ran on an unbound worker") as usize;
        assert!(id < MAX_POOLS, "pool id {id}: raise MAX_POOLS");
        self.0[id].store(true, Ordering::Relaxed);
        id
    }

    fn ids(&self) -> Vec<u32> {
        (0..MAX_POOLS as u32).filter(|&i| self.0[i as usize].load(Ordering::Relaxed)).collect()
    }
}

/// Queues `items` on `wq` from one producer per allowed CPU, pinned there (so
/// that each pod's CPU queues and placement moves work from busy pods), half
/// with `queue_on` (the pod of the CPU named) and half with `queue`.
fn queue_from_every_cpu(wq: &Workqueue, items: &[Work]) {
    let cpus = cmwq::allowed_cpus();
    let producers: Vec<_> = cpus
        .iter()
        .enumerate()
        .map(|(k, &cpu)| {
            let wq = wq.clone();
            let mine: Vec<Work> = items.iter().skip(k).step_by(cpus.len()).cloned().collect();
            let other = cpus[(k + 1) % cpus.len()];
            std::thread::spawn(move || {
                pin_current_thread(cpu);
                for (i, w) in mine.iter().enumerate() {
                    let queued = if i % 2 == 0 { wq.queue(w) } else { wq.queue_on(other, w) };
                    assert_eq!(queued, Ok(true));
                }
            })
        })
        .collect();
    producers.into_iter().for_each(join_bounded);
}

/// How an item of the mixed rounds spends its time.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Burns CPU without blocking.
    Cpu,
    /// Blocks inside `cmwq::blocking`, then burns a little.
    Blocking,
    /// `cmwq::sleep`, then burns a little.
    Sleep,
    /// Plain `std::thread::sleep`, telling nobody (the monitor finds it), then
    /// burns a little: it runs again while marked.
    Plain,
}

const KINDS: [Kind; 4] = [Kind::Cpu, Kind::Blocking, Kind::Sleep, Kind::Plain];

fn mixed_item(kind: Kind, touched: &Arc<Touched>, done: &Arc<AtomicUsize>) -> Work {
    let (touched, done) = (touched.clone(), done.clone());
    Work::new(move |_| {
        touched.note();
        let little = Duration::from_micros(300);
        match kind {
            Kind::Cpu => burn_cpu(Duration::from_millis(1)),
            Kind::Blocking => {
                cmwq::blocking(|| std::thread::sleep(Duration::from_millis(2)));
                burn_cpu(little);
            }
            Kind::Sleep => {
                cmwq::sleep(Duration::from_millis(2));
                burn_cpu(little);
            }
            Kind::Plain => {
                std::thread::sleep(Duration::from_millis(4));
                burn_cpu(little);
            }
        }
        done.fetch_add(1, Ordering::SeqCst);
    })
}

/// Rounds of every kind of item, in varying proportions, on both queues; after
/// each flush the pools the round touched count nobody running or busy.
#[test]
fn every_pool_counts_nobody_after_rounds_of_mixed_items() {
    let _g = exclusive();
    let n = cmwq::allowed_cpus().len();
    let before = cmwq::debug::monitor();
    let start = Instant::now();
    let mut rounds = 0;
    for wq in queues("mixed") {
        for round in 0..ROUNDS {
            if round > 0 && start.elapsed() > CAP {
                break;
            }
            rounds += 1;
            let touched = Touched::new();
            let done = Arc::new(AtomicUsize::new(0));
            // 4n to 4n + 3 items; the kinds rotate with the round.
            let count = 4 * n + round % 4;
            let items: Vec<Work> =
                (0..count).map(|i| mixed_item(KINDS[(i + round) % KINDS.len()], &touched, &done)).collect();
            queue_from_every_cpu(&wq, &items);
            wq.flush_bounded().unwrap();
            assert_eq!(done.load(Ordering::SeqCst), count, "{} round {round}", wq.name());
            let ids = touched.ids();
            assert!(!ids.is_empty());
            assert_pools_settle(&format!("{} round {round}", wq.name()), &ids);
        }
        let st = wq.stats();
        assert_eq!((st.in_flight, st.started), (0, st.completed), "{}: {st:?}", wq.name());
        wq.destroy_bounded().unwrap();
    }
    let after = cmwq::debug::monitor();
    eprintln!(
        "{rounds} rounds in {:?}; the monitor took {} plain sleepers out, {} counted again mid-item",
        start.elapsed(),
        after.blocked - before.blocked,
        after.resumed - before.resumed
    );
    assert!(
        after.blocked > before.blocked,
        "the monitor took no plain sleeper out in {rounds} rounds: its marks went unchecked: {after:?}"
    );
}

/// While nothing blocks, a pod's pool lets at most as many items run at once as
/// the pod has CPUs, each round, on both queues; and on the one pod of every
/// CPU, that many did run at once (the limit is reached, not merely kept).
#[test]
fn cpu_bound_items_never_outnumber_their_pods_cpus() {
    let _g = exclusive();
    let n = cmwq::allowed_cpus().len();
    let conc: Arc<Vec<Concurrency>> = Arc::new((0..MAX_POOLS).map(|_| Concurrency::default()).collect());
    let start = Instant::now();
    for (q, wq) in queues("cpu-bound").into_iter().enumerate() {
        let touched = Touched::new();
        for round in 0..ROUNDS {
            if round > 0 && start.elapsed() > CAP {
                break;
            }
            let done = Arc::new(AtomicUsize::new(0));
            let count = 3 * n + 1 + round % 3;
            let items: Vec<Work> = (0..count)
                .map(|_| {
                    let (conc, touched, done) = (conc.clone(), touched.clone(), done.clone());
                    Work::new(move |_| {
                        let id = touched.note();
                        let _in = conc[id].enter();
                        burn_cpu(Duration::from_millis(2));
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            queue_from_every_cpu(&wq, &items);
            wq.flush_bounded().unwrap();
            assert_eq!(done.load(Ordering::SeqCst), count);
            let ids = touched.ids();
            assert_pools_settle(&format!("{} round {round}", wq.name()), &ids);
            for &id in &ids {
                let pool = pool_by_id(id).expect("a touched pool exists");
                assert!(
                    conc[id as usize].max() <= pool.concurrency,
                    "{} round {round}: {} CPU-bound items at once in the pool of pod {:?} \
                     (concurrency {})",
                    wq.name(),
                    conc[id as usize].max(),
                    pool.pod,
                    pool.concurrency
                );
            }
        }
        let maxima: Vec<(u32, usize)> =
            touched.ids().iter().map(|&id| (id, conc[id as usize].max())).collect();
        eprintln!("{}: most CPU-bound items at once, by pool: {maxima:?}", wq.name());
        if q == 0 {
            let ids = touched.ids();
            assert_eq!(ids.len(), 1, "one pod, one pool: {ids:?}");
            assert_eq!(
                conc[ids[0] as usize].max(),
                n,
                "{}: the pod's {n} CPUs never all ran items",
                wq.name()
            );
        }
        wq.destroy_bounded().unwrap();
    }
}
