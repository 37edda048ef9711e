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
    /// let err = Workqueue::builder("bh").flags(WqFlags::BH).build().unwrap_err();
    /// assert_eq!(err.kind(), &ErrorKind::UnsupportedFlag("BH")); // refused, never ignored
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct WqFlags: u32 {
        /// Run items in a per-CPU non-sleeping context. Not supported yet.
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

/// Flags that a later version implements: refused, never silently ignored.
pub(super) const UNSUPPORTED: [(WqFlags, &str); 1] = [(WqFlags::BH, "BH")];
