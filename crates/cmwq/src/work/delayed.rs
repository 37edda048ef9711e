//! Delayed work items (`struct delayed_work`): a work item plus a timer.

use std::fmt;

use super::{inner, Busy, Work, WorkFn};
use crate::platform::error::Error;
use crate::platform::timer::{TimerBase, TimerSlot};
use crate::workqueue::Armed;

/// The callable part of a delayed item: the user's closure and the timer.
struct Delayed<F> {
    timer: TimerSlot<Armed>,
    f: F,
}

impl<F: Fn(&DelayedWork) + Send + Sync + 'static> WorkFn for Delayed<F> {
    #[inline]
    fn call(&self, work: &Work) {
        (self.f)(&DelayedWork(work.clone()))
    }

    fn timer(&self) -> Option<&TimerSlot<Armed>> {
        Some(&self.timer)
    }
}

/// A work item with a timer (`struct delayed_work`, `INIT_DELAYED_WORK`): queue
/// it with [`Workqueue::queue_delayed`](crate::Workqueue::queue_delayed) and it is
/// queued on that workqueue once the delay has passed.
///
/// While its timer is armed the item is *pending*: a second `queue_delayed`
/// returns `false`, and [`cancel`](Self::cancel), [`disable`](Self::disable) and
/// [`Workqueue::mod_delayed`](crate::Workqueue::mod_delayed) delete the timer.
/// Everything else is as for [`Work`], which [`work`](Self::work) returns: the
/// closure receives the handle, so it can re-arm itself.
///
/// ```
/// use std::time::Duration;
/// use cmwq::{DelayedWork, Workqueue};
///
/// let wq = Workqueue::builder("poller").build()?;
/// let dw = DelayedWork::new(|dw| println!("tick; pending again: {}", dw.is_pending()));
/// assert!(wq.queue_delayed(&dw, Duration::from_secs(60))?);
/// assert!(!wq.queue_delayed(&dw, Duration::from_millis(5))?); // already pending
/// assert!(wq.mod_delayed(&dw, Duration::ZERO)?); // was pending: now queued at once
/// dw.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Clone)]
pub struct DelayedWork(Work);

impl DelayedWork {
    /// Creates a delayed item that runs `f` each time it is executed
    /// (`INIT_DELAYED_WORK`). `f` receives the item, so it can re-arm itself.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("heartbeat").build()?;
    /// let beats = Arc::new(AtomicU32::new(0));
    /// let (b, q) = (beats.clone(), wq.clone());
    /// let hb = DelayedWork::new(move |dw| {
    ///     if b.fetch_add(1, Ordering::Relaxed) + 1 < 3 {
    ///         let _ = q.queue_delayed(dw, Duration::from_millis(1)); // again in 1 ms
    ///     }
    /// });
    /// wq.queue_delayed(&hb, Duration::from_millis(1))?;
    /// for _ in 0..3 {
    ///     hb.flush()?; // waits for the current run (firing an armed timer now)
    /// }
    /// assert_eq!(beats.load(Ordering::Relaxed), 3);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn new<F>(f: F) -> DelayedWork
    where
        F: Fn(&DelayedWork) + Send + Sync + 'static,
    {
        DelayedWork(Work(inner(Delayed { timer: TimerSlot::new(), f })))
    }

    /// The item itself (`&dwork->work`). Every [`Work`] method works on it and
    /// takes the timer into account.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("inner").build()?;
    /// let dw = DelayedWork::new(|_| {});
    /// wq.queue_delayed(&dw, Duration::from_secs(60))?;
    /// assert!(dw.work().is_pending());
    /// assert!(dw.work().cancel()); // deletes the timer, like `dw.cancel()`
    /// assert!(!dw.timer_pending());
    /// assert!(wq.queue(dw.work())?); // or queue it at once, without the timer
    /// dw.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn work(&self) -> &Work {
        &self.0
    }

    pub(crate) fn timer(&self) -> &TimerSlot<Armed> {
        self.0.timer().expect("a delayed item has a timer")
    }

    /// Whether the item is pending: its timer is armed, or it is queued and not
    /// yet started (`delayed_work_pending`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("pending").build()?;
    /// let dw = DelayedWork::new(|_| {});
    /// assert!(!dw.is_pending());
    /// wq.queue_delayed(&dw, Duration::from_secs(60))?;
    /// assert!(dw.is_pending()); // pending while its timer is armed
    /// dw.cancel();
    /// assert!(!dw.is_pending());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn is_pending(&self) -> bool {
        self.0.is_pending()
    }

    /// Whether its timer is armed (`timer_pending(&dwork->timer)`); advisory.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("timer-state").build()?;
    /// let dw = DelayedWork::new(|_| {});
    /// wq.queue_delayed(&dw, Duration::from_secs(60))?;
    /// assert!(dw.timer_pending());
    /// wq.mod_delayed(&dw, Duration::ZERO)?; // queued now: pending, but no timer
    /// assert!(!dw.timer_pending());
    /// dw.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn timer_pending(&self) -> bool {
        self.timer().is_armed()
    }

    /// Pending and running state (`work_busy`).
    pub fn busy(&self) -> Busy {
        self.0.busy()
    }

    /// Whether both handles name the same item.
    pub fn ptr_eq(&self, other: &DelayedWork) -> bool {
        self.0.ptr_eq(&other.0)
    }

    /// Deletes an armed timer or takes the item off its queue (`cancel_delayed_work`);
    /// does not wait for a running instance. Returns whether it was pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("timeout").build()?;
    /// let timeout = DelayedWork::new(|_| panic!("the reply came in time"));
    /// wq.queue_delayed(&timeout, Duration::from_secs(30))?;
    /// // ... the reply arrives:
    /// assert!(timeout.cancel()); // the timer is gone; the item will not run
    /// assert!(!timeout.is_pending() && !timeout.timer_pending());
    /// assert!(!timeout.cancel()); // nothing left to cancel
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.0.cancel()
    }

    /// As [`cancel`](Self::cancel), then waits for a running instance
    /// (`cancel_delayed_work_sync`). Works even if the item re-arms itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("sampler").build()?;
    /// let q = wq.clone();
    /// let sample = DelayedWork::new(move |dw| {
    ///     let _ = q.queue_delayed(dw, Duration::from_millis(1)); // re-arms itself
    /// });
    /// wq.queue_delayed(&sample, Duration::ZERO)?;
    /// sample.cancel_sync()?;
    /// assert!(!sample.is_pending() && !sample.busy().running);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`](crate::ErrorKind::WouldDeadlock) from the item's own callback.
    pub fn cancel_sync(&self) -> Result<bool, Error> {
        self.0.cancel_sync()
    }

    /// If the timer is armed, deletes it and queues the item at once on the
    /// workqueue and CPU it was armed for; then waits for the last queued
    /// instance to finish (`flush_delayed_work`). Returns whether it waited.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("lazy-sync").build()?;
    /// let synced = Arc::new(AtomicBool::new(false));
    /// let s = synced.clone();
    /// let dw = DelayedWork::new(move |_| s.store(true, Ordering::Relaxed));
    /// wq.queue_delayed(&dw, Duration::from_secs(3600))?;
    /// assert!(dw.flush()?); // runs it now rather than in an hour, and waits
    /// assert!(synced.load(Ordering::Relaxed));
    /// assert!(!dw.timer_pending());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Work::flush`].
    pub fn flush(&self) -> Result<bool, Error> {
        self.0.check_not_self("flush() of a delayed item from its own callback")?;
        let fired = TimerBase::fire_now(self.timer());
        Ok(self.0.flush()? || fired)
    }

    /// Increments the disable depth and deletes the timer or cancels the queued
    /// instance (`disable_delayed_work`). Returns whether it was pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("suspendable").build()?;
    /// let dw = DelayedWork::new(|_| {});
    /// wq.queue_delayed(&dw, Duration::from_secs(60))?;
    /// assert!(dw.disable()); // was pending: the timer is deleted
    /// assert!(!dw.timer_pending());
    /// assert!(!wq.queue_delayed(&dw, Duration::from_secs(1))?); // refused while disabled
    /// assert!(dw.enable());
    /// assert!(wq.queue_delayed(&dw, Duration::from_secs(60))?);
    /// dw.cancel();
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn disable(&self) -> bool {
        self.0.disable()
    }

    /// [`disable`](Self::disable), then waits for a running instance
    /// (`disable_delayed_work_sync`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("shutdown").build()?;
    /// let q = wq.clone();
    /// let tick = DelayedWork::new(move |dw| {
    ///     let _ = q.queue_delayed(dw, Duration::from_millis(1));
    /// });
    /// wq.queue_delayed(&tick, Duration::ZERO)?;
    /// tick.disable_sync()?; // stopped, and stays off
    /// assert!(!tick.is_pending() && !tick.busy().running);
    /// assert!(!wq.queue_delayed(&tick, Duration::ZERO)?);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`](crate::ErrorKind::WouldDeadlock) from the item's own callback.
    pub fn disable_sync(&self) -> Result<bool, Error> {
        self.0.disable_sync()
    }

    /// Decrements the disable depth (`enable_delayed_work`); never queues or
    /// arms the item. Returns whether the depth is now zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cmwq::{DelayedWork, Workqueue};
    ///
    /// let wq = Workqueue::builder("resume").build()?;
    /// let dw = DelayedWork::new(|_| {});
    /// wq.queue_delayed(&dw, Duration::from_secs(60))?;
    /// dw.disable(); // the armed timer is deleted, not suspended
    /// assert!(dw.enable());
    /// assert!(!dw.is_pending()); // enabling does not re-arm it
    /// assert!(wq.queue_delayed(&dw, Duration::from_secs(60))?);
    /// dw.cancel();
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn enable(&self) -> bool {
        self.0.enable()
    }
}

impl fmt::Debug for DelayedWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedWork")
            .field("work", &self.0)
            .field("timer_pending", &self.timer_pending())
            .finish()
    }
}
