use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{Work, Workqueue, WqFlags};

#[test]
fn queue_runs_and_flushes() {
    let wq = Workqueue::builder("smoke").build().unwrap();
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
fn blocking_starts_another_worker() {
    let wq = Workqueue::builder("smoke-block").build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Arc::new(parking_lot::Mutex::new(rx));
    let started2 = Arc::new(AtomicUsize::new(0));
    let s2 = started2.clone();
    let w1 = Work::new(move |_| {
        let rx = rx.clone();
        cmwq::blocking(|| rx.lock().recv().unwrap());
    });
    let w2 = Work::new(move |_| {
        s2.fetch_add(1, Ordering::SeqCst);
        tx.send(()).unwrap();
    });
    wq.queue_on(0, &w1).unwrap();
    wq.queue_on(0, &w2).unwrap();
    wq.flush().unwrap();
    assert_eq!(started2.load(Ordering::SeqCst), 1);
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
