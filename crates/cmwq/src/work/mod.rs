//! Work items: reusable, cloneable handles with the kernel's PENDING rules.

mod delayed;
mod spawned;

pub use delayed::DelayedWork;
pub(crate) use spawned::Spawned;

pub(crate) use crate::context::work_state::{Claim, Snapshot, WorkState, DISABLE_MAX, POOL_NONE};

use std::fmt;
use std::sync::Arc;

use crate::platform::bug::abort_on_bug;
use crate::platform::error::{Error, ErrorKind};
use crate::platform::log;
use crate::platform::loom::{fence, ltrace, AtomicU32, AtomicU64, AtomicU8, Condvar, Mutex, Ordering};
use crate::platform::timer::TimerSlot;
use crate::workqueue::Armed;

/// The callable part of a work item.
pub(crate) trait WorkFn: Send + Sync + 'static {
    fn call(&self, work: &Work);

    /// The timer of a delayed item; `None` for plain items.
    fn timer(&self) -> Option<&TimerSlot<Armed>> {
        None
    }
}

struct Reusable<F>(F);

impl<F: Fn(&Work) + Send + Sync + 'static> WorkFn for Reusable<F> {
    #[inline]
    fn call(&self, work: &Work) {
        (self.0)(work)
    }
}

/// The header of a spawned closure (`spawned.rs`), made when the closure asks for
/// [`current_work`](crate::current_work). The closure runs outside it, so there is
/// nothing to call.
struct SpawnedHeader;

impl WorkFn for SpawnedHeader {
    fn call(&self, _work: &Work) {
        abort_on_bug("the header of a spawned closure was executed");
    }
}

/// Per-instance sequence numbers behind `flush()` (see `pool/README.md`, "Flushing a
/// work item"). Instance `n` is the `n`-th successful queueing.
///
/// Orderings: `queued` is published with Release and read with Acquire. The rest
/// are `SeqCst` because they form two Dekker pairs, each a store (or RMW), a
/// `SeqCst` fence and a load on both sides, so that at least one side sees the
/// other's store: `seq_finish` (stores `resolved`, loads `cancelled`) against
/// `seq_cancel` (stores `cancelled`, loads `started` and `resolved`), and the
/// wake-up in `wake_flushers` (after `resolved`, loads `flushers`) against
/// `wait_resolved` (stores `flushers`, loads `resolved`).
pub(crate) struct Seqs {
    /// Last instance queued; written by the `PENDING` owner under the pool lock.
    queued: AtomicU64,
    /// Last instance that started executing; written under the pool lock.
    started: AtomicU64,
    /// Highest instance cancelled while pending.
    cancelled: AtomicU64,
    /// Every instance up to here has finished or was cancelled. Flushers wait on it.
    resolved: AtomicU64,
    /// Threads in `flush()`; the completion path takes `lock` only when non-zero.
    flushers: AtomicU32,
    lock: Mutex<()>,
    cv: Condvar,
}

/// `running` when no worker executes the item.
const NOT_RUNNING: u64 = u64::MAX;

pub(crate) struct WorkInner<F: ?Sized> {
    pub(crate) state: WorkState,
    /// `pool id << 32 | worker index` of the worker executing the item, written under
    /// that pool's lock (the kernel's `busy_hash`, kept in the item itself).
    running: AtomicU64,
    pub(crate) seqs: Seqs,
    /// The misuse warnings this item has given already ([`WARNED_OVERFLOW`],
    /// [`WARNED_UNDERFLOW`]): each is logged once per item, not once per call.
    warned: AtomicU8,
    func: F,
}

/// [`WorkInner::warned`]: the disable depth overflowed.
const WARNED_OVERFLOW: u8 = 1 << 0;
/// [`WorkInner::warned`]: `enable()` on an item that was not disabled.
const WARNED_UNDERFLOW: u8 = 1 << 1;

/// A work item: a reusable, cloneable handle (`INIT_WORK`).
///
/// The closure receives the handle itself, so it can requeue itself. An item is
/// *pending* from a successful `queue()` until a worker takes it off the list, just
/// before the closure runs; so it can be queued again while it runs, and then runs
/// again after the current execution, on the same worker. It never runs concurrently
/// with itself while it stays on one workqueue (the kernel's non-reentrance
/// conditions).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let hits = Arc::new(AtomicUsize::new(0));
/// let h = hits.clone();
/// let work = cmwq::Work::new(move |_w| {
///     h.fetch_add(1, Ordering::Relaxed);
/// });
/// let wq = cmwq::Workqueue::builder("example").build().unwrap();
/// assert!(wq.queue(&work).unwrap());
/// work.flush().unwrap();
/// assert_eq!(hits.load(Ordering::Relaxed), 1);
/// ```
#[derive(Clone)]
pub struct Work(pub(crate) Arc<WorkInner<dyn WorkFn>>);

fn inner<F: WorkFn>(func: F) -> Arc<WorkInner<dyn WorkFn>> {
    Arc::new(WorkInner {
        state: WorkState::new(),
        running: AtomicU64::new(NOT_RUNNING),
        seqs: Seqs {
            queued: AtomicU64::new(0),
            started: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            flushers: AtomicU32::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        },
        warned: AtomicU8::new(0),
        func,
    })
}

/// Whether a work item is pending or running; see [`Work::busy`] (`work_busy`).
///
/// ```
/// let w = cmwq::Work::new(|_| {});
/// let cmwq::Busy { pending, running } = w.busy();
/// assert!(!pending && !running); // a new item is idle
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Busy {
    /// Queued, or claimed by a queuer (`WORK_BUSY_PENDING`).
    pub pending: bool,
    /// A worker is executing it (`WORK_BUSY_RUNNING`).
    pub running: bool,
}

/// How `grab_pending` got hold of `PENDING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grab {
    /// The item was idle; `PENDING` is now ours.
    Idle,
    /// The item was queued; it has been taken off its list and `PENDING` is ours.
    Stolen,
}

impl Work {
    /// Creates a work item that runs `f` each time it is executed (`INIT_WORK`).
    ///
    /// The closure runs on worker threads, so it must be `Send + Sync`:
    ///
    /// ```compile_fail
    /// let rc = std::rc::Rc::new(1);
    /// let _w = cmwq::Work::new(move |_| println!("{rc}"));
    /// ```
    ///
    /// ```compile_fail
    /// let cell = std::cell::Cell::new(1); // Send but not Sync
    /// let _w = cmwq::Work::new(move |_| cell.set(2));
    /// ```
    pub fn new<F>(f: F) -> Work
    where
        F: Fn(&Work) + Send + Sync + 'static,
    {
        Work(inner(Reusable(f)))
    }

    /// The header of a spawned closure that worker `worker` of pool `pool` is
    /// executing, for [`current_work`](crate::current_work) (`spawned.rs`). It is
    /// what a work item is while it runs its only instance: instance 1 started and
    /// not resolved until the worker calls `seq_finish(1)`; retired, so it can
    /// never be queued. Not shared yet, so the busy record needs no lock.
    pub(crate) fn spawned_header(pool: u32, worker: usize) -> Work {
        let w = Work(inner(SpawnedHeader));
        w.state().retire(pool);
        w.0.seqs.queued.store(1, Ordering::Relaxed);
        w.0.seqs.started.store(1, Ordering::Relaxed);
        w.set_running_on(pool, worker);
        w
    }

    /// Whether this item has not given warning `bit` yet; marks it given.
    #[cold]
    fn warn_first(&self, bit: u8) -> bool {
        // Relaxed: only decides whether to log; the RMW makes exactly one caller
        // see the bit clear.
        self.0.warned.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Whether this is the item's only handle: then nobody else can queue,
    /// flush or cancel it, and dropping it drops the closure.
    #[inline]
    pub(crate) fn is_last_handle(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }

    #[inline]
    pub(crate) fn state(&self) -> &WorkState {
        &self.0.state
    }

    /// The timer of a delayed item.
    #[inline]
    pub(crate) fn timer(&self) -> Option<&TimerSlot<Armed>> {
        self.0.func.timer()
    }

    /// The item's id in [events](crate::debug#events) and [dumps](crate::debug::dump):
    /// its address, as the kernel's tracepoints record `work struct %p`. The
    /// same for every handle of the item, and unique among live items.
    ///
    /// ```
    /// let w = cmwq::Work::new(|_| {});
    /// assert_eq!(w.id(), w.clone().id());
    /// assert_ne!(w.id(), cmwq::Work::new(|_| {}).id());
    /// ```
    pub fn id(&self) -> usize {
        self.key()
    }

    /// Identity of the item (the kernel keys its busy hash by address).
    #[inline]
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }

    /// Starts loading the item's header into the cache (`sys::prefetch`).
    #[inline]
    pub(crate) fn prefetch(&self) {
        crate::platform::sys::prefetch(Arc::as_ptr(&self.0));
    }

    #[inline]
    pub(crate) fn run(&self) {
        self.0.func.call(self)
    }

    /// Whether both handles name the same work item.
    ///
    /// ```
    /// let a = cmwq::Work::new(|_| {});
    /// assert!(a.ptr_eq(&a.clone())); // clones are handles to one item
    /// assert!(!a.ptr_eq(&cmwq::Work::new(|_| {})));
    /// ```
    pub fn ptr_eq(&self, other: &Work) -> bool {
        self.key() == other.key()
    }

    /// Whether the item is pending: queued and not yet started (`work_pending`).
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::ordered("pending-demo").build()?;
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let first = Work::new(move |_| { g.wait(); });
    /// let second = Work::new(|_| {});
    /// assert!(!second.is_pending());
    /// wq.queue(&first)?;
    /// wq.queue(&second)?;
    /// assert!(second.is_pending()); // queued behind `first`
    /// gate.wait();
    /// second.flush()?;
    /// assert!(!second.is_pending()); // it started (and finished)
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn is_pending(&self) -> bool {
        self.state().load().pending()
    }

    /// Pending and running state (`work_busy`); advisory, as in the kernel.
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{Busy, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("busy-demo").build()?;
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let w = Work::new(move |_| {
    ///     g.wait(); // 1: we know it runs
    ///     g.wait(); // 2: we have looked
    /// });
    /// assert_eq!(w.busy(), Busy::default()); // idle
    /// wq.queue(&w)?;
    /// gate.wait();
    /// assert_eq!(w.busy(), Busy { pending: false, running: true });
    /// wq.queue(&w)?; // queued again while it runs
    /// assert_eq!(w.busy(), Busy { pending: true, running: true });
    /// gate.wait(); // 2: the first run ends
    /// gate.wait(); // 1 and 2 of the second run
    /// gate.wait();
    /// w.flush()?;
    /// assert_eq!(w.busy(), Busy::default());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn busy(&self) -> Busy {
        let s = self.state().load();
        Busy { pending: s.pending(), running: self.running_on(s.pool_id()).is_some() }
    }

    // ---- which worker executes it ----

    /// Records the executing worker. Caller holds `pool`'s lock.
    #[inline]
    pub(crate) fn set_running_on(&self, pool: u32, worker: usize) {
        self.0.running.store((pool as u64) << 32 | worker as u64, Ordering::Relaxed);
    }

    /// Clears the record if it is still this worker's. Caller holds `pool`'s lock.
    #[inline]
    pub(crate) fn clear_running_on(&self, pool: u32, worker: usize) {
        let me = (pool as u64) << 32 | worker as u64;
        let _ = self.0.running.compare_exchange(me, NOT_RUNNING, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The worker of `pool` executing the item. Exact under `pool`'s lock, advisory otherwise.
    #[inline]
    pub(crate) fn running_on(&self, pool: u32) -> Option<usize> {
        let v = self.0.running.load(Ordering::Relaxed);
        (v != NOT_RUNNING && (v >> 32) as u32 == pool).then_some((v & 0xFFFF_FFFF) as usize)
    }

    // ---- sequence bookkeeping (see `Seqs`) ----

    /// The `PENDING` owner links the item: a new instance. Caller holds the pool lock.
    #[inline]
    pub(crate) fn seq_queue(&self) {
        let s = &self.0.seqs;
        // Relaxed load: only the `PENDING` owner writes `queued`, under the pool lock.
        // Release: pairs with the Acquire loads of `queued` in `wait_resolved` and
        // `seq_cancel`: who sees instance n sees the queueing that made it.
        s.queued.store(s.queued.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Dequeued for execution. Caller holds the pool lock and `PENDING`. Returns the instance.
    #[inline]
    pub(crate) fn seq_start(&self) -> u64 {
        let s = &self.0.seqs;
        // Relaxed: written under the pool lock we hold.
        let n = s.queued.load(Ordering::Relaxed);
        // SeqCst: read by `seq_cancel` in its Dekker pair with `seq_finish` (`Seqs`).
        s.started.store(n, Ordering::SeqCst);
        n
    }

    /// Instance `n` finished executing.
    #[inline]
    pub(crate) fn seq_finish(&self, n: u64) {
        let s = &self.0.seqs;
        ltrace!("finish {:#x} seq={n}", self.key());
        // Dekker pair with `seq_cancel` (`Seqs`): store, SeqCst fence, load on both
        // sides, so at least one of the two sees the other's store.
        s.resolved.fetch_max(n, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let c = s.cancelled.load(Ordering::SeqCst);
        if c > n {
            // SeqCst: still the store side of the pair with `wait_resolved`.
            s.resolved.fetch_max(c, Ordering::SeqCst);
        }
        self.wake_flushers();
    }

    /// The pending instance was stolen off its list and will never run.
    pub(crate) fn seq_cancel(&self) {
        let s = &self.0.seqs;
        // Acquire: pairs with the Release in `seq_queue`.
        let n = s.queued.load(Ordering::Acquire);
        // The other side of the Dekker pair with `seq_finish` (`Seqs`).
        s.cancelled.fetch_max(n, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // If no instance is running, everything up to `n` is resolved now; otherwise
        // the running instance's `seq_finish` folds `n` in.
        if s.started.load(Ordering::SeqCst) <= s.resolved.load(Ordering::SeqCst) {
            s.resolved.fetch_max(n, Ordering::SeqCst);
        }
        self.wake_flushers();
    }

    #[inline]
    fn wake_flushers(&self) {
        let s = &self.0.seqs;
        // Dekker pair with `wait_resolved` (`Seqs`): our caller stored `resolved`;
        // the waiter stored `flushers`. The fences make one of us see the other.
        fence(Ordering::SeqCst);
        if s.flushers.load(Ordering::SeqCst) != 0 {
            let _g = s.lock.lock();
            s.cv.notify_all();
        }
    }

    /// Waits until every instance queued so far has finished or been cancelled.
    /// Returns whether there was anything to wait for.
    fn wait_resolved(&self) -> bool {
        let s = &self.0.seqs;
        // Acquire: pairs with the Release in `seq_queue`.
        let target = s.queued.load(Ordering::Acquire);
        // SeqCst, here and below: the waiter's side of the Dekker pair with
        // `wake_flushers` (`Seqs`).
        if s.resolved.load(Ordering::SeqCst) >= target {
            return false;
        }
        ltrace!("flush {:#x}: wait target={target}", self.key());
        crate::pool::blocking_until(None, || {
            s.flushers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let mut g = s.lock.lock();
            while s.resolved.load(Ordering::SeqCst) < target {
                g = s.cv.wait(g);
            }
            drop(g);
            // SeqCst: the count the completer's side of the pair loads.
            s.flushers.fetch_sub(1, Ordering::SeqCst);
        });
        true
    }

    // ---- PENDING ownership ----

    /// `work_grab_pending`: gets `PENDING`, stealing the item off its list if queued,
    /// or deleting its timer if armed. Retries while another thread holds `PENDING`
    /// in transit (between its claim and linking the item or arming its timer), a
    /// window of a few instructions plus one lock acquisition.
    pub(crate) fn grab_pending(&self) -> Grab {
        let mut round = 0u32;
        loop {
            let prev = self.state().test_and_set_pending();
            if !prev.pending() {
                return Grab::Idle;
            }
            if prev.queued() && crate::pool::steal(self, prev) {
                self.seq_cancel();
                return Grab::Stolen;
            }
            if !prev.queued() {
                if let Some(armed) = self.timer().and_then(TimerSlot::steal) {
                    // The timer owned PENDING; its instance was never queued, so
                    // there is no sequence number to cancel.
                    drop(armed);
                    return Grab::Stolen;
                }
            }
            crate::platform::loom::thread::spin_wait(round);
            round = round.saturating_add(1);
        }
    }

    /// Cancels a pending instance (`cancel_work`); does not wait for a running one.
    /// Returns whether the item was pending.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::ordered("cancel-demo").build()?;
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let first = Work::new(move |_| { g.wait(); });
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// let second = Work::new(move |_| r.store(true, Ordering::Relaxed));
    /// wq.queue(&first)?;
    /// wq.queue(&second)?; // pending behind `first`
    /// assert!(second.cancel()); // taken off the queue
    /// assert!(!second.is_pending());
    /// assert!(!second.cancel()); // nothing left to cancel
    /// gate.wait();
    /// wq.flush()?;
    /// assert!(!ran.load(Ordering::Relaxed)); // the cancelled instance never ran
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let g = self.grab_pending();
        let depth = self.state().load().disable_depth();
        self.state().release_pending(depth);
        g == Grab::Stolen
    }

    /// Cancels a pending instance and waits for a running one (`cancel_work_sync`).
    ///
    /// Works even if the item requeues itself: it is disabled while the running
    /// instance finishes, so requeue attempts fail. On return the item is neither
    /// pending nor running, unless someone queued it again after the call returned.
    /// As in the kernel, this holds for an item used on one workqueue: if instances
    /// queued on two workqueues run at once, it waits for the newest one only.
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("poller").build()?;
    /// let q = wq.clone();
    /// let poll = Work::new(move |w| {
    ///     let _ = q.queue(w); // requeues itself for ever
    /// });
    /// wq.queue(&poll)?;
    /// poll.cancel_sync()?; // stops it, even though it requeues itself
    /// assert!(!poll.busy().pending && !poll.busy().running);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// From its own callback it would wait for itself:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use cmwq::{ErrorKind, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("selfish").build()?;
    /// let seen = Arc::new(Mutex::new(None));
    /// let s = seen.clone();
    /// let w = Work::new(move |w| *s.lock().unwrap() = w.cancel_sync().err());
    /// wq.queue(&w)?;
    /// w.flush()?;
    /// let err = seen.lock().unwrap().take().expect("cancel_sync() from the callback fails");
    /// assert!(matches!(err.kind(), ErrorKind::WouldDeadlock(_)));
    /// assert_eq!(err.workqueue(), "selfish");
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from the item's own callback.
    pub fn cancel_sync(&self) -> Result<bool, Error> {
        self.check_not_self("cancel_sync() of a work item from its own callback")?;
        let was_pending = self.disable();
        self.wait_resolved();
        self.enable();
        Ok(was_pending)
    }

    /// Waits for the last queued instance to finish executing (`flush_work`).
    /// Returns whether it had to wait.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("flush-demo").build()?;
    /// let done = Arc::new(AtomicBool::new(false));
    /// let d = done.clone();
    /// let w = Work::new(move |_| d.store(true, Ordering::Relaxed));
    /// assert!(!w.flush()?); // never queued: nothing to wait for
    /// wq.queue(&w)?;
    /// w.flush()?; // returns once that instance has run
    /// assert!(done.load(Ordering::Relaxed));
    /// assert!(!w.flush()?); // already finished
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from the item's own callback, or from
    /// an item of a workqueue with `max_active == 1` (ordered ones included) while this
    /// item is queued behind it on the same queue, or from a
    /// [`BH`](crate::WqFlags::BH) item while this item is queued on the same BH
    /// context (the CPU's one context runs it only after the caller).
    pub fn flush(&self) -> Result<bool, Error> {
        self.check_not_self("flush() of a work item from its own callback")?;
        let s = self.state().load();
        // `check_flush_dependency` (`start_flush_work`): from an item, with the
        // queue of the instance waited for (queued, or running on its last pool).
        if crate::current::worker().is_some() {
            if let Some(wq) = crate::pool::flushed_wq(self, s) {
                wq.check_flush_dependency();
            }
        }
        if s.queued() {
            if let Some((wq, why)) = crate::pool::blocked_behind_current(self, s) {
                return Err(Error::new(&wq, ErrorKind::WouldDeadlock(why)));
            }
        }
        Ok(self.wait_resolved())
    }

    pub(crate) fn check_not_self(&self, what: &'static str) -> Result<(), Error> {
        if crate::platform::fork::is_forked_child() {
            // An item belongs to no one queue: the error names none.
            return Err(Error::new("", ErrorKind::Forked));
        }
        match crate::current::current_work_and_wq() {
            Some((w, wq)) if w.ptr_eq(self) => Err(Error::new(&wq, ErrorKind::WouldDeadlock(what))),
            _ => Ok(()),
        }
    }

    /// Increments the disable depth and cancels a pending instance (`disable_work`).
    /// While the depth is above zero every queue attempt returns `false`.
    /// Returns whether the item was pending. Saturates at 65535 with a warning,
    /// logged once per item however often it is hit (the kernel's `WARN_ONCE` in
    /// `work_offqd_disable`, kernel/workqueue.c, is once per call site; once per
    /// item still names each item that overflows, and never floods the log).
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("maintenance").build()?;
    /// let w = Work::new(|_| {});
    /// assert!(!w.disable()); // it was not pending
    /// assert!(!wq.queue(&w)?); // disabled: refused, as `schedule_work` would be
    /// assert!(!w.is_pending());
    /// assert!(w.enable()); // depth back to 0
    /// assert!(wq.queue(&w)?);
    /// w.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn disable(&self) -> bool {
        let g = self.grab_pending();
        let depth = self.state().load().disable_depth();
        let new = if depth >= DISABLE_MAX {
            if self.warn_first(WARNED_OVERFLOW) {
                log::warn!(
                    work = self.key(),
                    limit = DISABLE_MAX,
                    "workqueue: work disable count overflowed; staying at the limit (warned once per item)"
                );
            }
            DISABLE_MAX
        } else {
            depth + 1
        };
        self.state().release_pending(new);
        g == Grab::Stolen
    }

    /// [`disable`](Self::disable), then waits for a running instance (`disable_work_sync`).
    ///
    /// The way to shut an item down for good: afterwards it neither runs nor can be
    /// queued, whoever tries.
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("teardown").build()?;
    /// let q = wq.clone();
    /// let w = Work::new(move |w| {
    ///     let _ = q.queue(w); // requeues itself for ever
    /// });
    /// wq.queue(&w)?;
    /// w.disable_sync()?;
    /// assert!(!w.busy().running && !w.is_pending());
    /// assert!(!wq.queue(&w)?); // stays off until enabled
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from the item's own callback.
    pub fn disable_sync(&self) -> Result<bool, Error> {
        self.check_not_self("disable_sync() of a work item from its own callback")?;
        let was_pending = self.disable();
        self.wait_resolved();
        Ok(was_pending)
    }

    /// Decrements the disable depth (`enable_work`); never queues the item.
    /// Returns whether the depth is now zero. Enabling an item that is not disabled
    /// logs a warning, once per item, and changes nothing (the kernel's underflow
    /// `WARN_ONCE` in `work_offqd_enable`).
    ///
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("nested").build()?;
    /// let w = Work::new(|_| {});
    /// w.disable(); // by one user
    /// w.disable(); // by another
    /// assert!(!w.enable()); // depth 1: still disabled
    /// assert!(!wq.queue(&w)?);
    /// assert!(w.enable()); // depth 0
    /// assert!(!w.is_pending()); // enabling never queues
    /// assert!(wq.queue(&w)?);
    /// w.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn enable(&self) -> bool {
        let s = self.state().load();
        // Not disabled: queued, idle at depth 0, or waiting on its timer.
        let armed = || self.timer().is_some_and(TimerSlot::is_armed);
        if s.queued() || (s.disable_depth() == 0 && (!s.pending() || armed())) {
            if self.warn_first(WARNED_UNDERFLOW) {
                log::warn!(
                    work = self.key(),
                    "workqueue: work disable count underflowed (warned once per item)"
                );
            }
            return true;
        }
        let g = self.grab_pending();
        debug_assert_eq!(g, Grab::Idle, "a disabled item cannot be queued");
        let depth = self.state().load().disable_depth();
        if depth == 0 && self.warn_first(WARNED_UNDERFLOW) {
            log::warn!(work = self.key(), "workqueue: work disable count underflowed (warned once per item)");
        }
        let new = depth.saturating_sub(1);
        self.state().release_pending(new);
        new == 0
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Work")
            .field("addr", &format_args!("{:#x}", self.key()))
            .field("state", &self.state().load())
            .finish()
    }
}
