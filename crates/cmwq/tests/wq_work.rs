//! Work items: the PENDING rules (spec §4.2), requeueing while running, `is_pending`,
//! `busy`, `current_work`, the memory-ordering guarantee of `queue` (§2.2), `spawn`,
//! and the disable depth (§2.3).
//!
//! The tests of this file run one at a time ([`support::exclusive`]): several of them
//! reason about which worker thread of a pool runs what.

mod support;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

use cmwq::{Busy, ErrorKind, Work, Workqueue, WqFlags};
use support::{exclusive, two_cpus, wait_for, Concurrency, DropGuard, Gate, Log};

const IDLE: Busy = Busy { pending: false, running: false };
const PENDING: Busy = Busy { pending: true, running: false };
const RUNNING: Busy = Busy { pending: false, running: true };
const PENDING_AND_RUNNING: Busy = Busy { pending: true, running: true };

/// An ordered queue whose first item blocks until `gate` opens: everything queued
/// behind it stays pending, deterministically.
fn blocked_ordered_queue(name: &str, gate: &Gate) -> (Workqueue, Work, Arc<AtomicBool>) {
    let wq = Workqueue::ordered(name).build().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let (s, g) = (started.clone(), gate.clone());
    let blocker = Work::new(move |_| {
        s.store(true, Ordering::SeqCst);
        g.wait_blocking();
    });
    assert_eq!(wq.queue(&blocker), Ok(true));
    wait_for("the blocker to start", || started.load(Ordering::SeqCst));
    (wq, blocker, started)
}

#[test]
fn queue_returns_true_then_false_while_pending() {
    let _s = exclusive();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let (wq, _blocker, _) = blocked_ordered_queue("pending-rules", &gate);

    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let w = Work::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(!w.is_pending());
    assert_eq!(wq.queue(&w), Ok(true), "an idle item is queued");
    assert!(w.is_pending());
    for cpu in cmwq::allowed_cpus() {
        assert_eq!(wq.queue(&w), Ok(false), "already pending: queue() is a no-op");
        assert_eq!(wq.queue_on(cpu, &w), Ok(false), "already pending: queue_on({cpu}) is a no-op");
    }
    assert!(w.is_pending());
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing ran behind the blocker");

    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "several queue() calls while pending make one instance");
    assert!(!w.is_pending());

    assert_eq!(wq.queue(&w), Ok(true), "idle again: queueable again");
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    wq.destroy().unwrap();
}

/// A pending item keeps its place: queueing it on another CPU while it waits on an
/// inactive list neither moves nor duplicates it.
#[test]
fn pending_item_keeps_its_place_when_queued_on_another_cpu() {
    let _s = exclusive();
    let (c0, c1) = two_cpus();
    let wq = Workqueue::builder("pending-place").flags(WqFlags::PERCPU).max_active(1).build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let started = Arc::new(AtomicBool::new(false));
    let (s, g) = (started.clone(), gate.clone());
    let blocker = Work::new(move |_| {
        s.store(true, Ordering::SeqCst);
        g.wait_blocking();
    });
    assert_eq!(wq.queue_on(c0, &blocker), Ok(true));
    wait_for("the blocker to start", || started.load(Ordering::SeqCst));

    let ran_on: Log<Option<usize>> = Log::default();
    let r = ran_on.clone();
    let w = Work::new(move |_| r.push(cmwq::debug::current_cpu()));
    assert_eq!(wq.queue_on(c0, &w), Ok(true));
    assert!(wq.is_congested(c0).unwrap(), "max_active 1 is taken by the blocker: the item waits");
    assert_eq!(wq.queue_on(c1, &w), Ok(false));
    assert_eq!(wq.queue(&w), Ok(false));
    if c1 != c0 {
        assert!(!wq.is_congested(c1).unwrap(), "nothing was queued on CPU {c1}");
    }

    gate.open();
    wq.flush().unwrap();
    assert_eq!(ran_on.snapshot(), vec![Some(c0)], "one instance, on the CPU it was first queued on");
    wq.destroy().unwrap();
}

/// Queued again from outside while it runs: one more instance, which runs after the
/// current one on the same worker thread, never beside it.
#[test]
fn requeue_from_outside_while_running_runs_again_on_same_worker() {
    let _s = exclusive();
    let (c0, _) = two_cpus();
    for flags in [
        WqFlags::PERCPU,
        WqFlags::UNBOUND,
        WqFlags::PERCPU | WqFlags::HIGHPRI,
        WqFlags::PERCPU | WqFlags::CPU_INTENSIVE,
    ] {
        let wq = Workqueue::builder(format!("requeue-outside-{flags:?}")).flags(flags).build().unwrap();
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let conc = Arc::new(Concurrency::default());
        let tids: Log<ThreadId> = Log::default();
        let (c, t, g) = (conc.clone(), tids.clone(), gate.clone());
        let w = Work::new(move |_| {
            let _in = c.enter();
            t.push(std::thread::current().id());
            if t.len() == 1 {
                g.wait_blocking();
            }
        });
        assert_eq!(w.busy(), IDLE);
        assert_eq!(wq.queue_on(c0, &w), Ok(true));
        wait_for("the first instance to start", || tids.len() == 1);
        assert!(!w.is_pending(), "PENDING is cleared before the callback runs ({flags:?})");
        assert_eq!(w.busy(), RUNNING, "{flags:?}");

        assert_eq!(wq.queue_on(c0, &w), Ok(true), "queueable again while running ({flags:?})");
        assert!(w.is_pending());
        assert_eq!(w.busy(), PENDING_AND_RUNNING, "{flags:?}");
        assert_eq!(wq.queue_on(c0, &w), Ok(false), "the second instance is pending ({flags:?})");

        gate.open();
        wait_for("the second instance to run", || tids.len() == 2);
        w.flush().unwrap();
        let tids = tids.snapshot();
        assert_eq!(tids.len(), 2, "exactly two instances ({flags:?})");
        assert_eq!(tids[0], tids[1], "the second instance runs on the same worker thread ({flags:?})");
        assert_eq!(conc.max(), 1, "never concurrently with itself ({flags:?})");
        assert_eq!(w.busy(), IDLE, "{flags:?}");
        wq.destroy().unwrap();
    }
}

/// Queued again by its own callback: runs again after the current execution, on the
/// same worker thread. Both `queue(me)` and `queue(&current_work())` work.
#[test]
fn requeue_from_inside_runs_again_on_same_worker() {
    let _s = exclusive();
    const N: usize = 200;
    for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
        let wq = Workqueue::builder(format!("requeue-inside-{flags:?}")).flags(flags).build().unwrap();
        let conc = Arc::new(Concurrency::default());
        let tids: Log<ThreadId> = Log::default();
        let bad = Log::new();
        let count = Arc::new(AtomicUsize::new(0));
        let (c, t, b, n, q) = (conc.clone(), tids.clone(), bad.clone(), count.clone(), wq.clone());
        let w = Work::new(move |me| {
            let _in = c.enter();
            t.push(std::thread::current().id());
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            if i < N {
                let r = if i % 2 == 0 {
                    q.queue(me)
                } else {
                    let cur = cmwq::current_work().expect("current_work() inside an item");
                    q.queue(&cur)
                };
                if r != Ok(true) {
                    b.push(format!("requeue #{i} returned {r:?}"));
                }
                if !me.is_pending() {
                    b.push(format!("not pending after requeue #{i}"));
                }
            }
        });
        assert_eq!(wq.queue(&w), Ok(true));
        wait_for("the self-requeue chain to finish", || count.load(Ordering::SeqCst) == N);
        w.flush().unwrap();
        assert_eq!(bad.snapshot(), Vec::<String>::new(), "{flags:?}");
        assert_eq!(count.load(Ordering::SeqCst), N, "one execution per successful queue ({flags:?})");
        let tids = tids.snapshot();
        assert!(
            tids.iter().all(|t| *t == tids[0]),
            "every requeued instance ran on the same worker ({flags:?})"
        );
        assert_eq!(conc.max(), 1, "{flags:?}");
        assert!(!w.is_pending());
        wq.destroy().unwrap();
    }
}

#[test]
fn busy_and_is_pending_follow_the_item() {
    let _s = exclusive();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let (wq, blocker, _) = blocked_ordered_queue("busy-states", &gate);
    assert_eq!(blocker.busy(), RUNNING);

    let gate2 = Gate::new();
    let _open2 = gate2.open_on_drop();
    let started = Arc::new(AtomicUsize::new(0));
    let (s, g) = (started.clone(), gate2.clone());
    let w = Work::new(move |_| {
        if s.fetch_add(1, Ordering::SeqCst) == 0 {
            g.wait_blocking();
        }
    });
    assert_eq!(w.busy(), IDLE, "a new item");
    assert!(!w.is_pending());

    assert_eq!(wq.queue(&w), Ok(true));
    assert_eq!(w.busy(), PENDING, "queued behind the blocker, not started");
    assert!(w.is_pending());

    gate.open();
    wait_for("the item to start", || started.load(Ordering::SeqCst) == 1);
    assert_eq!(w.busy(), RUNNING);
    assert!(!w.is_pending());
    assert_eq!(wq.queue(&w), Ok(true));
    assert_eq!(w.busy(), PENDING_AND_RUNNING, "requeued while running (ordered: it waits)");

    gate2.open();
    wait_for("the second instance", || started.load(Ordering::SeqCst) == 2);
    w.flush().unwrap();
    assert_eq!(w.busy(), IDLE, "after flush");
    assert!(!w.is_pending());
    assert_eq!(blocker.busy(), IDLE);
    wq.destroy().unwrap();
}

#[test]
fn current_work_is_the_running_item() {
    let _s = exclusive();
    assert!(cmwq::current_work().is_none(), "a test thread runs no item");
    std::thread::spawn(|| assert!(cmwq::current_work().is_none(), "a plain thread runs no item"))
        .join()
        .unwrap();

    for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
        let wq = Workqueue::builder(format!("current-{flags:?}")).flags(flags).build().unwrap();
        let seen: Log<Option<Work>> = Log::default();
        let s = seen.clone();
        let w = Work::new(move |_| s.push(cmwq::current_work()));
        let other = Work::new(|_| {});
        assert_eq!(wq.queue(&w), Ok(true));
        w.flush().unwrap();
        let seen = seen.snapshot();
        assert_eq!(seen.len(), 1);
        let cur = seen[0].as_ref().expect("current_work() is Some inside the item");
        assert!(cur.ptr_eq(&w), "current_work() is the running item ({flags:?})");
        assert!(!cur.ptr_eq(&other));

        // A spawned closure runs as an item too, one that is not `w`.
        let (tx, rx) = std::sync::mpsc::channel();
        let w2 = w.clone();
        wq.spawn(move || {
            let cur = cmwq::current_work();
            tx.send((cur.is_some(), cur.is_some_and(|c| c.ptr_eq(&w2)))).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv_timeout(support::DEADLINE).unwrap(), (true, false), "{flags:?}");
        wq.destroy().unwrap();
    }
    assert!(cmwq::current_work().is_none());
}

/// Inside a spawned closure, `current_work()` is a handle made for it: the same
/// one on every call, `busy().running` while the closure runs, never queueable,
/// `flush()` from inside is refused, and `flush()` from another thread returns only
/// after the closure has returned. After it, the handle is idle.
#[test]
fn current_work_of_a_spawned_closure_flushes_and_reports_busy() {
    let _s = exclusive();
    for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
        let wq = Workqueue::builder(format!("spawned-handle-{flags:?}")).flags(flags).build().unwrap();
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let finished = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (g, f, wq2) = (gate.clone(), finished.clone(), wq.clone());
        wq.spawn(move || {
            let a = cmwq::current_work().expect("a handle inside a spawned closure");
            let b = cmwq::current_work().expect("a handle inside a spawned closure");
            let inside = (a.ptr_eq(&b), a.busy(), wq2.queue(&a), a.flush().map_err(|e| e.kind().clone()));
            tx.send((a, inside)).unwrap();
            g.wait_blocking();
            std::thread::sleep(std::time::Duration::from_millis(20));
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
        let (handle, (same, busy, requeue, self_flush)) = rx.recv_timeout(support::DEADLINE).unwrap();
        assert!(same, "{flags:?}: current_work() gives the same handle twice");
        assert_eq!(busy, RUNNING, "{flags:?}: busy() inside the closure");
        assert_eq!(requeue, Ok(false), "{flags:?}: a spawned item cannot be queued again");
        assert!(
            matches!(self_flush, Err(ErrorKind::WouldDeadlock(_))),
            "{flags:?}: flush() of itself from inside: {self_flush:?}"
        );
        assert_eq!(handle.busy(), RUNNING, "{flags:?}: busy() seen from outside");
        let (ftx, frx) = std::sync::mpsc::channel();
        let h = handle.clone();
        std::thread::spawn(move || ftx.send(h.flush()));
        let early = frx.recv_timeout(std::time::Duration::from_millis(20));
        assert!(early.is_err(), "{flags:?}: flush() returned while the closure runs: {early:?}");
        gate.open();
        let flushed = frx.recv_timeout(support::DEADLINE).expect("flush() returns once the closure did");
        assert_eq!(flushed, Ok(true), "{flags:?}: flush() waited");
        assert!(finished.load(Ordering::SeqCst), "{flags:?}: flush() returned before the closure did");
        assert_eq!(handle.busy(), IDLE, "{flags:?}: idle afterwards");
        assert_eq!(handle.flush(), Ok(false), "{flags:?}: nothing left to wait for");
        assert_eq!(wq.queue(&handle), Ok(false));
        wq.destroy().unwrap();
    }
}

/// A closure that is already a `Box<dyn FnOnce() + Send>` (an executor's job type)
/// is spawned as it is: it runs once, is dropped once, and comes back as the same
/// box when refused.
#[test]
fn a_boxed_job_runs_once_and_comes_back_when_refused() {
    let _s = exclusive();
    type Job = Box<dyn FnOnce() + Send + 'static>;
    let wq = Workqueue::builder("spawn-boxed").flags(WqFlags::PERCPU).build().unwrap();
    let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for _ in 0..100 {
        let (r, token) = (runs.clone(), DropGuard(drops.clone()));
        let job: Job = Box::new(move || {
            let _token = token;
            r.fetch_add(1, Ordering::SeqCst);
        });
        wq.spawn(job).unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 100);
    assert_eq!(drops.load(Ordering::SeqCst), 100);
    wq.destroy().unwrap();
    let r = runs.clone();
    let job: Job = Box::new(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let addr = (&*job as *const (dyn FnOnce() + Send)).cast::<u8>();
    let back: Job = wq.spawn(job).unwrap_err().into_inner();
    assert_eq!((&*back as *const (dyn FnOnce() + Send)).cast::<u8>(), addr, "the same box comes back");
    back();
    assert_eq!(runs.load(Ordering::SeqCst), 101);
}

/// A buffer written with plain (non-atomic) stores by a producer and read by the
/// callback; only the happens-before edge of a successful `queue()` orders them.
struct Payload(UnsafeCell<[u64; 16]>);

// SAFETY: access is coordinated by the test protocol: the producer writes only after
// the callback that read the previous value has finished (`Work::flush`, then
// Release/Acquire on `done`), and the callback reads only after the producer's `queue()`
// returned true, which the library guarantees publishes the producer's prior stores.
unsafe impl Sync for Payload {}

#[test]
fn successful_queue_publishes_prior_plain_stores() {
    let _s = exclusive();
    const ROUNDS: u64 = 3000;
    let (c0, c1) = two_cpus();
    for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
        let wq = Workqueue::builder(format!("publish-plain-{flags:?}")).flags(flags).build().unwrap();
        std::thread::scope(|scope| {
            for (p, cpu) in [c0, c1].into_iter().enumerate() {
                let wq = wq.clone();
                scope.spawn(move || {
                    support::pin_current_thread(if p == 0 { c1 } else { c0 });
                    let payload = Arc::new(Payload(UnsafeCell::new([0; 16])));
                    let done = Arc::new(AtomicU64::new(0));
                    let mismatches = Arc::new(AtomicU64::new(0));
                    let execs = Arc::new(AtomicU64::new(0));
                    let (pl, d, m, e) = (payload.clone(), done.clone(), mismatches.clone(), execs.clone());
                    let w = Work::new(move |_| {
                        let expect = e.fetch_add(1, Ordering::Relaxed) + 1;
                        // SAFETY: see `Payload`: the producer does not write until `done`
                        // says this execution finished.
                        let seen = unsafe { *pl.0.get() };
                        if seen.iter().any(|&x| x != expect) {
                            m.fetch_add(1, Ordering::Relaxed);
                        }
                        d.store(expect, Ordering::Release);
                    });
                    for round in 1..=ROUNDS {
                        // SAFETY: the previous execution finished reading (Acquire on
                        // `done` below, or no execution yet), so nobody reads now.
                        unsafe { *payload.0.get() = [round; 16] };
                        assert_eq!(wq.queue_on(cpu, &w), Ok(true), "round {round}");
                        w.flush().unwrap();
                        // Acquire: the callback's read of the payload happens before
                        // the next round's writes.
                        assert_eq!(done.load(Ordering::Acquire), round, "round {round} ran");
                    }
                    w.flush().unwrap();
                    assert_eq!(execs.load(Ordering::SeqCst), ROUNDS);
                    assert_eq!(
                        mismatches.load(Ordering::SeqCst),
                        0,
                        "a callback did not see the stores made before its queue() ({flags:?})"
                    );
                });
            }
        });
        wq.destroy().unwrap();
    }
}

/// The same guarantee while the item is running and being requeued: execution `j`
/// belongs to the `j`-th successful queue (one instance per success, in order), and
/// must see at least the value stored before that queue.
#[test]
fn successful_queue_publishes_prior_stores_while_running() {
    let _s = exclusive();
    const N: usize = 20_000;
    let (c0, c1) = two_cpus();
    for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
        let wq = Workqueue::builder(format!("publish-running-{flags:?}")).flags(flags).build().unwrap();
        std::thread::scope(|scope| {
            for cpu in [c0, c1] {
                let wq = wq.clone();
                scope.spawn(move || {
                    let data = Arc::new(AtomicU64::new(0));
                    let obs: Arc<Vec<AtomicU64>> =
                        Arc::new((0..=N).map(|_| AtomicU64::new(u64::MAX)).collect());
                    let execs = Arc::new(AtomicUsize::new(0));
                    let (d, o, e) = (data.clone(), obs.clone(), execs.clone());
                    let w = Work::new(move |_| {
                        let j = e.fetch_add(1, Ordering::Relaxed);
                        o[j].store(d.load(Ordering::Relaxed), Ordering::Relaxed);
                        for _ in 0..200 {
                            std::hint::spin_loop();
                        }
                    });
                    let mut stored_before = Vec::with_capacity(N);
                    for i in 1..=N as u64 {
                        data.store(i, Ordering::Relaxed);
                        if wq.queue_on(cpu, &w).unwrap() {
                            stored_before.push(i);
                        }
                    }
                    w.flush().unwrap();
                    assert_eq!(
                        execs.load(Ordering::SeqCst),
                        stored_before.len(),
                        "one execution per successful queue ({flags:?})"
                    );
                    assert!(!stored_before.is_empty());
                    for (j, &v) in stored_before.iter().enumerate() {
                        let seen = obs[j].load(Ordering::Relaxed);
                        assert!(
                            seen >= v,
                            "execution {j} saw {seen}, but {v} was stored before its queue() ({flags:?})"
                        );
                    }
                });
            }
        });
        wq.destroy().unwrap();
    }
}

#[test]
fn spawn_runs_each_closure_exactly_once() {
    let _s = exclusive();
    const PER_THREAD: usize = 2000;
    let (c0, c1) = two_cpus();
    for builder in [
        Workqueue::builder("spawn-percpu"),
        Workqueue::builder("spawn-unbound").flags(WqFlags::UNBOUND),
        Workqueue::ordered("spawn-ordered"),
    ] {
        let wq = builder.build().unwrap();
        let slots: Arc<Vec<AtomicU32>> = Arc::new((0..2 * PER_THREAD).map(|_| AtomicU32::new(0)).collect());
        let drops = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for (t, cpu) in [c0, c1].into_iter().enumerate() {
                let (wq, slots, drops) = (wq.clone(), slots.clone(), drops.clone());
                scope.spawn(move || {
                    support::pin_current_thread(cpu);
                    for i in 0..PER_THREAD {
                        let idx = t * PER_THREAD + i;
                        let (slots, token) = (slots.clone(), DropGuard(drops.clone()));
                        wq.spawn(move || {
                            let _token = token;
                            slots[idx].fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    }
                });
            }
        });
        wq.flush().unwrap();
        let counts: Vec<u32> = slots.iter().map(|s| s.load(Ordering::SeqCst)).collect();
        let wrong: Vec<(usize, u32)> = counts.iter().copied().enumerate().filter(|&(_, c)| c != 1).collect();
        assert!(wrong.is_empty(), "{}: closures that did not run exactly once: {wrong:?}", wq.name());
        assert_eq!(drops.load(Ordering::SeqCst), 2 * PER_THREAD, "{}: every closure dropped once", wq.name());
        wq.destroy().unwrap();
    }
}

#[test]
fn refused_spawn_gives_the_closure_back() {
    let _s = exclusive();
    // Destroyed queue.
    let wq = Workqueue::builder("spawn-refused").flags(WqFlags::PERCPU).build().unwrap();
    wq.destroy().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let (r, token) = (ran.clone(), DropGuard(drops.clone()));
    let err = wq
        .spawn(move || {
            let _token = token;
            r.store(true, Ordering::SeqCst);
        })
        .unwrap_err();
    assert_eq!(err.error().kind(), &ErrorKind::Destroyed);
    assert_eq!(err.error().workqueue(), "spawn-refused");
    assert!(err.to_string().contains("\"spawn-refused\""), "{err}");
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the refused closure is alive, not dropped");
    let f = err.into_inner();
    assert!(!ran.load(Ordering::SeqCst));
    f();
    assert!(ran.load(Ordering::SeqCst), "the closure given back is the one passed in");
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Draining queue: spawning from outside is refused while a drain runs.
    let wq = Workqueue::builder("spawn-draining").flags(WqFlags::PERCPU).build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let g = gate.clone();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    wq.spawn(move || {
        s.store(true, Ordering::SeqCst);
        g.wait_blocking();
    })
    .unwrap();
    wait_for("the blocker to start", || started.load(Ordering::SeqCst));
    let executed = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        let drainer = scope.spawn(|| wq.drain());
        let mut attempts = 0usize;
        let refused = loop {
            attempts += 1;
            assert!(attempts < 10_000_000, "drain never started refusing");
            let e = executed.clone();
            match wq.spawn(move || {
                e.fetch_add(1, Ordering::SeqCst);
            }) {
                Ok(()) => std::thread::yield_now(),
                Err(err) => break err,
            }
        };
        assert_eq!(refused.error().kind(), &ErrorKind::Draining);
        let before = executed.load(Ordering::SeqCst);
        (refused.into_inner())();
        assert_eq!(executed.load(Ordering::SeqCst), before + 1, "the refused closure came back runnable");
        gate.open();
        drainer.join().unwrap().unwrap();
        assert_eq!(
            executed.load(Ordering::SeqCst),
            attempts,
            "accepted closures ran, the refused one came back"
        );
    });
    wq.spawn(|| {}).expect("spawn works again after the drain");
    wq.destroy().unwrap();
}

#[test]
fn disable_nests_and_enable_returns_true_at_depth_zero() {
    let _s = exclusive();
    let wq = Workqueue::builder("disable-depth").flags(WqFlags::PERCPU).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let w = Work::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });

    assert!(!w.disable(), "an idle item was not pending");
    assert_eq!(wq.queue(&w), Ok(false), "disabled: queue returns false");
    assert!(!w.is_pending());
    assert!(!w.disable(), "depth 2");
    assert!(!w.enable(), "depth 1: still disabled");
    assert_eq!(wq.queue(&w), Ok(false), "depth 1: still refused");
    for cpu in cmwq::allowed_cpus() {
        assert_eq!(wq.queue_on(cpu, &w), Ok(false));
    }
    assert!(w.enable(), "depth 0");
    assert_eq!(wq.queue(&w), Ok(true), "enabled again");
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "nothing queued while disabled ran");

    // Deep nesting.
    for _ in 0..100 {
        w.disable();
    }
    for i in (1..100).rev() {
        assert!(!w.enable(), "depth {i} left");
        assert_eq!(wq.queue(&w), Ok(false));
    }
    assert!(w.enable());
    assert_eq!(wq.queue(&w), Ok(true));
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // Enabling an item that is not disabled changes nothing (the kernel's underflow
    // WARN): it must not wrap the depth around.
    assert!(w.enable());
    assert_eq!(wq.queue(&w), Ok(true), "an underflowing enable() must not disable the item");
    w.flush().unwrap();
    assert!(!w.disable());
    assert_eq!(wq.queue(&w), Ok(false), "one disable() after the underflow disables it");
    assert!(w.enable());
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    wq.destroy().unwrap();
}

#[test]
fn disable_cancels_a_pending_instance() {
    let _s = exclusive();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let (wq, _blocker, _) = blocked_ordered_queue("disable-pending", &gate);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let w = Work::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(wq.queue(&w), Ok(true));
    assert!(w.disable(), "it was pending");
    assert!(!w.is_pending(), "the pending instance is gone");
    assert_eq!(wq.queue(&w), Ok(false));
    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a cancelled instance never runs");
    assert!(w.enable());
    assert_eq!(wq.queue(&w), Ok(true));
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    wq.destroy().unwrap();
}

#[test]
fn enable_and_queue_queues_only_at_depth_zero() {
    let _s = exclusive();
    let wq = Workqueue::builder("enable-and-queue").flags(WqFlags::PERCPU).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let w = Work::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    w.disable();
    w.disable();
    assert_eq!(wq.enable_and_queue(&w), Ok(false), "depth 2 -> 1: not queued");
    assert!(!w.is_pending());
    wq.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(wq.enable_and_queue(&w), Ok(true), "depth 1 -> 0: queued");
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(wq.queue(&w), Ok(true), "enabled for good");
    w.flush().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // At depth 0 it reports `queue`'s result: false when the item is already
    // pending (the enable() underflows harmlessly and must not disable the item).
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let (owq, _blocker, _) = blocked_ordered_queue("enable-and-queue-ordered", &gate);
    let w2 = Work::new(|_| {});
    w2.disable();
    assert_eq!(owq.enable_and_queue(&w2), Ok(true));
    assert!(w2.is_pending());
    assert_eq!(owq.enable_and_queue(&w2), Ok(false), "already pending");
    assert!(w2.is_pending(), "still pending, in its place");
    w2.disable();
    assert!(!w2.is_pending(), "disable() cancelled it");
    assert_eq!(owq.enable_and_queue(&w2), Ok(true));
    gate.open();
    owq.flush().unwrap();
    assert!(!w2.is_pending());
    owq.destroy().unwrap();
    wq.destroy().unwrap();
}
