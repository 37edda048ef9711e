//! What the endpoint answers: snapshots of the process's cmwq state, taken on
//! the endpoint's thread.

use serde_json::{json, Value};

use super::proto::{self, Request, OPS, VERSION};
use crate::debug;

/// The reply line to a well-formed request.
pub(super) fn answer(req: Request) -> Vec<u8> {
    let v = match req {
        Request::Hello => hello(),
        Request::Stats => stats(),
        Request::Dump => dump(),
    };
    proto::line(&v)
}

/// Seconds since the epoch, as `wq_monitor.py` stamps its rows.
fn timestamp() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The program's name: `/proc/self/comm` (what `ps` shows), else the executable's.
fn program() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end().to_owned())
        .ok()
        .or_else(|| std::env::current_exe().ok()?.file_name()?.to_str().map(str::to_owned))
        .unwrap_or_default()
}

fn hello() -> Value {
    json!({
        "v": VERSION,
        "op": "hello",
        "pid": std::process::id(),
        "program": program(),
        "cmwq": env!("CARGO_PKG_VERSION"),
        "ops": OPS,
        "limits": {
            "max_request": super::MAX_REQUEST,
            "request_timeout_ms": super::REQUEST_TIMEOUT.as_millis() as u64,
            "rate_per_sec": super::RATE_PER_SEC,
            "rate_burst": super::RATE_BURST,
            "max_connections": super::MAX_CONNECTIONS,
        },
    })
}

/// The process-wide thread counts.
fn threads() -> Value {
    let (peak, peak_cm) = debug::peak_workers();
    json!({
        "workers": debug::nr_workers(),
        "cm_workers": debug::nr_cm_workers(),
        "peak_workers": peak,
        "peak_cm_workers": peak_cm,
        "max_workers": crate::max_workers(),
        "throttled": debug::nr_throttled(),
        "panics": debug::panics(),
    })
}

fn stats() -> Value {
    json!({
        "v": VERSION,
        "op": "stats",
        "timestamp": timestamp(),
        "pid": std::process::id(),
        "workqueues": [],
        "threads": threads(),
        "monitor": debug::monitor(),
    })
}

fn dump() -> Value {
    json!({
        "v": VERSION,
        "op": "dump",
        "timestamp": timestamp(),
        "pid": std::process::id(),
        "allowed_cpus": crate::allowed_cpus(),
        "pools": debug::pools(),
        "threads": threads(),
        "monitor": debug::monitor(),
    })
}
