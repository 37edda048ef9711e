//! The idle sentinels: one `SCHED_IDLE` thread per CPU, armed while a pool of
//! that CPU is saturated and blocked unannounced in the last second (or, an
//! unbound pool of several CPUs, blocked at all: see `README.md`, "The idle
//! sentinel").
//!
//! A `SCHED_IDLE` thread pinned to a CPU runs when that CPU has nothing else to
//! run. While the CPU's pool has work waiting behind a worker that counts as
//! running, the CPU going idle means that worker blocked: the sentinel runs at
//! that moment (~10 µs later here) instead of at the monitor's next tick. It
//! confirms the block with the same probe as the monitor and acts through the
//! same transition (`act_on_block`); the monitor adopts the mark and gives the
//! count back when the worker runs again. A counted worker that is runnable but
//! waiting for a CPU (state `R`, its CPU clock still) is taken out the same way:
//! this CPU idles, so it waits behind something on another one, where the
//! kernel's balancer leaves it for too long (`README.md`, "Waiting for a CPU
//! counts as stalled"). Its run state and its arm/park
//! handshake live in the context's doorbell (`context/arming.rs`), because the
//! pools arm it.
//!
//! Competing with a CPU-bound worker, a `SCHED_IDLE` thread gets a tiny share of
//! the CPU (weight 3 against 1024) and the sentinel yields at once each time
//! (its measured cost is in the README's benchmark section, `detect`).
//!
//! **At exit.** A process is gone only once every thread has exited, and a
//! thread must run to exit: a `SCHED_IDLE` thread pinned to a CPU that other
//! processes keep busy waited up to 1.5 s for its turn, so a program returning
//! from `main` after a storm of unannounced blocks took that long to end. An
//! `atexit` handler, registered when the first sentinel starts, therefore
//! releases every sentinel: it widens its affinity to every allowed CPU (no
//! privilege needed; an idle CPU anywhere then lets it die at once) and moves it
//! back to `SCHED_OTHER`. The kernel allows the latter only with `CAP_SYS_NICE`
//! or an `RLIMIT_NICE` of 20 or more ("Treat SCHED_IDLE as nice 20",
//! `user_check_sched_setscheduler` in kernel/sched/syscalls.c); without it, on a
//! machine with no idle CPU at all, the exit still waits for the scheduler.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::act::{act_on_block, Act, Stall};
use super::stats::{bump, COUNTERS};
use super::SENTINEL_THREAD_PREFIX;
use crate::context::arming::SentinelState;
use crate::platform::log;
use crate::platform::loom::Ordering;
use crate::platform::sys::probe::SchedState;
use crate::pool::{WorkerPool, WorkerShared};
use crate::registry::Registry;

/// A block must last this long before the sentinel acts: a worker waiting a few
/// microseconds for a lock (the pool's own) lets its CPU idle too.
const CONFIRM: Duration = Duration::from_micros(10);

/// Sweeps in a row that find a pool saturated but nobody blocked, with the CPU
/// idle (a worker that moved itself off this CPU, say), before the sentinel
/// sleeps `IDLE_BACKOFF` instead of spinning on.
const IDLE_SWEEPS: u32 = 1000;
const IDLE_BACKOFF: Duration = Duration::from_millis(1);

/// A yield that comes back sooner than this found nothing else runnable on the
/// sentinel's CPU (one that hands the CPU to another thread takes a time slice).
const IDLE_YIELD: Duration = Duration::from_micros(20);

/// How long the sentinel stays armed with nothing saturated before it parks.
const LINGER: Duration = Duration::from_micros(500);

/// Capacity kept for marks the monitor has not adopted yet (a monitor that could
/// not start never adopts them; the workers then count again at their item's end).
const MAX_PENDING_MARKS: usize = 1024;

/// Starts the sentinels that pools asked for (`Wanted` in the doorbell). Called
/// by the monitor thread at each tick, holding no lock.
pub(super) fn start_wanted(reg: &'static Registry) {
    let bell = &reg.ctx.doorbell;
    if !bell.take_any_wanted() {
        return;
    }
    for (cpu, s) in bell.sentinels().iter().enumerate() {
        if !s.state.take_wanted() {
            continue;
        }
        let spawned = std::thread::Builder::new()
            .name(format!("{SENTINEL_THREAD_PREFIX}{cpu}"))
            .stack_size(64 * 1024)
            .spawn(move || run(reg, cpu));
        match spawned {
            // Counted in `sentinels` by the thread once it is set up.
            Ok(_) => {}
            Err(e) => {
                s.state.set(SentinelState::Failed);
                log::debug!(
                    cpu = cpu,
                    error = log::display(&e),
                    "cmwq: no idle sentinel; the monitor's ticks cover its CPU"
                );
            }
        }
    }
}

/// A block seen by this sentinel, not acted on yet.
#[derive(Debug)]
struct Seen {
    pool: u32,
    idx: usize,
    progress: u64,
    since: Instant,
}

/// The registry whose sentinels [`release_at_exit`] releases.
static AT_EXIT: OnceLock<&'static Registry> = OnceLock::new();

/// Registers [`release_at_exit`] once per process.
fn release_at_exit_of(reg: &'static Registry) {
    if AT_EXIT.set(reg).is_ok() {
        if let Err(e) = crate::platform::sys::at_exit(release_at_exit) {
            log::debug!(
                error = log::display(&e),
                "cmwq: no exit handler for the idle sentinels; exit may wait for them"
            );
        }
    }
}

/// The `atexit` handler: lets every sentinel thread run, and so die, at once
/// (see the module docs, "At exit").
extern "C" fn release_at_exit() {
    let Some(reg) = AT_EXIT.get() else { return };
    for s in reg.ctx.doorbell.sentinels() {
        if let Some(&tid) = s.tid.get() {
            // Refused without the privilege: nothing better to do then.
            let _ = crate::platform::sys::release_idle_thread(tid, &reg.ctx.topo.allowed);
        }
    }
}

fn run(reg: &'static Registry, cpu: usize) {
    let s = reg.ctx.doorbell.sentinel(cpu).expect("a sentinel per CPU id");
    let _ = s.thread.set(std::thread::current());
    // Before the thread becomes SCHED_IDLE: the exit handler finds it.
    let _ = s.tid.set(crate::platform::sys::gettid());
    release_at_exit_of(reg);
    // Sized up front: a sweep allocates nothing (the hot-path allocation test
    // counts every thread's allocations). And allocated before the thread becomes
    // SCHED_IDLE: on a busy CPU it might not run again for a long time.
    let mut seen: Vec<Seen> = Vec::with_capacity(64);
    let mut views: Vec<(usize, u64, Arc<WorkerShared>)> = Vec::with_capacity(64);
    let mut pools: Vec<&'static WorkerPool> = Vec::with_capacity(16);
    // Pinned to its CPU, and only ever run when that CPU would otherwise idle. A
    // sentinel that may not be SCHED_IDLE would compete with the workers: none.
    if crate::platform::sys::set_current_thread_affinity(&[cpu]).is_err()
        || crate::platform::sys::set_current_thread_sched_idle().is_err()
    {
        s.state.set(SentinelState::Failed);
        return;
    }
    bump(&COUNTERS.sentinels);
    let mut fruitless = 0u32;
    let mut quiet_since: Option<Instant> = None;
    // Whether the yield before this sweep came straight back: nothing else was
    // runnable on this CPU. (A `SCHED_IDLE` thread also gets a sliver of a busy
    // CPU; then a yield hands the CPU over for a time slice.)
    let mut cpu_idle = false;
    loop {
        let mut busy = false;
        // The lock is taken only for a pool whose saturation was reported (a hint
        // read without the lock); the check before parking takes it always.
        // A list being written (a new unbound pool) counts as busy: look again.
        busy |= !pools_of(reg, cpu, &mut pools);
        for &pool in &pools {
            if pool.saturation_noted.load(Ordering::Relaxed) {
                busy |= sweep(pool, &mut seen, &mut views, false, cpu_idle);
            }
        }
        if busy {
            quiet_since = None;
            fruitless = if seen.is_empty() { fruitless + 1 } else { 0 };
            if fruitless >= IDLE_SWEEPS {
                fruitless = 0;
                std::thread::park_timeout(IDLE_BACKOFF);
                cpu_idle = false;
            } else {
                // Back to whatever else wants this CPU; we run again when nothing does.
                cpu_idle = yield_found_idle();
            }
            continue;
        }
        fruitless = 0;
        // Nothing saturated: linger a little before parking, so that a pool whose
        // worklist drains and refills in quick succession (a producer in step with
        // its worker) does not make each refill pay a futex wake to re-arm us.
        let now = Instant::now();
        if now.saturating_duration_since(*quiet_since.get_or_insert(now)) < LINGER {
            cpu_idle = yield_found_idle();
            continue;
        }
        quiet_since = None;
        seen.clear();
        // Nothing saturated: park, unless a last look at every pool (taking its
        // lock) finds one saturated after all (`arming.rs`: why no arming is lost).
        let again = s.state.try_park(|| {
            let mut again = !pools_of(reg, cpu, &mut pools);
            for &pool in &pools {
                again |= sweep(pool, &mut seen, &mut views, true, false);
            }
            again
        });
        if again {
            continue;
        }
        while s.state.is_parked() {
            std::thread::park();
        }
        cpu_idle = false;
    }
}

/// The pools a block on `cpu` can starve, into `into`: the normal and highpri
/// pools of `cpu` that exist, and the unbound pools whose pod holds it. False
/// if the list of unbound pools was being written (look again soon).
fn pools_of(reg: &'static Registry, cpu: usize, into: &mut Vec<&'static WorkerPool>) -> bool {
    into.clear();
    into.extend([false, true].into_iter().filter_map(|highpri| reg.cpu_pool_if_created(cpu, highpri)));
    reg.try_unbound_pools_of(cpu, |p| into.push(p))
}

/// Looks at one pool of the sentinel's CPU. Returns whether it is saturated
/// (work waiting while a worker counts as running); a pool whose lock is taken
/// counts as saturated, to be looked at again.
///
/// The sentinel holds a pool lock as briefly as it can and, but for the check
/// before it parks (`wait_for_lock`), never waits for one: as a `SCHED_IDLE`
/// thread it loses its CPU to any other thread that wakes there, and the lock
/// would stay held until it gets the CPU back (see `README.md`).
fn sweep(
    pool: &'static WorkerPool,
    seen: &mut Vec<Seen>,
    views: &mut Vec<(usize, u64, Arc<WorkerShared>)>,
    wait_for_lock: bool,
    cpu_idle: bool,
) -> bool {
    if !pool.ctx.config.monitor() {
        return false;
    }
    let g = if wait_for_lock {
        pool.lock()
    } else {
        match pool.try_lock() {
            Some(g) => g,
            None => return true,
        }
    };
    if g.worklist.is_empty() || pool.nr_running() <= 0 {
        // Its next saturation is reported (and arms us) again.
        pool.saturation_over();
        seen.retain(|x| x.pool != pool.id);
        return false;
    }
    views.clear();
    views.extend(
        g.workers
            .iter()
            .filter(|(_, w)| w.current.is_some() && w.shared.counted())
            .map(|(idx, w)| (idx, w.progress, w.shared.clone())),
    );
    drop(g);
    let now = Instant::now();
    seen.retain(|x| x.pool != pool.id || views.iter().any(|v| v.0 == x.idx && v.1 == x.progress));
    // Waiting for a CPU counts only while this one idles (else the worker may
    // well wait behind whatever keeps this CPU busy), and only in a pool that
    // arms sentinels: one whose items stay on the CPU keeps exactly as many
    // running as its pod has CPUs, whichever pool armed this sentinel.
    let waiting_counts = cpu_idle && pool.sentinel_covers();
    for (idx, progress, w) in views.drain(..) {
        let Some(stall) = stalled_now(&w).filter(|&s| s == Stall::Blocked || waiting_counts) else {
            seen.retain(|x| !(x.pool == pool.id && x.idx == idx));
            continue;
        };
        let since = match seen.iter().find(|x| x.pool == pool.id && x.idx == idx && x.progress == progress) {
            Some(x) => x.since,
            None => {
                seen.push(Seen { pool: pool.id, idx, progress, since: now });
                continue;
            }
        };
        if now.saturating_duration_since(since) < CONFIRM {
            continue;
        }
        let Some(mut g) = pool.try_lock() else { continue };
        match act_on_block(pool, &mut g, idx, progress, since, now, stall) {
            Act::Marked => {
                // Beyond the reserved room the Vec grows (many workers blocked at once).
                if g.sentinel_marks.len() < MAX_PENDING_MARKS {
                    g.sentinel_marks.push((idx, progress));
                }
                // Counted before the lock is released: whoever sees the effect (an
                // item starting in the woken worker) sees the count.
                bump(&COUNTERS.by_sentinel);
                bump(&COUNTERS.blocked);
                if stall == Stall::Waiting {
                    bump(&COUNTERS.waiting);
                }
                drop(g);
                seen.retain(|x| !(x.pool == pool.id && x.idx == idx));
                // The monitor gives the count back when the worker runs again.
                pool.ctx.doorbell.wake_if_parked();
            }
            Act::Wait(_) => {}
            Act::Stale => seen.retain(|x| !(x.pool == pool.id && x.idx == idx)),
        }
    }
    true
}

/// Yields the CPU; true if it came straight back (`IDLE_YIELD`): nothing else
/// was runnable on it.
fn yield_found_idle() -> bool {
    let t = Instant::now();
    std::thread::yield_now();
    t.elapsed() < IDLE_YIELD
}

/// Whether the worker is off the CPU and making no progress: its CPU clock does not
/// move across the read of its scheduler state (a running thread's clock moves
/// within those microseconds), and that state is blocked (`S`, `D`) or runnable
/// (`R`, waiting for a CPU).
fn stalled_now(w: &WorkerShared) -> Option<Stall> {
    let probe = w.probe.get().filter(|p| p.usable())?;
    let c1 = probe.cpu_time()?;
    let stall = match probe.state() {
        SchedState::Blocked => Stall::Blocked,
        SchedState::Runnable => Stall::Waiting,
        SchedState::Other => return None,
    };
    (probe.cpu_time() == Some(c1)).then_some(stall)
}
