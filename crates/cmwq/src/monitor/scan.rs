//! The monitor's tick: a look at every pool, and at each worker of a saturated
//! one (`README.md`, "What it looks at").

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::act::{act_on_block, Act, Stall};
use super::hog::HogTable;
use super::stats::{bump, COUNTERS};
use crate::platform::sys::probe::SchedState;
use crate::pool::{
    kick_pool, mayday_timer, monitor_bh_blocked, monitor_bh_hog, monitor_cpu_intensive, monitor_running,
    retry_starved, PoolLocked, Retry, WorkerPool, WorkerShared, STALE_BATCH,
};
use crate::registry::all_pools_into;

/// How long after a pool's last unannounced block (or, in an unbound pool of
/// several CPUs, its last block) its saturations still arm the CPU's idle
/// sentinel (`WorkerPool::blocks_unannounced`, `blocks_announced`).
const SENTINEL_MEMORY: Duration = Duration::from_secs(1);

/// What the monitor remembers of a worker executing an item.
#[derive(Debug)]
struct Memo {
    /// Keeps the identity: a slot index may be reused by a new worker.
    w: Arc<WorkerShared>,
    /// The item (the slot's `progress` number) this memo is about.
    progress: u64,
    /// CPU clock at the last sample, and when that was.
    last_cpu: Duration,
    last_at: Instant,
    /// CPU clock when the item's current on-CPU stretch began (first seen, or
    /// last seen blocked): the hog measure.
    stretch_cpu: Duration,
    /// The block has lasted at least since then (the sample before the one that
    /// first found it blocked with no CPU progress).
    blocked_since: Option<Instant>,
    /// The monitor took the worker out of `nr_running` in this item (a BH
    /// context: reported it blocked in this item).
    marked: bool,
    /// A BH context: reported this item as a hog.
    hog_reported: bool,
    /// Seen in the current tick (memos not seen are dropped).
    seen: bool,
}

impl Memo {
    /// A first sample of item `progress` of worker `w`: CPU clock `cpu` at `now`.
    /// `marked`: a sentinel already took it out (it has been blocked since then).
    fn new(w: Arc<WorkerShared>, progress: u64, cpu: Duration, now: Instant, marked: bool) -> Memo {
        Memo {
            w,
            progress,
            last_cpu: cpu,
            last_at: now,
            stretch_cpu: cpu,
            blocked_since: marked.then_some(now),
            marked,
            hog_reported: false,
            seen: true,
        }
    }
}

/// What the monitor remembers between ticks. A steady tick allocates nothing
/// (the buffers keep their capacity), so the monitor never shows in allocation
/// counts of the hot path.
#[derive(Debug)]
pub(super) struct Scanner {
    memos: HashMap<(u32, usize), Memo>,
    hogs: HogTable,
    pools: Vec<&'static WorkerPool>,
    views: Vec<View>,
    /// The batch (its worker's `progress`) each batching worker runs, and when
    /// a tick first saw it, by pool and slot (`end_stale_batches`).
    batches: HashMap<(u32, usize), (u64, Instant)>,
    stale: Vec<Arc<WorkerShared>>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            memos: HashMap::with_capacity(64),
            hogs: HogTable::default(),
            pools: Vec::with_capacity(16),
            views: Vec::with_capacity(64),
            batches: HashMap::with_capacity(16),
            stale: Vec::with_capacity(16),
        }
    }
}

/// What one tick found.
#[derive(Debug, Default)]
pub(super) struct Tick {
    /// Something to watch: a saturated pool, a marked worker, a starved pool.
    pub(super) busy: bool,
    /// Acted on something: tick fast again.
    pub(super) found: bool,
    /// Come back no later than this (a stall window ends).
    pub(super) deadline: Option<Instant>,
}

impl Tick {
    fn until(&mut self, t: Instant) {
        self.deadline = Some(self.deadline.map_or(t, |d| d.min(t)));
    }
}

/// A worker executing an item, as seen under its pool's lock.
#[derive(Debug)]
struct View {
    idx: usize,
    progress: u64,
    w: Arc<WorkerShared>,
}

impl Scanner {
    /// One tick: a look at every pool of every instance.
    pub(super) fn tick(&mut self) -> Tick {
        let mut t = Tick::default();
        for m in self.memos.values_mut() {
            m.seen = false;
        }
        let mut pools = std::mem::take(&mut self.pools);
        all_pools_into(&mut pools);
        for &pool in &pools {
            self.scan_pool(pool, &mut t);
        }
        self.pools = pools;
        self.memos.retain(|_, m| m.seen);
        t
    }

    /// Forgets every worker (the monitor parks).
    pub(super) fn forget(&mut self) {
        self.memos.clear();
    }

    fn scan_pool(&mut self, pool: &'static WorkerPool, t: &mut Tick) {
        let cfg = &pool.ctx.config;
        let mut g = pool.lock();
        // MEM_RECLAIM: the pool's mayday timer runs on this thread (`pool/mayday.rs`).
        if let Some(at) = mayday_timer(pool, &mut g) {
            t.until(at);
            t.busy = true;
        }
        // A refused worker creation: retry at each tick, and at the end of a
        // cooldown, until the pool has the worker it lacks (`retry_starved`).
        if g.starved {
            match retry_starved(pool, &mut g) {
                Retry::Cooling(until) => t.until(until),
                Retry::Created => bump(&COUNTERS.created),
                Retry::Refused | Retry::Satisfied => {}
            }
            t.busy |= g.starved;
        }
        if !cfg.monitor() {
            return;
        }
        if pool.bh {
            return self.scan_bh_pool(pool, g, t);
        }
        // A second without an unannounced block (or, in an unbound pool of
        // several CPUs, without any block): the sentinel is not armed any more.
        pool.forget_blocks(&g, SENTINEL_MEMORY);
        // A batch is work waiting too (`pool/batch.rs`).
        let saturated = (!g.worklist.is_empty() && pool.nr_running() > 0) || g.nr_batching > 0;
        if g.nr_batching > 0 && self.end_stale_batches(pool, &mut g, t) {
            t.found = true;
        }
        if !saturated {
            // Seen unsaturated under the lock: its next saturation is reported again,
            // so the monitor can park after this scan without missing it.
            pool.saturation_over();
        }
        // Workers an idle sentinel took out: ours to give back once they run again.
        let mut marks = std::mem::take(&mut g.sentinel_marks);
        for (idx, progress) in marks.drain(..) {
            let Some(w) = g.workers.try_get(idx).filter(|w| w.progress == progress && w.current.is_some())
            else {
                continue;
            };
            let Some(cpu) = w.shared.probe.get().and_then(|p| p.cpu_time()) else { continue };
            self.memos
                .insert((pool.id, idx), Memo::new(w.shared.clone(), progress, cpu, Instant::now(), true));
        }
        g.sentinel_marks = marks; // empty, keeps its capacity
        let marked_here = self.memos.iter().any(|(&(p, _), m)| p == pool.id && m.marked);
        if !saturated && !marked_here {
            return;
        }
        t.busy = true;
        let mut views = std::mem::take(&mut self.views);
        views.extend(g.workers.iter().filter(|(_, w)| w.current.is_some()).map(|(idx, w)| View {
            idx,
            progress: w.progress,
            w: w.shared.clone(),
        }));
        drop(g);
        for v in views.drain(..) {
            self.watch(pool, v, saturated, t);
        }
        self.views = views;
    }

    /// Ends each batch that has run for `STALE_BATCH` since a tick first saw
    /// it: the rest of it goes back to the worklist, and the pool is kicked. A
    /// batch of short closures is over within microseconds; one still running
    /// has a long closure (or a preempted worker), and the rest of it may run
    /// elsewhere (`pool/batch.rs`, "Revocable"). Returns whether it ended one.
    fn end_stale_batches(&mut self, pool: &'static WorkerPool, g: &mut PoolLocked, t: &mut Tick) -> bool {
        let now = Instant::now();
        let mut stale = std::mem::take(&mut self.stale);
        for (idx, w) in g.workers.iter() {
            let key = (pool.id, idx);
            if !w.shared.batch.active() {
                self.batches.remove(&key);
                continue;
            }
            let seen = match self.batches.get(&key) {
                Some(&(progress, at)) if progress == w.progress => at,
                _ => {
                    self.batches.insert(key, (w.progress, now));
                    now
                }
            };
            if now.saturating_duration_since(seen) >= STALE_BATCH {
                stale.push(w.shared.clone());
            } else {
                t.until(seen + STALE_BATCH);
            }
        }
        let mut found = false;
        for w in stale.drain(..) {
            self.batches.remove(&(pool.id, w.idx));
            if w.batch.take_back(pool, g) {
                kick_pool(pool, g);
                found = true;
            }
        }
        self.stale = stale;
        found
    }

    /// A BH pool (`pool/bh.rs`): nothing to manage, but its context is
    /// watched while items wait behind the one it runs: found asleep, or on
    /// the CPU past the CPU-intensive threshold, the item is reported (once
    /// each per item). The items behind it still wait: no second context.
    fn scan_bh_pool(
        &mut self,
        pool: &'static WorkerPool,
        g: impl std::ops::Deref<Target = PoolLocked>,
        t: &mut Tick,
    ) {
        if g.worklist.is_empty() {
            // Its next saturation is reported again (`kick_bh_pool`).
            pool.saturation_over();
            return;
        }
        let Some(w) = g.bh_ctx.and_then(|i| g.workers.try_get(i).map(|w| (i, w))) else { return };
        if w.1.current.is_none() {
            return;
        }
        t.busy = true;
        let v = View { idx: w.0, progress: w.1.progress, w: w.1.shared.clone() };
        drop(g);
        self.watch_bh(pool, v, t);
    }

    /// The memo of the item `v` executes, marked seen this tick; a new item (or
    /// a new worker in the slot) starts a new one, sampled at `cpu` and `now`.
    fn memo(&mut self, pool: &WorkerPool, v: &View, cpu: Duration, now: Instant) -> &mut Memo {
        let memo = match self.memos.entry((pool.id, v.idx)) {
            Entry::Occupied(o) if Arc::ptr_eq(&o.get().w, &v.w) && o.get().progress == v.progress => {
                o.into_mut()
            }
            Entry::Occupied(mut o) => {
                o.insert(Memo::new(v.w.clone(), v.progress, cpu, now, false));
                o.into_mut()
            }
            Entry::Vacant(e) => e.insert(Memo::new(v.w.clone(), v.progress, cpu, now, false)),
        };
        memo.seen = true;
        memo
    }

    /// Samples a BH context executing an item while others wait behind it.
    fn watch_bh(&mut self, pool: &'static WorkerPool, v: View, t: &mut Tick) {
        let cfg = &pool.ctx.config;
        let Some(probe) = v.w.probe.get().filter(|p| p.usable()) else { return };
        let Some(cpu) = probe.cpu_time() else { return };
        let now = Instant::now();
        let memo = self.memo(pool, &v, cpu, now);
        memo.last_cpu = cpu;
        memo.last_at = now;
        let thresh = cfg.cpu_intensive_thresh();
        if !memo.hog_reported && !thresh.is_zero() && cpu.saturating_sub(memo.stretch_cpu) >= thresh {
            let name = monitor_bh_hog(&mut pool.lock(), v.idx, v.progress);
            memo.hog_reported = true;
            if let Some(name) = name {
                bump(&COUNTERS.cpu_hogs);
                self.hogs.report(&name, thresh, cfg.cpu_intensive_warning());
                t.found = true;
            }
            return;
        }
        if memo.marked || !cfg.monitor_ticks() {
            return;
        }
        // Asleep: the scheduler says S or D and the CPU clock stood still
        // meanwhile (as in `watch`).
        if probe.cpu_time() != Some(cpu)
            || probe.state() != SchedState::Blocked
            || probe.cpu_time() != Some(cpu)
        {
            return;
        }
        // Nobody is taken out of `nr_running` (`blocked` counts those).
        if monitor_bh_blocked(pool, &mut pool.lock(), v.idx, v.progress) {
            memo.marked = true;
            t.found = true;
        }
    }

    /// Samples one worker executing an item and acts on what it finds.
    fn watch(&mut self, pool: &'static WorkerPool, v: View, saturated: bool, t: &mut Tick) {
        let cfg = &pool.ctx.config;
        let Some(probe) = v.w.probe.get().filter(|p| p.usable()) else { return };
        let Some(cpu) = probe.cpu_time() else { return };
        let now = Instant::now();
        let memo = self.memo(pool, &v, cpu, now);
        let (prev_at, dcpu, dt) = (memo.last_at, cpu.saturating_sub(memo.last_cpu), now - memo.last_at);
        memo.last_cpu = cpu;
        memo.last_at = now;
        // No CPU progress since the last sample (a fresh memo has no last sample).
        let idle_cpu = !dt.is_zero() && dcpu * 4 <= dt;
        if !dt.is_zero() && dcpu * 2 <= dt {
            // Mostly off the CPU since the last sample: it slept (the kernel restarts
            // the hog measure at each wake-up, `wq_worker_running`), so a later
            // stretch is a new one. Without this, an item of many short sleeps
            // whose sleeps the samples missed would add up to a false hog.
            memo.stretch_cpu = cpu;
        }

        if memo.marked {
            // Asleep by our hand: once it runs again, it counts again. The CPU clock
            // alone tells (0.3 µs); a woken worker that has not run yet is caught at
            // the next tick. Reading `stat` here, for each of the many workers a
            // long-blocking load keeps marked, made a tick cost tens of µs.
            if !idle_cpu {
                let g = pool.lock();
                if monitor_running(&g, v.idx, v.progress) {
                    bump(&COUNTERS.resumed);
                }
                memo.marked = false;
                memo.stretch_cpu = cpu;
                t.found = true;
            } else if memo
                .blocked_since
                .is_some_and(|s| now.saturating_duration_since(s) >= cfg.stall_window())
            {
                // Still blocked past the stall window: this pool's blocks are long.
                pool.lock().long_block_at = Some(now);
                memo.blocked_since = None; // once per block is enough
            }
            return;
        }
        if !v.w.counted() {
            // Asleep in a hint, or outside concurrency management: not ours.
            memo.blocked_since = None;
            memo.stretch_cpu = cpu;
            return;
        }

        // CPU hog (`wq_worker_tick`): one on-CPU stretch past the threshold.
        let thresh = cfg.cpu_intensive_thresh();
        if !thresh.is_zero() && cpu.saturating_sub(memo.stretch_cpu) >= thresh {
            let mut g = pool.lock();
            if let Some(pwq) = monitor_cpu_intensive(pool, &mut g, v.idx, v.progress) {
                let name = g.pwqs.get(pwq as usize).wq.name.to_string();
                drop(g);
                bump(&COUNTERS.cpu_hogs);
                self.hogs.report(&name, thresh, cfg.cpu_intensive_warning());
                t.found = true;
            }
            return;
        }
        if !saturated || !cfg.monitor_ticks() {
            return;
        }

        // Blocked now: the scheduler says S or D, and the thread's CPU clock did not
        // move while we read that (a running thread's clock moves within the
        // microseconds of the reads). So a block is judged at the first sample that
        // finds it, even the first sample of an item.
        // The clock is read again first: if it moved, the thread is on the CPU and the
        // costly read of `stat` (it formats 52 fields) is skipped.
        if probe.cpu_time() != Some(cpu)
            || probe.state() != SchedState::Blocked
            || probe.cpu_time() != Some(cpu)
        {
            memo.blocked_since = None;
            return;
        }
        // A sleep ends the on-CPU stretch.
        memo.stretch_cpu = cpu;
        // If it made no CPU progress since the last sample, it has been blocked
        // since then at least.
        let since = *memo.blocked_since.get_or_insert(if idle_cpu { prev_at } else { now });
        let mut g = pool.lock();
        match act_on_block(pool, &mut g, v.idx, v.progress, since, now, Stall::Blocked) {
            Act::Wait(until) => t.until(until),
            Act::Marked => {
                memo.marked = true;
                t.found = true;
                bump(&COUNTERS.blocked);
            }
            Act::Stale => {}
        }
    }
}
