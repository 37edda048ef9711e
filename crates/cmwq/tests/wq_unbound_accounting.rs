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

use cmwq::{AffinityScope, Attrs, Work, Workqueue, WqFlags};
use support::{
    assert_pools_settle, burn_cpu, current_unbound_pool, distinct_cpus, exclusive, join_bounded,
    pin_current_thread, poll_until, pool_by_id, spin_until, stacked_spinners, unbound_pool_of,
    yields_come_straight_back, Bounded, BoundedQueue, Concurrency, DEADLINE,
};

/// Rounds per queue, at most.
const ROUNDS: usize = 12;
/// A wall-clock cap on each test's rounds (at least one round runs per queue).
const CAP: Duration = Duration::from_secs(20);
/// Pool ids of this process are below this: the per-CPU pools of the few CPUs a
/// test machine has and the unbound pools of these tests.
const MAX_POOLS: usize = 512;

/// The queues under test: one pod of every allowed CPU, and a pod per CPU, not
/// strict, so that items leave a busy pod for an idle one; their pools have
/// nice value `nice`.
fn queues(tag: &str, nice: i32) -> Vec<Workqueue> {
    let base = Attrs::default().with_nice(nice);
    let system = Attrs { affinity_scope: AffinityScope::System, ..base.clone() };
    let cpu = Attrs { affinity_scope: AffinityScope::Cpu, affinity_strict: false, ..base };
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
    for wq in queues("mixed", 0) {
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
/// Pools of their own (nice 4): the other test's plain sleepers mark their
/// pools as blocking unannounced for a second, and in such a pool the idle
/// sentinels also take out a worker that waits for a CPU (`monitor/README.md`,
/// "Waiting for a CPU counts as stalled"), which may start one item more for a
/// while.
#[test]
fn cpu_bound_items_never_outnumber_their_pods_cpus() {
    let _g = exclusive();
    let n = cmwq::allowed_cpus().len();
    let conc: Arc<Vec<Concurrency>> = Arc::new((0..MAX_POOLS).map(|_| Concurrency::default()).collect());
    let start = Instant::now();
    for (q, wq) in queues("cpu-bound", 4).into_iter().enumerate() {
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

/// Two distinct CPUs, the second idle: what the sentinels' waiting rule needs
/// to have anything to show (with no idle CPU it does nothing anywhere). `None`,
/// and why on stderr, otherwise.
fn cpus_with_the_second_idle() -> Option<(usize, usize)> {
    let Some((c0, c1)) = distinct_cpus() else {
        eprintln!("skipped: needs two CPUs");
        return None;
    };
    if !yields_come_straight_back(c1) {
        eprintln!("skipped: cpu{c1} is busy with other threads");
        return None;
    }
    Some((c0, c1))
}

/// One spinner per allowed CPU (`stacked_spinners`), each pinning its worker to
/// `cpu` and spinning until `let_go` (or the deadline), queued on `wq`; returns
/// once all have started, with the spinners and their count of timeouts.
fn queue_stacked_spinners(
    wq: &Workqueue,
    cpu: usize,
    let_go: &Arc<AtomicBool>,
    deadline: Instant,
) -> (Vec<Work>, Arc<AtomicUsize>) {
    let n = cmwq::allowed_cpus().len();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let (spinners, timed_out) = stacked_spinners(cpu, n, let_go, deadline, move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    });
    for w in &spinners {
        assert!(wq.queue(w).unwrap());
    }
    assert!(
        poll_until(DEADLINE, || started.load(Ordering::SeqCst) == n),
        "not every spinner started: {}",
        started.load(Ordering::SeqCst)
    );
    (spinners, timed_out)
}

/// A pool whose items never block unannounced keeps its count exactly even
/// while another pool has armed the idle sentinels of its CPUs: an armed
/// sentinel sweeps every saturated pool of its CPU, but takes out a worker that
/// merely waits for a CPU only in a pool that blocked lately
/// (`WorkerPool::sentinel_covers`; `monitor/README.md`, "Waiting for a CPU
/// counts as stalled"). One item per CPU of a CPU-bound pool pins its worker
/// to cpu0 and spins there, so one of them always waits for that CPU while
/// cpu1 idles, and an item waits behind them; then a per-CPU queue's plain
/// sleeper on cpu1 saturates its pool, which blocked unannounced a moment
/// before, and arms cpu1's sentinel. The item behind must not start before the
/// spinners are let go.
#[test]
fn a_cpu_bound_pool_keeps_its_count_while_another_pool_arms_the_sentinels() {
    let _g = exclusive();
    let Some((c0, c1)) = cpus_with_the_second_idle() else { return };
    let n = cmwq::allowed_cpus().len();
    let attrs = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default().with_nice(5) };
    let cpu_bound = Workqueue::builder("spinners-on-cpu0").attrs(attrs).build().unwrap();
    let sleepers = Workqueue::builder("sleepers-on-cpu1").flags(WqFlags::PERCPU).build().unwrap();
    let deadline = Instant::now() + DEADLINE;
    let let_go = Arc::new(AtomicBool::new(false));
    // A plain sleep on cpu1 until `let_go` (or the deadline), in 1 ms steps.
    let sleeper = |started: Arc<AtomicBool>, spin: Duration| {
        let let_go = let_go.clone();
        Work::new(move |_| {
            started.store(true, Ordering::SeqCst);
            burn_cpu(spin);
            while !let_go.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    // 1. The sleepers' pool blocks unannounced once: the monitor takes the
    //    sleeper out, so that the item behind it runs, and remembers the block
    //    for a second.
    let before = cmwq::debug::monitor();
    let first = sleeper(Arc::new(AtomicBool::new(false)), Duration::ZERO);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let after_first = Work::new(move |_| r.store(true, Ordering::SeqCst));
    assert!(sleepers.queue_on(c1, &first).unwrap());
    assert!(sleepers.queue_on(c1, &after_first).unwrap());
    assert!(
        poll_until(DEADLINE, || ran.load(Ordering::SeqCst)),
        "the item behind a plain sleeper never ran: {:?}",
        cmwq::debug::monitor()
    );
    assert!(cmwq::debug::monitor().blocked > before.blocked, "the monitor took nobody out");

    // 2. The spinners, stacked on cpu0, and the item behind them.
    let (_spinners, timed_out) = queue_stacked_spinners(&cpu_bound, c0, &let_go, deadline);
    let early = Arc::new(AtomicBool::new(false));
    let behind = {
        let (let_go, early) = (let_go.clone(), early.clone());
        Work::new(move |_| early.store(!let_go.load(Ordering::SeqCst), Ordering::SeqCst))
    };
    assert!(cpu_bound.queue(&behind).unwrap());

    // 3. The sleepers' pool saturates on cpu1: its second sleeper counts while
    //    it burns 2 ms, and a third item waits behind it. That arms cpu1's
    //    sentinel, which keeps sweeping while the spinners' pool stays saturated.
    let second_started = Arc::new(AtomicBool::new(false));
    let second = sleeper(second_started.clone(), Duration::from_millis(2));
    assert!(sleepers.queue_on(c1, &second).unwrap());
    assert!(spin_until(DEADLINE, || second_started.load(Ordering::SeqCst)), "the second sleeper never ran");
    let third = Work::new(|_| {});
    assert!(sleepers.queue_on(c1, &third).unwrap());

    // 4. Long enough for the sentinel to take a waiting spinner out many times
    //    over (it needs 200 µs, the stall window), were it allowed to.
    std::thread::sleep(Duration::from_millis(300));
    let armed = cmwq::debug::monitor();
    let_go.store(true, Ordering::SeqCst);
    cpu_bound.flush_bounded().unwrap();
    sleepers.flush_bounded().unwrap();
    assert!(
        !early.load(Ordering::SeqCst),
        "the item behind {n} CPU-bound spinners started before they were let go: {armed:?}"
    );
    assert_eq!(armed.waiting, before.waiting, "a waiting worker was taken out: {armed:?}");
    assert!(!third.is_pending());
    assert_eq!(timed_out.load(Ordering::SeqCst), 0, "a spinner ran into the deadline");
    assert_pools_settle("the spinners' pool", &[unbound_pool_of(&cpu_bound).id]);
    cpu_bound.destroy_bounded().unwrap();
    sleepers.destroy_bounded().unwrap();
}

/// An unbound pool of several CPUs whose items announce their blocks is
/// covered by the idle sentinels for a second after a block, as one that
/// blocked unannounced is (`WorkerPool::blocks_announced`): the scheduler may
/// stack its woken workers on one CPU of the pod while another idles. One item
/// sleeps announced (`cmwq::sleep`); then one item per CPU pins its worker to
/// cpu0 and spins there until the item queued behind them has run. Nobody
/// blocks now, so that item can start only once the sentinel of an idle CPU has
/// taken a waiting spinner out of the count; without the rule it would start
/// when the spinners give up, at the deadline.
#[test]
fn a_pool_that_blocked_announced_lately_has_a_worker_waiting_for_a_cpu_taken_out() {
    let _g = exclusive();
    let Some((c0, _)) = cpus_with_the_second_idle() else { return };
    let n = cmwq::allowed_cpus().len();
    let attrs = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default().with_nice(6) };
    let wq = Workqueue::builder("announced-blocker").attrs(attrs).build().unwrap();
    let before = cmwq::debug::monitor();

    // 1. An announced block: the pool is covered for a second.
    let slept = Work::new(|_| cmwq::sleep(Duration::from_millis(2)));
    assert!(wq.queue(&slept).unwrap());
    wq.flush_bounded().unwrap();

    // 2. The spinners, stacked on cpu0, and the item behind them, which lets
    //    them go.
    let let_go = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + DEADLINE;
    let (_spinners, timed_out) = queue_stacked_spinners(&wq, c0, &let_go, deadline);
    let l = let_go.clone();
    let behind = Work::new(move |_| l.store(true, Ordering::SeqCst));
    assert!(wq.queue(&behind).unwrap());
    wq.flush_bounded().unwrap();
    let after = cmwq::debug::monitor();
    assert_eq!(
        timed_out.load(Ordering::SeqCst),
        0,
        "the item behind {n} spinners stacked on cpu{c0} waited for them to give up: {after:?}"
    );
    assert!(after.waiting > before.waiting, "no sentinel took a waiting worker out: {after:?}");
    assert_pools_settle("the blocker's pool", &[unbound_pool_of(&wq).id]);
    wq.destroy_bounded().unwrap();
}
