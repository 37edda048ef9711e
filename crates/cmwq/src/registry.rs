//! The cmwq instance: CPU topology, the table of worker pools, and process-wide
//! settings. Production code uses one global registry; loom models and simulated
//! topologies build their own.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::pool::WorkerPool;
use crate::workqueue::WqCore;

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

/// Which CPUs exist and may be used.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// One more than the largest CPU id (pool tables are indexed by CPU id).
    pub(crate) nr_cpu_ids: usize,
    /// CPUs in the process affinity mask at start, ascending.
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
    fn detect() -> Topology {
        let mut allowed = crate::sys::allowed_cpus().unwrap_or_default();
        if allowed.is_empty() {
            allowed = (0..crate::sys::nr_cpu_ids()).collect();
        }
        let nr_cpu_ids = crate::sys::nr_cpu_ids().max(allowed.last().map_or(1, |c| c + 1));
        Topology::new(nr_cpu_ids, allowed, crate::sys::current_thread_nice(), true)
    }

    fn new(nr_cpu_ids: usize, allowed: Vec<usize>, base_nice: i32, real: bool) -> Topology {
        let mut allowed_mask = vec![false; nr_cpu_ids];
        for &c in &allowed {
            allowed_mask[c] = true;
        }
        Topology { nr_cpu_ids, allowed, allowed_mask, base_nice, real }
    }

    #[allow(dead_code, reason = "used by loom models and simulated-topology tests")]
    pub(crate) fn simulated(nr_cpus: usize) -> Topology {
        Topology::new(nr_cpus, (0..nr_cpus).collect(), 0, false)
    }

    #[inline]
    pub(crate) fn is_allowed(&self, cpu: usize) -> bool {
        self.allowed_mask.get(cpu).copied().unwrap_or(false)
    }
}

/// Process-wide settings, read on slow paths only.
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
            tracing::warn!("cmwq: ignoring {var}={v:?}: expected {what}");
            None
        }
    }
}

#[cfg_attr(loom, allow(dead_code))]
impl Config {
    /// The defaults, overridden by the `CMWQ_*` environment variables (crate docs,
    /// "Configuration"). `allowed_cpus` sizes the concurrency-managed ceiling.
    fn from_env(allowed_cpus: usize) -> Config {
        let idle =
            env_number("CMWQ_IDLE_TIMEOUT_MS").map(Duration::from_millis).unwrap_or(DEFAULT_IDLE_TIMEOUT);
        let max = env_number("CMWQ_MAX_WORKERS").map_or(DEFAULT_MAX_WORKERS, |n| n as usize);
        let max_cm =
            env_number("CMWQ_MAX_CM_WORKERS").map_or(default_max_cm_workers(allowed_cpus), |n| n as usize);
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
        }
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
}

/// The table of every pool ever created, indexed by pool id. Pools are immortal:
/// work items store a pool id in their state word and look the pool up here.
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
    pub(crate) topo: Topology,
    pub(crate) config: Config,
    cpu_pools: Box<[PoolPair]>,
    unbound_pools: PoolPair,
    /// Worker threads alive across this registry's pools (reserved before the
    /// thread is spawned, so the ceilings hold exactly; see `pool/manage.rs`).
    pub(crate) nr_threads: AtomicUsize,
    /// Of those, workers of concurrency-managed (per-CPU) pools.
    pub(crate) nr_cm_threads: AtomicUsize,
    /// The most `nr_threads` and `nr_cm_threads` have been.
    pub(crate) peak_threads: AtomicUsize,
    pub(crate) peak_cm_threads: AtomicUsize,
    /// After a failed thread creation: the thread count it failed at, which is
    /// the effective ceiling until the cooldown ends (then one retry may go).
    pub(crate) spawn_limit: parking_lot::Mutex<Option<(usize, std::time::Instant)>>,
    /// Times a pool wanted a worker but the thread ceiling or a spawn failure refused it.
    pub(crate) nr_throttled: AtomicU64,
    /// `workqueue_freezing`; written under `freezable`'s lock.
    freezing: std::sync::atomic::AtomicBool,
    /// Every `FREEZABLE` workqueue; the lock also serialises freeze and thaw.
    freezable: parking_lot::Mutex<Vec<std::sync::Weak<WqCore>>>,
    /// `workqueue.power_efficient`: `POWER_EFFICIENT` queues are created unbound.
    power_efficient: std::sync::atomic::AtomicBool,
    /// The creator thread (the kernel's kthreadd): started with the registry, at
    /// the process's base priority and affinity, it spawns the first worker of a
    /// pool, which would otherwise inherit the queuing thread's nice value.
    creator: Option<std::sync::mpsc::Sender<CreateRequest>>,
    /// The timer context of delayed work (`timer/base.rs`).
    pub(crate) timers: crate::timer::base::TimerBase,
}

/// Work for the creator thread.
pub(crate) type CreateRequest = Box<dyn FnOnce() + Send>;

/// Starts the creator thread (real topologies only; loom models spawn directly).
fn start_creator() -> Option<std::sync::mpsc::Sender<CreateRequest>> {
    if cfg!(loom) {
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel::<CreateRequest>();
    let started = std::thread::Builder::new().name(crate::debug::CREATOR_THREAD.into()).spawn(move || {
        for req in rx {
            req();
        }
    });
    match started {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(
                "cmwq: cannot start the creator thread ({e}); queuing threads create first workers"
            );
            None
        }
    }
}

impl Registry {
    pub(crate) fn new(topo: Topology) -> Registry {
        let topo_real = topo.real;
        Registry {
            cpu_pools: (0..topo.nr_cpu_ids).map(|_| PoolPair::default()).collect(),
            unbound_pools: PoolPair::default(),
            config: Config::from_env(if topo.real {
                crate::monitor::allowed_cpu_count(topo.allowed.len())
            } else {
                topo.allowed.len()
            }),
            topo,
            nr_threads: AtomicUsize::new(0),
            nr_cm_threads: AtomicUsize::new(0),
            peak_threads: AtomicUsize::new(0),
            peak_cm_threads: AtomicUsize::new(0),
            spawn_limit: parking_lot::Mutex::new(None),
            nr_throttled: AtomicU64::new(0),
            freezing: std::sync::atomic::AtomicBool::new(false),
            freezable: parking_lot::Mutex::new(Vec::new()),
            power_efficient: std::sync::atomic::AtomicBool::new(
                env_number("CMWQ_POWER_EFFICIENT") == Some(1),
            ),
            creator: if topo_real { start_creator() } else { None },
            timers: crate::timer::base::TimerBase::new(),
        }
    }

    /// The process-wide registry.
    pub(crate) fn global() -> &'static Registry {
        static GLOBAL: OnceLock<&'static Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Box::leak(Box::new(Registry::new(Topology::detect()))))
    }

    /// The normal or highpri pool of `cpu`, created on first use (without workers:
    /// the first kick creates one).
    pub(crate) fn cpu_pool(&'static self, cpu: usize, highpri: bool) -> &'static WorkerPool {
        self.cpu_pools[cpu][highpri as usize]
            .get_or_init(|| register_pool(|id| WorkerPool::new(id, self, Some(cpu), highpri)))
    }

    /// The normal or highpri pool of `cpu`, if it was ever used.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn cpu_pool_if_created(&self, cpu: usize, highpri: bool) -> Option<&'static WorkerPool> {
        self.cpu_pools.get(cpu)?[highpri as usize].get().copied()
    }

    /// The unbound pool for the given priority (one pod: the whole process).
    pub(crate) fn unbound_pool(&'static self, highpri: bool) -> &'static WorkerPool {
        self.unbound_pools[highpri as usize]
            .get_or_init(|| register_pool(|id| WorkerPool::new(id, self, None, highpri)))
    }

    /// The CPU a per-CPU queue uses for a caller that named none: the caller's own
    /// CPU, or the first allowed CPU when that one is not usable.
    #[inline]
    pub(crate) fn local_cpu(&self) -> usize {
        if self.topo.real {
            if let Some(c) = crate::sys::current_cpu() {
                if self.topo.is_allowed(c) {
                    return c;
                }
            }
        }
        self.topo.allowed[0]
    }

    pub(crate) fn set_idle_timeout(&self, d: Duration) {
        self.config.idle_timeout_ns.store(d.as_nanos() as u64, Ordering::Relaxed);
        for p in all_pools() {
            if std::ptr::eq(p.registry, self) {
                p.wake_all_idle();
            }
        }
    }

    /// Hands `req` to the creator thread; gives it back if there is none.
    pub(crate) fn to_creator(&self, req: CreateRequest) -> Result<(), CreateRequest> {
        match &self.creator {
            Some(tx) => tx.send(req).map_err(|e| e.0),
            None => Err(req),
        }
    }

    pub(crate) fn is_freezing(&self) -> bool {
        self.freezing.load(Ordering::Acquire)
    }

    pub(crate) fn power_efficient(&self) -> bool {
        self.power_efficient.load(Ordering::Relaxed)
    }

    pub(crate) fn set_power_efficient(&self, on: bool) {
        self.power_efficient.store(on, Ordering::Relaxed)
    }

    /// Adds a new `FREEZABLE` queue; it starts frozen if the registry is frozen.
    pub(crate) fn register_freezable(&self, wq: &std::sync::Arc<WqCore>) {
        let mut list = self.freezable.lock();
        list.retain(|w| w.strong_count() > 0);
        list.push(std::sync::Arc::downgrade(wq));
    }

    /// `freeze_workqueues_begin` / `thaw_workqueues`: sets the freezing state and
    /// re-applies every freezable queue's effective `max_active`.
    pub(crate) fn set_freezing(&self, on: bool) {
        let list = self.freezable.lock();
        self.freezing.store(on, Ordering::Release);
        for wq in list.iter().filter_map(std::sync::Weak::upgrade) {
            let _fg = wq.flush.lock();
            wq.adjust_max_active();
        }
    }

    /// `freeze_workqueues_busy`: whether a freezable queue still has active items.
    pub(crate) fn freezable_busy(&self) -> bool {
        let list = self.freezable.lock();
        list.iter().filter_map(std::sync::Weak::upgrade).any(|wq| wq.has_active())
    }

    pub(crate) fn max_workers(&self) -> usize {
        self.config.max_workers()
    }

    pub(crate) fn set_max_workers(&self, n: usize) {
        self.config.max_workers.store(n.max(1), Ordering::Relaxed);
    }

    /// Retires every worker of this registry's pools and waits for them to exit.
    /// Only loom models need this: production workers live for the process.
    #[cfg(all(loom, test))]
    pub(crate) fn shutdown(&'static self) {
        crate::loom::ltrace!("registry shutdown: {} pools", all_pools().len());
        for p in all_pools() {
            if std::ptr::eq(p.registry, self) {
                p.shutdown();
            }
        }
    }
}
