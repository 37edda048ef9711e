//! The stall watchdog (`cmwq::watchdog`, the kernel's `wq_watchdog_timer_fn`):
//! a pool with work waiting and no progress for the threshold is reported
//! once, with what runs and what waits, and the end of the stall too; it runs
//! by the process timer clock, so these tests move time with
//! `timer::pause`/`advance` instead of waiting 30 s; and it makes no wake-ups
//! while every pool is idle.
//!
//! The stall is the one the kernel's watchdog exists for: items that wait on
//! each other while no new worker can be made. Five per-CPU queues on one
//! CPU, each item waiting (announced, inside `cmwq::blocking`) for the next
//! one, queued on the next queue (the chain of `Documentation/core-api/workqueue.rst`
//! that needs `WQ_MEM_RECLAIM`), with thread creation refused throughout by
//! the worker ceiling: the items beyond the pool's workers never start.
#![cfg(feature = "tracing")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{timer, watchdog, AffinityScope, Attrs, Work, Workqueue, WqFlags};
use support::traces::{captured, Ev};
use support::{cpu0, exclusive, wait_for, Gate};

const THRESH: Duration = Duration::from_secs(30);
const INTERVAL: Duration = Duration::from_millis(7_500);

// ---- the watchdog's events, from the binary's capturing subscriber ----

/// Starts a test's capture (installing the subscriber on first use): earlier
/// events are forgotten.
fn capture() {
    captured().lock().unwrap().clear();
}

/// The watchdog's reports since [`capture`].
fn events() -> Vec<Ev> {
    captured().lock().unwrap().iter().filter(|e| e.message().contains("workqueue lockup")).cloned().collect()
}

// ---- the stall ----

/// The thread ceiling is held at 1 (creation refused everywhere) until dropped.
struct NoNewThreads(usize);

impl NoNewThreads {
    fn hold() -> NoNewThreads {
        let old = cmwq::max_workers();
        cmwq::set_max_workers(1);
        NoNewThreads(old)
    }
}

impl Drop for NoNewThreads {
    fn drop(&mut self) {
        cmwq::set_max_workers(self.0);
    }
}

/// Lets every pool shrink to zero workers: idle workers left by an earlier test
/// (a pool keeps its reserve after a refusal) would run the items a stall needs
/// to keep waiting. BH pools are left out: their one context never exits, and
/// runs no item of these queues.
fn shrink_pools() {
    let old = cmwq::idle_timeout();
    cmwq::set_idle_timeout(Duration::from_millis(5));
    let shrunk = support::poll_until(support::DEADLINE, || {
        cmwq::debug::pools().iter().filter(|p| !p.bh).all(|p| p.workers == 0)
    });
    // What kept a pool from shrinking, should one not: the pools that still have
    // workers, and the whole state.
    assert!(
        shrunk,
        "timed out after {:?} waiting for every pool to shrink to zero workers: {:#?}\n{}",
        support::DEADLINE,
        cmwq::debug::pools().into_iter().filter(|p| !p.bh && p.workers > 0).collect::<Vec<_>>(),
        cmwq::debug::dump()
    );
    cmwq::set_idle_timeout(old);
}

/// Items on per-CPU queues of one CPU, each waiting on a gate; see the module docs.
struct Stall {
    wqs: Vec<Workqueue>,
    gates: Vec<Gate>,
    works: Vec<Work>,
    started: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    cpu: usize,
    pool_id: u32,
}

impl Stall {
    /// `n` items, one per queue `{prefix}-{i}`. `chain`: item i waits until
    /// item i+1 has run (the last one waits for nobody); otherwise each waits
    /// for its own gate, opened by the test. The pool is warmed up first, then
    /// thread creation is refused (`_ceiling`) before the items are queued.
    fn new(prefix: &str, n: usize, chain: bool) -> Stall {
        Stall::on(prefix, n, chain, |name| Workqueue::builder(name).flags(WqFlags::PERCPU).build().unwrap())
    }

    /// As [`new`](Stall::new), on queues that `build` makes (all of one pool).
    fn on(prefix: &str, n: usize, chain: bool, build: impl Fn(String) -> Workqueue) -> Stall {
        let cpu = cpu0();
        shrink_pools();
        let wqs: Vec<Workqueue> = (0..n).map(|i| build(format!("{prefix}-{i}"))).collect();
        for wq in &wqs {
            let w = Work::new(|_| {});
            wq.queue_on(cpu, &w).unwrap();
            w.flush().unwrap();
        }
        let pool_id = if wqs[0].flags().contains(WqFlags::PERCPU) {
            cmwq::debug::pools().into_iter().find(|p| p.cpu == Some(cpu) && !p.highpri).expect("its pool").id
        } else {
            support::unbound_pool_of(&wqs[0]).id
        };
        let gates: Vec<Gate> = (0..n).map(|_| Gate::new()).collect();
        let started = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let works = (0..n)
            .map(|i| {
                let (gates, started, done) = (gates.clone(), started.clone(), done.clone());
                Work::new(move |_| {
                    started.fetch_add(1, Ordering::SeqCst);
                    if !chain || i + 1 < n {
                        gates[i].wait_blocking();
                    }
                    if chain && i > 0 {
                        gates[i - 1].open();
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        Stall { wqs, gates, works, started, done, cpu, pool_id }
    }

    fn queue_all(&self) {
        for (wq, w) in self.wqs.iter().zip(&self.works) {
            assert!(wq.queue_on(self.cpu, w).unwrap());
        }
    }

    /// The pool of the stall's queues.
    fn pool(&self) -> cmwq::debug::PoolSnapshot {
        support::pool_by_id(self.pool_id).expect("its pool")
    }

    /// Waits until every worker of the pool waits inside an item and items wait behind them.
    fn wait_stuck(&self) {
        wait_for("the pool to be stuck", || {
            let p = self.pool();
            p.pending > 0
                && p.running == 0
                && p.busy == p.workers
                && self.started.load(Ordering::SeqCst) == p.busy
        });
    }

    /// Opens every gate and waits until every item ran.
    fn release(&self) {
        for g in &self.gates {
            g.open();
        }
        for w in &self.works {
            w.flush().unwrap();
        }
        assert_eq!(self.done.load(Ordering::SeqCst), self.works.len());
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        for g in &self.gates {
            g.open();
        }
    }
}

/// Advances the paused clock by one check interval.
fn step() {
    assert!(timer::advance(INTERVAL).is_some(), "the clock is paused");
}

// ---- the tests ----

#[test]
fn a_stall_is_reported_once_with_its_fields_then_its_end() {
    let _x = exclusive();
    capture();
    timer::pause();
    watchdog::set_thresh(THRESH).unwrap();
    let before = watchdog::stalls();
    let stall = Stall::new("wd-chain", 5, true);
    let ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();

    // Never before the threshold: the first check sees the work (7.5 s), and
    // 22.5 s later nothing is reported yet.
    for _ in 0..4 {
        step();
        assert_eq!(watchdog::stalls(), before, "reported before the threshold passed");
    }
    // Within the threshold plus one check interval of the stall's start.
    step();
    assert_eq!(watchdog::stalls(), before + 1, "not reported within threshold + one check interval");
    // Once per stall.
    for _ in 0..12 {
        step();
    }
    assert_eq!(watchdog::stalls(), before + 1, "reported twice");

    let ev = events();
    let reports: Vec<&Ev> = ev.iter().filter(|e| e.message().starts_with("BUG: workqueue lockup")).collect();
    assert_eq!(reports.len(), 1, "{ev:?}");
    let r = reports[0];
    let text = r.message();
    println!("{text}");
    if let Ok(path) = std::env::var("CMWQ_WATCHDOG_REPORT_FILE") {
        std::fs::write(path, format!("{text}\n")).unwrap();
    }
    assert_eq!(r.level, tracing::Level::ERROR);
    let p = stall.pool();
    assert_eq!(r.get("pool"), Some(stall.cpu.to_string().as_str()));
    assert_eq!(r.get("cpus"), Some(stall.cpu.to_string().as_str()));
    assert!(r.get("stuck_ms").unwrap().parse::<u64>().unwrap() >= 30_000, "{r:?}");
    assert_eq!(r.get("in_flight"), Some(p.busy.to_string().as_str()), "{r:?}");
    assert_eq!(r.get("pending"), Some(p.pending.to_string().as_str()), "{r:?}");
    assert!(text.contains(&format!("pool {} (cpu {}, nice", p.id, stall.cpu)), "{text}");
    assert!(text.contains("stuck for 30s!"), "{text}");
    assert!(text.contains("runs \"wd-chain-0\" for >=30s"), "{text}");
    assert!(text.contains("\"wd-chain-4\" 1"), "{text}");

    // The end of the stall: items start again once the gates open.
    drop(ceiling);
    stall.release();
    step();
    let ev = events();
    let over: Vec<&Ev> = ev.iter().filter(|e| e.message().starts_with("workqueue lockup over")).collect();
    assert_eq!(over.len(), 1, "{ev:?}");
    assert_eq!(over[0].level, tracing::Level::WARN);
    assert!(over[0].message().contains(&format!("pool {} (cpu {}", p.id, stall.cpu)), "{over:?}");
    println!("{}", over[0].message());
    if let Ok(path) = std::env::var("CMWQ_WATCHDOG_REPORT_FILE") {
        std::fs::write(path, format!("{text}\n{}\n", over[0].message())).unwrap();
    }
    assert_eq!(watchdog::stalls(), before + 1);
    timer::resume();
}

/// An unbound pool's report names its pod.
#[test]
fn an_unbound_pool_is_reported_with_its_pod() {
    let _x = exclusive();
    capture();
    timer::pause();
    watchdog::set_thresh(THRESH).unwrap();
    let before = watchdog::stalls();
    let attrs = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default() };
    let stall = Stall::on("wd-unbound", 5, true, |name| {
        Workqueue::builder(name).attrs(attrs.clone()).build().unwrap()
    });
    let ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();
    for _ in 0..5 {
        step();
    }
    assert_eq!(watchdog::stalls(), before + 1);
    let p = stall.pool();
    let pod = p.pod.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",").replace("0,1,2,3", "0-3");
    let ev = events();
    let r = ev.iter().find(|e| e.message().starts_with("BUG: workqueue lockup")).expect("a report");
    assert_eq!(r.get("pool"), Some(format!("u{}", p.id).as_str()), "{r:?}");
    if p.pod.len() <= 2 {
        assert_eq!(r.get("cpus"), Some(pod.as_str()), "{r:?}");
    }
    println!("{}", r.message());
    assert!(r.message().contains(&format!("pool {} (unbound, pod cpus ", p.id)), "{r:?}");
    assert!(r.message().contains("runs \"wd-unbound-0\""), "{r:?}");
    drop(ceiling);
    stall.release();
    timer::resume();
}

#[test]
fn no_report_while_the_pool_makes_progress() {
    let _x = exclusive();
    timer::pause();
    watchdog::set_thresh(THRESH).unwrap();
    let before = watchdog::stalls();
    let n = 16;
    let stall = Stall::new("wd-progress", n, false);
    let ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();
    // Work waits at every check for 75 s, two and a half thresholds, but an
    // item starts between any two checks.
    for k in 0..10 {
        assert!(stall.pool().pending > 0, "work waits at every check");
        stall.gates[k].open();
        wait_for("the next item to start", || {
            stall.done.load(Ordering::SeqCst) == k + 1
                && stall.started.load(Ordering::SeqCst) >= (k + 2).min(n)
        });
        step();
    }
    assert_eq!(watchdog::stalls(), before, "a pool making progress was reported");
    drop(ceiling);
    stall.release();
    timer::resume();
}

#[test]
fn zero_turns_it_off_and_a_new_threshold_starts_over() {
    let _x = exclusive();
    timer::pause();
    watchdog::set_thresh(Duration::ZERO).unwrap();
    assert_eq!(watchdog::thresh(), Duration::ZERO);
    let before = watchdog::stalls();
    let stall = Stall::new("wd-off", 5, true);
    let ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();
    let checks = watchdog::checks();
    for _ in 0..20 {
        step();
    }
    assert_eq!(watchdog::stalls(), before, "reported while off");
    assert_eq!(watchdog::checks(), checks, "checked while off");

    // On again: the stall counts from now.
    watchdog::set_thresh(THRESH).unwrap();
    for _ in 0..3 {
        step();
        assert_eq!(watchdog::stalls(), before);
    }
    step();
    assert_eq!(watchdog::stalls(), before + 1, "not reported within threshold + one check interval");
    drop(ceiling);
    stall.release();
    timer::resume();
}

#[test]
fn touch_counts_the_threshold_again() {
    let _x = exclusive();
    timer::pause();
    watchdog::set_thresh(THRESH).unwrap();
    let before = watchdog::stalls();
    let stall = Stall::new("wd-touch", 5, true);
    let ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();
    for _ in 0..3 {
        step();
    }
    watchdog::touch(); // as if everything had made progress now
    for _ in 0..4 {
        step();
        assert_eq!(watchdog::stalls(), before, "reported within the threshold of a touch");
    }
    step();
    assert_eq!(watchdog::stalls(), before + 1);
    drop(ceiling);
    stall.release();
    timer::resume();
}

#[test]
fn a_threshold_beyond_a_day_is_refused() {
    let _x = exclusive();
    watchdog::set_thresh(THRESH).unwrap();
    for bad in
        [Duration::from_secs(86_400) + Duration::from_nanos(1), Duration::from_secs(86_401), Duration::MAX]
    {
        let err = watchdog::set_thresh(bad).unwrap_err();
        assert_eq!(err.requested(), bad);
        assert_eq!(watchdog::InvalidThresh::max(), Duration::from_secs(86_400));
        assert!(err.to_string().contains("beyond the limit of 86400s"), "{err}");
        assert_eq!(watchdog::thresh(), THRESH, "a refused threshold changed it");
    }
    watchdog::set_thresh(Duration::from_secs(86_400)).unwrap();
    assert_eq!(watchdog::thresh(), Duration::from_secs(86_400));
    watchdog::set_thresh(THRESH).unwrap();
}

/// No check while every pool is idle: the watchdog parks with no timeout, and
/// the first item queued wakes it. Runs on the real clock with a 40 ms
/// threshold (a check every 10 ms while it runs).
#[test]
fn an_idle_process_costs_no_wakeups() {
    let _x = exclusive();
    timer::resume();
    watchdog::set_thresh(Duration::from_millis(40)).unwrap();
    let wq = Workqueue::builder("wd-idle").flags(WqFlags::PERCPU).build().unwrap();
    let w = Work::new(|_| {});
    wq.queue_on(cpu0(), &w).unwrap();
    w.flush().unwrap();
    // Parked once a check found every worklist empty.
    wait_for("the watchdog to park", || {
        let c = watchdog::checks();
        std::thread::sleep(Duration::from_millis(100));
        watchdog::checks() == c
    });
    let c = watchdog::checks();
    std::thread::sleep(Duration::from_millis(500)); // 50 check intervals
    assert_eq!(watchdog::checks(), c, "the watchdog checked while every pool was idle");

    // Work waiting wakes it, and it checks while work waits.
    let stall = Stall::new("wd-wake", 5, true);
    let ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();
    wait_for("checks while work waits", || watchdog::checks() >= c + 3);
    drop(ceiling);
    stall.release();
    wait_for("the watchdog to park again", || {
        let c = watchdog::checks();
        std::thread::sleep(Duration::from_millis(100));
        watchdog::checks() == c
    });
    watchdog::set_thresh(THRESH).unwrap();
}

/// `set_panic_on_stall(1)`: the first stall report aborts the process, after
/// writing the report to stderr. Runs in a child process (this test binary,
/// re-executed).
#[test]
fn panic_on_stall_aborts_the_process() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os("CMWQ_WD_CHILD").is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "panic_on_stall_child", "--nocapture", "--test-threads=1"])
        .env("CMWQ_WD_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}\n{stderr}", out.status);
    assert!(stderr.contains("BUG: workqueue lockup"), "{stderr}");
    assert!(stderr.contains("1 workqueue stalls (panic_on_stall=1): aborting"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("child survived"));
}

#[test]
fn panic_on_stall_child() {
    if std::env::var_os("CMWQ_WD_CHILD").is_none() {
        return;
    }
    timer::pause();
    watchdog::set_thresh(THRESH).unwrap();
    watchdog::set_panic_on_stall(1);
    let stall = Stall::new("wd-abort", 5, true);
    let _ceiling = NoNewThreads::hold();
    stall.queue_all();
    stall.wait_stuck();
    for _ in 0..5 {
        step();
    }
    println!("child survived");
}

/// `CMWQ_WATCHDOG_THRESH`: whole seconds, 0 for off; a bad value keeps the default.
#[test]
fn the_threshold_comes_from_the_environment() {
    if std::env::var_os("CMWQ_WD_CHILD").is_some() {
        return;
    }
    for (value, expect) in [("7", 7), ("0", 0), ("a while", 30), ("86401", 30)] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "env_child", "--nocapture", "--test-threads=1"])
            .env("CMWQ_WD_CHILD", "1")
            .env("CMWQ_WATCHDOG_THRESH", value)
            .env("CMWQ_WD_EXPECT", expect.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "CMWQ_WATCHDOG_THRESH={value}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("env checked"), "the child test did not run");
    }
}

#[test]
fn env_child() {
    let Some(expect) = std::env::var_os("CMWQ_WD_EXPECT") else { return };
    let expect: u64 = expect.to_str().unwrap().parse().unwrap();
    assert_eq!(watchdog::thresh(), Duration::from_secs(expect));
    println!("env checked");
}
