//! `Attrs`: the attributes of an unbound workqueue (the kernel's
//! `struct workqueue_attrs`), their checks, and the pool identity they give
//! (`wqattrs_equal` after `wqattrs_clear_for_pool`).

use crate::platform::error::{Error, ErrorKind};
use crate::platform::topology::{AffinityScope, Topology};

/// The lowest nice value (`MIN_NICE`).
pub const MIN_NICE: i32 = -20;
/// The highest nice value (`MAX_NICE`).
pub const MAX_NICE: i32 = 19;

/// The attributes of an unbound workqueue (`struct workqueue_attrs`): the nice
/// value of its workers, the CPUs it may use, and how its work is grouped onto
/// pools (the affinity scope, strict or not).
///
/// Workqueues whose attributes give the same pool share that pool: same
/// `nice`, same pod, same strictness and, when not strict, same `cpumask` (the
/// kernel's `wqattrs_equal`). `Attrs::default()` is the kernel's default:
/// nice 0, every allowed CPU, the process-wide default scope, not strict.
///
/// ```
/// use cmwq::{AffinityScope, Attrs, Workqueue};
///
/// let attrs = Attrs { affinity_scope: AffinityScope::Cpu, affinity_strict: true, ..Attrs::default() };
/// let wq = Workqueue::builder("per-cpu-strict").attrs(attrs.clone()).build()?;
/// assert_eq!(wq.attrs(), Some(attrs));
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Attrs {
    /// The nice value of the workers, from [`MIN_NICE`] (-20) to [`MAX_NICE`]
    /// (19). Where the process may not raise its priority that far, workers run
    /// at the nice value the process started with, with a one-time note in the
    /// log.
    pub nice: i32,
    /// The CPUs the queue's work may run on; `None`: every CPU the process may
    /// use ([`allowed_cpus`](crate::allowed_cpus)). CPUs outside the allowed set
    /// are ignored; a mask with none of them is refused.
    pub cpumask: Option<Vec<usize>>,
    /// How the CPUs are grouped into pools (§ "Affinity scopes" of the crate
    /// docs); [`AffinityScope::Default`] follows the process-wide default
    /// ([`set_default_affinity_scope`](crate::set_default_affinity_scope)).
    pub affinity_scope: AffinityScope,
    /// Confine the workers to the CPUs of their pod. Not strict (the default):
    /// work starts in the queueing CPU's pod, and goes to another pod of the
    /// cpumask when its own is busy (as many running or waiting as it has CPUs)
    /// and another is less busy.
    pub affinity_strict: bool,
}

impl Attrs {
    /// `attrs` with the given nice value.
    ///
    /// ```
    /// assert_eq!(cmwq::Attrs::default().with_nice(5).nice, 5);
    /// ```
    pub fn with_nice(mut self, nice: i32) -> Attrs {
        self.nice = nice;
        self
    }

    /// Checks the attributes for the workqueue `wq` on `topo`.
    pub(crate) fn check(&self, wq: &str, topo: &Topology) -> Result<(), Error> {
        let bad = |why: String| Err(Error::new(wq, ErrorKind::InvalidAttrs(why)));
        if !(MIN_NICE..=MAX_NICE).contains(&self.nice) {
            return bad(format!("nice {} is outside {MIN_NICE}..={MAX_NICE}", self.nice));
        }
        if let Some(mask) = &self.cpumask {
            if let Some(&cpu) = mask.iter().find(|&&c| c >= topo.nr_cpu_ids) {
                return bad(format!("cpumask names CPU {cpu}, but CPU ids end at {}", topo.nr_cpu_ids - 1));
            }
            if !mask.iter().any(|&c| topo.is_allowed(c)) {
                return bad(format!(
                    "cpumask {mask:?} has none of the CPUs this process may run on ({:?})",
                    topo.allowed
                ));
            }
        }
        Ok(())
    }

    /// The effective cpumask (`wqattrs_actualize_cpumask`): `cpumask` ∩ the
    /// allowed CPUs, ascending, never empty once [`check`](Self::check)ed.
    pub(crate) fn effective_cpumask(&self, topo: &Topology) -> Vec<usize> {
        match &self.cpumask {
            None => topo.allowed.clone(),
            Some(mask) => {
                let mut v: Vec<usize> = mask.iter().copied().filter(|&c| topo.is_allowed(c)).collect();
                v.sort_unstable();
                v.dedup();
                if v.is_empty() {
                    topo.allowed.clone()
                } else {
                    v
                }
            }
        }
    }
}

/// The identity of an unbound pool (`wqattrs_equal` on attributes cleared by
/// `wqattrs_clear_for_pool`): its nice value, its pod's CPUs, its strictness,
/// and, when not strict, the cpumask its workers may run on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) nice: i32,
    /// The CPUs that count toward its concurrency, ascending, non-empty.
    pub(crate) pod: Box<[usize]>,
    pub(crate) strict: bool,
    /// Where its workers may run: `pod` when strict, the cpumask otherwise.
    pub(crate) affinity: Box<[usize]>,
}

impl PoolKey {
    /// The pool for one pod of `cpumask` (`wq_calc_pod_cpumask`).
    pub(crate) fn new(nice: i32, pod: Vec<usize>, strict: bool, cpumask: &[usize]) -> PoolKey {
        let affinity = if strict { pod.clone() } else { cpumask.to_vec() };
        PoolKey { nice, pod: pod.into_boxed_slice(), strict, affinity: affinity.into_boxed_slice() }
    }
}
