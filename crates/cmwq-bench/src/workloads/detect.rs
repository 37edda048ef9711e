//! The `detect` workload: the sleep monitor, cmwq's automatic detection of
//! blocking nobody announced.
//!
//! - **latency**: on one CPU's per-CPU pool, item A queues item B on the same
//!   CPU and then blocks; the time from A's block start to B's start, with A
//!   blocking in a plain `std::thread::sleep` (only the monitor can tell) and in
//!   `cmwq::sleep` (announced), rounds of the two interleaved. The pool keeps idle
//!   workers from a warm-up, so this is detection plus a wake-up, not thread
//!   creation. The same rounds then run on an unbound pool of a strict one-CPU
//!   pod on that CPU (concurrency 1, workers confined to the CPU), so that an
//!   unbound pool's detection compares directly with a per-CPU pool's.
//! - **overhead**: the monitor thread's own CPU time, idle (no work) and with
//!   every CPU's per-CPU pool saturated by CPU-bound items for a while.
//!
//! The `mixed` workload's `cmwq-bound` (announced) and `cmwq-bound-plain` rows
//! give the end-to-end effect.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmwq::debug::{
    PoolSnapshot, MONITOR_THREAD, MONITOR_TICK_MAX, SENTINEL_THREAD_PREFIX, WORKER_THREAD_PREFIX,
};
use cmwq::{AffinityScope, Attrs, Work, Workqueue, WqFlags};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::executors::{Batch, Blocking};
use crate::fmt::{section, yes};
use crate::procfs::{find_thread, find_threads, thread_cpu};
use crate::stats::{median, Latency};
use crate::sync::now_ns;

/// detect/latency: block start to the next item's start, one blocking style.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectLatencyRow {
    /// The pool the rounds ran on: `per-CPU` (a `PERCPU` queue's) or
    /// `unbound pod of 1 CPU` (a strict unbound queue whose one pod is `cpu`).
    pub pool: String,
    /// `plain` (`std::thread::sleep`) or `announced` (`cmwq::sleep`).
    pub blocking: String,
    /// How rounds began: `back-to-back` (plain and announced alternating, one
    /// every ~block time: the monitor is still in its back-off from the last
    /// round) or `parked` (each plain round only once the monitor had parked).
    pub monitor_start: String,
    /// The CPU of the pool that ran the rounds (the unbound pod's one CPU).
    pub cpu: usize,
    /// How long item A blocks (ms).
    pub block_ms: f64,
    /// Measured rounds.
    pub rounds: usize,
    /// Latency percentiles over all rounds.
    #[serde(flatten)]
    pub latency: Latency,
    /// The shortest latency (µs).
    pub min_us: f64,
    /// Rounds in which B started only after A's block ended (not detected).
    pub undetected: usize,
    /// The fewest idle workers the pool had at the start of a round.
    pub min_idle_workers: usize,
    /// Workers the pool created during these rounds (0: no round waited for a thread).
    pub workers_created: u64,
    /// Workers the monitor took out of concurrency management during these rounds.
    pub monitor_blocked: u64,
    /// Every A and B ran exactly once per round.
    pub exactly_once: bool,
}

impl DetectLatencyRow {
    /// The row's name in logs: pool, blocking style and how rounds began
    /// (`unbound pod of 1 CPU: plain, monitor parked`).
    pub fn label(&self) -> String {
        let start = match self.monitor_start.as_str() {
            BACK_TO_BACK => "back to back",
            PARKED => "monitor parked",
            other => other,
        };
        format!("{}: {}, {start}", self.pool, self.blocking)
    }
}

/// detect/overhead: the monitor thread's CPU time in one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectOverheadRow {
    /// `idle` (no work) or `saturated` (every per-CPU pool has CPU-bound work waiting).
    pub load: String,
    /// Measured runs.
    pub runs: usize,
    /// Median wall time of a run's window (ms).
    pub window_ms: f64,
    /// idle: median wait before a window until the monitor had parked (ms).
    pub settle_ms: f64,
    /// Whether the monitor thread existed during the runs: `started` or `not started`.
    pub monitor: String,
    /// Where its CPU time came from: `schedstat` (ns), `stat` (clock ticks) or `-`.
    pub cpu_source: String,
    /// Median over runs of the monitor's CPU time per second of wall time (µs/s).
    pub cpu_us_per_s: f64,
    /// The same as a percentage of one core.
    pub cpu_pct_of_core: f64,
    /// Every run's µs/s.
    pub cpu_us_per_s_runs: Vec<f64>,
    /// Median over runs of the idle sentinels' CPU time (all of them together)
    /// per second of wall time (µs/s).
    pub sentinel_cpu_us_per_s: f64,
    /// The same as a percentage of one core.
    pub sentinel_cpu_pct_of_core: f64,
    /// Median over runs of the monitor's ticks per second.
    pub ticks_per_s: f64,
    /// Ticks over all runs.
    pub ticks: u64,
    /// Workers found blocked over all runs (saturated: false detections, the items never block).
    pub blocked: u64,
    /// Items marked CPU-intensive over all runs.
    pub cpu_hogs: u64,
    /// Worker creations the monitor started over all runs.
    pub created: u64,
    /// CPU-bound items per run (0 when idle).
    pub items: usize,
    /// Every item ran exactly once.
    pub exactly_once: bool,
}

// ---------------------------------------------------------------------------
// The monitor thread's CPU time
// ---------------------------------------------------------------------------

/// The monitor's counters the rows report: ticks, workers found blocked,
/// CPU hogs marked, worker creations started.
type Counts = [u64; 4];

fn counts() -> Counts {
    let m = cmwq::debug::monitor();
    [m.ticks, m.blocked, m.cpu_hogs, m.created]
}

/// One overhead window: the monitor's CPU time and counters across it.
struct Window {
    wall: Duration,
    cpu: Option<(Duration, &'static str)>,
    /// CPU time of the idle sentinels, all together.
    sentinel_cpu: Duration,
    counts: Counts,
}

/// Runs `body` and measures the monitor thread across it (its CPU time before
/// and after; `None` when there is no monitor thread at the end).
fn window(body: impl FnOnce() -> Result<(), Error>) -> Result<Window, Error> {
    let tid0 = find_thread(MONITOR_THREAD);
    let n0 = counts();
    let c0 = tid0.and_then(thread_cpu);
    let sentinels0: Vec<(u32, Duration)> = find_threads(SENTINEL_THREAD_PREFIX)
        .into_iter()
        .filter_map(|t| Some((t, thread_cpu(t)?.0)))
        .collect();
    let t0 = Instant::now();
    body()?;
    let wall = t0.elapsed();
    // A sentinel that started during the window began at zero CPU time.
    let sentinel_cpu = find_threads(SENTINEL_THREAD_PREFIX)
        .into_iter()
        .filter_map(|t| {
            let now = thread_cpu(t)?.0;
            let before = sentinels0.iter().find(|s| s.0 == t).map_or(Duration::ZERO, |s| s.1);
            Some(now.saturating_sub(before))
        })
        .sum();
    let n1 = counts();
    // A monitor that started during the window began at zero CPU time.
    let tid1 = tid0.or_else(|| find_thread(MONITOR_THREAD));
    let c1 = tid1.and_then(thread_cpu);
    let cpu = match (c0, c1) {
        (Some((a, _)), Some((b, src))) => Some((b.saturating_sub(a), src)),
        (None, Some(c)) => Some(c),
        _ => None,
    };
    Ok(Window { wall, cpu, sentinel_cpu, counts: std::array::from_fn(|i| n1[i].saturating_sub(n0[i])) })
}

#[derive(Default)]
struct OverheadCell {
    us_per_s: Vec<f64>,
    sentinel_us_per_s: Vec<f64>,
    ticks_per_s: Vec<f64>,
    walls_ms: Vec<f64>,
    total: Counts,
    source: Option<&'static str>,
    started: bool,
    batches: Vec<Batch>,
}

impl OverheadCell {
    fn add(&mut self, w: &Window) {
        let s = w.wall.as_secs_f64().max(1e-9);
        let cpu = w.cpu.map_or(Duration::ZERO, |c| c.0);
        self.us_per_s.push(cpu.as_secs_f64() * 1e6 / s);
        self.sentinel_us_per_s.push(w.sentinel_cpu.as_secs_f64() * 1e6 / s);
        self.ticks_per_s.push(w.counts[0] as f64 / s);
        self.walls_ms.push(w.wall.as_secs_f64() * 1e3);
        if let Some((_, src)) = w.cpu {
            self.started = true;
            self.source = Some(src);
        }
        for (t, n) in self.total.iter_mut().zip(w.counts) {
            *t += n;
        }
    }

    fn row(&self, load: &str, items: usize, exactly_once: bool) -> DetectOverheadRow {
        let us = median(&self.us_per_s).unwrap_or(0.0);
        DetectOverheadRow {
            load: load.into(),
            runs: self.us_per_s.len(),
            window_ms: median(&self.walls_ms).unwrap_or(0.0),
            settle_ms: 0.0,
            monitor: if self.started { "started" } else { "not started" }.into(),
            cpu_source: self.source.unwrap_or("-").into(),
            cpu_us_per_s: us,
            cpu_pct_of_core: us / 1e4,
            cpu_us_per_s_runs: self.us_per_s.clone(),
            sentinel_cpu_us_per_s: median(&self.sentinel_us_per_s).unwrap_or(0.0),
            sentinel_cpu_pct_of_core: median(&self.sentinel_us_per_s).unwrap_or(0.0) / 1e4,
            ticks_per_s: median(&self.ticks_per_s).unwrap_or(0.0),
            ticks: self.total[0],
            blocked: self.total[1],
            cpu_hogs: self.total[2],
            created: self.total[3],
            items,
            exactly_once,
        }
    }
}

// ---------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------

/// One blocking style's pair of reusable items and what they record.
struct Pair {
    blocking: Blocking,
    a: Work,
    state: Arc<PairState>,
    samples: Vec<u64>,
    undetected: usize,
    min_idle: usize,
    created: u64,
    monitor_blocked: u64,
}

struct PairState {
    /// The round (its index into `batch`); set by the harness before queueing A.
    round: AtomicUsize,
    /// `now_ns()` right before A blocks.
    t_block: AtomicU64,
    /// `now_ns()` as B's first action.
    t_b: AtomicU64,
    /// `now_ns()` when A's block ended.
    t_wake: AtomicU64,
    /// Two entries per round (A, B); warm-up rounds included.
    batch: Batch,
    /// Errors from A's `queue_on` of B.
    queue_errors: AtomicUsize,
}

impl Pair {
    fn new(wq: &Workqueue, cpu: usize, blocking: Blocking, block: Duration, rounds: usize) -> Pair {
        let state = Arc::new(PairState {
            round: AtomicUsize::new(0),
            t_block: AtomicU64::new(0),
            t_b: AtomicU64::new(0),
            t_wake: AtomicU64::new(0),
            batch: Batch::new(2 * rounds),
            queue_errors: AtomicUsize::new(0),
        });
        let b = {
            let s = state.clone();
            Work::new(move |_| {
                s.t_b.store(now_ns(), Ordering::Release);
                s.batch.done(2 * s.round.load(Ordering::Acquire) + 1);
            })
        };
        let a = {
            let (s, wq) = (state.clone(), wq.clone());
            Work::new(move |_| {
                // B waits behind A on this CPU: the pool counts A as running.
                if !matches!(wq.queue_on(cpu, &b), Ok(true)) {
                    s.queue_errors.fetch_add(1, Ordering::Relaxed);
                }
                s.t_block.store(now_ns(), Ordering::Release);
                blocking.block(block);
                s.t_wake.store(now_ns(), Ordering::Release);
                s.batch.done(2 * s.round.load(Ordering::Acquire));
            })
        };
        Pair {
            blocking,
            a,
            state,
            samples: Vec::new(),
            undetected: 0,
            min_idle: usize::MAX,
            created: 0,
            monitor_blocked: 0,
        }
    }

    /// One round: A on `cpu`, then wait for A and B. Returns B's start minus A's
    /// block start (ns), and whether B started before A woke.
    fn round(&self, wq: &Workqueue, cpu: usize, i: usize) -> Result<(u64, bool), Error> {
        let s = &self.state;
        s.round.store(i, Ordering::Release);
        for t in [&s.t_block, &s.t_b, &s.t_wake] {
            t.store(0, Ordering::Relaxed);
        }
        if !wq.queue_on(cpu, &self.a)? {
            return Err(Error::Invariant("detect: item A was still pending at the start of a round".into()));
        }
        // A queues B before blocking: once A is flushed, B is queued or done.
        self.a.flush()?;
        wq.flush()?;
        if s.queue_errors.load(Ordering::Relaxed) > 0 {
            return Err(Error::Invariant("detect: item B could not be queued (or was still pending)".into()));
        }
        let (tb, tw, t) = (
            s.t_b.load(Ordering::Acquire),
            s.t_wake.load(Ordering::Acquire),
            s.t_block.load(Ordering::Acquire),
        );
        Ok((tb.saturating_sub(t), tb != 0 && tb < tw))
    }
}

/// `pool` of rows run on a `PERCPU` queue.
pub(crate) const PER_CPU: &str = "per-CPU";
/// `pool` of rows run on an unbound queue of one strict one-CPU pod.
pub(crate) const UNBOUND_POD: &str = "unbound pod of 1 CPU";

/// The unbound queue of the [`UNBOUND_POD`] rows: one pod, `cpu` alone,
/// strict, so its pool lets one item run at once and its workers stay on `cpu`.
fn unbound_pod_queue(cpu: usize) -> Result<Workqueue, Error> {
    let attrs = Attrs {
        affinity_scope: AffinityScope::Cpu,
        affinity_strict: true,
        cpumask: Some(vec![cpu]),
        ..Attrs::default()
    };
    Ok(Workqueue::builder("bench-detect-unbound").attrs(attrs).build()?)
}

/// The pool a worker thread belongs to, read from its name
/// (`cmwq/<label>:<n>`, the label `3` or `3H` for CPU 3's per-CPU pools and
/// `u<id>` for unbound pool `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkerOf {
    PerCpu { cpu: usize, highpri: bool },
    Unbound { id: u32 },
}

impl WorkerOf {
    fn parse(thread: &str) -> Option<WorkerOf> {
        let (label, slot) = thread.strip_prefix(WORKER_THREAD_PREFIX)?.rsplit_once(':')?;
        slot.parse::<usize>().ok()?;
        if let Some(id) = label.strip_prefix('u') {
            return Some(WorkerOf::Unbound { id: id.parse().ok()? });
        }
        let (cpu, highpri) = label.strip_suffix('H').map_or((label, false), |c| (c, true));
        Some(WorkerOf::PerCpu { cpu: cpu.parse().ok()?, highpri })
    }

    fn is(self, p: &PoolSnapshot) -> bool {
        match self {
            WorkerOf::PerCpu { cpu, highpri } => p.cpu == Some(cpu) && p.highpri == highpri && !p.bh,
            WorkerOf::Unbound { id } => p.cpu.is_none() && p.id == id,
        }
    }
}

/// The id of the pool that runs `wq`'s items queued on `cpu`: a probe item
/// reports its worker's name.
fn pool_id(wq: &Workqueue, cpu: usize) -> Result<u32, Error> {
    let name = Arc::new(Mutex::new(None));
    let probe = {
        let name = name.clone();
        Work::new(move |_| {
            *name.lock().unwrap_or_else(|e| e.into_inner()) = std::thread::current().name().map(String::from);
        })
    };
    wq.queue_on(cpu, &probe)?;
    probe.flush()?;
    let name = name.lock().unwrap_or_else(|e| e.into_inner()).take();
    let of = name.as_deref().and_then(WorkerOf::parse);
    of.and_then(|of| cmwq::debug::pools().into_iter().find(|p| of.is(p)))
        .map(|p| p.id)
        .ok_or_else(|| Error::Invariant(format!("detect: no pool for the worker thread {name:?}")))
}

/// Pool `id`: `(idle workers, workers created so far)`.
fn pool_of(id: u32) -> (usize, u64) {
    cmwq::debug::pools().into_iter().find(|p| p.id == id).map_or((0, 0), |p| (p.idle, p.created))
}

/// Gives `cpu`'s pool idle workers: `n` items that sleep (announced) at once.
fn warm_pool(wq: &Workqueue, cpu: usize, n: usize) -> Result<(), Error> {
    let items: Vec<Work> = (0..n).map(|_| Work::new(|_| cmwq::sleep(Duration::from_millis(5)))).collect();
    for w in &items {
        wq.queue_on(cpu, w)?;
    }
    Ok(wq.flush()?)
}

fn latency_row(p: &Pair, pool: &str, start: &str, cpu: usize, block: Duration, ok: bool) -> DetectLatencyRow {
    DetectLatencyRow {
        pool: pool.into(),
        blocking: p.blocking.as_str().into(),
        monitor_start: start.into(),
        cpu,
        block_ms: block.as_secs_f64() * 1e3,
        rounds: p.samples.len(),
        latency: Latency::of_ns(&p.samples),
        min_us: p.samples.iter().min().map_or(0.0, |&m| m as f64 / 1e3),
        undetected: p.undetected,
        min_idle_workers: if p.min_idle == usize::MAX { 0 } else { p.min_idle },
        workers_created: p.created,
        monitor_blocked: p.monitor_blocked,
        exactly_once: ok,
    }
}

/// Where the rounds run: `wq`'s pool `id` of `cpu`.
struct Target<'a> {
    wq: &'a Workqueue,
    cpu: usize,
    id: u32,
}

/// One measured (or warm-up) round of `p`, with the pool's and the monitor's
/// counters around it.
fn measured_round(p: &mut Pair, t: &Target<'_>, i: usize, keep: bool) -> Result<(), Error> {
    let (idle, created0) = pool_of(t.id);
    let m0 = cmwq::debug::monitor();
    let (ns, detected) = p.round(t.wq, t.cpu, i)?;
    let (_, created1) = pool_of(t.id);
    let m1 = cmwq::debug::monitor();
    if keep {
        p.samples.push(ns);
        p.undetected += usize::from(!detected);
        p.min_idle = p.min_idle.min(idle);
        p.created += created1.saturating_sub(created0);
        p.monitor_blocked += m1.blocked.saturating_sub(m0.blocked);
    }
    Ok(())
}

/// The latency rows of `wq`'s pool of `cpu` (`pool`: [`PER_CPU`] or [`UNBOUND_POD`]).
fn latency(
    ctx: &mut Ctx<'_>,
    wq: &Workqueue,
    cpu: usize,
    pool: &str,
) -> Result<Vec<DetectLatencyRow>, Error> {
    let cfg = ctx.cfg;
    let block = cfg.detect_block;
    let rounds = cfg.detect_rounds.max(1);
    let warm = warmup_rounds(cfg);
    let total = rounds + warm;
    warm_pool(wq, cpu, 4)?;
    let t = Target { wq, cpu, id: pool_id(wq, cpu)? };
    ctx.say(&format!(
        "[detect] latency, {pool} (pool {}): CPU {cpu}, item A blocks {block:?} with B queued behind it, \
         {rounds} rounds (+{warm} warm-up) per blocking style, plain and announced interleaved",
        t.id
    ));
    let mut pairs = [
        Pair::new(wq, cpu, Blocking::Plain, block, total),
        Pair::new(wq, cpu, Blocking::Announced, block, total),
    ];
    let step = (total / 10).max(1);
    for i in 0..total {
        // Alternate which style goes first, so neither always follows the other.
        for k in 0..2 {
            measured_round(&mut pairs[(i + k) % 2], &t, i, i >= warm)?;
        }
        if (i + 1) % step == 0 || i + 1 == total {
            let last = |p: &Pair| p.samples.last().map_or(0.0, |&x| x as f64 / 1e3);
            ctx.say(&format!(
                "[detect] latency, {pool}: round {}/{total}: last plain {:.0} µs, announced {:.0} µs",
                i + 1,
                last(&pairs[0]),
                last(&pairs[1])
            ));
        }
    }
    // The same plain block, each round started only once the monitor has parked.
    let parked_rounds = cfg.detect_parked_rounds;
    let mut parked = Pair::new(wq, cpu, Blocking::Plain, block, parked_rounds);
    if parked_rounds > 0 {
        ctx.say(&format!(
            "[detect] latency, {pool}: {parked_rounds} plain rounds, each started once the monitor has parked"
        ));
    }
    for i in 0..parked_rounds {
        wait_monitor_quiet(Duration::from_secs(2));
        measured_round(&mut parked, &t, i, true)?;
    }
    let mut rows = Vec::new();
    let runs = [(&pairs[0], BACK_TO_BACK), (&pairs[1], BACK_TO_BACK), (&parked, PARKED)];
    for (p, start) in runs.into_iter().filter(|(p, _)| !p.samples.is_empty()) {
        let what = format!("detect latency {pool}, {} ({start})", p.blocking.as_str());
        let ok = ctx.exactly_once(&what, std::slice::from_ref(&p.state.batch));
        let row = latency_row(p, pool, start, cpu, block, ok);
        let l = row.latency;
        ctx.say(&format!(
            "[detect] latency {}: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs; \
             {} undetected; {} workers created; {} monitor verdicts",
            row.label(),
            l.p50_us,
            l.p90_us,
            l.p99_us,
            l.max_us,
            row.undetected,
            row.workers_created,
            row.monitor_blocked
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// `monitor_start` of rounds run back to back (plain and announced alternating).
pub(crate) const BACK_TO_BACK: &str = "back-to-back";
/// `monitor_start` of rounds started once the monitor had parked.
pub(crate) const PARKED: &str = "parked";

fn warmup_rounds(cfg: &crate::config::Config) -> usize {
    if cfg.warmup {
        (cfg.detect_rounds.max(1) / 10).clamp(1, 20)
    } else {
        0
    }
}

// ---------------------------------------------------------------------------
// Overhead
// ---------------------------------------------------------------------------

/// Every CPU's per-CPU pool gets `per_cpu` items that each burn `burn` of CPU,
/// all queued at once, so each pool has work waiting until its last item starts.
fn saturate(
    wq: &Workqueue,
    cpus: &[usize],
    per_cpu: usize,
    burn: Duration,
    timeout: Duration,
) -> Result<Batch, Error> {
    let n = per_cpu * cpus.len();
    let batch = Batch::new(n);
    let items: Vec<Work> = (0..n)
        .map(|i| {
            let b = batch.clone();
            Work::new(move |_| {
                crate::cpu::burn(burn);
                b.done(i);
            })
        })
        .collect();
    // Round-robin over the CPUs, so every pool starts at once.
    for (i, w) in items.iter().enumerate() {
        wq.queue_on(cpus[i % cpus.len()], w)?;
    }
    batch.wait("detect saturated", timeout)?;
    wq.flush()?;
    Ok(batch)
}

fn overhead(ctx: &mut Ctx<'_>, wq: &Workqueue) -> Result<Vec<DetectOverheadRow>, Error> {
    let cfg = ctx.cfg;
    let win = cfg.detect_window;
    let burn = cfg.detect_burn;
    let per_cpu = ((win.as_nanos() / burn.as_nanos().max(1)) as usize).max(1);
    let cpus = ctx.cpus.clone();
    let runs = ctx.rounds();
    let timeout = cfg.batch_timeout(per_cpu, burn);
    ctx.say(&format!(
        "[detect] overhead: monitor CPU time idle for {win:?} and with {per_cpu} items of {burn:?} CPU on each \
         of {} CPUs, {runs} runs",
        cpus.len()
    ));
    let (mut idle, mut sat) = (OverheadCell::default(), OverheadCell::default());
    let mut settles = Vec::new();
    for run in 1..=runs {
        let settle = wait_monitor_quiet(Duration::from_secs(2));
        settles.push(settle.as_secs_f64() * 1e3);
        let wi = window(|| {
            std::thread::sleep(win);
            Ok(())
        })?;
        idle.add(&wi);
        let mut batch = None;
        let ws = window(|| {
            batch = Some(saturate(wq, &cpus, per_cpu, burn, timeout)?);
            Ok(())
        })?;
        sat.add(&ws);
        sat.batches.extend(batch);
        let per_s =
            |w: &Window| w.cpu.map_or(0.0, |c| c.0.as_secs_f64() * 1e6 / w.wall.as_secs_f64().max(1e-9));
        ctx.say(&format!(
            "[detect] overhead: run {run}/{runs}: idle (after {:.0} ms settling) {:.1} µs/s, {} ticks{}; \
             saturated {:.3}% of a core over {:.0} ms, {} ticks, {} blocked",
            settle.as_secs_f64() * 1e3,
            per_s(&wi),
            wi.counts[0],
            if wi.cpu.is_none() { " (monitor not started)" } else { "" },
            per_s(&ws) / 1e4,
            ws.wall.as_secs_f64() * 1e3,
            ws.counts[0],
            ws.counts[1]
        ));
    }
    let ok = ctx.exactly_once("detect saturated", &sat.batches);
    let mut idle = idle.row("idle", 0, true);
    idle.settle_ms = median(&settles).unwrap_or(0.0);
    Ok(vec![idle, sat.row("saturated", per_cpu * cpus.len(), ok)])
}

/// No tick for this long: the monitor has parked (or never started).
const QUIET: Duration = MONITOR_TICK_MAX.saturating_mul(3);

/// Waits until the monitor's tick count stops moving for [`QUIET`] (it parked),
/// at most `max`. Returns how long that took.
fn wait_monitor_quiet(max: Duration) -> Duration {
    let t0 = Instant::now();
    let mut last = cmwq::debug::monitor().ticks;
    let mut since = Instant::now();
    while since.elapsed() < QUIET && t0.elapsed() < max {
        std::thread::sleep(Duration::from_millis(2));
        let t = cmwq::debug::monitor().ticks;
        if t != last {
            last = t;
            since = Instant::now();
        }
    }
    t0.elapsed()
}

/// Runs the detect workload: latency on a per-CPU workqueue and on an unbound
/// one-CPU pod of the same CPU, then overhead on the per-CPU workqueue.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<(Vec<DetectLatencyRow>, Vec<DetectOverheadRow>), Error> {
    ctx.prepare();
    let cpu = ctx.cpus[0];
    let wq = Workqueue::builder("bench-detect").flags(WqFlags::PERCPU).build()?;
    let unbound = match unbound_pod_queue(cpu) {
        Ok(u) => u,
        Err(e) => {
            wq.destroy()?;
            return Err(e);
        }
    };
    let res = measure(ctx, &wq, &unbound, cpu);
    let destroyed = [wq.destroy(), unbound.destroy()];
    let res = res?;
    for d in destroyed {
        d?;
    }
    Ok(res)
}

fn measure(
    ctx: &mut Ctx<'_>,
    wq: &Workqueue,
    unbound: &Workqueue,
    cpu: usize,
) -> Result<(Vec<DetectLatencyRow>, Vec<DetectOverheadRow>), Error> {
    let mut lat = latency(ctx, wq, cpu, PER_CPU)?;
    lat.extend(latency(ctx, unbound, cpu, UNBOUND_POD)?);
    Ok((lat, overhead(ctx, wq)?))
}

/// Detection latency plain against announced, and unbound against per-CPU;
/// the monitor's own CPU time.
pub(crate) fn headline(lat: &[DetectLatencyRow], ovh: &[DetectOverheadRow]) -> Vec<String> {
    let mut v = Vec::new();
    let of = |pool: &str, b: &str, m: &str| {
        lat.iter().find(|r| r.pool == pool && r.blocking == b && r.monitor_start == m).map(|r| r.latency)
    };
    let by = |b: &str, m: &str| of(PER_CPU, b, m);
    if let (Some(p), Some(a)) = (by("plain", BACK_TO_BACK), by("announced", BACK_TO_BACK)) {
        let parked = by("plain", PARKED)
            .map(|k| format!("; from a parked monitor p50 {:.0} / p99 {:.0} µs", k.p50_us, k.p99_us))
            .unwrap_or_default();
        v.push(format!(
            "detect: the next item starts after an unannotated block at p50 {:.0} / p99 {:.0} µs back to \
             back{parked} (announced: p50 {:.0} / p99 {:.0} µs)",
            p.p50_us, p.p99_us, a.p50_us, a.p99_us,
        ));
    }
    if let (Some(u), Some(p)) = (of(UNBOUND_POD, "plain", BACK_TO_BACK), by("plain", BACK_TO_BACK)) {
        v.push(format!(
            "detect: {UNBOUND_POD} against {PER_CPU}, unannotated block back to back: p50 {:.0} / p99 {:.0} µs \
             against p50 {:.0} / p99 {:.0} µs",
            u.p50_us, u.p99_us, p.p50_us, p.p99_us,
        ));
    }
    let load = |l: &str| ovh.iter().find(|r| r.load == l);
    if let (Some(i), Some(s)) = (load("idle"), load("saturated")) {
        v.push(format!(
            "detect: monitor CPU idle {:.1} µs/s, saturated {:.3}% of one core ({:.0} ticks/s, {} false \
             detections); sentinels {:.3}% saturated",
            i.cpu_us_per_s, s.cpu_pct_of_core, s.ticks_per_s, s.blocked, s.sentinel_cpu_pct_of_core
        ));
    }
    v
}

pub(crate) fn markdown(lat: &[DetectLatencyRow], ovh: &[DetectOverheadRow]) -> String {
    let lat_rows: Vec<Vec<String>> = lat
        .iter()
        .map(|r| {
            let mut row = vec![
                r.pool.clone(),
                r.blocking.clone(),
                r.monitor_start.clone(),
                r.cpu.to_string(),
                format!("{:.0}", r.block_ms),
                r.rounds.to_string(),
            ];
            row.extend(r.latency.cells(0));
            row.extend([
                r.undetected.to_string(),
                r.min_idle_workers.to_string(),
                r.workers_created.to_string(),
                r.monitor_blocked.to_string(),
                yes(r.exactly_once),
            ]);
            row
        })
        .collect();
    let mut s = section(
        "detect/latency: from a worker blocking to the next item starting on its CPU (µs)",
        &[
            "pool",
            "blocking",
            "rounds started",
            "CPU",
            "block ms",
            "rounds",
            "p50",
            "p90",
            "p99",
            "max",
            "undetected",
            "min idle workers",
            "workers created",
            "monitor verdicts",
            "exactly once",
        ],
        &lat_rows,
        "Item A queues B on its own CPU and blocks; latency: A's block start to B's start. per-CPU: a \
         `PERCPU` queue; unbound pod of 1 CPU: an unbound queue whose one strict pod is that CPU (one item \
         at once, workers confined to the CPU). plain: `std::thread::sleep`, which only the sleep monitor \
         and the idle sentinel see; announced: `cmwq::sleep`. back-to-back: the two styles alternate; \
         parked: each round starts once the monitor has parked. undetected: B started only after A woke.",
    );
    let ovh_rows: Vec<Vec<String>> = ovh
        .iter()
        .map(|r| {
            vec![
                r.load.clone(),
                r.runs.to_string(),
                format!("{:.0}", r.window_ms),
                format!("{:.0}", r.settle_ms),
                format!("{} ({})", r.monitor, r.cpu_source),
                format!("{:.1}", r.cpu_us_per_s),
                format!("{:.3}", r.cpu_pct_of_core),
                format!("{:.1}", r.sentinel_cpu_us_per_s),
                format!("{:.3}", r.sentinel_cpu_pct_of_core),
                format!("{:.0}", r.ticks_per_s),
                r.ticks.to_string(),
                r.blocked.to_string(),
                r.cpu_hogs.to_string(),
                r.created.to_string(),
                r.items.to_string(),
                yes(r.exactly_once),
            ]
        })
        .collect();
    s += &section(
        "detect/overhead: the sleep monitor's and the idle sentinels' own CPU time (median of runs)",
        &[
            "load",
            "runs",
            "window ms",
            "settle ms",
            "monitor (CPU source)",
            "monitor CPU µs/s",
            "monitor % of one core",
            "sentinels CPU µs/s",
            "sentinels % of one core",
            "ticks/s",
            "ticks",
            "blocked",
            "CPU hogs",
            "created",
            "items/run",
            "exactly once",
        ],
        &ovh_rows,
        "idle: no work, once the monitor has parked (settle: the wait for that). saturated: every CPU's \
         pool has CPU-bound items waiting; `blocked` there counts false detections.",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pool: &str, blocking: &str, start: &str, p50_us: f64, p99_us: f64) -> DetectLatencyRow {
        DetectLatencyRow {
            pool: pool.into(),
            blocking: blocking.into(),
            monitor_start: start.into(),
            cpu: 0,
            block_ms: 20.0,
            rounds: 10,
            latency: Latency { p50_us, p90_us: p99_us, p99_us, max_us: p99_us },
            min_us: p50_us,
            undetected: 0,
            min_idle_workers: 1,
            workers_created: 0,
            monitor_blocked: 10,
            exactly_once: true,
        }
    }

    fn rows() -> Vec<DetectLatencyRow> {
        vec![
            row(PER_CPU, "plain", BACK_TO_BACK, 15.0, 60.0),
            row(PER_CPU, "announced", BACK_TO_BACK, 2.0, 11.0),
            row(PER_CPU, "plain", PARKED, 34.0, 108.0),
            row(UNBOUND_POD, "plain", BACK_TO_BACK, 17.0, 70.0),
            row(UNBOUND_POD, "announced", BACK_TO_BACK, 3.0, 12.0),
            row(UNBOUND_POD, "plain", PARKED, 40.0, 120.0),
        ]
    }

    #[test]
    fn labels_name_pool_blocking_and_start() {
        let labels: Vec<String> = rows().iter().map(DetectLatencyRow::label).collect();
        assert_eq!(
            labels,
            [
                "per-CPU: plain, back to back",
                "per-CPU: announced, back to back",
                "per-CPU: plain, monitor parked",
                "unbound pod of 1 CPU: plain, back to back",
                "unbound pod of 1 CPU: announced, back to back",
                "unbound pod of 1 CPU: plain, monitor parked",
            ]
        );
    }

    #[test]
    fn worker_names_give_their_pool() {
        let per_cpu = |cpu, highpri| Some(WorkerOf::PerCpu { cpu, highpri });
        assert_eq!(WorkerOf::parse("cmwq/3:0"), per_cpu(3, false));
        assert_eq!(WorkerOf::parse("cmwq/12H:7"), per_cpu(12, true));
        assert_eq!(WorkerOf::parse("cmwq/u5:2"), Some(WorkerOf::Unbound { id: 5 }));
        for other in ["cmwq/monitor", "cmwq/sentinel0", "cmwq/u:1", "cmwq/uH:1", "cmwq/3:x", "main", "u5:2"] {
            assert_eq!(WorkerOf::parse(other), None, "{other}");
        }
    }

    #[test]
    fn headline_compares_unbound_with_per_cpu() {
        let h = headline(&rows(), &[]);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(
            h[0].starts_with("detect: the next item starts after an unannotated block at p50 15 / p99 60")
        );
        assert_eq!(
            h[1],
            "detect: unbound pod of 1 CPU against per-CPU, unannotated block back to back: p50 17 / p99 70 µs \
             against p50 15 / p99 60 µs"
        );
        // Without the unbound rows, the per-CPU line alone.
        assert_eq!(headline(&rows()[..3], &[]).len(), 1);
    }

    #[test]
    fn markdown_has_a_pool_column() {
        let md = markdown(&rows(), &[]);
        assert!(md.contains("| pool | blocking | rounds started |"), "{md}");
        assert!(md.contains("| unbound pod of 1 CPU | plain | parked |"), "{md}");
        assert!(md.contains("| per-CPU | announced | back-to-back |"), "{md}");
    }
}
