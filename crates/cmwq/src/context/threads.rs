//! Worker-thread accounting: the counts the ceilings apply to, the lowered
//! ceiling after a failed thread creation, and the creator thread (the kernel's
//! kthreadd), which spawns the first worker of a pool.
//!
//! A worker is *reserved* (counted) before its thread is spawned, by a CAS that
//! fails at the ceiling, so concurrent managers of different pools never
//! overshoot one; a failed spawn or an exiting worker gives its reservation back.

use std::time::Instant;

use crate::platform::log;
use crate::platform::loom::{AtomicUsize, Mutex, Ordering};

use super::config::Config;

/// The name of the creator thread.
pub(crate) const CREATOR_THREAD: &str = "cmwq/creator";

/// Work for the creator thread.
pub(crate) type CreateRequest = Box<dyn FnOnce() + Send>;

/// Why a worker could not be reserved now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Within `CREATE_COOLDOWN` of a failed creation in this pool.
    Cooldown,
    /// At the ceiling on all workers (`max_workers`).
    Ceiling(usize),
    /// At the ceiling on concurrency-managed workers (`max_cm_workers`).
    CmCeiling(usize),
    /// A thread creation failed at this count; the cooldown has not ended.
    Lowered(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Refusal::Cooldown => write!(f, "a thread creation failed less than 1 s ago"),
            Refusal::Ceiling(m) => write!(f, "worker ceiling of {m} threads reached"),
            Refusal::CmCeiling(m) => {
                write!(f, "ceiling of {m} concurrency-managed (per-CPU) workers reached")
            }
            Refusal::Lowered(m) => {
                write!(f, "thread creation failed at {m} threads; holding there for 1 s")
            }
        }
    }
}

/// The worker threads of one context.
#[derive(Debug)]
pub(crate) struct Threads {
    /// Workers alive or reserved, across all pools.
    nr: AtomicUsize,
    /// Of those, workers of concurrency-managed (per-CPU) pools.
    nr_cm: AtomicUsize,
    /// The most `nr` and `nr_cm` have been (statistics).
    peak: AtomicUsize,
    peak_cm: AtomicUsize,
    /// After a failed thread creation: the count it failed at, which is the
    /// effective ceiling until the cooldown ends (then one retry may go).
    /// A leaf lock: taken under a pool lock, nothing is taken under it.
    spawn_limit: Mutex<Option<(usize, Instant)>>,
    /// The creator thread's queue; `None` for simulated topologies and loom
    /// models (they spawn directly), or if it could not be started.
    creator: Option<std::sync::mpsc::Sender<CreateRequest>>,
}

impl Threads {
    /// `real`: start the creator thread (a real topology).
    pub(crate) fn new(real: bool) -> Threads {
        Threads {
            nr: AtomicUsize::new(0),
            nr_cm: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            peak_cm: AtomicUsize::new(0),
            spawn_limit: Mutex::new(None),
            creator: if real && !cfg!(loom) { start_creator() } else { None },
        }
    }

    /// Reserves a worker under every ceiling of `cfg` (and a lowered one after a
    /// failed spawn); `cm`: a worker of a concurrency-managed pool. On `Ok` the
    /// worker is counted; [`release`](Self::release) gives it back.
    pub(crate) fn reserve(&self, cfg: &Config, cm: bool, now: Instant) -> Result<(), Refusal> {
        let mut limit = cfg.max_workers();
        let mut lowered = false;
        {
            let mut sl = self.spawn_limit.lock();
            match *sl {
                Some((at, until)) if now < until && at < limit => {
                    limit = at;
                    lowered = true;
                }
                // Cooled down: retry at the configured ceiling; a success lifts it.
                Some((_, until)) if now >= until => *sl = None,
                _ => {}
            }
        }
        // Relaxed: a count, ordered by nothing else; the RMW alone keeps it exact.
        let add = |n: &AtomicUsize, max: usize| {
            n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| (c < max).then_some(c + 1))
        };
        let Ok(n) = add(&self.nr, limit) else {
            return Err(if lowered { Refusal::Lowered(limit) } else { Refusal::Ceiling(limit) });
        };
        if cm {
            let cm_max = cfg.max_cm_workers();
            let Ok(n_cm) = add(&self.nr_cm, cm_max) else {
                self.nr.fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::CmCeiling(cm_max));
            };
            self.peak_cm.fetch_max(n_cm + 1, Ordering::Relaxed);
        }
        self.peak.fetch_max(n + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Gives back a reservation (a worker exited, or its spawn failed).
    pub(crate) fn release(&self, cm: bool) {
        self.nr.fetch_sub(1, Ordering::Relaxed);
        if cm {
            self.nr_cm.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A spawn failed (`EAGAIN`, `pids.max`): more threads would fail too, so the
    /// ceiling drops to the current count until `until`. Returns that count.
    pub(crate) fn spawn_failed(&self, until: Instant) -> usize {
        let at = self.nr.load(Ordering::Relaxed);
        *self.spawn_limit.lock() = Some((at, until));
        at
    }

    /// A spawn worked: lifts a lowered ceiling. Returns whether one was lowered.
    pub(crate) fn spawn_worked(&self) -> bool {
        self.spawn_limit.lock().take().is_some()
    }

    /// Workers alive or reserved now: `(all, concurrency-managed)`.
    pub(crate) fn count(&self) -> (usize, usize) {
        (self.nr.load(Ordering::Relaxed), self.nr_cm.load(Ordering::Relaxed))
    }

    /// The most workers alive at once: `(all, concurrency-managed)`.
    pub(crate) fn peak(&self) -> (usize, usize) {
        (self.peak.load(Ordering::Relaxed), self.peak_cm.load(Ordering::Relaxed))
    }

    /// Hands `req` to the creator thread; gives it back if there is none.
    pub(crate) fn to_creator(&self, req: CreateRequest) -> Result<(), CreateRequest> {
        match &self.creator {
            Some(tx) => tx.send(req).map_err(|e| e.0),
            None => Err(req),
        }
    }
}

/// Starts the creator thread, at the process's base priority and affinity (it is
/// started with the context, before anyone could have changed them).
fn start_creator() -> Option<std::sync::mpsc::Sender<CreateRequest>> {
    let (tx, rx) = std::sync::mpsc::channel::<CreateRequest>();
    let started = std::thread::Builder::new().name(CREATOR_THREAD.into()).spawn(move || {
        for req in rx {
            req();
        }
    });
    match started {
        Ok(_) => Some(tx),
        Err(e) => {
            log::warn!(
                error = log::display(&e),
                "cmwq: cannot start the creator thread; queuing threads create first workers"
            );
            None
        }
    }
}
