//! Smoke tests: a per-CPU queue runs and flushes, an unbound queue spawns. The
//! smoke test of the `blocking` hint is `wq_blocking_hint.rs`, alone in its binary
//! (it needs the sleep monitor off).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{Work, Workqueue, WqFlags};

#[test]
fn queue_runs_and_flushes() {
    let wq = Workqueue::builder("smoke").flags(WqFlags::PERCPU).build().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let w = Work::new(move |_| {
        n2.fetch_add(1, Ordering::SeqCst);
    });
    for _ in 0..1000 {
        wq.queue(&w).unwrap();
        w.flush().unwrap();
    }
    assert_eq!(n.load(Ordering::SeqCst), 1000);
    wq.flush().unwrap();
    wq.destroy().unwrap();
    // The counters survive destroy (the pwqs are freed, their stats are kept).
    let s = wq.stats();
    assert_eq!((s.started, s.completed, s.in_flight), (1000, 1000, 0));
}

#[test]
fn unbound_and_spawn() {
    let wq = Workqueue::builder("smoke-unbound").flags(WqFlags::UNBOUND).max_active(4).build().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let n = n.clone();
        wq.spawn(move || {
            cmwq::sleep(Duration::from_micros(100));
            n.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    wq.drain().unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 100);
    println!("{:#?}", cmwq::debug::pools());
}
