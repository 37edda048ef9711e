//! Delayed queueing (`queue_delayed_work_on`, `mod_delayed_work_on`), and what
//! a delayed item's timer does when it fires (the kernel's
//! `delayed_work_timer_fn`): the timers themselves are generic
//! (`platform/timer`).
//!
//! A delayed item whose timer is armed owns `PENDING` through its timer: its
//! state word says `PENDING`, not `QUEUED`, and its `TimerSlot` holds the timer.
//! Arming claims `PENDING` first; a fire links the item into its pool under the
//! timer base lock (so `destroy`, which fires a queue's timers under that lock,
//! cannot slip in between); `grab_pending` steals an armed timer and so owns
//! `PENDING` (`work/mod.rs`).
//!
//! Lock order: the timer base lock, then a pool lock.

use std::time::Duration;

use super::flags::WqFlags;
use super::handle::Workqueue;
use crate::platform::error::{Error, ErrorKind};
use crate::platform::log;
use crate::platform::loom::Ordering;
use crate::platform::timer::{Timed, TimerSlot};
use crate::work::{Claim, DelayedWork, Grab, Work};

/// What an armed timer queues when it fires: the item, and the workqueue and CPU
/// it was armed for (`delayed_work::{wq, cpu}`). The handle keeps a workqueue
/// whose last user handle was dropped attached until its timers have fired.
#[derive(Debug)]
pub(crate) struct Armed {
    pub(crate) work: Work,
    pub(crate) wq: Workqueue,
    pub(crate) cpu: Option<usize>,
}

impl Timed for Armed {
    fn slot(&self) -> &TimerSlot<Armed> {
        self.work.timer().expect("only delayed items are armed")
    }

    /// Links the item, whose `PENDING` the timer owned, into its pool. Runs
    /// under the base lock (so `destroy` cannot slip in; see `Workqueue::destroy`).
    fn fire(&self) {
        if !self.wq.link_owned(self.cpu, &self.work) {
            // Cannot happen: destroy() fires a queue's timers before it stops, and
            // arming is refused from then on. Never lose the item silently.
            log::error!(
                workqueue = self.wq.name(),
                work = self.work.id(),
                "workqueue: a delayed item fired after its queue was destroyed; it stays idle"
            );
            self.work.state().release_pending(0);
        }
    }
}

impl Workqueue {
    /// Queues `dw` after `delay` (`queue_delayed_work`). Returns `Ok(false)` if it
    /// is already pending (timer armed or queued) or disabled. A zero delay queues
    /// it at once, with no timer.
    ///
    /// On a per-CPU queue the item is queued, when the timer fires, on the CPU
    /// that called this; use [`queue_delayed_on`](Self::queue_delayed_on) to name
    /// one. The timer fires no earlier than `delay` from now, and usually within
    /// tens of microseconds after (see `cmwq bench`'s timers workload). A delay
    /// past the end of the timer clock's range (about 584 years from the
    /// clock's origin, `Duration::MAX` say) never fires: the item stays pending
    /// until it is cancelled, flushed or its queue destroyed.
    ///
    /// An armed timer keeps its workqueue attached: if the last handle is
    /// dropped meanwhile, the item is still queued and runs. [`destroy`](Self::destroy)
    /// fires the queue's armed timers at once (their items run before it
    /// returns); cancel them first if they must not run. A [`drain`](Self::drain)
    /// waits for items whose timers fire while it drains, not for later ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("writeback").build()?;
    /// let dw = DelayedWork::new(|_| { /* write dirty pages back */ });
    /// assert!(wq.queue_delayed(&dw, Duration::from_secs(30))?); // timer armed
    /// assert!(dw.is_pending() && dw.timer_pending());
    /// assert!(!wq.queue_delayed(&dw, Duration::from_secs(1))?); // pending: the 30 s stand
    /// assert!(dw.cancel());
    ///
    /// assert!(wq.queue_delayed(&dw, Duration::ZERO)?); // queued at once, no timer
    /// assert!(!dw.timer_pending());
    /// dw.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`queue`](Self::queue); [`ErrorKind::Destroyed`] also when one of the
    /// queue's own items arms a timer while the queue is being destroyed (the
    /// timer would fire after the queue is gone). The item is left idle.
    pub fn queue_delayed(&self, dw: &DelayedWork, delay: Duration) -> Result<bool, Error> {
        self.queue_delayed_cpu(None, dw, delay)
    }

    /// [`queue_delayed`](Self::queue_delayed) for `cpu`'s pool (`queue_delayed_work_on`).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("per-cpu-stats").flags(WqFlags::PERCPU).build()?;
    /// let cpu = *cmwq::allowed_cpus().last().unwrap();
    /// let ran_on = Arc::new(Mutex::new(None));
    /// let r = ran_on.clone();
    /// let dw = DelayedWork::new(move |_| *r.lock().unwrap() = cmwq::debug::current_cpu());
    /// assert!(wq.queue_delayed_on(cpu, &dw, Duration::from_secs(60))?);
    /// dw.flush()?; // fires the timer now: queued on `cpu`, then waited for
    /// assert_eq!(*ran_on.lock().unwrap(), Some(cpu));
    /// assert!(wq.queue_delayed_on(usize::MAX, &dw, Duration::from_secs(60)).is_err());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`queue_delayed`](Self::queue_delayed), and [`ErrorKind::InvalidCpu`].
    pub fn queue_delayed_on(&self, cpu: usize, dw: &DelayedWork, delay: Duration) -> Result<bool, Error> {
        self.core().check_cpu(cpu)?;
        self.queue_delayed_cpu(Some(cpu), dw, delay)
    }

    /// Re-arms `dw` for `delay` from now, whatever its state (`mod_delayed_work`):
    /// a pending instance (timer armed or queued) is cancelled first. Returns
    /// `Ok(true)` if it was pending and has been re-armed, `Ok(false)` if it was
    /// idle and is now armed (or queued, for a zero delay). A zero delay queues it
    /// at once. A disabled item is left alone, and `Ok(false)` returned.
    ///
    /// The usual debounce: every event pushes the deadline back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("debounce").build()?;
    /// let save = DelayedWork::new(|_| { /* save the document */ });
    /// assert!(!wq.mod_delayed(&save, Duration::from_secs(2))?); // was idle: armed
    /// assert!(wq.mod_delayed(&save, Duration::from_secs(2))?); // was pending: re-armed
    /// assert!(wq.mod_delayed(&save, Duration::ZERO)?); // now: queued at once
    /// assert!(!save.timer_pending());
    /// save.flush()?;
    ///
    /// save.disable();
    /// assert!(!wq.mod_delayed(&save, Duration::ZERO)?); // disabled: left alone
    /// assert!(!save.is_pending());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`queue_delayed`](Self::queue_delayed). If the queue is found being
    /// destroyed only after the pending instance was cancelled, the item is left
    /// idle.
    pub fn mod_delayed(&self, dw: &DelayedWork, delay: Duration) -> Result<bool, Error> {
        self.mod_delayed_cpu(None, dw, delay)
    }

    /// [`mod_delayed`](Self::mod_delayed) for `cpu`'s pool (`mod_delayed_work_on`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, ErrorKind, Workqueue};
    ///
    /// let wq = Workqueue::builder("rebalance").build()?;
    /// let cpu = cmwq::allowed_cpus()[0];
    /// let dw = DelayedWork::new(|_| {});
    /// assert!(!wq.mod_delayed_on(cpu, &dw, Duration::from_secs(60))?); // armed
    /// assert!(wq.mod_delayed_on(cpu, &dw, Duration::from_secs(1))?); // re-armed
    /// let err = wq.mod_delayed_on(usize::MAX, &dw, Duration::ZERO).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidCpu { .. }));
    /// assert!(dw.timer_pending()); // the bad call changed nothing
    /// assert!(dw.cancel());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`mod_delayed`](Self::mod_delayed), and [`ErrorKind::InvalidCpu`].
    pub fn mod_delayed_on(&self, cpu: usize, dw: &DelayedWork, delay: Duration) -> Result<bool, Error> {
        self.core().check_cpu(cpu)?;
        self.mod_delayed_cpu(Some(cpu), dw, delay)
    }

    fn queue_delayed_cpu(
        &self,
        cpu: Option<usize>,
        dw: &DelayedWork,
        delay: Duration,
    ) -> Result<bool, Error> {
        let core = self.core();
        if delay.is_zero() {
            return core.queue(cpu, dw.work());
        }
        core.check_open()?;
        match dw.work().state().claim_pending() {
            Claim::Claimed(_) => {}
            Claim::AlreadyPending | Claim::Disabled => return Ok(false),
        }
        self.arm(cpu, dw, delay)?;
        Ok(true)
    }

    fn mod_delayed_cpu(&self, cpu: Option<usize>, dw: &DelayedWork, delay: Duration) -> Result<bool, Error> {
        let core = self.core();
        core.check_open()?;
        let work = dw.work();
        let was_pending = work.grab_pending() == Grab::Stolen;
        let depth = work.state().load().disable_depth();
        if depth > 0 {
            work.state().release_pending(depth);
            return Ok(was_pending);
        }
        if delay.is_zero() {
            if !self.link_owned(cpu, work) {
                work.state().release_pending(0);
                return Err(core.err(ErrorKind::Destroyed));
            }
        } else {
            self.arm(cpu, dw, delay)?;
        }
        Ok(was_pending)
    }

    /// Arms the timer of `dw`, whose `PENDING` the caller owns; on error it is released.
    fn arm(&self, cpu: Option<usize>, dw: &DelayedWork, delay: Duration) -> Result<(), Error> {
        let core = self.core();
        // `queue_delayed_work` is the local-CPU variant: remember the CPU now,
        // since the timer fires on the timer thread, wherever that runs.
        let cpu = match cpu {
            None if !core.flags.contains(WqFlags::UNBOUND) => Some(core.registry.ctx.topo.local_cpu()),
            cpu => cpu,
        };
        let armed = Armed { work: dw.work().clone(), wq: self.clone(), cpu };
        core.registry.timers.arm(armed, delay, |a| !a.wq.is_destroying()).map_err(|a| {
            // Refused: the queue is being destroyed, and the timer would fire after
            // it is gone. Give the item back idle.
            a.work.state().release_pending(0);
            core.err(ErrorKind::Destroyed)
        })
    }

    /// Links an item whose `PENDING` the caller owns (a fired timer). False if
    /// the queue's pwqs are gone.
    fn link_owned(&self, cpu: Option<usize>, work: &Work) -> bool {
        self.core().link(cpu, work, work.state().load())
    }

    /// Whether `destroy` has begun (arming a timer for it is refused). Relaxed:
    /// asked under the timer base lock, and `destroy` sets `destroying` before
    /// it takes that lock to fire the queue's timers: an arm after that sees it,
    /// one before is fired by `destroy`.
    fn is_destroying(&self) -> bool {
        let core = self.core();
        core.destroying.load(Ordering::Relaxed) || core.destroyed.load(Ordering::Relaxed)
    }

    /// Whether both handles name the same workqueue.
    pub(crate) fn same_queue(&self, other: &Workqueue) -> bool {
        std::sync::Arc::ptr_eq(self.core(), other.core())
    }
}
