//! The process-wide configuration: every setting, its default and the
//! environment variable that overrides it at start (the facade's `config.rs`
//! has the public setters).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use crate::platform::log;
use crate::platform::topology::AffinityScope;

/// The default affinity scope (`wq_affn_dfl`): the newest kernel's.
pub(crate) const DEFAULT_AFFINITY_SCOPE: AffinityScope = AffinityScope::CacheShard;

/// Default idle-worker timeout (`IDLE_WORKER_TIMEOUT`, 300 s).
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default ceiling on worker threads across all pools (XNU's and tokio's 512).
pub(crate) const DEFAULT_MAX_WORKERS: usize = 512;
/// Default stall window: the monitor creates a thread for a block only after it
/// lasted this long (XNU's workqueue uses 200 µs).
pub(crate) const DEFAULT_STALL_WINDOW: Duration = Duration::from_micros(200);
/// Default `wq_cpu_intensive_thresh_us` (10 ms).
pub(crate) const DEFAULT_CPU_INTENSIVE_THRESH: Duration = Duration::from_millis(10);
/// Default `wq_cpu_intensive_warning_thresh`.
pub(crate) const DEFAULT_CPU_INTENSIVE_WARNING: u64 = 4;

/// Default ceiling on concurrency-managed (per-CPU pool) workers: max(64, 5 ×
/// allowed CPUs), XNU's constrained pool.
pub(crate) fn default_max_cm_workers(allowed_cpus: usize) -> usize {
    64.max(5 * allowed_cpus)
}

/// Process-wide settings (the kernel's module parameters), read on slow paths
/// only. Each is one relaxed atomic: a setting is not a synchronisation edge, and
/// a reader that sees the old value for a moment acts as if it had read it just
/// before the change.
#[derive(Debug)]
#[cfg_attr(loom, allow(dead_code))] // read by the monitor thread, absent under loom
pub(crate) struct Config {
    idle_timeout_ns: AtomicU64,
    max_workers: AtomicUsize,
    max_cm_workers: AtomicUsize,
    stall_window_ns: AtomicU64,
    cpu_intensive_thresh_ns: AtomicU64,
    cpu_intensive_warning: AtomicU64,
    monitor: AtomicBool,
    /// Whether the monitor's ticks look for blocked workers (a test hook:
    /// `debug::monitor_ticks_detect_blocks`).
    monitor_ticks: AtomicBool,
    /// `workqueue.power_efficient`.
    power_efficient: AtomicBool,
    /// `wq_affn_dfl`: an index into `AffinityScope::ALL`.
    default_scope: AtomicU8,
}

fn scope_index(s: AffinityScope) -> u8 {
    AffinityScope::ALL.iter().position(|&x| x == s).expect("a concrete scope") as u8
}

/// `CMWQ_AFFINITY_SCOPE`, if set to a concrete scope; anything else is reported.
fn env_scope() -> Option<AffinityScope> {
    let v = std::env::var("CMWQ_AFFINITY_SCOPE").ok()?;
    match v.trim().parse::<AffinityScope>() {
        Ok(AffinityScope::Default) | Err(_) => {
            log::warn!(
                var = "CMWQ_AFFINITY_SCOPE",
                value = v.as_str(),
                "cmwq: ignoring a malformed setting: expected one of cpu, smt, cache, cache_shard, numa, system"
            );
            None
        }
        Ok(s) => Some(s),
    }
}

/// Reads a positive integer from the environment; a malformed value is reported
/// and the default used.
fn env_number(var: &str) -> Option<u64> {
    env_parse(var, 1)
}

/// Reads an integer of at least `min` from the environment; a malformed value
/// is reported and the default used.
fn env_parse(var: &str, min: u64) -> Option<u64> {
    let v = std::env::var(var).ok()?;
    match v.trim().parse::<u64>() {
        Ok(n) if n >= min => Some(n),
        _ => {
            let what = if min == 0 { "a non-negative integer" } else { "a positive integer" };
            log::warn!(var = var, value = v.as_str(), "cmwq: ignoring a malformed setting: expected {what}");
            None
        }
    }
}

#[cfg_attr(loom, allow(dead_code))]
impl Config {
    /// The defaults, overridden by the `CMWQ_*` environment variables (`config.rs`
    /// of the facade lists them). `parallelism` sizes the concurrency-managed
    /// ceiling.
    pub(crate) fn from_env(parallelism: usize) -> Config {
        let idle =
            env_number("CMWQ_IDLE_TIMEOUT_MS").map(Duration::from_millis).unwrap_or(DEFAULT_IDLE_TIMEOUT);
        let max = env_number("CMWQ_MAX_WORKERS").map_or(DEFAULT_MAX_WORKERS, |n| n as usize);
        let max_cm =
            env_number("CMWQ_MAX_CM_WORKERS").map_or(default_max_cm_workers(parallelism), |n| n as usize);
        let stall = env_parse("CMWQ_STALL_US", 0).map_or(DEFAULT_STALL_WINDOW, Duration::from_micros);
        let hog = env_parse("CMWQ_CPU_INTENSIVE_THRESH_US", 0)
            .map_or(DEFAULT_CPU_INTENSIVE_THRESH, Duration::from_micros);
        let warn = env_parse("CMWQ_CPU_INTENSIVE_WARNING_THRESH", 0).unwrap_or(DEFAULT_CPU_INTENSIVE_WARNING);
        let monitor = env_parse("CMWQ_MONITOR", 0) != Some(0);
        Config {
            idle_timeout_ns: AtomicU64::new(idle.as_nanos() as u64),
            max_workers: AtomicUsize::new(max),
            max_cm_workers: AtomicUsize::new(max_cm),
            stall_window_ns: AtomicU64::new(stall.as_nanos() as u64),
            cpu_intensive_thresh_ns: AtomicU64::new(hog.as_nanos() as u64),
            cpu_intensive_warning: AtomicU64::new(warn),
            monitor: AtomicBool::new(monitor),
            monitor_ticks: AtomicBool::new(true),
            power_efficient: AtomicBool::new(env_number("CMWQ_POWER_EFFICIENT") == Some(1)),
            default_scope: AtomicU8::new(scope_index(env_scope().unwrap_or(DEFAULT_AFFINITY_SCOPE))),
        }
    }
    pub(crate) fn set_idle_timeout(&self, d: Duration) {
        self.idle_timeout_ns.store(d.as_nanos() as u64, Ordering::Relaxed);
    }
    pub(crate) fn set_max_workers(&self, n: usize) {
        self.max_workers.store(n.max(1), Ordering::Relaxed);
    }
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_nanos(self.idle_timeout_ns.load(Ordering::Relaxed))
    }
    pub(crate) fn max_workers(&self) -> usize {
        self.max_workers.load(Ordering::Relaxed)
    }
    pub(crate) fn max_cm_workers(&self) -> usize {
        self.max_cm_workers.load(Ordering::Relaxed)
    }
    pub(crate) fn set_max_cm_workers(&self, n: usize) {
        self.max_cm_workers.store(n.max(1), Ordering::Relaxed)
    }
    pub(crate) fn stall_window(&self) -> Duration {
        Duration::from_nanos(self.stall_window_ns.load(Ordering::Relaxed))
    }
    pub(crate) fn set_stall_window(&self, d: Duration) {
        self.stall_window_ns.store(d.as_nanos() as u64, Ordering::Relaxed)
    }
    /// Zero: CPU-intensive detection is off.
    pub(crate) fn cpu_intensive_thresh(&self) -> Duration {
        Duration::from_nanos(self.cpu_intensive_thresh_ns.load(Ordering::Relaxed))
    }
    pub(crate) fn set_cpu_intensive_thresh(&self, d: Duration) {
        self.cpu_intensive_thresh_ns.store(d.as_nanos() as u64, Ordering::Relaxed)
    }
    pub(crate) fn cpu_intensive_warning(&self) -> u64 {
        self.cpu_intensive_warning.load(Ordering::Relaxed)
    }
    /// Whether the sleep monitor looks for unannotated blocking and CPU hogs.
    pub(crate) fn monitor(&self) -> bool {
        self.monitor.load(Ordering::Relaxed)
    }
    pub(crate) fn set_monitor(&self, on: bool) {
        self.monitor.store(on, Ordering::Relaxed)
    }
    pub(crate) fn monitor_ticks(&self) -> bool {
        self.monitor_ticks.load(Ordering::Relaxed)
    }
    pub(crate) fn set_monitor_ticks(&self, on: bool) {
        self.monitor_ticks.store(on, Ordering::Relaxed)
    }
    pub(crate) fn power_efficient(&self) -> bool {
        self.power_efficient.load(Ordering::Relaxed)
    }
    pub(crate) fn set_power_efficient(&self, on: bool) {
        self.power_efficient.store(on, Ordering::Relaxed)
    }
    /// `wq_affn_dfl`: never `Default`.
    pub(crate) fn default_scope(&self) -> AffinityScope {
        AffinityScope::ALL[self.default_scope.load(Ordering::Relaxed) as usize]
    }
    /// Caller checked that `s` is a concrete scope.
    pub(crate) fn set_default_scope(&self, s: AffinityScope) {
        self.default_scope.store(scope_index(s), Ordering::Relaxed)
    }
    /// `s`, with `Default` replaced by the process-wide default.
    pub(crate) fn resolve_scope(&self, s: AffinityScope) -> AffinityScope {
        match s {
            AffinityScope::Default => self.default_scope(),
            s => s,
        }
    }
}
