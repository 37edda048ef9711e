//! A cmwq instance (the kernel's globals in `kernel/workqueue.c`): its context,
//! the table of worker pools, the timer base of its delayed work, and the list
//! of its workqueues (the kernel's `workqueues`). The process has one
//! (`global.rs`); loom models and simulated topologies build their own.

use std::collections::HashMap;
use std::sync::{OnceLock, Weak};

use crate::context::Context;
use crate::platform::loom::Ordering;
use crate::platform::loom::{Mutex, MutexGuard};
use crate::platform::timer::TimerBase;
use crate::platform::topology::Topology;
use crate::pool::WorkerPool;
use crate::workqueue::{Armed, PoolKey, WqCore};

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
    /// The BH pools of each CPU, `[normal, highpri]` (`bh_worker_pools`),
    /// created on first use with their one context (`pool/bh.rs`).
    bh_pools: Box<[PoolPair]>,
    /// Unbound pools by identity (`unbound_pool_hash`), with their users
    /// counted in `WorkerPool::refs`. A pool nobody uses keeps its entry, and
    /// its id, without threads, for the next queue with the same attributes.
    /// Lock order: this lock, then a pool lock; never taken under a pool lock.
    unbound_pools: Mutex<HashMap<PoolKey, &'static WorkerPool>>,
    /// The same pools as a list, for the idle sentinels, which must not wait
    /// for the lock above (a leaf lock, written only when a pool is made).
    unbound_list: parking_lot::RwLock<Vec<&'static WorkerPool>>,
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
            bh_pools: (0..topo.nr_cpu_ids).map(|_| PoolPair::default()).collect(),
            unbound_pools: Mutex::new(HashMap::new()),
            unbound_list: parking_lot::RwLock::new(Vec::new()),
            ctx: Context::new(topo),
            timers: TimerBase::new(),
            workqueues: Mutex::new(Vec::new()),
        }
    }

    /// The normal or highpri pool of `cpu`, created on first use (without workers:
    /// the first kick creates one).
    pub(crate) fn cpu_pool(&'static self, cpu: usize, highpri: bool) -> &'static WorkerPool {
        self.cpu_pools[cpu][highpri as usize]
            .get_or_init(|| register_pool(|id| WorkerPool::new_percpu(id, &self.ctx, cpu, highpri)))
    }

    /// The normal or highpri BH pool of `cpu`, created on first use; its BH
    /// context is started by the first kick (`pool/bh.rs`).
    pub(crate) fn bh_pool(&'static self, cpu: usize, highpri: bool) -> &'static WorkerPool {
        self.bh_pools[cpu][highpri as usize]
            .get_or_init(|| register_pool(|id| WorkerPool::new_bh(id, &self.ctx, cpu, highpri)))
    }

    /// The normal or highpri pool of `cpu`, if it was ever used.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn cpu_pool_if_created(&self, cpu: usize, highpri: bool) -> Option<&'static WorkerPool> {
        self.cpu_pools.get(cpu)?[highpri as usize].get().copied()
    }

    /// The unbound pool with identity `key`, made on first use, with one more
    /// user (`get_unbound_pool`).
    pub(crate) fn get_unbound_pool(&'static self, key: &PoolKey) -> &'static WorkerPool {
        let mut map = self.unbound_pools.lock();
        let pool = match map.get(key) {
            Some(&p) => p,
            None => {
                let p = register_pool(|id| {
                    WorkerPool::new_unbound(id, &self.ctx, key.pod.clone(), key.affinity.clone(), key.nice)
                });
                map.insert(key.clone(), p);
                self.unbound_list.write().push(p);
                p
            }
        };
        pool.refs.fetch_add(1, Ordering::Relaxed);
        pool
    }

    /// One user fewer (`put_unbound_pool`): the last one's going lets its idle
    /// workers exit at once. Never called under a pool lock.
    pub(crate) fn put_unbound_pool(&self, pool: &'static WorkerPool) {
        let _map = self.unbound_pools.lock();
        if pool.refs.fetch_sub(1, Ordering::Relaxed) == 1 {
            pool.retire_idle();
        }
    }

    /// The unbound pools whose pod holds `cpu`, read without waiting (the idle
    /// sentinel's): `f` is called for each; false if the list was being written.
    #[cfg(not(loom))]
    pub(crate) fn try_unbound_pools_of(&self, cpu: usize, mut f: impl FnMut(&'static WorkerPool)) -> bool {
        let Some(list) = self.unbound_list.try_read() else { return false };
        for &p in list.iter().filter(|p| p.pod.contains(&cpu)) {
            f(p);
        }
        true
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
