//! Workqueue flags (`enum wq_flags`) and the `max_active` limits.

/// The default `max_active` (`WQ_DFL_ACTIVE`).
pub const WQ_DFL_ACTIVE: usize = 1024;
/// The largest `max_active` (`WQ_MAX_ACTIVE`).
pub const WQ_MAX_ACTIVE: usize = 2048;

bitflags::bitflags! {
    /// Workqueue flags (`enum wq_flags`), with the kernel's values.
    ///
    /// ```
    /// use cmwq::{ErrorKind, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("io").flags(WqFlags::UNBOUND | WqFlags::FREEZABLE).build()?;
    /// assert!(wq.flags().contains(WqFlags::UNBOUND));
    /// assert_eq!(WqFlags::HIGHPRI.bits(), 1 << 4); // WQ_HIGHPRI
    ///
    /// // BH takes HIGHPRI and PERCPU only, and max_active 0.
    /// let bh = Workqueue::builder("rx").flags(WqFlags::BH | WqFlags::HIGHPRI).build()?;
    /// assert!(bh.flags().contains(WqFlags::PERCPU)); // BH implies PERCPU
    /// let err = Workqueue::builder("bh").flags(WqFlags::BH | WqFlags::UNBOUND).build().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidFlags(_))); // refused, never ignored
    /// assert!(err.to_string().contains("UNBOUND"));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct WqFlags: u32 {
        /// Run items in the queueing CPU's BH context, in queueing order, one at
        /// a time: a thread pinned to the CPU at high priority (a highpri BH
        /// context at `SCHED_FIFO` where permitted), one per CPU and priority,
        /// never concurrency managed and never given a second worker. It runs
        /// items at most 10 at a time or for 2 ms, then gives the CPU up
        /// while more wait, so a storm cannot starve the CPU's other threads
        /// (the kernel's softirq budget).
        ///
        /// **Items must not wait.** A BH item that blocks holds up every BH
        /// item queued behind it on that CPU: no other context takes over. A
        /// [`blocking`](crate::blocking) or [`sleep`](crate::sleep) inside one,
        /// or the sleep monitor finding the context asleep while items wait,
        /// is warned about (once per queue) and counted
        /// ([`WqStats::bh_blocked`](crate::WqStats::bh_blocked)).
        ///
        /// Allowed beside it: `HIGHPRI` and `PERCPU` (implied) only, with
        /// `max_active` 0 and not [ordered](crate::Workqueue::ordered) (the
        /// kernel's `__WQ_BH_ALLOWS`); anything else is refused by
        /// [`build`](crate::Builder::build) with
        /// [`ErrorKind::InvalidFlags`](crate::ErrorKind::InvalidFlags). Queue,
        /// delayed queueing, flush, cancel and disable work as for any item.
        /// System BH queues: [`system::bh`](crate::system::bh),
        /// [`system::bh_highpri`](crate::system::bh_highpri).
        const BH = 1 << 0;
        /// Served by unbound pools, one per pod of the queue's affinity scope
        /// ([`Attrs`](crate::Attrs)), each running as many items at once as its
        /// pod has CPUs (concurrency managed, unlike the kernel's). `max_active`
        /// is counted per NUMA node. The default when `PERCPU` is absent.
        const UNBOUND = 1 << 1;
        /// Frozen by the [`freezer`](crate::freezer): while frozen its items wait on
        /// the inactive list (effective `max_active` 0) until thawed.
        const FREEZABLE = 1 << 2;
        /// Guaranteed forward progress when its pool may not create a worker (a
        /// thread ceiling, a failed or refused thread creation: the kernel's
        /// memory pressure): the queue gets a rescuer thread of its own when it is
        /// built (`cmwq/R-<name>`, not counted against the ceilings), and when a
        /// pool has waited 10 ms for a worker it may not create, the rescuer runs
        /// the queue's waiting items there (the kernel's mayday,
        /// [`WqStats::mayday`](crate::WqStats::mayday),
        /// [`WqStats::rescued`](crate::WqStats::rescued)). Items that depend on
        /// each other belong on separate `MEM_RECLAIM` queues: a rescuer runs one
        /// item at a time. Flushing a queue without it from one of its items is
        /// reported (the kernel's `check_flush_dependency`).
        const MEM_RECLAIM = 1 << 3;
        /// Served by the highpri pools (nice -20 where permitted).
        const HIGHPRI = 1 << 4;
        /// A running item does not count toward concurrency, so it never holds
        /// other items of its CPU back (its start is still managed).
        const CPU_INTENSIVE = 1 << 5;
        /// Per-CPU, unless the process-wide power-efficient setting is on
        /// ([`set_power_efficient`](crate::set_power_efficient), `CMWQ_POWER_EFFICIENT=1`):
        /// then unbound, as in the kernel (`workqueue.power_efficient`).
        const POWER_EFFICIENT = 1 << 7;
        /// Per-CPU: items run on the queueing CPU's pool, one at a time while
        /// none blocks (the kernel's `WQ_PERCPU`). Without it a queue is unbound.
        const PERCPU = 1 << 8;
    }
}

/// Flags that a later version implements: refused, never silently ignored
/// (none now: `BH` is implemented).
pub(super) const UNSUPPORTED: [(WqFlags, &str); 0] = [];
