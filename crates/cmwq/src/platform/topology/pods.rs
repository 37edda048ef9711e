//! The pods of every affinity scope (the kernel's `wq_pod_types[]`, filled by
//! `workqueue_init_topology()` in `kernel/workqueue.c`), computed from what is
//! known of each CPU ([`CpuFacts`]).
//!
//! Pods cover every CPU id below `nr_cpu_ids` (the kernel's possible CPUs),
//! allowed or not; a workqueue intersects them with its own cpumask later.
//!
//! The cache_shard pods follow the kernel's code step for step
//! (`precompute_cache_shard_ids()`, `llc_count_cores()`,
//! `llc_calc_shard_layout()`, `llc_shard_size()`, `llc_shard_is_full()`,
//! `llc_populate_cpu_shard_id()`, `cpus_share_cache_shard()`, from "workqueue:
//! add WQ_AFFN_CACHE_SHARD affinity scope", v3 of the 7.1-cycle series). The one
//! deliberate difference from `init_pod_type()` is `pod_node` of a pod that
//! spans nodes ([`PodType::pod_node`]).

use std::collections::HashMap;

use super::AffinityScope;

/// The kernel's default `wq_cache_shard_size` (boot parameter
/// `workqueue.cache_shard_size`): cores per cache shard.
pub(crate) const DEFAULT_CACHE_SHARD_SIZE: usize = 8;

/// What sysfs says about one CPU. Each field is a grouping key: two CPUs with
/// equal keys share that level. The values mean nothing beyond equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuFacts {
    /// The SMT group: CPUs with equal `core` are hardware threads of one core
    /// (the kernel's `cpus_share_smt()`). Read from sysfs, it is the lowest
    /// CPU id of the core.
    pub(crate) core: usize,
    /// The last-level cache: CPUs with equal `llc` share it (the kernel's
    /// `cpus_share_cache()`). Read from sysfs, it is the lowest CPU id sharing
    /// the cache.
    pub(crate) llc: usize,
    /// The NUMA node (the kernel's `cpu_to_node()`).
    pub(crate) node: usize,
}

impl CpuFacts {
    /// A simulated machine numbered the way Linux numbers an x86 machine: the
    /// first hardware thread of every core first, in core order, then the
    /// second thread of every core, and so on. With `C` cores in all, core `k`
    /// has CPUs `k`, `k + C`, `k + 2C`, ... (so pods are not contiguous
    /// ranges once `smt > 1`).
    ///
    /// `llc_cores[i]` is the number of cores sharing last-level cache `i`;
    /// caches are numbered in core order and every `llcs_per_node` consecutive
    /// caches form a NUMA node. `smt` is the number of threads per core (0 is
    /// taken as 1, as is `llcs_per_node` 0).
    pub(crate) fn x86_numbered(llc_cores: &[usize], smt: usize, llcs_per_node: usize) -> Vec<CpuFacts> {
        let smt = smt.max(1);
        let llcs_per_node = llcs_per_node.max(1);
        let mut per_core = Vec::new();
        for (llc, &cores) in llc_cores.iter().enumerate() {
            for _ in 0..cores {
                per_core.push((llc, llc / llcs_per_node));
            }
        }
        let nr_cores = per_core.len();
        (0..nr_cores * smt)
            .map(|cpu| {
                let core = cpu % nr_cores;
                let (llc, node) = per_core[core];
                CpuFacts { core, llc, node }
            })
            .collect()
    }

    /// `nr_cpus` CPUs, each its own core, all sharing one last-level cache and
    /// one node: the flat machine of [`Topology::simulated`](super::Topology::simulated).
    pub(crate) fn flat(nr_cpus: usize) -> Vec<CpuFacts> {
        (0..nr_cpus).map(|cpu| CpuFacts { core: cpu, llc: 0, node: 0 }).collect()
    }
}

/// One scope's grouping of the CPUs into pods: the kernel's `struct
/// wq_pod_type`. Pods are numbered in the order of their lowest CPU id, as the
/// kernel's `init_pod_type()` numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodType {
    /// The CPUs of each pod, ascending (`pod_cpus[]`; `nr_pods` is its length).
    pub(crate) pod_cpus: Vec<Vec<usize>>,
    /// The pod of each CPU, indexed by CPU id (`cpu_pod[]`).
    pub(crate) cpu_pod: Vec<usize>,
    /// The NUMA node holding each pod (`pod_node[]`): `Some(n)` when every CPU
    /// of the pod is on node `n`, `None` (the kernel's `NUMA_NO_NODE`) when
    /// the pod spans nodes. The kernel's `init_pod_type()` stores the node of
    /// the pod's last CPU instead, which is the same whenever a pod lies
    /// within one node; for `WQ_AFFN_SYSTEM` it is `NUMA_NO_NODE` in both.
    pub(crate) pod_node: Vec<Option<usize>>,
}

impl PodType {
    /// The number of pods (the kernel's `nr_pods`).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub(crate) fn nr_pods(&self) -> usize {
        self.pod_cpus.len()
    }

    /// The kernel's `init_pod_type()`: walks the CPUs in ascending order and
    /// gives each the pod of the first earlier CPU it shares a pod with, or a
    /// new pod. Sharing is equality of `key`, so one hash lookup replaces the
    /// kernel's quadratic `cpus_share_pod()` scan; the numbering is the same.
    fn init<K: std::hash::Hash + Eq>(facts: &[CpuFacts], key: impl Fn(usize) -> K) -> PodType {
        let mut pod_of_key = HashMap::new();
        let mut pod_cpus: Vec<Vec<usize>> = Vec::new();
        let mut pod_node: Vec<Option<usize>> = Vec::new();
        let mut cpu_pod = Vec::with_capacity(facts.len());
        for (cpu, f) in facts.iter().enumerate() {
            let next = pod_cpus.len();
            let pod = *pod_of_key.entry(key(cpu)).or_insert(next);
            if pod == next {
                pod_cpus.push(Vec::new());
                pod_node.push(Some(f.node));
            }
            pod_cpus[pod].push(cpu);
            if pod_node[pod] != Some(f.node) {
                pod_node[pod] = None;
            }
            cpu_pod.push(pod);
        }
        PodType { pod_cpus, cpu_pod, pod_node }
    }

    /// `WQ_AFFN_SYSTEM`, set up by the kernel's `workqueue_init_early()`: one
    /// pod of every CPU, `pod_node` `NUMA_NO_NODE`.
    fn system(nr_cpu_ids: usize) -> PodType {
        PodType {
            pod_cpus: vec![(0..nr_cpu_ids).collect()],
            cpu_pod: vec![0; nr_cpu_ids],
            pod_node: vec![None],
        }
    }
}

/// The pods of every concrete scope, indexed like [`AffinityScope::ALL`]
/// (the kernel's `wq_pod_types[]` after `workqueue_init_topology()`), over
/// CPUs `0..facts.len()`. `shard_size` is `wq_cache_shard_size`; 0 is taken
/// as 1 with a warning, as the kernel's `precompute_cache_shard_ids()` does.
pub(super) fn pod_types(facts: &[CpuFacts], shard_size: usize) -> [PodType; 6] {
    let cpu = PodType::init(facts, |cpu| cpu); // cpus_dont_share()
    let smt = PodType::init(facts, |cpu| facts[cpu].core); // cpus_share_smt()
    let cache = PodType::init(facts, |cpu| facts[cpu].llc); // cpus_share_cache()
    let shard_id = cache_shard_ids(&cache, &smt, effective_shard_size(shard_size));
    // cpus_share_cache_shard(): the same LLC and the same shard index in it.
    let cache_shard = PodType::init(facts, |cpu| (cache.cpu_pod[cpu], shard_id[cpu]));
    let numa = PodType::init(facts, |cpu| facts[cpu].node); // cpus_share_numa()
    let system = PodType::system(facts.len());
    let types = [cpu, smt, cache, cache_shard, numa, system];
    debug_assert!(AffinityScope::ALL.iter().enumerate().all(|(i, s)| s.pod_type_index() == Some(i)));
    types
}

/// `wq_cache_shard_size` as used: 0 becomes 1 with the kernel's warning.
pub(super) fn effective_shard_size(shard_size: usize) -> usize {
    if shard_size == 0 {
        crate::platform::log::warn!("workqueue: cache_shard_size must be > 0, setting to 1");
        1
    } else {
        shard_size
    }
}

/// The kernel's `struct llc_shard_layout`: how the cores of one LLC are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ShardLayout {
    /// Shards in the LLC.
    pub(super) nr_shards: usize,
    /// Cores of a default shard.
    pub(super) cores_per_shard: usize,
    /// The first `nr_large_shards` shards have `cores_per_shard + 1` cores.
    pub(super) nr_large_shards: usize,
}

impl ShardLayout {
    /// The kernel's `llc_calc_shard_layout()`: the number of shards whose
    /// average size is closest to `shard_size` (`DIV_ROUND_CLOSEST`, halves
    /// rounded up), at least one; the cores spread as evenly as possible, the
    /// remainder going one each to the first shards. 36 cores at size 8 give
    /// 5 shards of 8+7+7+7+7 cores.
    pub(super) fn new(nr_cores: usize, shard_size: usize) -> ShardLayout {
        let nr_shards = ((nr_cores + shard_size / 2) / shard_size).max(1);
        ShardLayout {
            nr_shards,
            cores_per_shard: nr_cores / nr_shards,
            nr_large_shards: nr_cores % nr_shards,
        }
    }

    /// The kernel's `llc_shard_size()`: the cores of shard `shard_id`.
    pub(super) fn shard_cores(&self, shard_id: usize) -> usize {
        self.cores_per_shard + usize::from(shard_id < self.nr_large_shards)
    }
}

/// The kernel's `precompute_cache_shard_ids()`: each CPU's shard index within
/// its LLC (`cpu_shard_id[]`). Per LLC pod, `llc_count_cores()` counts the
/// cores (CPUs that are the lowest of their SMT pod), and
/// `llc_populate_cpu_shard_id()` walks the pod's CPUs in ascending order: at
/// each core's lowest CPU it moves to the next shard once the current one is
/// full (`llc_shard_is_full()`), and every other thread takes the shard of its
/// core's lowest CPU. So cores are dealt out in the order of their lowest CPU
/// id, and the threads of a core never land in different shards.
fn cache_shard_ids(cache: &PodType, smt: &PodType, shard_size: usize) -> Vec<usize> {
    let mut shard_id = vec![0; cache.cpu_pod.len()];
    let leader = |cpu: usize| smt.pod_cpus[smt.cpu_pod[cpu]][0];
    for cpus in &cache.pod_cpus {
        let nr_cores = cpus.iter().filter(|&&c| leader(c) == c).count();
        let layout = ShardLayout::new(nr_cores, shard_size);
        let (mut cur, mut cores_in_shard) = (0, 0);
        for &c in cpus {
            let first = leader(c);
            if first == c {
                if cores_in_shard == layout.shard_cores(cur) {
                    cur += 1;
                    cores_in_shard = 0;
                }
                cores_in_shard += 1;
                shard_id[c] = cur;
            } else {
                shard_id[c] = shard_id[first];
            }
        }
        if cur + 1 != layout.nr_shards {
            // The kernel's WARN_ON_ONCE(): only an SMT group that straddles
            // LLCs (inconsistent sysfs) gets here.
            crate::platform::log::warn!(
                cpu = cpus[0],
                used = cur + 1,
                shards = layout.nr_shards,
                "cmwq: not every cache shard of an LLC is used"
            );
        }
    }
    shard_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_rounds_to_the_closest_count_and_front_loads_the_remainder() {
        let sizes = |cores, size| {
            let l = ShardLayout::new(cores, size);
            (0..l.nr_shards).map(|s| l.shard_cores(s)).collect::<Vec<_>>()
        };
        assert_eq!(sizes(36, 8), [8, 7, 7, 7, 7], "the kernel's own example");
        assert_eq!(sizes(8, 8), [8]);
        assert_eq!(sizes(11, 8), [11], "11/8 rounds to 1 shard");
        assert_eq!(sizes(12, 8), [6, 6], "12/8 = 1.5 rounds up to 2");
        assert_eq!(sizes(20, 8), [7, 7, 6]);
        assert_eq!(sizes(29, 8), [8, 7, 7, 7]);
        assert_eq!(sizes(3, 8), [3], "an LLC smaller than a shard is one shard");
        assert_eq!(sizes(0, 8), [0], "at least one shard");
        assert_eq!(sizes(8, 3), [3, 3, 2]);
        assert_eq!(sizes(5, 1), [1, 1, 1, 1, 1]);
    }

    #[test]
    fn init_numbers_pods_by_their_lowest_cpu() {
        // Keys chosen so that key order differs from first-CPU order.
        let facts: Vec<CpuFacts> = [9, 3, 9, 7, 3, 7]
            .into_iter()
            .zip([0, 1, 0, 1, 1, 1])
            .map(|(llc, node)| CpuFacts { core: llc, llc, node })
            .collect();
        let pt = PodType::init(&facts, |cpu| facts[cpu].llc);
        assert_eq!(pt.pod_cpus, [vec![0, 2], vec![1, 4], vec![3, 5]]);
        assert_eq!(pt.cpu_pod, [0, 1, 0, 2, 1, 2]);
        assert_eq!(pt.pod_node, [Some(0), Some(1), Some(1)]);
        let spanning = PodType::init(&facts, |_| 0);
        assert_eq!(spanning.pod_node, [None], "a pod across nodes has NUMA_NO_NODE");
    }

    #[test]
    fn x86_numbering_puts_siblings_a_core_count_apart() {
        let f = CpuFacts::x86_numbered(&[2, 1], 2, 1);
        assert_eq!(f.len(), 6);
        let got: Vec<(usize, usize, usize)> = f.iter().map(|f| (f.core, f.llc, f.node)).collect();
        assert_eq!(got, [(0, 0, 0), (1, 0, 0), (2, 1, 1), (0, 0, 0), (1, 0, 0), (2, 1, 1)]);
    }

    #[test]
    fn a_core_whose_threads_straddle_llcs_follows_the_kernel_walk() {
        // Inconsistent input: CPU 1 is CPU 0's sibling but in another LLC.
        let facts = vec![
            CpuFacts { core: 0, llc: 0, node: 0 },
            CpuFacts { core: 0, llc: 1, node: 0 },
            CpuFacts { core: 2, llc: 1, node: 0 },
        ];
        let types = pod_types(&facts, 1);
        let shard = &types[AffinityScope::CacheShard.pod_type_index().unwrap()];
        // CPU 1 takes the shard index of its core's first CPU (0); CPU 2 is the
        // only core of LLC 1, in shard 0: CPUs 1 and 2 share LLC and index.
        assert_eq!(shard.pod_cpus, [vec![0], vec![1, 2]]);
    }
}
