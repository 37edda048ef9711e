//! The context layer: what every pool of one cmwq instance shares and none owns,
//! beneath the kernel's core (pools, pwqs, work items, workqueues). It imports
//! only from `platform`.
//!
//! - [`config`]: the settings and their environment variables;
//! - [`threads`]: thread accounting, the ceilings and the creator thread;
//! - [`counters`]: statistics the pools write;
//! - [`work_state`]: a work item's atomic state word;
//! - [`bell`]: a helper thread the pools wake without knowing it (the two below);
//! - [`doorbell`] and [`arming`]: how a pool tells the sleep monitor it is
//!   saturated or starved, without knowing the monitor;
//! - [`watchdog`]: how a pool with work waiting wakes the stall watchdog,
//!   without knowing it.

pub(crate) mod arming;
pub(crate) mod bell;
pub(crate) mod config;
pub(crate) mod counters;
pub(crate) mod doorbell;
pub(crate) mod threads;
pub(crate) mod watchdog;
pub(crate) mod work_state;

use crate::platform::loom::{AtomicBool, Ordering};
use crate::platform::topology::Topology;

pub(crate) use config::Config;
pub(crate) use counters::Counters;
pub(crate) use doorbell::Doorbell;
pub(crate) use threads::Threads;
pub(crate) use watchdog::WatchdogBell;

/// What the pools of one instance share. The process has one (`global.rs`);
/// loom models and simulated topologies build their own.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) topo: Topology,
    pub(crate) config: Config,
    pub(crate) threads: Threads,
    pub(crate) counters: Counters,
    pub(crate) doorbell: Doorbell,
    /// Wakes the stall watchdog (`monitor/watchdog/`) when a pool has work waiting.
    pub(crate) watchdog: WatchdogBell,
    /// `workqueue_freezing`: freezable queues activate nothing while set.
    /// Relaxed: written by the freezer under the registry's workqueue-list lock
    /// before it re-applies each freezable queue's `max_active` under that
    /// queue's flush lock; read under a flush lock (pwq creation, `max_active`
    /// changes). A queue on the list is fixed up under its flush lock; one that
    /// joins the list later takes the list lock after the store. See `freezer.rs`.
    freezing: AtomicBool,
}

impl Context {
    pub(crate) fn new(topo: Topology) -> Context {
        Context {
            config: Config::from_env(topo.available_parallelism()),
            threads: Threads::new(topo.real),
            counters: Counters::default(),
            doorbell: Doorbell::new(topo.nr_cpu_ids, topo.real),
            watchdog: WatchdogBell::from_env(),
            freezing: AtomicBool::new(false),
            topo,
        }
    }

    pub(crate) fn is_freezing(&self) -> bool {
        self.freezing.load(Ordering::Relaxed)
    }

    /// Caller holds the registry's workqueue-list lock (see `freezing`).
    pub(crate) fn set_freezing(&self, on: bool) {
        self.freezing.store(on, Ordering::Relaxed);
    }
}
