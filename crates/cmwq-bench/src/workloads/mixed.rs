//! mixed: items burn X of CPU then block Y, at several X:Y; makespan against
//! the ideal bound, peak threads against the threads a concurrency-managed
//! pool needs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cpu::burn;
use crate::ctx::{warmup_items, Cell, Ctx, MakeJob};
use crate::error::Error;
use crate::executors::Blocking;
use crate::fmt::{section, yes};
use crate::procfs::{self, CpuAccount, CpuMark, CpuSplit};
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
    let (n, x) = (ctx.cfg.mixed_items, ctx.cfg.mixed_burn);
    let hz = procfs::user_hz();
    let rounds = ctx.rounds();
    let kinds = ctx.kinds.clone();
    let nr_cpu_ids = ctx.cpus.iter().max().map_or(1, |&c| c + 1);
    for &m in &ctx.cfg.mixed_block_ratios {
        let y = x * m;
        let b = Bounds::new(n, x, y, cores);
        let timeout = ctx.cfg.batch_timeout(n, x + y);
        let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
        for round in 1..=rounds {
            for (cell, &kind) in cells.iter_mut().zip(&kinds) {
                let other = ctx.prepare();
                let exec = ctx.build(kind)?;
                let blocking = kind.blocking();
                let blocked = Arc::new(Blocked::new(nr_cpu_ids));
                let warm = warmup_items(ctx.cfg, n);
                if warm > 0 {
                    let make = mixed_job(x, y, blocking, blocked.clone());
                    let (batch, _) = ctx.timed_batch(&exec, cores, warm, make, timeout)?;
                    cell.batches.push(batch);
                }
                let make = mixed_job(x, y, blocking, blocked.clone());
                ctx.sampler.open();
                let m0 = CpuMark::now(&ctx.cpus);
                let res = ctx.timed_batch(&exec, cores, n, make, timeout);
                let m1 = CpuMark::now(&ctx.cpus);
                let p = ctx.sampler.close();
                let (batch, ns) = res?;
                drop(exec);
                let threads = ctx.threads_of(kind, p, other);
                let mut one = CpuAccount::default();
                one.add(&m0, &m1);
                let split = one.split(cores, hz);
                let ms = ns as f64 / 1e6;
                let bp = blocked.peak.load(Ordering::Acquire);
                ctx.say(&format!(
                    "[mixed 1:{m}] {} ({}): run {round}/{rounds}: {ms:.1} ms = {:.2}x ideal, {threads} threads, \
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
        for (cell, &kind) in cells.iter().zip(&kinds) {
            let ok = ctx.exactly_once(&format!("mixed 1:{m} {}", kind.name()), &cell.batches);
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

/// `cmwq-bound-plain` beside `cmwq-bound`, one X:Y: `(ratio, announced ms, plain ms)`.
/// Empty if mixed did not run both.
pub(crate) fn plain_vs_announced(rows: &[MixedRow]) -> Vec<(&str, f64, f64)> {
    rows.iter()
        .filter(|r| r.executor == "cmwq-bound")
        .filter_map(|a| {
            let p = rows.iter().find(|r| r.executor == "cmwq-bound-plain" && r.ratio == a.ratio)?;
            Some((a.ratio.as_str(), a.makespan_ms, p.makespan_ms))
        })
        .collect()
}

/// plain / announced, safe against a zero makespan.
fn over(plain: f64, announced: f64) -> f64 {
    plain / announced.max(1e-9)
}

/// Per X:Y, cmwq-bound against the ideal and its thread reference; then plain
/// against announced blocking.
pub(crate) fn headline(rows: &[MixedRow]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .filter(|r| r.executor == "cmwq-bound")
        .map(|r| {
            format!(
                "mixed {}: cmwq-bound {:.1} ms = {:.2}x ideal (target 1.15x); peak threads {} vs \
                 cores+blocked+2 = {}",
                r.ratio, r.makespan_ms, r.ratio_to_ideal, r.peak_threads, r.thread_reference
            )
        })
        .collect();
    let pa = plain_vs_announced(rows);
    if !pa.is_empty() {
        let parts: Vec<String> = pa.iter().map(|(r, a, p)| format!("{r} {:.2}x", over(*p, *a))).collect();
        v.push(format!(
            "mixed, makespan cmwq-bound-plain / cmwq-bound (unannotated / announced): {}",
            parts.join(", ")
        ));
    }
    v
}

pub(crate) fn markdown(rows: &[MixedRow]) -> String {
    let f1 = |x: f64| format!("{x:.1}");
    let f2 = |x: f64| format!("{x:.2}");
    let table: Vec<Vec<String>> = rows
        .iter()
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
    let mut s = section(
        "mixed: items burn X then block Y (median of runs)",
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
        "ideal = max(N·X / cores, X + Y); tight = max(N·X / cores + Y, X + Y); /avail: against the ideal on \
         the CPU share other processes and the hypervisor left. Peak threads: `Threads:` sampled every \
         ~1 ms, less the threads of other executors. Peak blocked: items inside their block at once, \
         warm-up included; Σ per-CPU: each CPU's own peak, summed. CPU %: `/proc/stat` over the runs. \
         Producers: one harness thread per CPU, pinned; there is no unpinned producer.",
    );
    let pa: Vec<Vec<String>> = plain_vs_announced(rows)
        .into_iter()
        .map(|(r, a, p)| vec![r.into(), f1(a), f1(p), f2(over(p, a))])
        .collect();
    s += &section(
        "mixed: unannotated against announced blocking (makespans, ms)",
        &["X:Y", "`cmwq-bound` (announced)", "`cmwq-bound-plain` (plain)", "plain / announced"],
        &pa,
        "",
    );
    s
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
        MixedRow {
            executor: executor.into(),
            blocking: "announced".into(),
            ratio: ratio.into(),
            block_mult: 1,
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

    #[test]
    fn plain_vs_announced_pairs_by_ratio() {
        let (a, p) = (row("cmwq-bound", "1:1", 16.5), row("cmwq-bound-plain", "1:1", 33.0));
        let other = row("cmwq-bound", "1:4", 20.0);
        assert!(plain_vs_announced(std::slice::from_ref(&a)).is_empty(), "no plain row: no pair");
        let rows = [a.clone(), p.clone(), other];
        let v = plain_vs_announced(&rows);
        assert_eq!(v, [("1:1", 16.5, 33.0)], "paired by ratio; the 1:4 row has no partner");
        assert!((over(v[0].2, v[0].1) - 2.0).abs() < 1e-9);
        assert!(over(33.0, 0.0).is_finite(), "a zero makespan does not divide by zero");
    }
}
