//! One producer thread nobody pinned queues the same items on the default
//! queue and on a `WqFlags::PERCPU` queue: the wall time of each against the
//! ideal, the threads that ran the items, and the CPUs they ran on.
//!
//! The default queue (`Workqueue::builder(..).build()`) is unbound and
//! concurrency managed: its pool lets as many items run at once as its pod has
//! CPUs, so one producer's items use all of them. A per-CPU queue runs each
//! item on the CPU that queued it: one producer's items share that one CPU.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use cmwq::debug::PoolSnapshot;
use cmwq::{Workqueue, WqFlags};

use super::{burn_cpu, Result};

/// CPU each item burns (the thread's CPU clock).
const BURN: Duration = Duration::from_millis(1);
/// Then each item sleeps this long, announced with `cmwq::sleep`.
const SLEEP: Duration = Duration::from_millis(4);
/// Items per usable CPU...
const ITEMS_PER_CPU: usize = 100;
/// ...and at most this many, so that the per-CPU queue's run (one CPU burns
/// them all) stays short on big machines: 400 ms at most.
const ITEMS_MAX: usize = 400;
/// A run that takes longer than this many times its serial time failed.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Up to this many CPUs, the table gives each one's item count.
const CPUS_COUNTED: usize = 8;

/// The two queues compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    /// `Workqueue::builder(..).build()`: no flags.
    Default,
    /// `WqFlags::PERCPU`.
    PerCpu,
}

impl Queue {
    fn label(self) -> &'static str {
        match self {
            Queue::Default => "default (builder(..).build())",
            Queue::PerCpu => "WqFlags::PERCPU",
        }
    }

    fn build(self) -> Result<Workqueue> {
        Ok(match self {
            Queue::Default => Workqueue::builder("demo-spread-default").build()?,
            Queue::PerCpu => Workqueue::builder("demo-spread-percpu").flags(WqFlags::PERCPU).build()?,
        })
    }
}

/// What an item records when its burn is over.
#[derive(Debug, Clone, Copy)]
struct Ran {
    thread: ThreadId,
    cpu: Option<usize>,
    done: Instant,
}

/// What one queue's run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    queue: Queue,
    /// From the first queueing to the last item's end.
    wall: Duration,
    /// Distinct threads that ran items.
    threads: usize,
    /// Items per CPU they burnt on (CPUs that ran none are absent).
    per_cpu: BTreeMap<usize, usize>,
    /// Items that could not tell their CPU.
    unknown_cpu: usize,
    /// The CPUs the producer was on when it queued.
    producer_cpus: BTreeSet<usize>,
    /// The pools that ran the items (their `completed` grew during the run).
    pools: Vec<PoolUsed>,
}

/// A pool that ran items of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PoolUsed {
    /// The CPU of a per-CPU pool; `None` for an unbound one.
    cpu: Option<usize>,
    /// The CPUs of its pod.
    pod: Vec<usize>,
    /// How many items it runs at once.
    concurrency: usize,
    /// Items it completed during the run.
    items: u64,
}

/// The pools of `after` whose `completed` grew since `before` (a pool missing
/// from `before` is new: all its items count).
fn pools_used(before: &[PoolSnapshot], after: &[PoolSnapshot]) -> Vec<PoolUsed> {
    after
        .iter()
        .filter_map(|a| {
            let was = before.iter().find(|b| b.id == a.id).map_or(0, |b| b.completed);
            let items = a.completed.saturating_sub(was);
            (items > 0).then(|| PoolUsed {
                cpu: a.cpu,
                pod: a.pod.clone(),
                concurrency: a.concurrency,
                items,
            })
        })
        .collect()
}

/// `pod 0-1, 2 at once` or `CPU 1, 1 at once`, one per pool.
fn pools_cell(pools: &[PoolUsed]) -> String {
    if pools.is_empty() {
        return "none seen".into();
    }
    let one = |p: &PoolUsed| match p.cpu {
        Some(c) => format!("CPU {c} pool, {} at once", p.concurrency),
        None => format!("pod {} pool, {} at once", cpu_list(p.pod.iter().copied()), p.concurrency),
    };
    pools.iter().map(one).collect::<Vec<_>>().join("; ")
}

/// The pools each queue's items ran in.
fn pools_line(outcomes: &[Outcome]) -> String {
    let each: Vec<String> =
        outcomes.iter().map(|o| format!("{}: {}", o.queue.label(), pools_cell(&o.pools))).collect();
    format!("   pools that ran them: {}", each.join("; "))
}

/// The ideal makespan of `n` items that burn `burn` and then block `sleep` on
/// `cpus` CPUs (the benchmark's): `max(n · burn / cpus, burn + sleep)`.
fn ideal(n: usize, burn: Duration, sleep: Duration, cpus: usize) -> Duration {
    let cpu_per_core = burn.mul_f64(n as f64 / cpus.max(1) as f64);
    cpu_per_core.max(burn + sleep)
}

/// How many items: `ITEMS_PER_CPU` per CPU, at most `ITEMS_MAX`.
fn items_for(cpus: usize) -> usize {
    (ITEMS_PER_CPU * cpus.max(1)).min(ITEMS_MAX)
}

/// CPUs as ranges: `0-3,6`. Expects them ascending.
fn cpu_list(cpus: impl IntoIterator<Item = usize>) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for c in cpus {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == c => *hi = c,
            _ => ranges.push((c, c)),
        }
    }
    let one = |&(lo, hi): &(usize, usize)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
    ranges.iter().map(one).collect::<Vec<_>>().join(",")
}

/// The CPUs that ran items: `2 of 2 (cpu 0: 101, cpu 1: 99)`, or with many
/// CPUs just their list: `40 of 64 (0-39)`.
fn cpu_cell(o: &Outcome, usable: usize) -> String {
    let counts = if o.per_cpu.len() <= CPUS_COUNTED {
        o.per_cpu.iter().map(|(c, n)| format!("cpu {c}: {n}")).collect::<Vec<_>>().join(", ")
    } else {
        cpu_list(o.per_cpu.keys().copied())
    };
    let unknown = if o.unknown_cpu > 0 { format!(", {} unknown", o.unknown_cpu) } else { String::new() };
    format!("{} of {usable} ({counts}{unknown})", o.per_cpu.len())
}

/// The comparison table.
fn render(outcomes: &[Outcome], ideal: Duration, usable: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "    {:<30} {:>10} {:>7} {:>7}  CPUs that ran items (items each)",
        "queue", "wall", "/ideal", "threads"
    );
    for o in outcomes {
        let ms = o.wall.as_secs_f64() * 1e3;
        let ratio = o.wall.as_secs_f64() / ideal.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "    {:<30} {:>7.1} ms {:>6.2}x {:>7}  {}",
            o.queue.label(),
            ms,
            ratio,
            o.threads,
            cpu_cell(o, usable)
        );
    }
    s
}

/// Where the producer was while it queued, per queue.
fn producer_line(outcomes: &[Outcome]) -> String {
    let each: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let cpus = match o.producer_cpus.len() {
                0 => "CPU ?".to_string(),
                1 => format!("CPU {}", cpu_list(o.producer_cpus.iter().copied())),
                _ => format!("CPUs {}", cpu_list(o.producer_cpus.iter().copied())),
            };
            format!("{cpus} for {}", o.queue.label())
        })
        .collect();
    format!("   the producer queued from {}", each.join(", "))
}

/// The one-line why.
const EXPLANATION: &str =
    "   why: the default queue (no flags) is unbound and concurrency managed: its pool \
    runs as many items at once as its pod has CPUs, so one producer's items spread over the pod; a \
    WqFlags::PERCPU queue runs each item on the CPU that queued it, one at a time while none blocks, so \
    they share the producer's CPU.";

/// Queues `n` items on a fresh `queue` from a new thread nobody pinned (no
/// affinity call: it may run on every CPU of the process), and waits for them.
fn run_one(queue: Queue, n: usize) -> Result<Outcome> {
    let wq = queue.build()?;
    let ran: Arc<Mutex<Vec<Ran>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let before = cmwq::debug::pools();
    let (q, r) = (wq.clone(), ran.clone());
    let producer = std::thread::Builder::new().name("demo-producer".into()).spawn(move || -> Result<_> {
        let mut cpus = BTreeSet::new();
        let t0 = Instant::now();
        for _ in 0..n {
            // Before and after: a move between the two still names both CPUs.
            cpus.extend(cmwq::debug::current_cpu());
            let r = r.clone();
            q.spawn(move || {
                burn_cpu(BURN);
                let (thread, cpu) = (std::thread::current().id(), cmwq::debug::current_cpu());
                cmwq::sleep(SLEEP);
                r.lock().unwrap_or_else(PoisonError::into_inner).push(Ran {
                    thread,
                    cpu,
                    done: Instant::now(),
                });
            })
            .map_err(|e| e.error().clone())?;
            cpus.extend(cmwq::debug::current_cpu());
        }
        Ok((t0, cpus))
    })?;
    let (t0, producer_cpus) = producer.join().map_err(|_| "the demo's producer thread panicked")??;
    let deadline = t0 + TIMEOUT;
    while ran.lock().unwrap_or_else(PoisonError::into_inner).len() < n {
        if Instant::now() > deadline {
            return Err(format!("{}: items still running after {TIMEOUT:?}", queue.label()).into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    wq.destroy()?;
    let pools = pools_used(&before, &cmwq::debug::pools());
    let ran = std::mem::take(&mut *ran.lock().unwrap_or_else(PoisonError::into_inner));
    let mut per_cpu = BTreeMap::new();
    for c in ran.iter().filter_map(|r| r.cpu) {
        *per_cpu.entry(c).or_insert(0) += 1;
    }
    let end = ran.iter().map(|r| r.done).max().unwrap_or(t0);
    Ok(Outcome {
        queue,
        wall: end.saturating_duration_since(t0),
        threads: ran.iter().map(|r| r.thread).collect::<HashSet<_>>().len(),
        per_cpu,
        unknown_cpu: ran.iter().filter(|r| r.cpu.is_none()).count(),
        producer_cpus,
        pools,
    })
}

/// Runs and prints the comparison on the process's `cpus`.
pub(crate) fn run(out: &mut dyn Write, cpus: &[usize]) -> Result<()> {
    let usable = cpus.len().max(1);
    let n = items_for(usable);
    let ideal = ideal(n, BURN, SLEEP, usable);
    writeln!(out, "== Part 3: one unpinned producer, the default queue against a WqFlags::PERCPU queue")?;
    writeln!(
        out,
        "   {n} items queued by one thread nobody pinned; each burns {} ms of CPU, then cmwq::sleep()s {} ms",
        BURN.as_millis(),
        SLEEP.as_millis()
    )?;
    writeln!(
        out,
        "   ideal = max(items x burn / CPUs, burn + sleep) = max({n} x {} ms / {usable}, {} ms) = {:.1} ms",
        BURN.as_millis(),
        (BURN + SLEEP).as_millis(),
        ideal.as_secs_f64() * 1e3
    )?;
    out.flush()?;
    let outcomes = [run_one(Queue::Default, n)?, run_one(Queue::PerCpu, n)?];
    write!(out, "{}", render(&outcomes, ideal, usable))?;
    writeln!(out, "{}", producer_line(&outcomes))?;
    writeln!(out, "{}", pools_line(&outcomes))?;
    writeln!(out, "{EXPLANATION}")?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        queue: Queue,
        ms: u64,
        threads: usize,
        per_cpu: &[(usize, usize)],
        producer: &[usize],
    ) -> Outcome {
        Outcome {
            queue,
            wall: Duration::from_millis(ms),
            threads,
            per_cpu: per_cpu.iter().copied().collect(),
            unknown_cpu: 0,
            producer_cpus: producer.iter().copied().collect(),
            pools: Vec::new(),
        }
    }

    #[test]
    fn ideal_and_item_count() {
        let (b, s) = (Duration::from_millis(1), Duration::from_millis(4));
        assert_eq!(ideal(200, b, s, 2), Duration::from_millis(100));
        assert_eq!(ideal(4, b, s, 2), Duration::from_millis(5), "few items: one burn and sleep");
        assert_eq!(ideal(10, b, s, 0), Duration::from_millis(10), "no CPU counts as one");
        assert_eq!((items_for(1), items_for(2), items_for(64), items_for(0)), (100, 200, 400, 100));
    }

    #[test]
    fn cpu_lists_and_cells() {
        assert_eq!(cpu_list([0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(cpu_list([5]), "5");
        assert_eq!(cpu_list([]), "");
        let o = outcome(Queue::Default, 104, 10, &[(0, 101), (1, 99)], &[0]);
        assert_eq!(cpu_cell(&o, 2), "2 of 2 (cpu 0: 101, cpu 1: 99)");
        let mut many = outcome(Queue::Default, 10, 40, &[], &[3]);
        many.per_cpu = (0..40).map(|c| (c, 10)).collect();
        many.unknown_cpu = 2;
        assert_eq!(cpu_cell(&many, 64), "40 of 64 (0-39, 2 unknown)");
    }

    #[test]
    fn table_producer_and_why() {
        let rows = [
            outcome(Queue::Default, 104, 10, &[(0, 101), (1, 99)], &[0]),
            outcome(Queue::PerCpu, 204, 5, &[(0, 200)], &[0]),
        ];
        let t = render(&rows, Duration::from_millis(100), 2);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert_eq!(
            lines[1],
            "    default (builder(..).build())    104.0 ms   1.04x      10  2 of 2 (cpu 0: 101, cpu 1: 99)"
        );
        assert_eq!(
            lines[2],
            "    WqFlags::PERCPU                  204.0 ms   2.04x       5  1 of 2 (cpu 0: 200)"
        );
        // The columns before the CPU list line up.
        let col = |l: &str| l.find("  CPUs").or_else(|| l.find("  1 of")).or_else(|| l.find("  2 of"));
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert_eq!(
            producer_line(&[rows[0].clone(), outcome(Queue::PerCpu, 1, 1, &[], &[0, 1])]),
            "   the producer queued from CPU 0 for default (builder(..).build()), CPUs 0-1 for WqFlags::PERCPU"
        );
        assert!(producer_line(&[outcome(Queue::PerCpu, 1, 1, &[], &[])]).contains("CPU ? for"));
        assert!(
            EXPLANATION.contains("WqFlags::PERCPU") && EXPLANATION.contains("the default queue (no flags)")
        );
        assert_eq!(EXPLANATION.lines().count(), 1);
        let (mut d, mut p) = (rows[0].clone(), rows[1].clone());
        d.pools = vec![PoolUsed { cpu: None, pod: vec![0, 1], concurrency: 2, items: 200 }];
        p.pools = vec![PoolUsed { cpu: Some(1), pod: vec![1], concurrency: 1, items: 200 }];
        assert_eq!(
            pools_line(&[d, p]),
            "   pools that ran them: default (builder(..).build()): pod 0-1 pool, 2 at once; WqFlags::PERCPU: \
             CPU 1 pool, 1 at once"
        );
        assert_eq!(pools_cell(&[]), "none seen");
    }

    #[test]
    fn pools_used_keeps_those_that_completed_items() {
        let now = cmwq::debug::pools();
        assert!(pools_used(&now, &now).is_empty());
        // Every pool counts as new against nothing: those with items show.
        let all = pools_used(&[], &now);
        assert_eq!(all.len(), now.iter().filter(|p| p.completed > 0).count());
    }

    #[test]
    fn percpu_items_stay_on_the_producers_cpus() {
        // A short real run: the per-CPU queue's items run only where the
        // producer queued them; every item is accounted for.
        let o = run_one(Queue::PerCpu, 8).unwrap();
        assert_eq!(o.per_cpu.values().sum::<usize>() + o.unknown_cpu, 8);
        assert!(o.per_cpu.keys().all(|c| o.producer_cpus.contains(c)), "{o:?}");
        assert!(o.threads >= 1 && o.wall >= BURN + SLEEP);
        assert!(o.pools.iter().all(|p| p.cpu.is_some() && p.concurrency == 1), "{o:?}");
        let d = run_one(Queue::Default, 8).unwrap();
        assert_eq!(d.per_cpu.values().sum::<usize>() + d.unknown_cpu, 8);
        assert!(d.pools.iter().any(|p| p.cpu.is_none()), "{d:?}");
    }
}
