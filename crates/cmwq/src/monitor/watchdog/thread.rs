//! The watchdog thread (the kernel's deferrable `wq_watchdog_timer`): it waits
//! for the next check by the process timer clock, and parks with no timeout
//! while every worklist is empty.

use std::time::Duration;

use super::{Watchdog, WATCHDOG_THREAD};
use crate::context::watchdog::WatchdogState;
use crate::platform::log;

/// Starts the watchdog thread (the bell's start function; called under the
/// lock of the pool that armed it, as the monitor's is). Returns whether it
/// started.
pub(super) fn start(wd: &'static Watchdog) -> bool {
    let spawned =
        std::thread::Builder::new().name(WATCHDOG_THREAD.into()).stack_size(256 << 10).spawn(move || {
            wd.bell().set_thread(std::thread::current());
            run(wd)
        });
    if let Err(e) = &spawned {
        log::warn!(
            error = log::display(e),
            "cmwq: cannot start the workqueue watchdog; stalls will not be reported"
        );
    }
    spawned.is_ok()
}

fn run(wd: &'static Watchdog) {
    loop {
        if wd.bell().state() != WatchdogState::Running {
            // Parked or off: an arming, or `set_thresh`, unparks us.
            std::thread::park();
            continue;
        }
        match wd.tick() {
            Some(d) => std::thread::park_timeout(d.max(Duration::from_micros(100))),
            // The clock is paused (`timer::advance` runs the checks), or we parked.
            None => std::thread::park(),
        }
    }
}
