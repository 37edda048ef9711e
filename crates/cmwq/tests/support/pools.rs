//! The process-wide state that tests share: the per-CPU pools, the lock that
//! serialises the tests that watch them, the sleep monitor, and CPUs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::wait::{poll_until, Bounded, DEADLINE};

/// Tests that depend on a CPU pool's concurrency accounting (a CPU-bound item must
/// hold back others), on which worker runs what, or on other process-wide state
/// take this exclusively; the rest of a binary's tests take it shared, so they
/// still run in parallel with each other. The worker pools are process-wide, so
/// each test binary (one process) has its own. `parking_lot` does not poison, so
/// one failed test does not fail the others.
static POOL_LOCK: RwLock<()> = RwLock::new(());

/// How long a test waits for the pool lock before it takes the holder for hung:
/// a test that fails makes waits of [`DEADLINE`] each, possibly several in a row,
/// and a test waiting behind it must not fail for that.
const LOCK_WAIT: Duration = DEADLINE.saturating_mul(10);

/// The default CPU-intensive threshold (`cmwq::set_cpu_intensive_thresh`), which
/// [`Exclusive`] restores.
const CPU_INTENSIVE_THRESH: Duration = Duration::from_millis(10);

/// Held by a test that needs the pools to itself: see [`exclusive`].
#[derive(Debug)]
pub(crate) struct Exclusive {
    _write: RwLockWriteGuard<'static, ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        cmwq::set_cpu_intensive_thresh(CPU_INTENSIVE_THRESH);
    }
}

/// Takes the pool lock exclusively. It also turns off the CPU-intensive rule
/// (`set_cpu_intensive_thresh(0)`), which would let other items start once a
/// CPU-bound item has burnt 10 ms (or been charged that much for a stolen vCPU),
/// until the guard is dropped, which restores the default. A test of that rule
/// sets the threshold it needs after taking the lock. Waits at most
/// [`LOCK_WAIT`].
#[track_caller]
pub(crate) fn exclusive() -> Exclusive {
    let g = POOL_LOCK.try_write_for(LOCK_WAIT).expect("another test held the pool lock past LOCK_WAIT");
    cmwq::set_cpu_intensive_thresh(Duration::ZERO);
    Exclusive { _write: g }
}

/// Takes the pool lock shared: see [`exclusive`].
#[track_caller]
pub(crate) fn shared() -> RwLockReadGuard<'static, ()> {
    POOL_LOCK.try_read_for(LOCK_WAIT).expect("another test held the pool lock past LOCK_WAIT")
}

/// Switches the sleep monitor off for the whole process, so that only the hints
/// (`cmwq::blocking`, `cmwq::sleep`) can take a worker out of concurrency
/// management: a test of a hint then fails when the hint is broken, instead of
/// being rescued by the monitor. Workers started while the monitor was on stay
/// probed, so a test binary that needs this calls it first in every test, before
/// anything creates a worker, and never turns the monitor back on.
pub(crate) fn hints_only() {
    cmwq::set_sleep_monitor(false);
}

/// Asserts that the sleep monitor never took a worker out of concurrency
/// management in this process: whatever let an item past a blocked one was a hint.
#[track_caller]
pub(crate) fn assert_monitor_blocked_nobody() {
    let m = cmwq::debug::monitor();
    assert_eq!(m.blocked, 0, "the sleep monitor took a blocked worker out; only the hints may here: {m:?}");
}

/// The CPU used for single-CPU tests.
pub(crate) fn cpu0() -> usize {
    cmwq::allowed_cpus()[0]
}

/// A second CPU, if the process may use one.
pub(crate) fn cpu1() -> Option<usize> {
    cmwq::allowed_cpus().get(1).copied()
}

/// Two CPUs to queue on: the first two usable ones, or the only one twice.
pub(crate) fn two_cpus() -> (usize, usize) {
    (cpu0(), cpu1().unwrap_or_else(cpu0))
}

/// Two different CPUs, `(cpu0, cpu1)`, for a test that needs two; `None` (the
/// test is skipped, and says so) where the process may use only one.
pub(crate) fn distinct_cpus() -> Option<(usize, usize)> {
    let Some(d) = cpu1() else {
        eprintln!("skipped: needs two CPUs");
        return None;
    };
    Some((cpu0(), d))
}

/// Whether a thread pinned to `cpu` gets it back at once from most of 50
/// yields: nothing else is runnable there (the idle sentinels' waiting rule
/// needs such a CPU; `monitor/README.md`, "Waiting for a CPU counts as stalled").
pub(crate) fn yields_come_straight_back(cpu: usize) -> bool {
    super::wait::join_bounded(std::thread::spawn(move || {
        pin_current_thread(cpu);
        let mut quick = 0;
        for _ in 0..50 {
            let t = std::time::Instant::now();
            std::thread::yield_now();
            if t.elapsed() < Duration::from_micros(20) {
                quick += 1;
            }
        }
        quick > 40
    }))
}

/// `n` CPU-bound items that each pin their worker to `cpu` and spin there until
/// `let_go` is set, then give the worker its affinity back. Stacked on one CPU,
/// all but one of them wait for it: runnable and off the CPU. `on_start(i)` runs
/// once item `i` is on `cpu`. An item still spinning at `deadline` stops, and
/// counts in the returned counter (a test asserts it stays 0).
pub(crate) fn stacked_spinners(
    cpu: usize,
    n: usize,
    let_go: &Arc<AtomicBool>,
    deadline: Instant,
    on_start: impl Fn(usize) + Clone + Send + Sync + 'static,
) -> (Vec<cmwq::Work>, Arc<AtomicUsize>) {
    let timed_out = Arc::new(AtomicUsize::new(0));
    let items = (0..n)
        .map(|i| {
            let (let_go, timed_out, on_start) = (let_go.clone(), timed_out.clone(), on_start.clone());
            cmwq::Work::new(move |_| {
                let mask = thread_affinity();
                pin_current_thread(cpu);
                on_start(i);
                while !let_go.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        timed_out.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    std::hint::spin_loop();
                }
                set_thread_affinity(&mask);
            })
        })
        .collect();
    (items, timed_out)
}

/// Restricts the calling thread to `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) {
    set_thread_affinity(&[cpu]);
}

/// Sets the calling thread's affinity mask to `cpus`.
pub(crate) fn set_thread_affinity(cpus: &[usize]) {
    // SAFETY: all-zero bytes are a valid, empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        assert!(cpu < 8 * std::mem::size_of::<libc::cpu_set_t>());
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above) and `set` is initialised.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity({cpus:?}): {}", std::io::Error::last_os_error());
}

/// The CPUs in the calling thread's affinity mask, ascending.
pub(crate) fn thread_affinity() -> Vec<usize> {
    // SAFETY: all-zero bytes are a valid, empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads bit `c` of an initialised set; `c` is below CPU_SETSIZE.
    (0..max).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// The snapshot of the normal or highpri per-CPU pool of `cpu`, if it exists yet.
pub(crate) fn pool_of(cpu: usize, highpri: bool) -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.cpu == Some(cpu) && p.highpri == highpri)
}

/// The unbound pool's snapshot (normal priority), if it exists yet.
pub(crate) fn unbound_pool() -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.cpu.is_none() && !p.highpri)
}

/// The id of the unbound pool whose worker runs the calling item, from the
/// worker's thread name (`cmwq/u<id>:<n>`); `None` on any other thread.
/// Allocates and blocks on nothing, so a CPU-bound item may call it without
/// leaving its CPU.
pub(crate) fn current_unbound_pool() -> Option<u32> {
    let me = std::thread::current();
    me.name()?.strip_prefix("cmwq/u")?.split(':').next()?.parse().ok()
}

/// The snapshot of the pool with id `id`, if it exists.
pub(crate) fn pool_by_id(id: u32) -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.id == id)
}

/// The unbound pool that runs `wq`'s next item: queues one that notes its
/// pool, waits for it (bounded), and returns the pool's snapshot. Panics if it
/// ran on no unbound pool.
#[track_caller]
pub(crate) fn unbound_pool_of(wq: &cmwq::Workqueue) -> cmwq::debug::PoolSnapshot {
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(None));
    let s = seen.clone();
    let w = cmwq::Work::new(move |_| *s.lock() = current_unbound_pool());
    wq.queue(&w).unwrap();
    w.flush_bounded().unwrap();
    let id = seen.lock().expect("the item ran on an unbound pool's worker");
    pool_by_id(id).expect("a pool that ran an item exists")
}

/// Waits until every pool of `ids` counts nobody running and nobody busy: its
/// accounting is exact again once its items are done (a worker between items,
/// in its idle spin, still counts for a moment, hence the wait). Panics, naming
/// `what` and the pools, after [`DEADLINE`].
#[track_caller]
pub(crate) fn assert_pools_settle(what: &str, ids: &[u32]) {
    let settled = |p: &cmwq::debug::PoolSnapshot| p.running == 0 && p.busy == 0;
    let ok = poll_until(DEADLINE, || ids.iter().all(|&id| pool_by_id(id).is_some_and(|p| settled(&p))));
    assert!(
        ok,
        "{what}: a pool's accounting never returned to 0 running, 0 busy: {:?}",
        ids.iter().map(|&id| pool_by_id(id)).collect::<Vec<_>>()
    );
}

/// Waits until `cpu`'s normal pool counts nobody running and nobody busy: a worker
/// of an earlier test may still be between its last item and going idle, and would
/// take the next item without a concurrency-management wake-up.
#[track_caller]
pub(crate) fn settle_pool(cpu: usize) {
    let ok = poll_until(DEADLINE, || pool_of(cpu, false).is_none_or(|p| p.running == 0 && p.busy == 0));
    assert!(ok, "CPU {cpu}'s pool never settled: {:?}", pool_of(cpu, false));
}

/// A per-CPU queue whose pool on [`cpu0`] is warm: at least two workers exist (the
/// pool's first worker creates an idle reserve before its first item), so nothing
/// a test observes is the pool's first creation.
pub(crate) fn warm_queue(name: &str) -> cmwq::Workqueue {
    let wq = cmwq::Workqueue::builder(name).flags(cmwq::WqFlags::PERCPU).build().unwrap();
    for _ in 0..2 {
        let w = cmwq::Work::new(|_| {});
        wq.queue_on(cpu0(), &w).unwrap();
        w.flush_bounded().unwrap();
    }
    wq
}
