//! The kernel documentation's "Example Execution Scenarios"
//! (`Documentation/core-api/workqueue.rst`, repeated in the crate docs) as event
//! orderings. w0, w1 and w2 are queued on one CPU in that order. "Burn" is running
//! without blocking; "sleep" is blocking in `cmwq::blocking` on a gate that the test
//! opens, and the test logs when it opens one, so the log is a total order of
//! everything that matters.
//!
//! The documented timeline (max_active >= 3): w0 burns, sleeps; w1 starts and
//! burns, sleeps; w2 starts and burns, sleeps; then they wake and finish. With a
//! single worker they run back to back; with max_active 2, w2 starts only when w0
//! finishes; with w1 and w2 CPU_INTENSIVE they start together when w0 sleeps.
//!
//! The sleep monitor is off in this binary ([`hints_only`], first in every test,
//! before any worker exists): the scenarios are about `cmwq::blocking`, and the
//! monitor would find an item blocked on a gate by itself and start the next one
//! even with the hint broken. The scenarios in which a sleep starts the next item
//! check at their end that the monitor took nobody out.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{Work, Workqueue, WqFlags};
use support::{
    assert_monitor_blocked_nobody, burn, cpu0, exclusive, hints_only, poll_until, pool_of, settle_pool,
    spin_until, Bounded, BoundedQueue, Gate, Log, DEADLINE, SETTLE,
};

const BURN: Duration = Duration::from_millis(5);

/// How an item burns before it sleeps.
type Burner = Arc<dyn Fn() + Send + Sync>;

fn plain_burn() -> Burner {
    Arc::new(|| burn(BURN))
}

/// `<n> start`, burn, `<n> sleep`, block on `gate`, `<n> wake`, burn (`after`),
/// `<n> end`.
fn item(log: &Log, gate: &Gate, n: &str, before: Burner, after: bool) -> Work {
    let (log, gate, n) = (log.clone(), gate.clone(), n.to_string());
    Work::new(move |_| {
        log.push(format!("{n} start"));
        before();
        log.push(format!("{n} sleep"));
        let opened = gate.wait_blocking();
        log.push(format!("{n} wake{}", if opened { "" } else { " (gate timed out)" }));
        if after {
            burn(BURN);
        }
        log.push(format!("{n} end"));
    })
}

struct Scenario {
    log: Log,
    gates: [Gate; 3],
    items: [Work; 3],
}

impl Scenario {
    /// w0 burns, sleeps, burns; w1 and w2 burn and sleep. `w1_burn` makes w1's burn,
    /// given the log.
    fn new(w1_burn: impl FnOnce(&Log) -> Burner) -> Scenario {
        let log = Log::new();
        let w1_burn = w1_burn(&log);
        let gates = [Gate::new(), Gate::new(), Gate::new()];
        let items = [
            item(&log, &gates[0], "w0", plain_burn(), true),
            item(&log, &gates[1], "w1", w1_burn, false),
            item(&log, &gates[2], "w2", plain_burn(), false),
        ];
        Scenario { log, gates, items }
    }

    fn open(&self, i: usize) {
        self.log.push(format!("open{i}"));
        self.gates[i].open();
    }

    /// Asserts that `e` does not happen within [`SETTLE`]: a wrong implementation
    /// gets that long to show itself; a right one never logs it while the gates
    /// that precede it are closed.
    fn assert_not_yet(&self, e: &str) {
        assert!(!self.log.wait_for(e, SETTLE), "{e:?} too early; log: {:?}", self.log.snapshot());
    }

    fn finish(&self) {
        for i in 0..3 {
            if !self.gates[i].is_open() {
                self.open(i);
            }
        }
        for w in &self.items {
            w.flush_bounded().unwrap();
        }
    }
}

/// Holds CPU `c` with a burning item of another queue, so that w0, w1 and w2 are
/// all queued before any of them starts (the documentation's "queued at time 0").
/// The holder's worker then takes w0 itself, as the next item on the worklist.
struct Hold {
    wq: Workqueue,
    w: Work,
    release: Arc<AtomicBool>,
}

impl Hold {
    fn new(c: usize) -> Hold {
        let wq = Workqueue::builder("scn-hold").flags(WqFlags::PERCPU).build().unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let w = {
            let (release, started) = (release.clone(), started.clone());
            Work::new(move |_| {
                started.store(true, Ordering::SeqCst);
                spin_until(DEADLINE, || release.load(Ordering::SeqCst));
            })
        };
        assert_eq!(wq.queue_on(c, &w), Ok(true));
        assert!(poll_until(DEADLINE, || started.load(Ordering::SeqCst)), "the holder never started");
        Hold { wq, w, release }
    }

    fn release(self) {
        self.release.store(true, Ordering::SeqCst);
        self.w.flush_bounded().unwrap();
        self.wq.destroy_bounded().unwrap();
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// (a) The original single-worker workqueue, here a per-CPU queue with
/// max_active 1: strictly one after the other.
#[test]
fn scenario_single_worker_runs_back_to_back() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("scn-single").flags(WqFlags::PERCPU).max_active(1).build().unwrap();
    let s = Scenario::new(|_| plain_burn());
    let hold = Hold::new(c);
    for w in &s.items {
        assert_eq!(wq.queue_on(c, w), Ok(true));
    }
    hold.release();
    s.log.expect("w0 sleep");
    s.assert_not_yet("w1 start");
    s.open(0);
    s.log.expect("w1 sleep");
    s.assert_not_yet("w2 start");
    s.open(1);
    s.log.expect("w2 sleep");
    s.open(2);
    s.finish();
    assert_eq!(
        s.log.snapshot(),
        strs(&[
            "w0 start", "w0 sleep", "open0", "w0 wake", "w0 end", //
            "w1 start", "w1 sleep", "open1", "w1 wake", "w1 end", //
            "w2 start", "w2 sleep", "open2", "w2 wake", "w2 end",
        ])
    );
    wq.destroy_bounded().unwrap();
}

/// (b) cmwq with max_active >= 3: each sleep lets the next item start, so all three
/// sleep at once; no item starts while another burns.
#[test]
fn scenario_cmwq_starts_the_next_item_when_one_sleeps() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("scn-cmwq").flags(WqFlags::PERCPU).max_active(3).build().unwrap();
    let s = Scenario::new(|_| plain_burn());
    let hold = Hold::new(c);
    for w in &s.items {
        assert_eq!(wq.queue_on(c, w), Ok(true));
    }
    hold.release();
    s.log.expect("w2 sleep");
    let pool = pool_of(c, false).unwrap();
    let stats = wq.stats();
    s.open(0);
    s.open(1);
    s.open(2);
    s.finish();
    let log = s.log.snapshot();
    assert_eq!(
        log[..7],
        strs(&["w0 start", "w0 sleep", "w1 start", "w1 sleep", "w2 start", "w2 sleep", "open0"]),
        "{log:?}"
    );
    assert!(pool.busy >= 3, "three items sleeping at once: {pool:?}");
    assert_eq!(stats.in_flight, 3);
    assert_eq!(stats.inactive, 0);
    assert!(stats.cm_wakeup >= 2, "w0's and w1's sleeps each started the next item: {stats:?}");
    for n in ["w0", "w1", "w2"] {
        s.log.assert_before(&format!("{n} wake"), &format!("{n} end"));
    }
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}

/// (c) max_active == 2: w2 waits for an active slot; it starts when w0 finishes,
/// while w1 still sleeps.
#[test]
fn scenario_max_active_2_holds_the_third_item_until_one_finishes() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let wq = Workqueue::builder("scn-ma2").flags(WqFlags::PERCPU).max_active(2).build().unwrap();
    let s = Scenario::new(|_| plain_burn());
    let hold = Hold::new(c);
    for w in &s.items {
        assert_eq!(wq.queue_on(c, w), Ok(true));
    }
    hold.release();
    s.log.expect("w1 sleep");
    s.assert_not_yet("w2 start");
    let stats = wq.stats();
    assert_eq!((stats.in_flight, stats.inactive), (3, 1), "{stats:?}");
    assert_eq!(wq.is_congested(c), Ok(true));
    s.open(0);
    s.log.expect("w2 sleep");
    s.open(1);
    s.open(2);
    s.finish();
    let log = s.log.snapshot();
    assert_eq!(
        log[..10],
        strs(&[
            "w0 start", "w0 sleep", "w1 start", "w1 sleep", "open0", "w0 wake", "w0 end", "w2 start",
            "w2 sleep", "open1",
        ]),
        "{log:?}"
    );
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}

/// (d) w1 and w2 on a CPU_INTENSIVE queue: both start once w0 sleeps, and w2
/// starts while w1 still burns (w1 burns until it sees w2 start).
#[test]
fn scenario_cpu_intensive_items_start_together() {
    hints_only();
    let _x = exclusive();
    let c = cpu0();
    settle_pool(c);
    let normal = Workqueue::builder("scn-normal").flags(WqFlags::PERCPU).build().unwrap();
    let intensive =
        Workqueue::builder("scn-intensive").flags(WqFlags::CPU_INTENSIVE | WqFlags::PERCPU).build().unwrap();
    let s = Scenario::new(|log| {
        let log = log.clone();
        Arc::new(move || {
            let saw = spin_until(DEADLINE, || log.has("w2 start"));
            log.push(if saw { "w1 saw w2 start" } else { "w1 gave up waiting for w2" });
        })
    });
    let hold = Hold::new(c);
    assert_eq!(normal.queue_on(c, &s.items[0]), Ok(true));
    assert_eq!(intensive.queue_on(c, &s.items[1]), Ok(true));
    assert_eq!(intensive.queue_on(c, &s.items[2]), Ok(true));
    hold.release();
    s.log.expect("w1 sleep");
    s.log.expect("w2 sleep");
    s.finish();
    let log = s.log.snapshot();
    // Nothing starts while w0 burns; once it sleeps, w1 and w2 both start while it
    // still sleeps. Which of the two logs first is a race (w1's worker may be
    // descheduled right after taking it), so only that pair is unordered.
    assert_eq!(log[..2], strs(&["w0 start", "w0 sleep"]), "{log:?}");
    s.log.assert_before("w1 start", "open0");
    s.log.assert_before("w2 start", "open0");
    // w1 burns until it sees w2 start: w2 started while w1 ran without blocking.
    assert!(log.contains(&"w1 saw w2 start".to_string()), "{log:?}");
    s.log.assert_before("w2 start", "w1 sleep");
    s.log.assert_before("w1 sleep", "open0");
    s.log.assert_before("w2 sleep", "open0");
    // Counted only for threshold violations (`PWQ_STAT_CPU_INTENSIVE`), not
    // for the items of a CPU_INTENSIVE queue.
    assert_eq!(intensive.stats().cpu_intensive, 0);
    assert_eq!(intensive.stats().completed, 2);
    assert_monitor_blocked_nobody();
    normal.destroy_bounded().unwrap();
    intensive.destroy_bounded().unwrap();
}
