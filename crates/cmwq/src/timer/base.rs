//! The process's timer context (the kernel's `timer_base`): one wheel behind one
//! lock, one thread that sleeps until the next deadline, and a clock that tests
//! can pause and advance by hand.
//!
//! ## Protocol
//!
//! A delayed item whose timer is armed owns `PENDING` through its timer: its
//! state word says `PENDING`, not `QUEUED`. Its [`TimerSlot`] holds the wheel's
//! id of that timer. The slot is written only under the base lock, so under the
//! lock "slot holds an id" and "the wheel holds the timer" are the same fact.
//!
//! - **Arm** (`queue_delayed`): the caller claimed `PENDING`; under the lock it
//!   files the timer and stores the id.
//! - **Fire** (timer thread, or [`advance`](TimerBase::advance) in a paused
//!   clock): under the lock, the wheel hands out the due timers; each one's slot
//!   is cleared and the item is linked into its pool, still under the lock, so an
//!   item is never "between the timer and the queue" where a canceller could not
//!   reach it. Handles the fire drops (the workqueue handle, the work) are
//!   dropped after the lock is released, so no user `Drop` runs under it.
//! - **Steal** (`grab_pending`, for cancel, disable, `mod_delayed`): under the
//!   lock, take the id out of the slot and cancel it in the wheel; whoever
//!   succeeds owns `PENDING` (the kernel's `timer_delete` in
//!   `try_to_grab_pending`).
//!
//! Lock order: base lock, then a pool lock. No code takes the base lock while
//! holding a pool lock.

use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::loom::{AtomicU64, Condvar, Mutex, Ordering};
use crate::timer::clock::{Clock, RealClock};
use crate::timer::wheel::{TimerId, Wheel};
use crate::work::Work;
use crate::workqueue::Workqueue;

/// "No timer" in a [`TimerSlot`].
const NO_TIMER: u64 = u64::MAX;

/// The timer part of a delayed item (`delayed_work::timer`).
#[derive(Debug)]
pub(crate) struct TimerSlot {
    /// The wheel id of the armed timer, or [`NO_TIMER`]. Written under the lock
    /// of `base`.
    id: AtomicU64,
    /// The base the item's timers live in; set on the first arm.
    base: OnceLock<&'static TimerBase>,
}

impl TimerSlot {
    pub(crate) fn new() -> Self {
        TimerSlot { id: AtomicU64::new(NO_TIMER), base: OnceLock::new() }
    }

    /// Whether a timer is armed (`timer_pending`); exact under the base lock,
    /// advisory otherwise.
    pub(crate) fn is_armed(&self) -> bool {
        self.id.load(Ordering::Acquire) != NO_TIMER
    }

    /// Cancels the armed timer (`timer_delete`); if there was one, the caller now
    /// owns the item's `PENDING`. Returns the timer's target.
    pub(crate) fn steal(&self) -> Option<Armed> {
        let base = self.base.get()?;
        let mut g = base.inner.lock();
        base.take(&mut g, self)
    }
}

/// What an armed timer queues when it fires: the item, and the workqueue and CPU
/// it was armed for (`delayed_work::{wq, cpu}`). The handle keeps a workqueue
/// whose last user handle was dropped attached until its timers have fired.
#[derive(Debug)]
pub(crate) struct Armed {
    pub(crate) work: Work,
    pub(crate) wq: Workqueue,
    pub(crate) cpu: Option<usize>,
}

impl Armed {
    fn slot(&self) -> &TimerSlot {
        self.work.timer().expect("only delayed items are armed")
    }

    /// Links the item, whose `PENDING` the caller owns, into its pool. Caller
    /// holds the base lock (so `destroy` cannot slip in; see `Workqueue::destroy`).
    pub(crate) fn link(&self) {
        if !self.wq.link_owned(self.cpu, &self.work) {
            // Cannot happen: destroy() fires a queue's timers before it stops, and
            // arming is refused from then on. Never lose the item silently.
            tracing::error!(
                "workqueue {}: delayed item fired after the queue was destroyed; it stays idle",
                self.wq.name()
            );
            self.work.state().release_pending(0);
        }
    }
}

struct Inner {
    wheel: Wheel<Armed>,
    /// The clock: `now = base_ns + (real - real_at_base)` when running,
    /// `base_ns` when paused.
    paused: bool,
    base_ns: u64,
    real_at_base: u64,
    /// The deadline the timer thread sleeps toward: `u64::MAX` while it waits
    /// for a notification, 0 while it is awake (arming then needs no wake-up).
    sleeping_until: u64,
    thread: ThreadState,
    fired: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThreadState {
    NotStarted,
    Running,
    /// Spawning failed at this clock reading; retried a second later.
    Failed(u64),
}

/// The timer context of a registry.
pub(crate) struct TimerBase {
    inner: Mutex<Inner>,
    cv: Condvar,
    real: RealClock,
}

impl std::fmt::Debug for TimerBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerBase").finish_non_exhaustive()
    }
}

/// Timers fired since the process started, and timers armed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerStats {
    pub(crate) armed: usize,
    pub(crate) fired: u64,
}

impl TimerBase {
    pub(crate) fn new() -> Self {
        TimerBase {
            inner: Mutex::new(Inner {
                wheel: Wheel::new(Duration::from_millis(1)),
                paused: false,
                base_ns: 0,
                real_at_base: 0,
                sleeping_until: u64::MAX,
                thread: ThreadState::NotStarted,
                fired: 0,
            }),
            cv: Condvar::new(),
            real: RealClock::new(),
        }
    }

    fn now(&self, g: &Inner) -> u64 {
        if g.paused {
            g.base_ns
        } else {
            g.base_ns.saturating_add(self.real.now_ns().saturating_sub(g.real_at_base))
        }
    }

    /// Arms `armed.work`'s timer for `delay` from now. The caller owns the item's
    /// `PENDING` (claimed or stolen). If the target queue is being destroyed the
    /// timer is refused: `PENDING` is released and the error returned.
    pub(crate) fn arm(&'static self, armed: Armed, delay: Duration) -> Result<(), Error> {
        let slot = armed.slot();
        let base = *slot.base.get_or_init(|| self);
        debug_assert!(std::ptr::eq(base, self), "one delayed item, two timer bases");
        let mut g = self.inner.lock();
        if armed.wq.is_destroying() {
            drop(g);
            armed.work.state().release_pending(0);
            return Err(Error::new(armed.wq.name(), ErrorKind::Destroyed));
        }
        let now = self.now(&g);
        let deadline = now.saturating_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX));
        debug_assert!(!slot.is_armed(), "arming an armed item");
        let id = g.wheel.arm(deadline, armed);
        let slot = g.wheel.get(id).expect("just armed").slot();
        slot.id.store(id.to_bits(), Ordering::Release);
        if !g.paused {
            self.ensure_thread(&mut g, now);
            if deadline < g.sleeping_until {
                self.cv.notify_all();
            }
        }
        Ok(())
    }

    /// Takes `slot`'s timer out of the wheel, if armed. Caller holds the lock.
    fn take(&self, g: &mut Inner, slot: &TimerSlot) -> Option<Armed> {
        let bits = slot.id.load(Ordering::Relaxed);
        if bits == NO_TIMER {
            return None;
        }
        slot.id.store(NO_TIMER, Ordering::Release);
        let armed = g.wheel.cancel(TimerId::from_bits(bits));
        debug_assert!(armed.is_some(), "slot named a timer the wheel does not hold");
        armed
    }

    /// `flush_delayed_work`'s first half: if `slot`'s timer is armed, delete it
    /// and queue the item now. Returns whether it did.
    pub(crate) fn fire_now(slot: &TimerSlot) -> bool {
        let Some(base) = slot.base.get() else { return false };
        let mut g = base.inner.lock();
        let Some(armed) = base.take(&mut g, slot) else { return false };
        armed.link();
        g.fired += 1;
        drop(g);
        drop(armed);
        true
    }

    /// Fires, now, every timer armed for `wq` (`destroy` does this after marking
    /// the queue as destroying; from then on arming for it is refused).
    /// Returns how many fired.
    pub(crate) fn fire_all_for(&self, wq: &Workqueue) -> usize {
        let mut fired = Vec::new();
        let mut g = self.inner.lock();
        g.wheel.cancel_if(|a| a.wq.same_queue(wq), &mut |a| fired.push(a));
        for a in &fired {
            a.slot().id.store(NO_TIMER, Ordering::Release);
            a.link();
        }
        g.fired += fired.len() as u64;
        drop(g);
        fired.len()
    }

    /// Fires every timer due at the current clock reading. The fired handles go
    /// to `dead`, to be dropped after the lock is released.
    fn fire_due(&self, g: &mut Inner, dead: &mut Vec<Armed>) {
        let now = self.now(g);
        let mut n = 0u64;
        g.wheel.advance(now, &mut |a: Armed| {
            a.slot().id.store(NO_TIMER, Ordering::Release);
            a.link();
            n += 1;
            dead.push(a);
        });
        g.fired += n;
    }

    /// Starts the timer thread on first use (never under loom: models fire by
    /// hand with a paused clock). A failed start is retried a second later; the
    /// timers wait in the wheel meanwhile and fire late, never silently lost.
    fn ensure_thread(&'static self, g: &mut Inner, now: u64) {
        if cfg!(loom) {
            return;
        }
        match g.thread {
            ThreadState::Running => return,
            ThreadState::Failed(at) if now.saturating_sub(at) < 1_000_000_000 => return,
            _ => {}
        }
        let started = std::thread::Builder::new().name(crate::debug::TIMER_THREAD.into()).spawn(move || self.thread_main());
        g.thread = match started {
            Ok(_) => ThreadState::Running,
            Err(e) => {
                tracing::warn!(
                    "cmwq: cannot start the timer thread ({e}); delayed items wait, retrying in 1 s"
                );
                ThreadState::Failed(now)
            }
        };
    }

    /// The timer thread: fire what is due, sleep until the next deadline.
    fn thread_main(&'static self) {
        // Timed waits fire up to the thread's timer slack late (50 µs by
        // default); the kernel fires its timers from interrupts. Ask for 1 µs,
        // and run at the highest priority allowed, like the highpri pools.
        let _ = crate::sys::set_current_thread_timer_slack(1_000);
        let _ = crate::sys::set_current_thread_nice(-20);
        let mut dead = Vec::new();
        let mut g = self.inner.lock();
        loop {
            g.sleeping_until = 0;
            if !g.paused {
                self.fire_due(&mut g, &mut dead);
            }
            if !dead.is_empty() {
                drop(g);
                dead.clear();
                g = self.inner.lock();
                continue;
            }
            let next = if g.paused { None } else { g.wheel.next_deadline() };
            g = match next {
                None => {
                    g.sleeping_until = u64::MAX;
                    self.cv.wait(g)
                }
                Some(t) => {
                    let now = self.now(&g);
                    if t <= now {
                        continue;
                    }
                    g.sleeping_until = t;
                    self.cv.wait_for(g, Duration::from_nanos(t - now))
                }
            };
        }
    }

    // ---- the clock control behind `cmwq::timer` ----

    pub(crate) fn pause(&self) {
        let mut g = self.inner.lock();
        if !g.paused {
            g.base_ns = self.now(&g);
            g.paused = true;
            self.cv.notify_all();
        }
    }

    pub(crate) fn resume(&'static self) {
        let mut g = self.inner.lock();
        if g.paused {
            g.real_at_base = self.real.now_ns();
            g.paused = false;
            let now = self.now(&g);
            if !g.wheel.is_empty() {
                self.ensure_thread(&mut g, now);
            }
            self.cv.notify_all();
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.inner.lock().paused
    }

    /// Moves a paused clock forward by `d` and fires, on the calling thread,
    /// every timer now due. Returns how many fired. `None` if the clock runs.
    pub(crate) fn advance(&self, d: Duration) -> Option<usize> {
        let mut dead = Vec::new();
        let mut g = self.inner.lock();
        if !g.paused {
            return None;
        }
        g.base_ns = g.base_ns.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.fire_due(&mut g, &mut dead);
        drop(g);
        Some(dead.len())
    }

    pub(crate) fn stats(&self) -> TimerStats {
        let g = self.inner.lock();
        TimerStats { armed: g.wheel.len(), fired: g.fired }
    }
}
