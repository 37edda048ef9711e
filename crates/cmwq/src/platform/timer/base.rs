//! A timer context (the kernel's `timer_base`): one wheel behind one lock, one
//! thread that sleeps until the next deadline, and a clock that tests can pause
//! and advance by hand. Generic over what a timer fires ([`Timed`]): like the
//! kernel's timers, it knows nothing of work items; what a fired delayed item
//! does is the workqueue's business (`workqueue/delayed.rs`, the kernel's
//! `delayed_work_timer_fn`).
//!
//! ## Protocol
//!
//! Every timer belongs to a [`TimerSlot`] that its target embeds; the slot holds
//! the wheel's id of the armed timer. The slot is written only under the base
//! lock, so under the lock "slot holds an id" and "the wheel holds the timer" are
//! the same fact.
//!
//! - **Arm**: under the lock, `admit` is asked (the target may refuse, e.g. its
//!   queue is being destroyed), then the timer is filed and its id stored.
//! - **Fire** (timer thread, or [`advance`](TimerBase::advance) in a paused
//!   clock): under the lock, the wheel hands out the due timers; each one's slot
//!   is cleared and [`Timed::fire`] runs, still under the lock, so a target is
//!   never "between the timer and what it fires into", where [`TimerSlot::steal`]
//!   could not reach it. The fired targets are dropped after the lock is
//!   released, so no user `Drop` runs under it.
//! - **Steal** ([`TimerSlot::steal`]): under the lock, take the id out of the
//!   slot and cancel it in the wheel; whoever succeeds owns the target (the
//!   kernel's `timer_delete`).
//!
//! Lock order: the base lock is taken before whatever [`Timed::fire`] locks (a
//! pool lock); no code takes it while holding one of those.

use std::sync::OnceLock;
use std::time::Duration;

use super::clock::{Clock, RealClock};
use super::wheel::{TimerId, Wheel};
use crate::platform::log;
use crate::platform::loom::{AtomicU64, Condvar, Mutex, Ordering};

/// The name of the timer thread.
pub(crate) const TIMER_THREAD: &str = "cmwq/timer";

/// What a timer fires. The target embeds its [`TimerSlot`].
pub(crate) trait Timed: Send + Sized + 'static {
    /// The slot of this target's timer.
    fn slot(&self) -> &TimerSlot<Self>;
    /// The timer is due (or fired early: [`TimerBase::fire_now`],
    /// [`TimerBase::fire_all_if`]). Called under the base lock, with the slot
    /// already cleared.
    fn fire(&self);
}

/// "No timer" in a [`TimerSlot`].
const NO_TIMER: u64 = u64::MAX;

/// The deadline of a timer whose delay reaches past the end of the clock's
/// range: it never fires, because the clock never reads it ([`TimerBase::now`]
/// stops one short). A timer never fires before its deadline, whatever the delay.
const NEVER: u64 = u64::MAX;

/// How far [`TimerBase::advance`] moves the clock at most: 2^63 ns from its
/// origin, about 292 years. An advance past it stops there, which leaves every
/// later timer (deadlines up to `NEVER - 1`, another 292 years) its full delay;
/// a clock advanced to `u64::MAX` would instead fire every later timer at once.
pub(crate) const CLOCK_END: u64 = 1 << 63;

/// The deadline of a timer armed at `now` for `delay`: exact, or [`NEVER`] if it
/// does not fit.
fn deadline_of(now: u64, delay: Duration) -> u64 {
    u64::try_from(delay.as_nanos())
        .ok()
        .and_then(|d| now.checked_add(d))
        .filter(|&t| t < NEVER)
        .unwrap_or(NEVER)
}

/// The timer of one target (`timer_list`; a delayed item's `delayed_work::timer`).
pub(crate) struct TimerSlot<T: Timed> {
    /// The wheel id of the armed timer, or [`NO_TIMER`]. Written under the lock
    /// of `base`; read without it only as a hint ([`is_armed`](Self::is_armed)).
    id: AtomicU64,
    /// The base the target's timers live in; set on the first arm.
    base: OnceLock<&'static TimerBase<T>>,
}

impl<T: Timed> std::fmt::Debug for TimerSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerSlot").field("armed", &self.is_armed()).finish()
    }
}

impl<T: Timed> TimerSlot<T> {
    pub(crate) fn new() -> Self {
        TimerSlot { id: AtomicU64::new(NO_TIMER), base: OnceLock::new() }
    }

    /// Whether a timer is armed (`timer_pending`); exact under the base lock,
    /// advisory otherwise.
    pub(crate) fn is_armed(&self) -> bool {
        // Relaxed: a hint; every decision on it is re-taken under the base lock,
        // which orders the slot's writes.
        self.id.load(Ordering::Relaxed) != NO_TIMER
    }

    /// Cancels the armed timer (`timer_delete`) and returns its target, if one
    /// was armed: the caller now owns it.
    pub(crate) fn steal(&self) -> Option<T> {
        let base = self.base.get()?;
        let mut g = base.inner.lock();
        base.take(&mut g, self)
    }

    /// Marks the slot empty. Caller holds the base lock.
    fn clear(&self) {
        // Relaxed: written under the base lock, which orders it for every reader
        // that decides anything (`take`, under the lock).
        self.id.store(NO_TIMER, Ordering::Relaxed);
    }
}

struct Inner<T> {
    wheel: Wheel<T>,
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

/// A timer context: the wheel, its lock, its thread and its clock.
pub(crate) struct TimerBase<T> {
    inner: Mutex<Inner<T>>,
    cv: Condvar,
    real: RealClock,
}

impl<T> std::fmt::Debug for TimerBase<T> {
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

impl<T: Timed> TimerBase<T> {
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

    /// The clock's reading; never [`NEVER`], so such a deadline never fires.
    fn now(&self, g: &Inner<T>) -> u64 {
        let now = if g.paused {
            g.base_ns
        } else {
            g.base_ns.saturating_add(self.real.now_ns().saturating_sub(g.real_at_base))
        };
        now.min(NEVER - 1)
    }

    /// Arms `t`'s timer for `delay` from now, unless `admit(&t)`, asked under
    /// the base lock, refuses: then `t` comes back untouched.
    pub(crate) fn arm(&'static self, t: T, delay: Duration, admit: impl FnOnce(&T) -> bool) -> Result<(), T> {
        let base = *t.slot().base.get_or_init(|| self);
        debug_assert!(std::ptr::eq(base, self), "one target, two timer bases");
        let mut g = self.inner.lock();
        if !admit(&t) {
            return Err(t);
        }
        let now = self.now(&g);
        let deadline = deadline_of(now, delay);
        debug_assert!(!t.slot().is_armed(), "arming an armed timer");
        let id = g.wheel.arm(deadline, t);
        let slot = g.wheel.get(id).expect("just armed").slot();
        // Relaxed: under the base lock (see `TimerSlot::id`).
        slot.id.store(id.to_bits(), Ordering::Relaxed);
        if !g.paused {
            self.ensure_thread(&mut g, now);
            if deadline < g.sleeping_until {
                self.cv.notify_all();
            }
        }
        Ok(())
    }

    /// Takes `slot`'s timer out of the wheel, if armed. Caller holds the lock.
    fn take(&self, g: &mut Inner<T>, slot: &TimerSlot<T>) -> Option<T> {
        let bits = slot.id.load(Ordering::Relaxed);
        if bits == NO_TIMER {
            return None;
        }
        slot.clear();
        let t = g.wheel.cancel(TimerId::from_bits(bits));
        debug_assert!(t.is_some(), "slot named a timer the wheel does not hold");
        t
    }

    /// If `slot`'s timer is armed, deletes it and fires it now (the first half
    /// of `flush_delayed_work`). Returns whether it did.
    pub(crate) fn fire_now(slot: &TimerSlot<T>) -> bool {
        let Some(base) = slot.base.get() else { return false };
        let mut g = base.inner.lock();
        let Some(t) = base.take(&mut g, slot) else { return false };
        t.fire();
        g.fired += 1;
        drop(g);
        drop(t);
        true
    }

    /// Fires, now, every armed timer whose target `pred` picks. Returns how many
    /// fired.
    pub(crate) fn fire_all_if(&self, pred: impl FnMut(&T) -> bool) -> usize {
        let mut fired = Vec::new();
        let mut g = self.inner.lock();
        g.wheel.cancel_if(pred, &mut |t| fired.push(t));
        for t in &fired {
            t.slot().clear();
            t.fire();
        }
        g.fired += fired.len() as u64;
        drop(g);
        fired.len()
    }

    /// Fires every timer due at the current clock reading. The fired targets go
    /// to `dead`, to be dropped after the lock is released.
    fn fire_due(&self, g: &mut Inner<T>, dead: &mut Vec<T>) {
        let now = self.now(g);
        let mut n = 0u64;
        g.wheel.advance(now, &mut |t: T| {
            t.slot().clear();
            t.fire();
            n += 1;
            dead.push(t);
        });
        g.fired += n;
    }

    /// Starts the timer thread on first use (never under loom: models fire by
    /// hand with a paused clock). A failed start is retried a second later; the
    /// timers wait in the wheel meanwhile and fire late, never silently lost.
    fn ensure_thread(&'static self, g: &mut Inner<T>, now: u64) {
        if cfg!(loom) {
            return;
        }
        match g.thread {
            ThreadState::Running => return,
            ThreadState::Failed(at) if now.saturating_sub(at) < 1_000_000_000 => return,
            _ => {}
        }
        let started = std::thread::Builder::new().name(TIMER_THREAD.into()).spawn(move || self.thread_main());
        g.thread = match started {
            Ok(_) => ThreadState::Running,
            Err(e) => {
                log::warn!(
                    error = log::display(&e),
                    "cmwq: cannot start the timer thread; delayed items wait, retrying in 1 s"
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
        let _ = crate::platform::sys::set_current_thread_timer_slack(1_000);
        let _ = crate::platform::sys::set_current_thread_nice(-20);
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

    /// The clock's reading now, paused or running, in nanoseconds: for the
    /// stall watchdog, which keeps time by this clock so that tests can move it.
    pub(crate) fn now_ns(&self) -> u64 {
        let g = self.inner.lock();
        self.now(&g)
    }

    /// Moves a paused clock forward by `d`, but not past [`CLOCK_END`] (an
    /// advance beyond it stops there), and fires, on the calling thread, every
    /// timer now due. Returns how many fired. `None` if the clock runs.
    pub(crate) fn advance(&self, d: Duration) -> Option<usize> {
        let mut dead = Vec::new();
        let mut g = self.inner.lock();
        if !g.paused {
            return None;
        }
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        g.base_ns = g.base_ns.saturating_add(d).min(g.base_ns.max(CLOCK_END));
        self.fire_due(&mut g, &mut dead);
        drop(g);
        Some(dead.len())
    }

    pub(crate) fn stats(&self) -> TimerStats {
        let g = self.inner.lock();
        TimerStats { armed: g.wheel.len(), fired: g.fired }
    }
}
