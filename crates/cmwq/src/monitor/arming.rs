//! An idle sentinel's run state and its arm/park handshake (`sentinel.rs`),
//! apart from the sentinel so that a loom model checks the handshake on this
//! very code.
//!
//! The handshake: a reporter arms the sentinel under the saturated pool's lock
//! ([`Arming::arm`]); the sentinel stores `PARKED` *before* its last look at the
//! pools, which takes their locks ([`Arming::try_park`]). Either that look comes
//! after the reporter's critical section and sees the saturation, or it came
//! before, and then the reporter's load sees `PARKED` (ordered through the lock)
//! and wakes it. So no saturation is slept through.

use crate::loom::{AtomicU32, Ordering};

/// No thread yet; the first arming asks the monitor to start one.
pub(crate) const UNSTARTED: u32 = 0;
/// The monitor is to start the thread (it must not be spawned under a pool lock).
pub(crate) const WANTED: u32 = 1;
/// Parked: no pool of its CPU is saturated.
pub(crate) const PARKED: u32 = 2;
/// Runnable whenever its CPU is idle.
pub(crate) const ARMED: u32 = 3;
/// No thread could be had (or `SCHED_IDLE` was refused): the monitor's ticks
/// alone cover the CPU.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const FAILED: u32 = 4;

/// What the reporter must do after [`Arming::arm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arm {
    /// Nothing: already armed, being started, or failed.
    Nothing,
    /// The sentinel was parked: unpark its thread.
    Unpark,
    /// No thread yet: have the monitor start one.
    Start,
}

/// A sentinel's run state.
#[derive(Debug)]
pub(crate) struct Arming(AtomicU32);

impl Arming {
    pub(crate) fn new(state: u32) -> Arming {
        Arming(AtomicU32::new(state))
    }

    pub(crate) fn load(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn set(&self, state: u32) {
        self.0.store(state, Ordering::SeqCst)
    }

    /// A pool of the sentinel's CPU saturated. Called under that pool's lock.
    /// `may_start`: whether a thread may be asked for (a real topology).
    pub(crate) fn arm(&self, may_start: bool) -> Arm {
        match self.load() {
            PARKED if self.cas(PARKED, ARMED) => Arm::Unpark,
            UNSTARTED if may_start && self.cas(UNSTARTED, WANTED) => Arm::Start,
            _ => Arm::Nothing,
        }
    }

    /// The monitor takes a `WANTED` sentinel to start its thread (it starts armed).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn take_wanted(&self) -> bool {
        self.cas(WANTED, ARMED)
    }

    /// The sentinel found nothing to watch: parks unless `look` (its last look at
    /// the pools, taking their locks) finds a pool saturated. Returns whether it
    /// must keep running instead of waiting.
    pub(crate) fn try_park(&self, look: impl FnOnce() -> bool) -> bool {
        #[cfg(not(all(loom, cmwq_loom_mutant)))]
        self.set(PARKED);
        let saw = look();
        // Mutant for the loom model: `PARKED` stored after the look loses an arming.
        #[cfg(all(loom, cmwq_loom_mutant))]
        self.set(PARKED);
        if saw {
            let _ = self.cas(PARKED, ARMED);
            return true;
        }
        false
    }

    /// Whether the sentinel is to wait (nobody armed it since `try_park`).
    pub(crate) fn is_parked(&self) -> bool {
        self.load() == PARKED
    }

    fn cas(&self, from: u32, to: u32) -> bool {
        self.0.compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use loom::sync::{Arc, Condvar, Mutex};

    /// A pool, reduced to what the handshake reads: is work waiting behind a
    /// running worker, and was that reported.
    #[derive(Default)]
    struct Pool {
        saturated: bool,
        noted: bool,
    }

    /// A reporter saturates the pool while the sentinel, armed, finds nothing and
    /// goes to park. The sentinel keeps looking until it has seen the saturation;
    /// if the handshake could lose the arming, it would wait forever and loom
    /// would report a deadlock. `.ci/run` builds with `--cfg cmwq_loom_mutant`,
    /// which stores `PARKED` after the look, and requires this model to fail.
    #[test]
    fn a_saturation_is_never_slept_through() {
        loom::model(|| {
            let arming = Arc::new(Arming::new(ARMED));
            let pool = Arc::new(Mutex::new(Pool::default()));
            let token = Arc::new((Mutex::new(false), Condvar::new()));
            let reporter = {
                let (arming, pool, token) = (arming.clone(), pool.clone(), token.clone());
                loom::thread::spawn(move || {
                    let mut g = pool.lock().unwrap();
                    g.saturated = true;
                    if !g.noted {
                        g.noted = true;
                        if arming.arm(true) == Arm::Unpark {
                            *token.0.lock().unwrap() = true;
                            token.1.notify_all();
                        }
                    }
                })
            };
            loop {
                let saw = arming.try_park(|| {
                    let mut g = pool.lock().unwrap();
                    if !g.saturated {
                        g.noted = false; // its next saturation is reported again
                    }
                    g.saturated
                });
                if saw {
                    break;
                }
                let mut t = token.0.lock().unwrap();
                while !*t {
                    t = token.1.wait(t).unwrap();
                }
                *t = false;
                assert!(!arming.is_parked(), "woken while still parked");
            }
            reporter.join().unwrap();
        });
    }
}
