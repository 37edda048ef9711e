//! The doorbell: how a pool tells the sleep monitor that it is *saturated* (work
//! waiting behind a worker that counts as running, so nobody was woken: exactly
//! when a worker may have blocked unannounced) or *starved* (refused a worker),
//! without knowing the monitor. The pool rings; the monitor (`monitor/`)
//! installs the function that starts its thread, and waits on the doorbell's
//! state. It also holds each CPU's idle-sentinel state ([`Arming`]), which a
//! saturated pool arms under its lock.
//!
//! The monitor's run state:
//!
//! | state | meaning | left by |
//! |---|---|---|
//! | `Unstarted` | no thread yet | the first ring starts it (if a start function is installed) |
//! | `Parked` | parked, costs nothing | a ring: CAS to `Running`, unpark |
//! | `Running` | ticking | the monitor parks after ticks with nothing to watch |
//! | `Failed` | the thread could not be started; only the hints work | — |
//!
//! No ring is lost: the monitor stores `Parked` *before* its last scan, which
//! takes every pool lock (`monitor/thread.rs`). A ring happens under the pool
//! lock of the saturated pool. Either the scan takes that lock after the ring,
//! and sees the waiting work, or it took it before, and then the `Parked` store
//! happens-before the ring's load through the lock. So every access here is
//! `Relaxed` but the ones that name their pair.

use std::sync::OnceLock;

use super::arming::{Arm, Arming, SentinelState};
use super::bell::{self, RunBell};
use crate::platform::loom::{AtomicBool, Ordering};

/// The monitor thread's run state; see the table above (`Failed` is the bell's
/// `STOPPED`: `context/bell.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MonitorState {
    Unstarted = bell::UNSTARTED,
    Parked = bell::PARKED,
    Running = bell::RUNNING,
    Failed = bell::STOPPED,
}

/// One CPU's idle sentinel, as the pools and the monitor share it.
#[derive(Debug)]
pub(crate) struct Sentinel {
    pub(crate) state: Arming,
    /// Its thread, once it runs (set by the thread itself).
    pub(crate) thread: OnceLock<std::thread::Thread>,
    /// Its kernel thread id, once it runs (set by the thread itself): the exit
    /// handler lifts it out of `SCHED_IDLE` (`monitor/sentinel.rs`).
    pub(crate) tid: OnceLock<i32>,
}

/// See the module docs.
pub(crate) struct Doorbell {
    /// The monitor thread and its run state.
    bell: RunBell,
    /// Per CPU id; none for a simulated topology (no thread to pin there).
    sentinels: Box<[Sentinel]>,
    /// Some sentinel is `Wanted`: the monitor's next tick starts it.
    any_wanted: AtomicBool,
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell").field("state", &self.state()).finish_non_exhaustive()
    }
}

impl Doorbell {
    /// `real`: a real topology, whose CPUs get idle sentinels.
    pub(crate) fn new(nr_cpu_ids: usize, real: bool) -> Doorbell {
        let nr_sentinels = if real { nr_cpu_ids } else { 0 };
        Doorbell {
            bell: RunBell::new(bell::UNSTARTED),
            sentinels: (0..nr_sentinels)
                .map(|_| Sentinel {
                    state: Arming::new(SentinelState::Unstarted),
                    thread: OnceLock::new(),
                    tid: OnceLock::new(),
                })
                .collect(),
            any_wanted: AtomicBool::new(false),
        }
    }

    // ---- the pools' side ----

    /// A pool of the CPUs `pod` is saturated. Called under that pool's lock,
    /// once per saturation. `arm_sentinel`: arm the idle sentinels of those
    /// CPUs too (the sentinels cover the pool: `WorkerPool::sentinel_covers`). A running monitor is left to
    /// its tick.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn saturated(&self, pod: &[usize], arm_sentinel: bool) {
        if arm_sentinel {
            for &cpu in pod {
                self.arm_sentinel(cpu);
            }
        }
        self.wake_if_parked();
    }

    /// A pool was refused a worker: the monitor retries after the cooldown.
    #[cfg(not(loom))]
    pub(crate) fn starved(&self) {
        self.wake_if_parked();
    }

    /// Under loom there is no monitor: the models drive its transitions
    /// (`pool::cm::monitor_*`) from a model thread instead.
    #[cfg(loom)]
    #[inline]
    pub(crate) fn saturated(&self, _pod: &[usize], _arm_sentinel: bool) {}

    #[cfg(loom)]
    pub(crate) fn starved(&self) {}

    /// Wakes a parked (or not yet started) monitor; a running one is left to
    /// its tick. One relaxed load when it runs.
    #[inline]
    pub(crate) fn wake_if_parked(&self) {
        if self.state() != MonitorState::Running {
            self.bell.wake();
        }
    }

    fn arm_sentinel(&self, cpu: usize) {
        let Some(s) = self.sentinels.get(cpu) else { return };
        match s.state.arm() {
            Arm::Unpark => {
                if let Some(t) = s.thread.get() {
                    t.unpark();
                }
            }
            // Release: pairs with the Acquire swap in `take_any_wanted`, which
            // then sees this sentinel `Wanted`.
            Arm::Start => self.any_wanted.store(true, Ordering::Release),
            Arm::Nothing => {}
        }
    }

    // ---- the monitor's side ----

    /// Installs the function that starts the monitor thread (once; later calls
    /// do nothing). Without one, ringing wakes nobody.
    pub(crate) fn install(&self, start: impl Fn() -> bool + Send + Sync + 'static) {
        self.bell.install(start);
    }

    /// The monitor thread records itself, for `unpark`.
    pub(crate) fn set_thread(&self, t: std::thread::Thread) {
        self.bell.set_thread(t);
    }

    pub(crate) fn state(&self) -> MonitorState {
        match self.bell.load() {
            0 => MonitorState::Unstarted,
            1 => MonitorState::Parked,
            2 => MonitorState::Running,
            _ => MonitorState::Failed,
        }
    }

    pub(crate) fn set(&self, s: MonitorState) {
        self.bell.store(s as u8);
    }

    /// Whether the monitor may stop waiting (somebody rang since it parked).
    /// A ring that set `Running` unparked the thread; `unpark` synchronises
    /// with the `park` it ends, and the word is read again after it.
    pub(crate) fn is_parked(&self) -> bool {
        self.state() == MonitorState::Parked
    }

    /// The idle sentinel of `cpu`.
    pub(crate) fn sentinel(&self, cpu: usize) -> Option<&Sentinel> {
        self.sentinels.get(cpu)
    }

    /// Every CPU's sentinel, by CPU id.
    pub(crate) fn sentinels(&self) -> &[Sentinel] {
        &self.sentinels
    }

    /// Whether a sentinel was asked for since the last call.
    pub(crate) fn take_any_wanted(&self) -> bool {
        // Acquire: pairs with the Release store in `arm_sentinel`.
        self.any_wanted.load(Ordering::Relaxed) && self.any_wanted.swap(false, Ordering::Acquire)
    }
}
