//! The stall watchdog (the kernel's workqueue lockup detector,
//! `wq_watchdog_timer_fn` in `kernel/workqueue.c`): reports a pool that has
//! work waiting and has started nothing for a threshold (default 30 s).
//!
//! A stall has causes no other warning catches: an item that keeps its CPU
//! (or blocks unannounced with the sleep monitor off), items that wait on each
//! other while no new worker can be made (a thread ceiling, refused
//! `pthread_create`), a flush dependency. The kernel's workqueue.c names the
//! same ones ("missing WQ_MEM_RECLAIM, illegal flush dependency, a concurrency
//! managed work item which stays RUNNING indefinitely").
//!
//! Each stall is logged once, as an error event (`tracing`, target `cmwq`),
//! that names the pool, its CPU or pod, how long it has been stuck, each item
//! in flight with its workqueue and how long it has run, and how many items
//! wait per workqueue; its end is logged as a warning. [`stalls`] counts the
//! reports, and [`set_panic_on_stall`] aborts the process after a number of
//! them (the kernel's `workqueue.panic_on_stall`).
//!
//! ```text
//! BUG: workqueue lockup - pool 0 (cpu 0, nice 0) stuck for 30s! in-flight: worker 0 runs "fs-sync" for >=30s; pending 2: "fs-sync" 1, "net-tx" 1
//! workqueue lockup over - pool 0 (cpu 0, nice 0): made progress again after 41s stuck
//! ```
//!
//! The watchdog keeps time by the process timer clock, so [`timer::pause`] and
//! [`timer::advance`] drive it: with the clock paused, `advance` runs the
//! checks that come due, on the calling thread, before it returns.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cmwq::{timer, watchdog, Workqueue, WqFlags};
//!
//! // An item that keeps its CPU, with the sleep monitor (which would take it
//! // out of concurrency management) off: the item queued behind it on the same
//! // CPU never starts.
//! cmwq::set_sleep_monitor(false);
//! timer::pause();
//! watchdog::set_thresh(Duration::from_secs(30))?; // the default
//! let wq = Workqueue::builder("hog").flags(WqFlags::PERCPU).build()?;
//! let cpu = cmwq::allowed_cpus()[0];
//! let (running, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
//! let (r, s) = (running.clone(), stop.clone());
//! wq.queue_on(cpu, &cmwq::Work::new(move |_| {
//!     r.store(true, Ordering::SeqCst);
//!     while !s.load(Ordering::SeqCst) {
//!         std::hint::spin_loop();
//!     }
//! }))?;
//! while !running.load(Ordering::SeqCst) {
//!     std::thread::yield_now();
//! }
//! let behind = cmwq::Work::new(|_| {});
//! wq.queue_on(cpu, &behind)?;
//!
//! // Checks run every quarter of the threshold; the stall is reported once it
//! // has lasted the threshold, and at most one check later.
//! for _ in 0..5 {
//!     timer::advance(watchdog::thresh() / 4);
//! }
//! assert_eq!(watchdog::stalls(), 1);
//! timer::advance(watchdog::thresh());
//! assert_eq!(watchdog::stalls(), 1); // once per stall
//!
//! stop.store(true, Ordering::SeqCst);
//! behind.flush()?;
//! timer::resume();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Cost
//!
//! Nothing while every pool is idle: the watchdog thread (`cmwq/watchdog`,
//! started on the first item queued) parks with no timeout after a check that
//! finds every worklist empty, and the next item pushed onto a worklist wakes
//! it. While pools work, a push costs one relaxed load of a read-mostly word,
//! and the watchdog takes each pool lock once per check (every 7.5 s by
//! default). Item starts cost nothing: a pool's progress is the count of
//! items it started, which it keeps anyway. `monitor/watchdog/README.md` has
//! the protocol and why no wake-up is lost.
//!
//! ## Where it differs from the kernel
//!
//! - Checks run every quarter of the threshold (the kernel's timer runs every
//!   threshold), and a stall is reported once, not at every check; its end
//!   is reported too.
//! - Progress is seen at the checks, not stamped at each item start, so a
//!   stall is reported between the threshold and the threshold plus one check
//!   interval after the pool's last progress, and "stuck for" and each item's
//!   running time are lower bounds, exact to one check interval.
//! - [`touch`] is process-wide (the kernel's also has a per-CPU form).
//! - [`set_panic_on_stall`] aborts the process (the kernel's `BUG_ON`).
//!
//! [`timer::pause`]: crate::timer::pause
//! [`timer::advance`]: crate::timer::advance

use std::fmt;
use std::time::Duration;

use crate::context::watchdog::MAX_THRESH;
use crate::global::registry;
use crate::monitor::watchdog::Watchdog;

fn wd() -> &'static Watchdog {
    let _ = registry(); // builds the instance, which installs the watchdog
    crate::monitor::watchdog::get().expect("the instance installs the watchdog")
}

/// The process timer clock moved (`timer::advance`, `timer::resume`): the
/// watchdog's check that came due runs now, on the calling thread.
pub(crate) fn clock_moved() {
    crate::monitor::watchdog::clock_moved();
}

/// A threshold beyond a day, refused by [`set_thresh`].
///
/// ```
/// use std::time::Duration;
///
/// let err = cmwq::watchdog::set_thresh(Duration::from_secs(86_401)).unwrap_err();
/// assert_eq!(err.requested(), Duration::from_secs(86_401));
/// assert_eq!(err.to_string(), "cmwq watchdog: a threshold of 86401s is beyond the limit of 86400s (a day)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidThresh {
    requested: Duration,
}

impl InvalidThresh {
    /// The threshold asked for.
    pub fn requested(&self) -> Duration {
        self.requested
    }

    /// The longest threshold accepted: a day.
    pub fn max() -> Duration {
        MAX_THRESH
    }
}

impl fmt::Display for InvalidThresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cmwq watchdog: a threshold of {}s is beyond the limit of {}s (a day)",
            self.requested.as_secs(),
            MAX_THRESH.as_secs()
        )
    }
}

impl std::error::Error for InvalidThresh {}

/// Sets the threshold (the kernel's `workqueue.watchdog_thresh`; default 30 s,
/// or `CMWQ_WATCHDOG_THRESH` in whole seconds at start): a pool with work
/// waiting that starts nothing for this long is reported. The pools are
/// checked every quarter of it (at least every millisecond). Zero turns the
/// watchdog off. Any value up to a day is valid; a longer one is refused and
/// changes nothing.
///
/// Every pool's progress is counted afresh from the call (the kernel's
/// `wq_watchdog_set_thresh`), so a stall already reported may be reported again.
///
/// ```
/// use std::time::Duration;
/// use cmwq::watchdog;
///
/// watchdog::set_thresh(Duration::from_secs(120))?; // slow storage: a longer grace
/// assert_eq!(watchdog::thresh(), Duration::from_secs(120));
/// watchdog::set_thresh(Duration::ZERO)?; // off
/// assert!(watchdog::set_thresh(Duration::from_secs(2 * 86_400)).is_err());
/// assert_eq!(watchdog::thresh(), Duration::ZERO); // unchanged by the refusal
/// # Ok::<(), watchdog::InvalidThresh>(())
/// ```
///
/// # Errors
/// [`InvalidThresh`]: `thresh` is longer than a day.
pub fn set_thresh(thresh: Duration) -> Result<(), InvalidThresh> {
    if thresh > MAX_THRESH {
        return Err(InvalidThresh { requested: thresh });
    }
    wd().set_thresh(thresh);
    Ok(())
}

/// The threshold; zero when the watchdog is off.
///
/// ```
/// assert!(cmwq::watchdog::thresh() <= std::time::Duration::from_secs(86_400));
/// ```
pub fn thresh() -> Duration {
    wd().thresh()
}

/// Tells the watchdog that every pool may count as having made progress now
/// (the kernel's `wq_watchdog_touch`, called by `touch_softlockup_watchdog`):
/// for a program that knows it held every CPU on purpose, or was stopped (a
/// debugger, `SIGSTOP`), for longer than the threshold. The next check counts
/// the threshold from itself for every pool with work waiting. One relaxed store.
///
/// ```
/// cmwq::watchdog::touch(); // e.g. after resuming from SIGSTOP
/// ```
pub fn touch() {
    wd().touch();
}

/// How many stalls were reported since the process started.
///
/// ```
/// assert_eq!(cmwq::watchdog::stalls(), 0);
/// ```
pub fn stalls() -> u64 {
    wd().stalls()
}

/// How many checks the watchdog made since the process started (each looks at
/// every pool once). It does not grow while every pool is idle.
///
/// ```
/// let before = cmwq::watchdog::checks();
/// assert!(cmwq::watchdog::checks() >= before);
/// ```
pub fn checks() -> u64 {
    wd().checks()
}

/// Aborts the process at the `n`th stall report (the kernel's
/// `workqueue.panic_on_stall`), for a program that would rather be restarted
/// by its supervisor than run on with a stuck pool. The report is logged and
/// written to stderr first. 0 (the default) never aborts.
///
/// ```
/// cmwq::watchdog::set_panic_on_stall(3); // the third stall ends the process
/// cmwq::watchdog::set_panic_on_stall(0); // never
/// ```
pub fn set_panic_on_stall(n: u32) {
    wd().set_panic_on_stall(n);
}
