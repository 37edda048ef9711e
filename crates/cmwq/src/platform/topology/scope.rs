//! Affinity scopes: the kernel's `enum wq_affn_scope` (`include/linux/workqueue.h`)
//! with the names of `wq_affn_names[]` in `kernel/workqueue.c`.

use std::fmt;
use std::str::FromStr;

/// How the CPUs are grouped into *pods* for an unbound workqueue: the kernel's
/// `enum wq_affn_scope`. A work item queued from one CPU runs on a worker of
/// the pod that CPU belongs to, which keeps it near the caches its data is in.
///
/// The names are the kernel's (`wq_affn_names[]`, the values of
/// `/sys/devices/virtual/workqueue/*/affinity_scope` and of the module
/// parameter `workqueue.default_affinity_scope`); [`FromStr`] and
/// [`Display`](fmt::Display) use them.
///
/// ```
/// use cmwq::AffinityScope;
///
/// let scope: AffinityScope = "cache_shard".parse()?;
/// assert_eq!(scope, AffinityScope::CacheShard);
/// assert_eq!(scope.to_string(), "cache_shard");
/// assert_eq!(AffinityScope::default(), AffinityScope::Default);
///
/// // From the finest grouping to the coarsest:
/// let names: Vec<&str> = AffinityScope::ALL.iter().map(|s| s.name()).collect();
/// assert_eq!(names, ["cpu", "smt", "cache", "cache_shard", "numa", "system"]);
///
/// let err = "l3".parse::<AffinityScope>().unwrap_err();
/// assert_eq!(err.input(), "l3");
/// # Ok::<(), cmwq::ParseAffinityScopeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum AffinityScope {
    /// `WQ_AFFN_DFL` ("default"): whatever the process-wide default scope is
    /// when the workqueue's pods are computed (the kernel's `wq_affn_dfl`:
    /// `WQ_AFFN_CACHE_SHARD` in the newest kernels, `WQ_AFFN_CACHE` in 6.5 to
    /// 7.0). It is resolved to one of the concrete scopes before pods are used.
    #[default]
    Default,
    /// `WQ_AFFN_CPU` ("cpu"): one pod per CPU. An item runs on the CPU it was
    /// queued from, like a per-CPU workqueue without concurrency management.
    Cpu,
    /// `WQ_AFFN_SMT` ("smt"): one pod per SMT sibling group, that is, per
    /// physical core with all its hardware threads.
    Smt,
    /// `WQ_AFFN_CACHE` ("cache"): one pod per last-level cache (the kernel's
    /// `cpus_share_cache()`).
    Cache,
    /// `WQ_AFFN_CACHE_SHARD` ("cache_shard"): each last-level cache split into
    /// shards of about `wq_cache_shard_size` cores (8 by default), never
    /// separating the threads of one core. The kernel's default scope since
    /// it was added (7.1).
    CacheShard,
    /// `WQ_AFFN_NUMA` ("numa"): one pod per NUMA node (the kernel's
    /// `cpus_share_numa()`).
    Numa,
    /// `WQ_AFFN_SYSTEM` ("system"): a single pod of every CPU; no effort is
    /// made to run an item near the CPU it was queued from.
    System,
}

impl AffinityScope {
    /// The concrete scopes (every one but [`AffinityScope::Default`]), from the
    /// finest grouping to the coarsest, in the kernel's `enum wq_affn_scope`
    /// order.
    ///
    /// ```
    /// use cmwq::AffinityScope;
    ///
    /// assert_eq!(AffinityScope::ALL.len(), 6);
    /// assert!(!AffinityScope::ALL.contains(&AffinityScope::Default));
    /// assert_eq!(AffinityScope::ALL[0], AffinityScope::Cpu);
    /// assert_eq!(AffinityScope::ALL[5], AffinityScope::System);
    /// ```
    pub const ALL: [AffinityScope; 6] = [
        AffinityScope::Cpu,
        AffinityScope::Smt,
        AffinityScope::Cache,
        AffinityScope::CacheShard,
        AffinityScope::Numa,
        AffinityScope::System,
    ];

    /// The kernel's name of the scope (`wq_affn_names[]`): "default", "cpu",
    /// "smt", "cache", "cache_shard", "numa" or "system".
    ///
    /// ```
    /// use cmwq::AffinityScope;
    ///
    /// assert_eq!(AffinityScope::Smt.name(), "smt");
    /// assert_eq!(AffinityScope::CacheShard.name(), "cache_shard");
    /// assert_eq!(AffinityScope::Default.name(), "default");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            AffinityScope::Default => "default",
            AffinityScope::Cpu => "cpu",
            AffinityScope::Smt => "smt",
            AffinityScope::Cache => "cache",
            AffinityScope::CacheShard => "cache_shard",
            AffinityScope::Numa => "numa",
            AffinityScope::System => "system",
        }
    }

    /// The position of a concrete scope in [`AffinityScope::ALL`] (the index of
    /// its pod type, like the kernel's `wq_pod_types[scope]`); `None` for
    /// [`AffinityScope::Default`], which has no pods of its own.
    pub(crate) const fn pod_type_index(self) -> Option<usize> {
        match self {
            AffinityScope::Default => None,
            AffinityScope::Cpu => Some(0),
            AffinityScope::Smt => Some(1),
            AffinityScope::Cache => Some(2),
            AffinityScope::CacheShard => Some(3),
            AffinityScope::Numa => Some(4),
            AffinityScope::System => Some(5),
        }
    }
}

impl fmt::Display for AffinityScope {
    /// Writes [`AffinityScope::name`] (honouring width and alignment).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for AffinityScope {
    type Err = ParseAffinityScopeError;

    /// Parses a scope name. Like the kernel's `parse_affn_scope()`, case does
    /// not matter; surrounding whitespace (the newline of a value written with
    /// `echo`) is ignored. The whole name must match: "cache_shard" is not
    /// "cache" (the kernel fixed its prefix match when it added cache_shard).
    ///
    /// ```
    /// use cmwq::AffinityScope;
    ///
    /// assert_eq!("numa".parse(), Ok(AffinityScope::Numa));
    /// assert_eq!("SMT\n".parse(), Ok(AffinityScope::Smt));
    /// assert!("cache_sharding".parse::<AffinityScope>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<AffinityScope, ParseAffinityScopeError> {
        let name = s.trim();
        std::iter::once(AffinityScope::Default)
            .chain(AffinityScope::ALL)
            .find(|scope| scope.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ParseAffinityScopeError { input: s.to_owned() })
    }
}

/// The error of parsing an [`AffinityScope`] from a string that names none;
/// it keeps the string.
///
/// ```
/// use cmwq::AffinityScope;
///
/// let err = "llc".parse::<AffinityScope>().unwrap_err();
/// assert_eq!(err.input(), "llc");
/// assert_eq!(
///     err.to_string(),
///     "unknown affinity scope \"llc\": expected one of default, cpu, smt, cache, cache_shard, numa, system"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAffinityScopeError {
    /// The string that was given.
    input: String,
}

impl ParseAffinityScopeError {
    /// The string that named no scope, as it was given.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseAffinityScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown affinity scope {:?}: expected one of default", self.input)?;
        for scope in AffinityScope::ALL {
            write!(f, ", {}", scope.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseAffinityScopeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        let all = [AffinityScope::Default].into_iter().chain(AffinityScope::ALL);
        let names = ["default", "cpu", "smt", "cache", "cache_shard", "numa", "system"];
        for (scope, name) in all.zip(names) {
            assert_eq!(scope.name(), name);
            assert_eq!(scope.to_string(), name);
            assert_eq!(name.parse::<AffinityScope>(), Ok(scope));
            assert_eq!(name.to_uppercase().parse::<AffinityScope>(), Ok(scope));
            assert_eq!(format!(" {name}\n").parse::<AffinityScope>(), Ok(scope));
        }
        assert_eq!(format!("{:>6}|", AffinityScope::Smt), "   smt|");
    }

    #[test]
    fn the_pod_type_index_is_the_position_in_all() {
        assert_eq!(AffinityScope::Default.pod_type_index(), None);
        for (i, scope) in AffinityScope::ALL.into_iter().enumerate() {
            assert_eq!(scope.pod_type_index(), Some(i), "{scope}");
        }
    }

    #[test]
    fn prefixes_and_unknown_names_are_refused_with_the_input_kept() {
        for bad in ["", "cach", "cache_", "cache_shards", "cpu0", "numa node", "l3", "sys"] {
            let err = bad.parse::<AffinityScope>().unwrap_err();
            assert_eq!(err.input(), bad);
            assert_eq!(
                err.to_string(),
                format!(
                    "unknown affinity scope {bad:?}: expected one of default, cpu, smt, cache, \
                     cache_shard, numa, system"
                )
            );
        }
        let err: Box<dyn std::error::Error> = Box::new("x".parse::<AffinityScope>().unwrap_err());
        assert!(err.to_string().starts_with("unknown affinity scope \"x\""));
    }
}
