//! Delayed work on the real clock: the timer thread fires on its own, never
//! early, in deadline order, exactly once. (Exact "which item is due when"
//! semantics are tested against a paused clock in `wq_delayed_paused.rs`.)

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{DelayedWork, Workqueue, WqFlags};
use support::{wait_for, Log};

#[test]
fn the_timer_thread_fires_never_early() {
    let wq = Workqueue::builder("r-early").flags(WqFlags::PERCPU).build().unwrap();
    let early = Log::new();
    let done = Arc::new(AtomicUsize::new(0));
    let mut items = Vec::new();
    for i in 0..20u32 {
        let delay = Duration::from_micros(300 * u64::from(i) + 100);
        let t0 = Instant::now();
        let (e, d) = (early.clone(), done.clone());
        let dw = DelayedWork::new(move |_| {
            let waited = t0.elapsed();
            if waited < delay {
                e.push(format!("item {i}: ran after {waited:?} < {delay:?}"));
            }
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert!(wq.queue_delayed(&dw, delay).unwrap());
        items.push(dw);
    }
    wait_for("all 20 fire", || done.load(Ordering::SeqCst) == 20);
    assert!(early.snapshot().is_empty(), "{:?}", early.snapshot());
    assert!(items.iter().all(|d| !d.is_pending()));
}

#[test]
fn timers_fire_in_deadline_order() {
    // An ordered queue runs items in the order they are queued, which for timers
    // whose deadlines are a tick or more apart must be the order of their
    // deadlines, whatever the order they were armed in and however late the timer
    // thread wakes. A deadline is known to lie between `now` before and after the
    // arming call plus the delay, so only pairs whose brackets are a tick apart
    // are compared: a preemption of this thread while it arms cannot fail the test.
    let wq = Workqueue::ordered("r-order").build().unwrap();
    let log = Log::<u32>::default();
    let order = [7u32, 2, 9, 0, 5, 1, 8, 3, 6, 4];
    let mut bracket = [(Instant::now(), Instant::now()); 10];
    let items: Vec<_> = order
        .iter()
        .map(|&k| {
            let l = log.clone();
            let dw = DelayedWork::new(move |_| l.push(k));
            let delay = Duration::from_millis(2 * u64::from(k) + 1);
            let lo = Instant::now() + delay;
            assert!(wq.queue_delayed(&dw, delay).unwrap());
            bracket[k as usize] = (lo, Instant::now() + delay);
            dw
        })
        .collect();
    wait_for("all fire", || log.len() == order.len());
    let ran = log.snapshot();
    let tick = Duration::from_millis(1);
    for (i, &a) in ran.iter().enumerate() {
        for &b in &ran[i + 1..] {
            // `a` ran before `b`: `b`'s deadline must not be a tick or more before `a`'s.
            let (a_lo, _) = bracket[a as usize];
            let (_, b_hi) = bracket[b as usize];
            assert!(b_hi + tick > a_lo, "item {a} ran before {b}, whose deadline was earlier: {ran:?}");
        }
    }
    drop(items);
}

#[test]
fn ten_thousand_timers_each_fire_exactly_once() {
    let wq = Workqueue::builder("r-many").flags(WqFlags::UNBOUND).build().unwrap();
    const N: usize = 10_000;
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let fired_before = cmwq::timer::fired();
    let items: Vec<_> = (0..N)
        .map(|i| {
            let (r, d) = (runs.clone(), done.clone());
            let dw = DelayedWork::new(move |_| {
                r[i].fetch_add(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
            });
            // Spread over 50 ms.
            assert!(wq.queue_delayed(&dw, Duration::from_micros((i as u64 * 5) % 50_000 + 1)).unwrap());
            dw
        })
        .collect();
    wait_for("all fire", || done.load(Ordering::SeqCst) == N);
    wq.flush().unwrap();
    assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
    assert!(cmwq::timer::fired() >= fired_before + N as u64);
    assert!(items.iter().all(|d| !d.is_pending()));
}

#[test]
fn a_dropped_queue_still_runs_its_armed_items() {
    let wq = Workqueue::builder("r-detached").flags(WqFlags::PERCPU).build().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let dw = DelayedWork::new(move |_| {
        n2.fetch_add(1, Ordering::SeqCst);
    });
    assert!(wq.queue_delayed(&dw, Duration::from_millis(2)).unwrap());
    drop(wq);
    wait_for("the armed item runs", || n.load(Ordering::SeqCst) == 1);
}

#[test]
fn a_panicking_delayed_item_is_reported_and_the_timer_keeps_working() {
    let wq = Workqueue::builder("r-panic").flags(WqFlags::PERCPU).build().unwrap();
    let dw = DelayedWork::new(|_| panic!("delayed boom"));
    assert!(wq.queue_delayed(&dw, Duration::from_millis(1)).unwrap());
    wait_for("the panic is counted", || wq.stats().panicked == 1);
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let ok = DelayedWork::new(move |_| {
        n2.fetch_add(1, Ordering::SeqCst);
    });
    assert!(wq.queue_delayed(&ok, Duration::from_millis(1)).unwrap());
    wait_for("the next timer fires", || n.load(Ordering::SeqCst) == 1);
}
