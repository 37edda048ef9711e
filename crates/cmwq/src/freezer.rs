//! The freezer (`CONFIG_FREEZER`): pauses every [`FREEZABLE`](crate::WqFlags::FREEZABLE)
//! workqueue, for example around a checkpoint or a suspend of the application.
//!
//! ```
//! use cmwq::{freezer, Work, Workqueue, WqFlags};
//! let wq = Workqueue::builder("fs-sync").flags(WqFlags::FREEZABLE).build()?;
//! freezer::freeze();
//! let w = Work::new(|_| {});
//! wq.queue(&w)?; // accepted, but waits on the inactive list
//! while freezer::is_busy() { std::thread::yield_now() } // items already running finish
//! assert!(w.is_pending());
//! freezer::thaw(); // resumes the backlog, in order
//! w.flush()?;
//! assert!(!w.is_pending());
//! # Ok::<(), cmwq::Error>(())
//! ```

use crate::registry::Registry;

/// `freeze_workqueues_begin`: freezable workqueues stop activating work. Their
/// effective `max_active` becomes 0, so newly queued items (and items already
/// waiting for `max_active`) stay on the inactive list; items already active still
/// run. Non-freezable workqueues are unaffected. Freezing twice is harmless.
pub fn freeze() {
    Registry::global().set_freezing(true)
}

/// `freeze_workqueues_busy`: whether any freezable workqueue still has active items
/// (running, or activated before the freeze and not yet finished).
pub fn is_busy() -> bool {
    Registry::global().freezable_busy()
}

/// `thaw_workqueues`: restores every freezable workqueue's `max_active` and
/// activates its waiting items in queueing order.
pub fn thaw() {
    Registry::global().set_freezing(false)
}

/// Whether the freezer is frozen now.
pub fn is_frozen() -> bool {
    Registry::global().is_freezing()
}
