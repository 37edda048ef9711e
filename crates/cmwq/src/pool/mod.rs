//! Worker pools: the shared worklist, the workers, `nr_running` and the policy
//! predicates. The protocol, and why no wake-up is lost, is in `README.md`
//! beside this file.
//!
//! - `worker_pool`: the pool, its locked state and its workers' slots;
//! - `cm`: the concurrency-management word and its transitions (the hints' and
//!   the monitor's);
//! - `policy`: the predicates, and `kick_pool`;
//! - `worker`: the worker loop and the execution of one item;
//! - `batch`: a worker's batch of spawned closures, run with one lock hold
//!   each side, and taken back when the worker stops counting;
//! - `manage`: creating workers, idling and culling them;
//! - `steal`: finding a queued item in the pool's lists;
//! - `mayday`: a pool's mayday timer, which sends `MEM_RECLAIM` pwqs to their
//!   rescuers when it may not create a worker;
//! - `rescuer`: the rescuer threads of `MEM_RECLAIM` workqueues;
//! - `bh`: the BH pools' contexts (`WQ_BH`), their loop and budget.

mod batch;
mod bh;
mod cm;
mod manage;
mod mayday;
mod policy;
mod rescuer;
mod steal;
#[cfg(all(test, loom))]
mod tests;
mod worker;
mod worker_pool;

#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use batch::STALE_BATCH;
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use bh::{monitor_bh_blocked, monitor_bh_hog};
pub(crate) use cm::{blocking_until, WorkerShared};
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use cm::{monitor_cpu_intensive, monitor_running, monitor_sleeping};
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use manage::{retry_starved, Retry, FAIL_NICE, FAIL_SPAWNS, HIGHPRI_NICE, WORKER_THREAD_PREFIX};
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use mayday::mayday_timer;
pub(crate) use policy::kick_pool;
pub use rescuer::current_is_workqueue_rescuer;
pub(crate) use rescuer::{Rescuer, RESCUER_THREAD_PREFIX};
pub(crate) use steal::{blocked_behind_current, flushed_wq, steal};
pub(crate) use worker_pool::{PoolGuard, PoolLocked, WorkerPool};

pub(crate) use crate::registry::pool_by_id as by_id;
