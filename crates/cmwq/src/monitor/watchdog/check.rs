//! One check of every pool (the loop of the kernel's `wq_watchdog_timer_fn`),
//! and the text of its reports (the kernel's `pr_cont_pool_info` and
//! `show_one_workqueue`, cut down to the pool that stalled).
//!
//! A pool's progress is the number of items it started, `completed +
//! nr_busy`, read under its lock: the pool keeps no timestamp of its own (the
//! kernel's `pool->watchdog_ts`), so its hot path pays nothing. The checker
//! keeps, per pool, the count it saw and the clock reading of the first check
//! that saw it with work waiting (`since`). A pool is stalled when work has
//! waited at every check since `since` and the count has not moved for the
//! threshold. See `README.md` for the precision this gives.

use std::fmt::Write as _;

use crate::pool::{PoolLocked, WorkerPool};
use crate::registry::Registry;

/// At most this many running items and this many workqueues in one report.
const REPORT_MAX: usize = 16;

/// What the checker remembers of one pool, between checks.
#[derive(Debug, Default)]
struct Record {
    /// Work was waiting at the last check.
    waiting: bool,
    /// Items started, as of the last check.
    started: u64,
    /// The clock reading (ns) of the first check that saw work waiting with
    /// `started` at its present count: the last progress seen.
    since: u64,
    /// This stall was reported.
    stalled: bool,
    /// Workers executing an item: (slot, its `progress`, first seen at, the
    /// generation of the last check that saw it).
    workers: Vec<(usize, u64, u64, u64)>,
}

/// A finding of a check, logged once the pool lock is released.
#[derive(Debug)]
pub(super) enum Finding {
    /// A stall to report (error level).
    Stall { pool: String, cpus: String, stuck_ns: u64, in_flight: usize, pending: usize, text: String },
    /// A reported stall is over (warning level).
    Over { pool: String, cpus: String, stuck_ns: u64, text: String },
}

/// The watchdog's memory of every pool (the process has one, behind the
/// watchdog's mutex).
#[derive(Debug, Default)]
pub(super) struct Checker {
    /// By pool id.
    records: Vec<Record>,
    /// When the next check is due (clock reading, ns). `None` after a reset or
    /// a park: whoever runs next schedules it.
    pub(super) next: Option<u64>,
    generation: u64,
    /// The pools of the last check, kept so that a check allocates nothing
    /// once the process's pools exist (the monitor's scan does the same).
    pools: Vec<&'static WorkerPool>,
}

impl Checker {
    /// For each pool id, what the last check saw if it had work waiting:
    /// `(started, since, stalled)` (see [`Record`]).
    pub(super) fn waiting(&self) -> Vec<Option<(u64, u64, bool)>> {
        self.records.iter().map(|r| r.waiting.then_some((r.started, r.since, r.stalled))).collect()
    }

    /// Forgets every pool: the next check sees each one afresh.
    pub(super) fn reset(&mut self) {
        self.records.clear();
        self.next = None;
    }

    /// Checks every pool of `reg` at clock reading `now`: records progress and
    /// pushes what is to be reported to `out`. `touched`: treat this check as
    /// progress of every pool (`touch`). Returns whether any pool had work
    /// waiting.
    pub(super) fn check(
        &mut self,
        reg: &Registry,
        now: u64,
        thresh: u64,
        touched: bool,
        out: &mut Vec<Finding>,
    ) -> bool {
        self.generation += 1;
        let gen = self.generation;
        let mut busy = false;
        let mut pools = std::mem::take(&mut self.pools);
        crate::registry::all_pools_into(&mut pools);
        for &pool in pools.iter().filter(|p| std::ptr::eq(p.ctx, &reg.ctx)) {
            let id = pool.id as usize;
            if self.records.len() <= id {
                self.records.resize_with(id + 1, Record::default);
            }
            let r = &mut self.records[id];
            let g = pool.lock();
            let started = g.completed + g.nr_busy as u64;
            if g.worklist.is_empty() {
                drop(g);
                // Nothing waits: the pool went idle, or drained its worklist.
                if r.stalled {
                    out.push(over(pool, now.saturating_sub(r.since)));
                }
                r.waiting = false;
                r.stalled = false;
                r.workers.clear();
                continue;
            }
            busy = true;
            if !r.waiting || r.started != started {
                if r.stalled {
                    out.push(over(pool, now.saturating_sub(r.since)));
                    r.stalled = false;
                }
                r.waiting = true;
                r.started = started;
                r.since = now;
            } else if touched {
                r.since = now;
            }
            track_workers(&g, r, now, gen);
            if !r.stalled && now.saturating_sub(r.since) >= thresh {
                r.stalled = true;
                out.push(stall(pool, &g, r, now));
            }
        }
        self.pools = pools;
        busy
    }
}

/// Updates when each worker executing an item was first seen with that item.
fn track_workers(g: &PoolLocked, r: &mut Record, now: u64, gen: u64) {
    for (idx, w) in g.workers.iter() {
        if w.current.is_none() {
            continue;
        }
        match r.workers.iter_mut().find(|e| e.0 == idx) {
            Some(e) => {
                if e.1 != w.progress {
                    e.1 = w.progress;
                    e.2 = now;
                }
                e.3 = gen;
            }
            None => r.workers.push((idx, w.progress, now, gen)),
        }
    }
    r.workers.retain(|e| e.3 == gen);
}

/// The pool's CPU, or its pod's CPUs.
fn cpus(pool: &WorkerPool) -> String {
    cpu_list(&pool.pod)
}

/// Ascending CPUs as the kernel prints a cpumask list (`%*pbl`).
fn cpu_list(pod: &[usize]) -> String {
    crate::platform::topology::CpuList(pod).to_string()
}

/// `pool 3 (cpu 1, nice 0)`, `pool 7 (unbound, pod cpus 0-3, nice 0)`: the
/// kernel's `pr_cont_pool_info`.
fn pool_info(pool: &WorkerPool, cpus: &str) -> String {
    match pool.cpu {
        Some(c) => format!(
            "pool {} (cpu {c}{}, nice {})",
            pool.id,
            if pool.highpri { ", highpri" } else { "" },
            pool.nice
        ),
        None => format!("pool {} (unbound, pod cpus {cpus}, nice {})", pool.id, pool.nice),
    }
}

fn secs(ns: u64) -> u64 {
    ns / 1_000_000_000
}

fn over(pool: &WorkerPool, stuck_ns: u64) -> Finding {
    let cpus = cpus(pool);
    let text = format!(
        "workqueue lockup over - {}: made progress again after {}s stuck",
        pool_info(pool, &cpus),
        secs(stuck_ns)
    );
    Finding::Over { pool: pool.label(), cpus, stuck_ns, text }
}

/// The report of a stall: the pool, how long it has been stuck, what runs
/// there and for how long, and what waits, per workqueue (names quoted and
/// escaped). Built under the pool lock, once per stall.
fn stall(pool: &WorkerPool, g: &PoolLocked, r: &Record, now: u64) -> Finding {
    let cpus = cpus(pool);
    let stuck_ns = now.saturating_sub(r.since);
    let mut text =
        format!("BUG: workqueue lockup - {} stuck for {}s!", pool_info(pool, &cpus), secs(stuck_ns));
    // In flight: each worker executing an item, with its workqueue and how
    // long the watchdog has seen it run (at least that long).
    let mut in_flight = 0;
    text.push_str(" in-flight:");
    for (idx, w) in g.workers.iter() {
        let Some(cur) = w.current else { continue };
        in_flight += 1;
        if in_flight > REPORT_MAX {
            continue;
        }
        let seen = r.workers.iter().find(|e| e.0 == idx).map_or(now, |e| e.2);
        let wq = &g.pwqs.get(cur.pwq as usize).wq.name;
        let _ = write!(text, " worker {idx} runs {wq:?} for >={}s,", secs(now.saturating_sub(seen)));
    }
    if in_flight > REPORT_MAX {
        let _ = write!(text, " and {} more,", in_flight - REPORT_MAX);
    }
    if in_flight == 0 {
        text.push_str(" none,");
    }
    text.pop();
    // Waiting: on the worklist (`pending`) and held back by max_active
    // (`inactive`), per workqueue (one pwq per workqueue in a pool).
    let mut pending: Vec<(u32, usize)> = Vec::new();
    for e in &g.worklist {
        match pending.iter_mut().find(|p| p.0 == e.pwq) {
            Some(p) => p.1 += 1,
            None => pending.push((e.pwq, 1)),
        }
    }
    let nr_pending = g.worklist.len();
    let _ = write!(text, "; pending {nr_pending}:");
    list_per_wq(&mut text, g, &pending);
    let inactive: Vec<(u32, usize)> = g
        .pwqs
        .iter()
        .filter(|(_, p)| !p.inactive.is_empty())
        .map(|(slot, p)| (slot as u32, p.inactive.len()))
        .collect();
    if !inactive.is_empty() {
        let _ = write!(text, "; inactive {}:", inactive.iter().map(|p| p.1).sum::<usize>());
        list_per_wq(&mut text, g, &inactive);
    }
    Finding::Stall { pool: pool.label(), cpus, stuck_ns, in_flight, pending: nr_pending, text }
}

fn list_per_wq(text: &mut String, g: &PoolLocked, counts: &[(u32, usize)]) {
    for (slot, n) in counts.iter().take(REPORT_MAX) {
        let wq = &g.pwqs.get(*slot as usize).wq.name;
        let _ = write!(text, " {wq:?} {n},");
    }
    if counts.len() > REPORT_MAX {
        let _ = write!(text, " and {} more workqueues,", counts.len() - REPORT_MAX);
    }
    text.pop();
}

#[cfg(test)]
mod tests {
    use super::cpu_list;

    #[test]
    fn cpu_lists_read_like_the_kernels() {
        assert_eq!(cpu_list(&[]), "");
        assert_eq!(cpu_list(&[3]), "3");
        assert_eq!(cpu_list(&[0, 1]), "0,1");
        assert_eq!(cpu_list(&[0, 1, 2, 3]), "0-3");
        assert_eq!(cpu_list(&[0, 2, 3, 4, 7, 8]), "0,2-4,7,8");
    }
}
