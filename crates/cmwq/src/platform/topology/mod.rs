//! Which CPUs exist and which the process may use: the affinity mask at start
//! and the cgroup CPU quota (`cgroup.rs`); how the CPUs group into pods for
//! each affinity scope (`scope.rs`, `pods.rs`), read from sysfs (`sysfs.rs`).
//! Tests and loom models build simulated topologies with
//! [`Topology::simulated`] and, for machines with SMT, several caches and
//! nodes, [`Topology::simulated_machine`], [`Topology::from_llc_sizes`] and
//! [`Topology::from_facts`].

mod cgroup;
mod pods;
mod scope;
mod sysfs;
#[cfg(test)]
mod tests;

pub(crate) use pods::{CpuFacts, PodType, DEFAULT_CACHE_SHARD_SIZE};
pub use scope::{AffinityScope, ParseAffinityScopeError};

/// Which CPUs exist and may be used.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// One more than the largest CPU id (pool tables are indexed by CPU id).
    pub(crate) nr_cpu_ids: usize,
    /// CPUs in the process affinity mask at start, ascending
    /// ([`crate::allowed_cpus`]).
    pub(crate) allowed: Vec<usize>,
    /// `allowed` as a table indexed by CPU id.
    allowed_mask: Vec<bool>,
    /// The nice value of the process at start; normal-priority workers use it.
    pub(crate) base_nice: i32,
    /// Whether workers are pinned to their CPU and `sched_getcpu` is consulted.
    /// False for simulated topologies (loom models, tests of many-CPU layouts).
    pub(crate) real: bool,
    /// What is known of each CPU, indexed by CPU id (`nr_cpu_ids` entries).
    facts: Vec<CpuFacts>,
    /// The pods of each concrete scope, indexed like [`AffinityScope::ALL`]
    /// (the kernel's `wq_pod_types[]`); see [`Topology::pods`].
    pods: [PodType; 6],
    /// The `wq_cache_shard_size` the cache_shard pods were cut with (at least 1).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    cache_shard_size: usize,
}

impl Topology {
    /// The machine this process runs on: the allowed CPUs, and the cores,
    /// last-level caches and NUMA nodes that sysfs describes (a flat machine
    /// where it says nothing). Cache shards have `CMWQ_CACHE_SHARD_SIZE` cores
    /// (the kernel's boot parameter `workqueue.cache_shard_size`; default 8,
    /// 0 is taken as 1 with a warning, a malformed value is reported and the
    /// default used).
    pub(crate) fn detect() -> Topology {
        let mut allowed = crate::platform::sys::allowed_cpus().unwrap_or_default();
        if allowed.is_empty() {
            allowed = (0..crate::platform::sys::nr_cpu_ids()).collect();
        }
        let nr_cpu_ids = crate::platform::sys::nr_cpu_ids().max(allowed.last().map_or(1, |c| c + 1));
        let facts = sysfs::read_facts(std::path::Path::new("/sys"), nr_cpu_ids);
        Topology::new(
            facts,
            allowed,
            shard_size_from_env(),
            crate::platform::sys::current_thread_nice(),
            true,
        )
    }

    /// `facts` gives `nr_cpu_ids`; every CPU of `allowed` must be below it.
    fn new(
        facts: Vec<CpuFacts>,
        allowed: Vec<usize>,
        shard_size: usize,
        base_nice: i32,
        real: bool,
    ) -> Topology {
        let nr_cpu_ids = facts.len();
        let mut allowed_mask = vec![false; nr_cpu_ids];
        for &c in &allowed {
            allowed_mask[c] = true;
        }
        let cache_shard_size = pods::effective_shard_size(shard_size);
        let pods = pods::pod_types(&facts, cache_shard_size);
        Topology { nr_cpu_ids, allowed, allowed_mask, base_nice, real, facts, pods, cache_shard_size }
    }

    /// `nr_cpus` CPUs, all allowed, none real (no pinning, no `sched_getcpu`):
    /// a flat machine, every CPU its own core, one last-level cache, one node;
    /// cache shards of the default 8 cores.
    #[allow(dead_code, reason = "used by loom models and simulated-topology tests")]
    pub(crate) fn simulated(nr_cpus: usize) -> Topology {
        Topology::from_facts(CpuFacts::flat(nr_cpus), (0..nr_cpus).collect(), DEFAULT_CACHE_SHARD_SIZE)
    }

    /// A simulated topology (not real, base nice 0) of CPUs `0..facts.len()`
    /// with the given facts, `allowed` CPUs (ascending, not empty, each below
    /// `facts.len()`) and cache shards of `shard_size` cores (0 is taken as 1
    /// with a warning): for tests of machines this one is not.
    #[allow(dead_code, reason = "used by simulated-topology tests")]
    pub(crate) fn from_facts(facts: Vec<CpuFacts>, allowed: Vec<usize>, shard_size: usize) -> Topology {
        Topology::new(facts, allowed, shard_size, 0, false)
    }

    /// A simulated, evenly built machine, every CPU allowed: `nodes` NUMA
    /// nodes of `llcs_per_node` last-level caches of `cores_per_llc` cores of
    /// `smt` threads, numbered like Linux on x86 (see
    /// [`Topology::from_llc_sizes`]); cache shards of the default 8 cores.
    /// `simulated_machine(2, 4, 8, 2)` is a 128-CPU two-socket machine whose
    /// CPUs `i` and `i + 64` are the threads of one core.
    #[allow(dead_code, reason = "used by simulated-topology tests")]
    pub(crate) fn simulated_machine(
        nodes: usize,
        llcs_per_node: usize,
        cores_per_llc: usize,
        smt: usize,
    ) -> Topology {
        Topology::from_llc_sizes(&vec![cores_per_llc; nodes * llcs_per_node], smt, llcs_per_node)
    }

    /// A simulated machine with last-level caches of uneven sizes, every CPU
    /// allowed: `llc_cores[i]` cores share cache `i`, each core has `smt`
    /// threads, and every `llcs_per_node` consecutive caches form a NUMA node.
    /// CPUs are numbered like Linux on x86: the first thread of every core,
    /// in cache order, then the second thread of every core, and so on. Cache
    /// shards of the default 8 cores; for another size use
    /// [`Topology::from_facts`] with [`CpuFacts::x86_numbered`].
    #[allow(dead_code, reason = "used by simulated-topology tests")]
    pub(crate) fn from_llc_sizes(llc_cores: &[usize], smt: usize, llcs_per_node: usize) -> Topology {
        let facts = CpuFacts::x86_numbered(llc_cores, smt, llcs_per_node);
        let allowed = (0..facts.len()).collect();
        Topology::from_facts(facts, allowed, DEFAULT_CACHE_SHARD_SIZE)
    }

    /// The pods of a concrete affinity scope (the kernel's
    /// `wq_pod_types[scope]`): every CPU id below `nr_cpu_ids`, allowed or
    /// not, is in exactly one pod.
    ///
    /// # Panics
    ///
    /// If `scope` is [`AffinityScope::Default`]: resolve it to the default
    /// scope first, as the kernel resolves `WQ_AFFN_DFL` to `wq_affn_dfl`.
    pub(crate) fn pods(&self, scope: AffinityScope) -> &PodType {
        match scope.pod_type_index() {
            Some(i) => &self.pods[i],
            None => {
                panic!("Topology::pods: AffinityScope::Default must be resolved to a concrete scope first")
            }
        }
    }

    /// What is known of each CPU, indexed by CPU id.
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub(crate) fn facts(&self) -> &[CpuFacts] {
        &self.facts
    }

    /// The NUMA node of `cpu` (the kernel's `cpu_to_node()`); 0 for a CPU id
    /// at or above `nr_cpu_ids`.
    pub(crate) fn cpu_node(&self, cpu: usize) -> usize {
        self.facts.get(cpu).map_or(0, |f| f.node)
    }

    /// One more than the highest NUMA node id of any CPU (the kernel's
    /// `nr_node_ids`), at least 1: the size of a table indexed by node.
    pub(crate) fn nr_nodes(&self) -> usize {
        self.facts.iter().map(|f| f.node + 1).max().unwrap_or(1)
    }

    /// The number of cores per cache shard the cache_shard pods were cut with
    /// (the kernel's `wq_cache_shard_size`, at least 1).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub(crate) fn cache_shard_size(&self) -> usize {
        self.cache_shard_size
    }

    #[inline]
    pub(crate) fn is_allowed(&self, cpu: usize) -> bool {
        self.allowed_mask.get(cpu).copied().unwrap_or(false)
    }

    /// The CPU a per-CPU queue uses for a caller that named none: the caller's own
    /// CPU, or the first allowed CPU when that one is not usable.
    #[inline]
    pub(crate) fn local_cpu(&self) -> usize {
        if self.real {
            if let Some(c) = crate::platform::sys::current_cpu() {
                if self.is_allowed(c) {
                    return c;
                }
            }
        }
        self.allowed[0]
    }

    /// The number of CPUs the process may keep busy: the allowed CPUs, or the
    /// cgroup CPU quota rounded up if that is lower (a simulated topology has
    /// no quota); at least 1 ([`crate::available_parallelism`]).
    pub(crate) fn available_parallelism(&self) -> usize {
        if self.real {
            cgroup::allowed_cpu_count(self.allowed.len())
        } else {
            self.allowed.len().max(1)
        }
    }
}

/// `CMWQ_CACHE_SHARD_SIZE` (see [`shard_size_from`]).
fn shard_size_from_env() -> usize {
    shard_size_from(std::env::var("CMWQ_CACHE_SHARD_SIZE").ok().as_deref())
}

/// The cache shard size a `CMWQ_CACHE_SHARD_SIZE` value asks for: the default
/// 8 when unset or malformed (reported); 0 is passed on, for
/// [`pods::effective_shard_size`] to turn into 1 with the kernel's warning.
fn shard_size_from(value: Option<&str>) -> usize {
    let Some(v) = value else { return DEFAULT_CACHE_SHARD_SIZE };
    match v.trim().parse::<usize>() {
        Ok(n) => n,
        Err(_) => {
            crate::platform::log::warn!(
                var = "CMWQ_CACHE_SHARD_SIZE",
                value = v,
                "cmwq: ignoring a malformed setting: expected a non-negative integer"
            );
            DEFAULT_CACHE_SHARD_SIZE
        }
    }
}

/// Ascending CPUs as the kernel prints a cpumask list (`%*pbl`): `0`, `0-3`,
/// `0,1,5`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuList<'a>(pub(crate) &'a [usize]);

impl std::fmt::Display for CpuList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pod = self.0;
        let mut i = 0;
        while i < pod.len() {
            let mut j = i;
            while j + 1 < pod.len() && pod[j + 1] == pod[j] + 1 {
                j += 1;
            }
            if i > 0 {
                f.write_str(",")?;
            }
            if j > i + 1 {
                write!(f, "{}-{}", pod[i], pod[j])?;
            } else {
                write!(f, "{}", pod[i])?;
                if j == i + 1 {
                    write!(f, ",{}", pod[j])?;
                }
            }
            i = j + 1;
        }
        Ok(())
    }
}
