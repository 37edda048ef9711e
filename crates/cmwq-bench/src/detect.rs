//! The `detect` workload: the sleep monitor, cmwq's automatic detection of
//! blocking nobody announced.
//!
//! - **latency**: on one CPU's per-CPU pool, item A queues item B on the same
//!   CPU and then blocks; the time from A's block start to B's start, with A
//!   blocking in a plain `std::thread::sleep` (only the monitor can tell) and in
//!   `cmwq::sleep` (announced), rounds of the two interleaved. The pool keeps idle
//!   workers from a warm-up, so this is detection plus a wake-up, not thread
//!   creation.
//! - **overhead**: the monitor thread's own CPU time, idle (no work) and with
//!   every CPU's per-CPU pool saturated by CPU-bound items for a while.
//!
//! The `mixed` workload's `cmwq-bound` (announced) and `cmwq-bound-plain` rows
//! give the end-to-end effect; [`mixed_plain_vs_announced`] puts them side by side.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue};
use serde::Serialize;

use crate::error::Error;
use crate::executors::{Batch, Blocking};
use crate::harness::Ctx;
use crate::report::{table, MixedRow};
use crate::{median, now_ns, percentile_sorted, procfs};

/// The name the library gives its monitor thread.
pub const MONITOR_THREAD: &str = "cmwq/monitor";
/// The names of the library's idle sentinel threads start with this.
pub const SENTINEL_THREAD_PREFIX: &str = "cmwq/sentinel";

/// detect/latency: block start to the next item's start, one blocking style.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectLatencyRow {
    /// `plain` (`std::thread::sleep`) or `announced` (`cmwq::sleep`).
    pub blocking: String,
    /// How rounds began: `back-to-back` (plain and announced alternating, one
    /// every ~block time: the monitor is still in its back-off from the last
    /// round) or `parked` (each plain round only once the monitor had parked).
    pub monitor_start: String,
    /// The CPU whose pool ran the rounds.
    pub cpu: usize,
    /// How long item A blocks (ms).
    pub block_ms: f64,
    /// Measured rounds.
    pub rounds: usize,
    /// Latency percentiles over all rounds (µs).
    pub p50_us: f64,
    /// See `p50_us`.
    pub p90_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// See `p50_us`.
    pub max_us: f64,
    /// See `p50_us`.
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

/// detect/overhead: the monitor thread's CPU time in one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectOverheadRow {
    /// `idle` (no work) or `saturated` (every per-CPU pool has CPU-bound work waiting).
    pub load: String,
    /// Measured runs.
    pub runs: usize,
    /// Median wall time of a run's window (ms).
    pub window_ms: f64,
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

/// `cmwq-bound-plain` beside `cmwq-bound` in the mixed workload, one X:Y.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlainVsAnnounced {
    /// `X:Y` as `1:m`.
    pub ratio: String,
    /// `cmwq-bound` (announced) median makespan (ms).
    pub announced_ms: f64,
    /// `cmwq-bound-plain` (unannotated) median makespan (ms).
    pub plain_ms: f64,
    /// `plain_ms / announced_ms`.
    pub plain_over_announced: f64,
}

/// For each X:Y with both a `cmwq-bound` and a `cmwq-bound-plain` row: their
/// makespans and the ratio plain / announced. Empty if mixed did not run both.
pub fn mixed_plain_vs_announced(mixed: &[MixedRow]) -> Vec<PlainVsAnnounced> {
    mixed
        .iter()
        .filter(|r| r.executor == "cmwq-bound")
        .filter_map(|a| {
            let p = mixed.iter().find(|r| r.executor == "cmwq-bound-plain" && r.ratio == a.ratio)?;
            Some(PlainVsAnnounced {
                ratio: a.ratio.clone(),
                announced_ms: a.makespan_ms,
                plain_ms: p.makespan_ms,
                plain_over_announced: p.makespan_ms / a.makespan_ms.max(1e-9),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The monitor thread's CPU time
// ---------------------------------------------------------------------------

/// The thread id of the first thread of this process whose `comm` is `name`.
pub fn find_thread(name: &str) -> Option<u32> {
    let dir = std::fs::read_dir("/proc/self/task").ok()?;
    dir.filter_map(|e| e.ok()).find_map(|e| {
        let tid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim_end_matches('\n') == name).then_some(tid)
    })
}

/// The tids of this process's threads whose name starts with `prefix`.
pub fn find_threads(prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            comm.starts_with(prefix).then_some(tid)
        })
        .collect()
}

/// The first field of a `schedstat` text: time on the CPU in ns.
pub fn parse_schedstat(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (clock ticks) of a `/proc/.../stat` line: fields 14 and 15,
/// counted after the `)` that closes the command name.
pub fn parse_stat_cpu_ticks(s: &str) -> Option<u64> {
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of thread `tid` of this process: `schedstat` where the kernel has it
/// (ns), else `stat` (clock ticks, converted). With the source's name.
pub fn thread_cpu(tid: u32) -> Option<(Duration, &'static str)> {
    let base = format!("/proc/self/task/{tid}");
    if let Some(ns) =
        std::fs::read_to_string(format!("{base}/schedstat")).ok().and_then(|s| parse_schedstat(&s))
    {
        return Some((Duration::from_nanos(ns), "schedstat"));
    }
    let ticks =
        std::fs::read_to_string(format!("{base}/stat")).ok().and_then(|s| parse_stat_cpu_ticks(&s))?;
    let hz = procfs::user_hz();
    Some((Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / hz)), "stat"))
}

/// One overhead window: the monitor's CPU time and stats across it.
struct Window {
    wall: Duration,
    cpu: Option<(Duration, &'static str)>,
    /// CPU time of the idle sentinels, all together.
    sentinel_cpu: Duration,
    stats: cmwq::debug::MonitorStats,
}

fn stats_delta(a: cmwq::debug::MonitorStats, b: cmwq::debug::MonitorStats) -> cmwq::debug::MonitorStats {
    cmwq::debug::MonitorStats {
        ticks: b.ticks.saturating_sub(a.ticks),
        blocked: b.blocked.saturating_sub(a.blocked),
        resumed: b.resumed.saturating_sub(a.resumed),
        cpu_hogs: b.cpu_hogs.saturating_sub(a.cpu_hogs),
        created: b.created.saturating_sub(a.created),
        parks: b.parks.saturating_sub(a.parks),
        by_sentinel: b.by_sentinel.saturating_sub(a.by_sentinel),
        sentinels: b.sentinels.saturating_sub(a.sentinels),
    }
}

/// Runs `body` and measures the monitor thread across it (its CPU time before
/// and after; `None` when there is no monitor thread at the end).
fn window(body: impl FnOnce() -> Result<(), Error>) -> Result<Window, Error> {
    let tid0 = find_thread(MONITOR_THREAD);
    let s0 = cmwq::debug::monitor();
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
    let s1 = cmwq::debug::monitor();
    // A monitor that started during the window began at zero CPU time.
    let tid1 = tid0.or_else(|| find_thread(MONITOR_THREAD));
    let c1 = tid1.and_then(thread_cpu);
    let cpu = match (c0, c1) {
        (Some((a, _)), Some((b, src))) => Some((b.saturating_sub(a), src)),
        (None, Some(c)) => Some(c),
        _ => None,
    };
    Ok(Window { wall, cpu, sentinel_cpu, stats: stats_delta(s0, s1) })
}

#[derive(Default)]
struct OverheadCell {
    us_per_s: Vec<f64>,
    sentinel_us_per_s: Vec<f64>,
    ticks_per_s: Vec<f64>,
    walls_ms: Vec<f64>,
    total: cmwq::debug::MonitorStats,
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
        self.ticks_per_s.push(w.stats.ticks as f64 / s);
        self.walls_ms.push(w.wall.as_secs_f64() * 1e3);
        if let Some((_, src)) = w.cpu {
            self.started = true;
            self.source = Some(src);
        }
        let t = &mut self.total;
        t.ticks += w.stats.ticks;
        t.blocked += w.stats.blocked;
        t.resumed += w.stats.resumed;
        t.cpu_hogs += w.stats.cpu_hogs;
        t.created += w.stats.created;
        t.parks += w.stats.parks;
    }

    fn row(&self, load: &str, items: usize, exactly_once: bool) -> DetectOverheadRow {
        let us = median(&self.us_per_s).unwrap_or(0.0);
        DetectOverheadRow {
            load: load.into(),
            runs: self.us_per_s.len(),
            window_ms: median(&self.walls_ms).unwrap_or(0.0),
            monitor: if self.started { "started" } else { "not started" }.into(),
            cpu_source: self.source.unwrap_or("-").into(),
            cpu_us_per_s: us,
            cpu_pct_of_core: us / 1e4,
            cpu_us_per_s_runs: self.us_per_s.clone(),
            sentinel_cpu_us_per_s: median(&self.sentinel_us_per_s).unwrap_or(0.0),
            sentinel_cpu_pct_of_core: median(&self.sentinel_us_per_s).unwrap_or(0.0) / 1e4,
            ticks_per_s: median(&self.ticks_per_s).unwrap_or(0.0),
            ticks: self.total.ticks,
            blocked: self.total.blocked,
            cpu_hogs: self.total.cpu_hogs,
            created: self.total.created,
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
        if !wq.queue_on(cpu, &self.a).map_err(wq_err)? {
            return Err(Error::Invariant("detect: item A was still pending at the start of a round".into()));
        }
        // A queues B before blocking: once A is flushed, B is queued or done.
        self.a.flush().map_err(wq_err)?;
        wq.flush().map_err(wq_err)?;
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

fn wq_err(e: cmwq::Error) -> Error {
    Error::Executor(format!("cmwq: {e}"))
}

/// The normal-priority pool of `cpu`: `(idle workers, workers created so far)`.
fn pool_of(cpu: usize) -> (usize, u64) {
    cmwq::debug::pools()
        .into_iter()
        .find(|p| p.cpu == Some(cpu) && !p.highpri)
        .map_or((0, 0), |p| (p.idle, p.created))
}

/// Gives `cpu`'s pool idle workers: `n` items that sleep (announced) at once.
fn warm_pool(wq: &Workqueue, cpu: usize, n: usize) -> Result<(), Error> {
    let items: Vec<Work> = (0..n).map(|_| Work::new(|_| cmwq::sleep(Duration::from_millis(5)))).collect();
    for w in &items {
        wq.queue_on(cpu, w).map_err(wq_err)?;
    }
    wq.flush().map_err(wq_err)
}

fn latency_row(p: &Pair, start: &str, cpu: usize, block: Duration, ok: bool) -> DetectLatencyRow {
    let mut s = p.samples.clone();
    s.sort_unstable();
    let us = |x| percentile_sorted(&s, x).unwrap_or(0) as f64 / 1e3;
    DetectLatencyRow {
        blocking: p.blocking.as_str().into(),
        monitor_start: start.into(),
        cpu,
        block_ms: block.as_secs_f64() * 1e3,
        rounds: s.len(),
        p50_us: us(50.0),
        p90_us: us(90.0),
        p99_us: us(99.0),
        max_us: us(100.0),
        min_us: us(0.0),
        undetected: p.undetected,
        min_idle_workers: if p.min_idle == usize::MAX { 0 } else { p.min_idle },
        workers_created: p.created,
        monitor_blocked: p.monitor_blocked,
        exactly_once: ok,
    }
}

/// One measured (or warm-up) round of `p`, with the pool's and the monitor's
/// counters around it.
fn measured_round(p: &mut Pair, wq: &Workqueue, cpu: usize, i: usize, keep: bool) -> Result<(), Error> {
    let (idle, created0) = pool_of(cpu);
    let m0 = cmwq::debug::monitor();
    let (ns, detected) = p.round(wq, cpu, i)?;
    let (_, created1) = pool_of(cpu);
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

fn latency(ctx: &mut Ctx<'_>, wq: &Workqueue) -> Result<Vec<DetectLatencyRow>, Error> {
    let cfg = ctx.cfg;
    let cpu = ctx.cpus[0];
    let block = cfg.detect_block;
    let rounds = cfg.detect_rounds.max(1);
    let warm = warmup_rounds(cfg);
    let total = rounds + warm;
    ctx.say(&format!(
        "[detect] latency: CPU {cpu}, item A blocks {block:?} with B queued behind it, {rounds} rounds \
         (+{warm} warm-up) per blocking style, plain and announced interleaved"
    ));
    warm_pool(wq, cpu, 4)?;
    let mut pairs = [
        Pair::new(wq, cpu, Blocking::Plain, block, total),
        Pair::new(wq, cpu, Blocking::Announced, block, total),
    ];
    let step = (total / 10).max(1);
    for i in 0..total {
        // Alternate which style goes first, so neither always follows the other.
        for k in 0..2 {
            measured_round(&mut pairs[(i + k) % 2], wq, cpu, i, i >= warm)?;
        }
        if (i + 1) % step == 0 || i + 1 == total {
            let last = |p: &Pair| p.samples.last().map_or(0.0, |&x| x as f64 / 1e3);
            ctx.say(&format!(
                "[detect] latency: round {}/{total}: last plain {:.0} µs, announced {:.0} µs",
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
            "[detect] latency: {parked_rounds} plain rounds, each started once the monitor has parked"
        ));
    }
    for i in 0..parked_rounds {
        wait_monitor_quiet(Duration::from_secs(2));
        measured_round(&mut parked, wq, cpu, i, true)?;
    }
    let mut rows = Vec::new();
    let runs = [(&pairs[0], BACK_TO_BACK), (&pairs[1], BACK_TO_BACK), (&parked, PARKED)];
    for (p, start) in runs.into_iter().filter(|(p, _)| !p.samples.is_empty()) {
        let what = format!("detect latency {} ({start})", p.blocking.as_str());
        let ok = match p.state.batch.check_exactly_once(&what) {
            Ok(()) => true,
            Err(e) => {
                ctx.say(&format!("ERROR: {e}"));
                ctx.notes.push(format!("INVARIANT BROKEN: {e}"));
                false
            }
        };
        let row = latency_row(p, start, cpu, block, ok);
        ctx.say(&format!(
            "[detect] latency {} ({start}): p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs; \
             {} undetected; {} workers created; {} monitor verdicts",
            row.blocking,
            row.p50_us,
            row.p90_us,
            row.p99_us,
            row.max_us,
            row.undetected,
            row.workers_created,
            row.monitor_blocked
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// `monitor_start` of rounds run back to back (plain and announced alternating).
pub const BACK_TO_BACK: &str = "back-to-back";
/// `monitor_start` of rounds started once the monitor had parked.
pub const PARKED: &str = "parked";

fn warmup_rounds(cfg: &crate::Config) -> usize {
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
                crate::burn(burn);
                b.done(i);
            })
        })
        .collect();
    // Round-robin over the CPUs, so every pool starts at once.
    for (i, w) in items.iter().enumerate() {
        wq.queue_on(cpus[i % cpus.len()], w).map_err(wq_err)?;
    }
    batch.wait("detect saturated", timeout)?;
    wq.flush().map_err(wq_err)?;
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
            wi.stats.ticks,
            if wi.cpu.is_none() { " (monitor not started)" } else { "" },
            per_s(&ws) / 1e4,
            ws.wall.as_secs_f64() * 1e3,
            ws.stats.ticks,
            ws.stats.blocked
        ));
    }
    let mut ok = true;
    for b in &sat.batches {
        if let Err(e) = b.check_exactly_once("detect saturated") {
            ctx.say(&format!("ERROR: {e}"));
            ctx.notes.push(format!("INVARIANT BROKEN: {e}"));
            ok = false;
        }
    }
    ctx.notes.push(format!(
        "detect/overhead, idle: before each idle window the harness waited until the monitor's tick count had \
         not moved for {} ms (it backs off to {} ms ticks and parks after 12 ticks that find nothing): {:.0} ms \
         median, {:.0} ms longest.",
        QUIET.as_millis(),
        TICK_MAX_MS,
        median(&settles).unwrap_or(0.0),
        settles.iter().copied().fold(0.0, f64::max)
    ));
    Ok(vec![idle.row("idle", 0, true), sat.row("saturated", per_cpu * cpus.len(), ok)])
}

/// The monitor's longest tick (its back-off ceiling), as the library documents it.
const TICK_MAX_MS: u64 = 10;
/// No tick for this long: the monitor has parked (or never started).
const QUIET: Duration = Duration::from_millis(3 * TICK_MAX_MS);

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

/// Runs the detect workload: latency, then overhead, on one per-CPU workqueue.
pub(crate) fn detect(ctx: &mut Ctx<'_>) -> Result<(Vec<DetectLatencyRow>, Vec<DetectOverheadRow>), Error> {
    let _other = ctx.prepare();
    let wq = Workqueue::builder("bench-detect").build().map_err(wq_err)?;
    let lat = latency(ctx, &wq);
    let ovh = lat.and_then(|l| overhead(ctx, &wq).map(|o| (l, o)));
    let destroyed = wq.destroy().map_err(wq_err);
    let (lat, ovh) = ovh?;
    destroyed?;
    let cfg = ctx.cfg;
    let env = |k: &str| std::env::var(k).map_or_else(|_| "unset".to_string(), |v| format!("{v:?}"));
    ctx.notes.push(format!(
        "detect/latency: on a per-CPU workqueue, item A is queued on CPU {cpu} (queue_on); A queues item B on \
         the same CPU, stamps t0 and blocks {block:?}; B stamps t1 as its first action; latency = t1 - t0. \
         While A counts as running, B waits: with `plain` (std::thread::sleep) only the sleep monitor can let \
         it start (CPU {cpu}'s idle sentinel runs once the CPU goes idle and must see A blocked for 10 µs, or \
         the monitor's tick sees it); with `announced` (cmwq::sleep) the pool wakes an idle worker as A blocks. {rounds} measured rounds per style after {warm} \
         warm-up rounds; the two styles alternate round by round and each round is flushed (A and B finished) \
         before the next. `parked`: {parked} more plain rounds, each started only once the monitor's tick count \
         had stopped moving for 30 ms (it had parked), so that its wake-up by the saturated pool is measured \
         rather than the rest of a back-off tick. The pool was given idle workers first (4 items sleeping at once), so a round wakes a \
         spare instead of creating a thread (`workers created` counts the exceptions). `undetected`: B started \
         only after A woke. CMWQ_MONITOR={mon}, CMWQ_STALL_US={stall}.",
        cpu = ctx.cpus[0],
        block = cfg.detect_block,
        rounds = cfg.detect_rounds.max(1),
        warm = warmup_rounds(cfg),
        parked = cfg.detect_parked_rounds,
        mon = env("CMWQ_MONITOR"),
        stall = env("CMWQ_STALL_US"),
    ));
    ctx.notes.push(format!(
        "detect/overhead: the monitor thread (comm `{MONITOR_THREAD}`, found in /proc/self/task/*/comm) and the \
         idle sentinels (comm `{SENTINEL_THREAD_PREFIX}N`, summed), their CPU time from /proc/self/task/TID/schedstat (ns on the CPU; /proc/self/task/TID/stat utime+stime in \
         clock ticks where schedstat is missing), before and after each window. `idle`: {win:?} with no work, \
         once the monitor has parked (see `detect/overhead, idle`). `saturated`: every \
         CPU's per-CPU pool gets {per_cpu} items that each burn {burn:?} of CPU (below the CPU-intensive \
         threshold), all queued at once, so each pool has work waiting while one worker runs, for about {win:?}; \
         the window lasts until the last item finished. % of one core = CPU time / window wall time. \
         `blocked` there counts false detections (the items never block). Medians over {runs} runs; ticks, \
         blocked, CPU hogs and created are totals. A monitor that never started (nothing ever saturated a pool, \
         or CMWQ_MONITOR=0) reads 0.",
        win = cfg.detect_window,
        per_cpu = ((cfg.detect_window.as_nanos() / cfg.detect_burn.as_nanos().max(1)) as usize).max(1),
        burn = cfg.detect_burn,
        runs = ctx.rounds(),
    ));
    Ok((lat, ovh))
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Headline lines of the detect workload (and of mixed, plain against announced).
pub(crate) fn headline(
    lat: &[DetectLatencyRow],
    ovh: &[DetectOverheadRow],
    mixed: &[MixedRow],
) -> Vec<String> {
    let mut v = Vec::new();
    let by = |b: &str, m: &str| lat.iter().find(|r| r.blocking == b && r.monitor_start == m);
    if let (Some(p), Some(a)) = (by("plain", BACK_TO_BACK), by("announced", BACK_TO_BACK)) {
        let parked = by("plain", PARKED)
            .map(|k| format!("; from a parked monitor p50 {:.0} / p99 {:.0} µs", k.p50_us, k.p99_us))
            .unwrap_or_default();
        v.push(format!(
            "detect: an unannotated block lets the next item start after p50 {:.0} µs / p99 {:.0} µs with \
             rounds back to back{parked} (announced: p50 {:.0} / p99 {:.0} µs); {} of {} back-to-back rounds \
             undetected, {} workers created",
            p.p50_us,
            p.p99_us,
            a.p50_us,
            a.p99_us,
            p.undetected,
            p.rounds,
            lat.iter().map(|r| r.workers_created).sum::<u64>()
        ));
    }
    let load = |l: &str| ovh.iter().find(|r| r.load == l);
    if let (Some(i), Some(s)) = (load("idle"), load("saturated")) {
        v.push(format!(
            "detect: monitor CPU idle {:.1} µs/s ({}), saturated {:.3}% of one core ({:.0} ticks/s, {} false \
             detections; target < 1%); idle sentinels {:.1} µs/s idle, {:.3}% of one core saturated",
            i.cpu_us_per_s,
            i.monitor,
            s.cpu_pct_of_core,
            s.ticks_per_s,
            s.blocked,
            i.sentinel_cpu_us_per_s,
            s.sentinel_cpu_pct_of_core
        ));
    }
    let mx = mixed_plain_vs_announced(mixed);
    if !mx.is_empty() {
        let parts: Vec<String> =
            mx.iter().map(|m| format!("{} {:.2}x", m.ratio, m.plain_over_announced)).collect();
        v.push(format!(
            "mixed, makespan cmwq-bound-plain / cmwq-bound (unannotated / announced): {}",
            parts.join(", ")
        ));
    }
    v
}

/// The markdown sections of the detect workload.
pub(crate) fn markdown(lat: &[DetectLatencyRow], ovh: &[DetectOverheadRow], mixed: &[MixedRow]) -> String {
    let mut s = String::new();
    let yes = |b: bool| if b { "yes" } else { "**NO**" };
    if !lat.is_empty() {
        let _ = writeln!(
            s,
            "## detect/latency: from a worker blocking to the next item starting on its CPU (µs)\n"
        );
        let rows: Vec<Vec<String>> = lat
            .iter()
            .map(|r| {
                vec![
                    r.blocking.clone(),
                    r.monitor_start.clone(),
                    r.cpu.to_string(),
                    format!("{:.0}", r.block_ms),
                    r.rounds.to_string(),
                    format!("{:.0}", r.p50_us),
                    format!("{:.0}", r.p90_us),
                    format!("{:.0}", r.p99_us),
                    format!("{:.0}", r.max_us),
                    r.undetected.to_string(),
                    r.min_idle_workers.to_string(),
                    r.workers_created.to_string(),
                    r.monitor_blocked.to_string(),
                    yes(r.exactly_once).into(),
                ]
            })
            .collect();
        s += &table(
            &[
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
            &rows,
        );
        s.push('\n');
    }
    if !ovh.is_empty() {
        let _ = writeln!(
            s,
            "## detect/overhead: the sleep monitor's and the idle sentinels' own CPU time (median of runs)\n"
        );
        let rows: Vec<Vec<String>> = ovh
            .iter()
            .map(|r| {
                vec![
                    r.load.clone(),
                    r.runs.to_string(),
                    format!("{:.0}", r.window_ms),
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
                    yes(r.exactly_once).into(),
                ]
            })
            .collect();
        s += &table(
            &[
                "load",
                "runs",
                "window ms",
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
            &rows,
        );
        s.push('\n');
    }
    let mx = mixed_plain_vs_announced(mixed);
    if !lat.is_empty() && !mx.is_empty() {
        let _ =
            writeln!(s, "## detect/mixed: unannotated against announced blocking (mixed makespans, ms)\n");
        let rows: Vec<Vec<String>> = mx
            .iter()
            .map(|m| {
                vec![
                    m.ratio.clone(),
                    format!("{:.1}", m.announced_ms),
                    format!("{:.1}", m.plain_ms),
                    format!("{:.2}", m.plain_over_announced),
                ]
            })
            .collect();
        s += &table(
            &["X:Y", "`cmwq-bound` (announced)", "`cmwq-bound-plain` (plain)", "plain / announced"],
            &rows,
        );
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_stat() {
        assert_eq!(parse_schedstat("275138297 366583739 230\n"), Some(275_138_297));
        assert_eq!(parse_schedstat(""), None);
        let stat = "17021 (a) b) S 17020 17021 17021 0 -1 4194560 6722 408850 0 178 8 19 5785 272 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(27));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn finds_a_named_thread_and_its_cpu_time() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::Builder::new()
            .name("bench-detect-t".into())
            .spawn(move || {
                crate::burn(Duration::from_millis(2));
                let _ = rx.recv();
            })
            .unwrap();
        let tid = (0..2000).find_map(|_| {
            std::thread::sleep(Duration::from_millis(1));
            find_thread("bench-detect-t")
        });
        if let Some(tid) = tid {
            let (cpu, src) = thread_cpu(tid).unwrap();
            assert!(src == "schedstat" || src == "stat");
            assert!(cpu <= Duration::from_secs(60));
        }
        assert_eq!(find_thread("no-such-thread-x"), None);
        drop(tx);
        h.join().unwrap();
    }

    #[test]
    fn plain_vs_announced_pairs_by_ratio() {
        let mut a = crate::report::tests::sample_report().mixed[0].clone();
        let mut p = a.clone();
        p.executor = "cmwq-bound-plain".into();
        p.makespan_ms = 33.0;
        let mut other = a.clone();
        other.ratio = "1:4".into();
        assert!(mixed_plain_vs_announced(std::slice::from_ref(&a)).is_empty());
        let v = mixed_plain_vs_announced(&[a.clone(), p.clone(), other]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].ratio, "1:1");
        assert!((v[0].plain_over_announced - 2.0).abs() < 1e-9);
        a.makespan_ms = 0.0;
        assert!(mixed_plain_vs_announced(&[a, p])[0].plain_over_announced.is_finite());
    }
}
