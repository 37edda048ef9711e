//! The pwqs of an unbound workqueue: one pool per pod of its affinity scope,
//! a pwq on each (created on first use), the pool of every CPU, and the
//! default pwq over the whole cpumask (`apply_wqattrs_prepare`,
//! `wq_calc_pod_cpumask`, `unbound_pwq`). Ordered queues use the default pwq
//! for every CPU.
//!
//! Placement (cmwq's, `README.md`, "Unbound pools"): an item goes to the pool
//! of the queueing CPU's pod, as in the kernel. When that pool is busy (as
//! many running or waiting as it has CPUs) and the queue is not strict, the
//! item goes to the least busy pod pool of the queue's cpumask instead, so
//! that one producer's work reaches every CPU. The choice is made once, at
//! queue time, from lock-free hints (`WorkerPool::load`); the item then lives
//! on that pool's pwq like any other, so non-reentrancy, `max_active`, flush
//! colors and the order of an ordered queue (which has one pwq) hold as they
//! do everywhere else.

use std::sync::OnceLock;

use super::attrs::{Attrs, PoolKey};
use crate::platform::topology::AffinityScope;
use crate::pool::WorkerPool;
use crate::pwq::PwqRef;
use crate::registry::Registry;

/// One generation of an unbound workqueue's pwqs: what `build` or
/// `apply_attrs` made. A table holds a reference on each of its pools.
#[derive(Debug)]
pub(crate) struct PwqTable {
    /// The attributes as asked for (the scope may be `Default`).
    pub(crate) attrs: Attrs,
    /// The scope the pods come from (`Default` resolved).
    pub(crate) scope: AffinityScope,
    /// Tells this generation's pwqs from earlier ones on the same pool slot.
    pub(crate) epoch: u32,
    registry: &'static Registry,
    /// Distinct pools, each held once.
    pools: Box<[&'static WorkerPool]>,
    /// The pwq on each of `pools`, created on first use.
    pwqs: Box<[OnceLock<PwqRef>]>,
    /// Index into `pools` by CPU id.
    cpu_pool: Box<[u16]>,
    /// Indices of the pod pools some CPU maps to: the candidates of placement.
    pod_pools: Box<[u16]>,
    /// Not strict, not ordered, and more than one pod: placement may move work.
    balance: bool,
    /// CPUs of the effective cpumask per node id (`wq_update_node_max_active`).
    pub(crate) cpus_per_node: Vec<usize>,
    /// The index of the node count of each pool (`WqCore::nna`): its node, or
    /// the last slot for a pod that spans nodes.
    pool_node: Box<[u16]>,
    /// The default pwq's pool index.
    dfl: u16,
}

impl PwqTable {
    /// The pools for `attrs` (checked) on `registry`'s topology, with `scope`
    /// resolved. `ordered`: the default pwq for every CPU.
    pub(crate) fn new(
        registry: &'static Registry,
        attrs: Attrs,
        scope: AffinityScope,
        ordered: bool,
        epoch: u32,
    ) -> PwqTable {
        let topo = &registry.ctx.topo;
        let cpumask = attrs.effective_cpumask(topo);
        let strict = attrs.affinity_strict;
        let mut keys: Vec<PoolKey> = Vec::new();
        let mut index_of = |key: PoolKey| -> u16 {
            let i = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            });
            u16::try_from(i).expect("fewer than 65536 pods")
        };
        let dfl = index_of(PoolKey::new(attrs.nice, cpumask.clone(), strict, &cpumask));
        let pods = topo.pods(scope);
        let cpu_pool: Box<[u16]> = (0..topo.nr_cpu_ids)
            .map(|cpu| {
                if ordered {
                    return dfl;
                }
                let pod: Vec<usize> = pods.pod_cpus[pods.cpu_pod[cpu]]
                    .iter()
                    .copied()
                    .filter(|c| cpumask.binary_search(c).is_ok())
                    .collect();
                // A pod with none of the cpumask's CPUs uses the default pwq.
                if pod.is_empty() {
                    dfl
                } else {
                    index_of(PoolKey::new(attrs.nice, pod, strict, &cpumask))
                }
            })
            .collect();
        let mut pod_pools: Vec<u16> = cpumask.iter().map(|&c| cpu_pool[c]).collect();
        pod_pools.sort_unstable();
        pod_pools.dedup();
        let pools: Box<[&'static WorkerPool]> = keys.iter().map(|k| registry.get_unbound_pool(k)).collect();
        let nr_nodes = topo.nr_nodes();
        let mut cpus_per_node = vec![0; nr_nodes];
        for &c in &cpumask {
            cpus_per_node[topo.cpu_node(c)] += 1;
        }
        let pool_node = pools.iter().map(|p| p.node.unwrap_or(nr_nodes) as u16).collect();
        PwqTable {
            cpus_per_node,
            pool_node,
            balance: !strict && !ordered && pod_pools.len() > 1,
            pwqs: pools.iter().map(|_| OnceLock::new()).collect(),
            attrs,
            scope,
            epoch,
            registry,
            pools,
            cpu_pool,
            pod_pools: pod_pools.into_boxed_slice(),
            dfl,
        }
    }

    /// The pool index an item queued from `cpu` goes to (module docs).
    #[inline]
    pub(crate) fn place(&self, cpu: usize) -> usize {
        let local = self.pool_of_cpu(cpu);
        if !self.balance {
            return local;
        }
        let load = |i: usize| {
            let p = self.pools[i];
            (p.load(), p.concurrency.max(1) as usize)
        };
        let (mut best_load, mut best_cap) = load(local);
        if best_load < best_cap {
            return local;
        }
        let mut best = local;
        for &i in self.pod_pools.iter() {
            let (l, c) = load(i as usize);
            // l / c < best_load / best_cap
            if l * best_cap < best_load * c {
                (best, best_load, best_cap) = (i as usize, l, c);
            }
        }
        best
    }

    /// The pool index of `cpu`'s pod (the default pwq's for a CPU outside).
    pub(crate) fn pool_of_cpu(&self, cpu: usize) -> usize {
        self.cpu_pool.get(cpu).copied().unwrap_or(self.dfl) as usize
    }

    /// The pwq on pool `i`, if created.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<PwqRef> {
        self.pwqs[i].get().copied()
    }

    /// The pwq on pool `i`, made by `make(pool, node count index)` if there
    /// is none yet (`WqCore::make_unbound_pwq`).
    pub(crate) fn get_or_make(
        &self,
        i: usize,
        make: impl FnOnce(&'static WorkerPool, u16) -> PwqRef,
    ) -> PwqRef {
        *self.pwqs[i].get_or_init(|| make(self.pools[i], self.pool_node[i]))
    }

    /// The default pwq's pool index.
    pub(crate) fn dfl_index(&self) -> usize {
        self.dfl as usize
    }

    /// Every pwq created so far.
    pub(crate) fn created(&self) -> impl Iterator<Item = &PwqRef> {
        self.pwqs.iter().filter_map(OnceLock::get)
    }

    /// The default pwq (`dfl_pwq`), if created.
    pub(crate) fn dfl(&self) -> Option<PwqRef> {
        self.get(self.dfl as usize)
    }
}

impl Drop for PwqTable {
    fn drop(&mut self) {
        for &p in self.pools.iter() {
            self.registry.put_unbound_pool(p);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
