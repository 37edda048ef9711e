//! Batches of spawned closures (`README.md`, "Batches"): in an unbound pool of
//! several CPUs, a worker takes up to [`BATCH`] spawned closures of one pwq from
//! the head of the worklist in one hold of the pool lock, runs them without it,
//! and completes them in one more hold. cmwq's own; the kernel's worker takes
//! the pool lock per item.
//!
//! Why: from one producer, no-op closures on an unbound pool of two CPUs put
//! three threads (the producer and two workers) on the pool lock, each taking
//! it once per item, and its spin before parking handed the two CPUs back and
//! forth (124,000 context switches for 1.25 M items). With batches, and the
//! second worker left idle while the first keeps up (the wake rule below), the
//! lock changes hands about once per batch (7,000–17,000 switches).
//!
//! What keeps it safe:
//! - **Revocable.** The closures not started yet stay in the worker's [`Batch`],
//!   which whoever holds the pool lock may put back at the head of the worklist
//!   ([`Batch::take_back`]): when the worker stops counting (a hint, the monitor
//!   or a sentinel found it blocked, or the monitor found it hogging its CPU:
//!   `cm.rs`), and when the monitor finds a batch running for [`STALE_BATCH`]
//!   (`monitor/scan.rs`). So a closure never waits behind a blocked one of its
//!   batch (which may be waiting for it), nor more than about a millisecond
//!   behind a long one.
//! - **Short items only.** Every spawned closure of such a pool runs through
//!   here and is timed with its batch. Only while the last batch ran within
//!   [`BATCH_TIME`] (`PoolLocked::items_short`) do the closures behind the first
//!   come along; otherwise a batch is of one, holds back nothing, and nobody
//!   need take it back. A batch whose first closure runs past `BATCH_TIME`
//!   gives its rest back when it returns; the clock is read again only after
//!   the last (a read costs about as much as a no-op closure), and the monitor
//!   takes back a batch that runs for `STALE_BATCH`.
//! - **Only spawned closures** of one pwq, of a queue that is not
//!   `CPU_INTENSIVE`, while nobody times items. Nobody can cancel, flush or
//!   requeue a spawned closure by handle, so only the pwq's counts see when it
//!   starts or ends, and those stay exact: every closure of a batch holds its
//!   active slot and its flush color until the batch completes, or goes back
//!   holding them. A closure that asks for its handle (`current_work`) ends
//!   its batch, and the handle is resolved as `process_one_work` resolves it.
//!
//! The wake rule: a worker with a batch of short closures comes back for more
//! within microseconds, so while `n` workers run such batches, `n * HELD_BACK`
//! waiting items wake nobody else (`PoolLocked::worker_wanted`), as a spinner's
//! item does, and a worker that runs out of work does not spin beside them. That
//! keeps the second worker of a pod off the lock while the first keeps up. A
//! batch taken back no longer holds anything back, and its items no longer count
//! as short.
//!
//! Lock order: the pool lock, then a worker's batch lock. The worker takes its
//! batch lock alone (never the pool's under it) to start its next closure.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::cm::WorkerShared;
use super::policy::kick_pool;
use super::worker::{begin_item, end_item, execute, settle_panics, Deferred, Guard, Panics};
use super::worker_pool::{PoolLocked, WorkerPool};
use crate::current::Item;
use crate::platform::bug::abort_on_bug;
use crate::platform::loom::Mutex;
use crate::pwq::{self, Entry, Task};
use crate::work::Work;
use crate::workqueue::WqFlags;

/// Closures in one batch, at most.
pub(crate) const BATCH: usize = 8;
/// Items a batching worker keeps from waking another worker (the wake rule).
pub(crate) const HELD_BACK: usize = 8 * BATCH;
/// A batch that has run this long gives the rest back when its current closure
/// returns, and its items do not count as short (the wake rule).
const BATCH_TIME: Duration = Duration::from_micros(20);
/// The monitor takes back a batch still running after this long.
pub(crate) const STALE_BATCH: Duration = Duration::from_millis(1);

/// A worker's batch; see the module docs.
#[derive(Debug)]
pub(crate) struct Batch(Mutex<Held>);

impl Default for Batch {
    fn default() -> Batch {
        Batch(Mutex::new(Held::default()))
    }
}

#[derive(Debug, Default)]
struct Held {
    /// The closures not started yet, in order.
    rest: VecDeque<Entry>,
    /// The worker runs a batch (counted in `PoolLocked::nr_batching`).
    active: bool,
}

impl Batch {
    /// Starts a batch behind a closure of pwq `slot` just popped: the spawned
    /// closures of that pwq at the head of the worklist come along, up to
    /// `BATCH` in all. Caller holds the pool lock.
    pub(super) fn start(&self, pool: &WorkerPool, g: &mut PoolLocked, slot: u32) {
        let mut b = self.0.lock();
        while b.rest.len() < BATCH - 1
            && g.worklist.front().is_some_and(|e| e.pwq == slot && matches!(e.task, Task::Spawned(_)))
        {
            b.rest.push_back(g.worklist.pop_front().expect("checked non-empty"));
        }
        b.active = true;
        drop(b);
        g.nr_batching += 1;
        pool.note_queued(g);
        if g.worklist.is_empty() {
            pool.saturation_over();
        }
        // The monitor watches a running batch (and takes back one that runs for
        // `STALE_BATCH`). One load when it is awake.
        pool.ctx.doorbell.wake_if_parked();
    }

    /// The next closure to run, unless the rest was taken back.
    pub(super) fn next(&self) -> Option<Entry> {
        self.0.lock().rest.pop_front()
    }

    /// The closures of its batch not started yet (`debug::dump`). Caller
    /// holds the pool lock.
    #[cfg_attr(loom, allow(dead_code))] // read by the dump, absent under loom
    pub(crate) fn waiting(&self) -> usize {
        self.0.lock().rest.len()
    }

    /// Whether the worker runs a batch now. Caller holds the pool lock.
    #[cfg_attr(loom, allow(dead_code))] // read by the monitor, absent under loom
    pub(crate) fn active(&self) -> bool {
        self.0.lock().active
    }

    /// Ends the batch, if one runs: it no longer holds back wake-ups, and what
    /// is left of it goes back to the head of the worklist, in order, still
    /// active and in flight. Caller holds the pool lock. Returns whether a
    /// batch ran, and whether anything went back.
    pub(super) fn end(&self, pool: &WorkerPool, g: &mut PoolLocked) -> (bool, bool) {
        let mut b = self.0.lock();
        if !b.active {
            return (false, false);
        }
        // Mutant for the loom model: the batch is left marked as running, so
        // that a second end counts it off again.
        #[cfg(not(all(loom, cmwq_loom_mutant)))]
        {
            b.active = false;
        }
        g.nr_batching -= 1;
        if b.rest.is_empty() {
            return (true, false);
        }
        let was_empty = g.worklist.is_empty();
        while let Some(e) = b.rest.pop_back() {
            g.worklist.push_front(e);
        }
        pool.note_pushed(g, was_empty);
        (true, true)
    }

    /// Ends the batch for someone else than its worker: the worker blocked,
    /// hogs its CPU, or has run this batch for `STALE_BATCH`. Its items are not
    /// short, so the wake rule is off until a batch proves them short again.
    /// Caller holds the pool lock and kicks the pool if this returns true (a
    /// batch was ended: its rest went back, and it holds back wake-ups no more).
    pub(crate) fn take_back(&self, pool: &WorkerPool, g: &mut PoolLocked) -> bool {
        let (ran, _) = self.end(pool, g);
        if ran {
            g.items_short = false;
        }
        ran
    }
}

/// Whether the worker should run `first` (just popped) through a batch: a
/// spawned closure, in a pool of several CPUs whose monitor runs (it takes
/// back stale batches), while nobody times items, of a queue that is not
/// `CPU_INTENSIVE`.
#[inline]
pub(super) fn may_batch(pool: &WorkerPool, g: &PoolLocked, first: &Entry) -> bool {
    pool.concurrency > 1
        && matches!(first.task, Task::Spawned(_))
        && !crate::context::counters::accounting()
        // The monitor takes back a stale batch: without it, no batches.
        && pool.ctx.config.monitor()
        && !g.pwqs.get(first.pwq as usize).wq.flags.contains(WqFlags::CPU_INTENSIVE)
}

/// Runs `first` and up to `BATCH - 1` closures of its pwq from the head of the
/// worklist as one batch (module docs). Called with [`may_batch`] true.
pub(super) fn process_batch(
    pool: &'static WorkerPool,
    mut g: Guard,
    me: &WorkerShared,
    first: Entry,
    d: &mut Deferred,
) -> Guard {
    let (slot, idx) = (first.pwq, me.idx);
    // While the pool's items are short (timed by the batches themselves), the
    // closures of this pwq behind it come along, and the batch holds back
    // wake-ups; else it is a batch of one, only timed, which nobody need take
    // back (a long first closure would keep the rest from another CPU).
    let batching = g.items_short;
    if batching {
        me.batch.start(pool, &mut g, slot);
    }
    let wq_ptr = begin_item(pool, &mut g, idx, slot);
    drop(g);
    d.release();

    // SAFETY: as in `process_one_work`: `wq_ptr` comes from the `Arc<WqCore>`
    // of the pwq in `slot`, which is not freed while it has an item in flight;
    // the closures of this batch stay in flight until the completion below,
    // after the last use of `wq`.
    let wq: &crate::workqueue::WqCore = unsafe { &*wq_ptr };
    let mut colors = [0u8; BATCH];
    let mut panics: [Option<Panics>; BATCH] = [const { None }; BATCH];
    let mut header: Option<Work> = None;
    let mut ran = 0;
    let t0 = Instant::now();
    let mut long = false;
    let mut next = Some(first);
    while let Some(e) = next.take() {
        let Entry { task: Task::Spawned(f), color, .. } = e else {
            abort_on_bug("a work item in a batch of spawned closures");
        };
        let id = f.data_ptr() as usize;
        let (result, item) = execute(pool, idx, wq, id, Item::spawned(wq_ptr, pool.id, idx), Some(f));
        // A closure that asked for its handle (`current_work`) ends the batch:
        // the handle is resolved after the completion, as `process_one_work`'s.
        let mut work = item.into_work();
        if result.is_err() || work.as_ref().is_some_and(Work::is_last_handle) {
            panics[ran] = settle_panics(result, &mut work, 1);
        }
        colors[ran] = color;
        ran += 1;
        if work.is_some() {
            header = work;
            break;
        }
        // The clock is read after the first closure and after the last, not
        // after each (a read costs about as much as a no-op closure): a long
        // first closure gives the rest back at once; a long one further on
        // holds the rest until it returns, or until the monitor finds the
        // batch stale. Long items (or this worker was preempted): the rest
        // goes back.
        if ran == 1 {
            long = t0.elapsed() >= BATCH_TIME;
            if long {
                break;
            }
        }
        next = if batching { me.batch.next() } else { None };
        if next.is_none() && ran > 1 {
            long = t0.elapsed() >= BATCH_TIME;
        }
    }

    let mut g = pool.lock();
    // A batch of one never started: nothing to end.
    if batching && me.batch.end(pool, &mut g).1 {
        kick_pool(pool, &mut g);
    }
    g.items_short = !long;
    end_item(pool, &mut g, idx, header.as_ref());
    g.completed += ran as u64;
    let stats = &mut g.pwqs.get_mut(slot as usize).stats;
    stats.started += ran as u64 - 1;
    stats.completed += ran as u64;
    stats.batched += ran as u64 - 1;
    for p in panics.iter_mut().take(ran).filter_map(Option::take) {
        p.account(pool, &mut g, slot);
    }
    // The last of these may free the pwq: nothing of it is touched after.
    for &color in &colors[..ran] {
        pwq::dec_nr_in_flight(pool, &mut g, slot, color, true);
    }
    d.0 = header.map(|work| (work, 1, pool));
    g
}
