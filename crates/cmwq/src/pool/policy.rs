//! The kernel's policy predicates (`need_more_worker`, `may_start_working`,
//! `keep_working`, `need_to_create_worker`, `too_many_workers`), cmwq's own
//! (`worker_wanted`, `may_spin`, `quiescent`), and `kick_pool`, which acts on
//! them. All are read under the pool lock.

use std::time::Instant;

use super::batch::HELD_BACK;
use super::manage::create_worker_locked;
use super::worker_pool::{PoolLocked, WorkerPool};
use crate::platform::loom::Ordering;

/// `MAX_IDLE_WORKERS_RATIO`.
const MAX_IDLE_WORKERS_RATIO: usize = 4;

impl PoolLocked {
    /// Is there work waiting and fewer workers running than the pool's
    /// concurrency? (`need_more_worker`; the kernel's per-CPU pools have a
    /// concurrency of 1, so there it reads "nobody running".)
    #[inline]
    pub(crate) fn need_more_worker(&self, pool: &WorkerPool) -> bool {
        !self.worklist.is_empty() && pool.nr_running() < pool.concurrency
    }

    /// Is a worker of this pool asleep in a timed sleep that is over by now? Its
    /// thread is runnable (its timer fired), so the CPU goes to it as soon as the
    /// running worker blocks, and it counts as running the moment it runs
    /// (`cm::worker_running`). The kernel counts a worker when it runs again
    /// too, but a woken spare costs it a context switch; here a futex wake and two
    /// switches (~20 µs), and a spare woken beside a runnable sleeper starts a
    /// second item on the CPU. So `kick_pool` lets such a sleeper cover the CPU
    /// of a per-CPU pool (pool/README.md, "Runnable sleepers"). No clock read
    /// unless a timed sleep is in progress.
    fn runnable_sleeper(&self) -> bool {
        let mut now = None;
        self.workers.iter().any(|(_, w)| {
            w.sleep_due
                .filter(|_| w.shared.is_sleeping())
                .is_some_and(|due| due <= *now.get_or_insert_with(Instant::now))
        })
    }

    /// [`need_more_worker`](Self::need_more_worker), unless workers in their
    /// idle spin, or workers running a batch (`HELD_BACK` each, `batch.rs`),
    /// will take the waiting items, or, in a per-CPU pool, a runnable
    /// sleeper covers the CPU: what `kick_pool` and the monitor's worker
    /// creation act on. An unbound pool's sleeper may wake on any CPU of the
    /// pod, so it is not taken to cover a free one: measured with `cmwq bench`
    /// (mixed, 1:16), the rule left 14% of the CPUs idle there (1.22× the ideal
    /// against 1.12× without it, for 35 against 55 peak threads).
    pub(crate) fn worker_wanted(&self, pool: &WorkerPool) -> bool {
        self.need_more_worker(pool)
            && self.worklist.len() > self.nr_spinning + self.held_back()
            && !(pool.is_bound() && self.runnable_sleeper())
    }

    /// Waiting items that workers running a batch will take themselves, while
    /// the pool's items are short (`batch.rs`, the wake rule).
    #[inline]
    pub(super) fn held_back(&self) -> usize {
        if self.items_short {
            HELD_BACK * self.nr_batching
        } else {
            0
        }
    }

    /// Is an idle worker in reserve, so that a blocking item can be covered? (`may_start_working`)
    #[inline]
    pub(crate) fn may_start_working(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Should a worker that just finished an item take another? (`keep_working`)
    #[inline]
    pub(crate) fn keep_working(&self, pool: &WorkerPool) -> bool {
        !self.worklist.is_empty() && pool.nr_running() <= pool.concurrency
    }

    /// Is work waiting with no worker to run it and none idle? (`need_to_create_worker`)
    #[inline]
    pub(crate) fn need_to_create_worker(&self, pool: &WorkerPool) -> bool {
        self.need_more_worker(pool) && !self.may_start_working()
    }

    /// Does the pool lack the idle worker its work needs: work waiting or being
    /// executed, and no worker idle or being created? The kernel's worker never
    /// starts without one (`may_start_working`; its manager sleeps in
    /// `maybe_create_worker` until it has one); a cmwq worker refused one goes
    /// on without, and the pool stays marked starved until this is false
    /// (`manage::retry_starved`; pool/README.md, "Reserve invariant").
    pub(crate) fn lacks_reserve(&self) -> bool {
        self.idle.is_empty() && !self.manager_active && (self.nr_busy > 0 || !self.worklist.is_empty())
    }

    /// Is the pool within `CREATE_COOLDOWN` of a failed thread creation? Then it
    /// is marked starved, and the monitor retries when the cooldown ends. No
    /// clock read unless a creation failed.
    pub(crate) fn cooling_down(&self) -> Option<Instant> {
        self.create_cooldown_until.filter(|&until| Instant::now() < until)
    }

    /// Are there more idle workers than the busy ones justify? (`too_many_workers`)
    pub(crate) fn too_many_workers(&self) -> bool {
        let nr_idle = self.idle.len() + self.manager_active as usize;
        let nr_busy = self.nr_workers.saturating_sub(nr_idle);
        nr_idle > 2 && (nr_idle - 2) * MAX_IDLE_WORKERS_RATIO >= nr_busy
    }

    /// May a worker that ran out of work spin for more? Not right after a yield
    /// showed the CPU to be contended.
    pub(crate) fn may_spin(&mut self) -> bool {
        match self.spin_off_until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                self.spin_off_until = None;
                true
            }
            None => true,
        }
    }

    /// Is nothing queued, running or being created? An idle pool may shrink to zero.
    pub(crate) fn quiescent(&self, pool: &WorkerPool) -> bool {
        self.worklist.is_empty()
            && pool.nr_running() == 0
            && self.idle.len() == self.nr_workers
            && !self.manager_active
    }
}

/// `kick_pool`: wake the most recently idled worker if work waits and nobody runs
/// (and no runnable sleeper covers the CPU: `worker_wanted`). With no idle
/// worker (a new pool, one shrunk to zero, or one whose reserve a refused
/// creation took) and nobody managing, create one, unless the pool cools down
/// after a failed creation (the monitor retries when that ends).
/// Returns whether a worker was woken or created.
pub(crate) fn kick_pool(pool: &'static WorkerPool, g: &mut PoolLocked) -> bool {
    // A BH pool has its one context to wake, and nothing to manage.
    if pool.bh {
        return super::bh::kick_bh_pool(pool, g);
    }
    crate::platform::loom::ltrace!(
        "kick_pool: worklist={} nr_running={} idle={:?}",
        g.worklist.len(),
        pool.nr_running(),
        g.idle
    );
    if !g.worker_wanted(pool) {
        if !g.worklist.is_empty() && g.nr_busy > 0 && !pool.saturation_noted.load(Ordering::Relaxed) {
            // Saturated: work waits while a worker counts as running (or, covered
            // by a runnable sleeper, will count in a moment). If that worker
            // blocked without saying so, only the sleep monitor can tell. (A worker
            // counted between items, in its idle spin, is about to take the work: no
            // block to find, and no reason to wake the monitor or arm a sentinel.)
            pool.saturation_noted.store(true, Ordering::Relaxed);
            // Only a pool the sentinels cover (it blocked unannounced lately,
            // or, unbound of several CPUs, blocked at all) gets its CPUs' idle
            // sentinels armed: the others (CPU-bound, or per-CPU and announcing
            // their blocks) pay nothing for them (`monitor/README.md`, "The
            // idle sentinel").
            pool.ctx.doorbell.saturated(&pool.pod, pool.sentinel_covers());
        }
        return false;
    }
    if let Some(&i) = g.idle.last() {
        let w = g.workers.get_mut(i);
        if !w.kicked {
            w.kicked = true;
            // No handle yet: its creator delivers the kick when it records one.
            if let Some(t) = w.thread.clone() {
                if let Some(earlier) = g.to_wake.replace(t) {
                    earlier.unpark();
                }
            }
        }
        return true;
    }
    // No reserve to wake. With the reserve invariant this is a pool's first
    // worker, or a pool whose worker went on without a reserve after a refused
    // creation: whoever finds work wanted then creates one (the creator thread
    // spawns it), as the kernel's manager keeps retrying in
    // `maybe_create_worker` while `need_to_create_worker()`. A refusal marks the
    // pool starved, and the monitor retries (pool/README.md, "Why no wake-up is
    // lost", 7).
    if !g.manager_active && g.cooling_down().is_none() {
        return create_worker_locked(pool, g);
    }
    false
}
