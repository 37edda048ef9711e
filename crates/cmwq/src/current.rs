//! The calling thread's worker context: which pool it belongs to and which item it
//! runs. Set by the worker loop, read by the hooks, `current_work()` and the
//! deadlock checks.
//!
//! The item is published as a pointer to the worker's own stack frame
//! ([`run_item`]), so publishing costs two plain thread-local stores per item; the
//! one `unsafe` block of this module reads it back.

use std::cell::{Cell, OnceCell, RefCell};
use std::sync::Arc;

use crate::platform::loom::thread_local;
use crate::pool::WorkerShared;
use crate::work::Work;
use crate::workqueue::WqCore;

/// The item a worker executes, published for the duration of the call.
pub(crate) struct Item {
    /// The work item; for a spawned closure, the header that `current_work()`
    /// makes on demand (`work/spawned.rs`), or nothing.
    work: OnceCell<Work>,
    /// Its workqueue, for identity only: the pwq that the worker's `current` names
    /// keeps it alive.
    wq: *const WqCore,
    /// The pool and worker executing it, for a spawned closure's header.
    pool: u32,
    worker: usize,
}

impl Item {
    /// A work item of `wq`, executed by `worker` of `pool`.
    pub(crate) fn work(work: Work, wq: *const WqCore, pool: u32, worker: usize) -> Item {
        Item { work: OnceCell::from(work), wq, pool, worker }
    }

    /// A spawned closure of `wq`: no header until someone asks for one.
    pub(crate) fn spawned(wq: *const WqCore, pool: u32, worker: usize) -> Item {
        Item { work: OnceCell::new(), wq, pool, worker }
    }

    /// The work item, if this is one. Always present for a work item.
    pub(crate) fn get(&self) -> Option<&Work> {
        self.work.get()
    }

    /// The work item, or the header made for a spawned closure, if any.
    pub(crate) fn into_work(self) -> Option<Work> {
        self.work.into_inner()
    }
}

// Two slots: the worker, set once per thread, and the item, set twice per item.
// The item slot is a plain pointer (no destructor, no borrow flag), because it
// changes on the hot path.
#[cfg(not(loom))]
thread_local! {
    static WORKER: RefCell<Option<Arc<WorkerShared>>> = const { RefCell::new(None) };
    static ITEM: Cell<*const Item> = const { Cell::new(std::ptr::null()) };
}
#[cfg(loom)]
thread_local! {
    static WORKER: RefCell<Option<Arc<WorkerShared>>> = RefCell::new(None);
    static ITEM: Cell<*const Item> = Cell::new(std::ptr::null());
}

pub(crate) fn enter_worker(worker: Arc<WorkerShared>) {
    WORKER.with(|c| *c.borrow_mut() = Some(worker));
}

pub(crate) fn leave_worker() {
    WORKER.with(|c| c.borrow_mut().take());
}

/// The worker this thread is, if any.
#[inline]
pub(crate) fn worker() -> Option<Arc<WorkerShared>> {
    WORKER.with(|c| c.borrow().clone())
}

/// Clears the published item when `run_item` ends, unwinding included.
struct Unpublish;

impl Drop for Unpublish {
    #[inline]
    fn drop(&mut self) {
        ITEM.with(|c| c.set(std::ptr::null()));
    }
}

/// Calls `f` with `item` published as the item this thread executes, then hands
/// the item back (with the header a spawned closure may have been given).
#[inline]
pub(crate) fn run_item<R>(item: Item, f: impl FnOnce(&Item) -> R) -> (R, Item) {
    ITEM.with(|c| {
        debug_assert!(c.get().is_null(), "one item at a time per thread");
        c.set(&item);
    });
    let unpublish = Unpublish;
    let r = f(&item);
    // Cleared before `item` moves out of this frame.
    drop(unpublish);
    (r, item)
}

/// `f` of the item this thread executes, if any.
#[inline]
fn with_item<R>(f: impl FnOnce(&Item) -> R) -> Option<R> {
    let p = ITEM.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null `ITEM` was set by `run_item` on this thread and points at
    // its `item` argument, which stays in place until `run_item` clears `ITEM`
    // (before it moves the item out, and on unwinding through the `Unpublish`
    // guard). We run on this thread inside that call, so the item is alive, and it
    // is only ever reached through shared references while published.
    Some(f(unsafe { &*p }))
}

/// The item this thread executes and its workqueue's name. A spawned closure
/// that has not asked for its handle is not an item anyone else can name.
pub(crate) fn current_work_and_wq() -> Option<(Work, String)> {
    let work = with_item(|i| i.get().cloned())??;
    let worker = worker()?;
    let g = worker.pool.lock();
    let pwq = g.workers.get(worker.idx).current?.pwq;
    Some((work, g.pwqs.get(pwq as usize).wq.name.to_string()))
}

/// Whether this thread executes an item of `wq` (the kernel's `is_chained_work`).
pub(crate) fn runs_item_of(wq: &WqCore) -> bool {
    with_item(|i| std::ptr::eq(i.wq, wq)).unwrap_or(false)
}

/// The work item the calling thread is executing (`current_work()`), or `None`
/// outside a work item. Inside a closure from [`Workqueue::spawn`](crate::Workqueue::spawn)
/// it is a handle made for it on the first call: it can be flushed (from another
/// thread) and reports `busy()`, but never queued.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// assert!(cmwq::current_work().is_none()); // not in a work item
/// let found = Arc::new(AtomicBool::new(false));
/// let f = found.clone();
/// let w = cmwq::Work::new(move |me| {
///     f.store(cmwq::current_work().is_some_and(|c| c.ptr_eq(me)), Ordering::Relaxed);
/// });
/// cmwq::schedule_work(&w);
/// w.flush()?;
/// assert!(found.load(Ordering::Relaxed));
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn current_work() -> Option<Work> {
    with_item(|i| i.work.get_or_init(|| Work::spawned_header(i.pool, i.worker)).clone())
}
