//! The mayday timer of a pool (the kernel's `pool->mayday_timer`,
//! `pool_mayday_timeout` and `send_mayday` in `kernel/workqueue.c`): when a
//! pool needs a worker and may not create one, each `MEM_RECLAIM` pwq with work
//! waiting on it is sent to its workqueue's rescuer (`rescuer.rs`).
//!
//! **Arming.** The kernel arms the timer in `maybe_create_worker`, for
//! `MAYDAY_INITIAL_TIMEOUT` (10 ms) after the manager starts trying, and keeps
//! it running every `MAYDAY_INTERVAL` (100 ms) while it loops on refused
//! creations. Here a creation never blocks for long (a thread spawn takes
//! ~50 µs), so what stands for "cannot create one" is a *refusal*: a ceiling,
//! the cooldown after a failed spawn, or the failed spawn itself
//! (`manage.rs`: `may_create`, `spawn_failed` call [`need_rescue`]). The first
//! refusal of a pool that serves a `MEM_RECLAIM` pwq arms the timer for 10 ms
//! later; later refusals leave it as it is.
//!
//! **Where it runs: the sleep monitor's thread** (`monitor/scan.rs` calls
//! [`mayday_timer`] for every pool it looks at). A refusal rings the monitor's
//! doorbell already (the starved pool is retried after its cooldown), so the
//! monitor is awake whenever a timer is armed; it keeps the timer's deadline
//! among its own (`Tick::until`) and counts an armed timer as something to
//! watch, so it does not park before the timer fires. A rescuer's own timed wait
//! would also do, but a pool's need is the pool's, not one queue's: one timer per
//! pool, looking at the pool's worklist when it fires (as the kernel's does),
//! also covers `MEM_RECLAIM` items queued after the refusal. Nothing wakes for
//! it while no pool needs rescue: a timer that fires and finds the need over
//! (a worker was created, or runs again, or the work is gone) disarms itself.
//! Under loom there is no monitor; the models fire the timer themselves.
//!
//! **Firing.** Under the pool lock: if the pool still needs a worker
//! (`need_to_create_worker`), each `MEM_RECLAIM` pwq with an item on the
//! worklist goes on its rescuer's mayday list (once: a pwq already there is not
//! added again), `WqStats::mayday` counts it, and the rescuer is woken; the
//! timer is re-armed for 100 ms later. A pool that no longer needs a worker, and
//! has no refused creation left to retry (`starved`), disarms it.

use std::time::{Duration, Instant};

use super::worker_pool::{PoolLocked, WorkerPool};
use crate::pwq::PwqRef;

/// `MAYDAY_INITIAL_TIMEOUT`: from the first refusal to the first mayday.
pub(crate) const MAYDAY_INITIAL_TIMEOUT: Duration = Duration::from_millis(10);
/// `MAYDAY_INTERVAL`: between maydays while the need lasts.
pub(crate) const MAYDAY_INTERVAL: Duration = Duration::from_millis(100);

/// A pool's mayday timer. L: in `PoolLocked`.
#[derive(Debug, Default)]
pub(crate) struct MaydayTimer {
    /// When it fires next; `None`: disarmed.
    at: Option<Instant>,
}

/// Does any pwq of the pool belong to a `MEM_RECLAIM` workqueue (one with a
/// rescuer)? Read on the refusal path only.
fn serves_reclaim(g: &PoolLocked) -> bool {
    g.pwqs.iter().any(|(_, p)| p.wq.rescuer.is_some())
}

/// A worker creation was refused (a ceiling, the cooldown, a failed spawn):
/// arms the pool's mayday timer, if it serves a `MEM_RECLAIM` queue and is not
/// armed already, and makes sure the sleep monitor, which fires it, is awake.
/// Caller holds the pool lock.
pub(crate) fn need_rescue(pool: &WorkerPool, g: &mut PoolLocked) {
    if g.mayday.at.is_some() || !serves_reclaim(g) {
        return;
    }
    g.mayday.at = Some(Instant::now() + MAYDAY_INITIAL_TIMEOUT);
    pool.ctx.doorbell.starved();
}

/// The monitor's look at the timer (`pool_mayday_timeout`): fires it if due.
/// Returns when it must be looked at next, `None` when disarmed. Caller holds
/// the pool lock.
#[cfg_attr(loom, allow(dead_code))] // fired by the monitor thread, absent under loom
pub(crate) fn mayday_timer(pool: &'static WorkerPool, g: &mut PoolLocked) -> Option<Instant> {
    let at = g.mayday.at?;
    let now = Instant::now();
    if now < at {
        return Some(at);
    }
    fire(pool, g, now)
}

/// `pool_mayday_timeout` itself, whether due or not (the loom models call it
/// directly). Returns the next deadline, `None` when it disarmed.
pub(crate) fn fire(pool: &'static WorkerPool, g: &mut PoolLocked, now: Instant) -> Option<Instant> {
    if !g.need_to_create_worker(pool) {
        // The need is over; a refusal still to be retried keeps the timer, so
        // that a need coming back before the retry is covered.
        g.mayday.at = (g.starved && serves_reclaim(g)).then_some(now + MAYDAY_INTERVAL);
        return g.mayday.at;
    }
    // Each pwq with an item waiting, once (`send_mayday` of every work item
    // of the worklist; the kernel's "already on the list" check makes it once).
    let mut sent: Vec<u32> = Vec::new();
    for i in 0..g.worklist.len() {
        let slot = g.worklist[i].pwq;
        if !sent.contains(&slot) {
            sent.push(slot);
            send_mayday(pool, g, slot);
        }
    }
    g.mayday.at = serves_reclaim(g).then_some(now + MAYDAY_INTERVAL);
    g.mayday.at
}

/// `send_mayday`: puts pwq `slot` on its rescuer's mayday list, if its
/// workqueue has one and it is not there yet, and wakes the rescuer. Caller
/// holds the pool lock (the mayday list's lock nests inside it, as the
/// kernel's `wq_mayday_lock` inside `pool->lock`).
fn send_mayday(pool: &'static WorkerPool, g: &mut PoolLocked, slot: u32) {
    let p = g.pwqs.get_mut(slot as usize);
    let Some(rescuer) = &p.wq.rescuer else { return };
    if rescuer.send(PwqRef { pool, slot, epoch: p.epoch }) {
        p.stats.mayday += 1;
    }
}
