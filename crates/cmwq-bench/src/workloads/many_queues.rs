//! many-queues: many workqueues with a few items each: threads, RSS per idle
//! queue, create and destroy time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmwq::{Workqueue, WqFlags};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::executors::{Batch, Executor, ExecutorKind, FixedPool, Job, MtWq};
use crate::fmt::{bytes, section, yes};
use crate::procfs::{self, Peaks};
use crate::producers::Feed;

/// many-queues: many workqueues with a few items each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManyQueuesRow {
    /// Executor family.
    pub executor: String,
    /// Queues created.
    pub queues: usize,
    /// Items per queue.
    pub items_per_queue: usize,
    /// The executor's threads once all queues are idle after their items.
    pub threads_idle: usize,
    /// Peak threads from creation to destruction.
    pub threads_peak: usize,
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
    fn create(kind: ExecutorKind, i: usize, cpus: &[usize]) -> Result<Queue, Error> {
        let name = format!("mq-{i}");
        let cmwq = |flags| Ok(Queue::Cmwq(Workqueue::builder(name.clone()).flags(flags).build()?));
        match kind {
            ExecutorKind::CmwqBound => cmwq(WqFlags::PERCPU),
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

pub(crate) fn run(ctx: &mut Ctx<'_>) -> Result<Vec<ManyQueuesRow>, Error> {
    let mut rows = Vec::new();
    let cores = ctx.cores();
    let k = ctx.cfg.mq_items_per_cpu.max(1);
    let families =
        [ExecutorKind::CmwqBound, ExecutorKind::CmwqUnbound, ExecutorKind::MtWq, ExecutorKind::FixedPool];
    let selected: Vec<ExecutorKind> = families.into_iter().filter(|f| ctx.kinds.contains(f)).collect();
    for kind in selected {
        let asked = ctx.cfg.mq_queues.max(1);
        let q = if kind.is_cmwq() { asked } else { (ctx.cfg.mq_thread_cap / cores).clamp(1, asked) };
        let note = (q < asked).then(|| {
            format!("capped at {} threads = {q} queues × {cores} threads (asked {asked} queues)", q * cores)
        });
        let label = if kind == ExecutorKind::FixedPool { "fixed-pool (one per queue)" } else { kind.name() };
        let other = ctx.prepare();
        let per_queue = cores * k;
        let batch_items = q * per_queue;
        ctx.say(&format!("[many-queues] {label}: creating {q} queues, {batch_items} items"));
        let batch = Batch::new(batch_items);
        procfs::trim_heap();
        let rss0 = procfs::rss_bytes();
        ctx.sampler.open();
        let (queues, create) = match fill(ctx, kind, q, k, &batch, label) {
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
            "[many-queues] {label}: {q} queues: {} threads idle ({} peak), {} per idle queue, create {:.1} ms, \
             destroy {:.1} ms",
            row.threads_idle,
            row.threads_peak,
            bytes(row.bytes_per_queue),
            row.create_ms,
            row.destroy_ms
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// Creates `q` queues (timed), has every producer queue `k` items on each, and
/// waits until all are idle again.
fn fill(
    ctx: &Ctx<'_>,
    kind: ExecutorKind,
    q: usize,
    k: usize,
    batch: &Batch,
    label: &str,
) -> Result<(Vec<Queue>, Duration), Error> {
    let cores = ctx.cores();
    let t = Instant::now();
    let queues = Arc::new((0..q).map(|i| Queue::create(kind, i, &ctx.cpus)).collect::<Result<Vec<_>, _>>()?);
    let create = t.elapsed();
    let err: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    let (qs, b, e) = (queues.clone(), batch.clone(), err.clone());
    ctx.producers.run(
        Feed::Pinned(cores),
        Arc::new(move |p| {
            for (qi, queue) in qs.iter().enumerate() {
                for j in 0..k {
                    let (i, b) = ((qi * cores + p) * k + j, b.clone());
                    if let Err(err) = queue.spawn(Box::new(move || b.done(i))) {
                        *e.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                        return;
                    }
                }
            }
        }),
    );
    if let Some(e) = err.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(e);
    }
    batch.wait(label, ctx.cfg.batch_timeout(q * cores * k, Duration::from_micros(100)))?;
    for queue in queues.iter() {
        queue.flush()?;
    }
    let queues = Arc::try_unwrap(queues).map_err(|_| Error::Executor("queues still shared".into()))?;
    Ok((queues, create))
}

pub(crate) fn headline(rows: &[ManyQueuesRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            format!(
                "many-queues: {} with {} queues: {} threads idle, {} per idle queue",
                r.executor,
                r.queues,
                r.threads_idle,
                bytes(r.bytes_per_queue)
            )
        })
        .collect()
}

pub(crate) fn markdown(rows: &[ManyQueuesRow]) -> String {
    let f2 = |x: f64| format!("{x:.2}");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.executor),
                r.queues.to_string(),
                r.items_per_queue.to_string(),
                r.threads_idle.to_string(),
                r.threads_peak.to_string(),
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
    section(
        "many-queues: many workqueues, a few items each",
        &[
            "executor",
            "queues",
            "items/queue",
            "threads idle",
            "threads peak",
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
        "RSS: VmRSS after `malloc_trim` with every queue idle, less VmRSS before the queues existed. \
         Each producer (one per CPU, pinned) queues its items on every queue.",
    )
}
