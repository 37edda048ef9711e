//! Work items that block without telling the pool (plain `std::thread::sleep`, a
//! std `Mutex`, a pipe): only the sleep monitor can let the items queued behind
//! them start. Each blocker waits for an event that only the items behind it
//! produce, for at most [`DEADLINE`], so a broken monitor fails the test instead
//! of hanging it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::Log;
use super::pools::{cpu0, pool_of, warm_queue};
use super::wait::{burn_cpu, poll_until, Bounded, BoundedQueue, DEADLINE};

/// On `cpu`, an item that sleeps in plain `std::thread::sleep` (telling nobody)
/// until the item queued behind it has run; returns once both ran. Only the sleep
/// monitor can let the second one start; a deadline turns a stall into a failure.
#[track_caller]
pub(crate) fn plain_sleeper_with_one_behind(wq: &cmwq::Workqueue, cpu: usize) {
    let deadline = Instant::now() + DEADLINE;
    let behind_ran = Arc::new(AtomicBool::new(false));
    let b = behind_ran.clone();
    let sleeper = cmwq::Work::new(move |_| {
        while !b.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let b = behind_ran.clone();
    let behind = cmwq::Work::new(move |_| b.store(true, Ordering::SeqCst));
    wq.queue_on(cpu, &sleeper).unwrap();
    wq.queue_on(cpu, &behind).unwrap();
    sleeper.flush_bounded().unwrap();
    behind.flush_bounded().unwrap();
    assert!(behind_ran.load(Ordering::SeqCst), "the item behind the plain sleeper never ran");
}

/// Queues 20 items on [`cpu0`] that each sleep `sleep` in plain
/// `std::thread::sleep` and then burn 200 µs of CPU, waits for them, and checks
/// that the pool's accounting is exact again: no worker left counted as running or
/// busy (a leaked mark or a double count would leave one). The first item sleeps
/// on until the monitor has taken a worker out, so the check always follows a
/// mark: with a monitor that marks nobody, there would be nothing to check.
#[track_caller]
pub(crate) fn assert_exact_after_plain_sleepers(wq: &cmwq::Workqueue, sleep: Duration) {
    let marked_before = cmwq::debug::monitor().blocked;
    let n = Arc::new(AtomicUsize::new(0));
    for i in 0..20 {
        let n = n.clone();
        let w = cmwq::Work::new(move |_| {
            let deadline = Instant::now() + DEADLINE;
            std::thread::sleep(sleep);
            while i == 0 && cmwq::debug::monitor().blocked == marked_before && Instant::now() < deadline {
                std::thread::sleep(sleep);
            }
            burn_cpu(Duration::from_micros(200));
            n.fetch_add(1, Ordering::SeqCst);
        });
        assert!(wq.queue_on(cpu0(), &w).unwrap());
    }
    wq.flush_bounded().unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 20);
    let m = cmwq::debug::monitor();
    assert!(
        m.blocked > marked_before,
        "the monitor took no plain sleeper out, so nothing was checked: {m:?}"
    );
    let settled =
        poll_until(DEADLINE, || pool_of(cpu0(), false).is_some_and(|p| p.running == 0 && p.busy == 0));
    assert!(settled, "nr_running did not return to 0: {:?}", pool_of(cpu0(), false));
}

/// `w1` logs `w1 start`, blocks in `block` without telling the pool, and logs
/// what `block` returns; `w2`, queued behind it on the same CPU, logs `w2 start`
/// and `w2 done` around `release`. Returns the log once both ran, and asserts that
/// the monitor took a blocked worker out meanwhile.
#[track_caller]
pub(crate) fn blocked_then_second(
    name: &str,
    block: impl Fn() -> &'static str + Send + Sync + 'static,
    release: impl Fn() + Send + Sync + 'static,
) -> Log {
    let wq = warm_queue(name);
    let log = Log::new();
    let w1 = {
        let log = log.clone();
        cmwq::Work::new(move |_| {
            log.push("w1 start");
            log.push(block());
        })
    };
    let w2 = {
        let log = log.clone();
        cmwq::Work::new(move |_| {
            log.push("w2 start");
            release();
            log.push("w2 done");
        })
    };
    let before = cmwq::debug::monitor();
    assert!(wq.queue_on(cpu0(), &w1).unwrap());
    log.expect("w1 start");
    assert!(wq.queue_on(cpu0(), &w2).unwrap());
    w1.flush_bounded().unwrap();
    w2.flush_bounded().unwrap();
    let after = cmwq::debug::monitor();
    assert!(after.blocked > before.blocked, "the monitor never took the blocked worker out: {after:?}");
    wq.destroy_bounded().unwrap();
    log
}

/// Asserts, on the log of [`blocked_then_second`], that `w2` started while `w1`
/// was blocked and that `w1` then woke with the event `woke`.
#[track_caller]
pub(crate) fn assert_second_ran_while_first_blocked(log: &Log, woke: &str) {
    log.assert_before("w1 start", "w2 start");
    // w2 logs "w2 start" before it releases w1, so this order proves that w2
    // started while w1 was blocked.
    log.assert_before("w2 start", woke);
    assert!(log.has(woke), "w1 was not released by w2: {:?}", log.snapshot());
}

/// [`blocked_then_second`] with `w1` in plain sleeps until `w2` releases it.
#[track_caller]
pub(crate) fn plain_sleeper_then_second(name: &str) -> Log {
    let released = Arc::new(AtomicBool::new(false));
    let r = released.clone();
    blocked_then_second(name, move || plain_sleep_until(&released), move || r.store(true, Ordering::SeqCst))
}

/// Plain `std::thread::sleep`s, in 20 ms slices, until `released` is set (or
/// [`DEADLINE`] passed): what it returns says which.
fn plain_sleep_until(released: &AtomicBool) -> &'static str {
    let deadline = Instant::now() + DEADLINE;
    while !released.load(Ordering::SeqCst) {
        if Instant::now() > deadline {
            return "w1 wake (timed out)";
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    "w1 wake"
}
