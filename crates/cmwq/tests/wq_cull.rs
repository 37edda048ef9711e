//! Idle-worker culling (spec §5.7, and the userspace rule that a quiescent pool
//! shrinks to zero). The idle timeout is process-wide, hence this binary of its own,
//! and its tests are serialised.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmwq::{Work, Workqueue, WqFlags};
use support::{cpu0, exclusive, poll_until, pool_of, unbound_pool, Bounded, BoundedQueue, Gate, DEADLINE};

const TIMEOUT: Duration = Duration::from_millis(200);

/// Queues `n` items on `wq` (on `cpu` if given) that each block on their own gate,
/// and waits until all of them run. Returns the gates.
fn block_n(wq: &Workqueue, cpu: Option<usize>, n: usize) -> Vec<Gate> {
    let started = Arc::new(AtomicUsize::new(0));
    let gates: Vec<Gate> = (0..n).map(|_| Gate::new()).collect();
    for g in &gates {
        let (g, started) = (g.clone(), started.clone());
        let w = Work::new(move |_| {
            started.fetch_add(1, Ordering::SeqCst);
            g.wait_blocking();
        });
        match cpu {
            Some(c) => assert_eq!(wq.queue_on(c, &w), Ok(true)),
            None => assert_eq!(wq.queue(&w), Ok(true)),
        }
    }
    if !poll_until(DEADLINE, || started.load(Ordering::SeqCst) == n) {
        gates.iter().for_each(|g| g.open());
        panic!("only {} of {n} blocking items started", started.load(Ordering::SeqCst));
    }
    gates
}

#[test]
fn idle_workers_of_a_quiescent_cpu_pool_are_culled_to_zero() {
    let _x = exclusive();
    cmwq::set_idle_timeout(TIMEOUT);
    assert_eq!(cmwq::idle_timeout(), TIMEOUT);
    let c = cpu0();
    let wq = Workqueue::builder("cull-cpu").flags(WqFlags::PERCPU).build().unwrap();
    const N: usize = 6;
    let gates = block_n(&wq, Some(c), N);
    let busy = pool_of(c, false).unwrap();
    assert!(busy.workers > N, "{busy:?}");
    gates.iter().for_each(|g| g.open());
    wq.flush_bounded().unwrap();
    let shrunk = poll_until(DEADLINE, || pool_of(c, false).is_some_and(|p| p.workers == 0));
    let after = pool_of(c, false).unwrap();
    assert!(shrunk, "a quiescent pool keeps workers: {after:?}");
    assert!(after.culled >= busy.culled + busy.workers as u64, "before {busy:?}, after {after:?}");
    assert_eq!(after.idle, 0);
    // A pool shrunk to zero starts again on the next item.
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let w = Work::new(move |_| {
        r2.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(wq.queue_on(c, &w), Ok(true));
    w.flush_bounded().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // And blocking still gets covered by a fresh reserve.
    let gates = block_n(&wq, Some(c), 3);
    gates.iter().for_each(|g| g.open());
    wq.destroy_bounded().unwrap();
}

/// While an item still runs, culling leaves two idle workers (`too_many_workers`);
/// once the pool is quiescent all of them go.
#[test]
fn a_busy_pool_keeps_two_idle_workers() {
    let _x = exclusive();
    cmwq::set_idle_timeout(TIMEOUT);
    let c = cpu0();
    let wq = Workqueue::builder("cull-busy").flags(WqFlags::PERCPU).build().unwrap();
    const N: usize = 8;
    let gates = block_n(&wq, Some(c), N);
    // Release all but one: one worker stays busy (sleeping inside its item).
    gates[1..].iter().for_each(|g| g.open());
    let culled = poll_until(DEADLINE, || pool_of(c, false).is_some_and(|p| p.busy == 1 && p.idle == 2));
    assert!(culled, "{:?}", pool_of(c, false));
    // It stays there over several more timeouts.
    std::thread::sleep(TIMEOUT * 3);
    let p = pool_of(c, false).unwrap();
    assert_eq!((p.busy, p.idle, p.workers), (1, 2, 3), "{p:?}");
    gates[0].open();
    wq.flush_bounded().unwrap();
    assert!(
        poll_until(DEADLINE, || pool_of(c, false).is_some_and(|p| p.workers == 0)),
        "{:?}",
        pool_of(c, false)
    );
    wq.destroy_bounded().unwrap();
}

#[test]
fn idle_workers_of_the_unbound_pool_are_culled_to_zero() {
    let _x = exclusive();
    cmwq::set_idle_timeout(TIMEOUT);
    let wq = Workqueue::builder("cull-unbound").flags(WqFlags::UNBOUND).build().unwrap();
    const N: usize = 5;
    let gates = block_n(&wq, None, N);
    let busy = unbound_pool().unwrap();
    assert!(busy.workers >= N, "{busy:?}");
    gates.iter().for_each(|g| g.open());
    wq.flush_bounded().unwrap();
    assert!(poll_until(DEADLINE, || unbound_pool().is_some_and(|p| p.workers == 0)), "{:?}", unbound_pool());
    assert!(unbound_pool().unwrap().culled >= busy.culled + N as u64);
    wq.destroy_bounded().unwrap();
}
