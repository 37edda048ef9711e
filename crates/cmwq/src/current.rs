//! The calling thread's worker context: which pool it belongs to and which item it
//! runs. Set by the worker loop, read by the hooks, `current_work()` and the
//! deadlock checks.

use std::cell::RefCell;
use std::sync::Arc;

use crate::loom::thread_local;
use crate::pool::WorkerShared;
use crate::work::Work;
use crate::workqueue::WqCore;

pub(crate) struct Current {
    pub(crate) worker: Arc<WorkerShared>,
    /// The item being executed, and its workqueue (for identity only: the pwq that
    /// the worker's `current` names keeps it alive).
    pub(crate) running: Option<(Work, *const WqCore)>,
}

#[cfg(not(loom))]
thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}
#[cfg(loom)]
thread_local! {
    static CURRENT: RefCell<Option<Current>> = RefCell::new(None);
}

pub(crate) fn enter_worker(worker: Arc<WorkerShared>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(Current { worker, running: None }));
}

pub(crate) fn leave_worker() {
    CURRENT.with(|c| c.borrow_mut().take());
}

/// The worker this thread is, if any.
#[inline]
pub(crate) fn worker() -> Option<Arc<WorkerShared>> {
    CURRENT.with(|c| c.borrow().as_ref().map(|c| c.worker.clone()))
}

/// Publishes the item this worker is about to execute (`Some`) or has finished
/// (`None`); returns what was there.
pub(crate) fn set_running(running: Option<(Work, *const WqCore)>) -> Option<(Work, *const WqCore)> {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(cur) => std::mem::replace(&mut cur.running, running),
        None => running,
    })
}

/// Runs the published item. The shared borrow held across the callback only
/// conflicts with `set_running`, which the worker loop calls outside callbacks.
pub(crate) fn run_current() {
    CURRENT.with(|c| {
        let cur = c.borrow();
        let (work, _) = cur.as_ref().and_then(|c| c.running.as_ref()).expect("an item is published");
        work.run()
    })
}

/// The item this thread executes and its workqueue's name.
pub(crate) fn current_work_and_wq() -> Option<(Work, String)> {
    let (work, worker) = CURRENT.with(|c| {
        let c = c.borrow();
        let c = c.as_ref()?;
        Some((c.running.as_ref()?.0.clone(), c.worker.clone()))
    })?;
    let g = worker.pool.lock();
    let pwq = g.workers.get(worker.idx).current?.pwq;
    Some((work, g.pwqs.get(pwq as usize).wq.name.to_string()))
}

/// Whether this thread executes an item of `wq` (the kernel's `is_chained_work`).
pub(crate) fn runs_item_of(wq: &WqCore) -> bool {
    CURRENT.with(|c| {
        c.borrow().as_ref().and_then(|c| c.running.as_ref()).is_some_and(|&(_, cur)| std::ptr::eq(cur, wq))
    })
}

/// The work item the calling thread is executing (`current_work()`), or `None`
/// outside a work item.
pub fn current_work() -> Option<Work> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|c| c.running.as_ref()).map(|(w, _)| w.clone()))
}
