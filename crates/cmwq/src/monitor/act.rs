//! What the monitor and the idle sentinels do on a block they found: the
//! decision and the transition, shared by both (`monitor/README.md`, "What it
//! does" and "Hysteresis").

use std::time::{Duration, Instant};

use super::stats::{bump, COUNTERS};
use crate::pool::{monitor_sleeping, PoolLocked, WorkerPool};

/// How long a pool stays "known to block long" after the monitor last saw one of
/// its workers stay blocked past the stall window: meanwhile a new block there is
/// acted on at its first sample instead of after the stall window.
pub(super) const LONG_BLOCK_MEMORY: Duration = Duration::from_millis(100);

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

/// How a worker executing an item was found off the CPU, making no progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stall {
    /// Scheduler state `S` or `D`: blocked.
    Blocked,
    /// Scheduler state `R`: runnable, but waiting for a CPU, and (found by the
    /// idle sentinel of an idle CPU) queued behind something on another CPU.
    /// Only the sentinels look for it (`README.md`, "Waiting for a CPU counts as
    /// stalled").
    Waiting,
}

/// A worker of `pool`, executing item `progress` in slot `idx`, has been stalled
/// since `since`: take it out of `nr_running`, as `wq_worker_sleeping` would
/// (which wakes an idle worker), and create one if nobody is idle, unless the
/// hysteresis says wait. Waking a spare is free while another one stays in
/// reserve; anything that leads to a new thread waits for the stall window,
/// unless this pool's blocks are known to be long (`LONG_BLOCK_MEMORY`).
/// Only a block (not a wait for a CPU) counts as one in the pool's memory of
/// blocks: long ones, and unannounced ones (which arm the sentinels). A pool
/// that only waits for CPUs is CPU-bound, and must not keep its own sentinel
/// coverage going (`WorkerPool::sentinel_covers`); an announced block keeps
/// it going in an unbound pool of several CPUs (`cm::worker_sleeping`).
/// Shared by the monitor and the idle sentinels.
pub(super) fn act_on_block(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    idx: usize,
    progress: u64,
    since: Instant,
    now: Instant,
    stall: Stall,
) -> Act {
    let window = pool.ctx.config.stall_window();
    let stalled = now.saturating_duration_since(since);
    let blocks_long = g.long_block_at.is_some_and(|at| now.saturating_duration_since(at) < LONG_BLOCK_MEMORY);
    if g.idle.len() < 2 && stalled < window && !blocks_long {
        return Act::Wait(since + window);
    }
    // Taking the worker out kicks the pool: an idle worker is woken, or, with
    // none and work waiting, one is created (`kick_pool`).
    let created = g.workers_created;
    if !monitor_sleeping(pool, g, idx, progress) {
        return Act::Stale;
    }
    if g.workers_created > created {
        bump(&COUNTERS.created);
    }
    // Only a block renews the pool's memory of blocks; a wait for a CPU is none.
    if stall == Stall::Blocked {
        if stalled >= window {
            g.long_block_at = Some(now);
        }
        pool.remember_block(g, false, now);
    }
    Act::Marked
}
