//! No stranded work (issue 14, part 1): whatever the history of refused worker
//! creations, a pool whose work waits gets a worker as soon as creation is
//! allowed again, and its idle reserve is restored.
//!
//! Each case drives a pool into running an item, Y, without an idle reserve:
//! items that wait (announced) on a gate take the pool's idle workers one by
//! one while creation is refused, until one of them starts with nobody idle
//! behind it; that one is Y. Creation is refused by injected `EAGAIN`s
//! (`debug::fail_next_spawns`, then the pool's 1 s cooldown passes) or by a low
//! thread ceiling (`set_max_workers`, raised again later). Then Y waits for
//! item Z, queued after it on the same pool: inside `cmwq::blocking`, in a loop
//! of `cmwq::sleep`, or in a loop of plain `std::thread::sleep` (which only the
//! sleep monitor can see). Z must start while Y waits, on a per-CPU queue
//! (`WqFlags::PERCPU`, one CPU) and on an unbound one (the default queue).
//!
//! The kernel's counterpart is `maybe_create_worker` in `kernel/workqueue.c`,
//! which keeps retrying while `need_to_create_worker()` holds.
//!
//! Alone in its binary: fault injection and the ceiling are process-wide, and
//! every test takes the pools exclusively. Every wait is bounded; Y gives up
//! after [`Y_PATIENCE`], and the test asserts that Z started before that.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};
use support::{cpu0, exclusive, poll_until, pool_by_id, pool_of, Bounded, BoundedQueue, Gate, DEADLINE};

/// How long Y waits for Z before it gives up (from Z's queueing). On the code
/// before the fix, Z started only once Y gave up.
const Y_PATIENCE: Duration = Duration::from_secs(5);
/// The pool's cooldown after a failed thread creation (`CREATE_COOLDOWN`), and
/// a margin for the monitor to have looked at the pool after it ended.
const COOLDOWN_PASSED: Duration = Duration::from_millis(1500);
/// Items that may be needed to take a warm pool's idle workers before one
/// starts without a reserve.
const MAX_ITEMS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `WqFlags::PERCPU`, every item on [`cpu0`].
    PerCpu,
    /// The default queue (unbound), every item queued from [`cpu0`].
    Unbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refuse {
    /// `debug::fail_next_spawns`: the creation fails, the pool cools down 1 s.
    FailSpawns,
    /// `set_max_workers` one above the workers alive: the pool gets at most one
    /// more worker, then every creation is refused until the ceiling is raised.
    Ceiling,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum YWaits {
    /// `cmwq::blocking(|| rx.recv_timeout(..))`.
    Hint,
    /// A loop of `cmwq::sleep(2 ms)`.
    HintSleeps,
    /// A loop of `std::thread::sleep(2 ms)`: only the sleep monitor sees it.
    PlainSleeps,
}

/// What a started item reports to the test.
#[derive(Debug)]
struct Started {
    item: usize,
    pool: u32,
    /// Idle workers of its pool when it started (after its worker's manager
    /// step): 0 means it runs without a reserve.
    idle: usize,
}

/// What Z reports.
#[derive(Debug)]
struct ZRan {
    at: Instant,
    pool: u32,
    idle: usize,
}

/// The pool that runs the calling item, from the worker's thread name
/// (`cmwq/<cpu>:<n>` or `cmwq/u<id>:<n>`), as a snapshot.
fn my_pool() -> cmwq::debug::PoolSnapshot {
    let me = std::thread::current();
    let name = me.name().expect("workers are named");
    let label = name.strip_prefix(cmwq::debug::WORKER_THREAD_PREFIX).and_then(|s| s.split(':').next());
    let label = label.unwrap_or_else(|| panic!("not a worker thread: {name}"));
    match label.strip_prefix('u') {
        Some(id) => pool_by_id(id.parse().unwrap()).expect("its pool"),
        None => pool_of(label.parse().unwrap(), false).expect("its pool"),
    }
}

/// Restores the process-wide knobs when the test ends, also when it fails.
struct Restore {
    max_workers: usize,
}

impl Drop for Restore {
    fn drop(&mut self) {
        cmwq::debug::fail_next_spawns(0);
        cmwq::set_max_workers(self.max_workers);
    }
}

/// Y's wait for Z, in the way `how` says; returns whether Z signalled (rather
/// than Y giving up).
fn y_waits(
    how: YWaits,
    z_rx: &parking_lot::Mutex<std::sync::mpsc::Receiver<()>>,
    patience: Duration,
) -> bool {
    let rx = z_rx.lock();
    match how {
        YWaits::Hint => cmwq::blocking(|| rx.recv_timeout(patience).is_ok()),
        YWaits::HintSleeps | YWaits::PlainSleeps => {
            let until = Instant::now() + patience;
            while Instant::now() < until {
                if rx.try_recv().is_ok() {
                    return true;
                }
                if how == YWaits::HintSleeps {
                    cmwq::sleep(Duration::from_millis(2));
                } else {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            false
        }
    }
}

fn stranded(kind: Kind, refuse: Refuse, how: YWaits) {
    let _x = exclusive();
    let _restore = Restore { max_workers: cmwq::max_workers() };
    let name = format!("stranded-{kind:?}-{refuse:?}-{how:?}");
    let wq = match kind {
        Kind::PerCpu => Workqueue::builder(&name).flags(WqFlags::PERCPU).build().unwrap(),
        Kind::Unbound => Workqueue::builder(&name).build().unwrap(),
    };
    let release = Gate::new();
    let _open = release.open_on_drop();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<Started>();
    let (z_tx, z_rx) = std::sync::mpsc::channel::<()>();
    let z_rx = Arc::new(parking_lot::Mutex::new(z_rx));
    // Y's outcome: whether Z signalled, and when Y stopped waiting.
    let (y_tx, y_rx) = std::sync::mpsc::channel::<(bool, Instant)>();
    // Z is queued after Y's start plus this lead; Y waits that long and
    // `Y_PATIENCE` more.
    let lead = match refuse {
        Refuse::FailSpawns => COOLDOWN_PASSED,
        Refuse::Ceiling => Duration::from_millis(100),
    };

    // An earlier test's workers may still be on their way out (an unbound pool
    // nobody uses lets its idle workers go): let them go before counting.
    let settled = || cmwq::debug::pools().iter().all(|p| p.workers == p.idle && p.busy == 0);
    assert!(poll_until(DEADLINE, settled), "the pools never settled: {:?}", cmwq::debug::pools());
    if refuse == Refuse::Ceiling {
        cmwq::set_max_workers(cmwq::debug::nr_workers() + 1);
    }
    // Items that wait on `release` (announced), until one starts with nobody
    // idle behind it: Y.
    let mut items = Vec::new();
    let mut y = None;
    for i in 0..MAX_ITEMS {
        if refuse == Refuse::FailSpawns {
            // The next creation fails; its pool then refuses for 1 s.
            cmwq::debug::fail_next_spawns(1);
        }
        let (started_tx, release, z_rx, y_tx) =
            (started_tx.clone(), release.clone(), z_rx.clone(), y_tx.clone());
        let w = Work::new(move |_| {
            let p = my_pool();
            let no_reserve = p.idle == 0;
            let _ = started_tx.send(Started { item: i, pool: p.id, idle: p.idle });
            if no_reserve {
                let got = y_waits(how, &z_rx, lead + Y_PATIENCE);
                let _ = y_tx.send((got, Instant::now()));
            } else {
                release.wait_blocking();
            }
        });
        assert!(wq.queue_on(cpu0(), &w).unwrap());
        items.push(w);
        let s = started_rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("item {i} never started"));
        assert_eq!(s.item, i);
        if s.idle == 0 {
            y = Some((s, Instant::now()));
            break;
        }
    }
    let (y, y_started) = y.unwrap_or_else(|| panic!("no item started without a reserve in {MAX_ITEMS}"));
    cmwq::debug::fail_next_spawns(0);
    if refuse == Refuse::Ceiling {
        // No room for anyone now, whoever exits meanwhile (Y's worker counts).
        cmwq::set_max_workers(1);
    }

    // Creation is refused, or the pool is cooling down. Let the cooldown pass
    // (and the monitor look at the pool after it) while Y runs; for the ceiling,
    // give the monitor time to look at the pool while it is refused.
    std::thread::sleep(lead.saturating_sub(y_started.elapsed()));
    let z_ran = Arc::new(parking_lot::Mutex::new(None::<ZRan>));
    let zr = z_ran.clone();
    let z = Work::new(move |_| {
        let p = my_pool();
        *zr.lock() = Some(ZRan { at: Instant::now(), pool: p.id, idle: p.idle });
        let _ = z_tx.send(());
    });
    let queued = Instant::now();
    assert!(wq.queue_on(cpu0(), &z).unwrap());
    if refuse == Refuse::Ceiling {
        // Creation allowed again only now, with Z waiting.
        std::thread::sleep(Duration::from_millis(50));
        assert!(z_ran.lock().is_none(), "{name}: Z started at the ceiling; the case tests nothing");
        cmwq::set_max_workers(_restore.max_workers);
    }

    let (z_seen, y_done) = y_rx.recv_timeout(DEADLINE).expect("Y neither saw Z nor gave up");
    let zr = z_ran.lock().take();
    let waited = y_done.duration_since(queued);
    assert!(
        z_seen,
        "{name}: Z did not start while Y waited: Y gave up {waited:?} after Z was queued; Z started {:?} \
         after it was queued; pool now {:?}",
        zr.as_ref().map(|z| z.at.duration_since(queued)),
        pool_by_id(y.pool)
    );
    let zr = zr.expect("Z signalled, so it ran");
    eprintln!("{name}: Z started {:?} after it was queued", zr.at.duration_since(queued));
    assert_eq!(zr.pool, y.pool, "{name}: Z ran on another pool than Y; the case tests nothing");
    // Z's worker took its reserve step before Z started, with creation allowed.
    assert!(
        zr.idle >= 1,
        "{name}: the pool's idle reserve was not restored when Z started: {:?}",
        pool_by_id(y.pool)
    );

    release.open();
    wq.flush_bounded().unwrap();
    drop(items);
    wq.destroy_bounded().unwrap();
    // The pool goes on: an item queued now starts at once, with a reserve.
    let wq = match kind {
        Kind::PerCpu => Workqueue::builder(&name).flags(WqFlags::PERCPU).build().unwrap(),
        Kind::Unbound => Workqueue::builder(&name).build().unwrap(),
    };
    let w = Work::new(|_| {});
    assert!(wq.queue_on(cpu0(), &w).unwrap());
    w.flush_bounded().unwrap();
    assert!(
        poll_until(DEADLINE, || pool_by_id(y.pool).is_some_and(|p| p.idle >= 1 && p.busy == 0)),
        "{name}: the pool did not settle with an idle worker: {:?}",
        pool_by_id(y.pool)
    );
    wq.destroy_bounded().unwrap();
}

#[test]
fn percpu_failed_spawns_hint() {
    stranded(Kind::PerCpu, Refuse::FailSpawns, YWaits::Hint);
}

#[test]
fn percpu_failed_spawns_hinted_sleeps() {
    stranded(Kind::PerCpu, Refuse::FailSpawns, YWaits::HintSleeps);
}

#[test]
fn percpu_failed_spawns_plain_sleeps() {
    stranded(Kind::PerCpu, Refuse::FailSpawns, YWaits::PlainSleeps);
}

#[test]
fn percpu_ceiling_hint() {
    stranded(Kind::PerCpu, Refuse::Ceiling, YWaits::Hint);
}

#[test]
fn percpu_ceiling_plain_sleeps() {
    stranded(Kind::PerCpu, Refuse::Ceiling, YWaits::PlainSleeps);
}

#[test]
fn unbound_failed_spawns_hint() {
    stranded(Kind::Unbound, Refuse::FailSpawns, YWaits::Hint);
}

#[test]
fn unbound_failed_spawns_plain_sleeps() {
    stranded(Kind::Unbound, Refuse::FailSpawns, YWaits::PlainSleeps);
}

#[test]
fn unbound_ceiling_hint() {
    stranded(Kind::Unbound, Refuse::Ceiling, YWaits::Hint);
}

#[test]
fn unbound_ceiling_hinted_sleeps() {
    stranded(Kind::Unbound, Refuse::Ceiling, YWaits::HintSleeps);
}

#[test]
fn unbound_ceiling_plain_sleeps() {
    stranded(Kind::Unbound, Refuse::Ceiling, YWaits::PlainSleeps);
}
