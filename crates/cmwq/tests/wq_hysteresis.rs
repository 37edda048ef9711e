//! The sleep monitor's hysteresis (issue 4): a block shorter than the stall window
//! never makes the pool create a thread. Waking an idle spare is free while
//! another stays in reserve; waking the last one would make it create a new
//! reserve, so that waits for the stall window.
//!
//! A binary of its own: it needs a pool of exactly two workers (a fresh process
//! and a pool nothing else has used) and a process-wide stall window.

mod support;

use std::time::Duration;

use cmwq::{Work, Workqueue};
use support::{cpu0, pool_of, Bounded, BoundedQueue, Log};

#[test]
fn a_block_shorter_than_the_stall_window_creates_no_thread() {
    if std::fs::metadata("/proc/self/task").is_err() {
        eprintln!("skipped: needs /proc");
        return;
    }
    // Every block in this test is shorter than this.
    cmwq::set_stall_window(Duration::from_secs(30));
    let wq = Workqueue::builder("hysteresis").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    // The pool's first worker creates an idle reserve before its first item: two
    // workers, both idle once these ran.
    for _ in 0..2 {
        let w = Work::new(|_| {});
        wq.queue_on(cpu0(), &w).unwrap();
        w.flush_bounded().unwrap();
    }
    let before = pool_of(cpu0(), false).expect("the pool exists");
    assert_eq!(before.workers, 2, "a fresh pool after two items: {before:?}");
    let created_before = before.created;

    // A blocks without saying so for 50 ms with B queued behind it: one idle worker
    // is left, and waking it would create a thread, so nothing may happen before
    // the (30 s) stall window: B runs after A.
    let log = Log::new();
    let a = {
        let log = log.clone();
        Work::new(move |_| {
            log.push("a start");
            std::thread::sleep(Duration::from_millis(50));
            log.push("a end");
        })
    };
    let b = {
        let log = log.clone();
        Work::new(move |_| log.push("b start"))
    };
    assert!(wq.queue_on(cpu0(), &a).unwrap());
    log.expect("a start");
    assert!(wq.queue_on(cpu0(), &b).unwrap());
    a.flush_bounded().unwrap();
    b.flush_bounded().unwrap();
    log.assert_before("a end", "b start");
    let after = pool_of(cpu0(), false).unwrap();
    assert_eq!(after.created, created_before, "a thread was created for a short block: {after:?}");
    assert_eq!(after.workers, 2);
    cmwq::set_stall_window(Duration::from_micros(200));
    wq.destroy_bounded().unwrap();
}
