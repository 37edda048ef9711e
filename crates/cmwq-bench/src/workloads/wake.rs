//! wake: queue-to-start latency on an idle executor, beside a bare park/unpark.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::ctx::{round_order, Cell, Ctx};
use crate::error::Error;
use crate::executors::{Batch, Executor, Job};
use crate::fmt::{section, yes};
use crate::stats::Latency;
use crate::sync::{now_ns, CountLatch, ParkedThread};

/// wake: queue-to-start latency on an idle executor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WakeRow {
    /// Executor, or a bare handoff (`park-unpark ...`).
    pub executor: String,
    /// Samples.
    pub samples: usize,
    /// Latency percentiles.
    #[serde(flatten)]
    pub latency: Latency,
    /// Every item ran exactly once.
    pub exactly_once: bool,
}

struct Samples {
    ns: Vec<u64>,
    batch: Batch,
}

/// The handoff loop of both kinds of sample: `n + warm` times, after the idle
/// `gap`, `fire(i)` hands job `i` over and returns the time just before the
/// handoff; the job stores its start in `t1` and counts `latch` down.
fn sample(
    what: &str,
    (n, warm, gap): (usize, usize, Duration),
    latch: &CountLatch,
    t1: &AtomicU64,
    mut fire: impl FnMut(usize) -> Result<u64, Error>,
) -> Result<Vec<u64>, Error> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + warm {
        std::thread::sleep(gap);
        latch.reset(1);
        let t0 = fire(i)?;
        if !latch.wait_timeout(Duration::from_secs(10)) {
            return Err(Error::Timeout(format!("wake {what}: sample {i} did not start in 10 s")));
        }
        if i >= warm {
            samples.push(t1.swap(0, Ordering::AcqRel).saturating_sub(t0));
        }
    }
    Ok(samples)
}

/// Runs on a producer thread: `n` handoffs to an idle executor.
fn exec_samples(exec: Arc<dyn Executor>, sizes: (usize, usize, Duration)) -> Result<Samples, Error> {
    let batch = Batch::new(sizes.0 + sizes.1);
    let (latch, t1) = (Arc::new(CountLatch::new()), Arc::new(AtomicU64::new(0)));
    let ns = sample(exec.name(), sizes, &latch, &t1, |i| {
        let (t1, l, b) = (t1.clone(), latch.clone(), batch.clone());
        let job: Job = Box::new(move || {
            t1.store(now_ns(), Ordering::Release);
            b.done(i);
            l.count_down();
        });
        let t0 = now_ns();
        exec.spawn(job).map(|()| t0)
    })?;
    batch.wait(exec.name(), Duration::from_secs(10))?;
    Ok(Samples { ns, batch })
}

/// Runs on a producer thread: `n` unparks of a bare thread pinned to `cpu`.
fn park_samples(cpu: usize, sizes: (usize, usize, Duration)) -> Result<Samples, Error> {
    let batch = Batch::new(sizes.0 + sizes.1);
    let (latch, t1, idx) =
        (Arc::new(CountLatch::new()), Arc::new(AtomicU64::new(0)), Arc::new(AtomicUsize::new(0)));
    let bare = {
        let (latch, t1, idx, batch) = (latch.clone(), t1.clone(), idx.clone(), batch.clone());
        ParkedThread::spawn(format!("bench-park/{cpu}"), cpu, move || {
            t1.store(now_ns(), Ordering::Release);
            batch.done(idx.load(Ordering::Acquire));
            latch.count_down();
        })
        .map_err(|e| Error::Executor(format!("park thread: {e}")))?
    };
    let ns = sample("park-unpark", sizes, &latch, &t1, |i| {
        idx.store(i, Ordering::Release);
        Ok(bare.fire())
    });
    drop(bare);
    Ok(Samples { ns: ns?, batch })
}

pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<Vec<WakeRow>, Error> {
    let rounds = ctx.rounds();
    let n = ctx.cfg.wake_samples.max(1).div_ceil(rounds);
    let sizes = (n, if ctx.cfg.warmup { 20 } else { 0 }, ctx.cfg.wake_gap);
    let kinds = ctx.non_blocking_kinds();
    let mut names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let mut parks = vec![("park-unpark (same CPU)", ctx.cpus[0])];
    if ctx.cores() > 1 {
        parks.push(("park-unpark (other CPU)", ctx.cpus[1]));
    }
    names.extend(parks.iter().map(|p| p.0));
    let mut cells: Vec<Cell> = names.iter().map(|_| Cell::default()).collect();
    for round in 1..=rounds {
        for i in round_order(names.len(), round) {
            let name = &names[i];
            let s = if let Some(&kind) = kinds.get(i) {
                ctx.prepare();
                let exec = ctx.build(kind)?;
                let e = exec.clone();
                ctx.producers.run_on(0, move || exec_samples(e, sizes))?
            } else {
                let cpu = parks[i - kinds.len()].1;
                ctx.producers.run_on(0, move || park_samples(cpu, sizes))?
            };
            let l = Latency::of_ns(&s.ns);
            ctx.say(&format!(
                "[wake] {name}: run {round}/{rounds}: {n} samples, p50 {:.1} µs, p99 {:.1} µs",
                l.p50_us, l.p99_us
            ));
            cells[i].samples.extend(s.ns);
            cells[i].batches.push(s.batch);
        }
    }
    let mut rows = Vec::new();
    for (cell, name) in cells.iter().zip(names) {
        let ok = ctx.exactly_once(&format!("wake {name}"), &cell.batches);
        let latency = Latency::of_ns(&cell.samples);
        rows.push(WakeRow { executor: name.into(), samples: cell.samples.len(), latency, exactly_once: ok });
    }
    Ok(rows)
}

/// cmwq-bound beside the peer with the lowest median (bare handoffs excluded).
pub(crate) fn headline(rows: &[WakeRow]) -> Vec<String> {
    let cmwq = rows.iter().find(|r| r.executor == "cmwq-bound");
    let best = rows
        .iter()
        .filter(|r| !r.executor.starts_with("cmwq") && !r.executor.starts_with("park"))
        .min_by(|a, b| a.latency.p50_us.total_cmp(&b.latency.p50_us));
    match (cmwq, best) {
        (Some(c), Some(b)) => vec![format!(
            "wake: cmwq-bound p50 {:.1} µs / p99 {:.1} µs vs best peer {} p50 {:.1} µs",
            c.latency.p50_us, c.latency.p99_us, b.executor, b.latency.p50_us
        )],
        _ => Vec::new(),
    }
}

pub(crate) fn markdown(rows: &[WakeRow], gap: Duration) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![format!("`{}`", r.executor), r.samples.to_string()];
            row.extend(r.latency.cells(1));
            row.push(yes(r.exactly_once));
            row
        })
        .collect();
    section(
        "wake: queue-to-start latency on an idle executor (µs)",
        &["executor", "samples", "p50", "p90", "p99", "max", "exactly once"],
        &rows,
        &format!(
            "From just before the spawn call to the item's first action, {} µs idle before each sample; \
             the producer is the harness thread pinned to the first CPU. park-unpark: a bare thread pinned \
             to that CPU or the next one, woken with `Thread::unpark`.",
            gap.as_micros()
        ),
    )
}
