//! Flush, drain, destroy, cancel and disable semantics (spec §2.3, §4.5, §4.6), the
//! deadlock checks that replace the kernel's lockdep splats, and panic containment.
//!
//! Every "must not happen yet" check relies on a closed gate: an item blocked on a
//! gate that only the test opens cannot finish, so a flush that returns meanwhile
//! is wrong, whatever the machine's load. Where a test needs a waiter to be inside
//! its wait before it goes on, it checks that with a probe item (`blocked_in_item`:
//! the probe starts only once the waiting item blocks) or, for a workqueue flush,
//! with the waiting thread's scheduler state (`parked_in_thread`). Every wait of the
//! test itself is bounded (`*_bounded`, `DEADLINE`), so a bug fails instead of hanging.
//!
//! A flush that waits for a free flush color inside a work item is tested in
//! `wq_flush_overflow.rs`, a binary of its own with the sleep monitor off.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cmwq::{Busy, ErrorKind, Work, Workqueue, WqFlags};
use parking_lot::Mutex;
use support::{
    blocked_in, blocked_in_item, cpu0, distinct_cpus, exclusive, join_bounded, logging, parked_in_thread,
    poll_until, shared, spin_until, Bounded, BoundedQueue, BoundedWork, DropGuard, Gate, Log, DEADLINE,
    SETTLE,
};

/// A per-CPU, an unbound and an ordered queue, for tests that hold on all three.
fn three_queues(name: &str) -> Vec<Workqueue> {
    vec![
        Workqueue::builder(format!("{name}-percpu")).flags(WqFlags::PERCPU).build().unwrap(),
        Workqueue::builder(format!("{name}-unbound")).flags(WqFlags::UNBOUND).build().unwrap(),
        Workqueue::ordered(format!("{name}-ordered")).build().unwrap(),
    ]
}

/// An item that logs `<tag> start`, blocks on `gate`, then logs `<tag> end`.
fn gated(log: &Log, gate: &Gate, tag: &str) -> Work {
    let (log, gate, tag) = (log.clone(), gate.clone(), tag.to_string());
    Work::new(move |_| {
        log.push(format!("{tag} start"));
        let opened = gate.wait_blocking();
        log.push(format!("{tag} end{}", if opened { "" } else { " (gate timed out)" }));
    })
}

/// `log`, `gate` and an item `<tag>` (see [`gated`]) queued on `wq` and known to
/// have started: it runs, blocked on the closed gate.
fn started_gated(wq: &Workqueue, tag: &str) -> (Log, Gate, Work) {
    let log = Log::new();
    let gate = Gate::new();
    let w = gated(&log, &gate, tag);
    assert_eq!(wq.queue(&w), Ok(true));
    log.expect(&format!("{tag} start"));
    (log, gate, w)
}

/// An item that counts its runs in `runs`.
fn counting(runs: &Arc<AtomicUsize>) -> Work {
    let runs = runs.clone();
    Work::new(move |_| {
        runs.fetch_add(1, Ordering::SeqCst);
    })
}

/// Runs `f` on a new thread that logs `event` once `f` returned.
fn spawn_logged<R: Send + 'static>(
    log: &Log,
    event: impl Into<String> + Send + 'static,
    f: impl FnOnce() -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    let log = log.clone();
    thread::spawn(move || {
        let r = f();
        log.push(event);
        r
    })
}

fn is_deadlock<T: std::fmt::Debug>(r: &Result<T, cmwq::Error>) -> bool {
    matches!(r.as_ref().map_err(|e| e.kind()), Err(ErrorKind::WouldDeadlock(_)))
}

// ---------------------------------------------------------------- Work::flush

#[test]
fn work_flush_of_idle_item_returns_false() {
    let _s = shared();
    let w = Work::new(|_| {});
    assert_eq!(w.flush_bounded(), Ok(false), "never queued");
    for wq in three_queues("flush-idle") {
        assert_eq!(wq.queue(&w), Ok(true));
        w.flush_bounded().unwrap();
        assert_eq!(w.flush_bounded(), Ok(false), "{}: finished, so idle", wq.name());
        assert!(!w.is_pending());
        wq.destroy_bounded().unwrap();
    }
}

#[test]
fn work_flush_waits_for_running_instance_and_returns_true() {
    let _s = shared();
    for wq in three_queues("flush-run") {
        let (log, gate, w) = started_gated(&wq, "w");
        assert!(w.busy().running, "{}: running while blocked on the gate", wq.name());
        assert!(!w.is_pending());
        let flusher = {
            let w = w.clone();
            blocked_in_item(cpu0(), &log, "flush", move || w.flush())
        };
        // The item cannot end before the gate opens, so neither may the flush.
        assert!(!log.has("flush returned"), "{}: flush returned early", wq.name());
        gate.open();
        assert_eq!(flusher.join(), Ok(true), "{}", wq.name());
        log.assert_before("w end", "flush returned");
        assert_eq!(w.flush_bounded(), Ok(false));
        wq.destroy_bounded().unwrap();
    }
}

#[test]
fn work_flush_waits_for_instance_requeued_while_running() {
    let _s = shared();
    for wq in three_queues("flush-requeue") {
        let log = Log::new();
        let gates = [Gate::new(), Gate::new()];
        let runs = Arc::new(AtomicUsize::new(0));
        let w = {
            let (log, gates, runs) = (log.clone(), gates.clone(), runs.clone());
            Work::new(move |_| {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                log.push(format!("start{n}"));
                let opened = gates.get(n).is_some_and(|g| g.wait_blocking());
                log.push(format!("end{n}{}", if opened { "" } else { " (no gate)" }));
            })
        };
        assert_eq!(wq.queue(&w), Ok(true));
        log.expect("start0");
        // Queued again while it runs: a second, pending instance.
        assert_eq!(wq.queue(&w), Ok(true), "{}: not pending while running", wq.name());
        assert_eq!(wq.queue(&w), Ok(false), "{}: already pending", wq.name());
        assert!(w.is_pending());
        let flusher = {
            let w = w.clone();
            blocked_in_item(cpu0(), &log, "flush", move || w.flush())
        };
        gates[0].open();
        log.expect("start1");
        // Instance 1 is blocked on a closed gate: the flush must still wait for it.
        assert!(!log.wait_for("flush returned", SETTLE), "{}: flush did not wait for the requeue", wq.name());
        gates[1].open();
        assert_eq!(flusher.join(), Ok(true));
        log.assert_before("end1", "flush returned");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "{}: exactly two instances", wq.name());
        wq.destroy_bounded().unwrap();
    }
}

// ---------------------------------------------------------------- Workqueue::flush

/// Runs `body` once the workqueue `target` is being flushed and the flush is known
/// to be waiting (its thread sits in one uninterrupted sleep), so it has moved the
/// queue to the next flush color.
fn with_flush_waiting(target: &Workqueue, log: &Log, body: impl FnOnce()) {
    let flusher = {
        let target = target.clone();
        parked_in_thread(log, "F", move || target.flush())
    };
    assert!(!log.has("F returned"), "the flush cannot be done: an earlier item is still gated");
    body();
    assert_eq!(flusher.join(), Ok(()));
}

fn flush_ignores_later_items(target: Workqueue, on_cpu: bool) {
    let log = Log::new();
    let (ga, gb, gc) = (Gate::new(), Gate::new(), Gate::new());
    let b = gated(&log, &gb, "B");
    let chained = gated(&log, &gc, "C");
    let a = {
        let (log, ga, target, chained) = (log.clone(), ga.clone(), target.clone(), chained.clone());
        Work::new(move |_| {
            log.push("A start");
            ga.wait_blocking();
            // Chained work, queued while the flush runs: not waited for.
            log.push(format!("A chained C {:?}", target.queue(&chained)));
            log.push("A end");
        })
    };
    if on_cpu {
        assert_eq!(target.queue_on(cpu0(), &a), Ok(true));
    } else {
        assert_eq!(target.queue(&a), Ok(true));
    }
    log.expect("A start");
    with_flush_waiting(&target, &log, || {
        // Queued from outside after the flush began: not waited for either.
        assert_eq!(target.queue(&b), Ok(true));
        log.push("B queued");
        ga.open();
        log.expect("F returned");
        assert!(log.has("A chained C Ok(true)"), "{:?}", log.snapshot());
        log.assert_before("A end", "F returned");
        // B and C are blocked on closed gates: the flush returned without them.
        assert!(!log.has("B end") && !log.has("C end"), "{:?}", log.snapshot());
        gb.open();
        gc.open();
    });
    target.destroy_bounded().unwrap();
    log.push("destroyed");
    log.assert_before("B end", "destroyed");
    log.assert_before("C end", "destroyed");
}

#[test]
fn wq_flush_does_not_wait_for_later_or_chained_items_unbound() {
    let _s = shared();
    flush_ignores_later_items(
        Workqueue::builder("flush-later-u").flags(WqFlags::UNBOUND).build().unwrap(),
        false,
    );
}

#[test]
fn wq_flush_does_not_wait_for_later_or_chained_items_percpu() {
    let _s = shared();
    flush_ignores_later_items(
        Workqueue::builder("flush-later-p").flags(WqFlags::PERCPU).build().unwrap(),
        true,
    );
}

#[test]
fn wq_flush_waits_for_every_earlier_item_on_every_cpu() {
    let _s = shared();
    let wq = Workqueue::builder("flush-all-cpus").flags(WqFlags::PERCPU).build().unwrap();
    let log = Log::new();
    let gate = Gate::new();
    let cpus = cmwq::allowed_cpus();
    let items: Vec<Work> = cpus.iter().map(|c| gated(&log, &gate, &format!("cpu{c}"))).collect();
    for (c, w) in cpus.iter().zip(&items) {
        assert_eq!(wq.queue_on(*c, w), Ok(true));
    }
    let flusher = {
        let wq = wq.clone();
        spawn_logged(&log, "flush returned", move || wq.flush())
    };
    assert!(!log.wait_for("flush returned", SETTLE));
    gate.open();
    assert_eq!(join_bounded(flusher), Ok(()));
    for c in &cpus {
        log.assert_before(&format!("cpu{c} end"), "flush returned");
    }
    wq.destroy_bounded().unwrap();
}

/// Items held back by max_active (on the inactive list) were queued before the
/// flush too: it waits for them, and destroy drains them.
#[test]
fn wq_flush_and_destroy_wait_for_inactive_items() {
    let _s = shared();
    let c = cpu0();
    let queues = vec![
        Workqueue::builder("flush-inactive-percpu").flags(WqFlags::PERCPU).max_active(2).build().unwrap(),
        Workqueue::builder("flush-inactive-unbound").flags(WqFlags::UNBOUND).max_active(2).build().unwrap(),
        Workqueue::ordered("flush-inactive-ordered").build().unwrap(),
    ];
    for wq in queues {
        let log = Log::new();
        let gate = Gate::new();
        let items: Vec<Work> = (0..6).map(|i| gated(&log, &gate, &format!("I{i}"))).collect();
        for w in &items {
            assert_eq!(wq.queue_on(c, w), Ok(true));
        }
        log.expect("I0 start");
        assert!(wq.stats().inactive >= 4, "{}: {:?}", wq.name(), wq.stats());
        let flusher = {
            let wq = wq.clone();
            blocked_in_item(c, &log, "flush", move || wq.flush())
        };
        gate.open();
        assert_eq!(flusher.join(), Ok(()));
        for i in 0..6 {
            log.assert_before(&format!("I{i} end"), "flush returned");
        }
        // Destroy with inactive items.
        let gate2 = Gate::new();
        let more: Vec<Work> = (0..6).map(|i| gated(&log, &gate2, &format!("J{i}"))).collect();
        for w in &more {
            assert_eq!(wq.queue_on(c, w), Ok(true));
        }
        log.expect("J0 start");
        let destroyer = {
            let wq = wq.clone();
            blocked_in_item(c, &log, "destroy", move || wq.destroy())
        };
        gate2.open();
        assert_eq!(destroyer.join(), Ok(()));
        for i in 0..6 {
            log.assert_before(&format!("J{i} end"), "destroy returned");
        }
        assert_eq!(wq.stats().in_flight, 0);
    }
}

#[test]
fn more_than_16_concurrent_flushers_all_complete() {
    let _s = shared();
    const N: usize = 40;
    let wq = Workqueue::builder("flush-overflow").flags(WqFlags::PERCPU).build().unwrap();
    let log = Log::new();
    let gates: Vec<Gate> = (0..N).map(|_| Gate::new()).collect();
    let mut flushers = Vec::new();
    for (i, gate) in gates.iter().enumerate() {
        let item = gated(&log, gate, &format!("I{i}"));
        assert_eq!(wq.queue(&item), Ok(true));
        let (wq, log) = (wq.clone(), log.clone());
        flushers.push(thread::spawn(move || {
            log.push(format!("F{i} call"));
            let r = wq.flush();
            log.push(format!("F{i} ret"));
            r
        }));
    }
    for i in 0..N {
        log.expect(&format!("F{i} call"));
    }
    // Every flusher waits at least for I0, queued before all of them.
    thread::sleep(SETTLE);
    assert!((0..N).all(|i| !log.has(&format!("F{i} ret"))), "{:?}", log.snapshot());
    for g in &gates {
        g.open();
    }
    for f in flushers {
        assert_eq!(join_bounded(f), Ok(()));
    }
    // Flusher i returns only after every item queued before its call ended.
    for i in 0..N {
        for j in 0..=i {
            log.assert_before(&format!("I{j} end"), &format!("F{i} ret"));
        }
    }
    // The colors were all given back: further flushes work.
    wq.flush_bounded().unwrap();
    wq.destroy_bounded().unwrap();
}

// ---------------------------------------------------------------- drain

#[test]
fn drain_lets_items_requeue_themselves_and_waits_for_all() {
    let _s = shared();
    for wq in three_queues("drain-chain") {
        let count = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let cpus = cmwq::allowed_cpus();
        let w = {
            let (count, errors, wq2) = (count.clone(), errors.clone(), wq.clone());
            Work::new(move |w| {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 100 {
                    // Chained work, alternating CPUs for the per-CPU queue.
                    let r = if wq2.flags().contains(WqFlags::UNBOUND) {
                        wq2.queue(w)
                    } else {
                        wq2.queue_on(cpus[n % cpus.len()], w)
                    };
                    if r != Ok(true) {
                        errors.lock().push(r);
                    }
                }
            })
        };
        assert_eq!(wq.queue(&w), Ok(true));
        wq.drain_bounded().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 100, "{}", wq.name());
        assert!(errors.lock().is_empty(), "{}: {:?}", wq.name(), errors.lock());
        assert!(!w.is_pending());
        assert_eq!(wq.stats().in_flight, 0);
        // The queue accepts work again after the drain.
        count.store(99, Ordering::SeqCst);
        assert_eq!(wq.queue(&w), Ok(true));
        assert!(w.flush_bounded().is_ok());
        assert_eq!(count.load(Ordering::SeqCst), 100);
        wq.destroy_bounded().unwrap();
    }
}

/// Waits until queueing `probe` from outside is refused with `kind`; probes that got
/// through meanwhile are flushed so they do not linger.
fn wait_refused(wq: &Workqueue, kind: ErrorKind) -> cmwq::Error {
    let mut err = None;
    let probe = Work::new(|_| {});
    let found = poll_until(DEADLINE, || match wq.queue(&probe) {
        Err(e) => {
            err = Some(e);
            true
        }
        Ok(_) => false,
    });
    assert!(found, "{}: never refused", wq.name());
    let e = err.unwrap();
    assert_eq!(e.kind(), &kind);
    assert_eq!(e.workqueue(), wq.name());
    e
}

#[test]
fn drain_refuses_queueing_from_outside_and_the_caller_keeps_the_work() {
    let _s = shared();
    for wq in three_queues("drain-refuse") {
        let (log, gate, _a) = started_gated(&wq, "A");
        let drainer = {
            let wq = wq.clone();
            spawn_logged(&log, "drained", move || wq.drain())
        };
        wait_refused(&wq, ErrorKind::Draining);

        let runs = Arc::new(AtomicUsize::new(0));
        let x = counting(&runs);
        let e = wq.queue(&x).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::Draining);
        assert_eq!(wq.queue_on(cpu0(), &x).unwrap_err().kind(), &ErrorKind::Draining);
        assert!(!x.is_pending(), "a refused item is not left pending");
        assert_eq!(x.busy(), Busy::default());
        // From an item of another queue: still outside, still refused.
        let other = Workqueue::builder("drain-refuse-other").flags(WqFlags::PERCPU).build().unwrap();
        let from_item = Arc::new(Mutex::new(None));
        let y = {
            let (wq, x, from_item) = (wq.clone(), x.clone(), from_item.clone());
            Work::new(move |_| *from_item.lock() = Some(wq.queue(&x)))
        };
        assert_eq!(other.queue(&y), Ok(true));
        y.flush_bounded().unwrap();
        assert_eq!(from_item.lock().clone().unwrap().unwrap_err().kind(), &ErrorKind::Draining);
        // spawn gives the closure back.
        let dropped = Arc::new(AtomicUsize::new(0));
        let guard = DropGuard(dropped.clone());
        let spawned = wq.spawn(move || drop(guard));
        let e = spawned.unwrap_err();
        assert_eq!(e.error().kind(), &ErrorKind::Draining);
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "the refused closure is intact");
        (e.into_inner())();
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        // The caller keeps the work: it can be queued elsewhere at once.
        assert_eq!(other.queue(&x), Ok(true));
        x.flush_bounded().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // A is still gated, so the drain cannot be over.
        assert!(!log.has("drained"));
        gate.open();
        assert_eq!(join_bounded(drainer), Ok(()));
        log.assert_before("A end", "drained");
        // After the drain the queue accepts work again.
        assert_eq!(wq.queue(&x), Ok(true));
        x.flush_bounded().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        other.destroy_bounded().unwrap();
        wq.destroy_bounded().unwrap();
    }
}

#[test]
fn concurrent_drains_both_complete() {
    let _s = shared();
    let wq = Workqueue::builder("drain-nested").flags(WqFlags::PERCPU).build().unwrap();
    let (log, gate, a) = started_gated(&wq, "A");
    let drainers: Vec<_> = (0..3)
        .map(|i| {
            let wq = wq.clone();
            spawn_logged(&log, format!("drained{i}"), move || wq.drain())
        })
        .collect();
    wait_refused(&wq, ErrorKind::Draining);
    gate.open();
    for d in drainers {
        assert_eq!(join_bounded(d), Ok(()));
    }
    for i in 0..3 {
        log.assert_before("A end", &format!("drained{i}"));
    }
    // Every drainer left: the queue is open again.
    assert_eq!(wq.queue(&a), Ok(true));
    wq.destroy_bounded().unwrap();
}

// ---------------------------------------------------------------- destroy

#[test]
fn destroy_drains_chained_work_then_refuses_everything() {
    let _s = shared();
    for wq in three_queues("destroy") {
        let count = Arc::new(AtomicUsize::new(0));
        let w = {
            let (count, wq2) = (count.clone(), wq.clone());
            Work::new(move |w| {
                if count.fetch_add(1, Ordering::SeqCst) + 1 < 50 {
                    assert_eq!(wq2.queue(w), Ok(true));
                }
            })
        };
        let clone = wq.clone();
        assert_eq!(wq.queue(&w), Ok(true));
        assert_eq!(wq.destroy_bounded(), Ok(()));
        assert_eq!(count.load(Ordering::SeqCst), 50, "{}: chained work drained", wq.name());
        for q in [&wq, &clone] {
            assert_eq!(q.queue(&w).unwrap_err().kind(), &ErrorKind::Destroyed);
            assert_eq!(q.queue_on(cpu0(), &w).unwrap_err().kind(), &ErrorKind::Destroyed);
            let e = q.spawn(|| ()).unwrap_err();
            assert_eq!(e.error().kind(), &ErrorKind::Destroyed);
        }
        assert!(!w.is_pending(), "a refused item is not left pending");
        assert_eq!(wq.destroy_bounded(), Ok(()), "destroy twice is fine");
        assert_eq!(clone.destroy_bounded(), Ok(()));
        // The item still belongs to its owner: another queue takes it.
        let other = Workqueue::builder("destroy-other").flags(WqFlags::PERCPU).build().unwrap();
        count.store(49, Ordering::SeqCst);
        assert_eq!(other.queue(&w), Ok(true));
        assert!(w.flush_bounded().is_ok());
        assert_eq!(count.load(Ordering::SeqCst), 50);
        other.destroy_bounded().unwrap();
    }
}

#[test]
fn destroy_refuses_outside_queueing_but_runs_chained_work_meanwhile() {
    let _s = shared();
    for wq in three_queues("destroy-wait") {
        let log = Log::new();
        let gate = Gate::new();
        let b = logging(&log, "B run");
        let a = {
            let (log, gate, wq, b) = (log.clone(), gate.clone(), wq.clone(), b.clone());
            Work::new(move |_| {
                log.push("A start");
                gate.wait_blocking();
                log.push(format!("A chained {:?}", wq.queue(&b)));
            })
        };
        assert_eq!(wq.queue(&a), Ok(true));
        log.expect("A start");
        let destroyer = {
            let wq = wq.clone();
            spawn_logged(&log, "destroyed", move || wq.destroy())
        };
        wait_refused(&wq, ErrorKind::Destroyed);
        assert!(!log.has("destroyed"));
        gate.open();
        assert_eq!(join_bounded(destroyer), Ok(()));
        assert!(log.has("A chained Ok(true)"), "{}: {:?}", wq.name(), log.snapshot());
        log.assert_before("B run", "destroyed");
        assert_eq!(wq.queue(&b).unwrap_err().kind(), &ErrorKind::Destroyed);
    }
}

#[test]
fn destroy_from_two_threads_at_once() {
    let _s = shared();
    let wq = Workqueue::builder("destroy-twice").flags(WqFlags::PERCPU).build().unwrap();
    let (_log, gate, a) = started_gated(&wq, "A");
    let ts: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn({
                let wq = wq.clone();
                move || wq.destroy()
            })
        })
        .collect();
    wait_refused(&wq, ErrorKind::Destroyed);
    gate.open();
    for t in ts {
        assert_eq!(join_bounded(t), Ok(()));
    }
    assert_eq!(wq.queue(&a).unwrap_err().kind(), &ErrorKind::Destroyed);
}

/// Chosen behaviour (see `Workqueue` docs): dropping the last handle does not block
/// and does not discard anything; the queued items still run.
#[test]
fn dropping_the_last_handle_still_runs_pending_items() {
    let _s = shared();
    for wq in three_queues("drop-last") {
        let name = wq.name().to_string();
        let log = Log::new();
        let gate = Gate::new();
        let a = gated(&log, &gate, "A");
        let count = Arc::new(AtomicUsize::new(0));
        let items: Vec<Work> = (0..10).map(|_| counting(&count)).collect();
        assert_eq!(wq.queue(&a), Ok(true));
        for w in &items {
            assert_eq!(wq.queue(w), Ok(true));
        }
        log.expect("A start");
        drop(wq);
        gate.open();
        for w in &items {
            w.flush_bounded().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 10, "{name}: every pending item ran");
        a.flush_bounded().unwrap();
        assert!(log.has("A end"));
        // The items are free to be queued elsewhere.
        let other = Workqueue::builder("drop-last-other").flags(WqFlags::PERCPU).build().unwrap();
        assert_eq!(other.queue(&items[0]), Ok(true));
        other.destroy_bounded().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 11);
    }
}

// ---------------------------------------------------------------- cancel

#[test]
fn cancel_of_idle_or_running_item_returns_false_without_waiting() {
    let _s = shared();
    let w = Work::new(|_| {});
    assert!(!w.cancel(), "never queued");
    let wq = Workqueue::builder("cancel-running").flags(WqFlags::PERCPU).build().unwrap();
    let (_log, gate, a) = started_gated(&wq, "A");
    // Running, not pending: nothing to cancel, and cancel() does not wait (the gate
    // is closed, so waiting would not return).
    assert!(!a.cancel());
    assert!(a.busy().running);
    gate.open();
    a.flush_bounded().unwrap();
    assert!(!a.cancel(), "idle after running");
    wq.destroy_bounded().unwrap();
}

#[test]
fn cancel_of_inactive_item_behind_max_active() {
    let _s = shared();
    let c = cpu0();
    let wq = Workqueue::builder("cancel-inactive").flags(WqFlags::PERCPU).max_active(1).build().unwrap();
    let log = Log::new();
    let gate = Gate::new();
    let a = gated(&log, &gate, "A");
    let runs = Arc::new(AtomicUsize::new(0));
    let b = counting(&runs);
    assert_eq!(wq.queue_on(c, &a), Ok(true));
    log.expect("A start");
    assert_eq!(wq.queue_on(c, &b), Ok(true));
    assert_eq!(wq.stats().inactive, 1, "B waits behind max_active 1");
    assert_eq!(wq.is_congested(c), Ok(true));
    assert!(b.is_pending());
    assert!(b.cancel(), "a pending item is cancelled");
    assert!(!b.is_pending());
    assert!(!b.cancel(), "nothing left to cancel");
    assert_eq!(wq.stats().inactive, 0);
    assert_eq!(wq.is_congested(c), Ok(false));
    assert_eq!(b.flush_bounded(), Ok(false), "a cancelled instance is nothing to wait for");
    gate.open();
    wq.flush_bounded().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a cancelled item never runs");
    assert_eq!(wq.stats().in_flight, 0);
    // Cancelling does not disable: it can be queued again and runs.
    assert_eq!(wq.queue_on(c, &b), Ok(true));
    b.flush_bounded().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    wq.destroy_bounded().unwrap();
}

#[test]
fn cancel_of_active_item_waiting_on_the_worklist() {
    let _x = exclusive();
    let c = cpu0();
    let wq = Workqueue::builder("cancel-active").flags(WqFlags::PERCPU).build().unwrap();
    let log = Log::new();
    let release = Arc::new(AtomicBool::new(false));
    // A burns CPU c (no blocking): B stays on the worklist, active but not started.
    let a = {
        let (log, release) = (log.clone(), release.clone());
        Work::new(move |_| {
            log.push("A start");
            spin_until(DEADLINE, || release.load(Ordering::SeqCst));
            log.push("A end");
        })
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let b = counting(&runs);
    assert_eq!(wq.queue_on(c, &a), Ok(true));
    log.expect("A start");
    assert_eq!(wq.queue_on(c, &b), Ok(true));
    assert_eq!(wq.stats().inactive, 0, "B is active");
    assert!(b.is_pending());
    assert!(!b.busy().running);
    assert!(b.cancel());
    assert!(!b.is_pending());
    release.store(true, Ordering::SeqCst);
    wq.flush_bounded().unwrap();
    assert!(log.has("A end"));
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a cancelled item never runs");
    assert_eq!(wq.stats().in_flight, 0);
    wq.destroy_bounded().unwrap();
}

// ---------------------------------------------------------------- cancel_sync / disable_sync

#[test]
fn cancel_sync_waits_for_the_running_instance() {
    let _s = shared();
    for wq in three_queues("cancel-sync") {
        let log = Log::new();
        let gate = Gate::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let w = {
            let (log, gate, runs) = (log.clone(), gate.clone(), runs.clone());
            Work::new(move |_| {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                log.push(format!("start{n}"));
                gate.wait_blocking();
                log.push(format!("end{n}"));
            })
        };
        assert_eq!(wq.queue(&w), Ok(true));
        log.expect("start0");
        // Requeued while running: cancel_sync removes the pending instance and waits
        // for the running one.
        assert_eq!(wq.queue(&w), Ok(true));
        let canceller = {
            let w = w.clone();
            blocked_in_item(cpu0(), &log, "cancel_sync", move || w.cancel_sync())
        };
        assert!(!log.has("cancel_sync returned"), "{}: did not wait", wq.name());
        gate.open();
        assert_eq!(canceller.join(), Ok(true), "{}: it was pending", wq.name());
        log.assert_before("end0", "cancel_sync returned");
        assert!(!w.is_pending());
        assert!(!w.busy().running);
        wq.flush_bounded().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{}: the pending instance never ran", wq.name());
        // cancel_sync re-enables: the item can be queued again.
        assert_eq!(wq.queue(&w), Ok(true));
        w.flush_bounded().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(w.cancel_sync_bounded(), Ok(false), "idle");
        wq.destroy_bounded().unwrap();
    }
}

/// An item that requeues itself from its callback while `requeue` is set.
fn self_requeueing(wq: &Workqueue, runs: &Arc<AtomicUsize>, requeue: &Arc<AtomicBool>) -> Work {
    let (wq, runs, requeue) = (wq.clone(), runs.clone(), requeue.clone());
    Work::new(move |w| {
        runs.fetch_add(1, Ordering::SeqCst);
        cmwq::sleep(Duration::from_micros(50));
        if requeue.load(Ordering::SeqCst) {
            let _ = wq.queue(w);
        }
    })
}

/// After a sync cancel/disable the item is neither pending nor running, and its run
/// counter no longer moves.
fn assert_stopped(w: &Work, runs: &AtomicUsize, what: &str) {
    assert!(!w.is_pending(), "{what}: pending");
    assert!(!w.busy().running, "{what}: running");
    let n = runs.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(30));
    assert_eq!(runs.load(Ordering::SeqCst), n, "{what}: still running after the sync call");
    assert!(!w.is_pending() && !w.busy().running, "{what}");
}

#[test]
fn cancel_sync_stops_an_item_that_requeues_itself_forever() {
    let _s = shared();
    for wq in three_queues("cancel-sync-loop") {
        let runs = Arc::new(AtomicUsize::new(0));
        let requeue = Arc::new(AtomicBool::new(true));
        let w = self_requeueing(&wq, &runs, &requeue);
        assert_eq!(wq.queue(&w), Ok(true));
        assert!(poll_until(DEADLINE, || runs.load(Ordering::SeqCst) >= 20), "{}: not looping", wq.name());
        assert!(w.cancel_sync_bounded().is_ok());
        assert_stopped(&w, &runs, wq.name());
        // Enabled again afterwards.
        requeue.store(false, Ordering::SeqCst);
        let n = runs.load(Ordering::SeqCst);
        assert_eq!(wq.queue(&w), Ok(true));
        assert!(w.flush_bounded().is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), n + 1);
        wq.destroy_bounded().unwrap();
    }
}

#[test]
fn disable_sync_stops_a_self_requeueing_item_until_enabled() {
    let _s = shared();
    for wq in three_queues("disable-sync") {
        let runs = Arc::new(AtomicUsize::new(0));
        let requeue = Arc::new(AtomicBool::new(true));
        let w = self_requeueing(&wq, &runs, &requeue);
        assert_eq!(wq.queue(&w), Ok(true));
        assert!(poll_until(DEADLINE, || runs.load(Ordering::SeqCst) >= 20));
        assert!(w.disable_sync_bounded().is_ok());
        assert_stopped(&w, &runs, wq.name());
        requeue.store(false, Ordering::SeqCst);
        let n = runs.load(Ordering::SeqCst);
        assert_eq!(wq.queue(&w), Ok(false), "disabled: queueing fails");
        assert!(!w.is_pending());
        // Depth counting: two disables need two enables.
        assert!(!w.disable(), "not pending");
        assert!(!w.enable(), "depth 2 -> 1");
        assert_eq!(wq.queue(&w), Ok(false));
        assert!(w.enable(), "depth 1 -> 0");
        assert_eq!(wq.queue(&w), Ok(true));
        w.flush_bounded().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), n + 1);
        // enable_and_queue.
        w.disable();
        assert_eq!(wq.enable_and_queue(&w), Ok(true));
        w.flush_bounded().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), n + 2);
        wq.destroy_bounded().unwrap();
    }
}

#[test]
fn disable_cancels_a_pending_item() {
    let _s = shared();
    let wq = Workqueue::ordered("disable-pending").build().unwrap();
    let log = Log::new();
    let gate = Gate::new();
    let a = gated(&log, &gate, "A");
    let runs = Arc::new(AtomicUsize::new(0));
    let b = counting(&runs);
    assert_eq!(wq.queue(&a), Ok(true));
    assert_eq!(wq.queue(&b), Ok(true));
    log.expect("A start");
    assert_eq!(b.disable_sync_bounded(), Ok(true), "it was pending");
    assert!(!b.is_pending());
    gate.open();
    wq.flush_bounded().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(b.enable());
    wq.destroy_bounded().unwrap();
}

// ---------------------------------------------------------------- deadlock misuse

/// What a call made from inside an item returned: its name, whether it was
/// `WouldDeadlock`, and the result for the failure message.
type Outcome = (&'static str, bool, String);

#[test]
fn item_waiting_for_itself_or_its_queue_gets_would_deadlock() {
    let _s = shared();
    for wq in three_queues("self-wait") {
        let results: Arc<Mutex<Vec<Outcome>>> = Arc::new(Mutex::new(Vec::new()));
        let w = {
            let (wq, results) = (wq.clone(), results.clone());
            Work::new(move |w| {
                let mut r = results.lock();
                let f = w.flush();
                r.push(("work.flush", is_deadlock(&f), format!("{f:?}")));
                let cs = w.cancel_sync();
                r.push(("work.cancel_sync", is_deadlock(&cs), format!("{cs:?}")));
                let ds = w.disable_sync();
                r.push(("work.disable_sync", is_deadlock(&ds), format!("{ds:?}")));
                let qf = wq.flush();
                r.push(("wq.flush", is_deadlock(&qf), format!("{qf:?}")));
                let qd = wq.drain();
                r.push(("wq.drain", is_deadlock(&qd), format!("{qd:?}")));
                let qx = wq.destroy();
                r.push(("wq.destroy", is_deadlock(&qx), format!("{qx:?}")));
            })
        };
        assert_eq!(wq.queue(&w), Ok(true));
        // The flush from outside returns: nothing inside hung.
        w.flush_bounded().unwrap();
        let r = results.lock().clone();
        assert_eq!(r.len(), 6, "{}: {r:?}", wq.name());
        for (what, dl, dbg) in &r {
            assert!(dl, "{}: {what} from the item itself returned {dbg}", wq.name());
        }
        // None of the refused calls had an effect: not disabled, not destroyed.
        results.lock().clear();
        assert_eq!(wq.queue(&w), Ok(true));
        w.flush_bounded().unwrap();
        assert_eq!(results.lock().len(), 6);
        wq.destroy_bounded().unwrap();
    }
}

/// On a queue with max_active 1, an item that flushes an item queued behind it on
/// the same queue would wait for itself.
#[test]
fn flushing_an_item_queued_behind_oneself_on_a_max_active_1_queue() {
    let _s = shared();
    let c = cpu0();
    let queues = vec![
        Workqueue::ordered("behind-ordered").build().unwrap(),
        Workqueue::builder("behind-percpu1").flags(WqFlags::PERCPU).max_active(1).build().unwrap(),
    ];
    for wq in queues {
        let gate = Gate::new();
        let runs_b = Arc::new(AtomicUsize::new(0));
        let b = counting(&runs_b);
        let elsewhere = Workqueue::builder("behind-elsewhere").flags(WqFlags::PERCPU).build().unwrap();
        let e = Work::new(|_| {});
        let out = Arc::new(Mutex::new(Vec::new()));
        let a = {
            let (gate, b, e, out, elsewhere) =
                (gate.clone(), b.clone(), e.clone(), out.clone(), elsewhere.clone());
            Work::new(move |_| {
                gate.wait_blocking();
                let fb = b.flush();
                out.lock().push(format!("flush B: deadlock={} {fb:?}", is_deadlock(&fb)));
                // A different queue is fine.
                let _ = elsewhere.queue(&e);
                out.lock().push(format!("flush E: {:?}", e.flush().map(|_| ())));
                // Cancelling the item behind us does not wait for anything.
                out.lock().push(format!("cancel_sync B: {:?}", b.cancel_sync()));
            })
        };
        assert_eq!(wq.queue_on(c, &a), Ok(true));
        assert_eq!(wq.queue_on(c, &b), Ok(true));
        assert_eq!(wq.stats().inactive, 1, "{}: B waits behind A", wq.name());
        gate.open();
        a.flush_bounded().unwrap();
        let out = out.lock().clone();
        assert_eq!(out.len(), 3, "{}: {out:?}", wq.name());
        assert!(out[0].starts_with("flush B: deadlock=true"), "{}: {out:?}", wq.name());
        assert_eq!(out[1], "flush E: Ok(())", "{}", wq.name());
        assert_eq!(out[2], "cancel_sync B: Ok(true)", "{}", wq.name());
        wq.flush_bounded().unwrap();
        assert_eq!(runs_b.load(Ordering::SeqCst), 0, "B was cancelled before it ran");
        elsewhere.destroy_bounded().unwrap();
        wq.destroy_bounded().unwrap();
    }
}

#[test]
fn flushing_an_item_on_another_cpu_of_a_max_active_1_queue_is_fine() {
    let _s = shared();
    let Some((c, d)) = distinct_cpus() else { return };
    let wq = Workqueue::builder("behind-other-cpu").flags(WqFlags::PERCPU).max_active(1).build().unwrap();
    let log = Log::new();
    let gate = Gate::new();
    let b = gated(&log, &gate, "B");
    assert_eq!(wq.queue_on(d, &b), Ok(true));
    log.expect("B start");
    // A, an item of the same max_active 1 queue on another CPU, flushes B and waits.
    let a = {
        let b = b.clone();
        blocked_in(&wq, c, &log, "A flush B", move || b.flush())
    };
    assert!(!log.has("A flush B returned"), "A cannot be done: B is gated");
    gate.open();
    assert_eq!(a.join(), Ok(true));
    log.assert_before("B end", "A flush B returned");
    wq.destroy_bounded().unwrap();
}

// ---------------------------------------------------------------- panics

#[test]
fn panicking_item_is_contained_and_releases_its_waiters() {
    let _s = shared();
    let c = cpu0();
    let queues = vec![
        Workqueue::builder("panic-percpu").flags(WqFlags::PERCPU).build().unwrap(),
        Workqueue::builder("panic-unbound").flags(WqFlags::UNBOUND).build().unwrap(),
    ];
    for wq in queues {
        let before = cmwq::debug::panics();
        let log = Log::new();
        let gate = Gate::new();
        let p = {
            let (log, gate) = (log.clone(), gate.clone());
            Work::new(move |_| {
                log.push("P start");
                gate.wait_blocking();
                panic!("deliberate panic in a work item (test)");
            })
        };
        assert_eq!(wq.queue_on(c, &p), Ok(true));
        log.expect("P start");
        let wf = {
            let p = p.clone();
            blocked_in_item(c, &log, "work flush", move || p.flush())
        };
        let qf = {
            let wq = wq.clone();
            blocked_in_item(c, &log, "queue flush", move || wq.flush())
        };
        gate.open();
        assert_eq!(wf.join(), Ok(true), "{}: work flush released", wq.name());
        assert_eq!(qf.join(), Ok(()), "{}: queue flush released", wq.name());
        let s = wq.stats();
        assert_eq!(s.panicked, 1, "{}: {s:?}", wq.name());
        assert_eq!(s.completed, 1);
        assert_eq!(s.in_flight, 0);
        assert!(cmwq::debug::panics() > before);
        // Later items on the same pool still run, and the item can run (and panic) again.
        let ran = Arc::new(AtomicUsize::new(0));
        let q = counting(&ran);
        assert_eq!(wq.queue_on(c, &p), Ok(true));
        assert_eq!(wq.queue_on(c, &q), Ok(true));
        wq.flush_bounded().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(wq.stats().panicked, 2);
        assert_eq!(wq.stats().completed, 3);
        wq.destroy_bounded().unwrap();
    }
    let pool = support::pool_of(c, false).expect("CPU pool exists");
    assert!(pool.panicked >= 2, "{pool:?}");
}
