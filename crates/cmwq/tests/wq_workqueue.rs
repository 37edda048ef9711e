//! Workqueues: builder validation (spec §2.1, §3), `max_active` and the inactive
//! list (§4.1), `is_congested`/`set_max_active` (§2.4), HIGHPRI, CPU placement of
//! per-CPU items, and the system workqueues (§2.5).
//!
//! The tests of this file run one at a time ([`support::exclusive`]): they count the
//! items a pool runs, and some empty whole pools.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{ErrorKind, Work, Workqueue, WqFlags, WQ_DFL_ACTIVE, WQ_MAX_ACTIVE};
use support::{exclusive, pin_current_thread, thread_affinity, two_cpus, wait_for, Concurrency, Gate, Log};

// ---------------------------------------------------------------------------
// Builder validation
// ---------------------------------------------------------------------------

#[test]
fn builder_rejects_invalid_names() {
    let _s = exclusive();
    for name in ["", "a\nb", "\t", "tab\tinside", "bell\u{7}", "del\u{7f}", "nel\u{85}", "\0"] {
        for b in [Workqueue::builder(name).flags(WqFlags::PERCPU), Workqueue::ordered(name)] {
            let e = b.build().unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::InvalidName, "{name:?}");
            assert_eq!(e.workqueue(), name);
        }
    }
    let e = Workqueue::builder("").flags(WqFlags::PERCPU).build().unwrap_err();
    assert!(e.to_string().starts_with("workqueue \"\": "), "{e}");
    // Unusual but valid names.
    for name in ["a b", "ünï-cödé/0", "kworker:1H", &"x".repeat(31)] {
        let wq = Workqueue::builder(name).flags(WqFlags::PERCPU).build().unwrap();
        assert_eq!(wq.name(), name);
        wq.destroy().unwrap();
    }
    // Longer than the kernel's WQ_NAME_LEN - 1 (31 bytes): truncated, as
    // `alloc_workqueue` does (`tests/wq_hostile.rs` has the rest).
    let wq = Workqueue::builder("x".repeat(200)).flags(WqFlags::PERCPU).build().unwrap();
    assert_eq!(wq.name(), "x".repeat(31));
    wq.destroy().unwrap();
}

#[test]
fn builder_rejects_unsupported_flags() {
    let _s = exclusive();
    // FREEZABLE and POWER_EFFICIENT are implemented since commit 3d1fa84,
    // MEM_RECLAIM with the rescuers (`tests/wq_rescuer.rs`) and BH with its
    // contexts (`tests/wq_bh.rs`, which checks its flag rules). No flag is
    // refused as unsupported any more; BH with a flag outside the kernel's
    // `__WQ_BH_ALLOWS` is refused as invalid, naming the flag.
    for extra in [WqFlags::UNBOUND, WqFlags::FREEZABLE | WqFlags::PERCPU] {
        let e = Workqueue::builder("bh-extra").flags(WqFlags::BH | extra).build().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{extra:?}: {e:?}");
        assert_eq!(e.workqueue(), "bh-extra");
    }
    // The implemented ones are accepted and kept.
    for flag in [
        WqFlags::FREEZABLE,
        WqFlags::POWER_EFFICIENT,
        WqFlags::FREEZABLE | WqFlags::UNBOUND,
        WqFlags::MEM_RECLAIM,
        WqFlags::MEM_RECLAIM | WqFlags::PERCPU | WqFlags::HIGHPRI,
        WqFlags::BH,
        WqFlags::BH | WqFlags::HIGHPRI | WqFlags::PERCPU,
    ] {
        let wq = Workqueue::builder("supported-flag").flags(flag).build().unwrap();
        assert!(wq.flags().contains(flag), "{flag:?} kept: {:?}", wq.flags());
        wq.destroy().unwrap();
    }
}

#[test]
fn builder_rejects_contradictory_flags() {
    let _s = exclusive();
    let e = Workqueue::builder("percpu-and-unbound")
        .flags(WqFlags::PERCPU | WqFlags::UNBOUND)
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{e:?}");
    assert_eq!(e.workqueue(), "percpu-and-unbound");
    assert!(e.to_string().contains("\"percpu-and-unbound\""), "{e}");

    let e = Workqueue::ordered("ordered-percpu").flags(WqFlags::PERCPU).build().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{e:?}");

    for n in [2, 3, WQ_MAX_ACTIVE, 5000] {
        let e = Workqueue::ordered("ordered-max-active").max_active(n).build().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "max_active({n}): {e:?}");
        assert_eq!(e.workqueue(), "ordered-max-active");
    }
    // Bits no flag names (the kernel's WQ_SYSFS, 1 << 6, say) are refused, never ignored.
    for bits in [1 << 6, 1 << 20] {
        let e = Workqueue::builder("unknown-bits")
            .flags(WqFlags::from_bits_retain(bits) | WqFlags::PERCPU)
            .build()
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidFlags(_)), "{bits:#x}: {e:?}");
        assert!(e.to_string().contains(&format!("{bits:#x}")), "{e}");
        assert_eq!(e.workqueue(), "unknown-bits");
    }

    for n in [0, 1] {
        let wq = Workqueue::ordered("ordered-ok").max_active(n).flags(WqFlags::HIGHPRI).build().unwrap();
        assert!(wq.is_ordered());
        assert_eq!(wq.max_active(), 1);
        assert!(wq.flags().contains(WqFlags::UNBOUND | WqFlags::HIGHPRI), "{:?}", wq.flags());
        wq.destroy().unwrap();
    }
    // Valid combinations.
    for flags in [
        WqFlags::UNBOUND | WqFlags::HIGHPRI,
        WqFlags::UNBOUND | WqFlags::CPU_INTENSIVE,
        WqFlags::PERCPU | WqFlags::HIGHPRI | WqFlags::CPU_INTENSIVE,
    ] {
        let wq = Workqueue::builder("valid-flags").flags(flags).build().unwrap();
        assert_eq!(wq.flags(), flags);
        assert!(!wq.is_ordered());
        wq.destroy().unwrap();
    }
}

#[test]
fn max_active_defaults_and_clamps() {
    let _s = exclusive();
    assert_eq!(WQ_DFL_ACTIVE, 1024);
    assert_eq!(WQ_MAX_ACTIVE, 2048);
    for (asked, got) in
        [(0, 1024), (1, 1), (7, 7), (2048, 2048), (2049, 2048), (5000, 2048), (usize::MAX, 2048)]
    {
        for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
            let wq = Workqueue::builder("max-active").flags(flags).max_active(asked).build().unwrap();
            assert_eq!(wq.max_active(), got, "max_active({asked}) {flags:?}");
            wq.destroy().unwrap();
        }
    }
    let wq = Workqueue::builder("set-max-active").flags(WqFlags::PERCPU).build().unwrap();
    for (asked, got) in [(3, 3), (0, 1), (10_000, 2048), (2048, 2048), (1, 1)] {
        wq.set_max_active(asked).unwrap();
        assert_eq!(wq.max_active(), got, "set_max_active({asked})");
    }
    wq.destroy().unwrap();
}

#[test]
fn set_max_active_on_ordered_is_refused() {
    let _s = exclusive();
    let wq = Workqueue::ordered("ordered-set-max").build().unwrap();
    for n in [0, 1, 2, 100] {
        let e = wq.set_max_active(n).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Ordered(_)), "{e:?}");
        assert_eq!(e.workqueue(), "ordered-set-max");
        assert_eq!(wq.max_active(), 1);
    }
    wq.destroy().unwrap();
}

#[test]
fn invalid_cpu_is_an_error_not_a_panic() {
    let _s = exclusive();
    let allowed = cmwq::allowed_cpus();
    assert!(!allowed.is_empty());
    let max = *allowed.last().unwrap();
    let mut bad: Vec<usize> = vec![max + 1, max + 64, 4096, 1 << 20, usize::MAX];
    bad.extend((0..max).filter(|c| !allowed.contains(c)));
    for b in [
        Workqueue::builder("bad-cpu"),
        Workqueue::builder("bad-cpu").flags(WqFlags::UNBOUND),
        Workqueue::ordered("bad-cpu"),
    ] {
        let wq = b.build().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let w = Work::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        });
        for &cpu in &bad {
            let expected = ErrorKind::InvalidCpu { cpu, allowed: allowed.clone() };
            let e = wq.queue_on(cpu, &w).unwrap_err();
            assert_eq!(e.kind(), &expected);
            assert_eq!(e.workqueue(), "bad-cpu");
            assert!(e.to_string().contains(&format!("CPU {cpu}")), "{e}");
            assert!(!w.is_pending(), "a refused item is left untouched");
            assert_eq!(wq.is_congested(cpu).unwrap_err().kind(), &expected);
        }
        // The queue still works, and the item too.
        assert_eq!(wq.queue_on(allowed[0], &w), Ok(true));
        w.flush().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        wq.destroy().unwrap();
    }
    let w = Work::new(|_| {});
    let e = cmwq::schedule_work_on(max + 1, &w).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidCpu { .. }), "{e:?}");
    assert!(!w.is_pending());
}

// ---------------------------------------------------------------------------
// max_active and the inactive list
// ---------------------------------------------------------------------------

/// Items that each block on their own gate, recording when they start.
struct Blockers {
    gates: Vec<Gate>,
    _open: Vec<support::OpenOnDrop>,
    started: Log<usize>,
    finished: Arc<AtomicUsize>,
    conc: Arc<Concurrency>,
    items: Vec<Work>,
    bad_cpu: Log<String>,
}

impl Blockers {
    /// `n` items; an item expecting a CPU records a mismatch in `bad_cpu`.
    fn new(n: usize, expect_cpu: Option<usize>) -> Blockers {
        let gates: Vec<Gate> = (0..n).map(|_| Gate::new()).collect();
        let started = Log::default();
        let finished = Arc::new(AtomicUsize::new(0));
        let conc = Arc::new(Concurrency::default());
        let bad_cpu = Log::new();
        let items = (0..n)
            .map(|i| {
                let (g, s, f, c, b) =
                    (gates[i].clone(), started.clone(), finished.clone(), conc.clone(), bad_cpu.clone());
                Work::new(move |_| {
                    let _in = c.enter();
                    s.push(i);
                    let cpu = cmwq::debug::current_cpu();
                    if expect_cpu.is_some() && cpu != expect_cpu {
                        b.push(format!("item {i} ran on {cpu:?}, expected {expect_cpu:?}"));
                    }
                    g.wait_blocking();
                    f.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let _open = gates.iter().map(Gate::open_on_drop).collect();
        Blockers { gates, _open, started, finished, conc, items, bad_cpu }
    }

    fn wait_started(&self, n: usize) {
        wait_for(&format!("{n} items to start"), || self.started.len() >= n);
        assert_eq!(self.started.len(), n, "more items started than expected");
    }
}

/// Per-CPU `max_active = N`: at most N items of the queue run at once on a CPU,
/// even though every item blocks (so concurrency management would start them all);
/// the rest wait on the inactive list (`is_congested`), are activated one per
/// completion in FIFO order, and the limit is per CPU.
#[test]
fn percpu_max_active_bounds_running_items_and_activates_fifo() {
    let _s = exclusive();
    const MAX: usize = 3;
    const N: usize = 9;
    let (c0, c1) = two_cpus();
    let wq = Workqueue::builder("max-active-percpu").flags(WqFlags::PERCPU).max_active(MAX).build().unwrap();
    let b = Blockers::new(N, Some(c0));
    for w in &b.items {
        assert_eq!(wq.queue_on(c0, w), Ok(true));
    }
    b.wait_started(MAX);
    let mut first = b.started.snapshot();
    first.sort_unstable();
    assert_eq!(first, (0..MAX).collect::<Vec<_>>(), "the first {MAX} queued are the active ones");
    assert!(wq.is_congested(c0).unwrap(), "items wait for max_active on CPU {c0}");
    let st = wq.stats();
    assert_eq!((st.inactive, st.in_flight), ((N - MAX) as u64, N as u64), "{st:?}");
    for w in &b.items[MAX..] {
        assert!(w.is_pending(), "an inactive item is pending");
    }

    // The limit is per CPU: another CPU's pwq of the same queue is not congested.
    let other = (c1 != c0).then(|| {
        assert!(!wq.is_congested(c1).unwrap());
        let o = Blockers::new(MAX, Some(c1));
        for w in &o.items {
            assert_eq!(wq.queue_on(c1, w), Ok(true));
        }
        o.wait_started(MAX);
        assert!(!wq.is_congested(c1).unwrap(), "CPU {c1} has its own max_active");
        o
    });

    // Each completion activates exactly the first waiting item.
    for k in 0..N - MAX {
        b.gates[k].open();
        b.wait_started(MAX + k + 1);
        assert_eq!(b.started.snapshot()[MAX + k], MAX + k, "activation is FIFO");
        assert_eq!(b.finished.load(Ordering::SeqCst), k + 1);
        assert_eq!(wq.is_congested(c0).unwrap(), MAX + k + 1 < N);
    }
    for g in &b.gates {
        g.open();
    }
    if let Some(o) = &other {
        for g in &o.gates {
            g.open();
        }
    }
    wq.flush().unwrap();
    assert_eq!(b.finished.load(Ordering::SeqCst), N);
    assert_eq!(b.conc.max(), MAX, "never more than max_active items of the queue at once on CPU {c0}");
    assert_eq!(b.bad_cpu.snapshot(), Vec::<String>::new());
    if let Some(o) = other {
        assert_eq!(o.bad_cpu.snapshot(), Vec::<String>::new());
    }
    assert!(!wq.is_congested(c0).unwrap());
    assert_eq!(wq.stats().in_flight, 0);
    wq.destroy().unwrap();
}

/// Raising `max_active` activates waiting items at once, without any item
/// completing; lowering it never preempts running items, and bounds later ones.
#[test]
fn set_max_active_activates_waiting_items_at_once() {
    let _s = exclusive();
    let (c0, _) = two_cpus();
    for flags in [WqFlags::PERCPU, WqFlags::UNBOUND] {
        let wq = Workqueue::builder("raise-max-active").flags(flags).max_active(2).build().unwrap();
        let b = Blockers::new(6, None);
        for w in &b.items {
            assert_eq!(wq.queue_on(c0, w), Ok(true));
        }
        b.wait_started(2);
        assert!(wq.is_congested(c0).unwrap());
        wq.set_max_active(4).unwrap();
        b.wait_started(4);
        assert_eq!(b.finished.load(Ordering::SeqCst), 0, "they started without any item completing");
        // The two oldest waiting items were activated (FIFO). Activated together,
        // they may start in either order on two workers.
        let mut next = b.started.snapshot()[2..].to_vec();
        next.sort_unstable();
        assert_eq!(next, [2, 3], "the oldest waiting items are activated ({flags:?})");
        assert!(wq.is_congested(c0).unwrap());
        wq.set_max_active(100).unwrap();
        b.wait_started(6);
        assert!(!wq.is_congested(c0).unwrap(), "{flags:?}");
        assert_eq!(wq.stats().inactive, 0);

        // Lowering: the 6 running items keep running.
        wq.set_max_active(1).unwrap();
        assert_eq!(b.conc.now(), 6, "lowering max_active preempts nothing");
        assert_eq!(b.finished.load(Ordering::SeqCst), 0);
        for g in &b.gates {
            g.open();
        }
        wq.flush().unwrap();

        // ... and bounds what comes next.
        let b2 = Blockers::new(3, None);
        for w in &b2.items {
            assert_eq!(wq.queue_on(c0, w), Ok(true));
        }
        b2.wait_started(1);
        assert!(wq.is_congested(c0).unwrap());
        for k in 0..2 {
            b2.gates[k].open();
            b2.wait_started(k + 2);
        }
        b2.gates[2].open();
        wq.flush().unwrap();
        assert_eq!(b2.conc.max(), 1, "{flags:?}");
        wq.destroy().unwrap();
    }
}

/// An unbound queue's `max_active` bounds it process-wide, whatever CPUs queue.
#[test]
fn unbound_max_active_is_process_wide() {
    let _s = exclusive();
    const MAX: usize = 2;
    const N: usize = 8;
    let (c0, c1) = two_cpus();
    let wq =
        Workqueue::builder("max-active-unbound").flags(WqFlags::UNBOUND).max_active(MAX).build().unwrap();
    let b = Blockers::new(N, None);
    // Queue from threads on both CPUs; a lock records the queueing order.
    let order: parking_lot::Mutex<Vec<usize>> = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (t, cpu) in [c0, c1].into_iter().enumerate() {
            let (wq, b, order) = (&wq, &b, &order);
            s.spawn(move || {
                pin_current_thread(cpu);
                for i in (t..N).step_by(2) {
                    let mut o = order.lock();
                    let r = if i % 4 < 2 { wq.queue(&b.items[i]) } else { wq.queue_on(cpu, &b.items[i]) };
                    assert_eq!(r, Ok(true));
                    o.push(i);
                }
            });
        }
    });
    let order = order.into_inner();
    b.wait_started(MAX);
    let mut first = b.started.snapshot();
    first.sort_unstable();
    let mut expect_first = order[..MAX].to_vec();
    expect_first.sort_unstable();
    assert_eq!(first, expect_first);
    for cpu in [c0, c1] {
        assert!(wq.is_congested(cpu).unwrap(), "an unbound queue has one pwq: congested from CPU {cpu}");
    }
    assert_eq!(wq.stats().inactive, (N - MAX) as u64);
    for k in 0..N - MAX {
        let done = b.started.snapshot()[k];
        b.gates[done].open();
        b.wait_started(MAX + k + 1);
        assert_eq!(b.started.snapshot()[MAX + k], order[MAX + k], "one pwq: activation is FIFO");
    }
    for g in &b.gates {
        g.open();
    }
    wq.flush().unwrap();
    assert_eq!(b.finished.load(Ordering::SeqCst), N);
    assert_eq!(b.conc.max(), MAX, "never more than max_active items at once, process-wide");
    wq.destroy().unwrap();
}

// ---------------------------------------------------------------------------
// Where and how items run
// ---------------------------------------------------------------------------

#[test]
fn percpu_items_run_on_the_cpu_they_were_queued_on() {
    let _s = exclusive();
    let cpus = cmwq::allowed_cpus();
    for flags in
        [WqFlags::PERCPU, WqFlags::PERCPU | WqFlags::HIGHPRI, WqFlags::PERCPU | WqFlags::CPU_INTENSIVE]
    {
        let wq = Workqueue::builder("percpu-placement").flags(flags).build().unwrap();
        for &cpu in &cpus {
            let seen: Log<(Option<usize>, Vec<usize>)> = Log::default();
            let s = seen.clone();
            let w = Work::new(move |_| s.push((cmwq::debug::current_cpu(), thread_affinity())));
            // queue_on(cpu) from an unpinned thread ...
            assert_eq!(wq.queue_on(cpu, &w), Ok(true));
            w.flush().unwrap();
            // ... and queue() from a thread running on `cpu`.
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    pin_current_thread(cpu);
                    assert_eq!(wq.queue(&w), Ok(true));
                });
            });
            w.flush().unwrap();
            for (how, (ran_on, affinity)) in
                ["queue_on", "queue from a pinned thread"].iter().zip(seen.snapshot())
            {
                assert_eq!(ran_on, Some(cpu), "{how}({cpu}) {flags:?}");
                assert_eq!(affinity, vec![cpu], "the worker is pinned to CPU {cpu} ({flags:?})");
            }
        }
        wq.destroy().unwrap();
    }
}

/// Whether this process may set nice -20 (the independent oracle for HIGHPRI):
/// tried on a throwaway thread, since nice is per thread on Linux.
fn may_raise_priority() -> bool {
    std::thread::spawn(|| {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as libc::id_t;
        // SAFETY: setpriority on our own tid changes only this thread, which exits next.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, -20) == 0 }
    })
    .join()
    .unwrap()
}

fn nice_inside(wq: &Workqueue) -> i32 {
    let (tx, rx) = std::sync::mpsc::channel();
    wq.spawn(move || tx.send(cmwq::debug::thread_nice()).unwrap()).unwrap();
    rx.recv_timeout(support::DEADLINE).unwrap()
}

#[test]
fn highpri_items_run_at_nice_minus_20_where_permitted() {
    let _s = exclusive();
    let base = cmwq::debug::thread_nice();
    let permitted = may_raise_priority();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    eprintln!("euid 0: {root}; nice -20 permitted: {permitted}; base nice {base}");
    let expected = if permitted { -20 } else { base };
    let highpri = [
        Workqueue::builder("highpri-percpu").flags(WqFlags::HIGHPRI | WqFlags::PERCPU).build().unwrap(),
        Workqueue::builder("highpri-unbound").flags(WqFlags::HIGHPRI | WqFlags::UNBOUND).build().unwrap(),
        Workqueue::ordered("highpri-ordered").flags(WqFlags::HIGHPRI).build().unwrap(),
        cmwq::system::highpri().clone(),
    ];
    for wq in &highpri {
        assert_eq!(nice_inside(wq), expected, "{}: highpri item's nice (permitted: {permitted})", wq.name());
    }
    assert_eq!(cmwq::debug::highpri_nice_applied(), Some(permitted));
    let normal = [
        Workqueue::builder("normal-percpu").flags(WqFlags::PERCPU).build().unwrap(),
        Workqueue::builder("normal-unbound").flags(WqFlags::UNBOUND).build().unwrap(),
        Workqueue::ordered("normal-ordered").build().unwrap(),
        cmwq::system::percpu().clone(),
        cmwq::system::dfl().clone(),
    ];
    for wq in &normal {
        assert_eq!(nice_inside(wq), base, "{}: a normal item runs at the default priority", wq.name());
    }
    for wq in highpri[..3].iter().chain(&normal[..3]) {
        wq.destroy().unwrap();
    }
}

/// Shortens the idle timeout so that idle pools shrink to zero workers, and puts
/// the old timeout back on drop (also when the test fails), after letting the
/// pools empty once more so that workers made by the test do not outlive it.
struct EmptyPools {
    old: Duration,
}

impl EmptyPools {
    fn new() -> EmptyPools {
        let old = cmwq::idle_timeout();
        cmwq::set_idle_timeout(Duration::from_millis(5));
        EmptyPools { old }
    }

    /// Waits until the pool (per-CPU `Some(cpu)` or unbound `None`) has no worker.
    fn wait_empty(&self, cpu: Option<usize>, highpri: bool) {
        wait_for(&format!("pool {cpu:?}/{highpri} to shrink to zero workers"), || {
            cmwq::debug::pools()
                .iter()
                .find(|p| p.cpu == cpu && p.highpri == highpri)
                .is_none_or(|p| p.workers == 0)
        });
    }
}

impl Drop for EmptyPools {
    fn drop(&mut self) {
        let all_empty = || cmwq::debug::pools().iter().all(|p| p.workers == 0);
        let start = std::time::Instant::now();
        while !all_empty() && start.elapsed() < support::DEADLINE {
            std::thread::sleep(Duration::from_millis(1));
        }
        cmwq::set_idle_timeout(self.old);
    }
}

/// A pool's workers are set up for their pool, not copied from the thread that
/// happened to create the pool's first worker. Normal per-CPU workers run at the
/// default priority (the kernel's normal pools have nice 0) even when the first one
/// is created from a thread with another nice value: a user thread that lowered its
/// priority, or a highpri item.
#[test]
fn normal_workers_do_not_inherit_the_nice_value_of_the_first_queuer() {
    let _s = exclusive();
    let (c0, _) = two_cpus();
    let base = cmwq::debug::thread_nice();
    let pools = EmptyPools::new();
    let wq = Workqueue::builder("nice-inherit").flags(WqFlags::PERCPU).build().unwrap();

    // 1. The first worker is created by a user thread at nice base+7.
    pools.wait_empty(Some(c0), false);
    let from_niced_thread = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            // SAFETY: setpriority on our own tid changes only this thread (raising
            // the nice value is always permitted).
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, base + 7) }, 0);
            let (tx, rx) = std::sync::mpsc::channel();
            let w = Work::new(move |_| tx.send(cmwq::debug::thread_nice()).unwrap());
            assert_eq!(wq.queue_on(c0, &w), Ok(true));
            rx.recv_timeout(support::DEADLINE).unwrap()
        })
        .join()
        .unwrap()
    });

    // 2. The first worker is created by a highpri item (nice -20 where permitted).
    pools.wait_empty(Some(c0), false);
    let hp =
        Workqueue::builder("nice-inherit-highpri").flags(WqFlags::HIGHPRI | WqFlags::PERCPU).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wq2 = wq.clone();
    let outer = Work::new(move |_| {
        let tx = tx.clone();
        let inner = Work::new(move |_| tx.send(cmwq::debug::thread_nice()).unwrap());
        wq2.queue_on(c0, &inner).unwrap();
    });
    assert_eq!(hp.queue_on(c0, &outer), Ok(true));
    let from_highpri_item = rx.recv_timeout(support::DEADLINE).unwrap();
    hp.destroy().unwrap();
    wq.destroy().unwrap();

    assert_eq!(
        (from_niced_thread, from_highpri_item),
        (base, base),
        "normal items must run at nice {base}, whoever created the pool's first worker \
         (first worker created by a nice {} thread; by a highpri worker)",
        base + 7
    );
}

/// Unbound workers are not confined to the CPU of the thread that created the
/// unbound pool's first worker: they may run on every CPU the process may use.
#[test]
fn unbound_workers_are_not_confined_to_the_first_queuers_cpu() {
    let _s = exclusive();
    let (c0, c1) = two_cpus();
    let allowed = cmwq::allowed_cpus();
    let pools = EmptyPools::new();
    let wq = Workqueue::builder("unbound-affinity").flags(WqFlags::UNBOUND).build().unwrap();
    let affinity_inside = || {
        let (tx, rx) = std::sync::mpsc::channel();
        let w = Work::new(move |_| tx.send(thread_affinity()).unwrap());
        assert_eq!(wq.queue(&w), Ok(true));
        rx.recv_timeout(support::DEADLINE).unwrap()
    };

    // 1. First worker created by a user thread pinned to c1.
    pools.wait_empty(None, false);
    let from_pinned_thread = std::thread::scope(|s| {
        s.spawn(|| {
            pin_current_thread(c1);
            affinity_inside()
        })
        .join()
        .unwrap()
    });

    // 2. First worker created by a per-CPU item (its worker is pinned to c0).
    pools.wait_empty(None, false);
    let (tx, rx) = std::sync::mpsc::channel();
    let wq2 = wq.clone();
    let percpu = Workqueue::builder("unbound-affinity-percpu").flags(WqFlags::PERCPU).build().unwrap();
    let outer = Work::new(move |_| {
        let tx = tx.clone();
        let inner = Work::new(move |_| tx.send(thread_affinity()).unwrap());
        wq2.queue(&inner).unwrap();
    });
    assert_eq!(percpu.queue_on(c0, &outer), Ok(true));
    let from_percpu_item = rx.recv_timeout(support::DEADLINE).unwrap();
    percpu.destroy().unwrap();
    wq.destroy().unwrap();

    assert_eq!(
        (from_pinned_thread, from_percpu_item),
        (allowed.clone(), allowed),
        "unbound workers must be allowed on every CPU (first worker created by a thread pinned to \
         CPU {c1}; by a per-CPU item on CPU {c0})"
    );
}

// ---------------------------------------------------------------------------
// System workqueues
// ---------------------------------------------------------------------------

#[test]
fn system_workqueues_run_items() {
    let _s = exclusive();
    let systems = [
        (cmwq::system::percpu(), "events", WqFlags::PERCPU),
        (cmwq::system::highpri(), "events_highpri", WqFlags::PERCPU | WqFlags::HIGHPRI),
        (cmwq::system::long(), "events_long", WqFlags::PERCPU),
        (cmwq::system::dfl(), "events_unbound", WqFlags::UNBOUND),
    ];
    for (wq, name, flags) in systems {
        assert_eq!(wq.name(), name);
        assert_eq!(wq.flags(), flags);
        assert!(!wq.is_ordered());
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let w = Work::new(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(wq.queue(&w), Ok(true), "{name}");
        w.flush().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{name}");
        for cpu in cmwq::allowed_cpus() {
            let seen: Log<Option<usize>> = Log::default();
            let s = seen.clone();
            let w = Work::new(move |_| s.push(cmwq::debug::current_cpu()));
            assert_eq!(wq.queue_on(cpu, &w), Ok(true));
            w.flush().unwrap();
            if !flags.contains(WqFlags::UNBOUND) {
                assert_eq!(seen.snapshot(), vec![Some(cpu)], "{name} on CPU {cpu}");
            }
        }
        wq.spawn(|| {}).unwrap();
        wq.flush().expect("flushing a system workqueue is allowed (with a warning)");

        let e = wq.drain().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::SystemWorkqueue(_)), "{e:?}");
        assert_eq!(e.workqueue(), name);
        assert!(e.to_string().contains(&format!("\"{name}\"")), "{e}");
        let e = wq.destroy().unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::SystemWorkqueue(_)), "{e:?}");
        assert_eq!(e.workqueue(), name);
        // Refused: still usable.
        assert_eq!(wq.queue(&w), Ok(true), "{name} still works after the refused destroy");
        w.flush().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn schedule_work_uses_the_system_percpu_queue() {
    let _s = exclusive();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let runs: Log<Option<String>> = Log::default();
    let (r, g) = (runs.clone(), gate.clone());
    let w = Work::new(move |_| {
        r.push(std::thread::current().name().map(str::to_owned));
        if r.len() == 1 {
            g.wait_blocking();
        }
    });
    assert!(cmwq::schedule_work(&w));
    wait_for("the item to start", || runs.len() == 1);
    assert!(cmwq::schedule_work(&w), "running, not pending: queued again");
    assert!(!cmwq::schedule_work(&w), "pending: false");
    gate.open();
    wait_for("the second run", || runs.len() == 2);
    w.flush().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(cmwq::system::percpu().stats().completed, cmwq::system::percpu().stats().started);

    for cpu in cmwq::allowed_cpus() {
        let seen: Log<Option<usize>> = Log::default();
        let s = seen.clone();
        let w = Work::new(move |_| s.push(cmwq::debug::current_cpu()));
        assert_eq!(cmwq::schedule_work_on(cpu, &w), Ok(true));
        w.flush().unwrap();
        assert_eq!(seen.snapshot(), vec![Some(cpu)]);
    }
}

/// A pool whose workers were refused the nice value its attributes ask for
/// (a process without `CAP_SYS_NICE`, simulated by `fail_next_nice`) reports
/// the nice they run at, the process's own, beside the one wanted, in
/// `debug::pools()` and in the dump's text. It reported the wanted value,
/// whatever its workers ran at.
#[test]
fn a_pool_refused_its_nice_reports_the_nice_its_workers_run_at() {
    let _g = exclusive();
    let base = cmwq::debug::thread_nice();
    let wanted = -7;
    assert_ne!(base, wanted);
    // Every new worker is refused while the test runs: the pool's reserve too.
    cmwq::debug::fail_next_nice(1 << 20);
    let wq = Workqueue::builder("nice-refused")
        .attrs(
            cmwq::Attrs { affinity_scope: cmwq::AffinityScope::System, ..cmwq::Attrs::default() }
                .with_nice(wanted),
        )
        .build()
        .unwrap();
    let inside = nice_inside(&wq);
    let pool = support::unbound_pool_of(&wq);
    let text = cmwq::debug::dump().to_string();
    cmwq::debug::fail_next_nice(0);
    assert_eq!(inside, base, "the worker runs at the process's nice");
    assert_eq!((pool.nice, pool.nice_wanted), (base, wanted), "{pool:?}");
    assert!(text.contains(&format!("nice={base} (wanted {wanted})")), "{text}");
    wq.destroy().unwrap();
}
