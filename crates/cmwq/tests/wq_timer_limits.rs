//! The test clock at its limits (`cmwq::timer::advance` with huge durations,
//! `queue_delayed` with delays near `Duration::MAX`): a timer never fires before
//! its deadline, whatever the input, and timers armed after an advance to the end
//! of time still work. A binary of its own: it moves the process's clock for good.

mod support;

use std::time::Duration;

use cmwq::{timer, DelayedWork, Workqueue};
use support::{poll_until, DEADLINE, SETTLE};

#[test]
fn huge_advances_and_delays_never_fire_a_timer_early() {
    let wq = Workqueue::builder("clock-limits").build().unwrap();
    timer::pause();
    let hour = DelayedWork::new(|_| {});
    let forever = DelayedWork::new(|_| {});
    let almost_forever = DelayedWork::new(|_| {});
    let centuries = DelayedWork::new(|_| {});
    assert!(wq.queue_delayed(&hour, Duration::from_secs(3600)).unwrap());
    assert!(wq.queue_delayed(&forever, Duration::MAX).unwrap());
    assert!(wq.queue_delayed(&almost_forever, Duration::from_nanos(u64::MAX - 1)).unwrap());
    // 400 years: beyond where an advance stops (about 292 years).
    assert!(wq.queue_delayed(&centuries, Duration::from_secs(400 * 365 * 86_400)).unwrap());

    // Advancing to the end of time fires what is due by then, and nothing else.
    assert_eq!(timer::advance(Duration::MAX), Some(1));
    assert!(!hour.timer_pending());
    assert!(forever.timer_pending(), "a Duration::MAX delay fired");
    assert!(almost_forever.timer_pending(), "a delay of u64::MAX - 1 ns fired");
    assert!(centuries.timer_pending(), "a 400-year delay fired after a saturated advance");
    assert_eq!(timer::advance(Duration::MAX), Some(0));
    hour.flush().unwrap();

    // Timers armed afterwards keep their meaning on the running clock.
    timer::resume();
    let later = DelayedWork::new(|_| {});
    let soon = DelayedWork::new(|_| {});
    let never = DelayedWork::new(|_| {});
    assert!(wq.queue_delayed(&later, Duration::from_secs(3600)).unwrap());
    assert!(wq.queue_delayed(&never, Duration::MAX).unwrap());
    assert!(wq.queue_delayed(&soon, Duration::from_millis(1)).unwrap());
    assert!(poll_until(DEADLINE, || !soon.timer_pending()), "a 1 ms timer never fired after the advance");
    soon.flush().unwrap();
    std::thread::sleep(SETTLE);
    assert!(later.timer_pending(), "a 1-hour timer fired at once after the advance");
    assert!(never.timer_pending(), "a Duration::MAX timer fired");
    for dw in [&forever, &almost_forever, &centuries, &later, &never] {
        assert!(dw.cancel());
    }
    assert_eq!(timer::armed(), 0);
}
