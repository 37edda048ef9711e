//! Batches of spawned closures (`pool/batch.rs`): a worker of an unbound pool
//! of several CPUs takes the closures of one pwq at the head of the worklist
//! with the first, while the pool's items are short. What must hold: a closure
//! never waits for ever behind a blocked one of its batch, announced or not (it
//! may be what that one waits for), nor long behind a long one while a CPU is
//! free; and each closure runs once.
//!
//! Each test makes its batch: it warms a pool of its own with short closures
//! (so that its items count as short), occupies every worker with a gate item,
//! spawns the closures of the batch behind the gates, and opens them; the first
//! worker back takes the closures in one batch (the queue's `batched` count
//! shows it; a warm-up whose last batch was preempted leaves the items counted
//! as long, and the test tries again, 5 times at most). Every wait is bounded.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, Work, Workqueue};
use support::{burn, distinct_cpus, exclusive, poll_until, Bounded, BoundedQueue, DEADLINE};

/// A closure to spawn, boxed.
type Job = Box<dyn FnOnce() + Send>;

/// A queue on a pool of its own (nice 6), one pod of every allowed CPU.
fn batch_queue(name: &str) -> Workqueue {
    let attrs = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default().with_nice(6) };
    Workqueue::builder(name).attrs(attrs).build().unwrap()
}

/// [`batch_queue`] where batches can run: they need a pod of two CPUs
/// (`None`: the test is skipped).
fn batching_queue(name: &str) -> Option<Workqueue> {
    distinct_cpus()?;
    Some(batch_queue(name))
}

/// Spawns rounds of no-op closures until a round ran some in a batch, which
/// also leaves the pool's items counted as short.
fn warm(wq: &Workqueue) {
    for _ in 0..50 {
        let before = wq.stats().batched;
        for _ in 0..64 {
            wq.spawn(|| {}).unwrap();
        }
        wq.flush_bounded().unwrap();
        if wq.stats().batched > before {
            return;
        }
    }
    panic!("{}: no closure ever ran in a batch", wq.name());
}

/// Occupies every worker of `wq`'s pool with a gate item (a work item, which
/// never joins a batch) spinning until the returned flag is set; returns once
/// all of them run.
fn close_gates(wq: &Workqueue) -> (Arc<AtomicBool>, Vec<Work>) {
    let n = cmwq::allowed_cpus().len();
    let open = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + DEADLINE;
    let gates: Vec<Work> = (0..n)
        .map(|_| {
            let (open, running) = (open.clone(), running.clone());
            Work::new(move |_| {
                running.fetch_add(1, Ordering::SeqCst);
                while !open.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    for g in &gates {
        assert!(wq.queue(g).unwrap());
    }
    assert!(poll_until(DEADLINE, || running.load(Ordering::SeqCst) == n), "the gates never all ran");
    (open, gates)
}

/// Warms `wq`, spawns `closures` while every worker holds a gate, so that the
/// first worker back takes them in one batch, and runs them; returns how many
/// ran in a batch behind its first (`WqStats::batched`).
fn behind_gates(wq: &Workqueue, closures: Vec<Job>) -> u64 {
    warm(wq);
    let before = wq.stats().batched;
    let (open, _gates) = close_gates(wq);
    for f in closures {
        wq.spawn(f).unwrap();
    }
    open.store(true, Ordering::SeqCst);
    wq.flush_bounded().unwrap();
    wq.stats().batched - before
}

/// [`behind_gates`] with `closures` behind a no-op; returns whether they ran
/// in a batch (a batch needs the pool's items to count as short, which a
/// preempted warm-up batch can undo: the callers try again).
fn as_one_batch(wq: &Workqueue, closures: Vec<Job>) -> bool {
    let mut all: Vec<Job> = vec![Box::new(|| {})];
    all.extend(closures);
    behind_gates(wq, all) > 0
}

/// Tries `attempt` (which makes its closures afresh, runs them with
/// [`as_one_batch`] and checks what must hold) until one ran as a batch.
fn until_batched(wq: &Workqueue, mut attempt: impl FnMut() -> bool) {
    for _ in 0..5 {
        if attempt() {
            return;
        }
    }
    panic!("{}: the closures never ran as one batch in 5 tries: {:?}", wq.name(), wq.stats());
}

/// `a` waits for `b`, both in one batch behind a no-op: the wait ends (the
/// batch's rest is taken back when `a`'s worker stops counting), and `a` ran
/// in the batch.
fn waiter_and_waited(name: &str, announced: bool) {
    let _g = exclusive();
    let Some(wq) = batching_queue(name) else { return };
    until_batched(&wq, || {
        let (b_ran, a_timed_out) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let deadline = Instant::now() + DEADLINE;
        let (b, t) = (b_ran.clone(), a_timed_out.clone());
        let a = move || {
            let wait = || {
                while !b.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        t.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            };
            if announced {
                cmwq::blocking(wait);
            } else {
                wait();
            }
        };
        let b = b_ran.clone();
        let batched = as_one_batch(&wq, vec![Box::new(a), Box::new(move || b.store(true, Ordering::SeqCst))]);
        assert!(b_ran.load(Ordering::SeqCst));
        assert!(!a_timed_out.load(Ordering::SeqCst), "{name}: the closure waited for ever for one behind it");
        batched
    });
    let st = wq.stats();
    assert_eq!((st.in_flight, st.started), (0, st.completed), "{st:?}");
    wq.destroy_bounded().unwrap();
}

/// A closure that blocks inside `cmwq::blocking` in a batch: the one behind it,
/// which it waits for, runs.
#[test]
fn a_closure_blocked_announced_in_a_batch_lets_the_rest_run() {
    waiter_and_waited("batch-announced", true);
}

/// The same with a plain `std::thread::sleep`, found by the sleep monitor.
#[test]
fn a_closure_blocked_unannounced_in_a_batch_lets_the_rest_run() {
    waiter_and_waited("batch-plain", false);
}

/// A long CPU-bound closure in a batch does not keep the one behind it from
/// a free CPU until it ends: the monitor takes back a batch that has run for a
/// millisecond. The long one spins until the one behind it has started (or for
/// 300 ms at most).
#[test]
fn a_long_closure_in_a_batch_does_not_hold_the_rest() {
    let _g = exclusive();
    let Some(wq) = batching_queue("batch-long") else { return };
    until_batched(&wq, || {
        let behind_started = Arc::new(AtomicBool::new(false));
        let spun_out = Arc::new(AtomicBool::new(false));
        let (b, s) = (behind_started.clone(), spun_out.clone());
        let long = move || {
            let t0 = Instant::now();
            while !b.load(Ordering::SeqCst) {
                if t0.elapsed() > Duration::from_millis(300) {
                    s.store(true, Ordering::SeqCst);
                    return;
                }
                std::hint::spin_loop();
            }
        };
        let b = behind_started.clone();
        let batched =
            as_one_batch(&wq, vec![Box::new(long), Box::new(move || b.store(true, Ordering::SeqCst))]);
        // Not batched: the one behind ran on another worker anyway; try again.
        if batched {
            assert!(
                !spun_out.load(Ordering::SeqCst),
                "the closure behind a long one in its batch started only after it: {:?}",
                wq.stats()
            );
        }
        batched
    });
    wq.destroy_bounded().unwrap();
}

/// A batch whose first closure is long gives the rest back when it returns,
/// instead of running them behind it on one CPU: of seven no-ops spawned behind
/// a closure that spins for 500 µs (past the 20 µs a batch may take, short of
/// the monitor's 1 ms), never all seven run in its batch. (With the rest given
/// back, the items count as long: the next is a batch of one, and at most six
/// can be batched behind another.) Three rounds; each that formed its batch
/// would show seven batched without the check.
#[test]
fn a_long_first_closure_gives_the_rest_back() {
    let _g = exclusive();
    let Some(wq) = batching_queue("batch-long-first") else { return };
    for round in 0..3 {
        let mut closures: Vec<Job> = vec![Box::new(|| burn(Duration::from_micros(500)))];
        for _ in 0..7 {
            closures.push(Box::new(|| {}));
        }
        let batched = behind_gates(&wq, closures);
        assert!(batched < 7, "round {round}: all seven no-ops ran behind the long closure in its batch");
    }
    wq.destroy_bounded().unwrap();
}

/// A dump taken inside a batch shows the closures waiting behind the running
/// one (`RunningItem::batched`, "+N batched" in the text): active, but neither
/// pending nor running. The closure that takes it runs second of seven.
#[test]
fn a_dump_shows_the_closures_waiting_in_a_batch() {
    let _g = exclusive();
    let Some(wq) = batching_queue("batch-dump") else { return };
    let seen: Arc<std::sync::Mutex<Option<(usize, String)>>> = Arc::default();
    until_batched(&wq, || {
        let (s, name) = (seen.clone(), wq.name().to_string());
        let dumper = move || {
            let d = cmwq::debug::dump();
            // The first dump times items from then on, which ends batches:
            // off again for the rest of the binary.
            cmwq::debug::set_accounting(false);
            let q = d.workqueues.iter().find(|q| q.name == name).expect("the queue in the dump");
            let most = q.pwqs.iter().flat_map(|p| &p.running).map(|r| r.batched).max().unwrap_or(0);
            *s.lock().unwrap() = Some((most, d.to_string()));
        };
        let mut closures: Vec<Job> = vec![Box::new(dumper)];
        for _ in 0..5 {
            closures.push(Box::new(|| {}));
        }
        as_one_batch(&wq, closures)
    });
    let (most, text) = seen.lock().unwrap().take().expect("the dump was taken");
    assert_eq!(most, 5, "the five closures behind the dumping one:\n{text}");
    assert!(text.contains("+5 batched"), "{text}");
    wq.destroy_bounded().unwrap();
}

/// Each spawned closure runs once, from two producers, with short closures
/// (which run in batches), closures that block announced or not, and flushes
/// racing them; bounded in rounds and time.
#[test]
fn every_spawned_closure_runs_once_with_batches() {
    let _g = exclusive();
    let wq = batch_queue("batch-stress");
    const PER: usize = 4000;
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..2 * PER).map(|_| AtomicUsize::new(0)).collect());
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 5 && (rounds == 0 || start.elapsed() < Duration::from_secs(10)) {
        for r in runs.iter() {
            r.store(0, Ordering::SeqCst);
        }
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let (wq, runs) = (wq.clone(), runs.clone());
                std::thread::spawn(move || {
                    for i in 0..PER {
                        let k = p * PER + i;
                        let runs = runs.clone();
                        wq.spawn(move || {
                            runs[k].fetch_add(1, Ordering::SeqCst);
                            match k % 500 {
                                7 => std::thread::sleep(Duration::from_micros(300)),
                                9 => cmwq::sleep(Duration::from_micros(300)),
                                _ => {}
                            }
                        })
                        .unwrap();
                        if i % 1000 == 999 {
                            wq.flush().unwrap();
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            support::join_bounded(p);
        }
        wq.flush_bounded().unwrap();
        let wrong: Vec<usize> = (0..2 * PER).filter(|&k| runs[k].load(Ordering::SeqCst) != 1).collect();
        assert!(
            wrong.is_empty(),
            "round {rounds}: closures not run exactly once: {:?}",
            &wrong[..wrong.len().min(10)]
        );
        rounds += 1;
    }
    let st = wq.stats();
    assert!(st.batched > 0, "nothing ran in a batch: {st:?}");
    assert_eq!((st.in_flight, st.started), (0, st.completed), "{st:?}");
    wq.destroy_bounded().unwrap();
}
