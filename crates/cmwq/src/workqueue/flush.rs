//! Workqueue flushing with the kernel's flush colors (`__flush_workqueue`,
//! `flush_workqueue_prep_pwqs` in `kernel/workqueue.c`).
//!
//! Each queued item records its pwq's current color (16 colors). A flush takes the
//! current *epoch* `e` (color `e % 16`), moves every pwq on to the next color, and
//! registers every pwq that still has items of color `e`. It then waits until the
//! count of registered pwqs drops to zero for `e` and for every older epoch not yet
//! retired. Items queued after the call get a newer color and are not waited for;
//! nor are items that an item queues while the flush runs (chained work).
//!
//! Epochs are `u64` and never wrap; colors are reused only after their epoch is
//! retired, and at most 16 epochs are unretired at once: a 17th flusher waits for a
//! color to free up (the kernel's `flusher_overflow`). This replaces the kernel's
//! `first_flusher`/`flusher_queue` hand-off with the same guarantees.
//!
//! Lock order: `Flush::inner` → pool lock → `Flush::done_lock`. The completion path
//! (under a pool lock) only touches atomics and `done_lock`.
//!
//! Orderings: every access to `color_busy`, `waiters` and `retired` is `SeqCst`.
//! The completion (`color_done`: decrement a count, fence, load `waiters`) and the
//! waiter (`wait`: increment `waiters`, fence, load the counts) form a Dekker pair,
//! so that at least one sees the other: the waiter sees the count at zero, or the
//! completer sees a waiter and notifies it under `done_lock`. `retired` mirrors
//! `FlushInner::retired` for the lock-free wait condition and is read in the
//! same condition, so it takes part in the same total order.

use crate::platform::loom::{fence, AtomicU32, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};
use crate::pwq::NR_COLORS;

#[derive(Debug)]
pub(crate) struct FlushInner {
    /// The epoch new items belong to; its color is `work_epoch % 16`.
    pub(crate) work_epoch: u64,
    /// The oldest epoch not yet retired (`flush_color`).
    retired: u64,
}

#[derive(Debug)]
pub(crate) struct Flush {
    inner: Mutex<FlushInner>,
    overflow_cv: Condvar,
    /// Per color: registered pwqs that still have items of that color.
    color_busy: [AtomicU32; NR_COLORS],
    /// Mirror of `FlushInner::retired` for the lock-free wait condition.
    retired: AtomicU64,
    waiters: AtomicU32,
    done_lock: Mutex<()>,
    done_cv: Condvar,
}

impl Flush {
    pub(crate) fn new() -> Self {
        Flush {
            inner: Mutex::new(FlushInner { work_epoch: 0, retired: 0 }),
            overflow_cv: Condvar::new(),
            color_busy: std::array::from_fn(|_| AtomicU32::new(0)),
            retired: AtomicU64::new(0),
            waiters: AtomicU32::new(0),
            done_lock: Mutex::new(()),
            done_cv: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, FlushInner> {
        self.inner.lock()
    }

    /// The color for a pwq created now. Caller holds `lock()`.
    pub(crate) fn color_of(g: &FlushInner) -> u8 {
        (g.work_epoch % NR_COLORS as u64) as u8
    }

    /// Starts a flush: allocates an epoch (waiting while all 16 colors are in use)
    /// and returns it with the guard; the caller moves every pwq to the next color
    /// and calls [`register`](Self::register) for each pwq with items of this epoch.
    pub(crate) fn begin<'a>(
        &'a self,
        mut g: MutexGuard<'a, FlushInner>,
    ) -> (MutexGuard<'a, FlushInner>, u64) {
        loop {
            self.retire(&mut g);
            if g.work_epoch + 1 - g.retired < NR_COLORS as u64 {
                break;
            }
            g = self.overflow_cv.wait(g);
        }
        let e = g.work_epoch;
        g.work_epoch += 1;
        (g, e)
    }

    /// A pwq has items of `color` in flight: wait for it. Caller holds the pool lock.
    pub(crate) fn register(&self, color: usize) {
        // SeqCst: read by the waiter's side of the Dekker pair (module docs).
        self.color_busy[color].fetch_add(1, Ordering::SeqCst);
    }

    /// A registered pwq has no items of `color` left. Caller holds the pool lock.
    pub(crate) fn color_done(&self, color: usize) {
        // Dekker pair with `wait` (module docs): decrement, fence, load `waiters`
        // here; increment `waiters`, fence, load the counts there.
        if self.color_busy[color].fetch_sub(1, Ordering::SeqCst) == 1 && {
            fence(Ordering::SeqCst);
            self.waiters.load(Ordering::SeqCst) != 0
        } {
            let _g = self.done_lock.lock();
            self.done_cv.notify_all();
        }
    }

    /// SeqCst loads: the waiter's side of the Dekker pair (module docs).
    fn epoch_done(&self, e: u64) -> bool {
        self.retired.load(Ordering::SeqCst) > e
            || (self.retired.load(Ordering::SeqCst)..=e)
                .all(|x| self.color_busy[(x % NR_COLORS as u64) as usize].load(Ordering::SeqCst) == 0)
    }

    /// Waits until epoch `e` and every older one are done, then retires what it can.
    pub(crate) fn wait(&self, e: u64) {
        if !self.epoch_done(e) {
            // The waiter's store and fence of the Dekker pair (module docs).
            self.waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let mut g = self.done_lock.lock();
            while !self.epoch_done(e) {
                g = self.done_cv.wait(g);
            }
            drop(g);
            // SeqCst: the count the completer's side of the pair loads.
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        let mut g = self.inner.lock();
        self.retire(&mut g);
        drop(g);
        self.overflow_cv.notify_all();
    }

    /// Advances the oldest unretired epoch past every finished one. Every epoch
    /// below `work_epoch` has finished registering (that happens under `inner`).
    fn retire(&self, g: &mut FlushInner) {
        while g.retired < g.work_epoch
            && self.color_busy[(g.retired % NR_COLORS as u64) as usize].load(Ordering::SeqCst) == 0
        {
            g.retired += 1;
        }
        // SeqCst: read in `epoch_done`, in the pair's total order (module docs).
        self.retired.store(g.retired, Ordering::SeqCst);
    }
}
