//! One row's queue-to-start samples: an item queued one at a time on a cmwq
//! queue, or a bare pinned thread woken with `Thread::unpark` (the floor).
//! Both run on the calling thread, a harness producer (pinned or not).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue};

use crate::error::Error;
use crate::sync::{now_ns, CountLatch, ParkedThread};

/// How many samples, and how long they may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Measured samples wanted.
    pub(crate) n: usize,
    /// Unmeasured samples first (workers exist, caches are warm).
    pub(crate) warm: usize,
    /// Idle time before each sample, so that the thread that runs it is asleep.
    pub(crate) gap: Duration,
    /// Sampling stops once this much time passed (with at least `MIN_SAMPLES`).
    pub(crate) budget: Duration,
}

/// Samples taken even past the budget, so that a slow row still has a p50.
const MIN_SAMPLES: usize = 10;

/// What one row's sampling gave.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// Queue-to-start latencies (ns), measured samples only.
    pub(crate) ns: Vec<u64>,
    /// Hand-offs made, warm-up included.
    pub(crate) fired: usize,
    /// Starts seen: equal to `fired` when every hand-off started exactly once.
    pub(crate) ran: usize,
    /// Measured samples that started on the target CPU.
    pub(crate) on_target: usize,
}

/// What the item (or the bare thread) records as it starts, and the latch
/// the producer waits on.
struct Start {
    t1: AtomicU64,
    cpu: AtomicUsize,
    ran: AtomicUsize,
    latch: CountLatch,
}

impl Start {
    /// Made on the thread that will wait on the latch.
    fn new() -> Arc<Start> {
        Arc::new(Start {
            t1: AtomicU64::new(0),
            cpu: AtomicUsize::new(usize::MAX),
            ran: AtomicUsize::new(0),
            latch: CountLatch::new(),
        })
    }

    /// The first thing a started item does: its time, its CPU, the count.
    fn record(&self) {
        self.t1.store(now_ns(), Ordering::Release);
        self.cpu.store(cmwq::debug::current_cpu().unwrap_or(usize::MAX), Ordering::Release);
        self.ran.fetch_add(1, Ordering::AcqRel);
        self.latch.count_down();
    }
}

/// The sampling loop: after the idle gap, `fire` hands one item over and
/// returns the time just before the hand-off; the item's start is awaited.
fn sample(
    what: &str,
    plan: Plan,
    target: usize,
    start: &Start,
    mut fire: impl FnMut() -> Result<u64, Error>,
) -> Result<Samples, Error> {
    let mut s = Samples { ns: Vec::with_capacity(plan.n), ..Samples::default() };
    let deadline = Instant::now() + plan.budget;
    for i in 0..plan.n + plan.warm {
        if s.ns.len() >= MIN_SAMPLES && Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(plan.gap);
        start.latch.reset(1);
        let t0 = fire()?;
        s.fired += 1;
        if !start.latch.wait_timeout(Duration::from_secs(10)) {
            return Err(Error::Timeout(format!("bh {what}: sample {i} did not start in 10 s")));
        }
        if i >= plan.warm {
            s.ns.push(start.t1.load(Ordering::Acquire).saturating_sub(t0));
            s.on_target += usize::from(start.cpu.load(Ordering::Acquire) == target);
        }
    }
    Ok(s)
}

/// Samples of `wq`: one work item queued again and again, with `queue_on(cpu)`
/// when `on` names a CPU, with `queue` (the caller's CPU) otherwise.
pub(crate) fn queue_samples(
    wq: &Workqueue,
    what: &str,
    on: Option<usize>,
    target: usize,
    plan: Plan,
) -> Result<Samples, Error> {
    let start = Start::new();
    let st = start.clone();
    let work = Work::new(move |_| st.record());
    let mut s = sample(what, plan, target, &start, || {
        let t0 = now_ns();
        let queued = match on {
            Some(cpu) => wq.queue_on(cpu, &work)?,
            None => wq.queue(&work)?,
        };
        // Pending only until it starts, and each sample waits for the start.
        if queued {
            Ok(t0)
        } else {
            Err(Error::Invariant(format!("bh {what}: the item was still pending")))
        }
    })?;
    work.flush()?;
    s.ran = start.ran.load(Ordering::Acquire);
    Ok(s)
}

/// Samples of a bare hand-off: a thread pinned to `cpu`, parked until unparked.
pub(crate) fn bare_samples(cpu: usize, plan: Plan) -> Result<Samples, Error> {
    let start = Start::new();
    let bare = {
        let start = start.clone();
        ParkedThread::spawn(format!("bench-bare/{cpu}"), cpu, move || start.record())
            .map_err(|e| Error::Executor(format!("bare thread: {e}")))?
    };
    let s = sample("bare", plan, cpu, &start, || Ok(bare.fire()));
    drop(bare);
    let mut s = s?;
    s.ran = start.ran.load(Ordering::Acquire);
    Ok(s)
}
