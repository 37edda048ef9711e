//! Work items: reusable, cloneable handles with the kernel's PENDING rules.

mod delayed;
mod ops;
mod spawned;

pub use delayed::DelayedWork;
pub(crate) use spawned::Spawned;

pub(crate) use crate::context::work_state::{Claim, Snapshot, WorkState, DISABLE_MAX, POOL_NONE};

use std::fmt;
use std::sync::Arc;

use crate::platform::bug::abort_on_bug;
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
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Work")
            .field("addr", &format_args!("{:#x}", self.key()))
            .field("state", &self.state().load())
            .finish()
    }
}
