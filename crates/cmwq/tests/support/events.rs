//! What tests and work items signal and record: a gate, an event log, counters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::wait::DEADLINE;

/// A one-way gate, closed until [`open`](Gate::open), then open for good. Clones
/// share the gate.
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

    /// Waits until the gate opens or `timeout` passes, without telling the pool;
    /// returns whether it is open. Inside a work item, [`wait_blocking`] is
    /// usually what a test wants.
    ///
    /// [`wait_blocking`]: Gate::wait_blocking
    pub(crate) fn wait_for(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut open = self.0 .0.lock();
        while !*open {
            if self.0 .1.wait_until(&mut open, deadline).timed_out() {
                return *open;
            }
        }
        true
    }

    /// Waits until the gate opens, inside [`cmwq::blocking`] (so that the pool may
    /// start other items meanwhile), for at most [`DEADLINE`]; returns whether it
    /// opened. A test that never opens the gate fails by its own deadline; this
    /// one only keeps its worker from waiting forever.
    pub(crate) fn wait_blocking(&self) -> bool {
        cmwq::blocking(|| self.wait_for(DEADLINE))
    }

    /// A guard that opens the gate when dropped, also when the test panics, so a
    /// failed test does not leave workers blocked for the tests that follow.
    pub(crate) fn open_on_drop(&self) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

/// Opens its gate when dropped; see [`Gate::open_on_drop`].
#[derive(Debug)]
pub(crate) struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// An append-only log of events in the order they happened, which a test can wait
/// on. Clones share the log. Events are strings ([`Log::new`]); a log of another
/// type of event is made with `Log::default()`.
#[derive(Debug)]
pub(crate) struct Log<T = String>(Arc<(Mutex<Vec<T>>, Condvar)>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new((Mutex::new(Vec::new()), Condvar::new())))
    }
}

impl Log {
    /// An empty log of string events.
    pub(crate) fn new() -> Log {
        Log::default()
    }

    /// Whether `e` was logged.
    pub(crate) fn has(&self, e: &str) -> bool {
        self.0 .0.lock().iter().any(|x| x == e)
    }

    /// Asserts that `a` was logged before `b` (first occurrences).
    #[track_caller]
    pub(crate) fn assert_before(&self, a: &str, b: &str) {
        let ev = self.0 .0.lock();
        let pa = ev.iter().position(|x| x == a);
        let pb = ev.iter().position(|x| x == b);
        match (pa, pb) {
            (Some(pa), Some(pb)) => assert!(pa < pb, "expected {a:?} before {b:?}; log: {ev:?}"),
            _ => panic!("expected both {a:?} and {b:?} in log: {ev:?}"),
        }
    }

    /// Waits until `e` is logged or `timeout` passes; returns whether it is there.
    pub(crate) fn wait_for(&self, e: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut ev = self.0 .0.lock();
        loop {
            if ev.iter().any(|x| x == e) {
                return true;
            }
            if self.0 .1.wait_until(&mut ev, deadline).timed_out() {
                return ev.iter().any(|x| x == e);
            }
        }
    }

    /// Waits for `e` and panics with the log if it does not come within
    /// [`DEADLINE`].
    #[track_caller]
    pub(crate) fn expect(&self, e: &str) {
        if !self.wait_for(e, DEADLINE) {
            panic!("event {e:?} did not happen within {DEADLINE:?}; log: {:?}", self.snapshot());
        }
    }
}

impl<T: Clone> Log<T> {
    pub(crate) fn push(&self, e: impl Into<T>) {
        self.0 .0.lock().push(e.into());
        self.0 .1.notify_all();
    }

    pub(crate) fn len(&self) -> usize {
        self.0 .0.lock().len()
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        self.0 .0.lock().clone()
    }
}

/// A work item that logs `event` each time it runs.
pub(crate) fn logging(log: &Log, event: &'static str) -> cmwq::Work {
    let log = log.clone();
    cmwq::Work::new(move |_| log.push(event))
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

/// Inside a [`Concurrency`] section until dropped.
#[derive(Debug)]
pub(crate) struct ConcurrencyGuard<'a>(&'a Concurrency);

impl Drop for ConcurrencyGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts its drops; clone the counter to watch it.
#[derive(Debug)]
pub(crate) struct DropGuard(pub(crate) Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
