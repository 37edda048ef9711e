//! The `cmwq::blocking` hint on its own: an item blocked inside it lets the next
//! item of its CPU start on another worker.
//!
//! A binary of its own, with the sleep monitor off before any worker exists
//! ([`hints_only`]): with it on, the monitor finds the blocked worker by itself and
//! starts the next item even when the hint is broken, so the test could not fail.
//! The switch is process-wide and affects only workers started after it, so no
//! other test may share this process.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cmwq::{Work, Workqueue};
use support::{
    assert_monitor_blocked_nobody, cpu0, hints_only, pool_of, Bounded, BoundedQueue, Log, DEADLINE,
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
