//! The workloads: noop, wake, mixed, many-queues.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmwq::{Workqueue, WqFlags};

use crate::error::Error;
use crate::executors::{Batch, Executor, ExecutorKind, FixedPool, Job, MtWq};
use crate::harness::{warmup_items, Ctx};
use crate::procfs::{self, CpuAccount, CpuMark, Peaks};
use crate::report::{bounds, ManyQueuesRow, MixedRow, NoopRow, WakeRow};
use crate::{median, now_ns, percentile_sorted, CountLatch, StampSlot};

type MakeJob = Arc<dyn Fn(usize, &Batch) -> Job + Send + Sync>;

/// Runs `items` jobs made by `make`, submitted by the first `producers`
/// producers (each its share), and waits for them. Returns the batch and the
/// time from the first submission until the last job finished (ns).
fn timed_batch(
    ctx: &Ctx<'_>,
    exec: &Arc<dyn Executor>,
    producers: usize,
    items: usize,
    make: MakeJob,
    timeout: Duration,
) -> Result<(Batch, u64), Error> {
    let batch = Batch::new(items);
    let err: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    let per = items.div_ceil(producers.max(1));
    let f = {
        let (batch, exec, err) = (batch.clone(), exec.clone(), err.clone());
        Arc::new(move |p: usize| {
            let lo = (p * per).min(items);
            let hi = (lo + per).min(items);
            for i in lo..hi {
                if let Err(e) = exec.spawn(make(i, &batch)) {
                    *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    return;
                }
            }
        })
    };
    let t0 = now_ns();
    ctx.producers.run(producers, f);
    if let Some(e) = err.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(e);
    }
    batch.wait(exec.name(), timeout)?;
    let el = batch.end_ns().saturating_sub(t0);
    Ok((batch, el))
}

/// Checks the batches of an executor once its adapter is gone (so a late
/// duplicate run would be seen too). Returns whether all ran exactly once, and
/// records a note otherwise.
fn all_exactly_once(ctx: &mut Ctx<'_>, what: &str, batches: &[Batch]) -> bool {
    for b in batches {
        if let Err(e) = b.check_exactly_once(what) {
            ctx.say(&format!("ERROR: {e}"));
            ctx.notes.push(format!("INVARIANT BROKEN: {e}"));
            return false;
        }
    }
    true
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

fn median_usize(v: &[usize]) -> usize {
    let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    median(&f).unwrap_or(0.0) as usize
}

/// Per-executor results collected across the interleaved rounds.
#[derive(Default)]
struct Cell {
    values: Vec<f64>,
    threads: Vec<usize>,
    blocked: Vec<usize>,
    /// Per run: the sum over CPUs of each CPU's peak of blocked items.
    blocked_per_cpu: Vec<usize>,
    samples: Vec<u64>,
    batches: Vec<Batch>,
    acct: CpuAccount,
    sampler_cpu: Duration,
}

// ---------------------------------------------------------------------------
// noop
// ---------------------------------------------------------------------------

pub(crate) fn noop(ctx: &mut Ctx<'_>) -> Result<Vec<NoopRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let mut producer_counts = vec![1];
    if cores > 1 {
        producer_counts.push(cores);
    }
    let kinds: Vec<ExecutorKind> =
        ctx.kinds.iter().copied().filter(|k| !k.only_differs_in_blocking()).collect();
    let rounds = ctx.rounds();
    for &np in &producer_counts {
        let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
        for round in 1..=rounds {
            for (cell, &kind) in cells.iter_mut().zip(&kinds) {
                let _other = ctx.prepare();
                let exec = ctx.build(kind)?;
                let items = if kind == ExecutorKind::ThreadPerItem {
                    ctx.cfg.noop_thread_items
                } else {
                    ctx.cfg.noop_items
                };
                let timeout = ctx.cfg.batch_timeout(items, Duration::from_micros(100));
                let make: MakeJob = Arc::new(|i, b| {
                    let b = b.clone();
                    Box::new(move || b.done(i))
                });
                let warm = warmup_items(ctx.cfg, items);
                if warm > 0 {
                    let (batch, _) = timed_batch(ctx, &exec, np, warm, make.clone(), timeout)?;
                    cell.batches.push(batch);
                }
                let (batch, ns) = timed_batch(ctx, &exec, np, items, make, timeout)?;
                ctx.finish(exec);
                let rate = items as f64 / (ns.max(1) as f64 / 1e9);
                ctx.say(&format!(
                    "[noop, {np} producer(s)] {}: run {round}/{rounds}: {:.1} ms, {}",
                    kind.name(),
                    ns as f64 / 1e6,
                    crate::report::rate(rate)
                ));
                cell.batches.push(batch);
                cell.values.push(rate);
            }
        }
        for (cell, &kind) in cells.iter().zip(&kinds) {
            let ok = all_exactly_once(ctx, &format!("noop {}", kind.name()), &cell.batches);
            let med = median(&cell.values).unwrap_or(0.0);
            let (lo, hi) = min_max(&cell.values);
            rows.push(NoopRow {
                executor: kind.name().into(),
                producers: np,
                items: if kind == ExecutorKind::ThreadPerItem {
                    ctx.cfg.noop_thread_items
                } else {
                    ctx.cfg.noop_items
                },
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

// ---------------------------------------------------------------------------
// wake
// ---------------------------------------------------------------------------

struct WakeResult {
    samples: Vec<u64>,
    batch: Batch,
}

fn wake_row(name: &str, samples: &[u64], ok: bool) -> WakeRow {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let p = |x| percentile_sorted(&s, x).unwrap_or(0) as f64 / 1e3;
    WakeRow {
        executor: name.into(),
        samples: s.len(),
        p50_us: p(50.0),
        p90_us: p(90.0),
        p99_us: p(99.0),
        max_us: p(100.0),
        exactly_once: ok,
    }
}

/// Runs on a producer thread: `n` handoffs to an idle executor.
fn wake_samples(exec: Arc<dyn Executor>, n: usize, warm: usize, gap: Duration) -> Result<WakeResult, Error> {
    let batch = Batch::new(n + warm);
    let latch = Arc::new(CountLatch::new());
    let slot = Arc::new(StampSlot::new());
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + warm {
        std::thread::sleep(gap);
        latch.reset(1);
        let (l, s, b) = (latch.clone(), slot.clone(), batch.clone());
        let job: Job = Box::new(move || {
            s.stamp();
            b.done(i);
            l.count_down();
        });
        let t0 = now_ns();
        exec.spawn(job)?;
        if !latch.wait_timeout(Duration::from_secs(10)) {
            return Err(Error::Timeout(format!("wake {}: sample {i} did not start in 10 s", exec.name())));
        }
        let t1 = slot.take().unwrap_or(t0);
        if i >= warm {
            samples.push(t1.saturating_sub(t0));
        }
    }
    batch.wait(exec.name(), Duration::from_secs(10))?;
    Ok(WakeResult { samples, batch })
}

/// Runs on a producer thread: `n` unparks of a bare thread pinned to `cpu`.
fn park_samples(cpu: usize, n: usize, warm: usize, gap: Duration) -> Result<WakeResult, Error> {
    let batch = Batch::new(n + warm);
    let latch = Arc::new(CountLatch::new());
    let slot = Arc::new(StampSlot::new());
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let idx = Arc::new(AtomicUsize::new(0));
    let th = {
        let (latch, slot, go, stop, idx, batch) =
            (latch.clone(), slot.clone(), go.clone(), stop.clone(), idx.clone(), batch.clone());
        std::thread::Builder::new()
            .name(format!("bench-park/{cpu}"))
            .spawn(move || {
                let _ = crate::pin_current_thread(cpu);
                while !stop.load(Ordering::Acquire) {
                    std::thread::park();
                    if go.swap(false, Ordering::AcqRel) {
                        slot.stamp();
                        batch.done(idx.load(Ordering::Acquire));
                        latch.count_down();
                    }
                }
            })
            .map_err(|e| Error::Executor(format!("park thread: {e}")))?
    };
    let mut samples = Vec::with_capacity(n);
    let mut res = Ok(());
    for i in 0..n + warm {
        std::thread::sleep(gap);
        latch.reset(1);
        idx.store(i, Ordering::Release);
        go.store(true, Ordering::Release);
        let t0 = now_ns();
        th.thread().unpark();
        if !latch.wait_timeout(Duration::from_secs(10)) {
            res = Err(Error::Timeout(format!("park-unpark: sample {i} did not wake in 10 s")));
            break;
        }
        let t1 = slot.take().unwrap_or(t0);
        if i >= warm {
            samples.push(t1.saturating_sub(t0));
        }
    }
    stop.store(true, Ordering::Release);
    th.thread().unpark();
    let _ = th.join();
    res.map(|()| WakeResult { samples, batch })
}

pub(crate) fn wake(ctx: &mut Ctx<'_>) -> Result<Vec<WakeRow>, Error> {
    let rounds = ctx.rounds();
    let n = ctx.cfg.wake_samples.max(1).div_ceil(rounds);
    let warm = if ctx.cfg.warmup { 20 } else { 0 };
    let gap = ctx.cfg.wake_gap;
    let kinds: Vec<ExecutorKind> =
        ctx.kinds.iter().copied().filter(|k| !k.only_differs_in_blocking()).collect();
    let mut parks = vec![("park-unpark (same CPU)", ctx.cpus[0])];
    if ctx.cores() > 1 {
        parks.push(("park-unpark (other CPU)", ctx.cpus[1]));
    }
    let mut cells: Vec<Cell> = (0..kinds.len() + parks.len()).map(|_| Cell::default()).collect();
    for round in 1..=rounds {
        for (i, &kind) in kinds.iter().enumerate() {
            let _other = ctx.prepare();
            let exec = ctx.build(kind)?;
            let e = exec.clone();
            let r = ctx.producers.run_on(0, move || wake_samples(e, n, warm, gap))?;
            ctx.finish(exec);
            let row = wake_row(kind.name(), &r.samples, true);
            ctx.say(&format!(
                "[wake] {}: run {round}/{rounds}: {n} samples, p50 {:.1} µs, p99 {:.1} µs",
                kind.name(),
                row.p50_us,
                row.p99_us
            ));
            cells[i].samples.extend(r.samples);
            cells[i].batches.push(r.batch);
        }
        for (j, &(name, cpu)) in parks.iter().enumerate() {
            let r = ctx.producers.run_on(0, move || park_samples(cpu, n, warm, gap))?;
            let row = wake_row(name, &r.samples, true);
            ctx.say(&format!(
                "[wake] {name}: run {round}/{rounds}: {n} samples, p50 {:.1} µs, p99 {:.1} µs",
                row.p50_us, row.p99_us
            ));
            cells[kinds.len() + j].samples.extend(r.samples);
            cells[kinds.len() + j].batches.push(r.batch);
        }
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).chain(parks.iter().map(|p| p.0)).collect();
    let mut rows = Vec::new();
    for (cell, name) in cells.iter().zip(names) {
        let ok = all_exactly_once(ctx, &format!("wake {name}"), &cell.batches);
        rows.push(wake_row(name, &cell.samples, ok));
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// mixed
// ---------------------------------------------------------------------------

/// Spins until the calling thread has used `d` of CPU time.
pub fn burn(d: Duration) {
    let start = cmwq::debug::thread_cpu_time();
    while cmwq::debug::thread_cpu_time().saturating_sub(start) < d {
        std::hint::spin_loop();
    }
}

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

fn mixed_job(
    x: Duration,
    y: Duration,
    blocking: crate::executors::Blocking,
    blocked: Arc<Blocked>,
) -> MakeJob {
    Arc::new(move |i, b| {
        let (b, blocked) = (b.clone(), blocked.clone());
        Box::new(move || {
            burn(x);
            if !y.is_zero() {
                let now = blocked.now.fetch_add(1, Ordering::AcqRel) + 1;
                blocked.peak.fetch_max(now, Ordering::AcqRel);
                let cpu = crate::current_cpu().unwrap_or(0).min(blocked.per_cpu.len() - 1);
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

pub(crate) fn mixed(ctx: &mut Ctx<'_>) -> Result<Vec<MixedRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let n = ctx.cfg.mixed_items;
    let x = ctx.cfg.mixed_burn;
    let hz = procfs::user_hz();
    let rounds = ctx.rounds();
    let kinds = ctx.kinds.clone();
    let nr_cpu_ids = ctx.cpus.iter().max().map_or(1, |&c| c + 1);
    for &m in &ctx.cfg.mixed_block_ratios.clone() {
        let y = x * m;
        let b = bounds(n, x, y, cores);
        let timeout = ctx.cfg.batch_timeout(n, x + y);
        let mut cells: Vec<Cell> = kinds.iter().map(|_| Cell::default()).collect();
        let mut blockings = Vec::new();
        for round in 1..=rounds {
            for (cell, &kind) in cells.iter_mut().zip(&kinds) {
                let other = ctx.prepare();
                let exec = ctx.build(kind)?;
                let blocking = exec.blocking();
                if round == 1 {
                    blockings.push(blocking);
                }
                // Items blocked at once, over the warm-up and the run: the threads an
                // executor kept from its warm-up are in the run's thread count, so the
                // reference (cores + blocked + 2) must cover the warm-up's blocking too.
                let blocked = Arc::new(Blocked::new(nr_cpu_ids));
                let warm = warmup_items(ctx.cfg, n);
                if warm > 0 {
                    let make = mixed_job(x, y, blocking, blocked.clone());
                    let (batch, _) = timed_batch(ctx, &exec, cores, warm, make, timeout)?;
                    cell.batches.push(batch);
                }
                let make = mixed_job(x, y, blocking, blocked.clone());
                ctx.sampler.open();
                let m0 = CpuMark::now(&ctx.cpus);
                let res = timed_batch(ctx, &exec, cores, n, make, timeout);
                let m1 = CpuMark::now(&ctx.cpus);
                let p: Peaks = ctx.sampler.close();
                let (batch, ns) = res?;
                ctx.finish(exec);
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
                cell.sampler_cpu += p.sampler_cpu;
                cell.blocked.push(bp);
                cell.blocked_per_cpu.push(blocked.per_cpu_peak_sum());
            }
        }
        for ((cell, &kind), blocking) in cells.iter().zip(&kinds).zip(blockings) {
            let ok = all_exactly_once(ctx, &format!("mixed 1:{m} {}", kind.name()), &cell.batches);
            let med = median(&cell.values).unwrap_or(0.0);
            let (lo, hi) = min_max(&cell.values);
            let peak_blocked = median_usize(&cell.blocked);
            let cpu = cell.acct.split(cores, hz);
            let runs = cell.values.len().max(1) as f64;
            let overhead =
                (cell.acct.ours().as_secs_f64() / runs - x.as_secs_f64() * n as f64) / n.max(1) as f64;
            rows.push(MixedRow {
                executor: kind.name().into(),
                blocking: blocking.as_str().into(),
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

// ---------------------------------------------------------------------------
// many-queues
// ---------------------------------------------------------------------------

/// One queue of a many-queues family.
enum Queue {
    Cmwq(Workqueue),
    Mt(MtWq),
    Pool(FixedPool),
}

impl Queue {
    fn create(kind: ExecutorKind, i: usize, cpus: &[usize]) -> Result<Queue, Error> {
        let name = format!("mq-{i}");
        let cmwq = |flags| {
            Workqueue::builder(name.clone())
                .flags(flags)
                .build()
                .map(Queue::Cmwq)
                .map_err(|e| Error::Executor(e.to_string()))
        };
        match kind {
            ExecutorKind::CmwqBound => cmwq(WqFlags::empty()),
            ExecutorKind::CmwqUnbound => cmwq(WqFlags::UNBOUND),
            ExecutorKind::MtWq => MtWq::new(cpus, &name).map(Queue::Mt),
            ExecutorKind::FixedPool => FixedPool::new(cpus.len(), &name).map(Queue::Pool),
            _ => Err(Error::Executor(format!("{} has no per-queue form", kind.name()))),
        }
    }

    fn spawn(&self, job: Job) -> Result<(), Error> {
        match self {
            Queue::Cmwq(wq) => wq.spawn(job).map_err(|e| Error::Executor(e.error().to_string())),
            Queue::Mt(q) => q.queue(job),
            Queue::Pool(p) => p.spawn(job),
        }
    }

    fn flush(&self) -> Result<(), Error> {
        match self {
            Queue::Cmwq(wq) => wq.flush().map_err(|e| Error::Executor(e.to_string())),
            Queue::Mt(q) => {
                q.flush();
                Ok(())
            }
            Queue::Pool(p) => {
                p.flush();
                Ok(())
            }
        }
    }

    fn destroy(self) -> Result<(), Error> {
        match self {
            Queue::Cmwq(wq) => wq.destroy().map_err(|e| Error::Executor(e.to_string())),
            // Dropping closes the lists and joins the threads.
            Queue::Mt(q) => {
                drop(q);
                Ok(())
            }
            Queue::Pool(p) => {
                drop(p);
                Ok(())
            }
        }
    }
}

pub(crate) fn many_queues(ctx: &mut Ctx<'_>) -> Result<Vec<ManyQueuesRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let k = ctx.cfg.mq_items_per_cpu.max(1);
    let families =
        [ExecutorKind::CmwqBound, ExecutorKind::CmwqUnbound, ExecutorKind::MtWq, ExecutorKind::FixedPool];
    let selected: Vec<ExecutorKind> = families.into_iter().filter(|f| ctx.kinds.contains(f)).collect();
    for kind in selected {
        let asked = ctx.cfg.mq_queues.max(1);
        let (q, note) = if kind.is_cmwq() {
            (asked, None)
        } else {
            let q = (ctx.cfg.mq_thread_cap / cores).clamp(1, asked);
            let note = (q < asked).then(|| {
                format!(
                    "capped at {} threads = {q} queues × {cores} threads (asked {asked} queues)",
                    q * cores
                )
            });
            (q, note)
        };
        let label = if kind == ExecutorKind::FixedPool { "fixed-pool (one per queue)" } else { kind.name() };
        let other = ctx.prepare();
        let per_queue = cores * k;
        let batch_items = q * per_queue;
        ctx.say(&format!("[many-queues] {label}: creating {q} queues, {batch_items} items"));
        let batch = Batch::new(batch_items);
        procfs::trim_heap();
        let rss0 = procfs::rss_bytes();
        ctx.sampler.open();
        let t = Instant::now();
        let queues: Result<Vec<Queue>, Error> = (0..q).map(|i| Queue::create(kind, i, &ctx.cpus)).collect();
        let queues = match queues {
            Ok(v) => Arc::new(v),
            Err(e) => {
                ctx.sampler.close();
                return Err(e);
            }
        };
        let create = t.elapsed();
        let err: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        {
            let (queues, batch, err) = (queues.clone(), batch.clone(), err.clone());
            ctx.producers.run(
                cores,
                Arc::new(move |p| {
                    for (qi, queue) in queues.iter().enumerate() {
                        for j in 0..k {
                            let i = (qi * cores + p) * k + j;
                            let b = batch.clone();
                            if let Err(e) = queue.spawn(Box::new(move || b.done(i))) {
                                *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                                return;
                            }
                        }
                    }
                }),
            );
        }
        if let Some(e) = err.lock().unwrap_or_else(|e| e.into_inner()).take() {
            ctx.sampler.close();
            return Err(e);
        }
        let waited = batch.wait(label, ctx.cfg.batch_timeout(batch_items, Duration::from_micros(100)));
        if let Err(e) = waited {
            ctx.sampler.close();
            return Err(e);
        }
        for queue in queues.iter() {
            queue.flush()?;
        }
        let idle_threads_now = procfs::settled_threads(Duration::from_millis(200));
        let idle = Peaks {
            all: idle_threads_now,
            non_cmwq: idle_threads_now.saturating_sub(cmwq::debug::nr_workers()),
            sampler_cpu: Duration::ZERO,
        };
        let threads_idle = ctx.threads_of(kind, idle, other);
        procfs::trim_heap();
        let rss1 = procfs::rss_bytes();
        let t = Instant::now();
        let queues = Arc::try_unwrap(queues).map_err(|_| Error::Executor("queues still shared".into()))?;
        for queue in queues {
            queue.destroy()?;
        }
        let destroy = t.elapsed();
        let peaks = ctx.sampler.close();
        let threads_peak = ctx.threads_of(kind, peaks, other);
        let ok = all_exactly_once(ctx, &format!("many-queues {label}"), std::slice::from_ref(&batch));
        let delta = rss1 as i64 - rss0 as i64;
        let row = ManyQueuesRow {
            executor: label.into(),
            queues: q,
            items_per_queue: per_queue,
            threads_idle,
            threads_peak,
            rss_delta_bytes: delta,
            bytes_per_queue: delta as f64 / q as f64,
            create_ms: create.as_secs_f64() * 1e3,
            destroy_ms: destroy.as_secs_f64() * 1e3,
            create_us_per_queue: create.as_secs_f64() * 1e6 / q as f64,
            destroy_us_per_queue: destroy.as_secs_f64() * 1e6 / q as f64,
            note,
            exactly_once: ok,
        };
        ctx.say(&format!(
            "[many-queues] {label}: {q} queues: {} threads idle ({} peak), {} per idle queue, create {:.1} ms, destroy {:.1} ms",
            row.threads_idle,
            row.threads_peak,
            crate::report::bytes(row.bytes_per_queue),
            row.create_ms,
            row.destroy_ms
        ));
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_uses_cpu_time() {
        let t0 = cmwq::debug::thread_cpu_time();
        burn(Duration::from_millis(2));
        assert!(cmwq::debug::thread_cpu_time() - t0 >= Duration::from_millis(2));
    }

    #[test]
    fn wake_row_percentiles() {
        let samples: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        let row = wake_row("x", &samples, true);
        assert_eq!((row.p50_us, row.p90_us, row.p99_us, row.max_us), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(row.samples, 100);
    }

    #[test]
    fn medians() {
        assert_eq!(median_usize(&[5, 1, 3]), 3);
        assert_eq!(median_usize(&[]), 0);
        assert_eq!(min_max(&[2.0, 1.0, 3.0]), (1.0, 3.0));
    }
}
