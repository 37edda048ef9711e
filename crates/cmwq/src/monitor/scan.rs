//! The monitor thread and its tick (see `README.md`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::hog::HogTable;
use super::probe::SchedState;
use crate::hooks;
use crate::pool::{create_worker_locked, PoolLocked, WorkerPool, WorkerShared};
use crate::registry::all_pools_into;

/// The first tick after a wake-up, and after each tick that found something.
const TICK_MIN: Duration = Duration::from_micros(50);
/// Ticks double while they find nothing, up to this.
const TICK_MAX: Duration = crate::debug::MONITOR_TICK_MAX;
/// After a tick that acted, ticks stay at `TICK_MIN` this long before they back
/// off: a pool whose items block unannounced blocks again soon, and a block seen
/// one back-off step late leaves its CPU idle for that long.
const HOT: Duration = Duration::from_millis(2);
/// How long after a pool's last unannounced block its saturations still arm the
/// CPU's idle sentinel (`WorkerPool::blocks_unannounced`).
const SENTINEL_MEMORY: Duration = Duration::from_secs(1);
/// Consecutive ticks that find nothing to watch before the monitor parks.
const IDLE_TICKS_TO_PARK: u32 = 12;
/// How long a pool stays "known to block long" after the monitor last saw one of
/// its workers stay blocked past the stall window: meanwhile a new block there is
/// acted on at its first sample instead of after the stall window.
pub(super) const LONG_BLOCK_MEMORY: Duration = Duration::from_millis(100);

// The monitor's run state (`STATE`).
/// No monitor thread yet; the first wake-up starts it.
const UNSTARTED: u8 = 0;
/// Parked until a pool saturates (`note_saturated`) or starves.
const PARKED: u8 = 1;
/// Ticking.
const RUNNING: u8 = 2;
/// The thread could not be started; detection is off for this process.
const FAILED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNSTARTED);
static THREAD: OnceLock<std::thread::Thread> = OnceLock::new();
/// Whether the monitor's ticks look for blocked workers (tests switch it off to
/// see the idle sentinels work alone; `debug::monitor_ticks_detect_blocks`).
pub(crate) static TICK_DETECTS: AtomicBool = AtomicBool::new(true);

/// Counters of the monitor's work, for `cmwq::debug` and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Ticks run.
    pub ticks: u64,
    /// Workers the monitor took out of `nr_running` because they blocked.
    pub blocked: u64,
    /// Of those, the ones it counted again because they ran again in the same item.
    pub resumed: u64,
    /// Items marked CPU-intensive because they hogged the CPU.
    pub cpu_hogs: u64,
    /// Worker creations the monitor started (after a stall window or a refusal).
    pub created: u64,
    /// Times the monitor thread parked (went idle).
    pub parks: u64,
    /// Of `blocked`, the blocks an idle sentinel caught (the moment the CPU went
    /// idle) rather than the monitor's tick.
    pub by_sentinel: u64,
    /// Idle sentinel threads started and set up (one per CPU whose pool ever
    /// saturated after an unannounced block).
    pub sentinels: u64,
}

#[derive(Debug, Default)]
struct Counters {
    ticks: AtomicU64,
    blocked: AtomicU64,
    resumed: AtomicU64,
    cpu_hogs: AtomicU64,
    created: AtomicU64,
    parks: AtomicU64,
}

static COUNTERS: Counters = Counters {
    ticks: AtomicU64::new(0),
    blocked: AtomicU64::new(0),
    resumed: AtomicU64::new(0),
    cpu_hogs: AtomicU64::new(0),
    created: AtomicU64::new(0),
    parks: AtomicU64::new(0),
};

/// A block acted on by an idle sentinel.
pub(super) fn count_blocked() {
    bump(&COUNTERS.blocked);
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn stats() -> MonitorStats {
    let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
    MonitorStats {
        ticks: l(&COUNTERS.ticks),
        blocked: l(&COUNTERS.blocked),
        resumed: l(&COUNTERS.resumed),
        cpu_hogs: l(&COUNTERS.cpu_hogs),
        created: l(&COUNTERS.created),
        parks: l(&COUNTERS.parks),
        by_sentinel: l(&super::sentinel::BLOCKED),
        sentinels: l(&super::sentinel::STARTED),
    }
}

/// A concurrency-managed pool has work waiting while a worker counts as running
/// (so `kick_pool` woke nobody). Called under that pool's lock from `kick_pool`,
/// once per saturation (`WorkerPool::saturation_noted`). It wakes a parked
/// monitor and arms the CPU's idle sentinel if the pool blocked unannounced
/// lately (`sentinel.rs`). A running monitor is left to its tick: cutting its
/// backed-off sleeps short at each new saturation made it tick at the minimum
/// whenever a pool's worklist kept draining and refilling (a producer and a
/// worker in step), at 15% of a core; the sentinel is what sees a block at once.
///
/// No wake-up is lost: the monitor stores `PARKED` before its last scan, which
/// takes every pool lock. Either that scan takes this pool's lock after us and
/// sees the waiting work, or it took it before, and then the `PARKED` store
/// happens-before this load through the lock.
#[inline]
pub(crate) fn note_saturated(pool: &'static WorkerPool) {
    if let Some(cpu) = pool.cpu {
        // Only a pool that has blocked unannounced lately gets its sentinel: the
        // others (CPU-bound or announcing their blocks) pay nothing for it.
        if pool.blocks_unannounced.load(Ordering::Relaxed) || !TICK_DETECTS.load(Ordering::Relaxed) {
            super::sentinel::arm(cpu);
        }
    }
    wake_if_parked();
}

/// A pool was refused a worker: the monitor retries after the cooldown.
pub(crate) fn note_starved() {
    wake_if_parked();
}

/// Wakes a parked (or not yet started) monitor; a running one is left to its
/// tick. Also used by an idle sentinel that left the monitor a mark to adopt.
#[inline]
pub(super) fn wake_if_parked() {
    if STATE.load(Ordering::Relaxed) != RUNNING {
        wake_slow();
    }
}

#[cold]
fn wake_slow() {
    match STATE.compare_exchange(PARKED, RUNNING, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {
            if let Some(t) = THREAD.get() {
                t.unpark();
            }
        }
        Err(UNSTARTED) => start(),
        Err(_) => {}
    }
}

#[cold]
fn start() {
    if STATE.compare_exchange(UNSTARTED, RUNNING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new().name(crate::debug::MONITOR_THREAD.into()).spawn(|| {
        let _ = THREAD.set(std::thread::current());
        Monitor::default().run()
    });
    if let Err(e) = spawned {
        STATE.store(FAILED, Ordering::SeqCst);
        tracing::warn!(
            "cmwq: cannot start the sleep monitor ({e}); unannotated blocking will stall its CPU's pool"
        );
    }
}

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
    /// The monitor took the worker out of `nr_running` in this item.
    marked: bool,
    /// Seen in the current tick (memos not seen are dropped).
    seen: bool,
}

/// The monitor thread's state. A steady tick allocates nothing (the buffers keep
/// their capacity), so the monitor never shows in allocation counts of the hot path.
#[derive(Debug)]
struct Monitor {
    memos: HashMap<(u32, usize), Memo>,
    hogs: HogTable,
    tick: Duration,
    idle_ticks: u32,
    pools: Vec<&'static WorkerPool>,
    views: Vec<View>,
    /// When a tick last acted on something (see `HOT`).
    last_found: Option<Instant>,
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
            seen: true,
        }
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            memos: HashMap::with_capacity(64),
            hogs: HogTable::default(),
            tick: TICK_MIN,
            idle_ticks: 0,
            pools: Vec::with_capacity(16),
            views: Vec::with_capacity(64),
            last_found: None,
        }
    }
}

/// What one tick found.
#[derive(Debug, Default)]
struct Tick {
    /// Something to watch: a saturated pool, a marked worker, a starved pool.
    busy: bool,
    /// Acted on something: tick fast again.
    found: bool,
    /// Come back no later than this (a stall window ends).
    deadline: Option<Instant>,
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

impl Monitor {
    fn run(mut self) {
        // Ticks of 50 µs need a timer that fires on time (the default slack is 50 µs).
        let _ = crate::sys::set_current_thread_timer_slack(1);
        // Detection competes with CPU-bound workers for the CPU; be first if permitted.
        let _ = crate::sys::set_current_thread_nice(crate::pool::HIGHPRI_NICE);
        // It inherited the affinity of whichever thread started it (a worker pinned
        // to one CPU, say): there it would queue behind the very items it watches.
        let topo = &crate::registry::Registry::global().topo;
        if topo.real {
            let _ = crate::sys::set_current_thread_affinity(&topo.allowed);
        }
        loop {
            let t = self.tick();
            bump(&COUNTERS.ticks);
            if t.found {
                self.last_found = Some(Instant::now());
            }
            if self.last_found.is_some_and(|at| at.elapsed() < HOT) {
                self.tick = TICK_MIN;
            } else {
                self.tick = (self.tick * 2).min(TICK_MAX);
            }
            if t.busy {
                self.idle_ticks = 0;
            } else {
                self.idle_ticks += 1;
            }
            if self.idle_ticks >= IDLE_TICKS_TO_PARK {
                self.park();
                continue;
            }
            let now = Instant::now();
            let mut wake = now + self.tick;
            if let Some(d) = t.deadline {
                wake = wake.min(d);
            }
            std::thread::park_timeout(wake.saturating_duration_since(now));
        }
    }

    /// Parks until a pool saturates. The last scan runs after `PARKED` is stored,
    /// so saturation that began before it is seen by the scan (see `note_saturated`).
    fn park(&mut self) {
        STATE.store(PARKED, Ordering::SeqCst);
        let t = self.tick();
        if t.busy {
            // Whoever saturated a pool meanwhile may have set RUNNING already.
            STATE.store(RUNNING, Ordering::SeqCst);
            self.idle_ticks = 0;
            return;
        }
        bump(&COUNTERS.parks);
        self.memos.clear();
        while STATE.load(Ordering::SeqCst) == PARKED {
            std::thread::park();
        }
        self.tick = TICK_MIN;
        self.idle_ticks = 0;
    }

    fn tick(&mut self) -> Tick {
        super::sentinel::start_wanted();
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

    fn scan_pool(&mut self, pool: &'static WorkerPool, t: &mut Tick) {
        let cfg = &pool.registry.config;
        let mut g = pool.lock();
        // A refused worker creation: retry once the cooldown has passed.
        if g.starved {
            let cooling = g.create_cooldown_until.is_some_and(|u| Instant::now() < u);
            if let Some(u) = g.create_cooldown_until.filter(|_| cooling) {
                t.until(u);
            }
            if !cooling {
                g.starved = false;
                if g.worker_wanted(pool)
                    && g.idle.is_empty()
                    && !g.manager_active
                    && create_worker_locked(pool, &mut g)
                {
                    bump(&COUNTERS.created);
                }
            }
            t.busy |= g.starved;
        }
        if !pool.is_bound() || !cfg.monitor() {
            return;
        }
        // A second without an unannounced block: the sentinel is not armed any more.
        if pool.blocks_unannounced.load(Ordering::Relaxed)
            && g.unannounced_block_at.is_none_or(|at| at.elapsed() >= SENTINEL_MEMORY)
        {
            pool.blocks_unannounced.store(false, Ordering::Relaxed);
        }
        let saturated = !g.worklist.is_empty() && pool.nr_running() > 0;
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

    /// Samples one worker executing an item and acts on what it finds.
    fn watch(&mut self, pool: &'static WorkerPool, v: View, saturated: bool, t: &mut Tick) {
        let cfg = &pool.registry.config;
        let Some(probe) = v.w.probe.get().filter(|p| p.usable()) else { return };
        let Some(cpu) = probe.cpu_time() else { return };
        let now = Instant::now();
        let fresh = Memo::new(v.w.clone(), v.progress, cpu, now, false);
        // A new item (or a new worker in the slot) starts a new memo.
        let memo = match self.memos.entry((pool.id, v.idx)) {
            Entry::Occupied(o) if Arc::ptr_eq(&o.get().w, &v.w) && o.get().progress == v.progress => {
                o.into_mut()
            }
            Entry::Occupied(mut o) => {
                o.insert(fresh);
                o.into_mut()
            }
            Entry::Vacant(e) => e.insert(fresh),
        };
        memo.seen = true;
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
                if hooks::monitor_running(&g, v.idx, v.progress) {
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
            if let Some(pwq) = hooks::monitor_cpu_intensive(pool, &mut g, v.idx, v.progress) {
                let name = g.pwqs.get(pwq as usize).wq.name.to_string();
                drop(g);
                bump(&COUNTERS.cpu_hogs);
                self.hogs.report(&name, thresh, cfg.cpu_intensive_warning());
                t.found = true;
            }
            return;
        }
        if !saturated || !TICK_DETECTS.load(Ordering::Relaxed) {
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
        memo.stretch_cpu = cpu; // a sleep ends the on-CPU stretch
                                // If it made no CPU progress since the last sample, it has been blocked
                                // since then at least.
        let since = *memo.blocked_since.get_or_insert(if idle_cpu { prev_at } else { now });
        let mut g = pool.lock();
        match act_on_block(pool, &mut g, v.idx, v.progress, since, now) {
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

/// What [`act_on_block`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Act {
    /// Took the worker out of `nr_running` (and woke or created another).
    Marked,
    /// Hysteresis: not before then.
    Wait(Instant),
    /// The worker is no longer in that item, or no longer counted.
    Stale,
}

/// A worker of `pool`, executing item `progress` in slot `idx`, has been blocked
/// since `since`: take it out of `nr_running`, as `wq_worker_sleeping` would
/// (which wakes an idle worker), and create one if nobody is idle, unless the
/// hysteresis says wait. Waking a spare is free while another one stays in
/// reserve; anything that leads to a new thread waits for the stall window,
/// unless this pool's blocks are known to be long (`LONG_BLOCK_MEMORY`).
/// Shared by the monitor and the idle sentinels.
pub(super) fn act_on_block(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    idx: usize,
    progress: u64,
    since: Instant,
    now: Instant,
) -> Act {
    let stall = pool.registry.config.stall_window();
    let stalled = now.saturating_duration_since(since);
    let blocks_long = g.long_block_at.is_some_and(|at| now.saturating_duration_since(at) < LONG_BLOCK_MEMORY);
    if g.idle.len() < 2 && stalled < stall && !blocks_long {
        return Act::Wait(since + stall);
    }
    if !hooks::monitor_sleeping(pool, g, idx, progress) {
        return Act::Stale;
    }
    if stalled >= stall {
        g.long_block_at = Some(now);
    }
    g.unannounced_block_at = Some(now);
    if !pool.blocks_unannounced.load(Ordering::Relaxed) {
        pool.blocks_unannounced.store(true, Ordering::Relaxed);
    }
    // Nobody idle to wake, work waiting, nobody running: create one.
    if g.worker_wanted(pool) && g.idle.is_empty() && !g.manager_active && create_worker_locked(pool, g) {
        bump(&COUNTERS.created);
    }
    Act::Marked
}
