//! A program that pins the thread which first uses cmwq (a producer pinned to one
//! CPU, say) still gets every CPU the process was started with: per-CPU pools
//! for all of them, `queue_on` any of them, and limits sized on all of them.
//!
//! A binary of its own: the topology is read once per process, at first use.

mod support;

use cmwq::{Work, Workqueue};
use support::pin_current_thread;

fn process_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn a_pinned_first_user_does_not_narrow_the_process_to_its_cpu() {
    let n = process_cpus();
    if n < 2 {
        eprintln!("skipped: needs two CPUs");
        return;
    }
    // Measure before pinning: the main thread keeps the process's mask.
    std::thread::spawn(move || {
        pin_current_thread(0);
        assert!(cmwq::available_parallelism() >= 2.min(n), "cmwq saw only the pinned thread's CPU");
        let wq = Workqueue::builder("topo-pinned").flags(cmwq::WqFlags::PERCPU).build().unwrap();
        let ran_on = std::sync::Arc::new(parking_lot::Mutex::new(None));
        let r = ran_on.clone();
        let w = Work::new(move |_| *r.lock() = cmwq::debug::current_cpu());
        wq.queue_on(1, &w).expect("CPU 1 is one of the process's CPUs");
        w.flush().unwrap();
        assert_eq!(*ran_on.lock(), Some(1), "the item ran on CPU 1's pool");
    })
    .join()
    .unwrap();
}
