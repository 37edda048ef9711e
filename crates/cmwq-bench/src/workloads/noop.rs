//! noop: throughput of no-op items, one producer and one per CPU.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::ctx::{warmup_items, Cell, Ctx, MakeJob};
use crate::error::Error;
use crate::executors::ExecutorKind;
use crate::fmt::{rate, section, yes};
use crate::stats::{median, min_max};

/// noop: throughput of no-op items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoopRow {
    /// Executor.
    pub executor: String,
    /// Producer threads (1, or one per CPU; each pinned to its CPU).
    pub producers: usize,
    /// Items per run.
    pub items: usize,
    /// Measured runs.
    pub runs: usize,
    /// Median items per second.
    pub items_per_s: f64,
    /// Median ns per item.
    pub ns_per_item: f64,
    /// Slowest and fastest run, items per second.
    pub items_per_s_min: f64,
    /// See `items_per_s_min`.
    pub items_per_s_max: f64,
    /// Every measured run, in order.
    pub items_per_s_runs: Vec<f64>,
    /// Every item of every run ran exactly once.
    pub exactly_once: bool,
}

pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<Vec<NoopRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let producer_counts = if cores > 1 { vec![1, cores] } else { vec![1] };
    let kinds = ctx.non_blocking_kinds();
    let rounds = ctx.rounds();
    let cfg = ctx.cfg;
    let items_of =
        |kind| if kind == ExecutorKind::ThreadPerItem { cfg.noop_thread_items } else { cfg.noop_items };
    for &np in &producer_counts {
        let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
        for round in 1..=rounds {
            for (cell, &kind) in cells.iter_mut().zip(&kinds) {
                ctx.prepare();
                let exec = ctx.build(kind)?;
                let items = items_of(kind);
                let timeout = ctx.cfg.batch_timeout(items, Duration::from_micros(100));
                let make: MakeJob = Arc::new(|i, b| {
                    let b = b.clone();
                    Box::new(move || b.done(i))
                });
                let warm = warmup_items(ctx.cfg, items);
                if warm > 0 {
                    let (batch, _) = ctx.timed_batch(&exec, np, warm, make.clone(), timeout)?;
                    cell.batches.push(batch);
                }
                let (batch, ns) = ctx.timed_batch(&exec, np, items, make, timeout)?;
                drop(exec);
                let rate = items as f64 / (ns.max(1) as f64 / 1e9);
                ctx.say(&format!(
                    "[noop, {np} producer(s)] {}: run {round}/{rounds}: {:.1} ms, {}",
                    kind.name(),
                    ns as f64 / 1e6,
                    crate::fmt::rate(rate)
                ));
                cell.batches.push(batch);
                cell.values.push(rate);
            }
        }
        for (cell, &kind) in cells.iter().zip(&kinds) {
            let ok = ctx.exactly_once(&format!("noop {}", kind.name()), &cell.batches);
            let med = median(&cell.values).unwrap_or(0.0);
            let (lo, hi) = min_max(&cell.values);
            rows.push(NoopRow {
                executor: kind.name().into(),
                producers: np,
                items: items_of(kind),
                runs: cell.values.len(),
                items_per_s: med,
                ns_per_item: 1e9 / med.max(1e-9),
                items_per_s_min: lo,
                items_per_s_max: hi,
                items_per_s_runs: cell.values.clone(),
                exactly_once: ok,
            });
        }
    }
    Ok(rows)
}

/// Per producer count: cmwq-bound beside the fastest peer.
pub(crate) fn headline(rows: &[NoopRow]) -> Vec<String> {
    let mut counts: Vec<usize> = rows.iter().map(|r| r.producers).collect();
    counts.dedup();
    let mut v = Vec::new();
    for p in counts {
        let cmwq = rows.iter().find(|r| r.executor == "cmwq-bound" && r.producers == p);
        let best = rows
            .iter()
            .filter(|r| r.producers == p && !r.executor.starts_with("cmwq"))
            .max_by(|a, b| a.items_per_s.total_cmp(&b.items_per_s));
        if let (Some(c), Some(b)) = (cmwq, best) {
            v.push(format!(
                "noop, {p} producer(s): cmwq-bound {} vs best peer {} {} ({:.2}x)",
                rate(c.items_per_s),
                b.executor,
                rate(b.items_per_s),
                c.items_per_s / b.items_per_s
            ));
        }
    }
    v
}

pub(crate) fn markdown(rows: &[NoopRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.executor),
                r.producers.to_string(),
                r.items.to_string(),
                rate(r.items_per_s),
                format!("{:.1}", r.ns_per_item),
                format!("{} – {}", rate(r.items_per_s_min), rate(r.items_per_s_max)),
                yes(r.exactly_once),
            ]
        })
        .collect();
    section(
        "noop: throughput of no-op items (median of runs)",
        &["executor", "producers", "items/run", "median", "ns/item", "range", "exactly once"],
        &rows,
        "From the first submission until the last item finished. Producers are harness threads pinned \
         one per CPU: `1` is the one on the first CPU alone; there is no unpinned producer.",
    )
}
