//! Non-reentrancy (spec §4.3) and ordered workqueues (§4.4).
//!
//! The tests of this file run one at a time ([`support::exclusive`]): they reason about
//! which worker of a pool runs an item.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use cmwq::{Busy, Work, Workqueue, WqFlags};
use support::{exclusive, pin_current_thread, two_cpus, wait_for, Concurrency, Gate, Log};

const FLAG_SETS: [WqFlags; 4] = [
    WqFlags::PERCPU,
    WqFlags::UNBOUND,
    WqFlags::PERCPU.union(WqFlags::HIGHPRI),
    WqFlags::PERCPU.union(WqFlags::CPU_INTENSIVE),
];

/// How the second instance is queued while the first one runs on CPU `c0`.
#[derive(Debug, Clone, Copy)]
enum Requeue {
    /// `queue_on(c1)` from the test thread.
    QueueOn,
    /// `queue()` from a thread pinned to `c1` (the local-CPU path).
    LocalFromPinnedThread,
    /// `queue()` from another item running on `c1`.
    FromItemOnOtherCpu,
}

/// Queued on another CPU while it runs, an item is not started there: it runs
/// behind the running instance, on the same worker (§4.3, `__queue_work` redirect).
#[test]
fn queued_on_another_cpu_while_running_runs_behind_it_on_same_worker() {
    let _s = exclusive();
    let (c0, c1) = two_cpus();
    for flags in FLAG_SETS {
        for how in [Requeue::QueueOn, Requeue::LocalFromPinnedThread, Requeue::FromItemOnOtherCpu] {
            let what = format!("{flags:?}, {how:?}");
            let wq = Workqueue::builder("nonreentrant-cross-cpu").flags(flags).build().unwrap();
            let gate = Gate::new();
            let _open = gate.open_on_drop();
            let conc = Arc::new(Concurrency::default());
            let runs: Log<(ThreadId, Option<usize>)> = Log::default();
            let (c, r, g) = (conc.clone(), runs.clone(), gate.clone());
            let w = Work::new(move |_| {
                let _in = c.enter();
                r.push((std::thread::current().id(), cmwq::debug::current_cpu()));
                if r.len() == 1 {
                    g.wait_blocking();
                }
            });
            assert_eq!(wq.queue_on(c0, &w), Ok(true));
            wait_for("the first instance to start", || runs.len() == 1);

            let queued = match how {
                Requeue::QueueOn => wq.queue_on(c1, &w),
                Requeue::LocalFromPinnedThread => std::thread::scope(|s| {
                    s.spawn(|| {
                        pin_current_thread(c1);
                        wq.queue(&w)
                    })
                    .join()
                    .unwrap()
                }),
                Requeue::FromItemOnOtherCpu => {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let (wq2, w2) = (wq.clone(), w.clone());
                    let helper = Work::new(move |_| tx.send(wq2.queue(&w2)).unwrap());
                    // On a separate per-CPU queue, so the helper itself is not
                    // held back behind the running item on an UNBOUND queue.
                    let helper_wq =
                        Workqueue::builder("nonreentrant-helper").flags(WqFlags::PERCPU).build().unwrap();
                    assert_eq!(helper_wq.queue_on(c1, &helper), Ok(true));
                    let r = rx.recv_timeout(support::DEADLINE).unwrap();
                    helper_wq.destroy().unwrap();
                    r
                }
            };
            assert_eq!(queued, Ok(true), "{what}");
            assert_eq!(w.busy(), Busy { pending: true, running: true }, "{what}");

            gate.open();
            wait_for("the second instance to run", || runs.len() == 2);
            w.flush().unwrap();
            let runs = runs.snapshot();
            assert_eq!(runs.len(), 2, "{what}");
            assert_eq!(runs[0].0, runs[1].0, "the second instance runs on the same worker thread ({what})");
            if !flags.contains(WqFlags::UNBOUND) {
                assert_eq!(runs[0].1, Some(c0), "per-CPU item runs on its CPU ({what})");
                assert_eq!(runs[1].1, Some(c0), "the second instance stays on CPU {c0}, not {c1} ({what})");
            }
            assert_eq!(conc.max(), 1, "{what}");
            wq.destroy().unwrap();
        }
    }
}

/// Many threads on different CPUs queue one item while it runs, blocks and requeues
/// itself: it never runs concurrently with itself, and each successful queue
/// produces exactly one execution.
#[test]
fn never_runs_concurrently_with_itself_under_cross_cpu_requeueing() {
    let _s = exclusive();
    const PER_PRODUCER: usize = 4000;
    let (c0, c1) = two_cpus();
    for flags in FLAG_SETS {
        let wq = Workqueue::builder("nonreentrant-storm").flags(flags).build().unwrap();
        let conc = Arc::new(Concurrency::default());
        let execs = Arc::new(AtomicUsize::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let (c, e, q, wq2) = (conc.clone(), execs.clone(), queued.clone(), wq.clone());
        let w = Work::new(move |me| {
            let _in = c.enter();
            let n = e.fetch_add(1, Ordering::SeqCst) + 1;
            for _ in 0..300 {
                std::hint::spin_loop();
            }
            if n % 3 == 0 {
                // Leave nr_running for a moment: the pool may start other workers,
                // which must not pick this item up beside us.
                cmwq::sleep(Duration::from_micros(20));
            }
            if n % 7 == 0 && wq2.queue(me) == Ok(true) {
                q.fetch_add(1, Ordering::SeqCst);
            }
        });
        std::thread::scope(|s| {
            for (p, cpu) in [c0, c1, c0, c1].into_iter().enumerate() {
                let (wq, w, queued) = (&wq, &w, &queued);
                s.spawn(move || {
                    pin_current_thread(cpu);
                    let other = if cpu == c0 { c1 } else { c0 };
                    for i in 0..PER_PRODUCER {
                        let r = match (i + p) % 3 {
                            0 => wq.queue(w),
                            1 => wq.queue_on(cpu, w),
                            _ => wq.queue_on(other, w),
                        };
                        if r.unwrap() {
                            queued.fetch_add(1, Ordering::SeqCst);
                        }
                        // Pace the producers (a sleep, not a yield, so that busy
                        // neighbours cannot stretch it): the item is then often
                        // queued while it runs, with PENDING clear, which is when
                        // another CPU's pool could start it a second time.
                        std::thread::sleep(Duration::from_micros(5 * (i % 8) as u64));
                    }
                });
            }
        });
        // The self-requeue chain ends by itself; wait for it. A successful queue is
        // counted before the instance it creates can run, so (reading `execs`
        // first) more executions than queues means an instance ran twice.
        wait_for("every queued instance to run", || {
            w.flush().unwrap();
            let (e, q) = (execs.load(Ordering::SeqCst), queued.load(Ordering::SeqCst));
            assert!(e <= q, "{e} executions for {q} successful queues ({flags:?})");
            e == q && !w.is_pending()
        });
        assert_eq!(conc.max(), 1, "the item ran concurrently with itself ({flags:?})");
        assert_eq!(
            execs.load(Ordering::SeqCst),
            queued.load(Ordering::SeqCst),
            "one execution per successful queue ({flags:?})"
        );
        wq.destroy().unwrap();
    }
}

/// An ordered queue runs one item at a time, in queueing order, whichever thread or
/// CPU queued them. Queueing is serialised by a lock that also hands out sequence
/// numbers, so the queueing order is known.
#[test]
fn ordered_runs_one_at_a_time_in_queueing_order() {
    let _s = exclusive();
    const PER_PRODUCER: usize = 500;
    let (c0, c1) = two_cpus();
    for flags in [WqFlags::empty(), WqFlags::HIGHPRI] {
        let wq = Workqueue::ordered("ordered-fifo").flags(flags).build().unwrap();
        assert!(wq.is_ordered());
        let conc = Arc::new(Concurrency::default());
        let log: Log<usize> = Log::default();
        let next = parking_lot::Mutex::new(0usize);
        // Keep every item alive: each is queued once.
        let items: parking_lot::Mutex<Vec<Work>> = parking_lot::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for (p, cpu) in [c0, c1].into_iter().enumerate() {
                let (wq, conc, log, next, items) = (&wq, &conc, &log, &next, &items);
                s.spawn(move || {
                    pin_current_thread(cpu);
                    for i in 0..PER_PRODUCER {
                        let mut seq = next.lock();
                        let (c, l, me) = (conc.clone(), log.clone(), *seq);
                        let w = Work::new(move |_| {
                            let _in = c.enter();
                            l.push(me);
                            if me % 5 == 0 {
                                // Blocking must not let the next item start.
                                cmwq::sleep(Duration::from_micros(20));
                            }
                        });
                        let r = match (i + p) % 3 {
                            0 => wq.queue(&w),
                            1 => wq.queue_on(c0, &w),
                            _ => wq.queue_on(c1, &w),
                        };
                        assert_eq!(r, Ok(true));
                        *seq += 1;
                        drop(seq);
                        items.lock().push(w);
                    }
                });
            }
        });
        wq.flush().unwrap();
        let log = log.snapshot();
        assert_eq!(
            log,
            (0..2 * PER_PRODUCER).collect::<Vec<_>>(),
            "execution order is queueing order ({flags:?})"
        );
        assert_eq!(conc.max(), 1, "one item at a time ({flags:?})");
        wq.destroy().unwrap();
    }
}

/// On an ordered queue, an item requeued while it runs goes to the back: behind the
/// items queued before the requeue.
#[test]
fn ordered_requeue_while_running_goes_behind_earlier_items() {
    let _s = exclusive();
    let wq = Workqueue::ordered("ordered-requeue").build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let log: Log<&'static str> = Log::default();
    let (l, g) = (log.clone(), gate.clone());
    let a = Work::new(move |_| {
        l.push("a");
        if l.len() == 1 {
            g.wait_blocking();
        }
    });
    let l = log.clone();
    let b = Work::new(move |_| l.push("b"));
    let l = log.clone();
    let c = Work::new(move |_| l.push("c"));
    assert_eq!(wq.queue(&a), Ok(true));
    wait_for("a to start", || log.len() == 1);
    assert_eq!(wq.queue(&b), Ok(true));
    assert_eq!(wq.queue(&a), Ok(true), "a is running, not pending: queued again");
    assert_eq!(wq.queue(&c), Ok(true));
    assert_eq!(wq.queue(&b), Ok(false), "b is still pending");
    gate.open();
    wq.flush().unwrap();
    assert_eq!(log.snapshot(), vec!["a", "b", "a", "c"]);
    wq.destroy().unwrap();
}
