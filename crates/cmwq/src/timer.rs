//! Timers behind [`DelayedWork`](crate::DelayedWork), and the clock control
//! that makes them testable: [`pause`], [`advance`], [`resume`].
//!
//! One timer context serves the whole process: one hierarchical timing wheel
//! behind one lock, and one thread (`cmwq/timer`, started on the first arm) that
//! sleeps until the next deadline and queues what is due. Arm and cancel are
//! O(1), with a million timers armed or with none.
//!
//! ## Testing with a paused clock
//!
//! Timer code reads time only through the process's timer clock. [`pause`]
//! freezes it; then nothing fires on its own, and [`advance`] moves it forward
//! and fires, on the calling thread and before it returns, exactly the timers
//! that became due: their items are queued on their workqueues. No test has to
//! sleep to see a timer fire.
//!
//! ```
//! use std::time::Duration;
//! use cmwq::{DelayedWork, Workqueue};
//!
//! cmwq::timer::pause();
//! let wq = Workqueue::builder("paused-doc").build()?;
//! let dw = DelayedWork::new(|_| {});
//! assert!(wq.queue_delayed(&dw, Duration::from_secs(3600))?);
//! assert_eq!(cmwq::timer::advance(Duration::from_secs(3599)), Some(0));
//! assert!(dw.timer_pending());
//! assert_eq!(cmwq::timer::advance(Duration::from_secs(1)), Some(1)); // due: queued now
//! assert!(!dw.timer_pending());
//! dw.flush()?;
//! cmwq::timer::resume();
//! # Ok::<(), cmwq::Error>(())
//! ```
//!

use std::time::Duration;

use crate::platform::timer::TimerBase;
use crate::workqueue::Armed;

fn base() -> &'static TimerBase<Armed> {
    &crate::global::registry().timers
}

/// Freezes the process's timer clock: from now on no timer fires until
/// [`advance`] moves the clock or [`resume`] lets it run. For tests, like
/// `tokio::time::pause`. Pausing a paused clock does nothing.
///
/// ```
/// use std::time::Duration;
/// use cmwq::{timer, DelayedWork, Workqueue};
///
/// timer::pause();
/// assert!(timer::is_paused());
/// let wq = Workqueue::builder("frozen-clock").build()?;
/// let dw = DelayedWork::new(|_| {});
/// wq.queue_delayed(&dw, Duration::from_nanos(1))?;
/// std::thread::sleep(Duration::from_millis(2));
/// assert!(dw.timer_pending()); // due in real time, but the clock stands still
/// dw.cancel();
/// timer::resume();
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn pause() {
    base().pause()
}

/// Lets a paused clock run again, from the reading it was paused (and advanced)
/// to; timers that are due fire at once. Does nothing if the clock runs.
///
/// ```
/// use std::time::Duration;
/// use cmwq::{timer, DelayedWork, Workqueue};
///
/// timer::pause();
/// let wq = Workqueue::builder("resumed").build()?;
/// let dw = DelayedWork::new(|_| {});
/// wq.queue_delayed(&dw, Duration::from_micros(10))?;
/// timer::resume(); // the clock runs again: the timer fires on its own
/// for _ in 0..10_000 {
///     if !dw.timer_pending() {
///         break;
///     }
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// assert!(!dw.timer_pending() && !timer::is_paused());
/// dw.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn resume() {
    base().resume();
    crate::watchdog::clock_moved();
}

/// Whether the timer clock is paused (see [`pause`]).
pub fn is_paused() -> bool {
    base().is_paused()
}

/// Moves a paused clock forward by `d`, then fires every timer that is due,
/// on the calling thread: when it returns, their items are queued, and the
/// [`watchdog`](crate::watchdog)'s check, if one came due, has run. Returns how
/// many fired, or `None` (and changes nothing) if the clock is not paused.
///
/// **Saturates.** The clock reads at most 2^63 ns (about 292 years) past the
/// moment the process's timers were set up; an advance beyond that, such as
/// `advance(Duration::MAX)` to fire everything, stops there. The rest of the
/// clock's range is kept for the timers armed afterwards, which keep their full
/// delays once the clock runs again. Whatever the input, a timer never fires
/// before its deadline: a delay that reaches past the end of the range
/// (`Duration::MAX`, say) never fires at all. A paused clock that stands at the
/// limit moves no further with `advance`; only [`resume`] moves it on.
///
/// ```
/// use std::time::Duration;
/// use cmwq::{timer, DelayedWork, Workqueue};
///
/// timer::pause();
/// let wq = Workqueue::builder("end-of-time").build()?;
/// let forever = DelayedWork::new(|_| {});
/// wq.queue_delayed(&forever, Duration::MAX)?;
/// assert_eq!(timer::advance(Duration::MAX), Some(0)); // saturated, not wrapped
/// assert!(forever.timer_pending()); // a timer never fires before its deadline
/// forever.cancel();
/// timer::resume();
/// # Ok::<(), cmwq::Error>(())
/// ```
///
/// ```
/// use std::time::Duration;
/// use cmwq::{timer, DelayedWork, Workqueue};
///
/// assert_eq!(timer::advance(Duration::from_secs(1)), None); // the clock runs
/// timer::pause();
/// let wq = Workqueue::builder("retry").build()?;
/// let retry = DelayedWork::new(|_| {});
/// wq.queue_delayed(&retry, Duration::from_secs(5))?;
/// assert_eq!(timer::advance(Duration::from_secs(4)), Some(0));
/// assert_eq!(timer::advance(Duration::from_secs(1)), Some(1)); // 5 s: queued now
/// assert!(!retry.timer_pending());
/// retry.flush()?;
/// timer::resume();
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn advance(d: Duration) -> Option<usize> {
    let fired = base().advance(d);
    if fired.is_some() {
        // The stall watchdog keeps time by this clock too: its due check runs now.
        crate::watchdog::clock_moved();
    }
    fired
}

/// The number of timers armed now, process-wide.
///
/// ```
/// use std::time::Duration;
/// use cmwq::{timer, DelayedWork, Workqueue};
///
/// let wq = Workqueue::builder("count-timers").build()?;
/// let dw = DelayedWork::new(|_| {});
/// wq.queue_delayed(&dw, Duration::from_secs(60))?;
/// assert_eq!(timer::armed(), 1);
/// dw.cancel();
/// assert_eq!(timer::armed(), 0);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn armed() -> usize {
    base().stats().armed
}

/// The number of timers that have fired (been queued) since the process
/// started, `flush()` and `destroy()` firing them early included.
///
/// ```
/// use std::time::Duration;
/// use cmwq::{timer, DelayedWork, Workqueue};
///
/// let wq = Workqueue::builder("fire-early").build()?;
/// let dw = DelayedWork::new(|_| {});
/// wq.queue_delayed(&dw, Duration::from_secs(60))?;
/// dw.flush()?; // fires it now
/// assert_eq!(timer::fired(), 1);
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn fired() -> u64 {
    base().stats().fired
}
