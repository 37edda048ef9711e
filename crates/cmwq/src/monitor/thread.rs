//! The monitor thread: its adaptive tick, and parking when nothing needs
//! watching (`README.md`, "When it runs"). Its run state lives in the context's
//! doorbell, which the pools ring.

use std::time::{Duration, Instant};

use super::scan::Scanner;
use super::stats::{bump, COUNTERS};
use super::{MONITOR_THREAD, TICK_MAX};
use crate::context::doorbell::MonitorState;
use crate::platform::log;
use crate::registry::Registry;

/// The first tick after a wake-up, and after each tick that found something.
const TICK_MIN: Duration = Duration::from_micros(50);
/// After a tick that acted, ticks stay at `TICK_MIN` this long before they back
/// off: a pool whose items block unannounced blocks again soon, and a block seen
/// one back-off step late leaves its CPU idle for that long.
const HOT: Duration = Duration::from_millis(2);
/// Consecutive ticks that find nothing to watch before the monitor parks.
const IDLE_TICKS_TO_PARK: u32 = 12;

/// Starts the monitor thread of `reg` (the doorbell's start function). Returns
/// whether it started.
pub(super) fn start(reg: &'static Registry) -> bool {
    let spawned = std::thread::Builder::new().name(MONITOR_THREAD.into()).spawn(move || {
        reg.ctx.doorbell.set_thread(std::thread::current());
        Monitor::new(reg).run()
    });
    if let Err(e) = &spawned {
        log::warn!(
            error = log::display(&e),
            "cmwq: cannot start the sleep monitor; unannotated blocking will stall its CPU's pool"
        );
    }
    spawned.is_ok()
}

/// The monitor thread's state.
#[derive(Debug)]
struct Monitor {
    reg: &'static Registry,
    scanner: Scanner,
    tick: Duration,
    idle_ticks: u32,
    /// When a tick last acted on something (see `HOT`).
    last_found: Option<Instant>,
}

impl Monitor {
    fn new(reg: &'static Registry) -> Monitor {
        Monitor { reg, scanner: Scanner::default(), tick: TICK_MIN, idle_ticks: 0, last_found: None }
    }

    fn run(mut self) {
        // Ticks of 50 µs need a timer that fires on time (the default slack is 50 µs).
        let _ = crate::platform::sys::set_current_thread_timer_slack(1);
        // Detection competes with CPU-bound workers for the CPU; be first if permitted.
        let _ = crate::platform::sys::set_current_thread_nice(crate::pool::HIGHPRI_NICE);
        // It inherited the affinity of whichever thread started it (a worker pinned
        // to one CPU, say): there it would queue behind the very items it watches.
        let topo = &self.reg.ctx.topo;
        if topo.real {
            let _ = crate::platform::sys::set_current_thread_affinity(&topo.allowed);
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

    fn tick(&mut self) -> super::scan::Tick {
        super::sentinel::start_wanted(self.reg);
        self.scanner.tick()
    }

    /// Parks until a pool rings the doorbell. The last scan runs after `Parked`
    /// is stored, so a saturation that began before it is seen by the scan
    /// (`context/doorbell.rs`: why no ring is lost).
    fn park(&mut self) {
        let bell = &self.reg.ctx.doorbell;
        bell.set(MonitorState::Parked);
        let t = self.tick();
        if t.busy {
            // Whoever rang meanwhile may have set `Running` already.
            bell.set(MonitorState::Running);
            self.idle_ticks = 0;
            return;
        }
        bump(&COUNTERS.parks);
        self.scanner.forget();
        while bell.is_parked() {
            std::thread::park();
        }
        self.tick = TICK_MIN;
        self.idle_ticks = 0;
    }
}
