//! Workqueue statistics (the kernel's per-pwq `pool_workqueue_stats`, summed).

use super::handle::Workqueue;

/// Statistics of a workqueue, summed over its pwqs (the kernel's per-pwq stats,
/// which `wq_monitor.py` shows); see [`Workqueue::stats`].
///
/// ```
/// let wq = cmwq::Workqueue::builder("fresh").build()?;
/// assert_eq!(wq.stats(), cmwq::WqStats::default()); // all zero
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct WqStats {
    /// Items that started executing.
    pub started: u64,
    /// Items that finished executing (including panicked ones).
    pub completed: u64,
    /// Items whose callback panicked.
    pub panicked: u64,
    /// Concurrency-management wake-ups while this queue's items slept.
    pub cm_wakeup: u64,
    /// Items that ran outside concurrency management as `CPU_INTENSIVE`.
    pub cpu_intensive: u64,
    /// Times one of its pwqs was sent to its rescuer because the pool could not
    /// create a worker (`MEM_RECLAIM` queues only; the kernel's `mayday`).
    pub mayday: u64,
    /// Items its rescuer ran (the kernel's `rescued`).
    pub rescued: u64,
    /// Items queued and not yet finished (active, inactive or running).
    pub in_flight: u64,
    /// Items waiting on an inactive list for `max_active`.
    pub inactive: u64,
}

impl Workqueue {
    /// Statistics summed over the queue's pwqs, including those already freed
    /// (the counters survive `destroy`).
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("counted").build()?;
    /// let w = Work::new(|_| {});
    /// wq.queue(&w)?;
    /// wq.spawn(|| panic!("caught, logged and counted"))?;
    /// wq.flush()?;
    /// let s = wq.stats();
    /// assert_eq!((s.started, s.completed, s.panicked), (2, 2, 1));
    /// assert_eq!((s.in_flight, s.inactive), (0, 0));
    /// wq.destroy()?;
    /// assert_eq!(wq.stats().completed, 2); // still there after destroy
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn stats(&self) -> WqStats {
        let core = self.core();
        let mut sum = *core.retired.lock();
        let (mut in_flight, mut inactive) = (0, 0);
        core.for_each_pwq(|r| {
            let mut g = r.pool.lock();
            if let Some(p) = core.pwq_in(&mut g, r) {
                sum.add(&p.stats);
                in_flight += p.total_in_flight() as u64;
                inactive += p.inactive.len() as u64;
            }
        });
        WqStats {
            started: sum.started,
            completed: sum.completed,
            panicked: sum.panicked,
            cm_wakeup: sum.cm_wakeup,
            cpu_intensive: sum.cpu_intensive,
            mayday: sum.mayday,
            rescued: sum.rescued,
            in_flight,
            inactive,
        }
    }
}
