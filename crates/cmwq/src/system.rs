//! The system workqueues (`system_wq` and its kin in `kernel/workqueue.c`),
//! created on first use. Use them for short, independent items that need no
//! queue of their own: they cannot be drained or destroyed, and flushing one
//! waits for everybody's items (it works, with a one-time warning, as the
//! kernel's `flush_scheduled_work`); flush your own items instead.
//!
//! ```
//! use cmwq::{system, ErrorKind, Work, WqFlags};
//!
//! let w = Work::new(|_| { /* short, non-blocking */ });
//! assert!(system::percpu().queue(&w)?); // what `schedule_work(&w)` does
//! w.flush()?;
//!
//! assert_eq!(system::percpu().name(), "events");
//! assert!(system::highpri().flags().contains(WqFlags::HIGHPRI));
//! assert!(system::dfl().flags().contains(WqFlags::UNBOUND));
//! assert!(system::freezable().flags().contains(WqFlags::FREEZABLE));
//!
//! let err = system::long().drain().unwrap_err();
//! assert!(matches!(err.kind(), ErrorKind::SystemWorkqueue(_)));
//! assert_eq!(err.workqueue(), "events_long");
//! # Ok::<(), cmwq::Error>(())
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use crate::work::{DelayedWork, Work};
use crate::workqueue::{Workqueue, WqFlags, WQ_MAX_ACTIVE};

fn make(
    cell: &'static OnceLock<Workqueue>,
    name: &str,
    flags: WqFlags,
    max_active: usize,
) -> &'static Workqueue {
    cell.get_or_init(|| {
        Workqueue::builder(name)
            .flags(flags)
            .max_active(max_active)
            .system()
            .build()
            .expect("system workqueue parameters are valid")
    })
}

/// `system_percpu_wq` ("events"): per-CPU, for short items. [`schedule_work`] uses it.
///
/// ```
/// let w = cmwq::Work::new(|_| {});
/// let cpu = cmwq::allowed_cpus()[0];
/// assert!(cmwq::system::percpu().queue_on(cpu, &w)?); // = schedule_work_on(cpu, &w)
/// w.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn percpu() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events", WqFlags::PERCPU, 0)
}

/// `system_highpri_wq` ("events_highpri"): per-CPU, highpri pools (workers at
/// nice -20 where the process may raise priority).
///
/// ```
/// let w = cmwq::Work::new(|_| { /* latency-sensitive */ });
/// cmwq::system::highpri().queue(&w)?;
/// w.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn highpri() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_highpri", WqFlags::PERCPU | WqFlags::HIGHPRI, 0)
}

/// `system_long_wq` ("events_long"): per-CPU, for items that may run long.
///
/// ```
/// let w = cmwq::Work::new(|_| cmwq::sleep(std::time::Duration::from_millis(1)));
/// cmwq::system::long().queue(&w)?;
/// w.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn long() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_long", WqFlags::PERCPU, 0)
}

/// `system_dfl_wq` ("events_unbound"): unbound and concurrency managed, with
/// the default affinity scope: as many items run at once as their pod has
/// CPUs, more while some block; `max_active` 2048.
///
/// ```
/// use cmwq::{system, WqFlags, WQ_MAX_ACTIVE};
///
/// let wq = system::dfl();
/// assert!(wq.flags().contains(WqFlags::UNBOUND));
/// assert_eq!(wq.max_active(), WQ_MAX_ACTIVE);
/// let w = cmwq::Work::new(|_| {});
/// wq.queue(&w)?;
/// w.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn dfl() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_unbound", WqFlags::UNBOUND, WQ_MAX_ACTIVE)
}

/// `system_freezable_wq` ("events_freezable"): per-CPU and [`FREEZABLE`](WqFlags::FREEZABLE).
///
/// ```
/// use cmwq::{freezer, system, Work};
///
/// freezer::freeze();
/// let w = Work::new(|_| {});
/// system::freezable().queue(&w)?;
/// assert!(w.is_pending()); // held back while frozen
/// freezer::thaw();
/// w.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn freezable() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_freezable", WqFlags::PERCPU | WqFlags::FREEZABLE, 0)
}

/// `system_power_efficient_wq` ("events_power_efficient"): per-CPU, or unbound when
/// the process-wide power-efficient setting was on when it was first used.
///
/// ```
/// use cmwq::{system, WqFlags};
///
/// cmwq::set_power_efficient(true); // before its first use
/// assert!(system::power_efficient().flags().contains(WqFlags::UNBOUND));
/// ```
pub fn power_efficient() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_power_efficient", WqFlags::PERCPU | WqFlags::POWER_EFFICIENT, 0)
}

/// `system_bh_wq` ("events_bh"): [`BH`](WqFlags::BH): items run in the
/// queueing CPU's BH context, in queueing order, one at a time. They must not
/// block: one that does holds up the BH items behind it on its CPU, and is
/// reported ([`WqStats::bh_blocked`](crate::WqStats::bh_blocked)).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cmwq::{system, Work, WqFlags};
///
/// let wq = system::bh();
/// assert_eq!(wq.name(), "events_bh");
/// assert!(wq.flags().contains(WqFlags::BH | WqFlags::PERCPU));
/// let cpu = cmwq::allowed_cpus()[0];
/// let order = Arc::new(Mutex::new(Vec::new()));
/// let items: Vec<Work> = (0..3)
///     .map(|i| {
///         let order = order.clone();
///         Work::new(move |_| order.lock().unwrap().push(i)) // short, never blocking
///     })
///     .collect();
/// for w in &items {
///     wq.queue_on(cpu, w)?;
/// }
/// for w in &items {
///     w.flush()?;
/// }
/// assert_eq!(*order.lock().unwrap(), [0, 1, 2]); // queueing order on that CPU
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn bh() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_bh", WqFlags::BH | WqFlags::PERCPU, 0)
}

/// `system_bh_highpri_wq` ("events_bh_highpri"): [`BH`](WqFlags::BH) and
/// [`HIGHPRI`](WqFlags::HIGHPRI): the highpri BH context of the queueing CPU,
/// at `SCHED_FIFO` where the process may use it (else nice −20).
///
/// ```
/// let w = cmwq::Work::new(|_| { /* short, never blocking */ });
/// cmwq::system::bh_highpri().queue(&w)?;
/// w.flush()?;
/// assert_eq!(cmwq::system::bh_highpri().name(), "events_bh_highpri");
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn bh_highpri() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_bh_highpri", WqFlags::BH | WqFlags::HIGHPRI | WqFlags::PERCPU, 0)
}

/// Queues `work` on the system per-CPU workqueue (`schedule_work`). Returns
/// `false` if it was already pending or is disabled.
///
/// ```
/// let w = cmwq::Work::new(|_| {});
/// assert!(cmwq::schedule_work(&w));
/// w.flush()?;
/// w.disable();
/// assert!(!cmwq::schedule_work(&w)); // disabled: refused
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn schedule_work(work: &Work) -> bool {
    percpu().queue(work).expect("the system workqueue is never drained or destroyed")
}

/// Queues `work` on `cpu` of the system per-CPU workqueue (`schedule_work_on`).
///
/// ```
/// use cmwq::ErrorKind;
///
/// let w = cmwq::Work::new(|_| {});
/// for cpu in cmwq::allowed_cpus() {
///     assert!(cmwq::schedule_work_on(cpu, &w)?);
///     w.flush()?;
/// }
/// let err = cmwq::schedule_work_on(usize::MAX, &w).unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::InvalidCpu { .. }));
/// assert_eq!(err.workqueue(), "events");
/// # Ok::<(), cmwq::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::InvalidCpu`](crate::ErrorKind::InvalidCpu).
pub fn schedule_work_on(cpu: usize, work: &Work) -> Result<bool, crate::Error> {
    percpu().queue_on(cpu, work)
}

/// Queues `dw` on the system per-CPU workqueue after `delay`
/// (`schedule_delayed_work`). Returns `false` if it was already pending or is
/// disabled.
///
/// ```
/// use std::time::Duration;
///
/// let dw = cmwq::DelayedWork::new(|_| {});
/// assert!(cmwq::schedule_delayed_work(&dw, Duration::from_secs(60)));
/// assert!(!cmwq::schedule_delayed_work(&dw, Duration::from_secs(1))); // already pending
/// dw.flush()?; // run it now instead
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn schedule_delayed_work(dw: &DelayedWork, delay: Duration) -> bool {
    percpu().queue_delayed(dw, delay).expect("the system workqueue is never drained or destroyed")
}

/// Queues `dw` on `cpu` of the system per-CPU workqueue after `delay`
/// (`schedule_delayed_work_on`).
///
/// ```
/// use std::time::Duration;
///
/// let dw = cmwq::DelayedWork::new(|_| {});
/// let cpu = cmwq::allowed_cpus()[0];
/// assert!(cmwq::schedule_delayed_work_on(cpu, &dw, Duration::from_secs(60))?);
/// assert!(dw.cancel());
/// assert!(cmwq::schedule_delayed_work_on(usize::MAX, &dw, Duration::ZERO).is_err());
/// # Ok::<(), cmwq::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::InvalidCpu`](crate::ErrorKind::InvalidCpu).
pub fn schedule_delayed_work_on(cpu: usize, dw: &DelayedWork, delay: Duration) -> Result<bool, crate::Error> {
    percpu().queue_delayed_on(cpu, dw, delay)
}
