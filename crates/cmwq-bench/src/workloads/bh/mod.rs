//! The `bh` workload: BH workqueues (`WqFlags::BH`, each CPU's items run in
//! queueing order by one pinned high-priority thread) beside per-CPU ones.
//!
//! - **latency**: queue-to-start latency of one item at a time on the first
//!   CPU, for `BH`, `BH | HIGHPRI`, `PERCPU` and `PERCPU | HIGHPRI` queues and
//!   a bare pinned thread woken with `unpark` (the floor), with that CPU idle
//!   and with it kept busy by spinning threads of the process (normal
//!   priority, pinned there). The producer is the harness thread pinned to
//!   that CPU (`queue_on` it), and the unpinned one (`queue`: its items run
//!   wherever it happens to be, as a program's would).
//! - **storm**: many CPU-bound items queued at once on that CPU while a
//!   CPU-bound thread pinned there notes its longest gap between two
//!   iterations (`storm.rs`), for `BH` and `PERCPU | HIGHPRI`.
//!
//! The queues are built with `Workqueue::builder`; a library that refuses
//! `WqFlags::BH` gives rows that say `n/a: <error>`.

mod latency;
mod queues;
mod spinners;
mod storm;

use std::time::Duration;

use cmwq::Workqueue;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::fmt::{section, yes};
use crate::producers::{Feed, ProducerMode};
use crate::stats::{median, Latency};
use latency::{Plan, Samples};
use queues::Kind;
use spinners::Spinners;

/// bh/latency: queue-to-start latency of one queue, CPU load and producer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BhLatencyRow {
    /// `BH`, `BH | HIGHPRI`, `PERCPU`, `PERCPU | HIGHPRI` or `bare pinned thread`.
    pub queue: String,
    /// `idle`, or `busy` (threads of the process spinning on the CPU).
    pub load: String,
    /// Threads spinning on the CPU (0 when idle).
    pub spinners: usize,
    /// `pinned` (the producer is pinned to the CPU and queues with `queue_on`
    /// it) or `unpinned` (nobody pinned it; it queues with `queue`).
    pub producer_mode: String,
    /// The producer in words (`1 pinned producer`, `1 unpinned producer`).
    pub producers_label: String,
    /// The target CPU: where the producer, the spinners and the bare thread are pinned.
    pub cpu: usize,
    /// Measured samples (fewer than asked when the time budget ran out).
    pub samples: usize,
    /// Latency percentiles over all rounds' samples; absent when n/a.
    #[serde(flatten)]
    pub latency: Option<Latency>,
    /// p50 and p99 over the bare pinned thread's of the same load and producer;
    /// `None` for an unpinned producer (its items mostly run on another CPU).
    pub p50_vs_bare: Option<f64>,
    /// See `p50_vs_bare`.
    pub p99_vs_bare: Option<f64>,
    /// Share of the samples that started on `cpu` (%).
    pub on_cpu_pct: Option<f64>,
    /// Why there are no figures (the library refused the queue), if so.
    pub na: Option<String>,
    /// Every hand-off started exactly once.
    pub exactly_once: bool,
}

/// bh/storm: the observer's longest gap during a storm on one queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BhStormRow {
    /// `BH` or `PERCPU | HIGHPRI`.
    pub queue: String,
    /// The CPU the items were queued on (`queue_on`) and the observer pinned to.
    pub cpu: usize,
    /// The CPU of the pinned harness thread that queued them (another one when
    /// there is one, so that queueing does not take the observer's CPU).
    pub queued_from_cpu: usize,
    /// Items per storm.
    pub items: usize,
    /// CPU each item spins (µs).
    pub item_spin_us: f64,
    /// Storms measured.
    pub runs: usize,
    /// The figures (medians over runs); absent when n/a.
    #[serde(flatten)]
    pub figures: Option<StormFigures>,
    /// Why there are no figures (the library refused the queue), if so.
    pub na: Option<String>,
    /// Every item of every storm ran exactly once.
    pub exactly_once: bool,
}

/// The figures of a storm row: medians over runs, and the worst gap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StormFigures {
    /// The observer's longest gap between two iterations during the storm (µs).
    pub longest_gap_us: f64,
    /// The largest of those over runs (µs).
    pub longest_gap_max_us: f64,
    /// The observer's longest gap in the quiet time before the storm (µs): the machine's noise.
    pub quiet_gap_us: f64,
    /// From the first item queued to the last one's end (ms).
    pub storm_ms: f64,
    /// The time queueing every item took (ms).
    pub queueing_ms: f64,
    /// The observer's CPU time during the storm, as a share of it (%).
    pub observer_cpu_pct: f64,
}

/// How long the storm's observer runs before the items are queued.
const QUIET: Duration = Duration::from_millis(20);

/// The two CPU loads of the latency rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Idle,
    Busy,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Busy => "busy",
        }
    }
}

/// One (producer, load, queue) row's samples over the rounds.
#[derive(Default)]
struct Cell {
    ns: Vec<u64>,
    fired: usize,
    ran: usize,
    on_target: usize,
}

impl Cell {
    fn add(&mut self, s: Samples) {
        self.on_target += s.on_target;
        self.fired += s.fired;
        self.ran += s.ran;
        self.ns.extend(s.ns);
    }
}

pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<(Vec<BhLatencyRow>, Vec<BhStormRow>), Error> {
    // Every queue once for the whole workload; the refused ones say why once.
    let built: Built = Kind::LATENCY.iter().map(|&k| (k, k.build())).collect();
    for (k, q) in &built {
        if let Err(e) = q {
            ctx.say(&format!("[bh] {}: n/a: {e}", k.name()));
        }
    }
    let latency = latency_rows(ctx, built.clone())?;
    let storm = storm_rows(ctx, built)?;
    Ok((latency, storm))
}

/// A queue, or why it has no figures.
type Built = Vec<(Kind, Result<Option<Workqueue>, String>)>;

/// While BH is new, a BH queue that fails a sample or a storm (an error, a
/// timeout) is reported in its rows and left out of the later rounds instead
/// of ending the whole benchmark; any other queue's failure ends it, as in the
/// other workloads.
fn fail_soft<T>(
    ctx: &mut Ctx<'_>,
    built: &mut Built,
    k: usize,
    r: Result<T, Error>,
) -> Result<Option<T>, Error> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(e) if matches!(built[k].0, Kind::Bh | Kind::BhHighpri) => {
            ctx.say(&format!("[bh] ERROR: {}: {e}; its rows say so", built[k].0.name()));
            built[k].1 = Err(format!("failed: {e}"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The latency rows: per producer mode and load, every queue, rounds interleaved.
fn latency_rows(ctx: &mut Ctx<'_>, mut built: Built) -> Result<Vec<BhLatencyRow>, Error> {
    let cfg = ctx.cfg;
    let rounds = ctx.rounds();
    let target = ctx.cpus[0];
    let plan = Plan {
        n: cfg.bh_samples.max(1).div_ceil(rounds),
        warm: if cfg.warmup { 20 } else { 0 },
        gap: cfg.wake_gap,
        budget: cfg.bh_budget / rounds as u32,
    };
    let groups: Vec<(ProducerMode, Load)> =
        ctx.modes.iter().flat_map(|&m| [(m, Load::Idle), (m, Load::Busy)]).collect();
    let mut cells: Vec<Vec<Cell>> =
        groups.iter().map(|_| built.iter().map(|_| Cell::default()).collect()).collect();
    for round in 1..=rounds {
        for (g, &(mode, load)) in groups.iter().enumerate() {
            // The spinners stay for the whole group: every queue sees the same load.
            let _busy = match load {
                Load::Busy => Some(Spinners::start(target, cfg.bh_spinners)?),
                Load::Idle => None,
            };
            for k in 0..built.len() {
                let name = built[k].0.name();
                let r = match built[k].1.clone() {
                    Err(_) => continue,
                    Ok(Some(wq)) => {
                        let on = (mode == ProducerMode::Pinned).then_some(target);
                        on_producer(ctx, mode, move || latency::queue_samples(&wq, name, on, target, plan))
                    }
                    Ok(None) => on_producer(ctx, mode, move || latency::bare_samples(target, plan)),
                };
                let Some(s) = fail_soft(ctx, &mut built, k, r)? else { continue };
                let l = Latency::of_ns(&s.ns);
                ctx.say(&format!(
                    "[bh] {name}, CPU {target} {}, {} producer: run {round}/{rounds}: {} samples, p50 {:.1} µs, \
                     p99 {:.1} µs",
                    load.name(),
                    mode.name(),
                    s.ns.len(),
                    l.p50_us,
                    l.p99_us
                ));
                cells[g][k].add(s);
            }
        }
    }
    let mut rows = Vec::new();
    for (g, &(mode, load)) in groups.iter().enumerate() {
        let bare = built.iter().position(|(k, _)| *k == Kind::Bare).map(|i| Latency::of_ns(&cells[g][i].ns));
        for ((kind, q), cell) in built.iter().zip(&cells[g]) {
            let feed = if mode == ProducerMode::Pinned { Feed::Pinned(1) } else { Feed::Unpinned };
            let mut row = BhLatencyRow {
                queue: kind.name().into(),
                load: load.name().into(),
                spinners: if load == Load::Busy { cfg.bh_spinners } else { 0 },
                producer_mode: mode.name().into(),
                producers_label: feed.label(ctx.cores()),
                cpu: target,
                samples: cell.ns.len(),
                latency: None,
                p50_vs_bare: None,
                p99_vs_bare: None,
                on_cpu_pct: None,
                na: None,
                exactly_once: true,
            };
            if let Err(e) = q {
                row.na = Some(e.clone());
                rows.push(row);
                continue;
            }
            let l = Latency::of_ns(&cell.ns);
            row.latency = Some(l);
            // An unpinned producer's items run on the CPU it is on, mostly not the
            // one the bare thread is pinned to: there is no floor to divide by.
            let bare = bare.filter(|_| mode == ProducerMode::Pinned);
            row.p50_vs_bare = bare.map(|b| l.p50_us / b.p50_us.max(1e-3));
            row.p99_vs_bare = bare.map(|b| l.p99_us / b.p99_us.max(1e-3));
            row.on_cpu_pct = Some(100.0 * cell.on_target as f64 / cell.ns.len().max(1) as f64);
            row.exactly_once = cell.fired == cell.ran;
            if !row.exactly_once {
                broken(
                    ctx,
                    &format!(
                        "bh {}, {}, {}: {} hand-offs, {} starts",
                        kind.name(),
                        load.name(),
                        mode.name(),
                        cell.fired,
                        cell.ran
                    ),
                );
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Runs `f` on the producer of `mode`: the one pinned to the first CPU, or the unpinned one.
fn on_producer<R: Send + 'static>(
    ctx: &Ctx<'_>,
    mode: ProducerMode,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    match mode {
        ProducerMode::Pinned => ctx.producers.run_on(0, f),
        ProducerMode::Unpinned => ctx.producers.run_unpinned(f),
    }
}

/// Records a broken invariant, as the other workloads do.
fn broken(ctx: &mut Ctx<'_>, what: &str) {
    ctx.say(&format!("ERROR: {what}"));
    ctx.notes.push(format!("INVARIANT BROKEN: {what}"));
}

/// The storm rows: each storm queue once per round, queued from the second
/// CPU's pinned producer (the first's on a one-CPU machine).
fn storm_rows(ctx: &mut Ctx<'_>, mut built: Built) -> Result<Vec<BhStormRow>, Error> {
    let cfg = ctx.cfg;
    let rounds = ctx.rounds();
    let (target, from) = (ctx.cpus[0], usize::from(ctx.cores() > 1));
    let sizes = (cfg.bh_storm_items, cfg.bh_storm_spin);
    let timeout = cfg.batch_timeout(cfg.bh_storm_items, cfg.bh_storm_spin);
    let index = |k: Kind| Kind::LATENCY.iter().position(|&b| b == k).expect("storm queues are built");
    let mut runs: Vec<Vec<storm::Storm>> = Kind::STORM.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, &kind) in Kind::STORM.iter().enumerate() {
            let Ok(Some(wq)) = built[index(kind)].1.clone() else { continue };
            let r = ctx.producers.run_on(from, move || storm::storm(&wq, target, sizes, QUIET, timeout));
            let Some(s) = fail_soft(ctx, &mut built, index(kind), r)? else { continue };
            ctx.say(&format!(
                "[bh] storm of {} items on {}, CPU {target}: run {round}/{rounds}: longest gap {:.0} µs (quiet {:.0} \
                 µs), storm {:.1} ms, observer {:.1}% of it",
                sizes.0,
                kind.name(),
                s.storm_gap.as_secs_f64() * 1e6,
                s.quiet_gap.as_secs_f64() * 1e6,
                s.storm.as_secs_f64() * 1e3,
                100.0 * s.observer_share
            ));
            runs[i].push(s);
        }
    }
    let mut rows = Vec::new();
    for (&kind, runs) in Kind::STORM.iter().zip(&runs) {
        let mut row = BhStormRow {
            queue: kind.name().into(),
            cpu: target,
            queued_from_cpu: ctx.cpus[from],
            items: sizes.0,
            item_spin_us: sizes.1.as_secs_f64() * 1e6,
            runs: runs.len(),
            figures: None,
            na: built[index(kind)].1.as_ref().err().cloned(),
            exactly_once: true,
        };
        if row.na.is_none() {
            let med =
                |f: fn(&storm::Storm) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0);
            row.figures = Some(StormFigures {
                longest_gap_us: med(|s| s.storm_gap.as_secs_f64() * 1e6),
                longest_gap_max_us: runs.iter().map(|s| s.storm_gap.as_secs_f64() * 1e6).fold(0.0, f64::max),
                quiet_gap_us: med(|s| s.quiet_gap.as_secs_f64() * 1e6),
                storm_ms: med(|s| s.storm.as_secs_f64() * 1e3),
                queueing_ms: med(|s| s.queueing.as_secs_f64() * 1e3),
                observer_cpu_pct: med(|s| 100.0 * s.observer_share),
            });
            let batches: Vec<_> = runs.iter().map(|s| s.batch.clone()).collect();
            row.exactly_once = ctx.exactly_once(&format!("bh storm, {}", kind.name()), &batches);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The BH queue on a busy CPU from the pinned producer beside the per-CPU
/// ones and the floor, and the storm's longest gaps.
pub(crate) fn headline(latency: &[BhLatencyRow], storm: &[BhStormRow]) -> Vec<String> {
    let mut v = Vec::new();
    let busy: Vec<&BhLatencyRow> =
        latency.iter().filter(|r| r.load == "busy" && r.producer_mode == "pinned").collect();
    if !busy.is_empty() {
        let cells: Vec<String> = busy
            .iter()
            .map(|r| match (&r.latency, &r.na) {
                (Some(l), _) => format!("{} p50 {:.1} / p99 {:.1} µs", r.queue, l.p50_us, l.p99_us),
                (None, Some(_)) => format!("{} n/a", r.queue),
                (None, None) => format!("{} -", r.queue),
            })
            .collect();
        v.push(format!("bh: queue-to-start on a busy CPU, pinned producer: {}", cells.join(", ")));
    }
    if !storm.is_empty() {
        let cells: Vec<String> = storm
            .iter()
            .map(|r| match (&r.figures, &r.na) {
                (Some(f), _) => format!(
                    "{} longest gap {:.0} µs over a {:.0} ms storm",
                    r.queue, f.longest_gap_us, f.storm_ms
                ),
                _ => format!("{} n/a", r.queue),
            })
            .collect();
        let items = storm[0].items;
        v.push(format!("bh: a thread on the CPU of a {items}-item storm: {}", cells.join(", ")));
    }
    v
}

/// A queue's name in a table cell: its `|` escaped, so that it stays one cell.
fn cell(queue: &str) -> String {
    format!("`{}`", queue.replace('|', "\\|"))
}

/// A ratio cell: `1.8×`, or `–` when there is none.
fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.1}×"))
}

pub(crate) fn markdown(latency: &[BhLatencyRow], storm: &[BhStormRow], gap: Duration) -> String {
    let rows: Vec<Vec<String>> = latency
        .iter()
        .map(|r| {
            let mut row = vec![
                cell(&r.queue),
                if r.spinners > 0 { format!("busy ({} spinners)", r.spinners) } else { "idle".into() },
                r.producers_label.clone(),
            ];
            match (&r.latency, &r.na) {
                (Some(l), _) => {
                    row.push(r.samples.to_string());
                    row.extend([l.p50_us, l.p99_us, l.max_us].map(|x| format!("{x:.1}")));
                    row.extend([ratio(r.p50_vs_bare), ratio(r.p99_vs_bare)]);
                    row.push(r.on_cpu_pct.map_or_else(|| "–".into(), |p| format!("{p:.0}%")));
                    row.push(yes(r.exactly_once));
                }
                (None, na) => {
                    row.push(format!("n/a: {}", na.as_deref().unwrap_or("no samples")));
                    row.extend((0..7).map(|_| "–".to_string()));
                }
            }
            row
        })
        .collect();
    let cpu = latency.first().map_or(0, |r| r.cpu);
    let mut s = section(
        "bh: queue-to-start latency, BH beside per-CPU queues (µs)",
        &[
            "queue",
            "CPU",
            "producer",
            "samples",
            "p50",
            "p99",
            "max",
            "p50 / bare",
            "p99 / bare",
            "started on the CPU",
            "exactly once",
        ],
        &rows,
        &format!(
            "One item at a time on CPU {cpu}, {} µs idle before each sample, from just before `queue_on` / `queue` \
             to the item's first action; samples of all rounds together, bounded in time per row. `1 pinned \
             producer`: a harness thread pinned to CPU {cpu} queues with `queue_on({cpu})`; `1 unpinned producer`: \
             one that nobody pinned queues with `queue`, so its items go to whichever CPU it is on (the last \
             column says how many ran on CPU {cpu}). Busy: threads of the process spin on CPU {cpu} at normal \
             priority. `bare pinned thread`: a thread pinned to CPU {cpu} woken with `Thread::unpark`, the floor \
             of a hand-off; the ratio columns divide by its figures of the same CPU load and producer. n/a: the \
             library refused the queue (`WqFlags::BH` before BH workqueues exist).",
            gap.as_micros()
        ),
    );
    let rows: Vec<Vec<String>> = storm
        .iter()
        .map(|r| {
            let mut row = vec![cell(&r.queue), r.items.to_string(), format!("{:.0}", r.item_spin_us)];
            match (&r.figures, &r.na) {
                (Some(f), _) => {
                    row.push(r.runs.to_string());
                    row.extend(
                        [f.longest_gap_us, f.longest_gap_max_us, f.quiet_gap_us].map(|x| format!("{x:.0}")),
                    );
                    row.extend([format!("{:.1}", f.storm_ms), format!("{:.1}", f.queueing_ms)]);
                    row.push(format!("{:.1}%", f.observer_cpu_pct));
                    row.push(yes(r.exactly_once));
                }
                (None, na) => {
                    row.push(format!("n/a: {}", na.as_deref().unwrap_or("no runs")));
                    row.extend((0..7).map(|_| "–".to_string()));
                }
            }
            row
        })
        .collect();
    let (cpu, from) = storm.first().map_or((0, 0), |r| (r.cpu, r.queued_from_cpu));
    s += &section(
        "bh/storm: a CPU-bound thread beside a storm of items on its CPU",
        &[
            "queue",
            "items",
            "µs each",
            "runs",
            "longest gap µs",
            "worst run µs",
            "quiet gap µs",
            "storm ms",
            "queueing ms",
            "thread's CPU share",
            "exactly once",
        ],
        &rows,
        &format!(
            "The items, each spinning for its CPU time, are queued at once with `queue_on({cpu})` by the harness \
             thread pinned to CPU {from}, while a thread of the process pinned to CPU {cpu} (normal priority) \
             loops on `Instant::now()`. Longest gap: its longest time between two iterations during the storm \
             (median of runs; the worst run beside it), against its longest in the {} ms before (quiet). Storm: \
             from the first item queued to the last one's end. CPU share: the thread's CPU time during the storm \
             over the storm's length.",
            QUIET.as_millis()
        ),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lrow(queue: &str, load: &str, latency: Option<Latency>) -> BhLatencyRow {
        BhLatencyRow {
            queue: queue.into(),
            load: load.into(),
            spinners: if load == "busy" { 2 } else { 0 },
            producer_mode: "pinned".into(),
            producers_label: "1 pinned producer".into(),
            cpu: 0,
            samples: 100,
            na: latency.is_none().then(|| "workqueue \"bench-bh\": flag BH is not supported yet".into()),
            latency,
            p50_vs_bare: None,
            p99_vs_bare: None,
            on_cpu_pct: Some(100.0),
            exactly_once: true,
        }
    }

    #[test]
    fn na_rows_say_why_in_markdown_json_and_headline() {
        let l = Latency { p50_us: 3.0, p90_us: 4.0, p99_us: 9.0, max_us: 20.0 };
        let rows =
            [lrow("BH", "busy", None), lrow("PERCPU", "busy", Some(l)), lrow("PERCPU", "idle", Some(l))];
        let md = markdown(&rows, &[], Duration::from_micros(300));
        assert!(
            md.contains(
                "| `BH` | busy (2 spinners) | 1 pinned producer | n/a: workqueue \"bench-bh\": flag BH"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| `PERCPU` | idle | 1 pinned producer | 100 | 3.0 | 9.0 | 20.0 | – | – | 100% | yes |"
            ),
            "{md}"
        );
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert!(json.get("p50_us").is_none() && json["na"].as_str().unwrap().contains("BH"));
        assert_eq!(serde_json::to_value(&rows[1]).unwrap()["p99_us"], 9.0);
        assert_eq!(
            headline(&rows, &[]),
            ["bh: queue-to-start on a busy CPU, pinned producer: BH n/a, PERCPU p50 3.0 / p99 9.0 µs"]
        );
        assert!(headline(&[], &[]).is_empty());
    }

    #[test]
    fn storm_rows_in_markdown_and_headline() {
        let row = |queue: &str, figures: Option<StormFigures>| BhStormRow {
            queue: queue.into(),
            cpu: 0,
            queued_from_cpu: 1,
            items: 10_000,
            item_spin_us: 20.0,
            runs: 3,
            na: if figures.is_none() { Some("refused".into()) } else { None },
            figures,
            exactly_once: true,
        };
        let f = StormFigures {
            longest_gap_us: 2100.0,
            longest_gap_max_us: 2500.0,
            quiet_gap_us: 40.0,
            storm_ms: 230.0,
            queueing_ms: 3.2,
            observer_cpu_pct: 12.5,
        };
        let rows = [row("BH", None), row("PERCPU | HIGHPRI", Some(f))];
        let md = markdown(&[], &rows, Duration::ZERO);
        assert!(md.contains("| `BH` | 10000 | 20 | n/a: refused | – |"), "{md}");
        assert!(md.contains(
            "| `PERCPU \\| HIGHPRI` | 10000 | 20 | 3 | 2100 | 2500 | 40 | 230.0 | 3.2 | 12.5% | yes |"
        ));
        assert!(md.contains("pinned to CPU 1"), "{md}");
        assert_eq!(
            headline(&[], &rows),
            ["bh: a thread on the CPU of a 10000-item storm: BH n/a, PERCPU | HIGHPRI longest gap 2100 µs over a \
              230 ms storm"]
        );
    }
}
