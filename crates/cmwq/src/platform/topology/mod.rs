//! Which CPUs exist and which the process may use: the affinity mask at start
//! and the cgroup CPU quota (`cgroup.rs`). Tests and loom models build simulated
//! topologies with [`Topology::simulated`].

mod cgroup;

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
}

impl Topology {
    /// The machine this process runs on.
    pub(crate) fn detect() -> Topology {
        let mut allowed = crate::platform::sys::allowed_cpus().unwrap_or_default();
        if allowed.is_empty() {
            allowed = (0..crate::platform::sys::nr_cpu_ids()).collect();
        }
        let nr_cpu_ids = crate::platform::sys::nr_cpu_ids().max(allowed.last().map_or(1, |c| c + 1));
        Topology::new(nr_cpu_ids, allowed, crate::platform::sys::current_thread_nice(), true)
    }

    fn new(nr_cpu_ids: usize, allowed: Vec<usize>, base_nice: i32, real: bool) -> Topology {
        let mut allowed_mask = vec![false; nr_cpu_ids];
        for &c in &allowed {
            allowed_mask[c] = true;
        }
        Topology { nr_cpu_ids, allowed, allowed_mask, base_nice, real }
    }

    /// `nr_cpus` CPUs, all allowed, none real (no pinning, no `sched_getcpu`).
    #[allow(dead_code, reason = "used by loom models and simulated-topology tests")]
    pub(crate) fn simulated(nr_cpus: usize) -> Topology {
        Topology::new(nr_cpus, (0..nr_cpus).collect(), 0, false)
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
