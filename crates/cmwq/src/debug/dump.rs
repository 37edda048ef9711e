//! `cmwq::debug::dump`: the kernel's `show_all_workqueues()`
//! (`kernel/workqueue.c`: `show_one_workqueue`, `show_pwq`,
//! `show_one_worker_pool`) as data, with a `Display` that reads like it.
//!
//! A dump locks each pool once, briefly, and copies what it needs; it reads
//! `/proc` for the CPU of unbound workers after the locks are released.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::MonitorStats;
use crate::context::counters;
use crate::global::registry;
use crate::platform::topology::CpuList;
use crate::pwq::PwqStats;
use crate::workqueue::WqCore;
use crate::{WqFlags, WqStats};

/// Every live workqueue and every pool of the process: what the kernel's
/// `show_all_workqueues()` prints, as data. [`dump`] makes one; its `Display`
/// prints it in the kernel's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Dump {
    /// The live workqueues (not destroyed, a handle left), oldest first.
    pub workqueues: Vec<WqDump>,
    /// Every pool created so far, per-CPU pools first (by CPU, normal before
    /// highpri), then unbound pools by id.
    pub pools: Vec<PoolDump>,
    /// Worker threads alive in all pools ([`nr_workers`](super::nr_workers)).
    pub nr_workers: usize,
    /// Of those, the workers of per-CPU pools ([`nr_cm_workers`](super::nr_cm_workers)).
    pub nr_cm_workers: usize,
    /// Work items that panicked, process-wide ([`panics`](super::panics)).
    pub panics: u64,
    /// What the sleep monitor has done ([`monitor`](super::monitor)).
    pub monitor: MonitorStats,
    /// Stalls the watchdog reported ([`watchdog::stalls`](crate::watchdog::stalls)).
    pub stalls: u64,
    /// The watchdog's threshold: a pool with work waiting that started
    /// nothing for this long is [`hung`](PoolDump::hung). Zero: the watchdog is
    /// off, and no pool is called hung.
    pub watchdog_thresh: Duration,
}

/// One workqueue (the kernel's `show_one_workqueue`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct WqDump {
    /// Its name.
    pub name: String,
    /// Its flags (serialized as their names: `"PERCPU | HIGHPRI"`).
    #[cfg_attr(feature = "serde", serde(serialize_with = "flags_names"))]
    pub flags: WqFlags,
    /// Its `max_active` (the kernel's `saved_max_active`: the value set, also
    /// while frozen).
    pub max_active: u32,
    /// Its `min_active`, for an unbound queue that counts `max_active` per
    /// NUMA node; `None` otherwise.
    pub min_active: Option<u32>,
    /// An ordered queue ([`Workqueue::ordered`](crate::Workqueue::ordered)).
    pub ordered: bool,
    /// Its counters ([`Workqueue::stats`](crate::Workqueue::stats)).
    pub stats: WqStats,
    /// For an unbound queue that counts `max_active` per NUMA node, each
    /// node's count (the kernel's `wq_node_nr_active`, which `wq_dump.py`
    /// shows); empty otherwise.
    pub nodes: Vec<NodeDump>,
    /// Its pwqs, one per pool it has used (the pools' order).
    pub pwqs: Vec<PwqDump>,
}

/// One NUMA node's share of an unbound queue's `max_active` (the kernel's
/// `wq_node_nr_active`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct NodeDump {
    /// The node; `None` for the count of pools whose pod spans nodes (the
    /// kernel's `NUMA_NO_NODE` slot).
    pub node: Option<usize>,
    /// Active items of the queue's pwqs on this node.
    pub active: u32,
    /// The most the node may have active.
    pub max: u32,
    /// pwqs waiting for a slot to free here.
    pub waiting_pwqs: usize,
}

/// A workqueue on one pool (the kernel's `show_pwq`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PwqDump {
    /// The pool's id ([`PoolDump::id`]).
    pub pool: u32,
    /// The pool's CPU, for a per-CPU pool.
    pub cpu: Option<usize>,
    /// The pool's pod: its CPUs, ascending.
    pub pod: Vec<usize>,
    /// Active items: waiting on the pool's worklist or running (`nr_active`).
    pub active: u32,
    /// The most it may have active (0 while frozen or plugged; an unbound
    /// queue counting per node is limited by its node's share instead).
    pub max_active: u32,
    /// Of the active items, those waiting on the pool's worklist.
    pub pending: usize,
    /// Items on its inactive list, held back by `max_active`.
    pub inactive: usize,
    /// Items queued and not finished: pending, running and inactive.
    pub in_flight: u32,
    /// The items its workers execute now (the kernel's "in-flight").
    pub running: Vec<RunningItem>,
}

/// An item being executed, and its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RunningItem {
    /// The item's id, as in the [events](super#events) (its address); `None`
    /// when it started before items were timed ([`set_accounting`](super::set_accounting)).
    pub work: Option<usize>,
    /// The worker thread's name (`cmwq/3:0`, `cmwq/u7:2`).
    pub worker: String,
    /// The worker's thread id, once its thread has started.
    pub tid: Option<i32>,
    /// The CPU the worker runs on: a per-CPU pool's CPU; for an unbound
    /// pool, the CPU the thread last ran on (from `/proc`), if known.
    pub cpu: Option<usize>,
    /// How long the item has run (wall time). Exact when `exact`; otherwise
    /// the item started before items were timed, and this is a lower bound:
    /// since the first dump that saw it.
    pub running_for: Duration,
    /// Whether `running_for` is exact.
    pub exact: bool,
    /// The worker is out of concurrency management for a block: announced
    /// ([`blocking`](crate::blocking), [`sleep`](crate::sleep)), or found by
    /// the sleep monitor.
    pub sleeping: bool,
    /// The worker runs outside concurrency management as CPU-intensive: its
    /// queue is [`WqFlags::CPU_INTENSIVE`], or the item hogged the CPU.
    pub cpu_intensive: bool,
    /// Spawned closures of the same pwq that the worker took with this one,
    /// in a batch, and will run next (`pool/README.md`, "Batches"): active,
    /// but neither pending nor running yet. A block of this item, found or
    /// announced, gives them back to the worklist.
    pub batched: usize,
}

/// One worker pool (the kernel's `show_one_worker_pool`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PoolDump {
    /// The pool id.
    pub id: u32,
    /// Its short name, as in its workers' names: `3`, `3H` (per-CPU, CPU 3,
    /// highpri), `bh3`, `bh3H` (the BH pools of CPU 3, the kernel's `bh` and
    /// `bh-hi`), `u7` (unbound, pool 7).
    pub label: String,
    /// The CPU of a per-CPU pool; `None` for an unbound pool.
    pub cpu: Option<usize>,
    /// Its pod's CPUs, ascending.
    pub pod: Vec<usize>,
    /// The nice value its workers run at ([`PoolSnapshot::nice`](super::PoolSnapshot::nice)).
    pub nice: i32,
    /// The nice value its attributes ask for.
    pub nice_wanted: i32,
    /// A highpri pool.
    pub highpri: bool,
    /// A BH pool: one context runs its items, in queueing order (`WqFlags::BH`).
    pub bh: bool,
    /// How many items it lets run at once (1 per-CPU; an unbound pool: its
    /// pod's CPUs).
    pub concurrency: usize,
    /// Worker threads.
    pub workers: usize,
    /// Workers executing an item.
    pub busy: usize,
    /// Idle workers.
    pub idle: usize,
    /// Workers counted as running (`nr_running`).
    pub nr_running: i64,
    /// Active items waiting on its worklist.
    pub pending: usize,
    /// Items held back by `max_active` on its pwqs' inactive lists.
    pub inactive: usize,
    /// Items completed since it was created.
    pub completed: u64,
    /// How long work has waited here with no item started: the age of its
    /// oldest waiting item, as the kernel's `hung=` (the time since the pool
    /// last took an item while work waited). A lower bound, measured from the
    /// first look that saw the pool in this state (a watchdog check, or an
    /// earlier dump), so exact to the interval between looks. `None` when
    /// nothing waits.
    pub oldest_wait: Option<Duration>,
    /// Work has waited with no item started for the watchdog's threshold
    /// ([`Dump::watchdog_thresh`]): the pool has stalled.
    pub hung: bool,
}

#[cfg(feature = "serde")]
fn flags_names<S: serde::Serializer>(flags: &WqFlags, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&FlagNames(*flags))
}

/// Flags as their names, `PERCPU | HIGHPRI` (`-` for none).
struct FlagNames(WqFlags);

impl fmt::Display for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        bitflags::parser::to_writer(&self.0, f)
    }
}

/// What earlier dumps saw: the lower bounds of waits and runs that started
/// before anyone timed them.
#[derive(Debug, Default)]
struct Memory {
    /// Pool id → (items started, first seen waiting with that count).
    pools: HashMap<u32, (u64, Instant)>,
    /// (pool id, worker slot) → (item number, first seen executing it).
    workers: HashMap<(u32, usize), (u64, Instant)>,
}

static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);

/// A running item as copied under its pool's lock.
struct RawItem {
    slot: usize,
    pwq: u32,
    work: Option<usize>,
    tid: Option<i32>,
    progress: u64,
    started: Option<Instant>,
    sleeping: bool,
    cpu_intensive: bool,
    batched: usize,
}

/// A pwq as copied under its pool's lock.
struct RawPwq {
    wq: Arc<WqCore>,
    slot: u32,
    dump: PwqDump,
    stats: PwqStats,
}

/// Every live workqueue and every pool, now: the kernel's
/// `show_all_workqueues()` as data (see the [module docs](super#dump)).
///
/// The first call switches item timing on ([`set_accounting`](super::set_accounting)):
/// from then on each item's start and CPU time are recorded, so running
/// items show exactly how long they have run, and [`WqStats::cpu_time`]
/// counts.
///
/// ```
/// use cmwq::{Work, Workqueue};
///
/// let wq = Workqueue::ordered("dumped").build()?; // one item at a time
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let rx = std::sync::Mutex::new(rx);
/// let first = Work::new(move |_| drop(rx.lock().unwrap().recv()));
/// let second = Work::new(|_| {});
/// cmwq::debug::dump(); // times items from now on
/// wq.queue(&first)?;
/// wq.queue(&second)?; // waits for `first` on the inactive list
/// while !first.busy().running {
///     std::thread::yield_now();
/// }
/// let d = cmwq::debug::dump();
/// let row = d.workqueues.iter().find(|w| w.name == "dumped").unwrap();
/// assert_eq!(row.max_active, 1);
/// let pwq = row.pwqs.iter().find(|p| !p.running.is_empty()).unwrap();
/// assert_eq!((pwq.active, pwq.inactive), (1, 1));
/// assert_eq!(pwq.running[0].work, Some(first.id()));
/// println!("{d}");
/// tx.send(()).unwrap();
/// wq.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn dump() -> Dump {
    counters::set_accounting(true);
    let reg = registry();
    // The watchdog's view first: its lock comes before any pool lock.
    let (watch, thresh) = match crate::monitor::watchdog::get() {
        Some(wd) => (wd.waiting(), wd.thresh()),
        None => (Vec::new(), Duration::ZERO),
    };
    // The live queues; the entries of queues gone since are dropped on the
    // way (as `register_workqueue` does), so that the queue path never pays
    // for a queue's leaving.
    let queues: Vec<Arc<WqCore>> = {
        let mut list = reg.workqueues();
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(std::sync::Weak::upgrade).collect()
    };
    let mut pools = Vec::new();
    let mut raw_pwqs: Vec<RawPwq> = Vec::new();
    let mut raw_items: Vec<(usize, RawItem)> = Vec::new();
    let mut pool_list: Vec<_> = reg.pools().collect();
    pool_list.sort_by_key(|p| (p.cpu.is_none(), p.bh, p.cpu, p.highpri, p.id));
    let now = Instant::now();
    let mut mem = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let mem = mem.get_or_insert_with(Memory::default);
    let mut seen_workers = Vec::new();
    for p in &pool_list {
        let g = p.lock();
        let started = g.completed + g.nr_busy as u64;
        let pending = g.worklist.len();
        // Items waiting per pwq slot.
        let mut pending_of: HashMap<u32, usize> = HashMap::new();
        for e in &g.worklist {
            *pending_of.entry(e.pwq).or_default() += 1;
        }
        for (idx, w) in g.workers.iter() {
            let Some(cur) = w.current else { continue };
            let stamp = w.started.filter(|s| s.0 == w.progress);
            raw_items.push((
                pools.len(),
                RawItem {
                    slot: idx,
                    pwq: cur.pwq,
                    work: stamp.map(|s| s.2),
                    #[cfg(not(loom))]
                    tid: w.shared.tid.get().copied(),
                    #[cfg(loom)]
                    tid: None,
                    progress: w.progress,
                    started: stamp.map(|s| s.1),
                    sleeping: w.shared.is_sleeping(),
                    cpu_intensive: w.is_cpu_intensive(),
                    batched: w.shared.batch.waiting(),
                },
            ));
        }
        for (slot, pwq) in g.pwqs.iter() {
            raw_pwqs.push(RawPwq {
                wq: pwq.wq.clone(),
                slot: slot as u32,
                stats: pwq.stats,
                dump: PwqDump {
                    pool: p.id,
                    cpu: p.cpu,
                    pod: p.pod.to_vec(),
                    active: pwq.nr_active,
                    max_active: pwq.max_active,
                    pending: pending_of.get(&(slot as u32)).copied().unwrap_or(0),
                    inactive: pwq.inactive.len(),
                    in_flight: pwq.total_in_flight(),
                    running: Vec::new(),
                },
            });
        }
        let workers = g.nr_workers;
        let idle = g.idle.len();
        let busy = g.nr_busy;
        let inactive = g.nr_inactive();
        let completed = g.completed;
        drop(g);
        // How long work has waited with no start: the earliest look that saw
        // this state, the watchdog's or a dump's.
        let oldest_wait = if pending == 0 {
            mem.pools.remove(&p.id);
            None
        } else {
            let since = match mem.pools.get(&p.id) {
                Some(&(n, t)) if n == started => t,
                _ => {
                    mem.pools.insert(p.id, (started, now));
                    now
                }
            };
            let by_dump = now.saturating_duration_since(since);
            let by_watchdog = match watch.get(p.id as usize) {
                Some(&Some((n, waited_ns))) if n == started => Duration::from_nanos(waited_ns),
                _ => Duration::ZERO,
            };
            Some(by_dump.max(by_watchdog))
        };
        pools.push(PoolDump {
            id: p.id,
            label: p.label(),
            cpu: p.cpu,
            pod: p.pod.to_vec(),
            nice: p.nice_applied.load(std::sync::atomic::Ordering::Relaxed),
            nice_wanted: p.nice,
            highpri: p.highpri,
            bh: p.bh,
            concurrency: p.concurrency as usize,
            workers,
            busy,
            idle,
            nr_running: p.nr_running(),
            pending,
            inactive,
            completed,
            hung: !thresh.is_zero() && oldest_wait.is_some_and(|w| w >= thresh),
            oldest_wait,
        });
    }
    // Running items: their ages, and the CPU of unbound workers (`/proc`, with
    // no lock held).
    let mut items: Vec<(u32, u32, RunningItem)> = Vec::with_capacity(raw_items.len());
    for (pi, r) in raw_items {
        let pool = &pools[pi];
        seen_workers.push((pool.id, r.slot));
        let (running_for, exact) = match r.started {
            Some(t) => (now.saturating_duration_since(t), true),
            None => {
                let first = match mem.workers.get(&(pool.id, r.slot)) {
                    Some(&(n, t)) if n == r.progress => t,
                    _ => {
                        mem.workers.insert((pool.id, r.slot), (r.progress, now));
                        now
                    }
                };
                (now.saturating_duration_since(first), false)
            }
        };
        let cpu = pool.cpu.or_else(|| r.tid.and_then(crate::platform::sys::thread_last_cpu));
        items.push((
            pool.id,
            r.pwq,
            RunningItem {
                work: r.work,
                worker: format!("{}{}:{}", super::WORKER_THREAD_PREFIX, pool.label, r.slot),
                tid: r.tid,
                cpu,
                running_for,
                exact,
                sleeping: r.sleeping,
                cpu_intensive: r.cpu_intensive,
                batched: r.batched,
            },
        ));
    }
    mem.workers.retain(|k, _| seen_workers.contains(k));
    for (pool, slot, item) in items {
        if let Some(p) = raw_pwqs.iter_mut().find(|p| p.dump.pool == pool && p.slot == slot) {
            p.dump.running.push(item);
        }
    }
    let mut workqueues = Vec::with_capacity(queues.len());
    for q in &queues {
        let info = q.info();
        if info.gone {
            continue;
        }
        let mut sum = info.retired;
        let (mut in_flight, mut inactive) = (0u64, 0u64);
        let mut pwqs = Vec::new();
        for p in raw_pwqs.iter().filter(|p| Arc::ptr_eq(&p.wq, q)) {
            sum.add(&p.stats);
            in_flight += u64::from(p.dump.in_flight);
            inactive += p.dump.inactive as u64;
            pwqs.push(p.dump.clone());
        }
        workqueues.push(WqDump {
            name: q.name.to_string(),
            flags: info.flags,
            max_active: info.max_active,
            min_active: info.min_active,
            ordered: info.ordered,
            stats: WqStats::from_pwq(&sum, in_flight, inactive),
            nodes: info
                .nodes
                .iter()
                .map(|&(node, active, max, waiting_pwqs)| NodeDump { node, active, max, waiting_pwqs })
                .collect(),
            pwqs,
        });
    }
    drop(raw_pwqs);
    // The last handle of a queue may go with these clones: dropped with no lock held.
    drop(queues);
    let (nr_workers, nr_cm_workers) = reg.ctx.threads.count();
    Dump {
        workqueues,
        pools,
        nr_workers,
        nr_cm_workers,
        panics: reg.ctx.counters.panics(),
        monitor: crate::monitor::stats(),
        stalls: crate::monitor::watchdog::get().map_or(0, |w| w.stalls()),
        watchdog_thresh: thresh,
    }
}

/// A duration as the kernel's dumps print one: `850us`, `12ms`, `3.2s`.
struct Age(Duration);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            f.write_str("0s")
        } else if d < Duration::from_millis(1) {
            write!(f, "{}us", d.as_micros())
        } else if d < Duration::from_secs(1) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{:.1}s", d.as_secs_f64())
        }
    }
}

/// `cpus=3` for a per-CPU pool, `pod=0-3` for an unbound one.
struct Place<'a>(Option<usize>, &'a [usize]);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "cpu={c}"),
            None => write!(f, "pod={}", CpuList(self.1)),
        }
    }
}

impl fmt::Display for RunningItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.worker)?;
        if let Some(t) = self.tid {
            write!(f, "({t})")?;
        }
        if let Some(c) = self.cpu {
            write!(f, "@cpu{c}")?;
        }
        if let Some(w) = self.work {
            write!(f, ":{w:#x}")?;
        }
        write!(f, " for {}{}", if self.exact { "" } else { ">=" }, Age(self.running_for))?;
        if self.sleeping {
            f.write_str(" sleeping")?;
        }
        if self.cpu_intensive {
            f.write_str(" cpu-intensive")?;
        }
        if self.batched > 0 {
            write!(f, " +{} batched", self.batched)?;
        }
        Ok(())
    }
}

impl fmt::Display for PwqDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  pwq {}: {} active={}/{} pending={} inactive={}",
            self.pool,
            Place(self.cpu, &self.pod),
            self.active,
            self.max_active,
            self.pending,
            self.inactive
        )?;
        if !self.running.is_empty() {
            f.write_str("\n    in-flight:")?;
            for (i, r) in self.running.iter().enumerate() {
                write!(f, "{} {r}", if i > 0 { "," } else { "" })?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for WqDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(f, "workqueue {}: flags={} max_active={}", self.name, FlagNames(self.flags), self.max_active)?;
        if let Some(m) = self.min_active {
            write!(f, " min_active={m}")?;
        }
        if self.ordered {
            f.write_str(" ordered")?;
        }
        write!(
            f,
            " started={} completed={} in_flight={} cpu_time={} cpu_intensive={} cm_wakeup={} monitor_blocks={} panicked={} batched={}",
            s.started,
            s.completed,
            s.in_flight,
            Age(s.cpu_time),
            s.cpu_intensive,
            s.cm_wakeup,
            s.monitor_blocks,
            s.panicked,
            s.batched
        )?;
        if self.flags.contains(WqFlags::BH) {
            write!(f, " bh_blocked={}", s.bh_blocked)?;
        }
        if !self.nodes.is_empty() {
            f.write_str("\n  node_nr_active:")?;
            for n in &self.nodes {
                match n.node {
                    Some(i) => write!(f, " {i}={}/{}", n.active, n.max)?,
                    None => write!(f, " any={}/{}", n.active, n.max)?,
                }
                if n.waiting_pwqs > 0 {
                    write!(f, "({} waiting)", n.waiting_pwqs)?;
                }
            }
        }
        // Like the kernel, only the pwqs with something in them.
        for p in self.pwqs.iter().filter(|p| p.in_flight > 0 || !p.running.is_empty()) {
            write!(f, "\n{p}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PoolDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool {} ({}): {} nice={}{} hung={} workers={} busy={} idle={} nr_running={} pending={} inactive={} \
             completed={}",
            self.id,
            self.label,
            Place(self.cpu, &self.pod),
            self.nice,
            // Refused the nice value its attributes ask for.
            if self.nice == self.nice_wanted { String::new() } else { format!(" (wanted {})", self.nice_wanted) },
            Age(self.oldest_wait.unwrap_or_default()),
            self.workers,
            self.busy,
            self.idle,
            self.nr_running,
            self.pending,
            self.inactive,
            self.completed
        )?;
        if self.hung {
            f.write_str(" HUNG")?;
        }
        Ok(())
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Showing workqueues and worker pools:")?;
        for w in &self.workqueues {
            writeln!(f, "{w}")?;
        }
        for p in &self.pools {
            writeln!(f, "{p}")?;
        }
        let m = &self.monitor;
        write!(
            f,
            "workers={} (concurrency managed {}) panics={} stalls={} monitor: blocked={} cpu_hogs={} created={}",
            self.nr_workers, self.nr_cm_workers, self.panics, self.stalls, m.blocked, m.cpu_hogs, m.created
        )
    }
}
