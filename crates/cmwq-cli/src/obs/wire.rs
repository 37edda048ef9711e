//! The endpoint's replies, as `cmwq top` and `cmwq dump` read them. Every
//! field has a default, so a reply from an older or newer cmwq of protocol
//! version 1 (which only adds keys) still reads.

use serde::{Deserialize, Serialize};

/// The reply to `{"v":1,"op":"stats"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Stats {
    pub(crate) timestamp: f64,
    pub(crate) pid: u32,
    pub(crate) program: String,
    pub(crate) workqueues: Vec<WqRow>,
    pub(crate) pools: Vec<PoolRow>,
    pub(crate) threads: Threads,
    pub(crate) monitor: Monitor,
}

/// One workqueue's counters, summed over its pwqs: `wq_monitor.py -j`'s keys
/// (CPU time in microseconds, as the kernel counts it), then cmwq's own.
/// `None` where the counter does not exist (yet) in the serving cmwq.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct WqRow {
    pub(crate) name: String,
    pub(crate) unbound: bool,
    pub(crate) mem_reclaim: bool,
    pub(crate) ordered: bool,
    pub(crate) started: u64,
    pub(crate) completed: u64,
    pub(crate) cpu_time: Option<u64>,
    pub(crate) cpu_intensive: u64,
    pub(crate) cm_wakeup: u64,
    pub(crate) repatriated: Option<u64>,
    pub(crate) mayday: Option<u64>,
    pub(crate) rescued: Option<u64>,
    pub(crate) panicked: u64,
    /// Blocks the sleep monitor found in this queue's items.
    pub(crate) blocked: Option<u64>,
    pub(crate) in_flight: u64,
    pub(crate) inactive: u64,
    pub(crate) max_active: u64,
}

/// One worker pool. `refs`, `cpus` and `node` come in dumps only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct PoolRow {
    pub(crate) id: u32,
    pub(crate) label: String,
    pub(crate) cpu: Option<usize>,
    pub(crate) pod: Vec<usize>,
    pub(crate) highpri: bool,
    pub(crate) bh: bool,
    /// The nice value its workers run at.
    pub(crate) nice: i32,
    /// The nice value its attributes ask for, where the reply carries it.
    pub(crate) nice_wanted: Option<i32>,
    pub(crate) concurrency: usize,
    pub(crate) refs: Option<usize>,
    pub(crate) cpus: Vec<usize>,
    pub(crate) node: Option<usize>,
    pub(crate) workers: usize,
    pub(crate) idle: usize,
    pub(crate) busy: usize,
    pub(crate) nr_running: i64,
    pub(crate) pending: usize,
    pub(crate) inactive: usize,
    pub(crate) completed: u64,
    pub(crate) oldest_wait_ms: Option<u64>,
    pub(crate) hung: bool,
}

/// The process's worker threads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct Threads {
    pub(crate) workers: usize,
    pub(crate) cm_workers: usize,
    pub(crate) peak_workers: usize,
    pub(crate) peak_cm_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) throttled: u64,
    pub(crate) panics: u64,
}

/// What the sleep monitor has done (`cmwq::debug::MonitorStats`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct Monitor {
    pub(crate) ticks: u64,
    pub(crate) blocked: u64,
    pub(crate) resumed: u64,
    pub(crate) cpu_hogs: u64,
    pub(crate) created: u64,
    pub(crate) parks: u64,
    pub(crate) by_sentinel: u64,
    pub(crate) sentinels: u64,
}

/// The reply to `{"v":1,"op":"dump"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Dump {
    pub(crate) pid: u32,
    pub(crate) program: String,
    pub(crate) allowed_cpus: Vec<usize>,
    /// The CPUs of each NUMA node (of those allowed).
    pub(crate) nodes: Vec<Vec<usize>>,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) workqueues: Vec<WqDump>,
    pub(crate) pools: Vec<PoolRow>,
    pub(crate) threads: Threads,
    pub(crate) monitor: Monitor,
    /// `cmwq::debug::Dump`'s `Display`: the kernel's `show_all_workqueues()`.
    pub(crate) text: String,
}

/// An affinity scope's pods.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Scope {
    pub(crate) name: String,
    pub(crate) default: bool,
    pub(crate) pod_cpus: Vec<Vec<usize>>,
    pub(crate) pod_node: Vec<Option<usize>>,
    /// `[cpu, pod]` for each allowed CPU.
    pub(crate) cpu_pod: Vec<(usize, Option<usize>)>,
}

/// One workqueue in a dump.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct WqDump {
    pub(crate) name: String,
    pub(crate) flags: String,
    pub(crate) unbound: bool,
    pub(crate) ordered: Option<bool>,
    pub(crate) strict: Option<bool>,
    pub(crate) scope: Option<String>,
    pub(crate) cpumask: Option<Vec<usize>>,
    pub(crate) max_active: u64,
    pub(crate) min_active: Option<u64>,
    /// Per NUMA node, for an unbound queue that counts `max_active` per node;
    /// the last one (`node: null`) is for pools whose pod spans nodes.
    pub(crate) nodes: Vec<NodeCount>,
    pub(crate) stats: WqRow,
    /// A `MEM_RECLAIM` queue's rescuer thread.
    pub(crate) rescuer: Option<RescuerInfo>,
    pub(crate) pwqs: Vec<Pwq>,
}

/// A workqueue on one pool.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Pwq {
    pub(crate) pool: u32,
    pub(crate) cpu: Option<usize>,
    pub(crate) pod: Vec<usize>,
    pub(crate) active: u64,
    pub(crate) max_active: u64,
    pub(crate) pending: u64,
    pub(crate) inactive: u64,
    pub(crate) in_flight: u64,
}

/// One node's share of an unbound queue's `max_active` (`wq_node_nr_active`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct NodeCount {
    pub(crate) node: Option<usize>,
    pub(crate) active: u64,
    pub(crate) max: u64,
}

/// A rescuer thread: its id and allowed CPUs, when the endpoint could tell.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct RescuerInfo {
    pub(crate) tid: Option<i32>,
    pub(crate) cpus: Option<Vec<usize>>,
}
