//! Rescuers (`WQ_MEM_RECLAIM`): one thread per such workqueue, made when the
//! queue is built, that runs the queue's items on a pool that may not create a
//! worker (the kernel's `init_rescuer`, `rescuer_thread`,
//! `assign_rescuer_work` in `kernel/workqueue.c`). The pool's mayday timer
//! sends it the pwqs to rescue (`mayday.rs`); `pool/README.md`, "Rescuers", has
//! the protocol and why each item runs once.
//!
//! A rescuer exists whatever the thread ceilings say (it is not a worker and
//! is not counted against them), is named `cmwq/R-<name>` (cut to the 15
//! bytes Linux keeps of a thread name, at a character boundary), runs at nice
//! −20 where permitted (`RESCUER_NICE_LEVEL`), and is gone when its queue is:
//! [`Workqueue::destroy`](crate::Workqueue::destroy) waits for its thread to
//! end; dropping the queue's last handle lets it end once the queue's last item
//! has run, without waiting for it.
//!
//! Its loop (`rescuer_thread`): take the first pwq off the mayday list; attach
//! to its pool (a slot in the pool's worker table, flagged `WORKER_PREP` for
//! good, so it never counts in `nr_running`, as the kernel's rescuer; and the
//! pool's CPUs as its affinity); while the pool still needs a worker and the
//! pwq has active items, take the pwq's next item off the worklist and run it
//! (the collision rule of `assign_work` included), then the items collisions
//! gave it; after `RESCUER_BATCH` items, if other pwqs wait for it, put this
//! one back at the tail and move on; detach, kick the pool (its regular
//! workers may have work again), and look at the list again. It parks while the
//! list is empty.
//!
//! **The cursor.** The kernel keeps a dummy entry in the worklist after the
//! last rescued item, so that each turn resumes there instead of rescanning
//! the list. Here each turn takes the pwq's first item still on the worklist:
//! entries are only appended at the tail, and every entry of the pwq before
//! the resume point was taken (or handed to the worker running it), so it is
//! the item the cursor would find. The prefix of other pwqs' items is scanned
//! again instead (a few µs for thousands of entries, on a rare path), and no
//! walker of the worklist has to skip a dummy entry.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use super::cm::WorkerShared;
use super::policy::kick_pool;
use super::worker::{self, Deferred};
use super::worker_pool::{PoolLocked, WorkerPool, WorkerSlot, WORKER_PREP};
use crate::platform::bug::AbortOnPanic;
use crate::platform::loom::{thread, thread_local, Condvar, Mutex};
use crate::pwq::{Entry, PwqRef, PwqState};

/// `RESCUER_BATCH`: items of one pwq per turn, when other pwqs wait.
pub(crate) const RESCUER_BATCH: usize = 16;
/// Rescuer threads are named this and their workqueue's name (`cmwq/R-io`).
pub(crate) const RESCUER_THREAD_PREFIX: &str = "cmwq/R-";
/// `RESCUER_NICE_LEVEL` (`MIN_NICE`): rescue is an emergency.
#[cfg(not(loom))]
const RESCUER_NICE: i32 = -20;
/// Linux keeps 15 bytes of a thread name (`TASK_COMM_LEN` − 1).
const THREAD_NAME_MAX: usize = 15;

/// What the rescuer's thread and the pools that send it maydays share.
struct Shared {
    /// I: its workqueue's name, for logs.
    wq_name: Box<str>,
    /// The mayday list and the stop request. A leaf lock, taken under a pool
    /// lock (`send`), as the kernel's `wq_mayday_lock`.
    state: Mutex<State>,
    /// Signalled when the thread has left its loop (`stop`).
    exited_cv: Condvar,
    /// I once set: the thread, for `unpark` (set before the queue is built).
    thread: OnceLock<thread::Thread>,
}

#[derive(Default)]
struct State {
    /// `wq->maydays`: pwqs to rescue, each at most once.
    maydays: VecDeque<PwqRef>,
    /// The queue is going: leave once the list is empty.
    stop: bool,
    /// The thread has left its loop.
    exited: bool,
}

/// A `MEM_RECLAIM` workqueue's rescuer (`wq->rescuer`), held by its `WqCore`.
/// Dropping it (with the queue) tells the thread to end, without waiting.
pub(crate) struct Rescuer {
    shared: Arc<Shared>,
    #[cfg(not(loom))]
    join: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Rescuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rescuer").field("wq", &self.shared.wq_name).finish_non_exhaustive()
    }
}

// Set for good in a rescuer thread.
#[cfg(not(loom))]
thread_local! {
    static IS_RESCUER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
#[cfg(loom)]
thread_local! {
    static IS_RESCUER: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// Whether the calling thread is a rescuer (`current_is_workqueue_rescuer`):
/// a `MEM_RECLAIM` queue's thread that runs its items when their pool may not
/// create a worker. Items run by a rescuer see `true`; anywhere else, `false`.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use cmwq::{Work, Workqueue, WqFlags};
///
/// assert!(!cmwq::current_is_workqueue_rescuer());
/// let wq = Workqueue::builder("reclaim").flags(WqFlags::MEM_RECLAIM).build()?;
/// let seen = Arc::new(AtomicBool::new(true));
/// let s = seen.clone();
/// let w = Work::new(move |_| s.store(cmwq::current_is_workqueue_rescuer(), Ordering::Relaxed));
/// wq.queue(&w)?;
/// w.flush()?;
/// assert!(!seen.load(Ordering::Relaxed)); // workers could be created: a regular worker ran it
/// # Ok::<(), cmwq::Error>(())
/// ```
pub fn current_is_workqueue_rescuer() -> bool {
    IS_RESCUER.with(|c| c.get())
}

/// `cmwq/R-` and as much of `wq_name` as fits in 15 bytes.
fn thread_name(wq_name: &str) -> String {
    let mut name = String::from(RESCUER_THREAD_PREFIX);
    for c in wq_name.chars() {
        if name.len() + c.len_utf8() > THREAD_NAME_MAX {
            break;
        }
        name.push(c);
    }
    name
}

impl Rescuer {
    /// `init_rescuer`: starts the thread of `wq_name`'s rescuer. It parks until
    /// a mayday comes. Not counted against the thread ceilings.
    pub(crate) fn start(wq_name: &str) -> std::io::Result<Rescuer> {
        let shared = Arc::new(Shared {
            wq_name: wq_name.into(),
            state: Mutex::new(State::default()),
            exited_cv: Condvar::new(),
            thread: OnceLock::new(),
        });
        let me = shared.clone();
        #[cfg(not(loom))]
        {
            let h =
                std::thread::Builder::new().name(thread_name(wq_name)).spawn(move || rescuer_thread(me))?;
            let _ = shared.thread.set(h.thread().clone());
            Ok(Rescuer { shared, join: parking_lot::Mutex::new(Some(h)) })
        }
        #[cfg(loom)]
        {
            let t = thread::spawn_named(thread_name(wq_name), move || rescuer_thread(me))?;
            let _ = shared.thread.set(t);
            Ok(Rescuer { shared })
        }
    }

    /// Puts `r` on the mayday list unless it is there already, and wakes the
    /// thread. Returns whether it was added. Called under `r`'s pool lock.
    pub(crate) fn send(&self, r: PwqRef) -> bool {
        let mut st = self.shared.state.lock();
        if st.stop || st.maydays.iter().any(|m| m.same(&r)) {
            return false;
        }
        st.maydays.push_back(r);
        drop(st);
        self.shared.wake();
        true
    }

    /// Tells the thread to end once its mayday list is empty; with `wait`,
    /// waits until it has (and joins it). The queue is drained by then, so the
    /// list is empty or holds pwqs with nothing left to rescue.
    pub(crate) fn stop(&self, wait: bool) {
        self.shared.state.lock().stop = true;
        self.shared.wake();
        if !wait || current_is_workqueue_rescuer() {
            return;
        }
        let mut st = self.shared.state.lock();
        while !st.exited {
            st = self.shared.exited_cv.wait(st);
        }
        drop(st);
        #[cfg(not(loom))]
        if let Some(h) = self.join.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for Rescuer {
    fn drop(&mut self) {
        self.stop(false);
    }
}

impl Shared {
    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// The pwq `r` names, if it is still one of this rescuer's queue (a slot
    /// freed and reused is told apart by its queue and epoch).
    fn pwq<'a>(self: &Arc<Self>, g: &'a mut PoolLocked, r: &PwqRef) -> Option<&'a mut PwqState> {
        g.pwqs.try_get_mut(r.slot as usize).filter(|p| {
            p.epoch == r.epoch && p.wq.rescuer.as_ref().is_some_and(|x| Arc::ptr_eq(&x.shared, self))
        })
    }
}

/// Parks until a `send` or a `stop` (a token left by an earlier unpark makes
/// it return at once, so a wake-up between the look at the list and the park
/// is not lost).
fn park() {
    #[cfg(not(loom))]
    std::thread::park();
    #[cfg(loom)]
    thread::park_timeout(std::time::Duration::ZERO);
}

/// `rescuer_thread`.
fn rescuer_thread(me: Arc<Shared>) {
    let _abort = AbortOnPanic;
    IS_RESCUER.with(|c| c.set(true));
    #[cfg(not(loom))]
    let _ = crate::platform::sys::set_current_thread_nice(RESCUER_NICE);
    loop {
        let next = {
            let mut st = me.state.lock();
            let next = st.maydays.pop_front();
            if next.is_none() && st.stop {
                break;
            }
            next
        };
        match next {
            Some(r) => rescue(&me, r),
            None => park(),
        }
    }
    me.state.lock().exited = true;
    me.exited_cv.notify_all();
}

/// One turn on pwq `r`: attach to its pool, run its items while the pool
/// needs a worker (at most `RESCUER_BATCH` when other pwqs wait), detach.
fn rescue(me: &Arc<Shared>, r: PwqRef) {
    let pool = r.pool;
    // `worker_attach_to_pool`: the pool's CPUs (a per-CPU pool's one CPU).
    #[cfg(not(loom))]
    if pool.ctx.topo.real {
        let _ = crate::platform::sys::set_current_thread_affinity(&pool.affinity);
    }
    let mut g = pool.lock();
    if me.pwq(&mut g, &r).is_none() {
        return;
    }
    let idx = g.workers.next_index();
    let shared = Arc::new(WorkerShared::new(pool, idx));
    // Never cleared: the rescuer never counts in `nr_running`.
    let inserted = g.workers.insert(WorkerSlot::new(shared.clone(), WORKER_PREP, false, 0));
    debug_assert_eq!(inserted, idx);
    crate::current::enter_worker(shared);
    crate::platform::loom::ltrace!("R: attached to pool {} as {idx}", pool.id);
    let mut d = Deferred::default();
    let mut count = 0;
    while let Some(e) = assign_rescuer_work(me, pool, &mut g, &r, idx) {
        g = worker::process_one_work(pool, g, idx, e, &mut d);
        g = worker::process_scheduled_works(pool, g, idx, &mut d);
        count += 1;
        // Other pwqs wait: this one goes back to the tail if it still needs us.
        if count >= RESCUER_BATCH
            && me.pwq(&mut g, &r).is_some_and(|p| p.nr_active > 0)
            && g.need_to_create_worker(pool)
        {
            let mut st = me.state.lock();
            if !st.maydays.is_empty() {
                if !st.maydays.iter().any(|m| m.same(&r)) {
                    st.maydays.push_back(r);
                }
                break;
            }
        }
    }
    // `worker_detach_from_pool`, then wake a regular worker: the items run
    // here may have queued or activated more.
    debug_assert!(g.workers.get(idx).scheduled.is_empty());
    g.workers.remove(idx);
    kick_pool(pool, &mut g);
    drop(g);
    d.release();
    crate::current::leave_worker();
    crate::platform::loom::ltrace!("R: detached from pool {}", pool.id);
}

/// `assign_rescuer_work`: the pwq's next item, if the pool still needs a
/// worker and the pwq has active items. An item that another worker of the
/// pool executes goes behind it there (`assign_work`), and the next one is
/// tried. Counts `WqStats::rescued`.
fn assign_rescuer_work(
    me: &Arc<Shared>,
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    r: &PwqRef,
    idx: usize,
) -> Option<Entry> {
    loop {
        let active = me.pwq(g, r)?.nr_active;
        if active == 0 || !g.need_to_create_worker(pool) {
            return None;
        }
        let i = g.worklist.iter().position(|e| e.pwq == r.slot)?;
        let e = g.worklist.remove(i).expect("position is in the list");
        pool.note_queued(g);
        if g.worklist.is_empty() {
            pool.saturation_over();
        }
        // The mutant takes the item without the collision check: the item may
        // then run on two threads at once (`.ci/run` checks the model sees it).
        #[cfg(not(cmwq_loom_mutant))]
        let got = worker::assign_work(pool, g, e, idx);
        #[cfg(cmwq_loom_mutant)]
        let got = {
            let _ = idx;
            Some(e)
        };
        if let Some(e) = got {
            g.pwqs.get_mut(r.slot as usize).stats.rescued += 1;
            crate::platform::loom::ltrace!("R: rescued an item of {}", me.wq_name);
            return Some(e);
        }
    }
}
