//! A short mixed CPU-and-blocking workload over several workqueues, with the
//! pools' live state printed while it runs.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::debug::PoolSnapshot;
use cmwq::{Work, Workqueue, WqFlags};

use super::{burn_cpu, Result};

/// How often the live state is printed.
const PRINT_EVERY: Duration = Duration::from_millis(250);
/// How often the pools are sampled for the peak worker count.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// How long to wait for stragglers after the last item was queued.
const GRACE: Duration = Duration::from_secs(30);
/// Fixed, so two runs queue the same items.
const SEED: u64 = 0x5EED_C0DE_2024;

/// What the workload does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Seconds during which items are queued.
    pub(crate) secs: f64,
    /// Items queued per second.
    pub(crate) rate: u32,
}

/// One of the workload's workqueues, and its share of the items.
#[derive(Debug)]
struct QueueSpec {
    name: &'static str,
    flags: WqFlags,
    max_active: usize,
    weight: u32,
}

fn queue_specs() -> [QueueSpec; 4] {
    [
        QueueSpec { name: "mixed-percpu", flags: WqFlags::PERCPU, max_active: 0, weight: 4 },
        QueueSpec {
            name: "mixed-highpri",
            flags: WqFlags::PERCPU | WqFlags::HIGHPRI,
            max_active: 0,
            weight: 2,
        },
        QueueSpec {
            name: "mixed-cpu-intensive",
            flags: WqFlags::PERCPU | WqFlags::CPU_INTENSIVE,
            max_active: 2,
            weight: 1,
        },
        QueueSpec { name: "mixed-unbound", flags: WqFlags::UNBOUND, max_active: 4, weight: 3 },
    ]
}

/// SplitMix64: a tiny deterministic generator, plenty for picking workloads.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (the tiny modulo bias does not matter here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// One item of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ItemPlan {
    /// Index into the queue specs.
    queue: usize,
    /// CPU for per-CPU queues (round-robin over the usable CPUs).
    cpu: usize,
    burn: Duration,
    sleep: Duration,
}

/// `n` items: 0.2–2 ms of CPU, 1–5 ms of sleep, queues picked by weight.
fn plan(n: usize, weights: &[u32], cpus: &[usize], seed: u64) -> Vec<ItemPlan> {
    let total: u32 = weights.iter().sum();
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut pick = rng.range(0, u64::from(total) - 1);
            let queue = weights
                .iter()
                .position(|&w| {
                    let hit = pick < u64::from(w);
                    pick = pick.saturating_sub(u64::from(w));
                    hit
                })
                .unwrap_or(0);
            ItemPlan {
                queue,
                cpu: cpus[i % cpus.len()],
                burn: Duration::from_micros(rng.range(200, 2_000)),
                sleep: Duration::from_micros(rng.range(1_000, 5_000)),
            }
        })
        .collect()
}

/// One pool's live state, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PoolRow {
    pool: String,
    highpri: bool,
    workers: usize,
    running: i64,
    idle: usize,
    busy: usize,
    pending: usize,
    inactive: usize,
    completed: u64,
}

impl From<&PoolSnapshot> for PoolRow {
    fn from(p: &PoolSnapshot) -> Self {
        PoolRow {
            pool: p.cpu.map_or_else(|| "unbound".to_owned(), |c| format!("cpu {c}")),
            highpri: p.highpri,
            workers: p.workers,
            running: p.running,
            idle: p.idle,
            busy: p.busy,
            pending: p.pending,
            inactive: p.inactive,
            completed: p.completed,
        }
    }
}

fn render_pools(rows: &[PoolRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "    {:<8} {:<7} {:>7} {:>7} {:>4} {:>4} {:>7} {:>8} {:>9}",
        "pool", "highpri", "workers", "running", "idle", "busy", "pending", "inactive", "completed"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "    {:<8} {:<7} {:>7} {:>7} {:>4} {:>4} {:>7} {:>8} {:>9}",
            r.pool,
            if r.highpri { "yes" } else { "no" },
            r.workers,
            r.running,
            r.idle,
            r.busy,
            r.pending,
            r.inactive,
            r.completed
        );
    }
    s
}

/// Counters the items update.
#[derive(Debug)]
struct Progress {
    start: Instant,
    done: AtomicUsize,
    /// Nanoseconds from `start` to the latest completion.
    last_done_ns: AtomicU64,
}

fn make_item(p: &ItemPlan, progress: &Arc<Progress>) -> Work {
    let (burn, sleep, progress) = (p.burn, p.sleep, progress.clone());
    Work::new(move |_| {
        burn_cpu(burn);
        cmwq::sleep(sleep);
        let ns = u64::try_from(progress.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        progress.last_done_ns.fetch_max(ns, Ordering::Relaxed);
        progress.done.fetch_add(1, Ordering::Release);
    })
}

fn queue_item(q: &Workqueue, p: &ItemPlan, w: &Work) -> Result<()> {
    if q.flags().contains(WqFlags::UNBOUND) {
        q.queue(w)?;
    } else {
        q.queue_on(p.cpu, w)?;
    }
    Ok(())
}

/// Workers created so far, summed over all pools.
fn created_so_far() -> u64 {
    cmwq::debug::pools().iter().map(|p| p.created).sum()
}

/// Runs the workload on the per-CPU pools of `cpus` and the unbound pool.
pub(crate) fn run(out: &mut dyn Write, cpus: &[usize], cfg: &Config) -> Result<()> {
    let specs = queue_specs();
    let weights: Vec<u32> = specs.iter().map(|s| s.weight).collect();
    // `secs` is validated to 0.1..=60 and `rate` to 1..=10_000: at most 600_000 items.
    let n = ((cfg.secs * f64::from(cfg.rate)).round() as usize).max(1);
    let items = plan(n, &weights, cpus, SEED);
    let interval = Duration::from_secs(1) / cfg.rate;

    writeln!(out, "== Part 2: a mixed CPU-and-blocking workload")?;
    writeln!(
        out,
        "   {n} items at {}/s for {:.1} s; each burns 0.2-2 ms of CPU, then cmwq::sleep()s 1-5 ms",
        cfg.rate, cfg.secs
    )?;
    let mut queues = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let q = Workqueue::builder(s.name).flags(s.flags).max_active(s.max_active).build()?;
        let share = items.iter().filter(|p| p.queue == i).count();
        writeln!(out, "   {:<20} {share:>4} items  max_active {:<5} {:?}", s.name, q.max_active(), s.flags)?;
        queues.push(q);
    }
    writeln!(out, "   live pool state every {} ms:", PRINT_EVERY.as_millis())?;
    out.flush()?;

    let progress = Arc::new(Progress {
        start: Instant::now(),
        done: AtomicUsize::new(0),
        last_done_ns: AtomicU64::new(0),
    });
    let works: Vec<Work> = items.iter().map(|p| make_item(p, &progress)).collect();
    let created_before = created_so_far();
    let start = progress.start;
    let mut queued = 0usize;
    let mut next_print = PRINT_EVERY;
    let mut peak_workers = 0usize;
    loop {
        let now = start.elapsed();
        // Sample before queueing, so a snapshot never just shows the item queued a
        // microsecond ago waiting for its worker to wake up.
        let pools = cmwq::debug::pools();
        peak_workers = peak_workers.max(pools.iter().map(|p| p.workers).sum());
        let done = progress.done.load(Ordering::Acquire);
        if now >= next_print || done == n {
            writeln!(out, "  t={:.2}s  queued {queued}/{n}  done {done}", now.as_secs_f64())?;
            let rows: Vec<PoolRow> = pools.iter().map(PoolRow::from).collect();
            write!(out, "{}", render_pools(&rows))?;
            out.flush()?;
            while next_print <= now {
                next_print += PRINT_EVERY;
            }
        }
        if done == n {
            break;
        }
        if now > interval * n as u32 + GRACE {
            return Err(format!(
                "the mixed workload did not finish: {done} of {n} items done after {:.1} s",
                now.as_secs_f64()
            )
            .into());
        }
        while queued < n && interval * queued as u32 <= now {
            queue_item(&queues[items[queued].queue], &items[queued], &works[queued])?;
            queued += 1;
        }
        let next_due = if queued < n { interval * queued as u32 } else { next_print };
        let wake = next_due.min(next_print).min(now + SAMPLE_EVERY);
        std::thread::sleep(wake.saturating_sub(start.elapsed()));
    }
    // Statistics live on the queues' pwqs, which `destroy` frees: read them first.
    let mut stats = Vec::with_capacity(queues.len());
    for q in &queues {
        q.flush()?;
        stats.push(q.stats());
    }
    for q in &queues {
        q.destroy()?;
    }

    let makespan = Duration::from_nanos(progress.last_done_ns.load(Ordering::Relaxed));
    writeln!(out)?;
    writeln!(out, "   per workqueue:")?;
    writeln!(
        out,
        "    {:<20} {:>7} {:>9} {:>9} {:>13} {:>6} {:>7}",
        "workqueue", "started", "completed", "cm_wakeup", "cpu_intensive", "mayday", "rescued"
    )?;
    for (q, st) in queues.iter().zip(&stats) {
        writeln!(
            out,
            "    {:<20} {:>7} {:>9} {:>9} {:>13} {:>6} {:>7}",
            q.name(),
            st.started,
            st.completed,
            st.cm_wakeup,
            st.cpu_intensive,
            st.mayday,
            st.rescued
        )?;
    }
    writeln!(out)?;
    writeln!(out, "== Totals")?;
    writeln!(out, "   items completed: {} of {n}", progress.done.load(Ordering::Acquire))?;
    writeln!(out, "   makespan (first queueing to last completion): {:.3} s", makespan.as_secs_f64())?;
    writeln!(
        out,
        "   peak workers, summed over pools (sampled every ~{} ms): {peak_workers}",
        SAMPLE_EVERY.as_millis()
    )?;
    writeln!(
        out,
        "   workers created during the workload: {}",
        created_so_far().saturating_sub(created_before)
    )?;
    if cmwq::debug::panics() > 0 {
        writeln!(out, "   work items that panicked: {}", cmwq::debug::panics())?;
    }
    if cmwq::debug::highpri_nice_applied() == Some(false) {
        writeln!(out, "   note: highpri workers ran at the default priority (nice -20 not permitted)")?;
    }
    Ok(())
}

/// A burst on one CPU of a per-CPU queue: four items that block for 20 ms
/// without saying so, then two that hog the CPU for 15 ms, queued at once so
/// that the pool saturates and the sleep monitor has blocks to find and hogs
/// to mark (`cmwq top`'s `blocked` and `CPUitsv`).
fn burst(q: &Workqueue, cpu: usize, backlog: &Arc<AtomicUsize>, done: &Arc<AtomicU64>) -> Result<u64> {
    const ITEMS: u64 = 6;
    for i in 0..ITEMS {
        let (b, d) = (backlog.clone(), done.clone());
        let w = Work::new(move |_| {
            if i < 4 {
                std::thread::sleep(Duration::from_millis(20));
            } else {
                burn_cpu(Duration::from_millis(15));
            }
            b.fetch_sub(1, Ordering::Relaxed);
            d.fetch_add(1, Ordering::Relaxed);
        });
        backlog.fetch_add(1, Ordering::Relaxed);
        q.queue_on(cpu, &w)?;
    }
    Ok(ITEMS)
}

/// `cmwq demo --serve`: serves stats and keeps the mixed workload's queues
/// busy at `rate` items a second until `until` (or until interrupted), so that
/// `cmwq top` and `cmwq dump` have something to show. Every 50th item of the
/// per-CPU queue hogs its CPU for 15 ms, every 40th item of the unbound queue
/// blocks for 3 ms without saying so, and every 5 s a [`burst`] saturates a
/// per-CPU pool (the monitor's blocks and CPU hogs). A fifth queue,
/// `mixed-reclaim` (`UNBOUND | MEM_RECLAIM`), has a rescuer.
pub(crate) fn serve(out: &mut dyn Write, cpus: &[usize], rate: u32, until: Option<Duration>) -> Result<()> {
    /// Items queued and not yet finished past which queueing pauses, so that a
    /// machine too busy for the rate is not buried.
    const MAX_BACKLOG: usize = 2_000;
    const STATUS_EVERY: Duration = Duration::from_secs(5);
    let path = cmwq::stats::serve()?;
    let pid = std::process::id();
    writeln!(out, "cmwq demo --serve: stats on {} (pid {pid})", path.display())?;
    writeln!(out, "   from another terminal: cmwq top   (or cmwq top --pid {pid}; cmwq dump --pid {pid})")?;
    match until {
        Some(d) => {
            writeln!(out, "   the mixed workload runs at {rate} items/s for {:.1} s", d.as_secs_f64())?
        }
        None => writeln!(out, "   the mixed workload runs at {rate} items/s until interrupted (Ctrl-C)")?,
    }
    let specs = queue_specs();
    let weights: Vec<u32> = specs.iter().map(|s| s.weight).collect();
    let mut queues = Vec::with_capacity(specs.len());
    for s in &specs {
        queues.push(Workqueue::builder(s.name).flags(s.flags).max_active(s.max_active).build()?);
    }
    // A queue with a rescuer, for `cmwq dump`'s rescuer section and `cmwq top`'s
    // mayday and rescued columns: every 10th item also queues a short one here.
    let reclaim = Workqueue::builder("mixed-reclaim")
        .flags(WqFlags::UNBOUND | WqFlags::MEM_RECLAIM)
        .max_active(2)
        .build()?;
    out.flush()?;
    let backlog = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let (mut queued, mut skipped, mut round) = (0u64, 0u64, 0u64);
    let mut next_status = STATUS_EVERY;
    loop {
        // One second's items per round, from a fresh seed each round.
        let items = plan(rate as usize, &weights, cpus, SEED.wrapping_add(round));
        if round % 5 == 2 {
            queued += burst(&queues[0], cpus[0], &backlog, &done)?;
        }
        let round_start = start + interval * (round * u64::from(rate)) as u32;
        for (i, p) in items.iter().enumerate() {
            let due = round_start + interval * i as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let now = start.elapsed();
            if until.is_some_and(|u| now >= u) {
                writeln!(
                    out,
                    "   t={:.1}s: done; queued {queued}, completed {}",
                    now.as_secs_f64(),
                    done.load(Ordering::Relaxed)
                )?;
                return Ok(());
            }
            if now >= next_status {
                writeln!(
                    out,
                    "   t={:.0}s  queued {queued}  completed {}  waiting {}  workers {}  skipped {skipped}",
                    now.as_secs_f64(),
                    done.load(Ordering::Relaxed),
                    backlog.load(Ordering::Relaxed),
                    cmwq::debug::nr_workers()
                )?;
                out.flush()?;
                next_status += STATUS_EVERY;
            }
            if backlog.load(Ordering::Relaxed) >= MAX_BACKLOG {
                skipped += 1;
                continue;
            }
            let n = queued;
            let (hog, unannounced) = (p.queue == 0 && n % 50 == 0, p.queue == 3 && n % 40 == 0);
            let (burn, sleep) = (if hog { Duration::from_millis(15) } else { p.burn }, p.sleep);
            let (b, d) = (backlog.clone(), done.clone());
            let w = Work::new(move |_| {
                burn_cpu(burn);
                if unannounced {
                    std::thread::sleep(Duration::from_millis(3)); // the monitor finds this one
                } else {
                    cmwq::sleep(sleep);
                }
                b.fetch_sub(1, Ordering::Relaxed);
                d.fetch_add(1, Ordering::Relaxed);
            });
            backlog.fetch_add(1, Ordering::Relaxed);
            queue_item(&queues[p.queue], p, &w)?;
            queued += 1;
            if n % 10 == 0 {
                let (b, d) = (backlog.clone(), done.clone());
                backlog.fetch_add(1, Ordering::Relaxed);
                reclaim.queue(&Work::new(move |_| {
                    burn_cpu(Duration::from_micros(200));
                    b.fetch_sub(1, Ordering::Relaxed);
                    d.fetch_add(1, Ordering::Relaxed);
                }))?;
                queued += 1;
            }
        }
        round += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_deterministic_and_in_range() {
        let a = plan(500, &[4, 2, 1, 3], &[0, 1], 7);
        assert_eq!(a, plan(500, &[4, 2, 1, 3], &[0, 1], 7));
        assert_ne!(a, plan(500, &[4, 2, 1, 3], &[0, 1], 8));
        for (i, p) in a.iter().enumerate() {
            assert!((200..=2_000).contains(&p.burn.as_micros()));
            assert!((1_000..=5_000).contains(&p.sleep.as_micros()));
            assert_eq!(p.cpu, i % 2);
        }
        // Every queue gets a share roughly matching its weight.
        let count = |q| a.iter().filter(|p| p.queue == q).count();
        assert!(count(0) > count(2) * 2 && count(3) > count(2) && count(2) > 0);
    }

    #[test]
    fn pool_table_aligns() {
        let row = PoolRow {
            pool: "unbound".into(),
            highpri: true,
            workers: 3,
            running: 0,
            idle: 1,
            busy: 2,
            pending: 0,
            inactive: 5,
            completed: 1234,
        };
        let out = render_pools(&[row]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), lines[1].len(), "{out}");
        assert!(lines[1].starts_with("    unbound  yes"));
        assert!(lines[1].ends_with(" 5      1234"));
    }
}
