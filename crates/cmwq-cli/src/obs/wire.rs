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

/// One worker pool, as `cmwq top` shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct PoolRow {
    pub(crate) id: u32,
    pub(crate) label: String,
    pub(crate) cpu: Option<usize>,
    pub(crate) highpri: bool,
    pub(crate) nice: i32,
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
