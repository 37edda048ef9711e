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
/// assert!(wq.queue_delayed(&dw, Duration::from_millis(5))?);
/// assert!(!wq.queue_delayed(&dw, Duration::from_millis(5))?); // already pending
/// assert!(wq.mod_delayed(&dw, Duration::ZERO)?); // was pending: now queued at once
/// dw.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Clone)]
pub struct DelayedWork(Work);

impl DelayedWork {
    /// Creates a delayed item that runs `f` each time it is executed.
    pub fn new<F>(f: F) -> DelayedWork
    where
        F: Fn(&DelayedWork) + Send + Sync + 'static,
    {
        DelayedWork(Work(inner(Delayed { timer: TimerSlot::new(), f })))
    }

    /// The item itself (`&dwork->work`). Every [`Work`] method works on it and
    /// takes the timer into account.
    pub fn work(&self) -> &Work {
        &self.0
    }

    pub(crate) fn timer(&self) -> &TimerSlot<Armed> {
        self.0.timer().expect("a delayed item has a timer")
    }

    /// Whether the item is pending: its timer is armed, or it is queued and not
    /// yet started (`delayed_work_pending`).
    pub fn is_pending(&self) -> bool {
        self.0.is_pending()
    }

    /// Whether its timer is armed (`timer_pending(&dwork->timer)`); advisory.
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
    pub fn cancel(&self) -> bool {
        self.0.cancel()
    }

    /// As [`cancel`](Self::cancel), then waits for a running instance
    /// (`cancel_delayed_work_sync`). Works even if the item re-arms itself.
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
    /// # Errors
    /// As [`Work::flush`].
    pub fn flush(&self) -> Result<bool, Error> {
        self.0.check_not_self("flush() of a delayed item from its own callback")?;
        let fired = TimerBase::fire_now(self.timer());
        Ok(self.0.flush()? || fired)
    }

    /// Increments the disable depth and deletes the timer or cancels the queued
    /// instance (`disable_delayed_work`). Returns whether it was pending.
    pub fn disable(&self) -> bool {
        self.0.disable()
    }

    /// [`disable`](Self::disable), then waits for a running instance
    /// (`disable_delayed_work_sync`).
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`](crate::ErrorKind::WouldDeadlock) from the item's own callback.
    pub fn disable_sync(&self) -> Result<bool, Error> {
        self.0.disable_sync()
    }

    /// Decrements the disable depth (`enable_delayed_work`); never queues or
    /// arms the item. Returns whether the depth is now zero.
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
