//! The rows of `cmwq top`: `wq_monitor.py`'s columns as text and as JSON lines,
//! shared by the plain output (`top.rs`) and the live view (`tui.rs`).

use std::fmt::Write as _;

use regex::Regex;
use serde::Serialize;
use serde_json::json;

use super::wire::{Stats, WqRow};

/// `wq_monitor.py`'s header, then cmwq's columns.
pub(crate) fn header() -> String {
    format!(
        "{:>24} {:>8} {:>5} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "", "total", "infl", "CPUtime", "CPUitsv", "CMW/RPR", "mayday", "rescued", "panics", "blocked"
    )
}

/// A counter, or `-` where it does not apply or does not exist.
fn cell(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// One row: `wq_monitor.py`'s `table_row_str`, then cmwq's columns.
///
/// - `CPUitsv`: items that hogged the CPU past the threshold. The kernel shows
///   it for per-CPU queues only; cmwq's unbound pools are concurrency managed
///   too, so it applies to every queue here.
/// - `CMW/RPR`: the kernel shows concurrency-management wake-ups for per-CPU
///   queues and repatriations for unbound ones. cmwq's unbound pools are
///   concurrency managed, and a process cannot repatriate a thread (its
///   `repatriated` is always 0, in the JSON), so every queue shows `CMW` here.
/// - `mayday`, `rescued`: only for `MEM_RECLAIM` queues, `-` otherwise and
///   where the serving cmwq has no rescuer counters.
/// - `panics`: items that panicked; `blocked`: blocks nobody announced that
///   the sleep monitor found in the queue's items (cmwq's own).
pub(crate) fn row(w: &WqRow) -> String {
    let name: String = {
        let n = w.name.chars().count();
        w.name.chars().skip(n.saturating_sub(24)).collect()
    };
    let cmw_rpr = Some(w.cm_wakeup);
    let (mayday, rescued) = if w.mem_reclaim { (w.mayday, w.rescued) } else { (None, None) };
    let cpu = w.cpu_time.map_or_else(|| "-".to_owned(), |us| format!("{:.1}", us as f64 / 1e6));
    format!(
        "{name:24} {:8} {:5} {cpu:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        w.started,
        w.started.saturating_sub(w.completed),
        w.cpu_intensive,
        cell(cmw_rpr),
        cell(mayday),
        cell(rescued),
        w.panicked,
        cell(w.blocked),
    )
}

/// The line above the table: the process, its threads and the monitor.
pub(crate) fn summary(s: &Stats) -> String {
    let t = &s.threads;
    let m = &s.monitor;
    format!(
        "pid {} ({}): workers {} (cm {}, peak {}, max {}, throttled {}), panics {}; monitor: blocked {} \
         (sentinel {}), cpu hogs {}, created {}, ticks {}",
        s.pid,
        s.program,
        t.workers,
        t.cm_workers,
        t.peak_workers,
        t.max_workers,
        t.throttled,
        t.panics,
        m.blocked,
        m.by_sentinel,
        m.cpu_hogs,
        m.created,
        m.ticks
    )
}

/// The table of one sample, as printed in plain mode (a blank line first, as
/// `wq_monitor.py` does).
pub(crate) fn table(s: &Stats, re: Option<&Regex>) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary(s));
    let _ = writeln!(out, "{}", header());
    for w in s.workqueues.iter().filter(|w| re.is_none_or(|r| r.is_match(&w.name))) {
        let _ = writeln!(out, "{}", row(w).trim_end());
    }
    out
}

/// A JSON line of one workqueue: `wq_monitor.py -j`'s keys in its order, then
/// cmwq's.
#[derive(Debug, Serialize)]
struct JsonRow<'a> {
    timestamp: f64,
    name: &'a str,
    unbound: bool,
    mem_reclaim: bool,
    started: u64,
    completed: u64,
    cpu_time: Option<u64>,
    cpu_intensive: u64,
    cm_wakeup: u64,
    repatriated: Option<u64>,
    mayday: Option<u64>,
    rescued: Option<u64>,
    pid: u32,
    panicked: u64,
    blocked: Option<u64>,
}

/// One sample as JSON lines: one per workqueue with `wq_monitor.py -j`'s keys
/// (`cpu_time` in microseconds; `null` where the counter does not exist) and
/// cmwq's own, then one for the process (`threads`, `monitor`).
pub(crate) fn json_lines(s: &Stats, re: Option<&Regex>) -> String {
    let mut out = String::new();
    for w in s.workqueues.iter().filter(|w| re.is_none_or(|r| r.is_match(&w.name))) {
        let row = JsonRow {
            timestamp: s.timestamp,
            name: &w.name,
            unbound: w.unbound,
            mem_reclaim: w.mem_reclaim,
            started: w.started,
            completed: w.completed,
            cpu_time: w.cpu_time,
            cpu_intensive: w.cpu_intensive,
            cm_wakeup: w.cm_wakeup,
            repatriated: w.repatriated,
            mayday: w.mayday,
            rescued: w.rescued,
            pid: s.pid,
            panicked: w.panicked,
            blocked: w.blocked,
        };
        let _ = writeln!(out, "{}", serde_json::to_string(&row).unwrap_or_default());
    }
    let v = json!({ "timestamp": s.timestamp, "pid": s.pid, "threads": s.threads, "monitor": s.monitor });
    let _ = writeln!(out, "{v}");
    out
}
