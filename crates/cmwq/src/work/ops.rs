//! What a work item's handle does to it: flush, cancel, disable and enable
//! (`flush_work`, `cancel_work`, `cancel_work_sync`, `disable_work`,
//! `enable_work`). These reach into the pools (taking a queued item off its
//! list, `pool/steal.rs`) and into the calling worker (`current.rs`), so they
//! live apart from the item's type and its state (`mod.rs`), which the pools
//! use: the pools import the item, and only these operations import the pools.

use super::{Grab, Work, DISABLE_MAX, WARNED_OVERFLOW, WARNED_UNDERFLOW};
use crate::platform::error::{Error, ErrorKind};
use crate::platform::log;
use crate::platform::loom::{fence, ltrace, Ordering};
use crate::platform::timer::TimerSlot;

impl Work {
    /// Waits until every instance queued so far has finished or been cancelled.
    /// Returns whether there was anything to wait for.
    fn wait_resolved(&self) -> bool {
        let s = &self.0.seqs;
        // Acquire: pairs with the Release in `seq_queue`.
        let target = s.queued.load(Ordering::Acquire);
        // SeqCst, here and below: the waiter's side of the Dekker pair with
        // `wake_flushers` (`Seqs`).
        if s.resolved.load(Ordering::SeqCst) >= target {
            return false;
        }
        ltrace!("flush {:#x}: wait target={target}", self.key());
        crate::pool::blocking_until(None, || {
            s.flushers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let mut g = s.lock.lock();
            while s.resolved.load(Ordering::SeqCst) < target {
                g = s.cv.wait(g);
            }
            drop(g);
            // SeqCst: the count the completer's side of the pair loads.
            s.flushers.fetch_sub(1, Ordering::SeqCst);
        });
        true
    }

    // ---- PENDING ownership ----

    /// `work_grab_pending`: gets `PENDING`, stealing the item off its list if queued,
    /// or deleting its timer if armed. Retries while another thread holds `PENDING`
    /// in transit (between its claim and linking the item or arming its timer), a
    /// window of a few instructions plus one lock acquisition.
    pub(crate) fn grab_pending(&self) -> Grab {
        let mut round = 0u32;
        loop {
            let prev = self.state().test_and_set_pending();
            if !prev.pending() {
                return Grab::Idle;
            }
            if prev.queued() && crate::pool::steal(self, prev) {
                self.seq_cancel();
                return Grab::Stolen;
            }
            if !prev.queued() {
                if let Some(armed) = self.timer().and_then(TimerSlot::steal) {
                    // The timer owned PENDING; its instance was never queued, so
                    // there is no sequence number to cancel.
                    drop(armed);
                    return Grab::Stolen;
                }
            }
            crate::platform::loom::thread::spin_wait(round);
            round = round.saturating_add(1);
        }
    }

    /// Cancels a pending instance (`cancel_work`); does not wait for a running one.
    /// Returns whether the item was pending.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::ordered("cancel-demo").build()?;
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let first = Work::new(move |_| { g.wait(); });
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// let second = Work::new(move |_| r.store(true, Ordering::Relaxed));
    /// wq.queue(&first)?;
    /// wq.queue(&second)?; // pending behind `first`
    /// assert!(second.cancel()); // taken off the queue
    /// assert!(!second.is_pending());
    /// assert!(!second.cancel()); // nothing left to cancel
    /// gate.wait();
    /// wq.flush()?;
    /// assert!(!ran.load(Ordering::Relaxed)); // the cancelled instance never ran
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let g = self.grab_pending();
        let depth = self.state().load().disable_depth();
        self.state().release_pending(depth);
        g == Grab::Stolen
    }

    /// Cancels a pending instance and waits for a running one (`cancel_work_sync`).
    ///
    /// Works even if the item requeues itself: it is disabled while the running
    /// instance finishes, so requeue attempts fail. On return the item is neither
    /// pending nor running, unless someone queued it again after the call returned.
    /// As in the kernel, this holds for an item used on one workqueue: if instances
    /// queued on two workqueues run at once, it waits for the newest one only.
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("poller").build()?;
    /// let q = wq.clone();
    /// let poll = Work::new(move |w| {
    ///     let _ = q.queue(w); // requeues itself for ever
    /// });
    /// wq.queue(&poll)?;
    /// poll.cancel_sync()?; // stops it, even though it requeues itself
    /// assert!(!poll.busy().pending && !poll.busy().running);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// From its own callback it would wait for itself:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use cmwq::{ErrorKind, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("selfish").build()?;
    /// let seen = Arc::new(Mutex::new(None));
    /// let s = seen.clone();
    /// let w = Work::new(move |w| *s.lock().unwrap() = w.cancel_sync().err());
    /// wq.queue(&w)?;
    /// w.flush()?;
    /// let err = seen.lock().unwrap().take().expect("cancel_sync() from the callback fails");
    /// assert!(matches!(err.kind(), ErrorKind::WouldDeadlock(_)));
    /// assert_eq!(err.workqueue(), "selfish");
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from the item's own callback.
    pub fn cancel_sync(&self) -> Result<bool, Error> {
        self.check_not_self("cancel_sync() of a work item from its own callback")?;
        let was_pending = self.disable();
        self.wait_resolved();
        self.enable();
        Ok(was_pending)
    }

    /// Waits for the last queued instance to finish executing (`flush_work`).
    /// Returns whether it had to wait.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("flush-demo").build()?;
    /// let done = Arc::new(AtomicBool::new(false));
    /// let d = done.clone();
    /// let w = Work::new(move |_| d.store(true, Ordering::Relaxed));
    /// assert!(!w.flush()?); // never queued: nothing to wait for
    /// wq.queue(&w)?;
    /// w.flush()?; // returns once that instance has run
    /// assert!(done.load(Ordering::Relaxed));
    /// assert!(!w.flush()?); // already finished
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from the item's own callback, or from
    /// an item of a workqueue with `max_active == 1` (ordered ones included) while this
    /// item is queued behind it on the same queue, or from a
    /// [`BH`](crate::WqFlags::BH) item while this item is queued on the same BH
    /// context (the CPU's one context runs it only after the caller).
    pub fn flush(&self) -> Result<bool, Error> {
        self.check_not_self("flush() of a work item from its own callback")?;
        let s = self.state().load();
        // `check_flush_dependency` (`start_flush_work`): from an item, with the
        // queue of the instance waited for (queued, or running on its last pool).
        if crate::current::worker().is_some() {
            if let Some(wq) = crate::pool::flushed_wq(self, s) {
                wq.check_flush_dependency();
            }
        }
        if s.queued() {
            if let Some((wq, why)) = crate::pool::blocked_behind_current(self, s) {
                return Err(Error::new(&wq, ErrorKind::WouldDeadlock(why)));
            }
        }
        Ok(self.wait_resolved())
    }

    pub(crate) fn check_not_self(&self, what: &'static str) -> Result<(), Error> {
        if crate::platform::fork::is_forked_child() {
            // An item belongs to no one queue: the error names none.
            return Err(Error::new("", ErrorKind::Forked));
        }
        match crate::current::current_work_and_wq() {
            Some((w, wq)) if w.ptr_eq(self) => Err(Error::new(&wq, ErrorKind::WouldDeadlock(what))),
            _ => Ok(()),
        }
    }

    /// Increments the disable depth and cancels a pending instance (`disable_work`).
    /// While the depth is above zero every queue attempt returns `false`.
    /// Returns whether the item was pending. Saturates at 65535 with a warning,
    /// logged once per item however often it is hit (the kernel's `WARN_ONCE` in
    /// `work_offqd_disable`, kernel/workqueue.c, is once per call site; once per
    /// item still names each item that overflows, and never floods the log).
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("maintenance").build()?;
    /// let w = Work::new(|_| {});
    /// assert!(!w.disable()); // it was not pending
    /// assert!(!wq.queue(&w)?); // disabled: refused, as `schedule_work` would be
    /// assert!(!w.is_pending());
    /// assert!(w.enable()); // depth back to 0
    /// assert!(wq.queue(&w)?);
    /// w.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn disable(&self) -> bool {
        let g = self.grab_pending();
        let depth = self.state().load().disable_depth();
        let new = if depth >= DISABLE_MAX {
            if self.warn_first(WARNED_OVERFLOW) {
                log::warn!(
                    work = self.key(),
                    limit = DISABLE_MAX,
                    "workqueue: work disable count overflowed; staying at the limit (warned once per item)"
                );
            }
            DISABLE_MAX
        } else {
            depth + 1
        };
        self.state().release_pending(new);
        g == Grab::Stolen
    }

    /// [`disable`](Self::disable), then waits for a running instance (`disable_work_sync`).
    ///
    /// The way to shut an item down for good: afterwards it neither runs nor can be
    /// queued, whoever tries.
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("teardown").build()?;
    /// let q = wq.clone();
    /// let w = Work::new(move |w| {
    ///     let _ = q.queue(w); // requeues itself for ever
    /// });
    /// wq.queue(&w)?;
    /// w.disable_sync()?;
    /// assert!(!w.busy().running && !w.is_pending());
    /// assert!(!wq.queue(&w)?); // stays off until enabled
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from the item's own callback.
    pub fn disable_sync(&self) -> Result<bool, Error> {
        self.check_not_self("disable_sync() of a work item from its own callback")?;
        let was_pending = self.disable();
        self.wait_resolved();
        Ok(was_pending)
    }

    /// Decrements the disable depth (`enable_work`); never queues the item.
    /// Returns whether the depth is now zero. Enabling an item that is not disabled
    /// logs a warning, once per item, and changes nothing (the kernel's underflow
    /// `WARN_ONCE` in `work_offqd_enable`).
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("nested").build()?;
    /// let w = Work::new(|_| {});
    /// w.disable(); // by one user
    /// w.disable(); // by another
    /// assert!(!w.enable()); // depth 1: still disabled
    /// assert!(!wq.queue(&w)?);
    /// assert!(w.enable()); // depth 0
    /// assert!(!w.is_pending()); // enabling never queues
    /// assert!(wq.queue(&w)?);
    /// w.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn enable(&self) -> bool {
        let s = self.state().load();
        // Not disabled: queued, idle at depth 0, or waiting on its timer.
        let armed = || self.timer().is_some_and(TimerSlot::is_armed);
        if s.queued() || (s.disable_depth() == 0 && (!s.pending() || armed())) {
            if self.warn_first(WARNED_UNDERFLOW) {
                log::warn!(
                    work = self.key(),
                    "workqueue: work disable count underflowed (warned once per item)"
                );
            }
            return true;
        }
        let g = self.grab_pending();
        debug_assert_eq!(g, Grab::Idle, "a disabled item cannot be queued");
        let depth = self.state().load().disable_depth();
        if depth == 0 && self.warn_first(WARNED_UNDERFLOW) {
            log::warn!(work = self.key(), "workqueue: work disable count underflowed (warned once per item)");
        }
        let new = depth.saturating_sub(1);
        self.state().release_pending(new);
        new == 0
    }
}
