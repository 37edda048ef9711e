//! An idle sentinel's run state and its arm/park handshake (the sentinel itself
//! is `monitor/sentinel.rs`), kept apart so that a loom model checks the
//! handshake on this very code.
//!
//! The handshake: a reporter arms the sentinel under the saturated pool's lock
//! ([`Arming::arm`]); the sentinel stores `Parked` *before* its last look at the
//! pools, which takes their locks ([`Arming::try_park`]). Either that look comes
//! after the reporter's critical section and sees the saturation, or it came
//! before, and then the reporter's load sees `Parked` (ordered through the lock)
//! and wakes it. So no saturation is slept through.
//!
//! | state | meaning | left by |
//! |---|---|---|
//! | `Unstarted` | no thread | an arming: `Wanted` |
//! | `Wanted` | the monitor starts the thread at its next tick (never under a pool lock) | `Armed`, or `Failed` |
//! | `Armed` | runnable whenever its CPU is idle | `try_park`: `Parked` |
//! | `Parked` | parked, costs nothing | an arming: `Armed` (and an unpark) |
//! | `Failed` | no thread, or `SCHED_IDLE` refused: the monitor's ticks cover the CPU | — |

use crate::platform::loom::{AtomicU8, Ordering};

/// A sentinel's run state; see the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SentinelState {
    Unstarted = 0,
    Wanted = 1,
    Parked = 2,
    Armed = 3,
    #[cfg_attr(loom, allow(dead_code))]
    Failed = 4,
}

impl SentinelState {
    fn from_u8(v: u8) -> SentinelState {
        match v {
            0 => SentinelState::Unstarted,
            1 => SentinelState::Wanted,
            2 => SentinelState::Parked,
            3 => SentinelState::Armed,
            _ => SentinelState::Failed,
        }
    }
}

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

/// A sentinel's run state word.
///
/// Every access is `SeqCst`, though the handshake needs less: its two sides
/// meet under a pool lock (the reporter's `arm` under the saturated pool's lock,
/// the sentinel's `look` inside [`try_park`](Self::try_park) taking every pool
/// lock), which orders the `Parked` store before the reporter's load; the CASes
/// race only on this one word. It is off the hot path (once per saturation of
/// a pool the sentinels cover), so it is kept simple.
#[derive(Debug)]
pub(crate) struct Arming(AtomicU8);

impl Arming {
    pub(crate) fn new(state: SentinelState) -> Arming {
        Arming(AtomicU8::new(state as u8))
    }

    pub(crate) fn load(&self) -> SentinelState {
        SentinelState::from_u8(self.0.load(Ordering::SeqCst))
    }

    pub(crate) fn set(&self, state: SentinelState) {
        self.0.store(state as u8, Ordering::SeqCst)
    }

    /// A pool of the sentinel's CPU saturated. Called under that pool's lock.
    pub(crate) fn arm(&self) -> Arm {
        use SentinelState::*;
        match self.load() {
            Parked if self.cas(Parked, Armed) => Arm::Unpark,
            Unstarted if self.cas(Unstarted, Wanted) => Arm::Start,
            _ => Arm::Nothing,
        }
    }

    /// The monitor takes a `Wanted` sentinel to start its thread (it starts armed).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn take_wanted(&self) -> bool {
        self.cas(SentinelState::Wanted, SentinelState::Armed)
    }

    /// The sentinel found nothing to watch: parks unless `look` (its last look at
    /// the pools, taking their locks) finds a pool saturated. Returns whether it
    /// must keep running instead of waiting.
    pub(crate) fn try_park(&self, look: impl FnOnce() -> bool) -> bool {
        #[cfg(not(all(loom, cmwq_loom_mutant)))]
        self.set(SentinelState::Parked);
        let saw = look();
        // Mutant for the loom model: `Parked` stored after the look loses an arming.
        #[cfg(all(loom, cmwq_loom_mutant))]
        self.set(SentinelState::Parked);
        if saw {
            let _ = self.cas(SentinelState::Parked, SentinelState::Armed);
            return true;
        }
        false
    }

    /// Whether the sentinel is to wait (nobody armed it since `try_park`).
    pub(crate) fn is_parked(&self) -> bool {
        self.load() == SentinelState::Parked
    }

    fn cas(&self, from: SentinelState, to: SentinelState) -> bool {
        self.0.compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst).is_ok()
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
    /// which stores `Parked` after the look, and requires this model to fail.
    #[test]
    fn a_saturation_is_never_slept_through() {
        loom::model(|| {
            let arming = Arc::new(Arming::new(SentinelState::Armed));
            let pool = Arc::new(Mutex::new(Pool::default()));
            let token = Arc::new((Mutex::new(false), Condvar::new()));
            let reporter = {
                let (arming, pool, token) = (arming.clone(), pool.clone(), token.clone());
                loom::thread::spawn(move || {
                    let mut g = pool.lock().unwrap();
                    g.saturated = true;
                    if !g.noted {
                        g.noted = true;
                        if arming.arm() == Arm::Unpark {
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
