//! noop: throughput of no-op items, from one pinned producer, one pinned
//! producer per CPU, and one unpinned producer.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::ctx::{round_order, warmup_items, Cell, Ctx, MakeJob};
use crate::error::Error;
use crate::executors::ExecutorKind;
use crate::fmt::{rate, section, yes};
use crate::pools::PoolTally;
use crate::stats::{median, min_max};

/// noop: throughput of no-op items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoopRow {
    /// Executor.
    pub executor: String,
    /// Producer threads (1, or one per CPU).
    pub producers: usize,
    /// `pinned` (each producer pinned to its CPU) or `unpinned` (one producer
    /// nobody pinned).
    pub producer_mode: String,
    /// The producers in words: `1 pinned producer`, `1 pinned producer per
    /// CPU`, `1 unpinned producer`.
    pub producers_label: String,
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
    let feeds = ctx.feeds(true);
    let kinds = ctx.non_blocking_kinds();
    let rounds = ctx.rounds();
    let cfg = ctx.cfg;
    let items_of =
        |kind| if kind == ExecutorKind::ThreadPerItem { cfg.noop_thread_items } else { cfg.noop_items };
    for &feed in &feeds {
        let label = feed.label(cores);
        let mut tally = PoolTally::start();
        let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
        for round in 1..=rounds {
            for k in round_order(kinds.len(), round) {
                let (cell, kind) = (&mut cells[k], kinds[k]);
                ctx.prepare();
                let pools = ctx.pools_before(kind);
                let exec = ctx.build(kind)?;
                let items = items_of(kind);
                let timeout = ctx.cfg.batch_timeout(items, Duration::from_micros(100));
                let make: MakeJob = Arc::new(|i, b| {
                    let b = b.clone();
                    Box::new(move || b.done(i))
                });
                let warm = warmup_items(ctx.cfg, items);
                if warm > 0 {
                    let (batch, _) = ctx.timed_batch(&exec, feed, warm, make.clone(), timeout)?;
                    cell.batches.push(batch);
                }
                let (batch, ns) = ctx.timed_batch(&exec, feed, items, make, timeout)?;
                drop(exec);
                ctx.pools_after(&mut tally, kind, pools);
                let rate = items as f64 / (ns.max(1) as f64 / 1e9);
                ctx.say(&format!(
                    "[noop, {label}] {}: run {round}/{rounds}: {:.1} ms, {}",
                    kind.name(),
                    ns as f64 / 1e6,
                    crate::fmt::rate(rate)
                ));
                cell.batches.push(batch);
                cell.values.push(rate);
            }
        }
        for (cell, &kind) in cells.iter().zip(&kinds) {
            let ok = ctx.exactly_once(&format!("noop, {label}, {}", kind.name()), &cell.batches);
            let med = median(&cell.values).unwrap_or(0.0);
            let (lo, hi) = min_max(&cell.values);
            rows.push(NoopRow {
                executor: kind.name().into(),
                producers: feed.count(),
                producer_mode: feed.mode().name().into(),
                producers_label: label.clone(),
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
        ctx.pools_done(tally, "noop", Some(&label));
    }
    Ok(rows)
}

/// The cmwq queues the headline names, in order.
const HEADLINE_CMWQ: [&str; 2] = ["cmwq-default", "cmwq-bound"];

/// Per producers: the default and per-CPU cmwq queues beside the fastest peer.
pub(crate) fn headline(rows: &[NoopRow]) -> Vec<String> {
    let mut labels: Vec<&str> = Vec::new();
    for r in rows {
        if !labels.contains(&r.producers_label.as_str()) {
            labels.push(&r.producers_label);
        }
    }
    let mut v = Vec::new();
    for p in labels {
        let of = |r: &&NoopRow| r.producers_label == p;
        let best = rows
            .iter()
            .filter(of)
            .filter(|r| !r.executor.starts_with("cmwq"))
            .max_by(|a, b| a.items_per_s.total_cmp(&b.items_per_s));
        let cmwq: Vec<String> = HEADLINE_CMWQ
            .iter()
            .filter_map(|name| rows.iter().filter(of).find(|r| r.executor == *name))
            .map(|c| {
                let vs =
                    best.map(|b| format!(" ({:.2}x)", c.items_per_s / b.items_per_s)).unwrap_or_default();
                format!("{} {}{vs}", c.executor, rate(c.items_per_s))
            })
            .collect();
        if let (false, Some(b)) = (cmwq.is_empty(), best) {
            v.push(format!(
                "noop, {p}: {} vs best peer {} {}",
                cmwq.join(", "),
                b.executor,
                rate(b.items_per_s)
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
                r.producers_label.clone(),
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
        "From the first submission until the last item finished. Pinned producers are harness threads \
         pinned one per CPU, each queueing its share (`1 pinned producer`: the first CPU's alone); \
         `1 unpinned producer`: one harness thread that nobody pinned (no affinity call) queues every \
         item, as most programs do.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(executor: &str, producers_label: &str, items_per_s: f64) -> NoopRow {
        NoopRow {
            executor: executor.into(),
            producers: 1,
            producer_mode: if producers_label.contains("unpinned") { "unpinned" } else { "pinned" }.into(),
            producers_label: producers_label.into(),
            items: 10,
            runs: 1,
            items_per_s,
            ns_per_item: 1e9 / items_per_s,
            items_per_s_min: items_per_s,
            items_per_s_max: items_per_s,
            items_per_s_runs: vec![items_per_s],
            exactly_once: true,
        }
    }

    #[test]
    fn headline_per_producers_label() {
        let (u, p) = ("1 unpinned producer", "1 pinned producer per CPU");
        let rows = [
            row("cmwq-default", p, 4e6),
            row("cmwq-bound", p, 5e6),
            row("mt-wq", p, 10e6),
            row("cmwq-default", u, 2e6),
            row("cmwq-bound", u, 3e6),
            row("rayon", u, 1e6),
            row("fixed-pool", u, 4e6),
        ];
        assert_eq!(
            headline(&rows),
            [
                "noop, 1 pinned producer per CPU: cmwq-default 4.00 M/s (0.40x), cmwq-bound 5.00 M/s (0.50x) \
                 vs best peer mt-wq 10.00 M/s",
                "noop, 1 unpinned producer: cmwq-default 2.00 M/s (0.50x), cmwq-bound 3.00 M/s (0.75x) vs best \
                 peer fixed-pool 4.00 M/s",
            ]
        );
        assert!(headline(&rows[..2]).is_empty(), "no peer: no line");
        assert_eq!(headline(&rows[1..3]).len(), 1, "one cmwq queue is enough");
    }
}
