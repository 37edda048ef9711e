//! mixed: items burn X of CPU then block Y, at several X:Y; makespan against
//! the ideal bound, peak threads against the threads a concurrency-managed
//! pool needs; from pinned producers (one per CPU) and from one unpinned
//! producer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cpu::burn;
use crate::ctx::{round_order, warmup_items, Cell, Ctx, MakeJob};
use crate::error::Error;
use crate::executors::{Blocking, ExecutorKind};
use crate::fmt::{section, yes};
use crate::pools::PoolTally;
use crate::procfs::{self, CpuAccount, CpuMark, CpuSplit};
use crate::producers::Feed;
use crate::stats::{median, median_usize, min_max};

/// Lower bounds on the makespan of the mixed workload: `n` items, each burning
/// `burn` of CPU and then blocking `block`, on `cores` CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    /// The ideal: `max(total CPU / cores, longest chain)`, in ms.
    pub ideal_ms: f64,
    /// A tighter bound for burn-then-block items: the last burst ends no earlier
    /// than `total CPU / cores`, and its item then blocks `block`:
    /// `max(total CPU / cores + block, burn + block)`, in ms.
    pub tight_ms: f64,
    /// `total CPU / cores` alone, in ms.
    pub cpu_per_core_ms: f64,
    /// The longest chain `burn + block`, in ms.
    pub chain_ms: f64,
}

impl Bounds {
    /// The lower bounds for `n` items of `burn` then `block` on `cores` CPUs.
    pub fn new(n: usize, burn: Duration, block: Duration, cores: usize) -> Bounds {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let cpu_per_core = ms(burn) * n as f64 / cores.max(1) as f64;
        let (chain, tail) = if n == 0 { (0.0, 0.0) } else { (ms(burn) + ms(block), ms(block)) };
        Bounds {
            ideal_ms: cpu_per_core.max(chain),
            tight_ms: (cpu_per_core + tail).max(chain),
            cpu_per_core_ms: cpu_per_core,
            chain_ms: chain,
        }
    }

    /// The ideal when only a fraction `avail` of the CPUs' time was ours to take
    /// (the rest went to other processes or the hypervisor):
    /// `max(total CPU / (cores × avail), chain)`. `avail` is clamped to 0.05..=1.
    pub fn ideal_given(&self, avail: f64) -> f64 {
        let avail = if avail.is_nan() { 1.0 } else { avail.clamp(0.05, 1.0) };
        (self.cpu_per_core_ms / avail).max(self.chain_ms)
    }
}

/// mixed: burn X, block Y.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixedRow {
    /// Executor.
    pub executor: String,
    /// How items block (`announced`: `cmwq::sleep`; `plain`: `std::thread::sleep`).
    pub blocking: String,
    /// Producer threads (one per CPU, or 1).
    pub producers: usize,
    /// `pinned` (one producer pinned to each CPU, each its share) or
    /// `unpinned` (one producer nobody pinned queues every item).
    pub producer_mode: String,
    /// The producers in words: `1 pinned producer per CPU`, `1 unpinned producer`.
    pub producers_label: String,
    /// `X:Y` as `1:m`.
    pub ratio: String,
    /// `m` of `1:m`.
    pub block_mult: u32,
    /// X in µs.
    pub burn_us: u64,
    /// Y in µs.
    pub block_us: u64,
    /// Items per run.
    pub items: usize,
    /// Measured runs.
    pub runs: usize,
    /// Median makespan, and the fastest and slowest run (ms).
    pub makespan_ms: f64,
    /// See `makespan_ms`.
    pub makespan_min_ms: f64,
    /// See `makespan_ms`.
    pub makespan_max_ms: f64,
    /// Every measured run, in order.
    pub makespans_ms: Vec<f64>,
    /// The lower bounds.
    pub bounds: Bounds,
    /// Median makespan / `bounds.ideal_ms`.
    pub ratio_to_ideal: f64,
    /// Median makespan / `bounds.tight_ms`.
    pub ratio_to_tight: f64,
    /// Median makespan / [`Bounds::ideal_given`] the share of the CPUs that other
    /// processes and the hypervisor left (`1 - cpu.others - cpu.steal`).
    pub ratio_to_available: f64,
    /// Median over runs of the executor's peak thread count.
    pub peak_threads: usize,
    /// The largest peak of any run.
    pub peak_threads_max: usize,
    /// The peak of every measured run, in order.
    pub peak_threads_runs: Vec<usize>,
    /// Median over runs of the peak number of items blocked at the same time
    /// (the warm-up included: the threads it left count in the run).
    pub peak_blocked: usize,
    /// The sum over CPUs of each CPU's own peak of blocked items (median of runs).
    pub peak_blocked_per_cpu_sum: usize,
    /// `cores + peak_blocked + 2`: the threads a concurrency-managed pool needs.
    pub thread_reference: usize,
    /// Where the CPUs' time went during the measured runs (summed).
    pub cpu: CpuSplit,
    /// This process's CPU time per item beyond the item's burn X, averaged over
    /// the measured runs (µs).
    pub overhead_cpu_us_per_item: f64,
    /// Every item of every run ran exactly once.
    pub exactly_once: bool,
}

/// Items inside their block: now and at the peak, overall and per CPU.
#[derive(Debug, Default)]
struct Blocked {
    now: AtomicUsize,
    peak: AtomicUsize,
    /// Per CPU the item blocked on: (now, peak).
    per_cpu: Vec<(AtomicUsize, AtomicUsize)>,
}

impl Blocked {
    fn new(nr_cpu_ids: usize) -> Blocked {
        Blocked {
            per_cpu: (0..nr_cpu_ids.max(1)).map(|_| Default::default()).collect(),
            ..Default::default()
        }
    }

    /// The sum over CPUs of each CPU's own peak: what per-CPU pools that keep
    /// their idle workers need (each pool's high-water mark, reached at its own time).
    fn per_cpu_peak_sum(&self) -> usize {
        self.per_cpu.iter().map(|c| c.1.load(Ordering::Acquire)).sum()
    }
}

fn mixed_job(x: Duration, y: Duration, blocking: Blocking, blocked: Arc<Blocked>) -> MakeJob {
    Arc::new(move |i, b| {
        let (b, blocked) = (b.clone(), blocked.clone());
        Box::new(move || {
            burn(x);
            if !y.is_zero() {
                let now = blocked.now.fetch_add(1, Ordering::AcqRel) + 1;
                blocked.peak.fetch_max(now, Ordering::AcqRel);
                let cpu = cmwq::debug::current_cpu().unwrap_or(0).min(blocked.per_cpu.len() - 1);
                let (c_now, c_peak) = &blocked.per_cpu[cpu];
                c_peak.fetch_max(c_now.fetch_add(1, Ordering::AcqRel) + 1, Ordering::AcqRel);
                blocking.block(y);
                c_now.fetch_sub(1, Ordering::AcqRel);
                blocked.now.fetch_sub(1, Ordering::AcqRel);
            }
            b.done(i);
        })
    })
}

pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<Vec<MixedRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let kinds = ctx.kinds.clone();
    let nr_cpu_ids = ctx.cpus.iter().max().map_or(1, |&c| c + 1);
    for feed in ctx.feeds(false) {
        let label = feed.label(cores);
        let mut tally = PoolTally::start();
        rows.extend(run_feed(ctx, feed, &label, &mut tally, &kinds, nr_cpu_ids)?);
        ctx.pools_done(tally, "mixed", Some(&label));
    }
    Ok(rows)
}

/// The rows of one feed: every X:Y on every executor.
fn run_feed(
    ctx: &mut Ctx<'_>,
    feed: Feed,
    label: &str,
    tally: &mut PoolTally,
    kinds: &[ExecutorKind],
    nr_cpu_ids: usize,
) -> Result<Vec<MixedRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let (n, x) = (ctx.cfg.mixed_items, ctx.cfg.mixed_burn);
    let hz = procfs::user_hz();
    let rounds = ctx.rounds();
    for &m in &ctx.cfg.mixed_block_ratios {
        let y = x * m;
        let b = Bounds::new(n, x, y, cores);
        let timeout = ctx.cfg.batch_timeout(n, x + y);
        let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
        for round in 1..=rounds {
            for k in round_order(kinds.len(), round) {
                let (cell, kind) = (&mut cells[k], kinds[k]);
                let other = ctx.prepare();
                let pools = ctx.pools_before(kind);
                let exec = ctx.build(kind)?;
                let blocking = kind.blocking();
                let blocked = Arc::new(Blocked::new(nr_cpu_ids));
                let warm = warmup_items(ctx.cfg, n);
                if warm > 0 {
                    let make = mixed_job(x, y, blocking, blocked.clone());
                    let (batch, _) = ctx.timed_batch(&exec, feed, warm, make, timeout)?;
                    cell.batches.push(batch);
                }
                let make = mixed_job(x, y, blocking, blocked.clone());
                ctx.sampler.open();
                let m0 = CpuMark::now(&ctx.cpus);
                let res = ctx.timed_batch(&exec, feed, n, make, timeout);
                let m1 = CpuMark::now(&ctx.cpus);
                let p = ctx.sampler.close();
                let (batch, ns) = res?;
                drop(exec);
                ctx.pools_after(tally, kind, pools);
                let threads = ctx.threads_of(kind, p, other);
                let mut one = CpuAccount::default();
                one.add(&m0, &m1);
                let split = one.split(cores, hz);
                let ms = ns as f64 / 1e6;
                let bp = blocked.peak.load(Ordering::Acquire);
                ctx.say(&format!(
                    "[mixed 1:{m}, {label}] {} ({}): run {round}/{rounds}: {ms:.1} ms = {:.2}x ideal, {threads} threads, \
                     {bp} blocked at once; CPUs: {:.0}% ours, {:.0}% others, {:.0}% idle, {:.0}% steal",
                    kind.name(),
                    blocking.as_str(),
                    ms / b.ideal_ms,
                    split.ours * 100.0,
                    split.others * 100.0,
                    split.idle * 100.0,
                    split.steal * 100.0,
                ));
                cell.batches.push(batch);
                cell.acct.add(&m0, &m1);
                cell.values.push(ms);
                cell.threads.push(threads);
                cell.blocked.push(bp);
                cell.blocked_per_cpu.push(blocked.per_cpu_peak_sum());
            }
        }
        for (cell, &kind) in cells.iter().zip(kinds) {
            let ok = ctx.exactly_once(&format!("mixed 1:{m}, {label}, {}", kind.name()), &cell.batches);
            let med = median(&cell.values).unwrap_or(0.0);
            let (lo, hi) = min_max(&cell.values);
            let peak_blocked = median_usize(&cell.blocked);
            let cpu = cell.acct.split(cores, hz);
            let runs = cell.values.len().max(1) as f64;
            let overhead =
                (cell.acct.ours().as_secs_f64() / runs - x.as_secs_f64() * n as f64) / n.max(1) as f64;
            rows.push(MixedRow {
                executor: kind.name().into(),
                blocking: kind.blocking().as_str().into(),
                producers: feed.count(),
                producer_mode: feed.mode().name().into(),
                producers_label: label.into(),
                ratio: format!("1:{m}"),
                block_mult: m,
                burn_us: x.as_micros() as u64,
                block_us: y.as_micros() as u64,
                items: n,
                runs: cell.values.len(),
                makespan_ms: med,
                makespan_min_ms: lo,
                makespan_max_ms: hi,
                makespans_ms: cell.values.clone(),
                bounds: b,
                ratio_to_ideal: med / b.ideal_ms.max(1e-9),
                ratio_to_tight: med / b.tight_ms.max(1e-9),
                ratio_to_available: med / b.ideal_given(1.0 - cpu.others - cpu.steal).max(1e-9),
                peak_threads: median_usize(&cell.threads),
                peak_threads_max: cell.threads.iter().copied().max().unwrap_or(0),
                peak_threads_runs: cell.threads.clone(),
                peak_blocked,
                peak_blocked_per_cpu_sum: median_usize(&cell.blocked_per_cpu),
                thread_reference: cores + peak_blocked + 2,
                cpu,
                overhead_cpu_us_per_item: overhead * 1e6,
                exactly_once: ok,
            });
        }
    }
    Ok(rows)
}

/// A `-plain` executor's makespan beside its announced twin's (`cmwq-bound-plain`
/// beside `cmwq-bound`), for the same producers and X:Y.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlainPair<'a> {
    /// The producers, in words.
    pub(crate) producers: &'a str,
    /// The announced executor (`cmwq-bound`).
    pub(crate) queue: &'a str,
    /// X:Y.
    pub(crate) ratio: &'a str,
    /// Its makespan, ms.
    pub(crate) announced_ms: f64,
    /// The plain twin's makespan, ms.
    pub(crate) plain_ms: f64,
}

impl PlainPair<'_> {
    /// plain / announced, safe against a zero makespan.
    pub(crate) fn over(&self) -> f64 {
        over(self.plain_ms, self.announced_ms)
    }
}

/// Every `-plain` row beside its announced twin of the same producers and X:Y,
/// in row order. Empty if mixed ran no such pair.
pub(crate) fn plain_vs_announced(rows: &[MixedRow]) -> Vec<PlainPair<'_>> {
    rows.iter()
        .filter_map(|p| {
            let twin = ExecutorKind::from_name(&p.executor)?.announced_twin()?;
            let a = rows.iter().find(|a| {
                a.executor == twin.name() && a.ratio == p.ratio && a.producers_label == p.producers_label
            })?;
            Some(PlainPair {
                producers: &p.producers_label,
                queue: &a.executor,
                ratio: &p.ratio,
                announced_ms: a.makespan_ms,
                plain_ms: p.makespan_ms,
            })
        })
        .collect()
}

/// plain / announced, safe against a zero makespan.
fn over(plain: f64, announced: f64) -> f64 {
    plain / announced.max(1e-9)
}

/// The distinct values of `key` over `items`, in order of first appearance.
fn distinct<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> &'a str) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for k in items.iter().map(key) {
        if !v.contains(&k) {
            v.push(k);
        }
    }
    v
}

/// The cmwq queues the headline names, in order: what a program gets with no
/// flags, and the per-CPU queue.
const HEADLINE_CMWQ: [&str; 2] = ["cmwq-default", "cmwq-bound"];

/// Per producers and X:Y, the default and per-CPU queues against the ideal and
/// their thread reference; then per producers and queue, plain against
/// announced blocking.
pub(crate) fn headline(rows: &[MixedRow]) -> Vec<String> {
    let mut v = Vec::new();
    let pairs = plain_vs_announced(rows);
    for label in distinct(rows, |r| &r.producers_label) {
        let of: Vec<&MixedRow> = rows.iter().filter(|r| r.producers_label == label).collect();
        for ratio in distinct(&of, |r| &r.ratio) {
            let parts: Vec<String> = HEADLINE_CMWQ
                .iter()
                .filter_map(|e| of.iter().find(|r| r.ratio == ratio && r.executor == *e))
                .map(|r| {
                    format!(
                        "{} {:.1} ms = {:.2}x ideal, peak threads {} vs cores+blocked+2 = {}",
                        r.executor, r.makespan_ms, r.ratio_to_ideal, r.peak_threads, r.thread_reference
                    )
                })
                .collect();
            if !parts.is_empty() {
                v.push(format!("mixed {ratio}, {label}: {} (target 1.15x)", parts.join("; ")));
            }
        }
        let mine: Vec<&PlainPair<'_>> = pairs.iter().filter(|p| p.producers == label).collect();
        for queue in distinct(&mine, |p| p.queue) {
            let parts: Vec<String> = mine
                .iter()
                .filter(|p| p.queue == queue)
                .map(|p| format!("{} {:.2}x", p.ratio, p.over()))
                .collect();
            v.push(format!(
                "mixed, makespan {queue}-plain / {queue} (unannotated / announced), {label}: {}",
                parts.join(", ")
            ));
        }
    }
    v
}

/// The legend of the first full table (the later ones say only who produced).
const LEGEND: &str = "ideal = max(N·X / cores, X + Y); tight = max(N·X / cores + Y, X + Y); /avail: against \
    the ideal on the CPU share other processes and the hypervisor left. Peak threads: `Threads:` sampled \
    every ~1 ms, less the threads of other executors and the harness (its producers included). Peak \
    blocked: items inside their block at once, warm-up included; Σ per-CPU: each CPU's own peak, summed. \
    CPU %: `/proc/stat` over the runs.";

/// Who submitted the items of a table, for its legend.
fn producers_legend(label: &str) -> &'static str {
    if label.contains("unpinned") {
        "Producers: one harness thread that nobody pinned (no affinity call) queues every item."
    } else {
        "Producers: one harness thread pinned to each CPU, each queueing its share."
    }
}

pub(crate) fn markdown(rows: &[MixedRow]) -> String {
    let f1 = |x: f64| format!("{x:.1}");
    let f2 = |x: f64| format!("{x:.2}");
    let mut s = String::new();
    for (i, label) in distinct(rows, |r| &r.producers_label).into_iter().enumerate() {
        let table: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r.producers_label == label)
            .map(|r| {
                let c = &r.cpu;
                vec![
                    r.ratio.clone(),
                    format!("`{}`", r.executor),
                    r.blocking.clone(),
                    r.items.to_string(),
                    f1(r.makespan_ms),
                    f1(r.bounds.ideal_ms),
                    f2(r.ratio_to_ideal),
                    f2(r.ratio_to_tight),
                    f2(r.ratio_to_available),
                    r.peak_threads.to_string(),
                    r.peak_blocked.to_string(),
                    r.thread_reference.to_string(),
                    r.peak_blocked_per_cpu_sum.to_string(),
                    f1(r.overhead_cpu_us_per_item),
                    format!(
                        "{:.0}/{:.0}/{:.0}/{:.0}",
                        c.ours * 100.0,
                        c.others * 100.0,
                        c.idle * 100.0,
                        c.steal * 100.0
                    ),
                    yes(r.exactly_once),
                ]
            })
            .collect();
        let legend = if i == 0 {
            format!("{LEGEND} {}", producers_legend(label))
        } else {
            format!("Columns as above. {}", producers_legend(label))
        };
        s += &section(
            &format!("mixed: items burn X then block Y, {label} (median of runs)"),
            &[
                "X:Y",
                "executor",
                "blocking",
                "items",
                "makespan ms",
                "ideal ms",
                "/ideal",
                "/tight",
                "/avail",
                "peak threads",
                "peak blocked",
                "cores+blocked+2",
                "Σ per-CPU peak blocked",
                "our CPU beyond X, µs/item",
                "CPU % ours/others/idle/steal",
                "exactly once",
            ],
            &table,
            &legend,
        );
    }
    s += &summary(rows);
    let pa: Vec<Vec<String>> = plain_vs_announced(rows)
        .into_iter()
        .map(|p| {
            vec![
                p.producers.into(),
                format!("`{}`", p.queue),
                p.ratio.into(),
                f1(p.announced_ms),
                f1(p.plain_ms),
                f2(p.over()),
            ]
        })
        .collect();
    s += &section(
        "mixed: unannotated against announced blocking (makespans, ms)",
        &[
            "producers",
            "queue",
            "X:Y",
            "announced (`cmwq::sleep`)",
            "plain (`-plain` twin)",
            "plain / announced",
        ],
        &pa,
        "",
    );
    s
}

/// The figures that matter side by side: per producers and executor, /ideal and
/// peak threads at each X:Y. Empty when there are no rows.
fn summary(rows: &[MixedRow]) -> String {
    let ratios = distinct(rows, |r| &r.ratio);
    let mut lines: Vec<(&str, &str, &str)> = Vec::new();
    for r in rows {
        let k = (r.producers_label.as_str(), r.executor.as_str(), r.blocking.as_str());
        if !lines.contains(&k) {
            lines.push(k);
        }
    }
    let table: Vec<Vec<String>> = lines
        .iter()
        .map(|&(label, executor, blocking)| {
            let mut v = vec![label.to_string(), format!("`{executor}`"), blocking.to_string()];
            v.extend(ratios.iter().map(|ratio| {
                rows.iter()
                    .find(|r| r.producers_label == label && r.executor == executor && r.ratio == *ratio)
                    .map_or_else(|| "–".into(), |r| format!("{:.2} / {}", r.ratio_to_ideal, r.peak_threads))
            }));
            v
        })
        .collect();
    let heads: Vec<String> = ratios.iter().map(|r| format!("{r} /ideal / threads")).collect();
    let mut header = vec!["producers", "executor", "blocking"];
    header.extend(heads.iter().map(String::as_str));
    section(
        "mixed: /ideal and peak threads by producers",
        &header,
        &table,
        "Each cell: median makespan / ideal, then peak threads (the full tables above have the rest).",
    )
}

/// A row for tests: `executor` (blocking plain if it ends in `-plain`) from
/// `producers` at `ratio` (`1:m`), one run of one item taking `makespan_ms`.
#[cfg(test)]
pub(crate) fn test_row(executor: &str, producers: &str, ratio: &str, makespan_ms: f64) -> MixedRow {
    let plain = executor.ends_with("-plain");
    let us = Duration::from_micros;
    MixedRow {
        executor: executor.into(),
        blocking: if plain { "plain" } else { "announced" }.into(),
        producers: 1,
        producer_mode: if producers.contains("unpinned") { "unpinned" } else { "pinned" }.into(),
        producers_label: producers.into(),
        ratio: ratio.into(),
        block_mult: ratio.strip_prefix("1:").and_then(|m| m.parse().ok()).unwrap_or(1),
        burn_us: 300,
        block_us: 300,
        items: 1,
        runs: 1,
        makespan_ms,
        makespan_min_ms: makespan_ms,
        makespan_max_ms: makespan_ms,
        makespans_ms: vec![makespan_ms],
        bounds: Bounds::new(1, us(300), us(300), 2),
        ratio_to_ideal: 1.0,
        ratio_to_tight: 1.0,
        ratio_to_available: 1.0,
        peak_threads: 1,
        peak_threads_max: 1,
        peak_threads_runs: vec![1],
        peak_blocked: 0,
        peak_blocked_per_cpu_sum: 0,
        thread_reference: 3,
        cpu: Default::default(),
        overhead_cpu_us_per_item: 0.0,
        exactly_once: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(x: u64) -> Duration {
        Duration::from_micros(x)
    }

    #[test]
    fn bounds_cpu_bound_and_chain_bound() {
        // 600 items of 300 µs on 2 CPUs: 90 ms of CPU per core.
        let b = Bounds::new(600, us(300), us(0), 2);
        assert!((b.ideal_ms - 90.0).abs() < 1e-9);
        assert!((b.tight_ms - 90.0).abs() < 1e-9);
        // Blocking 4.8 ms: the ideal stays CPU bound; the tight one adds the tail.
        let b = Bounds::new(600, us(300), us(4_800), 2);
        assert!((b.ideal_ms - 90.0).abs() < 1e-9);
        assert!((b.tight_ms - 94.8).abs() < 1e-9);
        // One item: the chain dominates both.
        let b = Bounds::new(1, us(300), us(1_200), 4);
        assert!((b.ideal_ms - 1.5).abs() < 1e-9);
        assert!((b.tight_ms - 1.5).abs() < 1e-9);
        // Few items with long blocks: chain-bound ideal.
        let b = Bounds::new(4, us(100), us(10_000), 2);
        assert!((b.ideal_ms - 10.1).abs() < 1e-9);
        assert!((b.tight_ms - 10.2).abs() < 1e-9);
        let z = Bounds::new(0, us(100), us(100), 2);
        assert_eq!((z.ideal_ms, z.tight_ms), (0.0, 0.0));
        // Half the CPU time taken by others: the CPU part doubles, the chain stays.
        let b = Bounds::new(600, us(300), us(4_800), 2);
        assert!((b.ideal_given(0.5) - 180.0).abs() < 1e-9);
        assert!((b.ideal_given(1.0) - b.ideal_ms).abs() < 1e-9);
        assert!((b.ideal_given(0.0) - 1800.0).abs() < 1e-9); // clamped at 5 %
        assert!((b.ideal_given(f64::NAN) - 90.0).abs() < 1e-9);
        assert!((Bounds::new(2, us(300), us(4_800), 2).ideal_given(0.5) - 5.1).abs() < 1e-9);
        // Zero cores is treated as one.
        assert!((Bounds::new(10, us(100), us(0), 0).ideal_ms - 1.0).abs() < 1e-9);
    }

    fn row(executor: &str, ratio: &str, makespan_ms: f64) -> MixedRow {
        test_row(executor, "1 pinned producer per CPU", ratio, makespan_ms)
    }

    #[test]
    fn plain_vs_announced_pairs_by_ratio() {
        let (a, p) = (row("cmwq-bound", "1:1", 16.5), row("cmwq-bound-plain", "1:1", 33.0));
        let other = row("cmwq-bound", "1:4", 20.0);
        assert!(plain_vs_announced(std::slice::from_ref(&a)).is_empty(), "no plain row: no pair");
        let rows = [a.clone(), p.clone(), other];
        let v = plain_vs_announced(&rows);
        let want = PlainPair {
            producers: "1 pinned producer per CPU",
            queue: "cmwq-bound",
            ratio: "1:1",
            announced_ms: 16.5,
            plain_ms: 33.0,
        };
        assert_eq!(v, [want], "paired by ratio; the 1:4 row has no partner");
        assert!((v[0].over() - 2.0).abs() < 1e-9);
        assert!(over(33.0, 0.0).is_finite(), "a zero makespan does not divide by zero");
    }

    #[test]
    fn plain_vs_announced_pairs_by_producers_and_queue() {
        let u = "1 unpinned producer";
        let rows = [
            row("cmwq-default", "1:1", 10.0),
            row("cmwq-bound", "1:1", 11.0),
            row("cmwq-bound-plain", "1:1", 22.0),
            test_row("cmwq-default", u, "1:1", 12.0),
            test_row("cmwq-default-plain", u, "1:1", 36.0),
            test_row("cmwq-bound-plain", u, "1:1", 50.0), // its twin did not run unpinned
        ];
        let v: Vec<(&str, &str, f64)> =
            plain_vs_announced(&rows).iter().map(|p| (p.producers, p.queue, p.over())).collect();
        assert_eq!(v, [("1 pinned producer per CPU", "cmwq-bound", 2.0), (u, "cmwq-default", 3.0)]);
    }

    #[test]
    fn headline_and_tables_per_producers() {
        let u = "1 unpinned producer";
        let rows = [
            row("cmwq-bound", "1:0", 10.0),
            row("cmwq-bound-plain", "1:0", 10.0),
            row("cmwq-bound", "1:4", 11.0),
            row("cmwq-bound-plain", "1:4", 22.0),
            test_row("cmwq-default", u, "1:0", 12.0),
            test_row("cmwq-bound", u, "1:0", 13.0),
            test_row("rayon", u, "1:0", 13.0),
            test_row("cmwq-default", u, "1:4", 14.0),
            test_row("cmwq-default-plain", u, "1:4", 28.0),
        ];
        let h = headline(&rows);
        assert_eq!(h.len(), 6, "{h:#?}");
        assert!(h[0].starts_with(
            "mixed 1:0, 1 pinned producer per CPU: cmwq-bound 10.0 ms = 1.00x ideal, peak threads 1"
        ));
        assert!(h[1].starts_with("mixed 1:4, 1 pinned producer per CPU: cmwq-bound 11.0 ms"));
        assert_eq!(
            h[2],
            "mixed, makespan cmwq-bound-plain / cmwq-bound (unannotated / announced), 1 pinned producer \
                          per CPU: 1:0 1.00x, 1:4 2.00x"
        );
        assert!(h[3].starts_with("mixed 1:0, 1 unpinned producer: cmwq-default 12.0 ms"));
        assert!(h[3].contains("; cmwq-bound 13.0 ms") && h[3].ends_with("(target 1.15x)"));
        assert!(h[4].starts_with("mixed 1:4, 1 unpinned producer: cmwq-default 14.0 ms"));
        assert!(h[5].starts_with("mixed, makespan cmwq-default-plain / cmwq-default (unannotated / announced), 1 unpinned producer: 1:4 2.00x"));
        let md = markdown(&rows);
        let titles: Vec<&str> = md.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            titles,
            [
                "## mixed: items burn X then block Y, 1 pinned producer per CPU (median of runs)",
                "## mixed: items burn X then block Y, 1 unpinned producer (median of runs)",
                "## mixed: /ideal and peak threads by producers",
                "## mixed: unannotated against announced blocking (makespans, ms)",
            ]
        );
        assert!(
            md.contains("| producers | executor | blocking | 1:0 /ideal / threads | 1:4 /ideal / threads |")
        );
        assert!(md.contains("| 1 unpinned producer | `rayon` | announced | 1.00 / 1 | – |"), "{md}");
        assert!(md.contains("| 1 unpinned producer | `cmwq-default` | 1:4 | 14.0 | 28.0 | 2.00 |"));
        assert!(md.contains("Producers: one harness thread that nobody pinned"));
        assert!(markdown(&[]).is_empty());
    }
}
