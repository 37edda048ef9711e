//! bh/storm: many CPU-bound items queued at once on one CPU while a CPU-bound
//! thread of the process, pinned to that CPU, times its own loop: its longest
//! gap between two iterations is how long the queue's items kept it off its
//! CPU in one stretch (a BH queue should yield within its budget of 2 ms).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue};

use crate::error::Error;
use crate::executors::Batch;
use crate::sync::now_ns;

/// The observer's phases: before the storm, during it, over.
const QUIET: usize = 0;
const STORM: usize = 1;
const DONE: usize = 2;

/// What one storm measured.
pub(crate) struct Storm {
    /// The observer's longest gap before the storm (the machine's own noise).
    pub(crate) quiet_gap: Duration,
    /// Its longest gap during the storm.
    pub(crate) storm_gap: Duration,
    /// From the first item queued to the last one's end.
    pub(crate) storm: Duration,
    /// The time queueing every item took.
    pub(crate) queueing: Duration,
    /// The observer's CPU time during the storm, as a share of the storm's wall time.
    pub(crate) observer_share: f64,
    /// The items, for the exactly-once check.
    pub(crate) batch: Batch,
}

/// Shared between the storm's producer and the observer.
#[derive(Default)]
struct Observer {
    phase: AtomicUsize,
    running: AtomicBool,
    /// Longest gap (ns) of the quiet and the storm phase.
    longest: [AtomicU64; 2],
    /// CPU time (ns) the observer used during the storm phase.
    storm_cpu: AtomicU64,
}

impl Observer {
    /// The observer's loop, on a thread pinned to `cpu`, until the phase is `DONE`.
    fn run(&self, cpu: usize) {
        let _ = crate::cpu::pin_current_thread(cpu);
        let mut phase = QUIET;
        let (mut longest, mut cpu0) = (Duration::ZERO, Duration::ZERO);
        let mut prev = Instant::now();
        self.running.store(true, Ordering::Release);
        loop {
            let now = Instant::now();
            longest = longest.max(now - prev);
            prev = now;
            let p = self.phase.load(Ordering::Acquire);
            if p == phase {
                continue;
            }
            // The gap that spans a phase change belongs to the phase before it:
            // at the end of a storm it is the observer waiting for the last items.
            self.longest[phase].store(longest.as_nanos() as u64, Ordering::Release);
            longest = Duration::ZERO;
            let t = cmwq::debug::thread_cpu_time();
            if phase == STORM {
                self.storm_cpu.store(t.saturating_sub(cpu0).as_nanos() as u64, Ordering::Release);
            }
            cpu0 = t;
            phase = p;
            if phase == DONE {
                return;
            }
            prev = Instant::now();
        }
    }
}

/// Queues `items` items that each burn `spin` on `wq` with `queue_on(cpu)`,
/// all at once, from the calling thread, after `quiet` of observing; waits
/// for them (at most `timeout`).
pub(crate) fn storm(
    wq: &Workqueue,
    cpu: usize,
    (items, spin): (usize, Duration),
    quiet: Duration,
    timeout: Duration,
) -> Result<Storm, Error> {
    let batch = Batch::new(items);
    let works: Vec<Work> = (0..items)
        .map(|i| {
            let b = batch.clone();
            Work::new(move |_| {
                crate::cpu::burn(spin);
                b.done(i);
            })
        })
        .collect();
    let obs = Arc::new(Observer::default());
    let th = {
        let obs = obs.clone();
        std::thread::Builder::new()
            .name(format!("bench-observer/{cpu}"))
            .spawn(move || obs.run(cpu))
            .map_err(|e| Error::Executor(format!("observer thread: {e}")))?
    };
    let result = (|| -> Result<(u64, u64, u64), Error> {
        while !obs.running.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(quiet);
        obs.phase.store(STORM, Ordering::Release);
        let t0 = now_ns();
        for w in &works {
            wq.queue_on(cpu, w)?;
        }
        let queued = now_ns();
        batch.wait(wq.name(), timeout)?;
        Ok((t0, queued, batch.end_ns()))
    })();
    obs.phase.store(DONE, Ordering::Release);
    let _ = th.join();
    let (t0, queued, end) = result?;
    let storm = Duration::from_nanos(end.saturating_sub(t0));
    let ns = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Acquire));
    Ok(Storm {
        quiet_gap: ns(&obs.longest[QUIET]),
        storm_gap: ns(&obs.longest[STORM]),
        storm,
        queueing: Duration::from_nanos(queued.saturating_sub(t0)),
        observer_share: ns(&obs.storm_cpu).as_secs_f64() / storm.as_secs_f64().max(1e-9),
        batch,
    })
}
