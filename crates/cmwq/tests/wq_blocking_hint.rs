//! The `cmwq::blocking` and `cmwq::sleep` hints on their own: an item blocked
//! inside one lets the next item of its CPU start on another worker, on a
//! per-CPU pool and on an unbound pod's pool, where every CPU's item must hand
//! its CPU on.
//!
//! A binary of its own, with the sleep monitor off before any worker exists
//! ([`hints_only`]): with it on, the monitor finds the blocked worker by itself and
//! starts the next item even when the hint is broken, so the test could not fail.
//! The switch is process-wide and affects only workers started after it, so no
//! other test may share this process.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, Work, Workqueue};
use support::{
    assert_monitor_blocked_nobody, assert_pools_settle, cpu0, current_unbound_pool, exclusive, hints_only,
    poll_until, pool_of, spin_until, wait_for, Bounded, BoundedQueue, Gate, Log, DEADLINE,
};

#[test]
fn blocking_starts_another_worker() {
    hints_only();
    let c = cpu0();
    assert_eq!(pool_of(c, false).map_or(0, |p| p.created), 0, "a worker started before the monitor was off");
    let wq = Workqueue::builder("smoke-block").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = parking_lot::Mutex::new(rx);
    let log = Log::new();
    let started2 = Arc::new(AtomicUsize::new(0));
    let s2 = started2.clone();
    let w1 = {
        let log = log.clone();
        Work::new(move |_| {
            log.push("w1 start");
            // Only w2 can send; it can only start while w1 is out of nr_running.
            let woken = cmwq::blocking(|| rx.lock().recv_timeout(DEADLINE).is_ok());
            log.push(if woken { "w1 woken by w2" } else { "w1 gave up waiting for w2" });
        })
    };
    let w2 = Work::new(move |_| {
        s2.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(());
    });
    wq.queue_on(c, &w1).unwrap();
    wq.queue_on(c, &w2).unwrap();
    log.expect("w1 woken by w2");
    wq.flush_bounded().unwrap();
    assert_eq!(started2.load(Ordering::SeqCst), 1);
    assert_eq!(log.snapshot(), ["w1 start", "w1 woken by w2"]);
    assert_monitor_blocked_nobody();
    wq.destroy_bounded().unwrap();
}

/// How the blockers of [`hinted_blockers_hand_the_pod_on`] wait for the item
/// behind them.
#[derive(Clone, Copy, Debug)]
enum Hint {
    /// One wait inside `cmwq::blocking`.
    Blocking,
    /// `cmwq::sleep` in 1 ms slices.
    Sleep,
}

/// On an unbound queue whose one pod spans every allowed CPU, one item per CPU
/// waits, announced by `hint`, for an item queued behind them. The blockers burn
/// until that item is queued, so it is queued while the pool is saturated (as
/// many counted as it has CPUs): only the hint's wake-up
/// (`cm::worker_sleeping`'s kick) can start it, and with the sleep monitor off
/// nothing else would. Afterwards the pool's accounting is exact.
fn hinted_blockers_hand_the_pod_on(name: &str, hint: Hint) {
    let n = cmwq::allowed_cpus().len();
    let attrs = Attrs { affinity_scope: AffinityScope::System, ..Attrs::default() };
    let wq = Workqueue::builder(name).attrs(attrs).build().unwrap();
    let gate = Gate::new();
    let _open = gate.open_on_drop();
    let queued_behind = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let pools = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let log = Log::new();
    let blockers: Vec<Work> = (0..n)
        .map(|i| {
            let (gate, queued_behind, started, released, pools, log) = (
                gate.clone(),
                queued_behind.clone(),
                started.clone(),
                released.clone(),
                pools.clone(),
                log.clone(),
            );
            Work::new(move |_| {
                pools.lock().push(current_unbound_pool());
                started.fetch_add(1, Ordering::SeqCst);
                // Counted and on the CPU until the item behind is queued.
                spin_until(DEADLINE, || queued_behind.load(Ordering::SeqCst));
                let opened = match hint {
                    Hint::Blocking => gate.wait_blocking(),
                    Hint::Sleep => {
                        let deadline = Instant::now() + DEADLINE;
                        while !gate.is_open() && Instant::now() < deadline {
                            cmwq::sleep(Duration::from_millis(1));
                        }
                        gate.is_open()
                    }
                };
                log.push(format!("blocker {i} {}", if opened { "released" } else { "gave up" }));
                if opened {
                    released.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for w in &blockers {
        assert!(wq.queue(w).unwrap());
    }
    wait_for("every blocker started", || started.load(Ordering::SeqCst) == n);
    let (g, l) = (gate.clone(), log.clone());
    let behind = Work::new(move |_| {
        l.push("behind ran");
        g.open();
    });
    assert!(wq.queue(&behind).unwrap());
    queued_behind.store(true, Ordering::SeqCst);
    let ran = poll_until(DEADLINE, || gate.is_open());
    assert!(ran, "{hint:?}: the item behind {n} blocked items never ran (no wake-up?): {:?}", log.snapshot());
    wq.flush_bounded().unwrap();
    assert_eq!(
        released.load(Ordering::SeqCst),
        n,
        "{hint:?}: the item behind {n} blocked items did not run while they waited: {:?}",
        log.snapshot()
    );
    assert_monitor_blocked_nobody();
    let ids: Vec<u32> = pools.lock().iter().map(|p| p.expect("ran on an unbound worker")).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one pod, one pool: {ids:?}");
    assert_pools_settle(&format!("{hint:?}"), &ids[..1]);
    wq.destroy_bounded().unwrap();
}

#[test]
fn blocking_hands_every_cpu_of_an_unbound_pod_on() {
    hints_only();
    let _g = exclusive();
    hinted_blockers_hand_the_pod_on("hint-unbound-blocking", Hint::Blocking);
}

#[test]
fn sleep_hands_every_cpu_of_an_unbound_pod_on() {
    hints_only();
    let _g = exclusive();
    hinted_blockers_hand_the_pod_on("hint-unbound-sleep", Hint::Sleep);
}
