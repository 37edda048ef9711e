//! many-queues: many workqueues with a few items each: threads, RSS per idle
//! queue, the pools behind them, create and destroy time.
//!
//! Families: `cmwq-default (4 attrs)`, default queues (`builder(..).build()`,
//! no flags: unbound and concurrency managed) built with a handful of distinct
//! [`Attrs`] in turn and used once each, from one unpinned producer (one item,
//! then `flush`); `cmwq-bound` (`WqFlags::PERCPU`) and `cmwq-unbound`
//! (`WqFlags::UNBOUND`), on which each pinned producer queues its items on
//! every queue; and the two families that give each queue its own threads
//! (`mt-wq`, a fixed pool per queue), capped in threads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmwq::{AffinityScope, Attrs, Workqueue, WqFlags};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::executors::{Batch, Executor, ExecutorKind, FixedPool, Job, MtWq};
use crate::fmt::{bytes, section, yes};
use crate::pools::{self, PoolState};
use crate::procfs::{self, Peaks};
use crate::producers::Feed;

/// The memory an idle default queue should cost at most (bytes): the headline
/// says whether `cmwq-default` stays under it.
pub(crate) const IDLE_QUEUE_TARGET_BYTES: f64 = 4096.0;

/// The attributes the `cmwq-default` family cycles through, by name. `None`
/// makes no `attrs` call at all: the queue `builder(..).build()` gives.
fn default_family_attrs() -> [(&'static str, Option<Attrs>); 4] {
    [
        ("default", None),
        ("nice 5", Some(Attrs::default().with_nice(5))),
        ("scope cpu", Some(Attrs { affinity_scope: AffinityScope::Cpu, ..Attrs::default() })),
        ("strict", Some(Attrs { affinity_strict: true, ..Attrs::default() })),
    ]
}

/// many-queues: many workqueues with a few items each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManyQueuesRow {
    /// Executor family.
    pub executor: String,
    /// Who queued the items: `1 pinned producer per CPU` (each queues its
    /// items on every queue) or `1 unpinned producer` (`cmwq-default`: one
    /// item per queue, then `flush`).
    pub producers_label: String,
    /// The [`Attrs`] the queues were built with, in turn (`cmwq-default`; empty
    /// for the families that set none).
    pub attrs: Vec<String>,
    /// Queues created.
    pub queues: usize,
    /// Items per queue.
    pub items_per_queue: usize,
    /// The executor's threads once all queues are idle after their items.
    pub threads_idle: usize,
    /// `threads_idle / queues`: the threads each queue adds (about 0 where the
    /// queues share their pools).
    pub threads_per_queue: f64,
    /// Peak threads from creation to destruction.
    pub threads_peak: usize,
    /// cmwq's pools that the queues created or ran items on (from
    /// `cmwq::debug::pools()` before the queues and with all of them idle);
    /// `None` for the families that are not cmwq.
    pub pools: Option<usize>,
    /// Of [`pools`](Self::pools), those created for these queues (the others
    /// existed before: pools live for the process).
    pub pools_created: Option<usize>,
    /// VmRSS with all queues idle minus VmRSS before creating them (bytes).
    pub rss_delta_bytes: i64,
    /// `rss_delta_bytes / queues`.
    pub bytes_per_queue: f64,
    /// Creating all queues.
    pub create_ms: f64,
    /// Destroying all queues (draining, joining threads).
    pub destroy_ms: f64,
    /// Per queue.
    pub create_us_per_queue: f64,
    /// Per queue.
    pub destroy_us_per_queue: f64,
    /// Why fewer queues than asked, if so.
    pub note: Option<String>,
    /// Every item ran exactly once.
    pub exactly_once: bool,
}

/// One queue of a many-queues family.
enum Queue {
    Cmwq(Workqueue),
    Mt(MtWq),
    Pool(FixedPool),
}

impl Queue {
    /// Queue `i` of a `kind` family; `attrs` only for `cmwq-default` (`None`:
    /// no `attrs` call).
    fn create(kind: ExecutorKind, i: usize, cpus: &[usize], attrs: Option<&Attrs>) -> Result<Queue, Error> {
        let name = format!("mq-{i}");
        let cmwq = |b: cmwq::Builder| Ok(Queue::Cmwq(b.build()?));
        match kind {
            ExecutorKind::CmwqDefault => match attrs {
                Some(a) => cmwq(Workqueue::builder(name).attrs(a.clone())),
                None => cmwq(Workqueue::builder(name)),
            },
            ExecutorKind::CmwqBound => cmwq(Workqueue::builder(name).flags(WqFlags::PERCPU)),
            ExecutorKind::CmwqUnbound => cmwq(Workqueue::builder(name).flags(WqFlags::UNBOUND)),
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
            Queue::Cmwq(wq) => wq.flush()?,
            Queue::Mt(q) => q.flush(),
            Queue::Pool(p) => p.flush(),
        }
        Ok(())
    }

    /// Destroys the queue; the emulations close their lists and join their threads.
    fn destroy(self) -> Result<(), Error> {
        if let Queue::Cmwq(wq) = self {
            wq.destroy()?;
        }
        Ok(())
    }
}

/// The families, in table order.
const FAMILIES: [ExecutorKind; 5] = [
    ExecutorKind::CmwqDefault,
    ExecutorKind::CmwqBound,
    ExecutorKind::CmwqUnbound,
    ExecutorKind::MtWq,
    ExecutorKind::FixedPool,
];

/// How one family is built and used.
struct Family {
    kind: ExecutorKind,
    label: String,
    /// The attributes its queues cycle through (`cmwq-default` only).
    attrs: Vec<(&'static str, Option<Attrs>)>,
    /// `Feed::Unpinned`: each queue used once (one item, then `flush`);
    /// `Feed::Pinned`: each producer queues `items_per_cpu` items on every queue.
    feed: Feed,
    queues: usize,
    items_per_cpu: usize,
    note: Option<String>,
}

impl Family {
    /// The family of `kind`: `asked` queues, or fewer for the families that
    /// give each queue its own threads (at most `thread_cap` threads in all).
    fn new(
        kind: ExecutorKind,
        asked: usize,
        items_per_cpu: usize,
        thread_cap: usize,
        cores: usize,
    ) -> Family {
        let asked = asked.max(1);
        let cores = cores.max(1);
        let queues = if kind.is_cmwq() { asked } else { (thread_cap / cores).clamp(1, asked) };
        let note = (queues < asked).then(|| {
            format!(
                "capped at {} threads = {queues} queues × {cores} threads (asked {asked} queues)",
                queues * cores
            )
        });
        let (attrs, feed) = match kind {
            ExecutorKind::CmwqDefault => (default_family_attrs().to_vec(), Feed::Unpinned),
            _ => (Vec::new(), Feed::Pinned(cores)),
        };
        let label = match kind {
            ExecutorKind::FixedPool => "fixed-pool (one per queue)".to_string(),
            ExecutorKind::CmwqDefault => format!("{} ({} attrs)", kind.name(), attrs.len()),
            _ => kind.name().to_string(),
        };
        Family { kind, label, attrs, feed, queues, items_per_cpu: items_per_cpu.max(1), note }
    }

    /// Whether each queue is used once, by one producer.
    fn used_once(&self) -> bool {
        self.feed == Feed::Unpinned
    }

    /// Items queued on each queue.
    fn items_per_queue(&self, cores: usize) -> usize {
        if self.used_once() {
            1
        } else {
            cores.max(1) * self.items_per_cpu
        }
    }

    /// The attributes of queue `i`, if the family sets any.
    fn attrs_of(&self, i: usize) -> Option<&Attrs> {
        if self.attrs.is_empty() {
            None
        } else {
            self.attrs[i % self.attrs.len()].1.as_ref()
        }
    }
}

/// The pools that a family's queues created or ran items on, and how many of
/// them are new: from the pools before the queues existed and with all of them
/// idle. A pool the queues only created (a pod nobody queued on) counts too.
pub(crate) fn family_pools(before: &[PoolState], after: &[PoolState]) -> (usize, usize) {
    let existed = |id: u32| before.iter().any(|b| b.id == id);
    let created = after.iter().filter(|a| !existed(a.id)).count();
    let used_old = pools::completed_since(before, after).iter().filter(|(p, _)| existed(p.id)).count();
    (created + used_old, created)
}

pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<Vec<ManyQueuesRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let selected: Vec<ExecutorKind> = FAMILIES.into_iter().filter(|f| ctx.kinds.contains(f)).collect();
    for kind in selected {
        let fam =
            Family::new(kind, ctx.cfg.mq_queues, ctx.cfg.mq_items_per_cpu, ctx.cfg.mq_thread_cap, cores);
        let (q, label) = (fam.queues, fam.label.as_str());
        let other = ctx.prepare();
        let per_queue = fam.items_per_queue(cores);
        let batch_items = q * per_queue;
        ctx.say(&format!("[many-queues] {label}: creating {q} queues, {batch_items} items"));
        let batch = Batch::new(batch_items);
        let pools0 = ctx.pools_before(kind);
        procfs::trim_heap();
        let rss0 = procfs::rss_bytes();
        ctx.sampler.open();
        let (queues, create) = match fill(ctx, &fam, &batch) {
            Ok(v) => v,
            Err(e) => {
                ctx.sampler.close();
                return Err(e);
            }
        };
        let idle_threads_now = procfs::settled_threads(Duration::from_millis(200));
        let idle = Peaks {
            all: idle_threads_now,
            non_cmwq: idle_threads_now.saturating_sub(cmwq::debug::nr_workers()),
        };
        let threads_idle = ctx.threads_of(kind, idle, other);
        let pools = pools0.map(|before| family_pools(&before, &pools::snapshot()));
        procfs::trim_heap();
        let rss1 = procfs::rss_bytes();
        let t = Instant::now();
        for queue in queues {
            queue.destroy()?;
        }
        let destroy = t.elapsed();
        let peaks = ctx.sampler.close();
        let threads_peak = ctx.threads_of(kind, peaks, other);
        let ok = ctx.exactly_once(&format!("many-queues {label}"), std::slice::from_ref(&batch));
        let delta = rss1 as i64 - rss0 as i64;
        let row = ManyQueuesRow {
            executor: label.into(),
            producers_label: fam.feed.label(cores),
            attrs: fam.attrs.iter().map(|(n, _)| (*n).to_string()).collect(),
            queues: q,
            items_per_queue: per_queue,
            threads_idle,
            threads_per_queue: threads_idle as f64 / q as f64,
            threads_peak,
            pools: pools.map(|p| p.0),
            pools_created: pools.map(|p| p.1),
            rss_delta_bytes: delta,
            bytes_per_queue: delta as f64 / q as f64,
            create_ms: create.as_secs_f64() * 1e3,
            destroy_ms: destroy.as_secs_f64() * 1e3,
            create_us_per_queue: create.as_secs_f64() * 1e6 / q as f64,
            destroy_us_per_queue: destroy.as_secs_f64() * 1e6 / q as f64,
            note: fam.note.clone(),
            exactly_once: ok,
        };
        ctx.say(&format!("[many-queues] {}", progress_line(&row)));
        rows.push(row);
    }
    Ok(rows)
}

/// Creates the family's queues (timed), has its producers use them, and waits
/// until all are idle again. Used once: the unpinned producer queues one item
/// on each queue in turn and flushes it. Otherwise every pinned producer queues
/// its items on every queue, then each queue is flushed.
fn fill(ctx: &Ctx<'_>, fam: &Family, batch: &Batch) -> Result<(Vec<Queue>, Duration), Error> {
    let (q, k, cores) = (fam.queues, fam.items_per_cpu, ctx.cores());
    let t = Instant::now();
    let queues = (0..q)
        .map(|i| Queue::create(fam.kind, i, &ctx.cpus, fam.attrs_of(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let create = t.elapsed();
    let queues = Arc::new(queues);
    let err: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    let (qs, b, e, once) = (queues.clone(), batch.clone(), err.clone(), fam.used_once());
    ctx.producers.run(
        fam.feed,
        Arc::new(move |p| {
            let r = qs.iter().enumerate().try_for_each(|(qi, queue)| {
                if once {
                    let b = b.clone();
                    queue.spawn(Box::new(move || b.done(qi)))?;
                    return queue.flush();
                }
                (0..k).try_for_each(|j| {
                    let (i, b) = ((qi * cores + p) * k + j, b.clone());
                    queue.spawn(Box::new(move || b.done(i)))
                })
            });
            if let Err(err) = r {
                *e.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
            }
        }),
    );
    if let Some(e) = err.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(e);
    }
    let items = q * fam.items_per_queue(cores);
    batch.wait(&fam.label, ctx.cfg.batch_timeout(items, Duration::from_micros(100)))?;
    for queue in queues.iter() {
        queue.flush()?;
    }
    let queues = Arc::try_unwrap(queues).map_err(|_| Error::Executor("queues still shared".into()))?;
    Ok((queues, create))
}

/// `5 (4 new)`, or `-` for a family that is not cmwq.
fn pools_cell(r: &ManyQueuesRow) -> String {
    match (r.pools, r.pools_created) {
        (Some(n), Some(c)) => format!("{n} ({c} new)"),
        (Some(n), None) => n.to_string(),
        _ => "-".into(),
    }
}

/// Threads per queue: four decimals for the tiny shares of shared pools, one
/// for whole threads per queue.
fn per_queue(x: f64) -> String {
    if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// What an idle queue costs, for the text: `1.2 KiB per idle queue`. When the
/// process's RSS fell over the run (trimming the heap gave back more than the
/// queues took: what earlier workloads left), the figure per queue would be
/// negative: the text says nothing measurable, and by how much the RSS fell.
fn per_idle_queue(r: &ManyQueuesRow) -> String {
    if r.rss_delta_bytes < 0 {
        format!("nothing measurable per idle queue (RSS fell {})", bytes(-(r.rss_delta_bytes as f64)))
    } else {
        format!("{} per idle queue", bytes(r.bytes_per_queue))
    }
}

/// The progress line of one family.
fn progress_line(r: &ManyQueuesRow) -> String {
    let pools = match r.pools {
        Some(_) => format!(", pools {}", pools_cell(r)),
        None => String::new(),
    };
    format!(
        "{}: {} queues: {} threads idle ({} per queue, {} peak){pools}, {}, create {:.1} ms, destroy {:.1} ms",
        r.executor,
        r.queues,
        r.threads_idle,
        per_queue(r.threads_per_queue),
        r.threads_peak,
        per_idle_queue(r),
        r.create_ms,
        r.destroy_ms
    )
}

pub(crate) fn headline(rows: &[ManyQueuesRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            if r.attrs.is_empty() {
                return format!(
                    "many-queues: {} with {} queues: {} threads idle, {}",
                    r.executor,
                    r.queues,
                    r.threads_idle,
                    per_idle_queue(r)
                );
            }
            let target = if r.bytes_per_queue < IDLE_QUEUE_TARGET_BYTES { "under" } else { "OVER" };
            let pools = r.pools.map_or_else(String::new, |n| format!(", {n} pools"));
            format!(
                "many-queues: {} with {} queues used once each: {} threads per queue ({} idle){pools}, {} \
                 ({target} the {} target), create {:.2} µs per queue",
                r.executor,
                r.queues,
                per_queue(r.threads_per_queue),
                r.threads_idle,
                per_idle_queue(r),
                bytes(IDLE_QUEUE_TARGET_BYTES),
                r.create_us_per_queue
            )
        })
        .collect()
}

pub(crate) fn markdown(rows: &[ManyQueuesRow]) -> String {
    let f2 = |x: f64| format!("{x:.2}");
    let attrs = rows.iter().find(|r| !r.attrs.is_empty()).map(|r| r.attrs.join(", "));
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.executor),
                r.producers_label.clone(),
                r.queues.to_string(),
                r.items_per_queue.to_string(),
                r.threads_idle.to_string(),
                per_queue(r.threads_per_queue),
                r.threads_peak.to_string(),
                pools_cell(r),
                bytes(r.rss_delta_bytes as f64),
                bytes(r.bytes_per_queue),
                format!("{:.1}", r.create_ms),
                format!("{:.1}", r.destroy_ms),
                f2(r.create_us_per_queue),
                f2(r.destroy_us_per_queue),
                yes(r.exactly_once),
                r.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let default_family = attrs.map_or_else(String::new, |a| {
        format!(
            " `cmwq-default`: default queues (`builder(..).build()`, no flags), built with {a} `Attrs` in turn; \
             one unpinned producer uses each once (one item, then `flush`), then they sit idle. Queues with \
             the same attributes share their pools; the target is under {} per idle queue.",
            bytes(IDLE_QUEUE_TARGET_BYTES)
        )
    });
    section(
        "many-queues: many workqueues, a few items each",
        &[
            "executor",
            "producers",
            "queues",
            "items/queue",
            "threads idle",
            "threads/queue",
            "threads peak",
            "pools",
            "RSS delta",
            "per idle queue",
            "create ms",
            "destroy ms",
            "create µs/q",
            "destroy µs/q",
            "exactly once",
            "note",
        ],
        &rows,
        &format!(
            "RSS: VmRSS after `malloc_trim` with every queue idle, less VmRSS before the queues existed. \
             pools: cmwq's pools the queues created or ran items on (`cmwq::debug::pools()` before the queues \
             and once they are idle), and how many of them are new.{default_family} The other families: each \
             producer (one per CPU, pinned) queues its items on every queue; `cmwq-bound` is \
             `WqFlags::PERCPU`, `cmwq-unbound` `WqFlags::UNBOUND`."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: u32, cpu: Option<usize>, completed: u64) -> PoolState {
        PoolState {
            id,
            cpu,
            highpri: false,
            bh: false,
            pod: cpu.map_or_else(|| vec![0, 1], |c| vec![c]),
            nice: 0,
            concurrency: 1,
            peak_workers: 1,
            completed,
        }
    }

    #[test]
    fn family_pools_counts_created_and_used() {
        let before = [st(0, Some(0), 10), st(1, Some(1), 10), st(2, None, 5), st(3, None, 7)];
        let after = [
            st(0, Some(0), 10), // untouched
            st(1, Some(1), 10), // untouched
            st(2, None, 9),     // an old pool the queues used
            st(3, None, 7),     // an old pool they did not
            st(4, None, 3),     // new, used
            st(5, None, 0),     // new, only created (nobody queued on its pod)
        ];
        assert_eq!(family_pools(&before, &after), (3, 2));
        assert_eq!(family_pools(&after, &after), (0, 0));
        assert_eq!(family_pools(&[], &after[..2]), (2, 2), "everything is new in a fresh process");
    }

    #[test]
    fn families() {
        let d = Family::new(ExecutorKind::CmwqDefault, 10_000, 2, 1_024, 2);
        assert_eq!(
            (d.queues, d.label.as_str(), d.feed, d.note.as_deref()),
            (10_000, "cmwq-default (4 attrs)", Feed::Unpinned, None)
        );
        assert!(d.used_once());
        assert_eq!(d.items_per_queue(2), 1);
        let names: Vec<&str> = d.attrs.iter().map(|a| a.0).collect();
        assert_eq!(names, ["default", "nice 5", "scope cpu", "strict"]);
        // Queue i gets attrs i mod 4; the first of each four makes no attrs call.
        assert_eq!(d.attrs_of(0), None);
        assert_eq!(d.attrs_of(5).map(|a| a.nice), Some(5));
        assert_eq!(d.attrs_of(6).map(|a| a.affinity_scope), Some(AffinityScope::Cpu));
        assert_eq!(d.attrs_of(7).map(|a| a.affinity_strict), Some(true));
        assert_eq!(d.attrs_of(8), None);
        // The attributes are distinct: four pool identities at least.
        let a = default_family_attrs();
        for (i, x) in a.iter().enumerate() {
            assert!(a[i + 1..].iter().all(|y| y.1 != x.1), "{} repeats", x.0);
        }

        let b = Family::new(ExecutorKind::CmwqBound, 1_000, 2, 256, 2);
        assert_eq!(
            (b.queues, b.label.as_str(), b.feed, b.items_per_queue(2)),
            (1_000, "cmwq-bound", Feed::Pinned(2), 4)
        );
        assert_eq!(b.attrs_of(3), None);
        let m = Family::new(ExecutorKind::MtWq, 1_000, 2, 256, 2);
        assert_eq!(m.queues, 128);
        assert_eq!(
            m.note.as_deref(),
            Some("capped at 256 threads = 128 queues × 2 threads (asked 1000 queues)")
        );
        let f = Family::new(ExecutorKind::FixedPool, 10, 1, 256, 4);
        assert_eq!((f.queues, f.label.as_str(), f.note), (10, "fixed-pool (one per queue)", None));
    }

    fn row(executor: &str, attrs: &[&str], pools: Option<(usize, usize)>, threads: usize) -> ManyQueuesRow {
        let queues = 1_000;
        ManyQueuesRow {
            executor: executor.into(),
            producers_label: if attrs.is_empty() {
                "1 pinned producer per CPU"
            } else {
                "1 unpinned producer"
            }
            .into(),
            attrs: attrs.iter().map(|a| a.to_string()).collect(),
            queues,
            items_per_queue: if attrs.is_empty() { 4 } else { 1 },
            threads_idle: threads,
            threads_per_queue: threads as f64 / queues as f64,
            threads_peak: threads + 1,
            pools: pools.map(|p| p.0),
            pools_created: pools.map(|p| p.1),
            rss_delta_bytes: 1_228_800,
            bytes_per_queue: 1_228.8,
            create_ms: 1.5,
            destroy_ms: 2.0,
            create_us_per_queue: 1.5,
            destroy_us_per_queue: 2.0,
            note: None,
            exactly_once: true,
        }
    }

    #[test]
    fn headline_and_markdown() {
        let rows = [
            row("cmwq-default (4 attrs)", &["default", "nice 5", "scope cpu", "strict"], Some((5, 4)), 5),
            row("cmwq-bound", &[], Some((2, 2)), 4),
            row("mt-wq", &[], None, 2_000),
        ];
        assert_eq!(
            headline(&rows),
            [
                "many-queues: cmwq-default (4 attrs) with 1000 queues used once each: 0.0050 threads per queue \
                 (5 idle), 5 pools, 1.2 KiB per idle queue (under the 4.0 KiB target), create 1.50 µs per queue",
                "many-queues: cmwq-bound with 1000 queues: 4 threads idle, 1.2 KiB per idle queue",
                "many-queues: mt-wq with 1000 queues: 2000 threads idle, 1.2 KiB per idle queue",
            ]
        );
        let mut fat = rows[0].clone();
        fat.bytes_per_queue = 5_000.0;
        assert!(headline(&[fat])[0].contains("4.9 KiB per idle queue (OVER the 4.0 KiB target)"));
        // The RSS fell over the run: no negative size.
        let mut shrunk = rows[1].clone();
        shrunk.rss_delta_bytes = -593_920;
        shrunk.bytes_per_queue = -593.92;
        assert_eq!(
            headline(&[shrunk]),
            ["many-queues: cmwq-bound with 1000 queues: 4 threads idle, nothing measurable per idle queue (RSS \
              fell 580.0 KiB)"]
        );

        let md = markdown(&rows);
        assert!(md.contains(
            "| `cmwq-default (4 attrs)` | 1 unpinned producer | 1000 | 1 | 5 | 0.0050 | 6 | 5 (4 new) | 1.2 MiB | \
             1.2 KiB | 1.5 | 2.0 | 1.50 | 2.00 | yes |  |"
        ), "{md}");
        assert!(
            md.contains("| `mt-wq` | 1 pinned producer per CPU | 1000 | 4 | 2000 | 2.0 | 2001 | - |"),
            "{md}"
        );
        assert!(md.contains("built with default, nice 5, scope cpu, strict `Attrs` in turn"), "{md}");
        // Without the default family, its sentence goes.
        assert!(!markdown(&rows[1..]).contains("`cmwq-default`"));
        assert_eq!(markdown(&[]), "");

        assert_eq!(
            progress_line(&rows[0]),
            "cmwq-default (4 attrs): 1000 queues: 5 threads idle (0.0050 per queue, 6 peak), pools 5 (4 new), \
             1.2 KiB per idle queue, create 1.5 ms, destroy 2.0 ms"
        );
        assert!(!progress_line(&rows[2]).contains("pools"));
    }
}
