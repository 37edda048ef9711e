//! A helper thread that the pools wake without knowing it: its run state, its
//! thread and the function that starts it. The sleep monitor's doorbell
//! ([`Doorbell`](super::Doorbell)) and the stall watchdog's bell
//! ([`WatchdogBell`](super::WatchdogBell)) are each one of these, with their own
//! names for the states and their own reasons why no wake is lost (their module
//! docs).
//!
//! | state | meaning | left by |
//! |---|---|---|
//! | [`UNSTARTED`] | no thread yet | [`wake`](RunBell::wake) starts it (`RUNNING`) |
//! | [`PARKED`] | the thread sleeps with no timeout | [`wake`](RunBell::wake): CAS to `RUNNING`, unpark |
//! | [`RUNNING`] | the thread works and will look again | the thread, when it parks |
//! | [`STOPPED`] | no thread could be started, or it was turned off | the owner |
//!
//! Every access is `Relaxed`: the CAS alone decides who wakes or starts the
//! thread (one word, one winner), and what the thread must see is ordered by
//! the pool locks its owner's protocol takes.

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use crate::platform::loom::{AtomicU8, Ordering};

pub(crate) const UNSTARTED: u8 = 0;
pub(crate) const PARKED: u8 = 1;
pub(crate) const RUNNING: u8 = 2;
pub(crate) const STOPPED: u8 = 3;

/// Starts the thread; returns whether it started.
type StartFn = Box<dyn Fn() -> bool + Send + Sync>;

/// See the module docs.
pub(crate) struct RunBell {
    /// Alone on its cache line: the pools read it often (the watchdog's at
    /// every push), and it changes only when the thread parks or wakes.
    state: CachePadded<AtomicU8>,
    /// The thread, once it runs (set by the thread itself).
    thread: OnceLock<std::thread::Thread>,
    start: OnceLock<StartFn>,
}

impl RunBell {
    pub(crate) fn new(state: u8) -> RunBell {
        RunBell {
            state: CachePadded::new(AtomicU8::new(state)),
            thread: OnceLock::new(),
            start: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    pub(crate) fn store(&self, s: u8) {
        self.state.store(s, Ordering::Relaxed);
    }

    pub(crate) fn cas(&self, from: u8, to: u8) -> bool {
        self.state.compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Wakes a parked thread, or starts one that never ran (`STOPPED` if it
    /// cannot be started). A running or stopped one is left alone.
    #[cold]
    pub(crate) fn wake(&self) {
        if self.cas(PARKED, RUNNING) {
            self.unpark();
            return;
        }
        let Some(start) = self.start.get() else { return };
        if self.cas(UNSTARTED, RUNNING) && !start() {
            self.store(STOPPED);
        }
    }

    /// Installs the function that starts the thread (once; later calls do
    /// nothing). Without one, [`wake`](Self::wake) starts nobody.
    pub(crate) fn install(&self, start: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.start.set(Box::new(start));
    }

    /// The thread records itself, for `unpark`.
    pub(crate) fn set_thread(&self, t: std::thread::Thread) {
        let _ = self.thread.set(t);
    }

    /// Wakes the thread, if there is one, to look at its state again.
    pub(crate) fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// Whether the thread was started.
    pub(crate) fn has_thread(&self) -> bool {
        self.thread.get().is_some()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn a_wake_starts_once_and_a_refused_start_stops() {
        let bell = RunBell::new(UNSTARTED);
        bell.wake(); // nothing installed: nobody to start
        assert_eq!(bell.load(), UNSTARTED);
        let starts = Arc::new(AtomicUsize::new(0));
        let s = starts.clone();
        bell.install(move || s.fetch_add(1, Ordering::Relaxed) > 0); // the first start fails
        bell.wake();
        assert_eq!((bell.load(), starts.load(Ordering::Relaxed)), (STOPPED, 1));
        bell.wake(); // stopped: left alone
        assert_eq!((bell.load(), starts.load(Ordering::Relaxed)), (STOPPED, 1));
    }

    #[test]
    fn a_wake_moves_a_parked_thread_to_running_and_leaves_a_running_one() {
        let bell = RunBell::new(PARKED);
        bell.set_thread(std::thread::current());
        assert!(bell.has_thread());
        let starts = Arc::new(AtomicUsize::new(0));
        let s = starts.clone();
        bell.install(move || s.fetch_add(1, Ordering::Relaxed) == 0);
        bell.wake();
        assert_eq!(bell.load(), RUNNING);
        bell.wake();
        assert_eq!(
            (bell.load(), starts.load(Ordering::Relaxed)),
            (RUNNING, 0),
            "a thread exists: none started"
        );
    }
}
