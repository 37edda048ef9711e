//! A workqueue flush that has to wait for a free flush color, inside a work item of
//! a per-CPU pool: the wait is announced as blocking, so the item's CPU runs other
//! items meanwhile, among them the one whose completion frees a color.
//!
//! A binary of its own, with the sleep monitor off before any worker exists
//! ([`hints_only`]): with it on, the monitor finds the unannounced wait by itself
//! and lets the other items run, so the test could not fail. (It was one of the
//! tests of `wq_flush.rs`.)

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cmwq::{Work, Workqueue};
use parking_lot::Mutex;
use support::{
    assert_monitor_blocked_nobody, distinct_cpus, exclusive, hints_only, logging, spin_until, wait_parked,
    BoundedQueue, Log, DEADLINE,
};

/// A flush that has to wait for a free flush color blocks; inside a work item of a
/// per-CPU pool that wait must let the pool run other items (as every sleep does
/// in the kernel), or the items whose completion frees the colors never run.
#[test]
fn flush_color_overflow_wait_inside_work_item_lets_its_cpu_run_other_items() {
    hints_only();
    let _x = exclusive();
    let Some((c, d)) = distinct_cpus() else { return };
    let target = Workqueue::builder("ovf-target").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let on_c = Workqueue::builder("ovf-on-c").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let on_d = Workqueue::builder("ovf-on-d").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let log = Log::new();
    let go = Arc::new(AtomicBool::new(false));
    // F burns CPU c until told, then flushes `target`.
    let f = {
        let (log, go, target) = (log.clone(), go.clone(), target.clone());
        Work::new(move |_| {
            log.push("F start");
            spin_until(DEADLINE, || go.load(Ordering::SeqCst));
            log.push("F flush");
            let r = target.flush();
            log.push(format!("F flushed {r:?}"));
        })
    };
    assert_eq!(on_c.queue_on(c, &f), Ok(true));
    log.expect("F start");
    // H: a `target` item on CPU c, held back while F burns.
    let h = logging(&log, "H run");
    assert_eq!(target.queue_on(c, &h), Ok(true));
    // Fifteen flushers on CPU d, each waiting for H: together they use all the flush
    // colors a flush may hold. Each one starts only when the previous one blocked.
    let tids = Arc::new(Mutex::new(Vec::new()));
    let flushers: Vec<Work> = (0..15)
        .map(|i| {
            let (log, target) = (log.clone(), target.clone());
            let tids = tids.clone();
            Work::new(move |_| {
                tids.lock().push(support::current_tid());
                log.push(format!("D{i} start"));
                let r = target.flush();
                log.push(format!("D{i} flushed {r:?}"));
            })
        })
        .collect();
    for w in &flushers {
        assert_eq!(on_d.queue_on(d, w), Ok(true));
    }
    let probe = logging(&log, "probe start");
    assert_eq!(on_d.queue_on(d, &probe), Ok(true));
    log.expect("probe start");
    // Each of them is inside its flush; make sure each has got as far as its wait.
    for tid in tids.lock().iter().flatten() {
        assert!(wait_parked(*tid), "a flusher on CPU {d} never settled into its wait");
    }
    assert!(!log.has("H run"));
    // F's flush now has to wait for a color, and only H's completion frees one.
    go.store(true, Ordering::SeqCst);
    log.expect("F flush");
    let h_ran = log.wait_for("H run", DEADLINE);
    if !h_ran {
        // Recover so the process is left usable: cancelling H frees the colors.
        let cancelled = h.cancel();
        log.expect("F flushed Ok(())");
        panic!(
            "H never ran while F waited for a flush color: the overflow wait is not \
             announced as blocking, so CPU {c}'s pool stalled (cancelled H: {cancelled}); log: {:?}",
            log.snapshot()
        );
    }
    log.expect("F flushed Ok(())");
    log.assert_before("H run", "F flushed Ok(())");
    on_d.destroy_bounded().unwrap();
    for i in 0..15 {
        assert!(log.has(&format!("D{i} flushed Ok(())")), "{:?}", log.snapshot());
    }
    on_c.destroy_bounded().unwrap();
    assert_monitor_blocked_nobody();
    target.destroy_bounded().unwrap();
}
