//! The kernel documentation's "Example Execution Scenarios", measured.
//!
//! w0, w1 and w2 are queued on one CPU. w0 burns 5 ms of CPU, sleeps 10 ms and
//! burns 5 ms more; w1 and w2 burn 5 ms and sleep 10 ms. Each configuration is run
//! once and its events are printed beside the documented timeline. The last one
//! repeats (b) with sleeps nobody announces, which the sleep monitor finds.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};

use super::timeline::{self, DocEvent, Kind, Measured};
use super::{burn_cpu, Result};

const BURN: Duration = Duration::from_millis(5);
const SLEEP: Duration = Duration::from_millis(10);

/// How the three items are queued.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// One per-CPU queue with `max_active` 1: the original single-worker wq.
    SingleWorker,
    /// One per-CPU queue with this `max_active`.
    Cmwq { max_active: usize },
    /// w0 on a normal per-CPU queue, w1 and w2 on a `CPU_INTENSIVE` one.
    CpuIntensive,
}

#[derive(Debug)]
struct Scenario {
    tag: char,
    title: &'static str,
    setup: Setup,
    /// Sleep in plain `std::thread::sleep` instead of `cmwq::sleep`.
    plain: bool,
    doc: &'static [DocEvent],
    note: Option<&'static str>,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        tag: 'a',
        title: "the original wq: a single worker (per-CPU queue, max_active 1)",
        setup: Setup::SingleWorker,
        plain: false,
        doc: timeline::DOC_SINGLE_WORKER,
        note: None,
    },
    Scenario {
        tag: 'b',
        title: "cmwq with max_active >= 3 (per-CPU queue, max_active 3)",
        setup: Setup::Cmwq { max_active: 3 },
        plain: false,
        doc: timeline::DOC_CMWQ,
        note: None,
    },
    Scenario {
        tag: 'c',
        title: "cmwq with max_active == 2 (per-CPU queue)",
        setup: Setup::Cmwq { max_active: 2 },
        plain: false,
        doc: timeline::DOC_MAX_ACTIVE_2,
        note: None,
    },
    Scenario {
        tag: 'd',
        title: "w0 on a normal queue, w1 and w2 on a CPU_INTENSIVE queue",
        setup: Setup::CpuIntensive,
        plain: false,
        doc: timeline::DOC_CPU_INTENSIVE,
        note: Some(
            "note: the documented \"w1 sleeps at 10, w2 at 15\" assumes w1 gets the CPU first; \
             with fair time-slicing both burn at half speed and sleep near 15 ms.",
        ),
    },
    Scenario {
        tag: 'e',
        title: "(b) with plain std::thread::sleep: nobody tells the pool, the sleep monitor finds out",
        setup: Setup::Cmwq { max_active: 3 },
        plain: true,
        doc: timeline::DOC_CMWQ,
        note: None,
    },
];

/// An event as a work item records it.
#[derive(Debug)]
struct Raw {
    at: Instant,
    item: u8,
    kind: Kind,
    thread: ThreadId,
    cpu: Option<usize>,
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Raw>>);

impl Recorder {
    fn record(&self, item: u8, kind: Kind) {
        let raw = Raw {
            at: Instant::now(),
            item,
            kind,
            thread: std::thread::current().id(),
            cpu: cmwq::debug::current_cpu(),
        };
        // A panicking item cannot leave the vector half-written; keep going.
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(raw);
    }

    fn take(&self) -> Vec<Raw> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Sleeps `SLEEP`, announced to the pool or not.
fn sleep(plain: bool) {
    if plain {
        std::thread::sleep(SLEEP)
    } else {
        cmwq::sleep(SLEEP)
    }
}

/// w0: burn, sleep, burn.
fn w0(rec: Arc<Recorder>, plain: bool) -> Work {
    Work::new(move |_| {
        rec.record(0, Kind::Starts);
        burn_cpu(BURN);
        rec.record(0, Kind::Sleeps);
        sleep(plain);
        rec.record(0, Kind::WakesAndBurns);
        burn_cpu(BURN);
        rec.record(0, Kind::Finishes);
    })
}

/// w1 and w2: burn, sleep.
fn w12(rec: Arc<Recorder>, item: u8, plain: bool) -> Work {
    Work::new(move |_| {
        rec.record(item, Kind::Starts);
        burn_cpu(BURN);
        rec.record(item, Kind::Sleeps);
        sleep(plain);
        rec.record(item, Kind::WakesAndFinishes);
    })
}

/// The queue for w0 and the queue for w1 and w2 (the same one except in (d)).
fn build_queues(s: &Scenario) -> Result<(Workqueue, Workqueue)> {
    let name = format!("demo-{}", s.tag);
    Ok(match s.setup {
        Setup::SingleWorker => {
            let q = Workqueue::builder(name).flags(WqFlags::PERCPU).max_active(1).build()?;
            (q.clone(), q)
        }
        Setup::Cmwq { max_active } => {
            let q = Workqueue::builder(name).flags(WqFlags::PERCPU).max_active(max_active).build()?;
            (q.clone(), q)
        }
        Setup::CpuIntensive => (
            Workqueue::builder(format!("{name}-normal")).flags(WqFlags::PERCPU).build()?,
            Workqueue::builder(format!("{name}-intensive"))
                .flags(WqFlags::PERCPU | WqFlags::CPU_INTENSIVE)
                .build()?,
        ),
    })
}

/// The normal-priority pool of `cpu`, if it exists yet.
fn pool_of(cpu: usize) -> Option<cmwq::debug::PoolSnapshot> {
    cmwq::debug::pools().into_iter().find(|p| p.cpu == Some(cpu) && !p.highpri)
}

/// Grows the CPU's pool to more workers than any scenario needs, so that thread
/// creation stays out of the timelines: four items sleep at once.
fn warm_up(cpu: usize) -> Result<usize> {
    let q = Workqueue::builder("demo-warmup").flags(WqFlags::PERCPU).build()?;
    let items: Vec<Work> = (0..4).map(|_| Work::new(|_| cmwq::sleep(Duration::from_millis(20)))).collect();
    for w in &items {
        q.queue_on(cpu, w)?;
    }
    q.destroy()?;
    Ok(pool_of(cpu).map_or(0, |p| p.workers))
}

/// What one run produced.
#[derive(Debug)]
struct Outcome {
    events: Vec<Measured>,
    /// Events that ran on another CPU than the one asked for.
    off_cpu: usize,
    /// Workers the pool created while the scenario ran.
    created: u64,
    /// Blocks the sleep monitor found (and of those, its idle sentinel).
    found: (u64, u64),
}

fn run_one(cpu: usize, s: &Scenario) -> Result<Outcome> {
    let (q0, q12) = build_queues(s)?;
    let rec = Arc::new(Recorder::default());
    let items = [w0(rec.clone(), s.plain), w12(rec.clone(), 1, s.plain), w12(rec.clone(), 2, s.plain)];
    let created_before = pool_of(cpu).map_or(0, |p| p.created);
    let mon_before = cmwq::debug::monitor();

    let t0 = Instant::now();
    q0.queue_on(cpu, &items[0])?;
    q12.queue_on(cpu, &items[1])?;
    q12.queue_on(cpu, &items[2])?;
    q0.destroy()?; // waits for the items; a second destroy of the same queue does nothing
    q12.destroy()?;

    let created = pool_of(cpu).map_or(0, |p| p.created).saturating_sub(created_before);
    let mon = cmwq::debug::monitor();
    let found = (mon.blocked - mon_before.blocked, mon.by_sentinel - mon_before.by_sentinel);
    let mut raw = rec.take();
    raw.sort_by_key(|r| r.at);
    let off_cpu = raw.iter().filter(|r| r.cpu.is_some_and(|c| c != cpu)).count();
    let mut workers: HashMap<ThreadId, usize> = HashMap::new();
    let events = raw
        .iter()
        .map(|r| {
            let next = workers.len();
            let worker = *workers.entry(r.thread).or_insert(next);
            Measured { at: r.at.saturating_duration_since(t0), item: r.item, kind: r.kind, worker }
        })
        .collect();
    Ok(Outcome { events, off_cpu, created, found })
}

/// Runs and prints the four scenarios on `cpu`.
pub(crate) fn run(out: &mut dyn Write, cpu: usize) -> Result<()> {
    writeln!(out, "== Part 1: the kernel documentation's execution scenarios, on CPU {cpu}")?;
    writeln!(
        out,
        "   w0: burn 5 ms CPU, sleep 10 ms, burn 5 ms; w1, w2: burn 5 ms, sleep 10 ms \
         (burn = the thread's CPU clock, sleep = cmwq::sleep; in (e) std::thread::sleep)"
    )?;
    let workers = warm_up(cpu)?;
    writeln!(out, "   warmed up the pool of CPU {cpu}: {workers} workers")?;
    for s in &SCENARIOS {
        writeln!(out)?;
        writeln!(out, "-- ({}) {}", s.tag, s.title)?;
        out.flush()?;
        let o = run_one(cpu, s)?;
        write!(out, "{}", timeline::render(s.doc, &o.events))?;
        if let Some(note) = s.note {
            writeln!(out, "  {note}")?;
        }
        if s.plain {
            writeln!(
                out,
                "  the sleep monitor found {} unannounced block(s), {} of them by CPU {cpu}'s idle sentinel \
                 (a SCHED_IDLE thread that runs the moment the CPU would idle)",
                o.found.0, o.found.1
            )?;
        }
        if o.off_cpu > 0 {
            writeln!(out, "  warning: {} events ran on another CPU than {cpu}", o.off_cpu)?;
        }
        if o.created > 0 {
            writeln!(out, "  warning: the pool created {} worker(s) during this run", o.created)?;
        }
    }
    writeln!(out)?;
    Ok(())
}
