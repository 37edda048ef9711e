//! The stall watchdog's mechanism (the public face, with its docs, is
//! `cmwq::watchdog`, `src/watchdog.rs`; the protocol is `README.md` beside this
//! file). It sits in the monitor layer: like the sleep monitor, it reads the
//! pools, and the pools reach it only through the context's bell
//! (`context/watchdog.rs`).
//!
//! - `check`: one look at every pool, and the reports;
//! - `thread`: the watchdog thread, its waits and parking.

mod check;
mod thread;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use self::check::{Checker, Finding};
use crate::context::watchdog::{WatchdogBell, WatchdogState};
use crate::platform::log;
use crate::registry::Registry;

/// The name of the watchdog thread.
pub(crate) const WATCHDOG_THREAD: &str = "cmwq/watchdog";
/// The shortest check interval, whatever the threshold.
const MIN_INTERVAL_NS: u64 = 1_000_000;

/// The process's watchdog.
#[derive(Debug)]
pub(crate) struct Watchdog {
    reg: &'static Registry,
    /// Held for a check; never taken under a pool lock (a check takes the pool
    /// locks under it).
    checker: parking_lot::Mutex<Checker>,
    /// `touch` was called since the last check.
    touched: AtomicBool,
    stalls: AtomicU64,
    checks: AtomicU64,
    /// Abort at this many stalls; 0: never.
    panic_on_stall: AtomicU32,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// Watches `reg`'s pools: installs the watchdog's start function on the
/// context's bell, so that the first item queued starts the thread.
pub(crate) fn install(reg: &'static Registry) {
    let wd = WATCHDOG.get_or_init(|| Watchdog {
        reg,
        checker: parking_lot::Mutex::new(Checker::default()),
        touched: AtomicBool::new(false),
        stalls: AtomicU64::new(0),
        checks: AtomicU64::new(0),
        panic_on_stall: AtomicU32::new(0),
    });
    // One watchdog per process, for its instance (`global.rs`); an instance
    // built by a test has no watchdog.
    if std::ptr::eq(wd.reg, reg) {
        reg.ctx.watchdog.install(move || thread::start(wd));
    }
}

/// The process's watchdog, once its instance is built (`global.rs` installs it).
pub(crate) fn get() -> Option<&'static Watchdog> {
    WATCHDOG.get()
}

/// The check interval for threshold `thresh_ns`: a quarter of it.
fn interval_ns(thresh_ns: u64) -> u64 {
    (thresh_ns / 4).max(MIN_INTERVAL_NS)
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Watchdog {
    /// `cmwq::watchdog::set_thresh`, once the threshold is checked.
    pub(crate) fn set_thresh(&self, thresh: Duration) {
        let bell = self.bell();
        let timers = &self.reg.timers;
        let mut c = self.checker.lock();
        bell.set_thresh(thresh);
        c.reset();
        if thresh.is_zero() {
            bell.set(WatchdogState::Off);
            drop(c);
            bell.unpark();
            return;
        }
        // A first check now records every pool's progress at this reading.
        let now = timers.now_ns();
        let busy = self.check(&mut c, now, ns(thresh));
        c.next = Some(now.saturating_add(interval_ns(ns(thresh))));
        if bell.state() == WatchdogState::Off {
            bell.set(if bell.has_thread() { WatchdogState::Parked } else { WatchdogState::Unstarted });
        }
        drop(c);
        if busy || timers.is_paused() {
            // Start or wake it; with the clock paused it stays awake (it costs
            // nothing then: only `timer::advance` and `resume` make it check).
            bell.arm_slow();
        }
        bell.unpark();
    }

    /// What the checks saw of each pool, for `debug::dump`: by pool id, the
    /// number of items it had started and for how long (ns, on the timer
    /// clock) it had had work waiting with that count, if it had work waiting.
    /// Never called under a pool lock (the checker's lock comes first).
    pub(crate) fn waiting(&self) -> Vec<Option<(u64, u64)>> {
        let c = self.checker.lock();
        let now = self.reg.timers.now_ns();
        c.waiting()
            .into_iter()
            .map(|w| w.map(|(started, since, _)| (started, now.saturating_sub(since))))
            .collect()
    }

    pub(crate) fn thresh(&self) -> Duration {
        self.bell().thresh()
    }

    pub(crate) fn touch(&self) {
        self.touched.store(true, Ordering::Relaxed);
    }

    pub(crate) fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    pub(crate) fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    pub(crate) fn set_panic_on_stall(&self, n: u32) {
        self.panic_on_stall.store(n, Ordering::Relaxed);
    }

    fn bell(&self) -> &WatchdogBell {
        &self.reg.ctx.watchdog
    }

    /// Runs the check that is due, if one is. Returns how long to wait for
    /// the next one, or `None`: wait to be unparked (the clock is paused, so
    /// `timer::advance` runs the checks; or every worklist was empty, and the
    /// watchdog parked).
    fn tick(&self) -> Option<Duration> {
        let timers = &self.reg.timers;
        let paused = timers.is_paused();
        let mut c = self.checker.lock();
        let bell = self.bell();
        let thresh = ns(bell.thresh());
        if bell.state() != WatchdogState::Running || thresh == 0 {
            return None;
        }
        let now = timers.now_ns();
        let interval = interval_ns(thresh);
        // Woken from a park (or after a reset): the first check comes one
        // interval on. A check at once would mostly find the worklist of the
        // push that woke us empty again, park, and be woken by the next push: a
        // wake-up (and a look under every pool lock) per burst of work. A stall
        // cannot be reported before the threshold anyway; one beginning now is
        // reported within threshold + one interval of its start, as ever.
        let next = *c.next.get_or_insert(now.saturating_add(interval));
        if now < next {
            return (!paused).then(|| Duration::from_nanos(next - now));
        }
        let busy = self.check(&mut c, now, thresh);
        c.next = Some(now.saturating_add(interval));
        if !busy && !paused {
            // Every worklist is empty: park. `Parked` is stored before a last
            // look at every pool (under each pool lock), so a push that this
            // look misses sees `Parked` and wakes us (README.md).
            bell.set(WatchdogState::Parked);
            if self.check(&mut c, now, thresh) {
                let _ = bell.cas(WatchdogState::Parked, WatchdogState::Running);
            } else {
                c.next = None;
                return None;
            }
        }
        (!paused).then(|| Duration::from_nanos(interval))
    }

    /// One check of every pool at clock reading `now`; logs what it found.
    /// Returns whether any pool had work waiting.
    fn check(&self, c: &mut Checker, now: u64, thresh: u64) -> bool {
        let touched = self.touched.swap(false, Ordering::Relaxed);
        // Empty unless something is reported: no allocation then.
        let mut found = Vec::new();
        let busy = c.check(self.reg, now, thresh, touched, &mut found);
        // Relaxed: statistics.
        self.checks.fetch_add(1, Ordering::Relaxed);
        for f in found {
            match f {
                Finding::Stall { pool, cpus, stuck_ns, in_flight, pending, text } => {
                    let n = self.stalls.fetch_add(1, Ordering::Relaxed) + 1;
                    log::error!(
                        pool = pool.as_str(),
                        cpus = cpus.as_str(),
                        stuck_ms = stuck_ns / 1_000_000,
                        in_flight = in_flight,
                        pending = pending,
                        "{text}"
                    );
                    let limit = self.panic_on_stall.load(Ordering::Relaxed);
                    if limit > 0 && n >= u64::from(limit) {
                        // The kernel's `panic_on_wq_watchdog`: BUG_ON(wq_stall >= wq_panic_on_stall).
                        log::error!(
                            stalls = n,
                            panic_on_stall = limit,
                            "cmwq: too many workqueue stalls: aborting"
                        );
                        eprintln!("{text}\ncmwq: {n} workqueue stalls (panic_on_stall={limit}): aborting");
                        std::process::abort();
                    }
                }
                Finding::Over { pool, cpus, stuck_ns, text } => {
                    log::warn!(
                        pool = pool.as_str(),
                        cpus = cpus.as_str(),
                        stuck_ms = stuck_ns / 1_000_000,
                        "{text}"
                    );
                }
            }
        }
        busy
    }
}

/// The process timer clock moved (`timer::advance`, `timer::resume`): runs the
/// check that came due, on the calling thread, and lets the watchdog thread
/// look at the clock again.
pub(crate) fn clock_moved() {
    let Some(wd) = WATCHDOG.get() else { return };
    let _ = wd.tick();
    wd.bell().unpark();
}
