//! The freezer and the power-efficient setting (both process-wide, so every test
//! here holds the pool lock exclusively).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmwq::{freezer, Work, Workqueue, WqFlags};
use support::{exclusive, poll_until, DEADLINE};

/// Thaws even if the test fails, so later tests start thawed.
struct Thaw;
impl Drop for Thaw {
    fn drop(&mut self) {
        freezer::thaw();
    }
}

#[test]
fn frozen_queue_holds_items_and_thaw_runs_them_in_order() {
    let _s = exclusive();
    let _t = Thaw;
    let cpu = cmwq::allowed_cpus()[0];
    let frz = Workqueue::builder("frz").flags(WqFlags::FREEZABLE | WqFlags::PERCPU).build().unwrap();
    let plain = Workqueue::builder("not-frz").flags(WqFlags::PERCPU).build().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    freezer::freeze();
    assert!(freezer::is_frozen());
    let items: Vec<Work> = (0..10)
        .map(|i| {
            let order = order.clone();
            Work::new(move |_| order.lock().unwrap().push(i))
        })
        .collect();
    for w in &items {
        assert_eq!(frz.queue_on(cpu, w), Ok(true));
    }
    // A non-freezable queue is unaffected: its item runs while frozen.
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    let p = Work::new(move |_| r2.store(true, Ordering::SeqCst));
    plain.queue_on(cpu, &p).unwrap();
    // Whether flush had to wait depends on how fast a worker took it; either is fine.
    assert!(p.flush().is_ok());
    assert!(ran.load(Ordering::SeqCst), "a non-freezable item did not run while frozen");
    // The frozen items wait on the inactive list: nothing ran, all still pending.
    assert!(!freezer::is_busy());
    assert_eq!(frz.stats().inactive, 10);
    assert!(frz.is_congested(cpu).unwrap());
    assert!(order.lock().unwrap().is_empty());
    assert!(items.iter().all(Work::is_pending));
    freezer::thaw();
    assert!(!freezer::is_frozen());
    frz.flush().unwrap();
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>(), "thaw keeps queueing order");
}

#[test]
fn is_busy_until_items_active_before_the_freeze_finish() {
    let _s = exclusive();
    let _t = Thaw;
    let wq = Workqueue::builder("frz-busy").flags(WqFlags::FREEZABLE | WqFlags::PERCPU).build().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (rel, st) = (release.clone(), started.clone());
    let w = Work::new(move |_| {
        st.store(true, Ordering::SeqCst);
        cmwq::blocking(|| {
            while !rel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    });
    wq.queue(&w).unwrap();
    assert!(poll_until(DEADLINE, || started.load(Ordering::SeqCst)));
    freezer::freeze();
    assert!(freezer::is_busy(), "a running freezable item keeps the freezer busy");
    release.store(true, Ordering::SeqCst);
    assert!(poll_until(DEADLINE, || !freezer::is_busy()));
    assert_eq!(w.flush(), Ok(false));
}

#[test]
fn queues_created_while_frozen_start_frozen_and_max_active_survives() {
    let _s = exclusive();
    let _t = Thaw;
    freezer::freeze();
    let wq = Workqueue::builder("frz-late")
        .flags(WqFlags::FREEZABLE | WqFlags::PERCPU)
        .max_active(1)
        .build()
        .unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let items: Vec<Work> = (0..3)
        .map(|_| {
            let n = n.clone();
            Work::new(move |_| {
                n.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let cpu = cmwq::allowed_cpus()[0];
    for w in &items {
        wq.queue_on(cpu, w).unwrap();
    }
    // Raising max_active while frozen must not let anything through.
    wq.set_max_active(8).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(n.load(Ordering::SeqCst), 0);
    assert_eq!(wq.stats().inactive, 3);
    freezer::thaw();
    wq.flush().unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert_eq!(wq.max_active(), 8);
}

#[test]
fn system_freezable_queue_freezes() {
    let _s = exclusive();
    let _t = Thaw;
    let wq = cmwq::system::freezable();
    assert!(wq.flags().contains(WqFlags::FREEZABLE));
    freezer::freeze();
    let w = Work::new(|_| {});
    wq.queue(&w).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert!(w.is_pending());
    freezer::thaw();
    assert!(poll_until(DEADLINE, || !w.is_pending()));
}

#[test]
fn power_efficient_is_percpu_unless_the_process_setting_is_on() {
    let _s = exclusive();
    let pe = Workqueue::builder("pe-off").flags(WqFlags::POWER_EFFICIENT).build().unwrap();
    assert!(!pe.flags().contains(WqFlags::UNBOUND));
    cmwq::set_power_efficient(true);
    let on = Workqueue::builder("pe-on").flags(WqFlags::POWER_EFFICIENT | WqFlags::PERCPU).build().unwrap();
    cmwq::set_power_efficient(false);
    assert!(on.flags().contains(WqFlags::UNBOUND));
    assert!(!on.flags().contains(WqFlags::PERCPU));
    // It runs on the unbound pool.
    let pool = Arc::new(Mutex::new(None));
    let p2 = pool.clone();
    let w = Work::new(move |_| *p2.lock().unwrap() = Some(cmwq::debug::current_cpu()));
    on.queue(&w).unwrap();
    w.flush().unwrap();
    assert!(pool.lock().unwrap().is_some());
    assert!(cmwq::debug::pools().iter().any(|p| p.cpu.is_none() && p.completed > 0));
}
