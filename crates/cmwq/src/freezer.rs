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
//!
//! Like the kernel's, it walks the list of all workqueues (`workqueues`) and acts
//! on the freezable ones; the list's lock also serialises freeze and thaw.

use std::sync::Weak;

use crate::global::registry;
use crate::workqueue::WqFlags;

/// `freeze_workqueues_begin` / `thaw_workqueues`: sets the freezing state and
/// re-applies every freezable queue's effective `max_active`, under its flush
/// lock (`Context::freezing` says why that orders it).
fn set_freezing(on: bool) {
    let reg = registry();
    let list = reg.workqueues();
    reg.ctx.set_freezing(on);
    for wq in list.iter() {
        let Some(wq) = Weak::upgrade(wq).filter(|wq| wq.flags.contains(WqFlags::FREEZABLE)) else { continue };
        let _fg = wq.flush.lock();
        wq.adjust_max_active();
    }
}

/// `freeze_workqueues_begin`: freezable workqueues stop activating work. Their
/// effective `max_active` becomes 0, so newly queued items (and items already
/// waiting for `max_active`) stay on the inactive list; items already active still
/// run. Non-freezable workqueues are unaffected. Freezing twice is harmless.
pub fn freeze() {
    set_freezing(true)
}

/// `freeze_workqueues_busy`: whether any freezable workqueue still has active items
/// (running, or activated before the freeze and not yet finished).
pub fn is_busy() -> bool {
    let list = registry().workqueues();
    let busy = list
        .iter()
        .filter_map(Weak::upgrade)
        .any(|wq| wq.flags.contains(WqFlags::FREEZABLE) && wq.has_active());
    busy
}

/// `thaw_workqueues`: restores every freezable workqueue's `max_active` and
/// activates its waiting items in queueing order.
pub fn thaw() {
    set_freezing(false)
}

/// Whether the freezer is frozen now.
pub fn is_frozen() -> bool {
    registry().ctx.is_freezing()
}
