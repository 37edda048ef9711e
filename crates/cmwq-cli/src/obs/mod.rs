//! `cmwq top` and `cmwq dump`: a running program's workqueues, read from its
//! stats endpoint (`cmwq::stats`, started by `CMWQ_STATS=1`).

pub(crate) mod dump;
mod rows;
pub(crate) mod top;
mod tui;
mod wire;

use std::time::Duration;

use cmwq::stats::Endpoint;
use serde::de::DeserializeOwned;

use crate::demo::Result;

/// How often a rate-limited request is retried before giving up.
const RETRIES: u32 = 3;

/// The endpoint to talk to: `--pid`'s, or the only one of this user.
pub(crate) fn pick(pid: Option<u32>) -> Result<Endpoint> {
    match pid {
        Some(pid) => cmwq::stats::endpoint(pid).ok_or_else(|| not_serving(pid).into()),
        None => {
            let found = cmwq::stats::endpoints();
            match found.len() {
                0 => Err(none_found().into()),
                1 => Ok(found.into_iter().next().expect("one")),
                _ => Err(several(&found).into()),
            }
        }
    }
}

/// Where the sockets are looked for, for messages.
fn dirs() -> String {
    cmwq::stats::socket_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" and ")
}

/// Why `--pid PID` found nothing.
fn not_serving(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
    let Ok(status) = status else { return format!("no process {pid}") };
    let owner = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse::<u32>().ok());
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok();
    let name = process_name(pid);
    if owner.is_some() && owner != me {
        return format!(
            "process {pid} ({name}) belongs to uid {}: cmwq stats are served to the same user only",
            owner.unwrap_or_default()
        );
    }
    format!(
        "process {pid} ({name}) serves no cmwq stats (no socket in {}). Start it with CMWQ_STATS=1 in its \
         environment, or have it call cmwq::stats::serve()",
        dirs()
    )
}

fn none_found() -> String {
    format!(
        "no process serves cmwq stats to this user (looked in {}). Start a program that uses cmwq with \
         CMWQ_STATS=1 in its environment (or have it call cmwq::stats::serve()), then pick it with --pid; \
         to try it: cmwq demo --serve",
        dirs()
    )
}

fn several(found: &[Endpoint]) -> String {
    let mut s = format!("{} processes serve cmwq stats; pick one with --pid PID:\n", found.len());
    s.push_str(&format!("  {:>8}  {:<16} COMMAND", "PID", "NAME"));
    for e in found {
        let cmd = std::fs::read(format!("/proc/{}/cmdline", e.pid))
            .map(|b| {
                let s: Vec<String> = b
                    .split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into())
                    .collect();
                s.join(" ")
            })
            .unwrap_or_default();
        let cmd: String = cmd.chars().take(60).collect();
        s.push_str(&format!("\n  {:>8}  {:<16} {cmd}", e.pid, process_name(e.pid)));
    }
    s
}

/// `/proc/PID/comm`, or `?`.
fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_or_else(|_| "?".to_owned(), |s| s.trim_end().to_owned())
}

/// Asks the endpoint for `op` and decodes the reply; waits and retries when
/// it is rate-limited, and turns an error reply into an error.
pub(crate) fn fetch<T: DeserializeOwned>(ep: &Endpoint, op: &str) -> Result<T> {
    let mut tries = 0;
    loop {
        let line = ep.request(op).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                format!("process {} no longer serves cmwq stats (it has exited?)", ep.pid)
            }
            _ => format!("process {}: {e}", ep.pid),
        })?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("process {}: a reply that is not JSON ({e})", ep.pid))?;
        if let Some(code) = v.get("error").and_then(|c| c.as_str()) {
            let retry = v.get("retry_after_ms").and_then(|m| m.as_u64());
            if let (Some(ms), true) = (retry, tries < RETRIES) {
                tries += 1;
                std::thread::sleep(Duration::from_millis(ms.min(2_000)));
                continue;
            }
            let msg = v.get("message").and_then(|m| m.as_str()).unwrap_or("");
            return Err(format!("process {} refused {op:?}: {code}: {msg}", ep.pid).into());
        }
        if v.get("v").and_then(|v| v.as_u64()) != Some(1) {
            return Err(format!("process {} speaks another protocol version: {}", ep.pid, v["v"]).into());
        }
        return serde_json::from_value(v)
            .map_err(|e| format!("process {}: unexpected reply to {op:?}: {e}", ep.pid).into());
    }
}
