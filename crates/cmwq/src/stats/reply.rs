//! What the endpoint answers: snapshots of the process's cmwq state, taken on
//! the endpoint's thread from [`debug::dump`] (each pool locked once,
//! briefly) and from the topology. Durations go on the wire as whole
//! microseconds (`_us`) or milliseconds (`_ms`), never as serde's
//! `{secs, nanos}`, so the wire form stays what the module docs say whatever
//! the library's types become.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Weak;

use serde_json::{json, Value};

use super::proto::{self, Request, OPS, VERSION};
use crate::debug::{self, Dump, PoolDump, WqDump};
use crate::global::registry;
use crate::{AffinityScope, WqFlags};

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

fn us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Flags by name, `PERCPU | HIGHPRI`; empty for none.
fn flag_names(f: WqFlags) -> String {
    let mut s = String::new();
    let _ = bitflags::parser::to_writer(&f, &mut s);
    s
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
            "request_timeout_ms": ms(super::REQUEST_TIMEOUT),
            "rate_per_sec": super::RATE_PER_SEC,
            "rate_burst": super::RATE_BURST,
            "max_connections": super::MAX_CONNECTIONS,
        },
    })
}

/// The process-wide thread counts.
fn threads(d: &Dump) -> Value {
    let (peak, peak_cm) = debug::peak_workers();
    json!({
        "workers": d.nr_workers,
        "cm_workers": d.nr_cm_workers,
        "peak_workers": peak,
        "peak_cm_workers": peak_cm,
        "max_workers": crate::max_workers(),
        "throttled": debug::nr_throttled(),
        "panics": d.panics,
        "stalls": d.stalls,
    })
}

/// One workqueue's counters: `wq_monitor.py -j`'s keys (`cpu_time` in µs,
/// as the kernel's `PWQ_STAT_CPU_TIME`), then cmwq's own.
fn wq_stats(w: &WqDump) -> Value {
    let s = &w.stats;
    json!({
        "name": w.name,
        "unbound": !w.flags.contains(WqFlags::PERCPU),
        "mem_reclaim": w.flags.contains(WqFlags::MEM_RECLAIM),
        "started": s.started,
        "completed": s.completed,
        "cpu_time": us(s.cpu_time),
        "cpu_intensive": s.cpu_intensive,
        "cm_wakeup": s.cm_wakeup,
        "repatriated": s.repatriated,
        "mayday": s.mayday,
        "rescued": s.rescued,
        "panicked": s.panicked,
        "blocked": s.monitor_blocks,
        "bh_blocked": s.bh_blocked,
        "batched": s.batched,
        "in_flight": s.in_flight,
        "inactive": s.inactive,
        "flags": flag_names(w.flags),
        "max_active": w.max_active,
    })
}

fn pool(p: &PoolDump) -> Value {
    json!({
        "id": p.id,
        "label": p.label,
        "cpu": p.cpu,
        "pod": p.pod,
        "highpri": p.highpri,
        "bh": p.bh,
        "nice": p.nice,
        "nice_wanted": p.nice_wanted,
        "concurrency": p.concurrency,
        "workers": p.workers,
        "idle": p.idle,
        "busy": p.busy,
        "nr_running": p.nr_running,
        "pending": p.pending,
        "inactive": p.inactive,
        "completed": p.completed,
        "oldest_wait_ms": p.oldest_wait.map(ms),
        "hung": p.hung,
    })
}

fn stats() -> Value {
    let d = debug::dump();
    json!({
        "v": VERSION,
        "op": "stats",
        "timestamp": timestamp(),
        "pid": std::process::id(),
        "program": program(),
        "workqueues": d.workqueues.iter().map(wq_stats).collect::<Vec<_>>(),
        "pools": d.pools.iter().map(pool).collect::<Vec<_>>(),
        "threads": threads(&d),
        "monitor": d.monitor,
    })
}

/// What the dump shows of a workqueue beyond [`WqDump`]: an unbound queue's
/// attributes.
struct Extra {
    strict: bool,
    scope: Option<AffinityScope>,
    cpumask: Option<Vec<usize>>,
}

/// [`Extra`] of the live workqueues, oldest first (the order of
/// [`Dump::workqueues`]).
fn extras() -> Vec<(String, Extra)> {
    let cores: Vec<_> = registry().workqueues().iter().filter_map(Weak::upgrade).collect();
    cores
        .iter()
        .filter(|c| !c.info().gone)
        .map(|c| {
            let table = c.table();
            let extra = Extra {
                strict: table.as_ref().is_some_and(|t| t.attrs.affinity_strict),
                scope: table.as_ref().map(|t| t.scope),
                cpumask: table.as_ref().map(|t| t.attrs.cpumask.clone().unwrap_or_else(crate::allowed_cpus)),
            };
            (c.name.to_string(), extra)
        })
        .collect()
}

/// `wq_dump.py`'s "Affinity Scopes": the pods of every scope.
fn scopes() -> Value {
    let topo = &registry().ctx.topo;
    let dfl = crate::default_affinity_scope();
    let v: Vec<Value> = AffinityScope::ALL
        .iter()
        .map(|&s| {
            let pt = topo.pods(s);
            json!({
                "name": s.name(),
                "default": s == dfl,
                "pod_cpus": pt.pod_cpus,
                "pod_node": pt.pod_node,
                "cpu_pod": topo.allowed.iter().map(|&c| json!([c, pt.cpu_pod.get(c)])).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(v)
}

/// A CPU list as `/proc` writes it (`0-3,5`).
fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut v = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            v.extend(a..=b.min(a + 4096));
        }
    }
    v
}

/// The rescuer threads of this process, from `/proc/self/task`: their name
/// (`cmwq/R-<queue>`, cut to 15 bytes by the kernel), thread id and allowed
/// CPUs (`wq_dump.py`'s "Workqueue -> rescuer").
fn rescuer_threads() -> Vec<(String, i32, Vec<usize>)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            let comm = comm.trim_end();
            if !comm.starts_with(debug::RESCUER_THREAD_PREFIX) {
                return None;
            }
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let cpus = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(parse_cpu_list);
            Some((comm.to_owned(), tid, cpus.unwrap_or_default()))
        })
        .collect()
}

/// The rescuer thread of queue `name`, when its (cut) thread name is unique.
fn rescuer_of(name: &str, threads: &[(String, i32, Vec<usize>)]) -> Value {
    let mut want = format!("{}{name}", debug::RESCUER_THREAD_PREFIX);
    let mut cut = want.len().min(15);
    while !want.is_char_boundary(cut) {
        cut -= 1;
    }
    want.truncate(cut);
    let mut found = threads.iter().filter(|(comm, _, _)| *comm == want);
    match (found.next(), found.next()) {
        (Some((_, tid, cpus)), None) => json!({ "tid": tid, "cpus": cpus }),
        // None, or several queues whose names share the cut prefix.
        _ => json!({ "tid": null, "cpus": null }),
    }
}

fn dump() -> Value {
    let d = debug::dump();
    let rescuers = if d.workqueues.iter().any(|w| w.flags.contains(WqFlags::MEM_RECLAIM)) {
        rescuer_threads()
    } else {
        Vec::new()
    };
    let extras = extras();
    // The two lists come from two looks at the registry: match them by
    // position while the names agree, by name otherwise.
    let same_order = extras.len() == d.workqueues.len()
        && extras.iter().zip(&d.workqueues).all(|((n, _), w)| *n == w.name);
    let by_name: HashMap<&str, &Extra> = extras.iter().map(|(n, e)| (n.as_str(), e)).collect();
    let reg = registry();
    let pools_by_id: HashMap<u32, _> = reg.pools().map(|p| (p.id, p)).collect();
    let topo = &reg.ctx.topo;
    let workqueues: Vec<Value> = d
        .workqueues
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let e = if same_order { Some(&extras[i].1) } else { by_name.get(w.name.as_str()).copied() };
            let pwqs: Vec<Value> = w
                .pwqs
                .iter()
                .map(|p| {
                    let running: Vec<Value> = p
                        .running
                        .iter()
                        .map(|r| {
                            json!({
                                "work": r.work,
                                "worker": r.worker,
                                "tid": r.tid,
                                "cpu": r.cpu,
                                "running_for_ms": ms(r.running_for),
                                "exact": r.exact,
                                "sleeping": r.sleeping,
                                "cpu_intensive": r.cpu_intensive,
                                "batched": r.batched,
                            })
                        })
                        .collect();
                    json!({
                        "pool": p.pool,
                        "cpu": p.cpu,
                        "pod": p.pod,
                        "active": p.active,
                        "max_active": p.max_active,
                        "pending": p.pending,
                        "inactive": p.inactive,
                        "in_flight": p.in_flight,
                        "running": running,
                    })
                })
                .collect();
            json!({
                "name": w.name,
                "flags": flag_names(w.flags),
                "unbound": !w.flags.contains(WqFlags::PERCPU),
                "ordered": w.ordered,
                "strict": e.map(|e| e.strict),
                "scope": e.and_then(|e| e.scope).map(|s| s.name()),
                "cpumask": e.and_then(|e| e.cpumask.clone()),
                "max_active": w.max_active,
                "min_active": w.min_active,
                "nodes": w.nodes.iter().map(|n| json!({
                    "node": n.node,
                    "active": n.active,
                    "max": n.max,
                    "waiting_pwqs": n.waiting_pwqs,
                })).collect::<Vec<_>>(),
                "stats": wq_stats(w),
                "rescuer": if w.flags.contains(WqFlags::MEM_RECLAIM) { rescuer_of(&w.name, &rescuers) } else { Value::Null },
                "pwqs": pwqs,
            })
        })
        .collect();
    let pools: Vec<Value> = d
        .pools
        .iter()
        .map(|p| {
            let mut v = pool(p);
            if let Some(wp) = pools_by_id.get(&p.id) {
                // Relaxed: a count for display.
                v["refs"] = json!(wp.refs.load(Ordering::Relaxed));
                v["cpus"] = json!(wp.affinity.to_vec());
                v["node"] = json!(wp.node);
            }
            v
        })
        .collect();
    let mut nodes: Vec<Vec<usize>> = vec![Vec::new(); topo.nr_nodes().max(1)];
    for &c in &topo.allowed {
        if let Some(n) = nodes.get_mut(topo.cpu_node(c)) {
            n.push(c);
        }
    }
    json!({
        "v": VERSION,
        "op": "dump",
        "timestamp": timestamp(),
        "pid": std::process::id(),
        "program": program(),
        "allowed_cpus": topo.allowed,
        "nr_cpu_ids": topo.nr_cpu_ids,
        "nodes": nodes,
        "scopes": scopes(),
        "workqueues": workqueues,
        "pools": pools,
        "threads": threads(&d),
        "monitor": d.monitor,
        "watchdog_thresh_ms": ms(d.watchdog_thresh),
        "text": d.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5\n"), [0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("7"), [7]);
    }

    #[test]
    fn rescuers_by_their_cut_name() {
        let threads = vec![
            ("cmwq/R-disk-io".to_owned(), 10, vec![0, 1]),
            ("cmwq/R-a-very-l".to_owned(), 11, vec![0]),
            ("cmwq/R-a-very-l".to_owned(), 12, vec![1]),
        ];
        assert_eq!(rescuer_of("disk-io", &threads)["tid"], 10);
        assert_eq!(rescuer_of("disk-io", &threads)["cpus"], json!([0, 1]));
        assert!(rescuer_of("a-very-long-name", &threads)["tid"].is_null(), "ambiguous");
        assert!(rescuer_of("other", &threads)["tid"].is_null());
    }
}
