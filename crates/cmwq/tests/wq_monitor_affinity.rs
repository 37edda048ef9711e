//! The sleep monitor runs on every CPU the process may use, even when the thread
//! that started it was pinned to one CPU (a per-CPU worker always is). Pinned
//! there, it would queue behind the very items it watches, and a CPU whose worker
//! blocked would wait for the monitor to get that CPU back.
//!
//! A binary of its own: the monitor starts once per process, so this test must
//! be the one that starts it, from a pinned worker.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue};
use support::{Bounded, DEADLINE};

/// `Cpus_allowed_list` of the thread named `comm`, if there is one.
fn allowed_list_of(comm: &str) -> Option<String> {
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let p = t.path();
        if std::fs::read_to_string(p.join("comm")).ok()?.trim() != comm {
            continue;
        }
        let status = std::fs::read_to_string(p.join("status")).ok()?;
        return status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|s| s.trim().to_string());
    }
    None
}

/// The process's CPUs as a `Cpus_allowed_list` string, from the main thread.
fn process_list() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string()
}

#[test]
fn the_monitor_started_from_a_pinned_worker_runs_on_every_allowed_cpu() {
    if cmwq::available_parallelism() < 2 || std::fs::metadata("/proc/self/task").is_err() {
        eprintln!("skipped: needs /proc and two CPUs");
        return;
    }
    assert_eq!(allowed_list_of("cmwq/monitor"), None, "nothing has started the monitor yet");
    let wq = Workqueue::builder("mon-affinity").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let released = Arc::new(AtomicBool::new(false));
    // From a worker pinned to CPU 0: queue a plain sleeper and an item behind it on
    // the same CPU. The saturation is reported from this pinned thread, so the
    // monitor thread is spawned from it and inherits its one-CPU mask.
    let starter = {
        let (wq, released) = (wq.clone(), released.clone());
        Work::new(move |_| {
            let r1 = released.clone();
            let sleeper = Work::new(move |_| {
                let deadline = Instant::now() + DEADLINE;
                while !r1.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            let r2 = released.clone();
            let behind = Work::new(move |_| r2.store(true, Ordering::SeqCst));
            wq.queue_on(0, &sleeper).unwrap();
            wq.queue_on(0, &behind).unwrap();
            drop((sleeper, behind)); // the queue keeps queued items alive
        })
    };
    wq.queue_on(0, &starter).unwrap();
    // The item behind the sleeper ran: the monitor exists and did its job.
    let deadline = Instant::now() + DEADLINE;
    while !released.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the item behind the plain sleeper never ran");
        std::thread::sleep(Duration::from_millis(1));
    }
    let want = process_list();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = allowed_list_of("cmwq/monitor").expect("the monitor thread exists");
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "the monitor stays on CPUs {got}, the process has {want}");
        std::thread::sleep(Duration::from_millis(1));
    }
    wq.flush_bounded().unwrap();
}
