//! Workqueue statistics (the kernel's per-pwq `pool_workqueue_stats`, summed),
//! and what `cmwq::debug::dump` reads of a workqueue.

use std::time::Duration;

use super::core::WqCore;
use super::flags::WqFlags;
use super::handle::Workqueue;
use crate::platform::loom::Ordering;
use crate::pwq::PwqStats;

/// Statistics of a workqueue, summed over its pwqs: the kernel's per-pwq
/// `enum pool_workqueue_stats` (`kernel/workqueue.c`), which
/// `tools/workqueue/wq_monitor.py` shows, plus cmwq's own; see
/// [`Workqueue::stats`]. The rescuer's counters (the kernel's
/// `PWQ_STAT_MAYDAY` and `PWQ_STAT_RESCUED`) join them with `WQ_MEM_RECLAIM`.
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
    /// Items that started executing (`PWQ_STAT_STARTED`; `wq_monitor.py`'s
    /// `total`).
    pub started: u64,
    /// Items that finished executing, including panicked ones
    /// (`PWQ_STAT_COMPLETED`).
    pub completed: u64,
    /// Items whose callback panicked (cmwq's own: the kernel has no panics to
    /// contain).
    pub panicked: u64,
    /// Concurrency-management wake-ups: another worker was woken because one
    /// of this queue's items blocked (announced, or found by the sleep
    /// monitor) or hogged the CPU (`PWQ_STAT_CM_WAKEUP`; `CMW`).
    pub cm_wakeup: u64,
    /// Items found on the CPU past the CPU-intensive threshold
    /// ([`set_cpu_intensive_thresh`](crate::set_cpu_intensive_thresh), 10 ms),
    /// which then stopped counting toward concurrency
    /// (`PWQ_STAT_CPU_INTENSIVE`, "wq_cpu_intensive_thresh_us violations";
    /// `CPUitsv`). Items of a [`WqFlags::CPU_INTENSIVE`] queue never count
    /// toward concurrency and are not counted here, as in the kernel.
    pub cpu_intensive: u64,
    /// CPU time its items used while items were timed (`PWQ_STAT_CPU_TIME`;
    /// `CPUtime`): each item's thread CPU time, read at its start and at its
    /// end. Timing is off until someone looks ([`debug::dump`](crate::debug::dump)
    /// or [`debug::set_accounting`](crate::debug::set_accounting)), so this
    /// counts from then; the kernel samples it at each scheduler tick
    /// (`wq_worker_tick`) instead.
    pub cpu_time: Duration,
    /// Unbound workers brought back into their pod (`PWQ_STAT_REPATRIATED`;
    /// `RPR`). Always 0: a process cannot pick the CPU a thread wakes on (the
    /// kernel sets `wake_cpu` in `kick_pool`); a non-strict unbound worker
    /// starts in its pod and the scheduler moves it within the cpumask.
    pub repatriated: u64,
    /// Blocks of its items that nobody announced, found by the sleep monitor
    /// or an idle sentinel (cmwq's own; announced ones, [`blocking`](crate::blocking)
    /// and [`sleep`](crate::sleep), are not counted).
    pub monitor_blocks: u64,
    /// Times one of its pwqs was sent to its rescuer because the pool could not
    /// create a worker (`MEM_RECLAIM` queues only; the kernel's `mayday`).
    pub mayday: u64,
    /// Items its rescuer ran (the kernel's `rescued`).
    pub rescued: u64,
    /// Times one of its items blocked on a [`WqFlags::BH`](crate::WqFlags::BH)
    /// queue, where items must not wait: a [`blocking`](crate::blocking) or
    /// [`sleep`](crate::sleep) inside it, or the sleep monitor finding its BH
    /// context asleep while items waited behind it (cmwq's own; the kernel
    /// would splat "scheduling while atomic"). 0 for other queues.
    pub bh_blocked: u64,
    /// Spawned closures a worker ran in a batch, after the batch's first: it
    /// took them with the first in one hold of the pool lock, and completed
    /// them in one more (cmwq's own; `pool/README.md`, "Batches").
    pub batched: u64,
    /// Items queued and not yet finished (active, inactive or running;
    /// `wq_monitor.py`'s `infl`).
    pub in_flight: u64,
    /// Items waiting on an inactive list for `max_active`.
    pub inactive: u64,
}

impl WqStats {
    /// `s`, the counters of one or more pwqs, with the queue's in-flight and
    /// inactive counts.
    pub(crate) fn from_pwq(s: &PwqStats, in_flight: u64, inactive: u64) -> WqStats {
        WqStats {
            started: s.started,
            completed: s.completed,
            panicked: s.panicked,
            cm_wakeup: s.cm_wakeup,
            cpu_intensive: s.cpu_intensive,
            cpu_time: Duration::from_nanos(s.cpu_time_ns),
            repatriated: 0,
            monitor_blocks: s.monitor_blocks,
            mayday: s.mayday,
            rescued: s.rescued,
            bh_blocked: s.bh_blocked,
            batched: s.batched,
            in_flight,
            inactive,
        }
    }
}

/// What `debug::dump` shows of a workqueue beside its pwqs.
#[derive(Debug, Clone)]
pub(crate) struct WqInfo {
    pub(crate) flags: WqFlags,
    pub(crate) max_active: u32,
    /// Unbound queues that count `max_active` per node.
    pub(crate) min_active: Option<u32>,
    /// Destroyed, or its last handle dropped: no longer listed.
    pub(crate) gone: bool,
    /// The counters of pwqs already freed.
    pub(crate) retired: PwqStats,
    /// An ordered queue.
    pub(crate) ordered: bool,
    /// Per node count (`wq_node_nr_active`): (node id, `None` for the last
    /// one, of pools spanning nodes; active; max; pwqs waiting).
    pub(crate) nodes: Vec<(Option<usize>, u32, u32, usize)>,
}

impl WqCore {
    /// What `debug::dump` shows of this queue beside its pwqs.
    pub(crate) fn info(&self) -> WqInfo {
        WqInfo {
            flags: self.flags,
            // Relaxed: written under the flush lock; a dump reads a recent value.
            max_active: self.max_active.load(Ordering::Relaxed),
            min_active: (!self.nna.is_empty()).then(|| self.min_active.load(Ordering::Relaxed)),
            gone: self.destroyed.load(Ordering::Relaxed) || self.destroying.load(Ordering::Relaxed),
            retired: *self.retired.lock(),
            ordered: self.ordered,
            nodes: self
                .nna
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let (active, max, waiting) = n.snapshot();
                    ((i + 1 < self.nna.len()).then_some(i), active, max, waiting)
                })
                .collect(),
        }
    }
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
        WqStats::from_pwq(&sum, in_flight, inactive)
    }
}
