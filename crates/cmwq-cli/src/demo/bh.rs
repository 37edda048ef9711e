//! Part 4: a `WqFlags::BH` queue beside a `WqFlags::PERCPU` one on a busy CPU.
//!
//! A thread of this process spins on the CPU at normal priority (a
//! `CPU_INTENSIVE` per-CPU item: the demo makes no affinity call of its own),
//! and the demo's thread queues items on the two queues in turn with
//! `queue_on`. The BH queue's items run on the CPU's BH thread (pinned, high
//! priority, run to completion in queueing order), so they start at once and
//! one after another; the per-CPU queue's run on a normal worker that has to
//! win the CPU from the spinner and from the BH thread. The timeline shows the
//! order and each item's start latency.
//!
//! A library that refuses `WqFlags::BH` gets one line saying so.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use cmwq::{Work, Workqueue, WqFlags};

use super::{burn_cpu, Result};

/// CPU each item burns.
const BURN: Duration = Duration::from_micros(300);
/// Items queued on each queue, alternately (per-CPU first).
const PER_QUEUE: usize = 4;

/// The two queues compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Bh,
    PerCpu,
}

impl Queue {
    /// The item names' prefix: `B0`, `P0`.
    fn tag(self) -> char {
        match self {
            Queue::Bh => 'B',
            Queue::PerCpu => 'P',
        }
    }

    fn label(self) -> &'static str {
        match self {
            Queue::Bh => "WqFlags::BH",
            Queue::PerCpu => "WqFlags::PERCPU",
        }
    }
}

/// One item's life, relative to the first queueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    queue: Queue,
    /// Its rank among its queue's items.
    n: usize,
    queued: Duration,
    started: Duration,
    ended: Duration,
    /// The thread that ran it: `A`, `B`, ... in order of first appearance.
    thread: char,
}

/// What an item records as it runs.
#[derive(Debug, Clone, Copy)]
struct Ran {
    queue: Queue,
    n: usize,
    started: Instant,
    ended: Instant,
    thread: ThreadId,
}

/// The timeline, in order of start, and each queue's start latencies.
fn render(events: &[Event]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "    {:>9} {:>9} {:>9} {:>9}  item  queue            thread",
        "queued", "started", "ended", "waited"
    );
    let mut by_start = events.to_vec();
    by_start.sort_by_key(|e| e.started);
    for e in &by_start {
        let _ = writeln!(
            s,
            "    {:>6.3} ms {:>6.3} ms {:>6.3} ms {:>6.3} ms  {}{}    {:<16} {}",
            ms(e.queued),
            ms(e.started),
            ms(e.ended),
            ms(e.started.saturating_sub(e.queued)),
            e.queue.tag(),
            e.n,
            e.queue.label(),
            e.thread
        );
    }
    for q in [Queue::Bh, Queue::PerCpu] {
        let mut waits: Vec<f64> =
            events.iter().filter(|e| e.queue == q).map(|e| ms(e.started.saturating_sub(e.queued))).collect();
        waits.sort_by(f64::total_cmp);
        let order: Vec<String> =
            by_start.iter().filter(|e| e.queue == q).map(|e| format!("{}{}", q.tag(), e.n)).collect();
        let _ = writeln!(
            s,
            "    {:<16} start latency {} ms; ran {}",
            q.label(),
            waits.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(", "),
            order.join(" ")
        );
    }
    s
}

/// Turns the records into events relative to `t0`, threads named by first appearance.
fn events(t0: Instant, queued: &[(Queue, usize, Instant)], ran: &[Ran]) -> Vec<Event> {
    let mut sorted = ran.to_vec();
    sorted.sort_by_key(|r| r.started);
    let mut names: HashMap<ThreadId, char> = HashMap::new();
    for r in &sorted {
        let next = char::from(b'A' + (names.len() % 26) as u8);
        names.entry(r.thread).or_insert(next);
    }
    sorted
        .iter()
        .filter_map(|r| {
            let q = queued.iter().find(|(q, n, _)| *q == r.queue && *n == r.n)?.2;
            Some(Event {
                queue: r.queue,
                n: r.n,
                queued: q.saturating_duration_since(t0),
                started: r.started.saturating_duration_since(t0),
                ended: r.ended.saturating_duration_since(t0),
                thread: names[&r.thread],
            })
        })
        .collect()
}

/// Queues the items with `queue_on(cpu)` from the calling thread
/// (alternately, per-CPU first) and waits for them. Returns the first
/// queueing's time, each item's queueing and what the items recorded.
fn one_round(bh: &Workqueue, percpu: &Workqueue, cpu: usize, per_queue: usize) -> Result<Round> {
    let ran: Arc<Mutex<Vec<Ran>>> = Arc::default();
    let works: Vec<(Queue, usize, Work)> = (0..per_queue)
        .flat_map(|n| [(Queue::PerCpu, n), (Queue::Bh, n)])
        .map(|(queue, n)| {
            let r = ran.clone();
            let w = Work::new(move |_| {
                let started = Instant::now();
                burn_cpu(BURN);
                let rec =
                    Ran { queue, n, started, ended: Instant::now(), thread: std::thread::current().id() };
                r.lock().unwrap_or_else(PoisonError::into_inner).push(rec);
            });
            (queue, n, w)
        })
        .collect();
    let t0 = Instant::now();
    let mut queued = Vec::with_capacity(works.len());
    for (queue, n, w) in &works {
        let wq = if *queue == Queue::Bh { bh } else { percpu };
        queued.push((*queue, *n, Instant::now()));
        wq.queue_on(cpu, w)?;
    }
    for (_, _, w) in &works {
        w.flush()?;
    }
    let ran = std::mem::take(&mut *ran.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((t0, queued, ran))
}

/// A round's first queueing, each item's queueing, and what the items recorded.
type Round = (Instant, Vec<(Queue, usize, Instant)>, Vec<Ran>);

/// Keeps `cpu` busy: an item of a `PERCPU | CPU_INTENSIVE` queue that spins
/// until `stop` (a worker pinned to the CPU, normal priority; CPU_INTENSIVE,
/// so that the per-CPU pool still starts the compared items beside it).
/// Returns the queue and the item once it spins.
fn spinner(cpu: usize, stop: Arc<AtomicBool>) -> Result<(Workqueue, Work)> {
    let wq = Workqueue::builder("demo-bh-spin").flags(WqFlags::PERCPU | WqFlags::CPU_INTENSIVE).build()?;
    let spinning = Arc::new(AtomicBool::new(false));
    let s = spinning.clone();
    let w = Work::new(move |_| {
        s.store(true, Ordering::Release);
        while !stop.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    wq.queue_on(cpu, &w)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !spinning.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((wq, w))
}

/// Runs and prints part 4 on `cpu`.
pub(crate) fn run(out: &mut dyn Write, cpu: usize) -> Result<()> {
    let title = "== Part 4: a WqFlags::BH queue beside a WqFlags::PERCPU one on a busy CPU";
    let bh = match Workqueue::builder("demo-bh").flags(WqFlags::BH).build() {
        Ok(q) => q,
        Err(e) => {
            writeln!(out, "{title}: skipped, this cmwq refuses WqFlags::BH ({e})")?;
            writeln!(out)?;
            return Ok(());
        }
    };
    let percpu = Workqueue::builder("demo-bh-percpu").flags(WqFlags::PERCPU).build()?;
    writeln!(out, "{title}")?;
    writeln!(
        out,
        "   CPU {cpu} is kept busy by a spinning item (a PERCPU | CPU_INTENSIVE queue's worker, normal priority); \
         {PER_QUEUE} items are queued on each queue with queue_on({cpu}), alternately (P0 B0 P1 B1 ...), each \
         burning {} ms of CPU",
        BURN.as_secs_f64() * 1e3
    )?;
    out.flush()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (_spin_wq, spin) = spinner(cpu, stop.clone())?;
    // A first round lets each queue's thread exist, so the second shows wake-ups, not thread starts.
    let measured = one_round(&bh, &percpu, cpu, 1).and_then(|_| one_round(&bh, &percpu, cpu, PER_QUEUE));
    stop.store(true, Ordering::Relaxed);
    spin.flush()?;
    let (t0, queued, ran) = measured?;
    write!(out, "{}", render(&events(t0, &queued, &ran)))?;
    writeln!(
        out,
        "   why: a BH queue's items run on its CPU's BH thread, pinned and high priority, one after another in \
         queueing order and to completion (within a budget of 2 ms or 10 restarts); a per-CPU \
         queue's run on a normal-priority worker that shares the CPU with the spinner."
    )?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_timeline() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        let (a, b) =
            (std::thread::current().id(), std::thread::spawn(|| std::thread::current().id()).join().unwrap());
        let queued = [(Queue::PerCpu, 0, at(0)), (Queue::Bh, 0, at(10))];
        let ran = [
            Ran { queue: Queue::PerCpu, n: 0, started: at(700), ended: at(1_000), thread: b },
            Ran { queue: Queue::Bh, n: 0, started: at(20), ended: at(320), thread: a },
        ];
        let ev = events(t0, &queued, &ran);
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (ev[0].queue, ev[0].thread, ev[1].thread),
            (Queue::Bh, 'A', 'B'),
            "by start, threads in order"
        );
        let s = render(&ev);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 5, "{s}");
        assert!(lines[1].contains("0.010 ms  0.020 ms  0.320 ms  0.010 ms  B0    WqFlags::BH"), "{s}");
        assert!(lines[2].contains("P0    WqFlags::PERCPU") && lines[2].ends_with('B'), "{s}");
        assert_eq!(lines[3], "    WqFlags::BH      start latency 0.010 ms; ran B0");
        assert_eq!(lines[4], "    WqFlags::PERCPU  start latency 0.700 ms; ran P0");
    }

    #[test]
    fn part_4_runs_or_says_why_in_one_line() {
        let mut out = Vec::new();
        run(&mut out, cmwq::allowed_cpus()[0]).unwrap();
        let s = String::from_utf8(out).unwrap();
        if Workqueue::builder("demo-bh-probe").flags(WqFlags::BH).build().is_err() {
            assert_eq!(s.lines().filter(|l| !l.is_empty()).count(), 1, "{s}");
            assert!(s.contains("skipped") && s.contains("refuses WqFlags::BH"), "{s}");
            return;
        }
        // BH runs its CPU's items in queueing order, on one thread.
        assert!(s.contains("ran B0 B1 B2 B3"), "{s}");
        // The timeline's rows: queued, started, ended, waited (value and unit
        // each), then the item, its queue and its thread.
        let bh_threads: std::collections::HashSet<&str> = s
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|t| t.len() == 11 && t[8].starts_with('B') && t[9] == "WqFlags::BH")
            .map(|t| t[10])
            .collect();
        assert_eq!(bh_threads.len(), 1, "{s}");
        assert!(s.lines().any(|l| l.contains("WqFlags::PERCPU  start latency")), "{s}");
    }
}
