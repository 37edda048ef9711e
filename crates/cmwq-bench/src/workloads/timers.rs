//! The `timers` workload: cmwq's delayed work beside `tokio::time`.
//!
//! - **ops**: the cost of arming and of cancelling one timer while a large
//!   number of others stay armed (10⁶ in the full mode), and the memory each
//!   armed timer takes (its item included). Peers: a `tokio_util::time::DelayQueue`
//!   (a single-owner wheel, no locking: the data-structure floor) and
//!   `tokio::time::sleep` futures (registered with the runtime's timer on their
//!   first poll, cancelled by dropping them: the thread-safe equivalent).
//! - **fire**: lateness of timers spread over an interval (10⁴ over 1 s in the
//!   full mode), from the deadline to the start of the callback (cmwq) or to
//!   the task resuming after `sleep_until` (tokio), on an idle machine and
//!   with every CPU kept busy by spinning threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use cmwq::{DelayedWork, Workqueue, WqFlags};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::fmt::{section, yes};
use crate::procfs;
use crate::stats::{median, Latency};
use crate::sync::{epoch, now_ns};

/// timers/ops: arm and cancel with many timers armed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerOpsRow {
    /// `cmwq`, `tokio-delayqueue` or `tokio-sleep`.
    pub executor: String,
    /// Timers kept armed in the background while measuring.
    pub background_armed: usize,
    /// Arms (and then cancels) per measured run.
    pub ops: usize,
    /// Median over runs of the mean cost of one arm (ns).
    pub arm_ns: f64,
    /// Median over runs of the mean cost of one cancel (ns).
    pub cancel_ns: f64,
    /// Every run's arm cost.
    pub arm_ns_runs: Vec<f64>,
    /// Every run's cancel cost.
    pub cancel_ns_runs: Vec<f64>,
    /// RSS growth per background timer, the item or future included (bytes).
    pub bytes_per_timer: f64,
    /// Every measured arm was cancelled before it fired.
    pub exactly_once: bool,
}

/// timers/fire: lateness of timers spread over an interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerFireRow {
    /// `cmwq` or `tokio`.
    pub executor: String,
    /// `idle` or `busy` (a spinning thread per CPU).
    pub load: String,
    /// Timers per run.
    pub timers: usize,
    /// Interval their deadlines are spread over (ms).
    pub spread_ms: f64,
    /// Median over runs of each run's lateness percentiles; the largest of all runs.
    #[serde(flatten)]
    pub lateness: Latency,
    /// Timers that ran before their deadline (must be 0).
    pub early: usize,
    /// Every timer ran exactly once.
    pub exactly_once: bool,
}

/// A small xorshift generator: the same pseudo-random delays for every executor.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A delay in `[lo, hi)`.
    fn delay(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_nanos().max(1) as u64;
        lo + Duration::from_nanos(self.next() % span)
    }
}

/// Background timers: far enough out that none fires during the run.
fn background_delays(n: usize) -> Vec<Duration> {
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    (0..n).map(|_| r.delay(Duration::from_secs(3600), Duration::from_secs(7200))).collect()
}

/// Measured timers: 10 s to 1000 s out, so none fires before it is cancelled.
fn op_delays(n: usize) -> Vec<Duration> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n).map(|_| r.delay(Duration::from_secs(10), Duration::from_secs(1000))).collect()
}

fn per_op(t: Instant, n: usize) -> f64 {
    t.elapsed().as_nanos() as f64 / n.max(1) as f64
}

fn rss_per(before: u64, n: usize) -> f64 {
    procfs::rss_bytes().saturating_sub(before) as f64 / n.max(1) as f64
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::Executor(format!("tokio runtime: {e}")))
}

fn ops_row(name: &str, ctx: &Ctx<'_>, arm: Vec<f64>, cancel: Vec<f64>, bytes: f64, ok: bool) -> TimerOpsRow {
    TimerOpsRow {
        executor: name.into(),
        background_armed: ctx.cfg.timer_background,
        ops: ctx.cfg.timer_ops,
        arm_ns: median(&arm).unwrap_or(0.0),
        cancel_ns: median(&cancel).unwrap_or(0.0),
        arm_ns_runs: arm,
        cancel_ns_runs: cancel,
        bytes_per_timer: bytes,
        exactly_once: ok,
    }
}

fn cmwq_ops(ctx: &Ctx<'_>) -> Result<TimerOpsRow, Error> {
    let cfg = ctx.cfg;
    let wq = Workqueue::builder("bench-timer-ops").flags(WqFlags::PERCPU).build()?;
    procfs::trim_heap();
    let rss0 = procfs::rss_bytes();
    let bg: Vec<DelayedWork> = (0..cfg.timer_background).map(|_| DelayedWork::new(|_| {})).collect();
    for (dw, d) in bg.iter().zip(background_delays(bg.len())) {
        wq.queue_delayed(dw, d)?;
    }
    let bytes = rss_per(rss0, bg.len());
    let items: Vec<DelayedWork> = (0..cfg.timer_ops).map(|_| DelayedWork::new(|_| {})).collect();
    let delays = op_delays(items.len());
    let (mut arm, mut cancel, mut ok) = (Vec::new(), Vec::new(), true);
    for _ in 0..cfg.runs {
        let t = Instant::now();
        for (dw, &d) in items.iter().zip(&delays) {
            ok &= wq.queue_delayed(dw, d)?;
        }
        arm.push(per_op(t, items.len()));
        let t = Instant::now();
        for dw in &items {
            ok &= dw.cancel();
        }
        cancel.push(per_op(t, items.len()));
    }
    for dw in &bg {
        ok &= dw.cancel();
    }
    Ok(ops_row("cmwq", ctx, arm, cancel, bytes, ok))
}

fn delayqueue_ops(ctx: &Ctx<'_>) -> Result<TimerOpsRow, Error> {
    use tokio_util::time::DelayQueue;
    let cfg = ctx.cfg;
    let rt = tokio_runtime()?;
    let _enter = rt.enter();
    procfs::trim_heap();
    let rss0 = procfs::rss_bytes();
    let mut q: DelayQueue<usize> = DelayQueue::new();
    for (i, d) in background_delays(cfg.timer_background).into_iter().enumerate() {
        q.insert(i, d);
    }
    let bytes = rss_per(rss0, cfg.timer_background);
    let delays = op_delays(cfg.timer_ops);
    let (mut arm, mut cancel, mut ok) = (Vec::new(), Vec::new(), true);
    let mut keys = Vec::with_capacity(delays.len());
    for _ in 0..cfg.runs {
        let t = Instant::now();
        for (i, &d) in delays.iter().enumerate() {
            keys.push(q.insert(i, d));
        }
        arm.push(per_op(t, delays.len()));
        let t = Instant::now();
        for k in keys.drain(..) {
            ok &= q.try_remove(&k).is_some();
        }
        cancel.push(per_op(t, delays.len()));
    }
    ok &= q.len() == cfg.timer_background;
    drop(q);
    Ok(ops_row("tokio-delayqueue", ctx, arm, cancel, bytes, ok))
}

struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// A `sleep` future polled once, which registers it with the runtime's timer.
fn armed_sleep(d: Duration, cx: &mut Context<'_>) -> (Pin<Box<tokio::time::Sleep>>, bool) {
    let mut s = Box::pin(tokio::time::sleep(d));
    let pending = s.as_mut().poll(cx) == Poll::Pending;
    (s, pending)
}

fn sleep_ops(ctx: &Ctx<'_>) -> Result<TimerOpsRow, Error> {
    let cfg = ctx.cfg;
    let rt = tokio_runtime()?;
    let _enter = rt.enter();
    let waker = Waker::from(Arc::new(NoopWaker));
    let mut cx = Context::from_waker(&waker);
    let mut ok = true;
    procfs::trim_heap();
    let rss0 = procfs::rss_bytes();
    let bg: Vec<_> = background_delays(cfg.timer_background)
        .into_iter()
        .map(|d| {
            let (s, pending) = armed_sleep(d, &mut cx);
            ok &= pending;
            s
        })
        .collect();
    let bytes = rss_per(rss0, bg.len());
    let delays = op_delays(cfg.timer_ops);
    let (mut arm, mut cancel) = (Vec::new(), Vec::new());
    let mut live = Vec::with_capacity(delays.len());
    for _ in 0..cfg.runs {
        let t = Instant::now();
        for &d in &delays {
            let (s, pending) = armed_sleep(d, &mut cx);
            ok &= pending;
            live.push(s);
        }
        arm.push(per_op(t, delays.len()));
        let t = Instant::now();
        for s in live.drain(..) {
            drop(s);
        }
        cancel.push(per_op(t, delays.len()));
    }
    drop(bg);
    Ok(ops_row("tokio-sleep", ctx, arm, cancel, bytes, ok))
}

/// One spinning thread per CPU while alive.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let s = stop.clone();
                std::thread::spawn(move || {
                    while !s.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Lateness records of one fire run: per timer, its deadline (ns on the
/// harness clock), the lateness seen by its callback, and how often it ran.
struct FireRun {
    deadline: Vec<AtomicU64>,
    late: Vec<AtomicU64>,
    early: AtomicUsize,
    runs: Vec<AtomicUsize>,
    done: AtomicUsize,
}

impl FireRun {
    fn new(n: usize) -> Arc<FireRun> {
        let z = || (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Arc::new(FireRun {
            deadline: z(),
            late: z(),
            early: AtomicUsize::new(0),
            runs: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            done: AtomicUsize::new(0),
        })
    }

    fn record(&self, i: usize) {
        let now = now_ns();
        let d = self.deadline[i].load(Ordering::Acquire);
        if now < d {
            self.early.fetch_add(1, Ordering::Relaxed);
        }
        self.late[i].store(now.saturating_sub(d), Ordering::Relaxed);
        self.runs[i].fetch_add(1, Ordering::Relaxed);
        self.done.fetch_add(1, Ordering::Release);
    }

    fn wait(&self, who: &str, timeout: Duration) -> Result<(), Error> {
        let t = Instant::now();
        while self.done.load(Ordering::Acquire) < self.runs.len() {
            if t.elapsed() > timeout {
                return Err(Error::Timeout(format!(
                    "{who}: {} of {} timers fired within {timeout:?}",
                    self.done.load(Ordering::Acquire),
                    self.runs.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Lateness percentiles, and whether each timer ran exactly once.
    fn result(&self) -> (Latency, bool) {
        let v: Vec<u64> = self.late.iter().map(|x| x.load(Ordering::Relaxed)).collect();
        (Latency::of_ns(&v), self.runs.iter().all(|r| r.load(Ordering::Relaxed) == 1))
    }
}

fn fire_delays(ctx: &Ctx<'_>, run: usize) -> Vec<Duration> {
    let mut r = Rng(0xD1B5_4A32_D192_ED03 ^ run as u64);
    let spread = ctx.cfg.timer_spread;
    (0..ctx.cfg.timer_fire).map(|_| r.delay(Duration::from_millis(1), spread)).collect()
}

fn cmwq_fire(ctx: &Ctx<'_>, wq: &Workqueue, run: usize) -> Result<Arc<FireRun>, Error> {
    let delays = fire_delays(ctx, run);
    let fr = FireRun::new(delays.len());
    let items: Vec<DelayedWork> = (0..delays.len())
        .map(|i| {
            let fr = fr.clone();
            DelayedWork::new(move |_| fr.record(i))
        })
        .collect();
    for (i, (dw, &d)) in items.iter().zip(&delays).enumerate() {
        fr.deadline[i].store(now_ns() + d.as_nanos() as u64, Ordering::Release);
        wq.queue_delayed(dw, d)?;
    }
    fr.wait("cmwq", ctx.cfg.timer_spread + Duration::from_secs(30))?;
    Ok(fr)
}

fn tokio_fire(ctx: &Ctx<'_>, rt: &tokio::runtime::Runtime, run: usize) -> Result<Arc<FireRun>, Error> {
    let delays = fire_delays(ctx, run);
    let fr = FireRun::new(delays.len());
    for (i, &d) in delays.iter().enumerate() {
        let fr2 = fr.clone();
        let at = Instant::now() + d;
        // The deadline recorded is the one handed to tokio, read from one clock
        // reading: a second reading could come after a preemption and record a
        // later deadline than the real one, so a timer firing on time would count
        // as early.
        fr.deadline[i].store(at.saturating_duration_since(epoch()).as_nanos() as u64, Ordering::Release);
        rt.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            fr2.record(i);
        });
    }
    fr.wait("tokio", ctx.cfg.timer_spread + Duration::from_secs(30))?;
    Ok(fr)
}

/// One executor's fire runs under one load.
#[derive(Default)]
struct FireCell {
    runs: Vec<Latency>,
    early: usize,
    /// Some run had a timer run other than once.
    broken: bool,
}

impl FireCell {
    fn add(&mut self, fr: &FireRun) {
        let (l, ok) = fr.result();
        self.runs.push(l);
        self.early += fr.early.load(Ordering::Relaxed);
        self.broken |= !ok;
    }

    fn row(&self, ctx: &Ctx<'_>, executor: &str, load: &str) -> TimerFireRow {
        TimerFireRow {
            executor: executor.into(),
            load: load.into(),
            timers: ctx.cfg.timer_fire,
            spread_ms: ctx.cfg.timer_spread.as_secs_f64() * 1e3,
            lateness: Latency::median_of(&self.runs),
            early: self.early,
            exactly_once: !self.broken && self.early == 0,
        }
    }
}

/// Runs the timers workload: ops for cmwq, a DelayQueue and sleep futures, then
/// fire lateness for cmwq and tokio, idle and busy, runs interleaved.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<(Vec<TimerOpsRow>, Vec<TimerFireRow>), Error> {
    let cfg = ctx.cfg;
    ctx.say(&format!(
        "timers/ops: arm + cancel {} timers with {} armed, {} runs each",
        cfg.timer_ops, cfg.timer_background, cfg.runs
    ));
    let mut ops = Vec::new();
    for (name, f) in [
        ("cmwq", cmwq_ops as fn(&Ctx<'_>) -> Result<TimerOpsRow, Error>),
        ("tokio-delayqueue", delayqueue_ops),
        ("tokio-sleep", sleep_ops),
    ] {
        let row = f(ctx)?;
        ctx.say(&format!(
            "  {name}: arm {:.0} ns, cancel {:.0} ns, {:.0} bytes per armed timer",
            row.arm_ns, row.cancel_ns, row.bytes_per_timer
        ));
        ops.push(row);
        procfs::trim_heap();
    }

    ctx.say(&format!(
        "timers/fire: {} timers over {:?}, idle and with {} spinning threads, {} runs each",
        cfg.timer_fire,
        cfg.timer_spread,
        ctx.cores(),
        cfg.runs
    ));
    let wq = Workqueue::builder("bench-timer-fire").flags(WqFlags::PERCPU).build()?;
    let rt = tokio_runtime()?;
    let mut cells: [[FireCell; 2]; 2] = Default::default();
    let warm = usize::from(cfg.warmup);
    for run in 0..cfg.runs + warm {
        for (li, busy) in [false, true].into_iter().enumerate() {
            let hogs = busy.then(|| Hogs::start(ctx.cores()));
            let a = cmwq_fire(ctx, &wq, run)?;
            let b = tokio_fire(ctx, &rt, run)?;
            drop(hogs);
            if run >= warm {
                cells[0][li].add(&a);
                cells[1][li].add(&b);
            }
        }
        ctx.say(&format!("  run {}/{} done", run + 1, cfg.runs + warm));
    }
    let mut fire = Vec::new();
    for (ei, exec) in ["cmwq", "tokio"].into_iter().enumerate() {
        for (li, load) in ["idle", "busy"].into_iter().enumerate() {
            let row = cells[ei][li].row(ctx, exec, load);
            let l = row.lateness;
            ctx.say(&format!("  {exec} {load}: lateness p50 {:.0} µs, p99 {:.0} µs", l.p50_us, l.p99_us));
            fire.push(row);
        }
    }
    Ok((ops, fire))
}

/// Lateness idle and busy beside tokio; arm/cancel beside the peers.
pub(crate) fn headline(ops: &[TimerOpsRow], fire: &[TimerFireRow]) -> Vec<String> {
    let mut v = Vec::new();
    let fire = |e: &str, l: &str| fire.iter().find(|r| r.executor == e && r.load == l).map(|r| r.lateness);
    for load in ["idle", "busy"] {
        if let (Some(c), Some(t)) = (fire("cmwq", load), fire("tokio", load)) {
            v.push(format!(
                "timers ({load}): cmwq lateness p50 {:.0} µs / p99 {:.0} µs vs tokio {:.0} / {:.0} µs",
                c.p50_us, c.p99_us, t.p50_us, t.p99_us
            ));
        }
    }
    if let Some(c) = ops.iter().find(|r| r.executor == "cmwq") {
        let peers: Vec<String> = ops
            .iter()
            .filter(|r| r.executor != "cmwq")
            .map(|r| format!("{} {:.0}/{:.0} ns", r.executor, r.arm_ns, r.cancel_ns))
            .collect();
        v.push(format!(
            "timers with {} armed: cmwq arm/cancel {:.0}/{:.0} ns vs {}",
            c.background_armed,
            c.arm_ns,
            c.cancel_ns,
            peers.join(", ")
        ));
    }
    v
}

pub(crate) fn markdown(ops: &[TimerOpsRow], fire: &[TimerFireRow]) -> String {
    let op_rows: Vec<Vec<String>> = ops
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.executor),
                r.ops.to_string(),
                format!("{:.0}", r.arm_ns),
                format!("{:.0}", r.cancel_ns),
                format!("{:.0}", r.bytes_per_timer),
                yes(r.exactly_once),
            ]
        })
        .collect();
    let mut s = section(
        &format!(
            "timers/ops: arm and cancel one timer with {} others armed (median of runs)",
            ops.first().map_or(0, |r| r.background_armed)
        ),
        &["timers", "ops/run", "arm ns", "cancel ns", "bytes/armed timer", "all cancelled"],
        &op_rows,
        "cmwq: `queue_delayed` / `DelayedWork::cancel`; tokio-delayqueue: `DelayQueue::insert` / \
         `try_remove` (single owner, no locking); tokio-sleep: `tokio::time::sleep` polled once / dropped. \
         Bytes: VmRSS growth over the armed set, item or future included.",
    );
    let fire_rows: Vec<Vec<String>> = fire
        .iter()
        .map(|r| {
            let mut row = vec![format!("`{}`", r.executor), r.load.clone()];
            row.extend(r.lateness.cells(0));
            row.extend([r.early.to_string(), yes(r.exactly_once)]);
            row
        })
        .collect();
    s += &section(
        &format!(
            "timers/fire: lateness after the deadline, {} timers over {:.0} ms (µs, median of runs)",
            fire.first().map_or(0, |r| r.timers),
            fire.first().map_or(0.0, |r| r.spread_ms)
        ),
        &["executor", "load", "p50", "p90", "p99", "max", "early", "exactly once"],
        &fire_rows,
        "From the deadline to the callback (cmwq, a per-CPU queue) or to the task after `sleep_until` \
         (tokio, default runtime). busy: a thread per CPU spinning at the default nice value.",
    );
    s
}
