//! The watchdog's bell: how a pool that has work waiting makes sure the stall
//! watchdog (`monitor/watchdog/`, the kernel's `wq_watchdog_timer_fn`) is awake, without
//! knowing it. The pools arm; the watchdog installs the function that starts
//! its thread and keeps its run state here. `monitor/watchdog/README.md` has the
//! protocol and why no arming is lost.
//!
//! The watchdog's run state:
//!
//! | state | meaning | left by |
//! |---|---|---|
//! | `Unstarted` | no thread yet | the first arming starts it (`Running`) |
//! | `Parked` | every worklist was empty at its last look: it sleeps with no timeout, costs nothing | an arming: CAS to `Running`, unpark |
//! | `Running` | checks every pool at a quarter of the threshold | the watchdog parks after a check that finds every worklist empty |
//! | `Off` | threshold 0, or no thread could be started | `set_thresh` with a threshold above 0 |
//!
//! Arming is one relaxed load while the watchdog runs: a push that makes a
//! pool's worklist non-empty looks at the state under that pool's lock
//! (`WorkerPool::note_pushed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::bell::{self, RunBell};
use crate::platform::log;

/// The default threshold (`wq_watchdog_thresh`, 30 s).
pub(crate) const DEFAULT_THRESH: Duration = Duration::from_secs(30);
/// The longest threshold accepted: a day.
pub(crate) const MAX_THRESH: Duration = Duration::from_secs(24 * 60 * 60);

/// The watchdog's run state; see the table above (`Off` is the bell's
/// `STOPPED`: `context/bell.rs`). Ordered so that "needs an arming" is one
/// comparison (`< Running`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WatchdogState {
    Unstarted = bell::UNSTARTED,
    Parked = bell::PARKED,
    Running = bell::RUNNING,
    Off = bell::STOPPED,
}

/// See the module docs.
pub(crate) struct WatchdogBell {
    /// The watchdog thread and its run state, which the pools read at every
    /// push.
    bell: RunBell,
    /// The threshold in nanoseconds; 0: off. Relaxed: a setting.
    thresh_ns: AtomicU64,
}

impl std::fmt::Debug for WatchdogBell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchdogBell")
            .field("state", &self.state())
            .field("thresh", &self.thresh())
            .finish_non_exhaustive()
    }
}

/// `CMWQ_WATCHDOG_THRESH`: the threshold in whole seconds, 0 for off (the
/// kernel's `workqueue.watchdog_thresh`). A malformed value, or one above a
/// day, is reported and the default used.
fn env_thresh() -> Duration {
    let Ok(v) = std::env::var("CMWQ_WATCHDOG_THRESH") else { return DEFAULT_THRESH };
    match v.trim().parse::<u64>() {
        Ok(s) if Duration::from_secs(s) <= MAX_THRESH => Duration::from_secs(s),
        _ => {
            log::warn!(
                var = "CMWQ_WATCHDOG_THRESH",
                value = v.as_str(),
                default_secs = DEFAULT_THRESH.as_secs(),
                "cmwq: ignoring a malformed setting: expected whole seconds from 0 (off) to 86400; using the default"
            );
            DEFAULT_THRESH
        }
    }
}

impl WatchdogBell {
    /// A bell with the threshold from the environment (or the default).
    pub(crate) fn from_env() -> WatchdogBell {
        Self::new(env_thresh())
    }

    pub(crate) fn new(thresh: Duration) -> WatchdogBell {
        let state = if thresh.is_zero() { WatchdogState::Off } else { WatchdogState::Unstarted };
        WatchdogBell { bell: RunBell::new(state as u8), thresh_ns: AtomicU64::new(duration_ns(thresh)) }
    }

    // ---- the pools' side ----

    /// A pool has work waiting: wake the watchdog if it sleeps or was never
    /// started. Called under that pool's lock, after the push. One relaxed load
    /// while the watchdog runs (or is off).
    #[inline]
    pub(crate) fn arm(&self) {
        #[cfg(not(loom))]
        if self.bell.load() < WatchdogState::Running as u8 {
            self.arm_slow();
        }
    }

    /// Wakes a parked watchdog, or starts it (`Off` if it cannot be started).
    /// Also called by `set_thresh` (with no lock held).
    pub(crate) fn arm_slow(&self) {
        self.bell.wake();
    }

    // ---- the watchdog's side ----

    /// Installs the function that starts the watchdog thread (once).
    pub(crate) fn install(&self, start: impl Fn() -> bool + Send + Sync + 'static) {
        self.bell.install(start);
    }

    /// The watchdog thread records itself, for `unpark`.
    pub(crate) fn set_thread(&self, t: std::thread::Thread) {
        self.bell.set_thread(t);
    }

    /// Wakes the watchdog thread, if there is one, to look at its state again.
    pub(crate) fn unpark(&self) {
        self.bell.unpark();
    }

    /// Whether the thread was started.
    pub(crate) fn has_thread(&self) -> bool {
        self.bell.has_thread()
    }

    pub(crate) fn state(&self) -> WatchdogState {
        match self.bell.load() {
            0 => WatchdogState::Unstarted,
            1 => WatchdogState::Parked,
            2 => WatchdogState::Running,
            _ => WatchdogState::Off,
        }
    }

    /// Stores the state. `Parked` is stored *before* the watchdog's last look
    /// at the pools, which takes every pool lock: that lock orders the store
    /// before the load in [`arm`](Self::arm) of any push the look missed
    /// (`monitor/watchdog/README.md`), so relaxed is enough.
    pub(crate) fn set(&self, s: WatchdogState) {
        self.bell.store(s as u8);
    }

    /// Relaxed: see `context/bell.rs`.
    pub(crate) fn cas(&self, from: WatchdogState, to: WatchdogState) -> bool {
        self.bell.cas(from as u8, to as u8)
    }

    pub(crate) fn thresh(&self) -> Duration {
        Duration::from_nanos(self.thresh_ns.load(Ordering::Relaxed))
    }

    /// Sets the threshold; the caller (`watchdog::set_thresh`) has checked it
    /// and moves the state.
    pub(crate) fn set_thresh(&self, d: Duration) {
        self.thresh_ns.store(duration_ns(d), Ordering::Relaxed);
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
