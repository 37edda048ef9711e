//! Concurrency management on one CPU (spec §5): a CPU-bound item holds the other
//! items of its CPU back, a blocking one lets the next start; the pool creates just
//! enough workers; CPU_INTENSIVE items stay outside the accounting; `blocking` and
//! `sleep` are plain calls outside workers; a panic inside `blocking` leaves the
//! accounting intact.
//!
//! Every test takes the pool lock exclusively: they observe one CPU pool's
//! accounting, which another test's items on the same CPU would disturb.
//!
//! The sleep monitor is off in this binary ([`hints_only`], first in every test,
//! before any worker exists): these tests are about the hints, and the monitor
//! would find an item blocked on a gate by itself and let the next item start even
//! with `blocking` or `sleep` broken. The tests of the hints check at their end
//! that the monitor took nobody out.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};
use parking_lot::Mutex;
use support::{
    assert_monitor_blocked_nobody, cpu0, exclusive, hints_only, poll_until, pool_of, settle_pool, spin_until,
    Bounded, BoundedQueue, Gate, Log, DEADLINE,
};

/// How long a CPU-bound item keeps its CPU when nothing else should start: if the
/// pool wrongly starts the next item meanwhile, the item stops burning at once.
const HOLD: Duration = Duration::from_millis(250);

/// Two items sharing `signal`: `w1` logs `w1 start`, runs `wait` on the signal and
/// logs the event `wait` returns; `w2` logs `w2 start`, then runs `give` on it.
fn waiter_and_signaller<S: Send + Sync + 'static>(
    log: &Log,
    signal: &Arc<S>,
    wait: impl Fn(&S) -> &'static str + Send + Sync + 'static,
    give: impl Fn(&S) + Send + Sync + 'static,
) -> (Work, Work) {
    let w1 = {
        let (log, signal) = (log.clone(), signal.clone());
        Work::new(move |_| {
            log.push("w1 start");
            log.push(wait(&signal));
        })
    };
    let w2 = {
        let (log, signal) = (log.clone(), signal.clone());
        Work::new(move |_| {
            log.push("w2 start");
            give(&signal);
        })
    };
    (w1, w2)
}

/// [`waiter_and_signaller`] on a flag that `w2` sets.
fn waiter_and_flag_setter(
    log: &Log,
    wait: impl Fn(&AtomicBool) -> &'static str + Send + Sync + 'static,
) -> (Work, Work) {
    waiter_and_signaller(log, &Arc::new(AtomicBool::new(false)), wait, |f| f.store(true, Ordering::SeqCst))
}

/// [`waiter_and_signaller`] on a gate that `w2` opens; `w1` logs `w1 wake` once
/// `wait` returns that the gate is open.
fn waiter_and_gate_opener(log: &Log, wait: impl Fn(&Gate) -> bool + Send + Sync + 'static) -> (Work, Work) {
    waiter_and_signaller(
        log,
        &Arc::new(Gate::new()),
        move |gate| if wait(gate) { "w1 wake" } else { "w1 wake (timed out)" },
        |gate| gate.open(),
    )
}

/// `w1` burns CPU `c` (never blocking) until `w2` starts or [`HOLD`] passes; `w2`
/// is queued on the same CPU while `w1` runs. Returns the event log.
fn burn_then_second(c: usize, q1: &Workqueue, q2: &Workqueue, max_burn: Duration) -> Log {
    let log = Log::new();
    let (w1, w2) = waiter_and_flag_setter(&log, move |w2_started| {
        let saw = spin_until(max_burn, || w2_started.load(Ordering::SeqCst));
        if saw {
            "w1 end (saw w2)"
        } else {
            "w1 end"
        }
    });
    assert_eq!(q1.queue_on(c, &w1), Ok(true));
    log.expect("w1 start");
    assert_eq!(q2.queue_on(c, &w2), Ok(true));
    w1.flush_bounded().unwrap();
    w2.flush_bounded().unwrap();
    log
}

/// A CPU-bound item holds back the later items of its CPU: they start after it ends.
fn assert_cpu_bound_holds_back(c: usize, q1: &Workqueue, q2: &Workqueue) {
    let log = burn_then_second(c, q1, q2, HOLD);
    assert_eq!(log.snapshot(), vec!["w1 start", "w1 end", "w2 start"], "{} then {}", q1.name(), q2.name());
}

/// Queues `w1` then `w2` on CPU `c` of `wq` and waits for both.
fn run_pair_on(c: usize, wq: &Workqueue, (w1, w2): (Work, Work)) {
    assert_eq!(wq.queue_on(c, &w1), Ok(true));
    assert_eq!(wq.queue_on(c, &w2), Ok(true));
    wq.flush_bounded().unwrap();
}

/// An item blocked in `cmwq::blocking` lets the next item of its CPU start; the
/// second item is what opens the first one's gate.
fn assert_blocking_lets_next_start(c: usize, wq: &Workqueue) {
    let log = Log::new();
    let pair = waiter_and_gate_opener(&log, |gate| gate.wait_blocking());
    run_pair_on(c, wq, pair);
    assert_eq!(log.snapshot(), vec!["w1 start", "w2 start", "w1 wake"], "{}", wq.name());
}

/// Waits until the pool of `c` counts nobody as running (all items done and
/// every worker back between items). Panics with the snapshot otherwise.
fn assert_running_settles_to_zero(c: usize, highpri: bool) {
    let ok = poll_until(DEADLINE, || pool_of(c, highpri).is_some_and(|p| p.running == 0 && p.busy == 0));
    assert!(ok, "nr_running never returned to 0: {:?}", pool_of(c, highpri));
}

#[test]
fn cpu_bound_item_holds_back_later_items_of_its_cpu() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("pool-hold").flags(WqFlags::PERCPU).build().unwrap();
    assert_cpu_bound_holds_back(c, &wq, &wq);
    // Also across workqueues: concurrency is managed per CPU, not per queue.
    let other = Workqueue::builder("pool-hold-other").flags(WqFlags::PERCPU).build().unwrap();
    assert_cpu_bound_holds_back(c, &wq, &other);
    assert_running_settles_to_zero(c, false);
    wq.destroy_bounded().unwrap();
    other.destroy_bounded().unwrap();
}

#[test]
fn blocking_item_lets_the_next_item_start() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("pool-block").flags(WqFlags::PERCPU).build().unwrap();
    assert_blocking_lets_next_start(c, &wq);
    // Nested `blocking` is fine and counts once.
    let log = Log::new();
    let pair =
        waiter_and_gate_opener(&log, |gate| cmwq::blocking(|| cmwq::blocking(|| gate.wait_for(DEADLINE))));
    run_pair_on(c, &wq, pair);
    assert_eq!(log.snapshot(), vec!["w1 start", "w2 start", "w1 wake"]);
    assert_running_settles_to_zero(c, false);
    // And the accounting is back: a CPU-bound item holds others back again.
    assert_cpu_bound_holds_back(c, &wq, &wq);
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}

#[test]
fn cmwq_sleep_lets_the_next_item_start() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("pool-sleep").flags(WqFlags::PERCPU).build().unwrap();
    let log = Log::new();
    let pair = waiter_and_flag_setter(&log, |w2_started| {
        let deadline = Instant::now() + DEADLINE;
        while !w2_started.load(Ordering::SeqCst) && Instant::now() < deadline {
            cmwq::sleep(Duration::from_millis(1));
        }
        "w1 end"
    });
    run_pair_on(c, &wq, pair);
    assert_eq!(log.snapshot(), vec!["w1 start", "w2 start", "w1 end"]);
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}

/// A burst of items that never block runs one at a time on one CPU, and the pool
/// does not create a worker per item. Uses CPU 0's highpri pool, which no other
/// test of this binary touches, so its worker count starts at zero.
#[test]
fn non_blocking_burst_runs_one_at_a_time_on_few_workers() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("pool-burst").flags(WqFlags::HIGHPRI | WqFlags::PERCPU).build().unwrap();
    assert_eq!(pool_of(c, true).map_or(0, |p| p.workers), 0, "highpri pool already used");
    const N: usize = 300;
    let cur = Arc::new(AtomicI64::new(0));
    let max = Arc::new(AtomicI64::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let items: Vec<Work> = (0..N)
        .map(|_| {
            let (cur, max, threads) = (cur.clone(), max.clone(), threads.clone());
            Work::new(move |_| {
                let n = cur.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                threads.lock().insert(std::thread::current().id());
                support::burn(Duration::from_micros(20));
                cur.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for w in &items {
        assert_eq!(wq.queue_on(c, w), Ok(true));
    }
    wq.flush_bounded().unwrap();
    assert_eq!(max.load(Ordering::SeqCst), 1, "non-blocking items of one CPU ran concurrently");
    let p = pool_of(c, true).expect("pool created");
    assert!(p.workers <= 3, "a non-blocking burst needs a worker and a reserve: {p:?}");
    assert!(p.created <= 3, "{p:?}");
    assert!(threads.lock().len() <= 3, "items ran on {} threads", threads.lock().len());
    assert_eq!(p.completed, N as u64);
    wq.destroy_bounded().unwrap();
}

/// N items that all block at once get a worker each, plus an idle reserve, and
/// nobody counts as running while they all sleep.
#[test]
fn items_blocking_together_get_a_worker_each() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    const N: usize = 8;
    let wq = Workqueue::builder("pool-many").flags(WqFlags::PERCPU).build().unwrap();
    let gate = Gate::new();
    let started = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..N)
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            Work::new(move |_| {
                started.fetch_add(1, Ordering::SeqCst);
                gate.wait_blocking();
            })
        })
        .collect();
    for w in &items {
        assert_eq!(wq.queue_on(c, w), Ok(true));
    }
    // All started, and the last one is inside its block too.
    let all = poll_until(DEADLINE, || {
        started.load(Ordering::SeqCst) == N && pool_of(c, false).is_some_and(|p| p.running == 0)
    });
    let p = pool_of(c, false);
    gate.open();
    assert!(all, "only {} of {N} blocking items started: {p:?}", started.load(Ordering::SeqCst));
    let p = p.unwrap();
    assert_eq!(p.busy, N, "{p:?}");
    assert!(p.workers > N, "N busy workers and an idle reserve: {p:?}");
    assert!(p.idle >= 1, "{p:?}");
    assert_eq!(p.running, 0, "everyone sleeps: {p:?}");
    assert_eq!(p.pending, 0, "{p:?}");
    wq.flush_bounded().unwrap();
    assert_running_settles_to_zero(c, false);
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}

#[test]
fn cpu_intensive_item_does_not_hold_back_its_cpu() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let intensive =
        Workqueue::builder("pool-intensive").flags(WqFlags::CPU_INTENSIVE | WqFlags::PERCPU).build().unwrap();
    let normal = Workqueue::builder("pool-normal").flags(WqFlags::PERCPU).build().unwrap();
    // A running CPU_INTENSIVE item is outside concurrency management: w2 starts
    // while w1 still burns, and w1 sees it.
    let log = burn_then_second(c, &intensive, &normal, DEADLINE);
    assert_eq!(log.snapshot(), vec!["w1 start", "w2 start", "w1 end (saw w2)"]);
    // `cpu_intensive` counts threshold violations (the kernel's
    // `PWQ_STAT_CPU_INTENSIVE`), not items of a CPU_INTENSIVE queue.
    assert_eq!(intensive.stats().cpu_intensive, 0);
    // The same burner on a normal queue holds w2 back.
    assert_cpu_bound_holds_back(c, &normal, &normal);
    // The start of a CPU_INTENSIVE item is still managed: it waits for a CPU-bound
    // item of a normal queue.
    assert_cpu_bound_holds_back(c, &normal, &intensive);
    assert_running_settles_to_zero(c, false);
    // Blocking inside a CPU_INTENSIVE item is a plain call: no wake-up to account.
    let gate = Gate::new();
    let log = Log::new();
    let w = {
        let (gate, log) = (gate.clone(), log.clone());
        Work::new(move |_| {
            log.push("start");
            gate.wait_blocking();
        })
    };
    let queued_behind = Work::new(|_| {});
    assert_eq!(intensive.queue_on(c, &w), Ok(true));
    log.expect("start");
    assert_eq!(intensive.queue_on(c, &queued_behind), Ok(true));
    gate.open();
    intensive.flush_bounded().unwrap();
    assert_eq!(intensive.stats().cm_wakeup, 0);
    intensive.destroy_bounded().unwrap();
    normal.destroy_bounded().unwrap();
}

#[test]
fn blocking_and_sleep_outside_a_worker_are_plain_calls() {
    hints_only();
    let _x = exclusive();
    assert_eq!(cmwq::blocking(|| 42), 42);
    assert_eq!(cmwq::blocking(|| cmwq::blocking(|| "nested")), "nested");
    let t = Instant::now();
    cmwq::sleep(Duration::from_millis(2));
    assert!(t.elapsed() >= Duration::from_millis(2));
    let r = std::panic::catch_unwind(|| cmwq::blocking(|| panic!("deliberate panic (test)")));
    assert!(r.is_err(), "a panic inside blocking propagates to the caller");
    assert!(cmwq::current_work().is_none());
    // In an unbound item too: nothing to account.
    let wq = Workqueue::builder("pool-unbound-plain").flags(WqFlags::UNBOUND).build().unwrap();
    let w = Work::new(|_| {
        assert_eq!(cmwq::blocking(|| 7), 7);
        cmwq::sleep(Duration::from_millis(1));
    });
    assert_eq!(wq.queue(&w), Ok(true));
    wq.flush_bounded().unwrap();
    let s = wq.stats();
    assert_eq!((s.completed, s.panicked, s.cm_wakeup), (1, 0, 0), "{s:?}");
    wq.destroy_bounded().unwrap();
}

#[test]
fn panic_inside_blocking_restores_the_accounting() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("pool-panic-blocking").flags(WqFlags::PERCPU).build().unwrap();
    let before = cmwq::debug::panics();
    let p1 = Work::new(|_| cmwq::blocking(|| panic!("deliberate panic inside blocking (test)")));
    let p2 = Work::new(|_| {
        cmwq::blocking(|| cmwq::blocking(|| panic!("deliberate nested panic inside blocking (test)")))
    });
    // A panic inside blocking, then code that catches it and keeps running.
    let p3 = Work::new(|_| {
        let r = std::panic::catch_unwind(|| cmwq::blocking(|| panic!("deliberate caught panic (test)")));
        assert!(r.is_err());
        support::burn(Duration::from_millis(1));
    });
    for w in [&p1, &p2, &p3, &p1] {
        assert_eq!(wq.queue_on(c, w), Ok(true));
        w.flush_bounded().unwrap();
    }
    assert_eq!(wq.stats().panicked, 3);
    assert!(cmwq::debug::panics() >= before + 3);
    assert_running_settles_to_zero(c, false);
    // Both directions of the accounting still hold.
    assert_cpu_bound_holds_back(c, &wq, &wq);
    assert_blocking_lets_next_start(c, &wq);
    assert_running_settles_to_zero(c, false);
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}
