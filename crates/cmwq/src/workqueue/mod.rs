//! Workqueues: the user-facing queues, each with its own semantics (ordering,
//! `max_active`, priority, CPU affinity), all served by the shared pools.

mod delayed;
mod flush;

pub(crate) use flush::Flush;

use std::sync::atomic::AtomicBool as StdAtomicBool;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, ErrorKind, SpawnError};
use crate::loom::{AtomicU32, Ordering};
use crate::pool::{PoolLocked, WorkerPool};
use crate::pwq::{self, PwqState, PwqStats, Task};
use crate::registry::Registry;
use crate::work::{Claim, Snapshot, Spawned, Work, POOL_NONE};

/// The default `max_active` (`WQ_DFL_ACTIVE`).
pub const WQ_DFL_ACTIVE: usize = 1024;
/// The largest `max_active` (`WQ_MAX_ACTIVE`).
pub const WQ_MAX_ACTIVE: usize = 2048;

bitflags::bitflags! {
    /// Workqueue flags (`enum wq_flags`), with the kernel's values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct WqFlags: u32 {
        /// Run items in a per-CPU non-sleeping context. Not supported yet.
        const BH = 1 << 0;
        /// Served by unbound pools: not concurrency managed; `max_active` bounds the
        /// queue process-wide.
        const UNBOUND = 1 << 1;
        /// Frozen by the [`freezer`](crate::freezer): while frozen its items wait on
        /// the inactive list (effective `max_active` 0) until thawed.
        const FREEZABLE = 1 << 2;
        /// Guaranteed a rescuer under memory pressure. Not supported yet.
        const MEM_RECLAIM = 1 << 3;
        /// Served by the highpri pools (nice -20 where permitted).
        const HIGHPRI = 1 << 4;
        /// A running item does not count toward concurrency, so it never holds
        /// other items of its CPU back (its start is still managed).
        const CPU_INTENSIVE = 1 << 5;
        /// Per-CPU, unless the process-wide power-efficient setting is on
        /// ([`set_power_efficient`](crate::set_power_efficient), `CMWQ_POWER_EFFICIENT=1`):
        /// then unbound, as in the kernel (`workqueue.power_efficient`).
        const POWER_EFFICIENT = 1 << 7;
        /// Explicitly per-CPU (the default when `UNBOUND` is absent).
        const PERCPU = 1 << 8;
    }
}

/// Flags that a later version implements: refused, never silently ignored.
const UNSUPPORTED: [(WqFlags, &str); 2] = [(WqFlags::BH, "BH"), (WqFlags::MEM_RECLAIM, "MEM_RECLAIM")];

/// Where a workqueue's items go on one pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PwqRef {
    pub(crate) pool: &'static WorkerPool,
    pub(crate) slot: u32,
}

/// The workqueue state shared with its pwqs and with running items.
#[derive(Debug)]
pub(crate) struct WqCore {
    pub(crate) name: Box<str>,
    pub(crate) flags: WqFlags,
    pub(crate) ordered: bool,
    system: bool,
    registry: &'static Registry,
    /// `saved_max_active`.
    max_active: AtomicU32,
    nr_drainers: AtomicU32,
    destroying: StdAtomicBool,
    destroyed: StdAtomicBool,
    /// Per-CPU queues: one slot per CPU id, created on first use. Unbound: one slot.
    pwqs: Box<[OnceLock<PwqRef>]>,
    pub(crate) flush: Flush,
    /// Counters of pwqs already freed (after `destroy` or the last handle's drop).
    retired: parking_lot::Mutex<PwqStats>,
}

impl WqCore {
    /// Keeps a freed pwq's counters. Called under a pool lock (a leaf lock here).
    pub(crate) fn retire_stats(&self, s: &PwqStats) {
        self.retired.lock().add(s);
    }

    fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.name, kind)
    }

    fn is_unbound(&self) -> bool {
        self.flags.contains(WqFlags::UNBOUND)
    }

    /// The `max_active` its pwqs use now: 0 while a freezable queue is frozen.
    /// Caller holds `flush.lock()`, which orders it against freeze and thaw.
    fn effective_max_active(&self) -> u32 {
        if self.flags.contains(WqFlags::FREEZABLE) && self.registry.is_freezing() {
            0
        } else {
            self.max_active.load(Ordering::Relaxed)
        }
    }

    /// Applies the effective `max_active` to every pwq, activating what it allows
    /// (`wq_adjust_max_active`). Caller holds `flush.lock()`.
    pub(crate) fn adjust_max_active(&self) {
        let n = self.effective_max_active();
        for r in self.created_pwqs() {
            let mut g = r.pool.lock();
            if let Some(p) = self.pwq_in(&mut g, r) {
                p.max_active = n;
                pwq::activate_inactive(r.pool, &mut g, r.slot);
            }
        }
    }

    /// Whether a pwq of this queue has active items (`freeze_workqueues_busy`).
    pub(crate) fn has_active(&self) -> bool {
        self.created_pwqs().any(|r| {
            let mut g = r.pool.lock();
            self.pwq_in(&mut g, r).is_some_and(|p| p.nr_active > 0)
        })
    }

    /// This workqueue's pwq state on `r`'s pool, if the slot still belongs to it.
    fn pwq_in<'a>(&self, g: &'a mut PoolLocked, r: &PwqRef) -> Option<&'a mut PwqState> {
        g.pwqs.try_get_mut(r.slot as usize).filter(|p| std::ptr::eq(Arc::as_ptr(&p.wq), self))
    }

    fn created_pwqs(&self) -> impl Iterator<Item = &PwqRef> {
        self.pwqs.iter().filter_map(OnceLock::get)
    }

    /// Refuses queueing from outside while draining or destroying (§4.6).
    fn check_open(&self) -> Result<(), Error> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(self.err(ErrorKind::Destroyed));
        }
        let closing = self.nr_drainers.load(Ordering::Acquire) > 0 || self.destroying.load(Ordering::Acquire);
        if closing && !crate::current::runs_item_of(self) {
            return Err(self.err(if self.destroying.load(Ordering::Acquire) {
                ErrorKind::Destroyed
            } else {
                ErrorKind::Draining
            }));
        }
        Ok(())
    }

    /// Waiting for this queue from one of its own items would wait for itself.
    fn check_not_own_item(&self, what: &'static str) -> Result<(), Error> {
        if crate::current::runs_item_of(self) {
            return Err(self.err(ErrorKind::WouldDeadlock(what)));
        }
        Ok(())
    }

    /// Drain and destroy: not on a system queue, not from an own item.
    fn check_may_close(&self, op: &'static str, own: &'static str) -> Result<(), Error> {
        if self.system {
            return Err(self.err(ErrorKind::SystemWorkqueue(op)));
        }
        self.check_not_own_item(own)
    }

    fn check_cpu(&self, cpu: usize) -> Result<(), Error> {
        let topo = &self.registry.topo;
        if cpu < topo.nr_cpu_ids && topo.is_allowed(cpu) {
            Ok(())
        } else {
            Err(self.err(ErrorKind::InvalidCpu { cpu, allowed: topo.allowed.clone() }))
        }
    }

    /// The pwq that serves `cpu` (the caller's CPU if `None`), created on first use
    /// under the flush lock, so that it starts with the current flush color.
    #[inline]
    fn pwq_for(self: &Arc<Self>, cpu: Option<usize>) -> PwqRef {
        let highpri = self.flags.contains(WqFlags::HIGHPRI);
        let (idx, pool) = if self.is_unbound() {
            (0, None)
        } else {
            let cpu = cpu.unwrap_or_else(|| self.registry.local_cpu());
            (cpu, Some(cpu))
        };
        *self.pwqs[idx].get_or_init(|| {
            let pool = match pool {
                Some(cpu) => self.registry.cpu_pool(cpu, highpri),
                None => self.registry.unbound_pool(highpri),
            };
            let fg = self.flush.lock();
            let mut g = pool.lock();
            let slot =
                g.pwqs.insert(PwqState::new(self.clone(), self.effective_max_active(), Flush::color_of(&fg)));
            PwqRef { pool, slot: u32::try_from(slot).expect("pwq slots exhausted") }
        })
    }

    fn queue(self: &Arc<Self>, cpu: Option<usize>, work: &Work) -> Result<bool, Error> {
        self.check_open()?;
        let prev = match work.state().claim_pending() {
            Claim::Claimed(prev) => prev,
            Claim::AlreadyPending | Claim::Disabled => return Ok(false),
        };
        if self.link(cpu, work, prev) {
            return Ok(true);
        }
        // Destroyed between the check and the link: give the item back untouched.
        work.state().release_pending(0);
        Err(self.err(ErrorKind::Destroyed))
    }

    /// Queues a spawned closure on the caller's CPU's pool (or the unbound pool).
    /// The caller checked [`check_open`](Self::check_open); gives the closure back
    /// if the workqueue was destroyed meanwhile.
    fn spawn(self: &Arc<Self>, task: Spawned) -> Result<(), (Error, Spawned)> {
        let r = self.pwq_for(None);
        let mut g = r.pool.lock();
        let task = if self.pwq_in(&mut g, &r).is_some() {
            match pwq::insert(r.pool, &mut g, r.slot, Task::Spawned(task)) {
                Ok(()) => return Ok(()),
                Err(Task::Spawned(task)) => task,
                Err(Task::Work(_)) => crate::abort_on_bug("a spawned closure came back as a work item"),
            }
        } else {
            task
        };
        drop(g);
        Err((self.err(ErrorKind::Destroyed), task))
    }

    /// Links an item whose `PENDING` we own into the pool that should run it.
    /// False if the pwq was released with the workqueue meanwhile.
    fn link(self: &Arc<Self>, cpu: Option<usize>, work: &Work, prev: Snapshot) -> bool {
        let r = self.pwq_for(cpu);
        // Non-reentrancy (§4.3): if the item still runs on the pool it last ran on,
        // for this workqueue, queue it there, behind the running instance.
        let last = prev.pool_id();
        if !self.ordered && last != r.pool.id && last != POOL_NONE {
            if let Some(lp) = crate::pool::by_id(last) {
                let mut g = lp.lock();
                let running_here = work
                    .running_on(lp.id)
                    .and_then(|w| g.workers.get(w).current)
                    .filter(|cur| std::ptr::eq(Arc::as_ptr(&g.pwqs.get(cur.pwq as usize).wq), &**self));
                if let Some(cur) = running_here {
                    return pwq::insert_work(lp, &mut g, cur.pwq, work);
                }
            }
        }
        let mut g = r.pool.lock();
        self.pwq_in(&mut g, &r).is_some() && pwq::insert_work(r.pool, &mut g, r.slot, work)
    }

    /// Runs one flush: every item queued before the call has finished on return.
    /// All of it may block (a free color, the flush lock, the items), so from a
    /// work item it runs announced, and the item's CPU runs other items meanwhile.
    fn flush_once(&self) {
        crate::hooks::blocking(|| self.flush_once_inner())
    }

    fn flush_once_inner(&self) {
        let fg = self.flush.lock();
        let (fg, epoch) = self.flush.begin(fg);
        let color = (epoch % pwq::NR_COLORS as u64) as usize;
        let next = Flush::color_of(&fg);
        for r in self.created_pwqs() {
            let mut g = r.pool.lock();
            if let Some(p) = self.pwq_in(&mut g, r) {
                p.work_color = next;
                if p.nr_in_flight[color] > 0 {
                    p.flush_colors |= 1 << color;
                    self.flush.register(color);
                }
            }
        }
        drop(fg);
        self.flush.wait(epoch);
    }

    /// Whether no item is queued, inactive or running on any pwq.
    fn is_idle(&self) -> bool {
        self.created_pwqs().all(|r| {
            let mut g = r.pool.lock();
            self.pwq_in(&mut g, r).is_none_or(|p| p.total_in_flight() == 0)
        })
    }

    /// `drain_workqueue`: flush until empty; only chained queueing is allowed meanwhile.
    fn drain_inner(&self) {
        self.nr_drainers.fetch_add(1, Ordering::AcqRel);
        let mut tries = 0u32;
        loop {
            self.flush_once();
            if self.is_idle() {
                break;
            }
            tries += 1;
            if tries == 10 || (tries % 100 == 0 && tries <= 1000) {
                tracing::warn!(
                    "workqueue {}: drain_workqueue() isn't complete after {tries} tries",
                    self.name
                );
            }
        }
        self.nr_drainers.fetch_sub(1, Ordering::AcqRel);
    }

    /// Detaches every pwq: each is freed when its last item completes.
    fn release_pwqs(&self) {
        for r in self.created_pwqs() {
            let mut g = r.pool.lock();
            let free = match self.pwq_in(&mut g, r) {
                Some(p) => {
                    p.released = true;
                    p.total_in_flight() == 0
                }
                None => false,
            };
            if free {
                pwq::free(&mut g, r.slot);
            }
        }
    }
}

/// The part of a workqueue that user handles share; dropping the last one detaches
/// the queue (see [`Workqueue`]).
#[derive(Debug)]
struct WqHandle {
    core: Arc<WqCore>,
}

impl Drop for WqHandle {
    fn drop(&mut self) {
        if !self.core.destroyed.swap(true, Ordering::AcqRel) {
            self.core.release_pwqs();
        }
    }
}

/// A workqueue (`alloc_workqueue`): a cheap, cloneable handle.
///
/// Items queued on a per-CPU (bound) workqueue run on the queueing CPU's pool,
/// which keeps just enough workers running to keep that CPU busy: when an item
/// blocks (inside [`blocking`](crate::blocking) or [`sleep`](crate::sleep)), another
/// starts. An [`UNBOUND`](WqFlags::UNBOUND) workqueue's items run on the unbound
/// pool, which is not concurrency managed.
///
/// **Dropping the last handle** detaches the queue without blocking: items already
/// queued still run, nothing new can be queued (nobody holds a handle), and its
/// pwqs are freed as they go idle. To wait for its items, call
/// [`destroy`](Self::destroy) or [`drain`](Self::drain) first.
///
/// ```
/// use cmwq::{Work, Workqueue, WqFlags};
///
/// let wq = Workqueue::builder("disk-io").flags(WqFlags::UNBOUND).max_active(4).build()?;
/// let w = Work::new(|_| { /* … */ });
/// assert!(wq.queue(&w)?); // queued; a second queue() returns false while it is pending
/// wq.destroy()?; // drains, then refuses further queueing
/// assert!(wq.queue(&w).is_err());
/// # Ok::<(), cmwq::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Workqueue(Arc<WqHandle>);

/// Statistics of a workqueue, summed over its pwqs (the kernel's per-pwq stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WqStats {
    /// Items that started executing.
    pub started: u64,
    /// Items that finished executing (including panicked ones).
    pub completed: u64,
    /// Items whose callback panicked.
    pub panicked: u64,
    /// Concurrency-management wake-ups while this queue's items slept.
    pub cm_wakeup: u64,
    /// Items that ran outside concurrency management as `CPU_INTENSIVE`.
    pub cpu_intensive: u64,
    /// Items queued and not yet finished (active, inactive or running).
    pub in_flight: u64,
    /// Items waiting on an inactive list for `max_active`.
    pub inactive: u64,
}

/// Builds a [`Workqueue`]; see [`Workqueue::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    name: String,
    flags: WqFlags,
    max_active: usize,
    ordered: bool,
    system: bool,
}

impl Builder {
    /// Sets the flags. Default: empty (per-CPU, normal priority).
    pub fn flags(mut self, flags: WqFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets `max_active`: per CPU for per-CPU queues, process-wide for unbound ones.
    /// Default 0, which means [`WQ_DFL_ACTIVE`] (1024). Values above
    /// [`WQ_MAX_ACTIVE`] (2048) are clamped with a warning, as in the kernel. Ordered
    /// queues accept only 1.
    pub fn max_active(mut self, n: usize) -> Self {
        self.max_active = n;
        self
    }

    /// Creates the workqueue (`alloc_workqueue`).
    ///
    /// # Errors
    /// An empty name or one with control characters; a flag not supported yet
    /// (`BH`, `MEM_RECLAIM`); `PERCPU` with
    /// `UNBOUND`; an ordered queue with `PERCPU` or a `max_active` other than 1.
    pub fn build(self) -> Result<Workqueue, Error> {
        self.build_in(Registry::global())
    }

    pub(crate) fn build_in(self, registry: &'static Registry) -> Result<Workqueue, Error> {
        let e = |kind| Err(Error::new(&self.name, kind));
        if self.name.is_empty() || self.name.chars().any(char::is_control) {
            return e(ErrorKind::InvalidName);
        }
        for (flag, name) in UNSUPPORTED {
            if self.flags.contains(flag) {
                return e(ErrorKind::UnsupportedFlag(name));
            }
        }
        if self.flags.contains(WqFlags::PERCPU | WqFlags::UNBOUND) {
            return e(ErrorKind::InvalidFlags("PERCPU and UNBOUND exclude each other".into()));
        }
        let mut flags = self.flags;
        if flags.contains(WqFlags::POWER_EFFICIENT) && registry.power_efficient() {
            flags = (flags - WqFlags::PERCPU) | WqFlags::UNBOUND;
        }
        if self.ordered {
            if flags.contains(WqFlags::PERCPU) {
                return e(ErrorKind::InvalidFlags(
                    "an ordered workqueue is unbound; PERCPU makes no sense".into(),
                ));
            }
            if self.max_active > 1 {
                return e(ErrorKind::InvalidFlags(format!(
                    "an ordered workqueue has max_active 1, not {}",
                    self.max_active
                )));
            }
            flags |= WqFlags::UNBOUND;
        }
        let max_active = match self.max_active {
            _ if self.ordered => 1,
            0 => WQ_DFL_ACTIVE,
            n if n > WQ_MAX_ACTIVE => {
                tracing::warn!(
                    "workqueue: max_active {n} requested for {} is out of range, clamping between 1 and {WQ_MAX_ACTIVE}",
                    self.name
                );
                WQ_MAX_ACTIVE
            }
            n => n,
        };
        let nr_slots = if flags.contains(WqFlags::UNBOUND) { 1 } else { registry.topo.nr_cpu_ids };
        let core = Arc::new(WqCore {
            name: self.name.into_boxed_str(),
            flags,
            ordered: self.ordered,
            system: self.system,
            registry,
            max_active: AtomicU32::new(max_active as u32),
            nr_drainers: AtomicU32::new(0),
            destroying: StdAtomicBool::new(false),
            destroyed: StdAtomicBool::new(false),
            pwqs: (0..nr_slots).map(|_| OnceLock::new()).collect(),
            flush: Flush::new(),
            retired: parking_lot::Mutex::new(PwqStats::default()),
        });
        if flags.contains(WqFlags::FREEZABLE) {
            registry.register_freezable(&core);
        }
        Ok(Workqueue(Arc::new(WqHandle { core })))
    }

    pub(crate) fn system(mut self) -> Self {
        self.system = true;
        self
    }
}

impl Workqueue {
    /// Starts building a workqueue named `name` (`alloc_workqueue`).
    pub fn builder(name: impl Into<String>) -> Builder {
        Builder { name: name.into(), flags: WqFlags::empty(), max_active: 0, ordered: false, system: false }
    }

    /// Starts building an ordered workqueue: one item at a time, in queueing order
    /// (`alloc_ordered_workqueue`). Only `HIGHPRI` is meaningful among the flags.
    pub fn ordered(name: impl Into<String>) -> Builder {
        Builder { ordered: true, ..Self::builder(name) }
    }

    fn core(&self) -> &Arc<WqCore> {
        &self.0.core
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.core().name
    }

    /// The flags (ordered queues include `UNBOUND`).
    pub fn flags(&self) -> WqFlags {
        self.core().flags
    }

    /// Whether this is an ordered workqueue.
    pub fn is_ordered(&self) -> bool {
        self.core().ordered
    }

    /// The current `max_active`.
    pub fn max_active(&self) -> usize {
        self.core().max_active.load(Ordering::Relaxed) as usize
    }

    /// Queues `work` on the caller's CPU (per-CPU queues) or on the unbound pool
    /// (`queue_work`). Returns `Ok(false)` if it was already pending (it keeps its
    /// place) or is disabled. If it returns `Ok(true)`, every store the caller made
    /// before the call is visible to the callback.
    ///
    /// # Errors
    /// The queue is draining or being destroyed and the caller is not one of its own
    /// items, or it is destroyed. The item is left untouched.
    #[inline]
    pub fn queue(&self, work: &Work) -> Result<bool, Error> {
        self.core().queue(None, work)
    }

    /// Queues `work` on `cpu`'s pool (`queue_work_on`). For unbound queues the CPU
    /// only has to be valid.
    ///
    /// # Errors
    /// As [`queue`](Self::queue), and [`ErrorKind::InvalidCpu`] for a CPU this
    /// process may not use (see [`online_cpus`](crate::online_cpus)).
    pub fn queue_on(&self, cpu: usize, work: &Work) -> Result<bool, Error> {
        self.core().check_cpu(cpu)?;
        self.core().queue(Some(cpu), work)
    }

    /// Runs `f` once on this queue, as a one-shot work item that nobody holds a
    /// handle to. It costs one allocation, the box of the closure: none if `f`
    /// captures nothing, and none if `f` is a `Box<dyn FnOnce() + Send>` already
    /// (it is kept as it is). Inside `f`, [`current_work`](crate::current_work)
    /// gives a handle that flushes and reports `busy()` like a work item's. The
    /// closure must be `Send`:
    ///
    /// ```compile_fail
    /// let wq = cmwq::Workqueue::builder("x").build().unwrap();
    /// let rc = std::rc::Rc::new(1);
    /// wq.spawn(move || println!("{rc}")).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`queue`](Self::queue); the closure comes back in the error.
    pub fn spawn<F>(&self, f: F) -> Result<(), SpawnError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        if let Err(e) = self.core().check_open() {
            return Err(SpawnError::new(e, f));
        }
        self.core().spawn(Spawned::new(f)).map_err(|(e, task)| SpawnError::new(e, task.into_closure()))
    }

    /// `enable_and_queue_work`: enables `work`; if its disable depth reaches zero,
    /// queues it and returns what `queue` returns; otherwise `Ok(false)`.
    ///
    /// # Errors
    /// As [`queue`](Self::queue).
    pub fn enable_and_queue(&self, work: &Work) -> Result<bool, Error> {
        if work.enable() {
            self.queue(work)
        } else {
            Ok(false)
        }
    }

    /// Waits until every item queued before the call has finished
    /// (`flush_workqueue`). Items queued after the call, including items that this
    /// queue's items queue meanwhile, are not waited for.
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from one of this queue's own items.
    pub fn flush(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_not_own_item("flush() of a workqueue from one of its own items")?;
        if core.system {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                tracing::warn!("WARNING: Flushing system-wide workqueues will be prohibited in near future.")
            });
        }
        core.flush_once();
        Ok(())
    }

    /// Waits until the queue is empty (`drain_workqueue`). Meanwhile only the
    /// queue's own items may queue onto it (chained work); any other queueing gets
    /// [`ErrorKind::Draining`] and the caller keeps the work.
    ///
    /// # Errors
    /// From one of the queue's own items ([`ErrorKind::WouldDeadlock`]), or on a
    /// system workqueue.
    pub fn drain(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_may_close("drain()", "drain() of a workqueue from one of its own items")?;
        core.drain_inner();
        Ok(())
    }

    /// Drains the queue, then stops it (`destroy_workqueue`): every later queue
    /// attempt gets [`ErrorKind::Destroyed`]. Calling it again does nothing.
    ///
    /// Delayed items whose timers are armed for this queue are queued at once
    /// (with a warning) and run before it returns: nothing is dropped. Cancel
    /// them first if they must not run, as the kernel requires.
    ///
    /// # Errors
    /// From one of the queue's own items ([`ErrorKind::WouldDeadlock`]), or on a
    /// system workqueue.
    pub fn destroy(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_may_close("destroy()", "destroy() of a workqueue from one of its own items")?;
        if core.destroyed.load(Ordering::Acquire) || core.destroying.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Timers armed for this queue would fire after it is gone: fire them now,
        // so their items run before it stops (the kernel requires callers to
        // cancel them first; here nothing is lost either way).
        let early = core.registry.timers.fire_all_for(self);
        if early > 0 {
            tracing::warn!(
                "workqueue {}: destroy() fired {early} armed delayed item(s) early; cancel them first \
                 if they must not run",
                core.name
            );
        }
        core.drain_inner();
        core.destroyed.store(true, Ordering::Release);
        core.release_pwqs();
        Ok(())
    }

    /// Changes `max_active` (`workqueue_set_max_active`), clamped to 1..=2048.
    /// Raising it activates waiting items at once; lowering it never preempts
    /// items already active.
    ///
    /// # Errors
    /// [`ErrorKind::Ordered`] for an ordered queue.
    pub fn set_max_active(&self, n: usize) -> Result<(), Error> {
        let core = self.core();
        if core.ordered {
            return Err(core.err(ErrorKind::Ordered("set_max_active()")));
        }
        let n = if n == 0 || n > WQ_MAX_ACTIVE {
            let c = n.clamp(1, WQ_MAX_ACTIVE);
            tracing::warn!(
                "workqueue: max_active {n} requested for {} is out of range, clamping between 1 and {WQ_MAX_ACTIVE}",
                core.name
            );
            c
        } else {
            n
        };
        let _fg = core.flush.lock(); // serialises with pwq creation, freeze and thaw
        core.max_active.store(n as u32, Ordering::Relaxed);
        core.adjust_max_active();
        Ok(())
    }

    /// Whether `cpu`'s pwq has items waiting for `max_active` (`workqueue_congested`).
    /// Advisory. For unbound queues the CPU only has to be valid.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidCpu`].
    pub fn is_congested(&self, cpu: usize) -> Result<bool, Error> {
        let core = self.core();
        core.check_cpu(cpu)?;
        let idx = if core.is_unbound() { 0 } else { cpu };
        Ok(core.pwqs[idx].get().is_some_and(|r| {
            let mut g = r.pool.lock();
            core.pwq_in(&mut g, r).is_some_and(|p| !p.inactive.is_empty())
        }))
    }

    /// Statistics summed over the queue's pwqs, including those already freed
    /// (the counters survive `destroy`).
    pub fn stats(&self) -> WqStats {
        let core = self.core();
        let mut sum = *core.retired.lock();
        let (mut in_flight, mut inactive) = (0, 0);
        for r in core.created_pwqs() {
            let mut g = r.pool.lock();
            if let Some(p) = core.pwq_in(&mut g, r) {
                sum.add(&p.stats);
                in_flight += p.total_in_flight() as u64;
                inactive += p.inactive.len() as u64;
            }
        }
        WqStats {
            started: sum.started,
            completed: sum.completed,
            panicked: sum.panicked,
            cm_wakeup: sum.cm_wakeup,
            cpu_intensive: sum.cpu_intensive,
            in_flight,
            inactive,
        }
    }
}
