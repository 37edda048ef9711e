//! BH workqueues (`WQ_BH`; `bh_worker`, `kick_bh_pool` and the checks of
//! `alloc_workqueue` in `kernel/workqueue.c`): items run in queueing order on
//! the queueing CPU, one at a time, on one context per CPU and priority; the
//! flag rules; cancel, flush and disable on BH items; a BH item that blocks
//! is reported and counted, and nothing is lost; the budget (10 items or
//! 2 ms, then the CPU is given up) lets a CPU-bound thread of the CPU run
//! during a storm.
//!
//! Tests that watch a BH pool take [`support::exclusive`]; no assertion is
//! about speed but the budget's, whose bound is loose (seconds-scale
//! figures live in the bench).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmwq::{system, DelayedWork, ErrorKind, Work, Workqueue, WqFlags};
use support::{cpu0, exclusive, join_bounded, pin_current_thread, wait_for, Concurrency, Gate};

fn current_cpu() -> usize {
    // SAFETY: sched_getcpu takes no arguments and only reads the calling thread's CPU.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).expect("sched_getcpu")
}

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim_end().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Order, CPU, one at a time
// ---------------------------------------------------------------------------

/// Items queued with `queue()` from a thread pinned to a CPU run there, in
/// queueing order, one at a time, all on one thread (the pool's BH context),
/// for the normal and the highpri BH queue.
#[test]
fn bh_items_run_in_queueing_order_on_the_queueing_cpu() {
    let _x = exclusive();
    const N: usize = 300;
    let cpus: Vec<usize> = cmwq::allowed_cpus().into_iter().take(2).collect();
    for wq in [system::bh(), system::bh_highpri()] {
        for &cpu in &cpus {
            let seen = Arc::new(Mutex::new(Vec::with_capacity(N)));
            let conc = Arc::new(Concurrency::default());
            let items: Vec<Work> = (0..N)
                .map(|i| {
                    let (seen, conc) = (seen.clone(), conc.clone());
                    Work::new(move |_| {
                        let _in = conc.enter();
                        seen.lock().unwrap().push((i, current_cpu(), tid()));
                    })
                })
                .collect();
            let producer = {
                let (wq, items) = (wq.clone(), items.clone());
                std::thread::spawn(move || {
                    pin_current_thread(cpu);
                    for w in &items {
                        assert!(wq.queue(w).unwrap());
                    }
                })
            };
            join_bounded(producer);
            for w in &items {
                w.flush().unwrap();
            }
            let seen = seen.lock().unwrap();
            let order: Vec<usize> = seen.iter().map(|s| s.0).collect();
            assert_eq!(order, (0..N).collect::<Vec<_>>(), "{}: queueing order on CPU {cpu}", wq.name());
            assert!(seen.iter().all(|s| s.1 == cpu), "{}: every item ran on CPU {cpu}", wq.name());
            let threads: HashSet<i32> = seen.iter().map(|s| s.2).collect();
            assert_eq!(threads.len(), 1, "{}: one context ran them all: {threads:?}", wq.name());
            assert_eq!(conc.max(), 1, "{}: never two at once", wq.name());
        }
    }
}

/// Each BH pool has exactly one thread, its context, named `cmwq/bh<cpu>`
/// (`H` for highpri), even after items that block and a storm: no second
/// worker is ever made for it.
#[test]
fn bh_context_is_a_single_thread_per_pool() {
    let _x = exclusive();
    let cpu = cpu0();
    for wq in [system::bh(), system::bh_highpri()] {
        // An item that blocks, with items queued behind it: a regular pool
        // would start another worker; a BH pool never does.
        let gate = Gate::new();
        let g = gate.clone();
        let blocker = Work::new(move |_| {
            g.wait_for(Duration::from_secs(60));
        });
        wq.queue_on(cpu, &blocker).unwrap();
        let behind: Vec<Work> = (0..50).map(|_| Work::new(|_| {})).collect();
        for w in &behind {
            wq.queue_on(cpu, w).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(behind.iter().all(Work::is_pending), "{}: items wait behind the blocked one", wq.name());
        gate.open();
        for w in &behind {
            w.flush().unwrap();
        }
    }
    let bh: Vec<_> = cmwq::debug::pools().into_iter().filter(|p| p.bh).collect();
    assert!(bh.len() >= 2, "a normal and a highpri BH pool: {bh:?}");
    for p in &bh {
        assert_eq!((p.workers, p.peak_workers, p.created), (1, 1, 1), "one context per BH pool: {p:?}");
        assert_eq!(p.running, 0, "a BH pool is never concurrency managed: {p:?}");
    }
    let names = thread_names();
    for (name, n) in [(format!("cmwq/bh{cpu}"), 1), (format!("cmwq/bh{cpu}H"), 1)] {
        assert_eq!(names.iter().filter(|t| **t == name).count(), n, "threads: {names:?}");
    }
}

// ---------------------------------------------------------------------------
// Flag rules
// ---------------------------------------------------------------------------

/// `alloc_workqueue`'s BH checks: only `HIGHPRI` and `PERCPU` beside `BH`
/// (`__WQ_BH_ALLOWS`), `max_active` 0, not ordered; each refusal is typed,
/// names the queue and the flag. BH implies PERCPU; `set_max_active` is
/// refused.
#[test]
fn bh_flag_rules() {
    let _x = exclusive();
    for (extra, name) in [
        (WqFlags::UNBOUND, "UNBOUND"),
        (WqFlags::FREEZABLE, "FREEZABLE"),
        (WqFlags::MEM_RECLAIM, "MEM_RECLAIM"),
        (WqFlags::CPU_INTENSIVE, "CPU_INTENSIVE"),
        (WqFlags::POWER_EFFICIENT, "POWER_EFFICIENT"),
        (WqFlags::UNBOUND | WqFlags::HIGHPRI, "UNBOUND"),
        (WqFlags::FREEZABLE | WqFlags::PERCPU, "FREEZABLE"),
    ] {
        let e = Workqueue::builder("bh-refused").flags(WqFlags::BH | extra).build().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{extra:?}: {e:?}");
        assert_eq!(e.workqueue(), "bh-refused");
        let text = e.to_string();
        assert!(text.contains("\"bh-refused\"") && text.contains(name), "{text}");
    }
    let e = Workqueue::ordered("bh-ordered").flags(WqFlags::BH).build().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{e:?}");
    assert_eq!(e.workqueue(), "bh-ordered");
    for n in [1, 16, 4096] {
        let e = Workqueue::builder("bh-max").flags(WqFlags::BH).max_active(n).build().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidFlags(m) if m.contains("max_active")), "{n}: {e:?}");
        assert_eq!(e.workqueue(), "bh-max");
    }
    let e =
        Workqueue::builder("bh-attrs").flags(WqFlags::BH).attrs(cmwq::Attrs::default()).build().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidAttrs(_)), "{e:?}");

    for flags in
        [WqFlags::BH, WqFlags::BH | WqFlags::HIGHPRI, WqFlags::BH | WqFlags::HIGHPRI | WqFlags::PERCPU]
    {
        let wq = Workqueue::builder("bh-ok").flags(flags).build().unwrap();
        assert!(wq.flags().contains(flags | WqFlags::PERCPU), "BH implies PERCPU: {:?}", wq.flags());
        assert!(!wq.flags().contains(WqFlags::UNBOUND));
        assert!(wq.max_active() >= i32::MAX as usize, "unlimited internally, as INT_MAX");
        let e = wq.set_max_active(4).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{e:?}");
        let w = Work::new(|_| {});
        wq.queue(&w).unwrap();
        w.flush().unwrap();
        wq.destroy().unwrap();
    }
    assert_eq!(system::bh().name(), "events_bh");
    assert_eq!(system::bh().flags(), WqFlags::BH | WqFlags::PERCPU);
    assert_eq!(system::bh_highpri().name(), "events_bh_highpri");
    assert_eq!(system::bh_highpri().flags(), WqFlags::BH | WqFlags::HIGHPRI | WqFlags::PERCPU);
}

// ---------------------------------------------------------------------------
// Cancel, flush, disable, delayed
// ---------------------------------------------------------------------------

/// Queue, cancel and flush race on BH items from two threads: every queueing
/// that returned true either ran once or was cancelled once, never both,
/// never neither; every closure is dropped once, after the last handle.
#[test]
fn bh_cancel_and_flush_races_count_exactly_once() {
    let _x = exclusive();
    let wq = Workqueue::builder("bh-race").flags(WqFlags::BH).build().unwrap();
    let (c0, c1) = support::two_cpus();
    let ran = Arc::new(AtomicU64::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..8)
        .map(|_| {
            let (ran, guard) = (ran.clone(), support::DropGuard(drops.clone()));
            Work::new(move |_| {
                let _keep = &guard;
                ran.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let queued = Arc::new(AtomicU64::new(0));
    let cancelled = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let canceller = {
        let (items, cancelled, stop) = (items.clone(), cancelled.clone(), stop.clone());
        std::thread::spawn(move || {
            pin_current_thread(c1);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let w = &items[i % items.len()];
                let c = if i % 3 == 0 { w.cancel_sync().unwrap() } else { w.cancel() };
                cancelled.fetch_add(u64::from(c), Ordering::Relaxed);
                if i % 5 == 0 {
                    w.flush().unwrap();
                }
                i += 1;
            }
        })
    };
    let start = Instant::now();
    let mut rounds = 0u32;
    while rounds < 20_000 && start.elapsed() < Duration::from_secs(3) {
        for (k, w) in items.iter().enumerate() {
            let cpu = if k % 2 == 0 { c0 } else { c1 };
            if wq.queue_on(cpu, w).unwrap() {
                queued.fetch_add(1, Ordering::Relaxed);
            }
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    join_bounded(canceller);
    for w in &items {
        w.flush().unwrap();
    }
    wq.flush().unwrap();
    let (q, r, c) =
        (queued.load(Ordering::Relaxed), ran.load(Ordering::Relaxed), cancelled.load(Ordering::Relaxed));
    assert_eq!(q, r + c, "queued {q} = ran {r} + cancelled {c}");
    let s = wq.stats();
    assert_eq!(s.completed, r);
    assert_eq!(s.in_flight, 0);
    wq.destroy().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0, "no closure dropped while a handle lives");
    drop(items);
    // The context drops its handle of the last item it ran just after the
    // flush waiters are woken.
    wait_for("every closure dropped", || drops.load(Ordering::SeqCst) >= 8);
    std::thread::sleep(support::SETTLE);
    assert_eq!(drops.load(Ordering::SeqCst), 8, "each closure dropped once");
}

/// Delayed queueing, flush of a delayed BH item, cancel of a delayed one,
/// disable/enable from inside a BH item and `enable_and_queue`; a BH item
/// requeueing itself is never run twice at once.
#[test]
fn bh_delayed_disable_enable_and_requeue() {
    let _x = exclusive();
    let wq = system::bh();
    let cpu = cpu0();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let dw = DelayedWork::new(move |_| {
        r.fetch_add(1, Ordering::Relaxed);
    });
    assert!(wq.queue_delayed_on(cpu, &dw, Duration::from_millis(20)).unwrap());
    wait_for("the delayed BH item", || ran.load(Ordering::Relaxed) == 1);
    assert!(wq.queue_delayed_on(cpu, &dw, Duration::from_secs(60)).unwrap());
    assert!(dw.flush().unwrap(), "flush runs it now");
    assert_eq!(ran.load(Ordering::Relaxed), 2);
    assert!(wq.queue_delayed(&dw, Duration::from_secs(60)).unwrap());
    assert!(dw.cancel());
    assert_eq!(ran.load(Ordering::Relaxed), 2);

    // Disable another item from inside a BH item, then enable it from inside
    // the next one, which queues it with `enable_and_queue`.
    let target_ran = Arc::new(AtomicUsize::new(0));
    let t = target_ran.clone();
    let target = Work::new(move |_| {
        t.fetch_add(1, Ordering::Relaxed);
    });
    let (tg, wq2) = (target.clone(), wq.clone());
    let disabler = Work::new(move |_| {
        tg.disable();
        assert!(!wq2.queue(&tg).unwrap(), "a disabled item is not queued");
    });
    wq.queue_on(cpu, &disabler).unwrap();
    disabler.flush().unwrap();
    assert_eq!(target_ran.load(Ordering::Relaxed), 0);
    let (tg, wq2) = (target.clone(), wq.clone());
    let enabler = Work::new(move |_| {
        assert!(wq2.enable_and_queue(&tg).unwrap());
    });
    wq.queue_on(cpu, &enabler).unwrap();
    enabler.flush().unwrap();
    target.flush().unwrap();
    assert_eq!(target_ran.load(Ordering::Relaxed), 1);

    // Flushing, from a BH item, an item queued behind it on the same context
    // would wait for itself: refused.
    let later = Work::new(|_| {});
    let (l2, wq2) = (later.clone(), wq.clone());
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    let flusher = Work::new(move |_| {
        wq2.queue_on(cpu, &l2).unwrap();
        *s2.lock().unwrap() = Some(l2.flush());
    });
    wq.queue_on(cpu, &flusher).unwrap();
    flusher.flush().unwrap();
    later.flush().unwrap();
    let got = seen.lock().unwrap().take().expect("the flusher ran");
    assert!(matches!(got.as_ref().map_err(|e| e.kind()), Err(ErrorKind::WouldDeadlock(_))), "{got:?}");

    // Requeueing itself from both CPUs: never two instances at once.
    let conc = Arc::new(Concurrency::default());
    let left = Arc::new(AtomicUsize::new(200));
    let (c, l, wq2) = (conc.clone(), left.clone(), wq.clone());
    let (c0, c1) = support::two_cpus();
    let selfq = Work::new(move |w| {
        let _in = c.enter();
        if l.fetch_sub(1, Ordering::Relaxed) > 1 {
            let cpu = if l.load(Ordering::Relaxed) % 2 == 0 { c0 } else { c1 };
            wq2.queue_on(cpu, w).unwrap();
        }
    });
    wq.queue_on(c0, &selfq).unwrap();
    wait_for("the self-requeueing BH item", || left.load(Ordering::Relaxed) == 0);
    selfq.flush().unwrap();
    assert_eq!(conc.max(), 1, "a BH item never runs concurrently with itself");
}

/// Waiting, from a BH item, for another workqueue that has items queued on
/// the same BH pool would wait for ever: they run on this context, after the
/// caller. `flush`, `drain` and `destroy` refuse with `WouldDeadlock`, naming
/// the queue, and nothing is lost; the items run once the caller returns. With
/// nothing of that queue on this BH pool, the flush is allowed (it waits for
/// nothing here).
#[test]
fn waiting_from_a_bh_item_for_a_queue_behind_it_is_refused() {
    let _x = exclusive();
    let cpu = cpu0();
    let wq = Workqueue::builder("bh-waiter").flags(WqFlags::BH).build().unwrap();
    let other = Workqueue::builder("bh-behind").flags(WqFlags::BH).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (o, r, s) = (other.clone(), ran.clone(), seen.clone());
    let waiter = Work::new(move |_| {
        // Nothing of `other` on this BH pool yet: a flush waits for nothing.
        s.lock().unwrap().push(("flush, nothing behind", o.flush().map_err(|e| e.kind().clone())));
        let r = r.clone();
        let behind = Work::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert!(o.queue_on(cpu, &behind).unwrap());
        s.lock().unwrap().push(("flush", o.flush().map_err(|e| e.kind().clone())));
        s.lock().unwrap().push(("drain", o.drain().map_err(|e| e.kind().clone())));
        s.lock().unwrap().push(("destroy", o.destroy().map_err(|e| e.kind().clone())));
    });
    assert!(wq.queue_on(cpu, &waiter).unwrap());
    let w = waiter.clone();
    support::bounded("the BH waiter", move || w.flush()).unwrap();
    other.flush().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the item behind ran once");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0].1, Ok(()), "{seen:?}");
    for (what, got) in &seen[1..] {
        assert!(matches!(got, Err(ErrorKind::WouldDeadlock(_))), "{what}: {got:?}");
    }
    other.destroy().unwrap();
    wq.destroy().unwrap();
}

// ---------------------------------------------------------------------------
// Must not wait
// ---------------------------------------------------------------------------

/// A BH item that sleeps (`cmwq::sleep`, `cmwq::blocking`) is reported and
/// counted per workqueue, once per block; the items behind it wait for it
/// (no second context) and none is lost.
#[test]
fn bh_item_that_sleeps_is_reported_and_nothing_is_lost() {
    let _x = exclusive();
    let wq = Workqueue::builder("bh-sleepy").flags(WqFlags::BH).build().unwrap();
    let cpu = cpu0();
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let sleeper = Work::new(move |_| {
        cmwq::sleep(Duration::from_millis(20));
        cmwq::blocking(|| std::thread::sleep(Duration::from_millis(5)));
        o.lock().unwrap().push(usize::MAX);
    });
    wq.queue_on(cpu, &sleeper).unwrap();
    let behind: Vec<Work> = (0..100)
        .map(|i| {
            let o = order.clone();
            Work::new(move |_| o.lock().unwrap().push(i))
        })
        .collect();
    for w in &behind {
        wq.queue_on(cpu, w).unwrap();
    }
    wq.flush().unwrap();
    let order = order.lock().unwrap();
    assert_eq!(order.len(), 101, "nothing lost");
    assert_eq!(order[0], usize::MAX, "the items behind waited for the sleeper");
    assert_eq!(order[1..], (0..100).collect::<Vec<_>>()[..]);
    let s = wq.stats();
    assert_eq!(s.bh_blocked, 2, "each announced block counted: {s:?}");
    assert_eq!(s.completed, 101);
    let dump = cmwq::debug::dump().to_string();
    assert!(dump.contains("bh_blocked=2"), "the dump shows it: {dump}");
    wq.destroy().unwrap();
}

/// The warning: once per workqueue, at its first blocking BH item, at level
/// WARN with the workqueue in a field; every block is still counted.
#[cfg(feature = "tracing")]
#[test]
fn bh_blocking_warns_once_per_workqueue_naming_it() {
    let _x = exclusive();
    let warnings = || {
        support::traces::captured()
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.level == tracing::Level::WARN && e.get("workqueue") == Some("bh-warned"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(warnings().is_empty());
    let wq = Workqueue::builder("bh-warned").flags(WqFlags::BH).build().unwrap();
    let w = Work::new(|_| {
        cmwq::sleep(Duration::from_millis(1));
        cmwq::sleep(Duration::from_millis(1));
    });
    for _ in 0..2 {
        wq.queue_on(cpu0(), &w).unwrap();
        w.flush().unwrap();
    }
    let warned = warnings();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].message().contains("BH"), "{warned:?}");
    assert_eq!(wq.stats().bh_blocked, 4);
    wq.destroy().unwrap();
}

/// A BH item that blocks without saying so (a plain `std::thread::sleep`)
/// while items wait behind it is found by the sleep monitor, reported and
/// counted; a BH item that burns the CPU past the CPU-intensive threshold is
/// reported as a hog (report only: the items behind still wait). Each item
/// keeps at it until the count shows, bounded by the deadline.
#[test]
fn bh_monitor_reports_a_sleeping_and_a_hogging_item() {
    let _x = exclusive();
    cmwq::set_cpu_intensive_thresh(Duration::from_millis(10));
    let wq = Workqueue::builder("bh-unannounced").flags(WqFlags::BH).build().unwrap();
    let cpu = cpu0();
    let seen = |f: fn(&cmwq::WqStats) -> u64, wq: &Workqueue| f(&wq.stats()) >= 1;
    for (what, hog) in [("asleep", false), ("hogging", true)] {
        let (wq2, done) = (wq.clone(), Arc::new(AtomicBool::new(false)));
        let d = done.clone();
        let culprit = Work::new(move |_| {
            let t = Instant::now();
            let f: fn(&cmwq::WqStats) -> u64 = if hog { |s| s.cpu_intensive } else { |s| s.bh_blocked };
            while !seen(f, &wq2) && t.elapsed() < support::DEADLINE {
                if hog {
                    spin(Duration::from_millis(1));
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            d.store(true, Ordering::Relaxed);
        });
        wq.queue_on(cpu, &culprit).unwrap();
        let behind: Vec<Work> = (0..10).map(|_| Work::new(|_| {})).collect();
        for w in &behind {
            wq.queue_on(cpu, w).unwrap();
        }
        culprit.flush().unwrap();
        for w in &behind {
            w.flush().unwrap();
        }
        let s = wq.stats();
        let n = if hog { s.cpu_intensive } else { s.bh_blocked };
        assert!(n >= 1, "the context {what} was reported: {s:?}");
    }
    let s = wq.stats();
    assert_eq!((s.completed, s.in_flight), (22, 0), "nothing lost: {s:?}");
    wq.destroy().unwrap();
}

// ---------------------------------------------------------------------------
// The budget
// ---------------------------------------------------------------------------

/// Spins for `d` of thread CPU-independent wall time.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The kernel's budget: 10,000 BH items of ~60 µs each (about 600 ms of work)
/// queued at once on a CPU where a CPU-bound thread of this process runs. The
/// context runs at most 10 items or 2 ms at a time and then gives the CPU
/// up, so the thread's longest gap stays far below the storm's length; the
/// bound is loose (200 ms; the bench has the real figure). Without the budget
/// the highpri context (`SCHED_FIFO` where permitted) holds the CPU for the
/// whole storm.
#[test]
fn bh_budget_lets_a_cpu_bound_thread_of_the_cpu_run() {
    let _x = exclusive();
    const N: usize = 10_000;
    const ITEM: Duration = Duration::from_micros(60);
    const BOUND: Duration = Duration::from_millis(200);
    let cpu = cpu0();
    for wq in [system::bh_highpri(), system::bh()] {
        // Warm the pool: its context exists before the storm.
        let w = Work::new(|_| {});
        wq.queue_on(cpu, &w).unwrap();
        w.flush().unwrap();

        let done = Arc::new(AtomicUsize::new(0));
        let items: Vec<Work> = (0..N)
            .map(|_| {
                let done = done.clone();
                Work::new(move |_| {
                    spin(ITEM);
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        let storm = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let hog = {
            let (storm, stop, ready) = (storm.clone(), stop.clone(), ready.clone());
            std::thread::spawn(move || {
                pin_current_thread(cpu);
                ready.store(true, Ordering::Relaxed);
                let mut last = Instant::now();
                let mut longest = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if storm.load(Ordering::Relaxed) {
                        longest = longest.max(now - last);
                    }
                    last = now;
                }
                longest
            })
        };
        wait_for("the CPU-bound thread", || ready.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(20));
        storm.store(true, Ordering::Relaxed);
        let t = Instant::now();
        // Queued at once: from another CPU where there is one, so the storm
        // lands on the context as a whole, not one item per wake-up; with one
        // CPU, from a BH item on the context itself (they run after it).
        let queue_all = {
            let (wq, items) = (wq.clone(), items.clone());
            move || {
                for w in &items {
                    assert!(wq.queue_on(cpu, w).unwrap());
                }
            }
        };
        match support::cpu1() {
            Some(other) => join_bounded(std::thread::spawn(move || {
                pin_current_thread(other);
                queue_all();
            })),
            None => {
                let queue_all = Mutex::new(Some(queue_all));
                let loader = Work::new(move |_| {
                    if let Some(f) = queue_all.lock().unwrap().take() {
                        f();
                    }
                });
                wq.queue_on(cpu, &loader).unwrap();
                loader.flush().unwrap();
            }
        }
        wait_for("the storm", || done.load(Ordering::Relaxed) == N);
        let storm_took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let longest = join_bounded(hog);
        eprintln!(
            "{}: storm of {N} items took {storm_took:?}; longest gap of the CPU-bound thread {longest:?}",
            wq.name()
        );
        assert!(
            longest < BOUND,
            "{}: the CPU-bound thread of CPU {cpu} waited {longest:?} during a storm of {storm_took:?}",
            wq.name()
        );
    }
}
