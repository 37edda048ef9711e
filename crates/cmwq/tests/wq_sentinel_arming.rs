//! An idle sentinel is armed for a per-CPU pool only once it blocked unannounced
//! lately (`WorkerPool::blocks_unannounced`): CPU-bound work, or work that
//! announces its blocks, pays nothing for it. (An unbound pool of several CPUs
//! that blocks announced is covered too: `wq_unbound_accounting.rs`.) The first unannounced block in a pool is found by
//! the monitor's tick; from then on the sentinel is armed at each saturation.
//!
//! A binary of its own: sentinel threads start once per process.

mod support;

use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue};
use support::{burn_cpu, plain_sleeper_with_one_behind, Bounded, BoundedQueue, DEADLINE};

#[test]
fn sentinels_are_armed_only_for_pools_that_blocked_unannounced() {
    if std::fs::metadata("/proc/self/task").is_err() {
        eprintln!("skipped: needs /proc");
        return;
    }
    let cpu = cmwq::allowed_cpus()[0];
    let wq = Workqueue::builder("arming").flags(cmwq::WqFlags::PERCPU).build().unwrap();

    // CPU-bound and announced-blocking work saturates the pool again and again.
    let items: Vec<Work> = (0..20)
        .map(|i| {
            Work::new(move |_| {
                burn_cpu(Duration::from_millis(1));
                if i % 2 == 0 {
                    cmwq::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for w in &items {
        wq.queue_on(cpu, w).unwrap();
    }
    wq.flush_bounded().unwrap();
    // Give a wrongly armed sentinel the monitor's next ticks to be started.
    std::thread::sleep(Duration::from_millis(50));
    let m = cmwq::debug::monitor();
    assert_eq!(m.sentinels, 0, "a sentinel started for a pool that never blocked unannounced: {m:?}");
    assert_eq!(m.blocked, 0, "nothing blocked unannounced: {m:?}");

    // The first unannounced block is the monitor's; from then on the pool's
    // saturations arm the CPU's sentinel, which the monitor starts. (Whether the
    // sentinel or the monitor then catches a block depends on the CPU being idle
    // at that moment, so it is not asserted here: `wq_sentinel.rs` tests that.)
    plain_sleeper_with_one_behind(&wq, cpu);
    let m = cmwq::debug::monitor();
    assert!(m.blocked >= 1, "the monitor found the first block: {m:?}");
    assert_eq!(m.by_sentinel, 0, "no sentinel existed for the first block: {m:?}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        plain_sleeper_with_one_behind(&wq, cpu);
        let m = cmwq::debug::monitor();
        if m.sentinels >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no sentinel was started after an unannounced block: {m:?}");
    }
    wq.destroy_bounded().unwrap();
}
