//! The idle sentinels (issue 4, `monitor/sentinel.rs`): a `SCHED_IDLE` thread per
//! CPU runs when a saturated pool's CPU goes idle, which is the moment its running
//! worker blocked, and takes that worker out of concurrency management.
//!
//! This binary switches the monitor's own tick detection off
//! (`debug::monitor_ticks_detect_blocks(false)`), so whatever lets the item behind
//! a plain sleeper start can only be a sentinel. It is a binary of its own because
//! that switch is process-wide. Assertions are event orders and counts; every
//! wait is bounded (a deadline only turns a hang into a failure).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, Work, Workqueue};
use support::{
    assert_pools_settle, assert_second_ran_while_first_blocked, burn_cpu, cpu0, current_unbound_pool,
    distinct_cpus, exclusive, pin_current_thread, plain_sleeper_then_second, plain_sleeper_with_one_behind,
    poll_until, stacked_spinners, unbound_pool_of, warm_queue, yields_come_straight_back, Bounded,
    BoundedQueue, Exclusive, Log, DEADLINE,
};

/// Takes the pool lock (which also turns the CPU-intensive rule off) and switches
/// the monitor's tick detection off.
fn sentinels_only() -> Exclusive {
    let g = exclusive();
    cmwq::debug::monitor_ticks_detect_blocks(false);
    g
}

/// The sentinel thread of `cpu`: its tid, if it exists.
fn sentinel_tid(cpu: usize) -> Option<String> {
    let want = format!("cmwq/sentinel{cpu}");
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        (comm.trim() == want).then(|| t.file_name().to_string_lossy().into_owned())
    })
}

/// Whether `/proc` is missing (the test that needs it is skipped, and says so).
fn no_proc() -> bool {
    let missing = std::fs::metadata("/proc/self/task").is_err();
    if missing {
        eprintln!("skipped: needs /proc");
    }
    missing
}

/// CPU time (ns) the thread `tid` has used (`schedstat` field 1).
fn cpu_ns(tid: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// A queue whose items all go to one unbound pool (one pod of every allowed
/// CPU), and that pool's id, once an earlier test's workers have settled there,
/// so that nothing counted is left over to hide a mark.
fn one_pod_queue(name: &str) -> (Workqueue, u32) {
    let attrs = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default() };
    let wq = Workqueue::builder(name).attrs(attrs).build().unwrap();
    let id = unbound_pool_of(&wq).id;
    assert_pools_settle("before", &[id]);
    (wq, id)
}

/// Since `before`, only the sentinels took workers out (the monitor's ticks look
/// for no blocks here). Then the pool settles, counting nobody, and `wq` goes.
fn assert_only_sentinels_judged(before: &cmwq::debug::MonitorStats, id: u32, wq: Workqueue) {
    let after = cmwq::debug::monitor();
    assert_eq!(
        after.blocked - before.blocked,
        after.by_sentinel - before.by_sentinel,
        "only sentinels judged: {after:?}"
    );
    assert_pools_settle("after the sentinel's marks", &[id]);
    wq.destroy_bounded().unwrap();
}

#[test]
fn a_plain_sleeper_is_taken_out_by_the_sentinel_alone() {
    let _s = sentinels_only();
    if no_proc() {
        return;
    }
    let before = cmwq::debug::monitor();
    let log = plain_sleeper_then_second("sentinel-sleep");
    assert_second_ran_while_first_blocked(&log, "w1 wake");
    let after = cmwq::debug::monitor();
    assert!(after.by_sentinel > before.by_sentinel, "no sentinel verdict: {after:?}");
    assert_eq!(
        after.blocked - before.blocked,
        after.by_sentinel - before.by_sentinel,
        "only sentinels judged"
    );
    assert!(after.sentinels >= 1);
}

/// The monitor adopts a sentinel's mark: the pool's accounting is exact again
/// once the blocked workers have run again and finished.
#[test]
fn accounting_is_exact_after_sentinel_marks() {
    let _s = sentinels_only();
    let wq = warm_queue("sentinel-exact");
    support::assert_exact_after_plain_sleepers(&wq, Duration::from_millis(2));
    wq.destroy_bounded().unwrap();
}

/// Once nothing is saturated the sentinel parks: it uses no CPU while idle.
#[test]
fn an_idle_sentinel_costs_nothing() {
    let _s = sentinels_only();
    if no_proc() {
        return;
    }
    // Make sure the sentinel of cpu0 exists: a plain sleeper with an item behind it.
    let wq = warm_queue("sentinel-idle");
    plain_sleeper_with_one_behind(&wq, cpu0());
    let tid = sentinel_tid(cpu0()).expect("the sentinel of cpu0 exists");
    // Idle now. Parked, its CPU time stops moving; spinning, it would take the
    // idle CPU (about 100 ms of it here).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let a = cpu_ns(&tid);
        std::thread::sleep(Duration::from_millis(100));
        let b = cpu_ns(&tid);
        if a == b {
            break;
        }
        assert!(Instant::now() < deadline, "the sentinel kept running while idle: {} ns in 100 ms", b - a);
    }
    wq.destroy_bounded().unwrap();
}

/// The kernel restarts an item's CPU-hog measure each time its worker wakes from
/// a sleep. An item of many short sleeps, whose total CPU passes the threshold
/// but whose on-CPU stretches stay far below it, is not a hog, even when nobody
/// catches the sleeps themselves: here the monitor's ticks do not look for
/// blocks, and the sleeps are shorter than the stall window with one idle worker,
/// so the sentinel waits them out instead of marking the worker.
#[test]
fn many_short_sleeps_do_not_add_up_to_a_cpu_hog() {
    let _s = sentinels_only();
    // The rule under test: the default threshold (the pool lock turned it off).
    cmwq::set_cpu_intensive_thresh(Duration::from_millis(10));
    let wq = warm_queue("sentinel-nohog");
    // Let the pool's memory of long blocks (earlier tests) lapse, and make the stall
    // window long, so the sentinel waits the sleeps out and never marks the worker.
    std::thread::sleep(Duration::from_millis(150));
    cmwq::set_stall_window(Duration::from_secs(10));
    // 400 stretches of 50 µs with ~100 µs sleeps between: 20 ms of CPU in one item,
    // against the 10 ms threshold, on the CPU a third of the time.
    let sleepy = Work::new(move |_| {
        for _ in 0..400 {
            burn_cpu(Duration::from_micros(50));
            std::thread::sleep(Duration::from_micros(60));
        }
    });
    // Queued behind it, so that its pool is saturated and watched throughout.
    let behind = Work::new(|_| {});
    assert!(wq.queue_on(cpu0(), &sleepy).unwrap());
    assert!(wq.queue_on(cpu0(), &behind).unwrap());
    sleepy.flush_bounded().unwrap();
    wq.flush_bounded().unwrap();
    cmwq::set_stall_window(Duration::from_micros(200));
    assert_eq!(wq.stats().cpu_intensive, 0, "an item of 50 µs stretches was called a CPU hog");
    wq.destroy_bounded().unwrap();
}

/// The sentinels watch unbound pools too (`Registry::try_unbound_pools_of`): on
/// a queue whose one pod spans every allowed CPU, an item per CPU sleeps in
/// plain `std::thread::sleep` until the item queued behind them has run. That
/// item can only start once a sentinel has taken a sleeper out of the pool's
/// `nr_running` (the monitor's ticks look for no blocks here). The sleepers then
/// burn a little, running again while marked, and afterwards the pool counts
/// nobody running or busy: the monitor adopted the sentinel's marks and every
/// count was given back once.
#[test]
fn the_sentinels_cover_an_unbound_pod() {
    let _s = sentinels_only();
    if no_proc() {
        return;
    }
    let n = cmwq::allowed_cpus().len();
    let (wq, id) = one_pod_queue("sentinel-unbound");

    let released = Arc::new(AtomicBool::new(false));
    let woken = Arc::new(AtomicUsize::new(0));
    let log = Log::new();
    let deadline = Instant::now() + DEADLINE;
    let sleepers: Vec<Work> = (0..n)
        .map(|i| {
            let (released, woken, log) = (released.clone(), woken.clone(), log.clone());
            Work::new(move |_| {
                assert_eq!(current_unbound_pool(), Some(id), "one pod, one pool");
                log.push(format!("sleeper {i} start"));
                while !released.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        log.push(format!("sleeper {i} timed out"));
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                woken.fetch_add(1, Ordering::SeqCst);
                // Runs again, still marked: the count comes back once, whether
                // the monitor gives it back now or the item's end does.
                burn_cpu(Duration::from_millis(5));
            })
        })
        .collect();
    let before = cmwq::debug::monitor();
    for w in &sleepers {
        assert!(wq.queue(w).unwrap());
    }
    let (r, l) = (released.clone(), log.clone());
    let behind = Work::new(move |_| {
        l.push("behind start");
        r.store(true, Ordering::SeqCst);
    });
    assert!(wq.queue(&behind).unwrap());
    let ran = poll_until(DEADLINE, || released.load(Ordering::SeqCst));
    assert!(
        ran,
        "the item behind {n} plain sleepers never ran: no sentinel took one out: {:?}; log: {:?}",
        cmwq::debug::monitor(),
        log.snapshot()
    );
    wq.flush_bounded().unwrap();
    assert_eq!(
        woken.load(Ordering::SeqCst),
        n,
        "the item behind {n} plain sleepers did not run while they slept: {:?}",
        log.snapshot()
    );
    for i in 0..n {
        log.assert_before(&format!("sleeper {i} start"), "behind start");
    }
    let after = cmwq::debug::monitor();
    assert!(after.by_sentinel > before.by_sentinel, "no sentinel took a sleeper out: {after:?}");
    assert_only_sentinels_judged(&before, id, wq);
}

/// A worker that has not blocked but waits for a CPU, queued behind another
/// thread on a busy CPU of its pod while a CPU of that pod idles, is taken out
/// too (`MonitorStats::waiting`). The kernel's balancer does not move it in
/// time: a CPU running its `SCHED_IDLE` sentinel does not balance as a newly
/// idle one, and a task that ran in the last half millisecond counts as
/// cache-hot. Here one item per CPU pins its own worker to cpu0 and spins there
/// until the item queued behind them has run: one spinner runs at a time, the
/// other waits, and the other CPUs idle. Nobody blocks, so the item behind can
/// only start once the sentinel of an idle CPU has taken a waiting spinner out
/// of the pool's `nr_running`. The spinners give their workers their affinity
/// back before they end.
#[test]
fn a_worker_waiting_for_a_busy_cpu_is_taken_out_by_the_sentinel() {
    let _s = sentinels_only();
    if no_proc() {
        return;
    }
    let Some((c0, c1)) = distinct_cpus() else { return };
    // The rule holds only while a CPU of the pod idles (the sentinel checks that
    // its yields come straight back): with every CPU busy (CPU hogs beside the
    // suite) nothing may start, and the test has nothing to show.
    if !yields_come_straight_back(c1) {
        eprintln!("skipped: cpu{c1} is busy with other threads");
        return;
    }
    let n = cmwq::allowed_cpus().len();
    let (wq, id) = one_pod_queue("sentinel-waiting");

    let released = Arc::new(AtomicBool::new(false));
    let log = Log::new();
    let deadline = Instant::now() + DEADLINE;
    let l = log.clone();
    let (spinners, timed_out) =
        stacked_spinners(c0, n, &released, deadline, move |i| l.push(format!("spinner {i} start")));
    let before = cmwq::debug::monitor();
    for w in &spinners {
        assert!(wq.queue(w).unwrap());
    }
    // Every spinner on the CPU (a worker woken for one may itself wait behind
    // the other for a while, and be taken out for that already).
    let all_started =
        poll_until(DEADLINE, || log.snapshot().iter().filter(|l| l.ends_with(" start")).count() == n);
    assert!(all_started, "not every spinner started: {:?}", log.snapshot());
    let (r, l) = (released.clone(), log.clone());
    let behind = Work::new(move |_| {
        l.push("behind start");
        r.store(true, Ordering::SeqCst);
    });
    assert!(wq.queue(&behind).unwrap());
    let ran = poll_until(DEADLINE, || released.load(Ordering::SeqCst));
    assert!(
        ran,
        "the item behind {n} spinners stacked on cpu{c0} never ran: {:?}; log: {:?}",
        cmwq::debug::monitor(),
        log.snapshot()
    );
    wq.flush_bounded().unwrap();
    for i in 0..n {
        log.assert_before(&format!("spinner {i} start"), "behind start");
    }
    assert_eq!(timed_out.load(Ordering::SeqCst), 0, "a spinner timed out: {:?}", log.snapshot());
    let after = cmwq::debug::monitor();
    assert!(after.waiting > before.waiting, "no sentinel took a waiting worker out: {after:?}");
    assert_only_sentinels_judged(&before, id, wq);
}

/// The other side of the rule above: a worker that waits for its own CPU, busy
/// with another thread, is not stalled. A `SCHED_IDLE` sentinel still gets a
/// sliver of a busy CPU, and then sees the pool's worker runnable and off the
/// CPU; it must not take it out, or a CPU-bound pool would start a second item
/// on a CPU that has none to spare. A thread of the test spins on cpu0 beside
/// CPU-bound items queued there (a per-CPU pool: its worker waits behind the
/// spinner for its turn): nobody is taken out.
#[test]
fn a_worker_waiting_for_its_own_busy_cpu_is_left_alone() {
    let _s = sentinels_only();
    if no_proc() {
        return;
    }
    let c0 = cpu0();
    let wq = warm_queue("sentinel-own-cpu");
    let stop = Arc::new(AtomicBool::new(false));
    let hog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            pin_current_thread(c0);
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    let before = cmwq::debug::monitor();
    let items: Vec<Work> = (0..40).map(|_| Work::new(|_| burn_cpu(Duration::from_millis(5)))).collect();
    for w in &items {
        assert!(wq.queue_on(c0, w).unwrap());
    }
    wq.flush_bounded().unwrap();
    stop.store(true, Ordering::Relaxed);
    support::join_bounded(hog);
    let after = cmwq::debug::monitor();
    assert_eq!(
        after.waiting, before.waiting,
        "a worker waiting behind a busy CPU's own thread was taken out: {after:?}"
    );
    assert_eq!(after.blocked, before.blocked, "a CPU-bound worker was taken out: {after:?}");
    wq.destroy_bounded().unwrap();
}
