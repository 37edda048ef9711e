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
///
/// ```
/// use cmwq::{freezer, Work, Workqueue, WqFlags};
///
/// let frozen = Workqueue::builder("frozen").flags(WqFlags::FREEZABLE).build()?;
/// let plain = Workqueue::builder("plain").build()?;
/// freezer::freeze();
/// assert!(freezer::is_frozen());
/// let (a, b) = (Work::new(|_| {}), Work::new(|_| {}));
/// frozen.queue(&a)?;
/// plain.queue(&b)?;
/// b.flush()?; // a non-freezable queue runs on
/// assert!(a.is_pending()); // a freezable one holds its items
/// freezer::thaw();
/// a.flush()?;
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn freeze() {
    set_freezing(true)
}

/// `freeze_workqueues_busy`: whether any freezable workqueue still has active items
/// (running, or activated before the freeze and not yet finished). Freezing
/// is complete once it returns `false`.
///
/// ```
/// use std::sync::{Arc, Barrier};
/// use cmwq::{freezer, Work, Workqueue, WqFlags};
///
/// let wq = Workqueue::builder("fs-sync").flags(WqFlags::FREEZABLE).build()?;
/// let gate = Arc::new(Barrier::new(2));
/// let g = gate.clone();
/// let w = Work::new(move |_| {
///     g.wait(); // 1: it runs
///     g.wait(); // 2: released
/// });
/// wq.queue(&w)?;
/// gate.wait();
/// freezer::freeze();
/// assert!(freezer::is_busy()); // `w` was active before the freeze
/// gate.wait();
/// w.flush()?;
/// assert!(!freezer::is_busy()); // frozen for good
/// freezer::thaw();
/// # Ok::<(), cmwq::Error>(())
/// ```
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
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cmwq::{freezer, Work, Workqueue, WqFlags};
///
/// let wq = Workqueue::ordered("replay").flags(WqFlags::FREEZABLE).build()?;
/// let log = Arc::new(Mutex::new(Vec::new()));
/// freezer::freeze();
/// let items: Vec<Work> = (0..3)
///     .map(|i| {
///         let log = log.clone();
///         Work::new(move |_| log.lock().unwrap().push(i))
///     })
///     .collect();
/// for w in &items {
///     wq.queue(w)?; // accepted; they wait
/// }
/// freezer::thaw();
/// wq.flush()?;
/// assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
/// assert!(!freezer::is_frozen());
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn thaw() {
    set_freezing(false)
}

/// Whether the freezer is frozen now (between [`freeze`] and [`thaw`]).
///
/// ```
/// use cmwq::freezer;
///
/// assert!(!freezer::is_frozen());
/// freezer::freeze();
/// freezer::freeze(); // twice is harmless
/// assert!(freezer::is_frozen());
/// freezer::thaw();
/// assert!(!freezer::is_frozen());
/// ```
pub fn is_frozen() -> bool {
    registry().ctx.is_freezing()
}
