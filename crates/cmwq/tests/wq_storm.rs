//! Thread limits under a storm (issue 4): 10,000 items that block without telling
//! the pool (plain `std::thread::sleep`) make the sleep monitor ask for ever more
//! workers. The ceiling on concurrency-managed workers holds, the refusals are
//! counted, and every item still runs exactly once: at the limit, work waits.
//!
//! Alone in its binary: it reads the process-wide peak worker counts.

mod support;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{Work, Workqueue};
use support::{Bounded, BoundedQueue};

const ITEMS: usize = 10_000;
const CM_LIMIT: usize = 16;

#[test]
fn a_storm_of_unannotated_blockers_stays_within_the_limits_and_completes() {
    cmwq::set_max_cm_workers(CM_LIMIT);
    let throttled_before = cmwq::debug::nr_throttled();
    let mon_before = cmwq::debug::monitor();
    let wq = Workqueue::builder("storm").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let cpus = cmwq::allowed_cpus();
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..ITEMS).map(|_| AtomicU8::new(0)).collect());
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let items: Vec<Work> = (0..ITEMS)
        .map(|i| {
            let (runs, running, peak) = (runs.clone(), running.clone(), peak.clone());
            Work::new(move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2)); // unannotated
                running.fetch_sub(1, Ordering::SeqCst);
                runs[i].fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for (i, w) in items.iter().enumerate() {
        assert!(wq.queue_on(cpus[i % cpus.len()], w).unwrap());
    }
    wq.flush_bounded().unwrap();

    let twice: Vec<usize> = (0..ITEMS).filter(|&i| runs[i].load(Ordering::SeqCst) != 1).collect();
    assert!(
        twice.is_empty(),
        "{} items did not run exactly once, first {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    let (peak_all, peak_cm) = cmwq::debug::peak_workers();
    assert!(peak_cm <= CM_LIMIT, "{peak_cm} concurrency-managed workers at once, limit {CM_LIMIT}");
    assert!(peak_all <= 512, "{peak_all} workers at once, limit 512");
    assert!(peak.load(Ordering::SeqCst) <= CM_LIMIT, "more items ran at once than there may be workers");
    let mon = cmwq::debug::monitor();
    assert!(mon.blocked > mon_before.blocked, "the monitor never saw a blocked worker: {mon:?}");
    assert!(
        peak.load(Ordering::SeqCst) > cpus.len(),
        "blocked workers were never covered: at most {} items ran at once",
        peak.load(Ordering::SeqCst)
    );
    assert!(
        cmwq::debug::nr_throttled() > throttled_before,
        "the pools wanted more than {CM_LIMIT} workers for {ITEMS} blockers but no refusal was counted"
    );
    wq.destroy_bounded().unwrap();
}
