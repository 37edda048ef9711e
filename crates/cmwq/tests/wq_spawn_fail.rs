//! Thread-creation failure (issue 4): with `EAGAIN` injected into the next worker
//! creations (as under `pids.max`), nothing is lost. The pool cools down for 1 s,
//! as the kernel does, the monitor retries, and the items that needed the new
//! workers all run.
//!
//! Alone in its binary: the fault injection is process-wide.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cmwq::{Work, Workqueue};
use support::{cpu0, pool_of, Bounded, BoundedQueue, Gate, DEADLINE};

/// Items that can only finish together: each waits (announced) until all have
/// started, so the pool must create a worker for each of them.
const N: usize = 4;

#[test]
fn failed_thread_creation_loses_nothing_and_the_pool_recovers() {
    let wq = Workqueue::builder("spawnfail").flags(cmwq::WqFlags::PERCPU).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let all_in = Gate::new();
    let throttled_before = cmwq::debug::nr_throttled();
    // The first creations of this fresh per-CPU pool fail: it starts with no
    // worker at all, and only the retry after the cooldown can run anything.
    cmwq::debug::fail_next_spawns(2);
    let items: Vec<Work> = (0..N)
        .map(|_| {
            let (started, done, all_in) = (started.clone(), done.clone(), all_in.clone());
            Work::new(move |_| {
                if started.fetch_add(1, Ordering::SeqCst) + 1 == N {
                    all_in.open();
                }
                if all_in.wait_blocking() {
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for w in &items {
        assert!(wq.queue_on(cpu0(), w).unwrap());
    }
    assert!(all_in.wait_for(DEADLINE), "only {} of {N} items started", started.load(Ordering::SeqCst));
    wq.flush_bounded().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), N, "an item gave up waiting for the others");
    assert!(cmwq::debug::nr_throttled() >= throttled_before + 2, "the two failed creations were not counted");
    let pool = pool_of(cpu0(), false).unwrap();
    assert!(pool.created as usize >= N, "the pool did not recover: {pool:?}");
    // And it keeps working.
    let again = Arc::new(AtomicUsize::new(0));
    let a = again.clone();
    let w = Work::new(move |_| {
        a.fetch_add(1, Ordering::SeqCst);
    });
    assert!(wq.queue_on(cpu0(), &w).unwrap());
    w.flush_bounded().unwrap();
    assert_eq!(again.load(Ordering::SeqCst), 1);
    wq.destroy_bounded().unwrap();
}
