//! A cmwq instance (the kernel's globals in `kernel/workqueue.c`): its context,
//! the table of worker pools, the timer base of its delayed work, and the list
//! of its workqueues (the kernel's `workqueues`). The process has one
//! (`global.rs`); loom models and simulated topologies build their own.

use std::sync::{OnceLock, Weak};

use crate::context::Context;
use crate::platform::loom::{Mutex, MutexGuard};
use crate::platform::timer::TimerBase;
use crate::platform::topology::Topology;
use crate::pool::WorkerPool;
use crate::workqueue::{Armed, WqCore};

/// The table of every pool ever created, of every instance, indexed by pool id.
/// Pools are immortal: work items store a pool id in their state word and look
/// the pool up here. A leaf lock, read-mostly (written once per new pool).
static POOLS: parking_lot::RwLock<Vec<&'static WorkerPool>> = parking_lot::RwLock::new(Vec::new());

pub(crate) fn pool_by_id(id: u32) -> Option<&'static WorkerPool> {
    POOLS.read().get(id as usize).copied()
}

pub(crate) fn all_pools() -> Vec<&'static WorkerPool> {
    POOLS.read().clone()
}

/// [`all_pools`] into a buffer the caller keeps: allocates only when it grows.
#[cfg(not(loom))]
pub(crate) fn all_pools_into(into: &mut Vec<&'static WorkerPool>) {
    let t = POOLS.read();
    into.clear();
    into.extend_from_slice(&t);
}

/// Registers a new pool built by `make(id)`.
fn register_pool(make: impl FnOnce(u32) -> WorkerPool) -> &'static WorkerPool {
    let mut t = POOLS.write();
    let id = u32::try_from(t.len()).expect("pool ids exhausted");
    let pool: &'static WorkerPool = Box::leak(Box::new(make(id)));
    t.push(pool);
    pool
}

/// Pool kinds per CPU: `[normal, highpri]` (`NR_STD_WORKER_POOLS`).
type PoolPair = [OnceLock<&'static WorkerPool>; 2];

/// A cmwq instance.
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) ctx: Context,
    cpu_pools: Box<[PoolPair]>,
    unbound_pools: PoolPair,
    /// The timer context of delayed work.
    pub(crate) timers: TimerBase<Armed>,
    /// Every workqueue whose core is alive: from its creation until its last
    /// handle is dropped and its last item has run (the kernel's `workqueues`,
    /// under `wq_pool_mutex`). Entries of dead queues are pruned as the list
    /// grows. Lock order: this list, then a workqueue's flush lock, then a pool
    /// lock.
    workqueues: Mutex<Vec<Weak<WqCore>>>,
}

impl Registry {
    pub(crate) fn new(topo: Topology) -> Registry {
        Registry {
            cpu_pools: (0..topo.nr_cpu_ids).map(|_| PoolPair::default()).collect(),
            unbound_pools: PoolPair::default(),
            ctx: Context::new(topo),
            timers: TimerBase::new(),
            workqueues: Mutex::new(Vec::new()),
        }
    }

    /// The normal or highpri pool of `cpu`, created on first use (without workers:
    /// the first kick creates one).
    pub(crate) fn cpu_pool(&'static self, cpu: usize, highpri: bool) -> &'static WorkerPool {
        self.cpu_pools[cpu][highpri as usize]
            .get_or_init(|| register_pool(|id| WorkerPool::new(id, &self.ctx, Some(cpu), highpri)))
    }

    /// The normal or highpri pool of `cpu`, if it was ever used.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn cpu_pool_if_created(&self, cpu: usize, highpri: bool) -> Option<&'static WorkerPool> {
        self.cpu_pools.get(cpu)?[highpri as usize].get().copied()
    }

    /// The unbound pool for the given priority (one pod: the whole process).
    pub(crate) fn unbound_pool(&'static self, highpri: bool) -> &'static WorkerPool {
        self.unbound_pools[highpri as usize]
            .get_or_init(|| register_pool(|id| WorkerPool::new(id, &self.ctx, None, highpri)))
    }

    /// This instance's pools.
    pub(crate) fn pools(&self) -> impl Iterator<Item = &'static WorkerPool> + '_ {
        all_pools().into_iter().filter(|p| std::ptr::eq(p.ctx, &self.ctx))
    }

    /// Adds a new workqueue to the list. Each time the list reaches a power of
    /// two, the entries of dead queues go first (amortised O(1)).
    pub(crate) fn register_workqueue(&self, wq: Weak<WqCore>) {
        let mut list = self.workqueues.lock();
        if list.len() >= 16 && list.len().is_power_of_two() {
            list.retain(|w| w.strong_count() > 0);
        }
        list.push(wq);
    }

    /// The list of workqueues, locked (the freezer walks it); an entry whose
    /// queue is gone does not upgrade.
    pub(crate) fn workqueues(&self) -> MutexGuard<'_, Vec<Weak<WqCore>>> {
        self.workqueues.lock()
    }

    /// Retires every worker of this instance's pools and waits for them to exit.
    /// Only loom models need this: production workers live for the process.
    #[cfg(all(loom, test))]
    pub(crate) fn shutdown(&'static self) {
        for p in self.pools() {
            p.shutdown();
        }
    }
}
