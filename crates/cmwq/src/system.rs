//! The system workqueues (`system_wq` and its kin in `kernel/workqueue.c`),
//! created on first use.

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
pub fn percpu() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events", WqFlags::PERCPU, 0)
}

/// `system_highpri_wq` ("events_highpri"): per-CPU, highpri pools.
pub fn highpri() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_highpri", WqFlags::PERCPU | WqFlags::HIGHPRI, 0)
}

/// `system_long_wq` ("events_long"): per-CPU, for items that may run long.
pub fn long() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_long", WqFlags::PERCPU, 0)
}

/// `system_dfl_wq` ("events_unbound"): unbound, not concurrency managed;
/// items start as soon as `max_active` (2048) and workers allow.
pub fn dfl() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_unbound", WqFlags::UNBOUND, WQ_MAX_ACTIVE)
}

/// `system_freezable_wq` ("events_freezable"): per-CPU and [`FREEZABLE`](WqFlags::FREEZABLE).
pub fn freezable() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_freezable", WqFlags::PERCPU | WqFlags::FREEZABLE, 0)
}

/// `system_power_efficient_wq` ("events_power_efficient"): per-CPU, or unbound when
/// the process-wide power-efficient setting was on when it was first used.
pub fn power_efficient() -> &'static Workqueue {
    static WQ: OnceLock<Workqueue> = OnceLock::new();
    make(&WQ, "events_power_efficient", WqFlags::PERCPU | WqFlags::POWER_EFFICIENT, 0)
}

/// Queues `work` on the system per-CPU workqueue (`schedule_work`). Returns
/// `false` if it was already pending or is disabled.
pub fn schedule_work(work: &Work) -> bool {
    percpu().queue(work).expect("the system workqueue is never drained or destroyed")
}

/// Queues `work` on `cpu` of the system per-CPU workqueue (`schedule_work_on`).
///
/// # Errors
/// [`ErrorKind::InvalidCpu`](crate::ErrorKind::InvalidCpu).
pub fn schedule_work_on(cpu: usize, work: &Work) -> Result<bool, crate::Error> {
    percpu().queue_on(cpu, work)
}

/// Queues `dw` on the system per-CPU workqueue after `delay`
/// (`schedule_delayed_work`). Returns `false` if it was already pending or is
/// disabled.
pub fn schedule_delayed_work(dw: &DelayedWork, delay: Duration) -> bool {
    percpu().queue_delayed(dw, delay).expect("the system workqueue is never drained or destroyed")
}

/// Queues `dw` on `cpu` of the system per-CPU workqueue after `delay`
/// (`schedule_delayed_work_on`).
///
/// # Errors
/// [`ErrorKind::InvalidCpu`](crate::ErrorKind::InvalidCpu).
pub fn schedule_delayed_work_on(cpu: usize, dw: &DelayedWork, delay: Duration) -> Result<bool, crate::Error> {
    percpu().queue_delayed_on(cpu, dw, delay)
}
