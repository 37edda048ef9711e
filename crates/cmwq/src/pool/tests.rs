//! loom models of the `nr_running` wake-up handshake and of the reserve
//! invariant, on the real pool code (run with `RUSTFLAGS="--cfg loom"`). A lost
//! wake-up leaves every thread blocked, which loom reports as a deadlock.
//! Building with `--cfg cmwq_loom_mutant` removes the wake-up in
//! `worker_sleeping`, restores the old clearing rule of `retry_starved`, and
//! makes the rescuer skip the collision check, which the mayday handoff model
//! (`mayday_handoff_runs_each_item_once`) must catch, and leaves an ended batch
//! marked as running, which `a_batch_taken_back_runs_each_closure_once` must
//! catch; `.ci/run` checks that the models then fail.

use loom::sync::{Condvar, Mutex};
use std::sync::Arc;

use crate::platform::topology::Topology;
use crate::registry::Registry;
use crate::{Work, Workqueue};

/// w1 blocks (announced through `blocking`) until w2 has run; w2 is queued on the
/// same CPU. Concurrency management must start w2 while w1 sleeps.
#[test]
fn blocked_worker_hands_the_cpu_on() {
    loom::model(|| {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let wq = Workqueue::builder("model").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g1 = gate.clone();
        let w1 = Work::new(move |_| {
            crate::blocking(|| {
                let mut open = g1.0.lock().unwrap();
                while !*open {
                    open = g1.1.wait(open).unwrap();
                }
            })
        });
        let g2 = gate.clone();
        let w2 = Work::new(move |_| {
            *g2.0.lock().unwrap() = true;
            g2.1.notify_all();
        });
        assert!(wq.queue(&w1).unwrap());
        assert!(wq.queue(&w2).unwrap());
        w1.flush().unwrap();
        w2.flush().unwrap();
        crate::platform::loom::ltrace!("model: flushed");
        reg.shutdown();
    });
}

/// The reserve invariant across a refused creation (pool/README.md, "Reserve
/// invariant", "The refusal path", and "Why no wake-up is lost", 7). One CPU, a
/// thread ceiling of one worker: w1's worker is refused its reserve and runs w1
/// without one. A model thread plays the administrator and the monitor: once w1
/// has started, it raises the ceiling by one and does what the monitor's tick
/// does for a pool marked starved (`retry_starved`), while w1 still runs and
/// nothing waits. The pool must then not lack its reserve; and w1, which then
/// blocks (announced) until w2 has run, must see w2 run, in every interleaving.
/// The mutant (`--cfg cmwq_loom_mutant`) restores the rule before issue 14,
/// which cleared the mark without creating anything while no work waited for a
/// worker: the model then finds the pool without its reserve.
#[test]
fn a_refused_reserve_is_restored() {
    let mut model = loom::model::Builder::new();
    // Four threads (the test, the monitor, two workers): bounded as `.ci/run`
    // bounds every model, also where `LOOM_MAX_PREEMPTIONS` is not set.
    model.preemption_bound.get_or_insert(2);
    model.check(|| {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        reg.ctx.config.set_max_workers(1);
        let wq = Workqueue::builder("model").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
        let pool = reg.cpu_pool(0, false);
        // (w1 started, the monitor retried, w2 ran)
        let state = Arc::new((Mutex::new((false, false, false)), Condvar::new()));
        let s1 = state.clone();
        let w1 = Work::new(move |_| {
            let mut st = s1.0.lock().unwrap();
            st.0 = true;
            s1.1.notify_all();
            // Still counted as running: no work waits, nothing to wake.
            while !st.1 {
                st = s1.1.wait(st).unwrap();
            }
            drop(st);
            crate::blocking(|| {
                let mut st = s1.0.lock().unwrap();
                while !st.2 {
                    st = s1.1.wait(st).unwrap();
                }
            })
        });
        let s2 = state.clone();
        let w2 = Work::new(move |_| {
            s2.0.lock().unwrap().2 = true;
            s2.1.notify_all();
        });
        assert!(wq.queue(&w1).unwrap());
        let sm = state.clone();
        let monitor = loom::thread::spawn(move || {
            let mut st = sm.0.lock().unwrap();
            while !st.0 {
                st = sm.1.wait(st).unwrap();
            }
            drop(st);
            // Creation is allowed again: room for one more worker.
            reg.ctx.config.set_max_workers(2);
            let mut g = pool.lock();
            assert!(g.starved, "w1 started without a reserve and the pool is not marked starved");
            let _ = super::manage::retry_starved(pool, &mut g);
            assert!(!g.lacks_reserve(), "the pool lacks its reserve after the monitor's retry");
            drop(g);
            sm.0.lock().unwrap().1 = true;
            sm.1.notify_all();
        });
        assert!(wq.queue(&w2).unwrap());
        w1.flush().unwrap();
        w2.flush().unwrap();
        monitor.join().unwrap();
        drop((w1, w2));
        drop(wq);
        reg.shutdown();
    });
}

/// A runnable sleeper covers the CPU (pool/README.md, "Runnable sleepers"): w1
/// announces a block whose due time has passed (a sleep whose timer fired), so
/// no spare is woken for w2; w1's worker must take w2 itself when it runs again.
/// In every interleaving w2 runs: a lost wake-up (say, a stale due time of a
/// worker no longer asleep covering the CPU) leaves the flush waiting forever.
#[test]
fn a_runnable_sleeper_takes_the_work() {
    loom::model(|| {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let wq = Workqueue::builder("model").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
        let w1 = Work::new(|_| super::cm::blocking_until(Some(std::time::Instant::now()), || {}));
        let w2 = Work::new(|_| {});
        assert!(wq.queue(&w1).unwrap());
        assert!(wq.queue(&w2).unwrap());
        w1.flush().unwrap();
        w2.flush().unwrap();
        // Again, with w1's worker idle and its due time stale.
        assert!(wq.queue(&w2).unwrap());
        w2.flush().unwrap();
        drop((w1, w2));
        drop(wq);
        reg.shutdown();
    });
}

/// `cancel_sync` against an item that requeues itself from its own callback: on
/// return the item is neither pending nor running, and it stays idle.
#[test]
fn cancel_sync_stops_a_self_requeueing_item() {
    loom::model(|| {
        use loom::sync::atomic::{AtomicUsize, Ordering};
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let wq = Workqueue::builder("model").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let (r2, wq2) = (runs.clone(), wq.clone());
        let w = Work::new(move |w| {
            if r2.fetch_add(1, Ordering::SeqCst) < 2 {
                let _ = wq2.queue(w);
            }
        });
        assert!(wq.queue(&w).unwrap());
        w.cancel_sync().unwrap();
        let s = w.state().load();
        assert!(!s.pending(), "pending after cancel_sync");
        let after = runs.load(Ordering::SeqCst);
        assert!(after <= 3);
        wq.flush().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), after, "ran after cancel_sync returned");
        drop(w);
        drop(wq);
        reg.shutdown();
    });
}

/// The sleep monitor (`monitor/`) and a worker race over the same worker: the
/// worker runs an item that enters and leaves a `blocking` hint, while a model
/// thread plays the monitor, taking the worker out of `nr_running` as blocked and
/// giving the count back as the monitor does when it sees the worker run again.
/// Whatever the interleaving, nothing is counted twice: once every worker has
/// exited, `nr_running` is exactly 0 (a double increment leaves 1, a double
/// decrement −1).
#[test]
fn monitor_and_hint_never_double_count() {
    loom::model(|| {
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let wq = Workqueue::builder("model").flags(crate::WqFlags::PERCPU).build_in(reg).unwrap();
        let pool = reg.cpu_pool(0, false);
        let w1 = Work::new(|_| crate::blocking(|| {}));
        assert!(wq.queue(&w1).unwrap());
        let monitor = loom::thread::spawn(move || {
            let mut g = pool.lock();
            let busy = g.workers.iter().find(|(_, w)| w.current.is_some()).map(|(i, w)| (i, w.progress));
            let Some((idx, progress)) = busy else { return };
            if super::cm::monitor_sleeping(pool, &mut g, idx, progress) {
                drop(g);
                let g = pool.lock();
                let _ = super::cm::monitor_running(&g, idx, progress);
            }
        });
        w1.flush().unwrap();
        monitor.join().unwrap();
        drop(w1);
        drop(wq);
        reg.shutdown();
        assert_eq!(pool.nr_running(), 0, "nr_running not exact after the race");
    });
}

/// The mayday handoff (`mayday.rs`, `rescuer.rs`, pool/README.md "Rescuers"):
/// a `MEM_RECLAIM` pwq is sent to its rescuer while the pool may create no
/// worker, and then, while the rescuer is on its way, the ceiling lifts and a
/// new worker appears and takes the same items. The item queues itself once
/// more from inside its first run and then blocks (announced), so the second
/// instance waits on the worklist while the first one runs, on either thread.
/// In every interleaving each instance runs once, and never concurrently with
/// the other: the rescuer hands an item that a worker executes to that worker
/// (`assign_work`), as the workers do. With `--cfg cmwq_loom_mutant` the
/// rescuer takes its pwq's items without that check, and `.ci/run` checks that
/// loom then finds the overlap.
#[test]
fn mayday_handoff_runs_each_item_once() {
    // Four threads (the caller, the timer-and-creator, the rescuer, the new
    // worker): at 2 preemptions loom explores it in seconds, at 3 it ran for
    // more than ten minutes here, so the model is bounded at 2, the bound
    // `.ci/run` gives every model, unless `LOOM_MAX_PREEMPTIONS` says otherwise.
    let mut model = loom::model::Builder::new();
    model.preemption_bound.get_or_insert(2);
    model.check(|| {
        use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        // One worker in all, held by another pool's worker: creation is refused.
        reg.ctx.config.set_max_workers(1);
        reg.ctx.threads.reserve(&reg.ctx.config, false, std::time::Instant::now()).unwrap();
        let flags = crate::WqFlags::PERCPU | crate::WqFlags::MEM_RECLAIM;
        let wq = Workqueue::builder("model").flags(flags).build_in(reg).unwrap();
        let pool = reg.cpu_pool(0, false);
        let runs = Arc::new(AtomicUsize::new(0));
        let inside = Arc::new(AtomicBool::new(false));
        let overlap = Arc::new(AtomicBool::new(false));
        let (r2, i2, o2, wq2) = (runs.clone(), inside.clone(), overlap.clone(), wq.clone());
        let w = Work::new(move |w| {
            if i2.swap(true, Ordering::SeqCst) {
                o2.store(true, Ordering::SeqCst);
            }
            if r2.fetch_add(1, Ordering::SeqCst) == 0 {
                assert!(wq2.queue(w).unwrap());
            }
            crate::blocking(|| {});
            i2.store(false, Ordering::SeqCst);
        });
        // No worker, and none may be created: the pool's mayday timer is armed.
        assert!(wq.queue(&w).unwrap());
        let helper = loom::thread::spawn(move || {
            // The timer fires (the monitor's job) ...
            let mut g = pool.lock();
            assert!(g.need_to_create_worker(pool));
            super::mayday::fire(pool, &mut g, std::time::Instant::now());
            drop(g);
            // ... and the other worker exits: the monitor's retry creates one.
            pool.ctx.threads.release(false);
            let mut g = pool.lock();
            super::manage::create_worker_locked(pool, &mut g);
        });
        w.flush().unwrap();
        wq.flush().unwrap();
        helper.join().unwrap();
        assert!(!overlap.load(Ordering::SeqCst), "the item ran concurrently with itself");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "each queueing runs once");
        let g = pool.lock();
        let s = g.pwqs.iter().map(|(_, p)| p.stats).next().expect("the queue's pwq");
        drop(g);
        assert_eq!(s.started, 2);
        assert_eq!(s.mayday, 1, "sent to the rescuer once");
        drop(w);
        drop(wq); // the rescuer ends with its queue
        reg.shutdown();
    });
}

/// A batch's rest taken back while its worker runs it (`batch.rs`,
/// "Revocable"). The model's thread plays a worker: it pops a spawned closure,
/// starts a batch (which takes the second one along), runs what its batch
/// still holds and ends it. Another thread plays the monitor and takes the
/// batch back at any point, before, during or after. In every interleaving each
/// closure runs exactly once (by the worker, or from the worklist the rest went
/// back to), and the pool counts no batch afterwards. The mutant (`--cfg
/// cmwq_loom_mutant`) leaves a batch marked as running when it ends, so that
/// the second end counts it off again: the model then finds the count wrong.
#[test]
fn a_batch_taken_back_runs_each_closure_once() {
    loom::model(|| {
        use loom::sync::atomic::{AtomicUsize, Ordering};

        use crate::pwq::{Entry, Task};
        use crate::work::Spawned;

        let reg: &'static Registry = Box::leak(Box::new(Registry::new(Topology::simulated(1))));
        let pool = reg.cpu_pool(0, false);
        let runs: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        {
            let mut g = pool.lock();
            for k in 0..2 {
                let r = runs.clone();
                let task = Task::Spawned(Spawned::new(move || {
                    r[k].fetch_add(1, Ordering::SeqCst);
                }));
                g.worklist.push_back(Entry { task, pwq: 0, color: 0 });
            }
        }
        let run = |e: Entry| match e.task {
            Task::Spawned(f) => f.run(),
            Task::Work(_) => unreachable!("only spawned closures here"),
        };
        let me = Arc::new(super::WorkerShared::new(pool, 0));
        let monitor = {
            let me = me.clone();
            loom::thread::spawn(move || {
                let mut g = pool.lock();
                me.batch.take_back(pool, &mut g);
            })
        };
        let first = {
            let mut g = pool.lock();
            let first = g.worklist.pop_front().expect("queued above");
            me.batch.start(pool, &mut g, 0);
            first
        };
        run(first);
        while let Some(e) = me.batch.next() {
            run(e);
        }
        {
            let mut g = pool.lock();
            me.batch.end(pool, &mut g);
        }
        monitor.join().unwrap();
        let mut g = pool.lock();
        // The rest that went back runs from the worklist, as another worker's.
        let back: Vec<Entry> = g.worklist.drain(..).collect();
        assert_eq!(g.nr_batching, 0, "the pool counts a batch that ended");
        drop(g);
        back.into_iter().for_each(run);
        for k in 0..2 {
            assert_eq!(runs[k].load(Ordering::SeqCst), 1, "closure {k} ran once");
        }
        reg.shutdown();
    });
}
