//! Helpers shared by `wq_work`, `wq_nonreentrant`, `wq_workqueue` and `wq_send_sync`.
//!
//! Every wait here is bounded by [`DEADLINE`], a liveness bound (a hung library
//! fails the test instead of hanging it), never an assertion about speed.
#![allow(dead_code, reason = "each test file uses a different subset of the helpers")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

/// How long any wait may take before the test gives up. Generous: a loaded machine
/// slows the tests down, it must not fail them.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Serialises the tests of one binary. The worker pools are process-wide, so a test
/// that reasons about which worker runs what (or how many items a pool runs) must
/// not share the pools with another test of the same process. `parking_lot` does
/// not poison, so one failed test does not fail the others.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
}

/// Polls `cond` until it holds; panics after [`DEADLINE`].
#[track_caller]
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting for: {what}");
        }
        spins += 1;
        if spins < 10 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// A gate that work items wait on (inside [`cmwq::blocking`], so the pool may start
/// other items meanwhile) until the test opens it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate::default()
    }

    /// Lets every current and future waiter through.
    pub(crate) fn open(&self) {
        *self.0 .0.lock() = true;
        self.0 .1.notify_all();
    }

    pub(crate) fn is_open(&self) -> bool {
        *self.0 .0.lock()
    }

    /// Waits until the gate opens, telling the pool that this worker blocks.
    pub(crate) fn wait(&self) {
        cmwq::blocking(|| {
            let mut g = self.0 .0.lock();
            while !*g {
                self.0 .1.wait(&mut g);
            }
        })
    }

    /// A guard that opens the gate when dropped, also when the test panics, so a
    /// failed test does not leave workers blocked for the tests that follow.
    pub(crate) fn open_on_drop(&self) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

#[derive(Debug)]
pub(crate) struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Counts how many callers are inside a section at once and the most ever seen.
#[derive(Debug, Default)]
pub(crate) struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    pub(crate) fn enter(&self) -> ConcurrencyGuard<'_> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        ConcurrencyGuard(self)
    }
    pub(crate) fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
pub(crate) struct ConcurrencyGuard<'a>(&'a Concurrency);

impl Drop for ConcurrencyGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A log of events in the order they happened.
#[derive(Debug)]
pub(crate) struct Log<T>(Mutex<Vec<T>>);

impl<T: Clone> Log<T> {
    pub(crate) fn new() -> Log<T> {
        Log(Mutex::new(Vec::new()))
    }
    pub(crate) fn push(&self, t: T) {
        self.0.lock().push(t);
    }
    pub(crate) fn len(&self) -> usize {
        self.0.lock().len()
    }
    pub(crate) fn snapshot(&self) -> Vec<T> {
        self.0.lock().clone()
    }
}

impl<T: Clone> Default for Log<T> {
    fn default() -> Self {
        Log::new()
    }
}

/// Restricts the calling thread to `cpu`.
pub(crate) fn pin_current_thread(cpu: usize) {
    // SAFETY: all-zero bytes are a valid, empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    assert!(cpu < 8 * std::mem::size_of::<libc::cpu_set_t>());
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above) and `set` is initialised.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity({cpu}): {}", std::io::Error::last_os_error());
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

/// Two CPUs to queue on: the first two usable ones, or the only one twice.
pub(crate) fn two_cpus() -> (usize, usize) {
    let cpus = cmwq::allowed_cpus();
    assert!(!cpus.is_empty(), "allowed_cpus() is empty");
    (cpus[0], *cpus.get(1).unwrap_or(&cpus[0]))
}

/// The live snapshot of `cpu`'s normal or highpri pool, if it exists yet.
pub(crate) fn cpu_pool(cpu: usize, highpri: bool) -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.cpu == Some(cpu) && p.highpri == highpri)
}
