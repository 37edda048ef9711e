//! The public [`Workqueue`] handle (`alloc_workqueue`'s result) and what it
//! does; delayed queueing is in `delayed.rs`, statistics in `stats.rs`.

use std::sync::Arc;

use super::core::WqCore;
use super::flags::{WqFlags, WQ_MAX_ACTIVE};
use crate::platform::error::{Error, ErrorKind, SpawnError};
use crate::platform::log;
use crate::platform::loom::Ordering;
use crate::work::{Spawned, Work};

/// The part of a workqueue that user handles share; dropping the last one detaches
/// the queue (see [`Workqueue`]).
#[derive(Debug)]
pub(super) struct WqHandle {
    pub(super) core: Arc<WqCore>,
}

impl Drop for WqHandle {
    fn drop(&mut self) {
        // Relaxed: the swap alone picks who detaches (see `WqCore`).
        if !self.core.destroyed.swap(true, Ordering::Relaxed) {
            self.core.release_pwqs();
        }
    }
}

/// A workqueue (`alloc_workqueue`): a cheap, cloneable handle.
///
/// Items run on a pool that keeps just enough workers running to keep its CPUs
/// busy: when an item blocks (inside [`blocking`](crate::blocking) or
/// [`sleep`](crate::sleep), or found blocked by the sleep monitor), another
/// starts. The default (unbound) queue's items go to the pool of the queueing
/// CPU's pod, which runs as many at once as the pod has CPUs, or to a less busy
/// pod ([`Attrs`](crate::Attrs)); a [`PERCPU`](WqFlags::PERCPU) queue's items
/// run on the queueing CPU's pool, one at a time while none blocks.
///
/// **Dropping the last handle** detaches the queue without blocking: items already
/// queued still run, nothing new can be queued (nobody holds a handle), and its
/// pwqs are freed as they go idle. To wait for its items, call
/// [`destroy`](Self::destroy) or [`drain`](Self::drain) first.
///
/// **`fork()`.** In the child of a process that has used cmwq, every call that
/// returns a `Result` (queueing, spawning, flushing, building, changing
/// settings, `cancel_sync`) fails with [`ErrorKind::Forked`] before it takes a
/// lock: the parent's workers did not survive the fork, and locks they held
/// stay held, so the child cannot use workqueues (it may `exec`). Calls without
/// a `Result` (`cancel`, `disable`, `stats`) are not supported there either.
/// Detection costs one relaxed load (a `pthread_atfork` child handler sets a
/// flag); the parent is unaffected.
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
pub struct Workqueue(pub(super) Arc<WqHandle>);

impl Workqueue {
    pub(super) fn core(&self) -> &Arc<WqCore> {
        &self.0.core
    }

    /// The name given at creation.
    ///
    /// ```
    /// let wq = cmwq::Workqueue::builder("disk-io").build()?;
    /// assert_eq!(wq.name(), "disk-io");
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.core().name
    }

    /// The flags (ordered queues include `UNBOUND`).
    ///
    /// ```
    /// use cmwq::{Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::ordered("log-writer").build()?;
    /// assert!(wq.is_ordered());
    /// assert!(wq.flags().contains(WqFlags::UNBOUND));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn flags(&self) -> WqFlags {
        self.core().flags
    }

    /// Whether this is an ordered workqueue.
    pub fn is_ordered(&self) -> bool {
        self.core().ordered
    }

    /// The current `max_active`.
    ///
    /// ```
    /// let wq = cmwq::Workqueue::builder("default").build()?;
    /// assert_eq!(wq.max_active(), cmwq::WQ_DFL_ACTIVE); // 0 asked for the default
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn max_active(&self) -> usize {
        self.core().max_active.load(Ordering::Relaxed) as usize
    }

    /// Queues `work` on the caller's CPU (per-CPU queues) or on the unbound pool
    /// (`queue_work`). Returns `Ok(false)` if it was already pending (it keeps its
    /// place) or is disabled. If it returns `Ok(true)`, every store the caller made
    /// before the call is visible to the callback.
    ///
    /// The PENDING rule: an ordered queue runs one item at a time, so `second`
    /// waits, pending, while `first` runs; queueing it again changes nothing.
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::ordered("one-by-one").build()?;
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let first = Work::new(move |_| { g.wait(); }); // runs until we reach the barrier
    /// let second = Work::new(|_| {});
    /// assert!(wq.queue(&first)?);
    /// assert!(wq.queue(&second)?); // queued behind `first`
    /// assert!(!wq.queue(&second)?); // already pending: keeps its place
    /// gate.wait(); // let `first` finish
    /// wq.flush()?;
    /// assert!(!second.is_pending());
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// The queue is draining or being destroyed and the caller is not one of its own
    /// items, or it is destroyed. The item is left untouched.
    #[inline]
    pub fn queue(&self, work: &Work) -> Result<bool, Error> {
        self.core().queue(None, work)
    }

    /// Queues `work` on `cpu`'s pool (`queue_work_on`). For an unbound queue,
    /// the pool of `cpu`'s pod (or, not strict, a less busy pod).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use cmwq::{ErrorKind, Work, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("per-cpu").flags(WqFlags::PERCPU).build()?;
    /// let cpu = *cmwq::allowed_cpus().last().unwrap();
    /// let ran_on = Arc::new(Mutex::new(None));
    /// let r = ran_on.clone();
    /// let w = Work::new(move |_| *r.lock().unwrap() = cmwq::debug::current_cpu());
    /// assert!(wq.queue_on(cpu, &w)?);
    /// w.flush()?;
    /// assert_eq!(*ran_on.lock().unwrap(), Some(cpu)); // per-CPU workers stay on their CPU
    ///
    /// let err = wq.queue_on(usize::MAX, &w).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidCpu { .. }));
    /// assert!(!w.is_pending()); // refused: the item is untouched
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`queue`](Self::queue), and [`ErrorKind::InvalidCpu`] for a CPU this
    /// process may not use (see [`allowed_cpus`](crate::allowed_cpus)).
    pub fn queue_on(&self, cpu: usize, work: &Work) -> Result<bool, Error> {
        self.core().check_cpu(cpu)?;
        self.core().queue(Some(cpu), work)
    }

    /// Runs `f` once on this queue, as a one-shot work item that nobody holds a
    /// handle to. It costs one allocation, the box of the closure: none if `f`
    /// captures nothing, and none if `f` is a `Box<dyn FnOnce() + Send>` already
    /// (it is kept as it is). Inside `f`, [`current_work`](crate::current_work)
    /// gives a handle that flushes and reports `busy()` like a work item's.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let wq = cmwq::Workqueue::builder("jobs").build()?;
    /// let (tx, rx) = mpsc::channel();
    /// for i in 0..4 {
    ///     let tx = tx.clone();
    ///     wq.spawn(move || tx.send(i * i).unwrap())?;
    /// }
    /// wq.flush()?;
    /// let mut squares: Vec<i32> = rx.try_iter().collect();
    /// squares.sort();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// The closure must be `Send`:
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
    /// ```
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("gated").build()?;
    /// let w = Work::new(|_| {});
    /// w.disable();
    /// w.disable(); // depth 2
    /// assert!(!wq.queue(&w)?); // disabled: refused
    /// assert!(!wq.enable_and_queue(&w)?); // depth 1: still disabled, not queued
    /// assert!(wq.enable_and_queue(&w)?); // depth 0: queued
    /// w.flush()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`queue`](Self::queue).
    pub fn enable_and_queue(&self, work: &Work) -> Result<bool, Error> {
        self.core().check_forked()?;
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
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("batch").build()?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// let items: Vec<Work> = (0..8)
    ///     .map(|_| {
    ///         let d = done.clone();
    ///         Work::new(move |_| { d.fetch_add(1, Ordering::Relaxed); })
    ///     })
    ///     .collect();
    /// for w in &items {
    ///     wq.queue(w)?;
    /// }
    /// wq.flush()?; // all eight were queued before the call
    /// assert_eq!(done.load(Ordering::Relaxed), 8);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::WouldDeadlock`] when called from one of this queue's own items.
    pub fn flush(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_not_own_item("flush() of a workqueue from one of its own items")?;
        core.check_flush_dependency();
        if core.system {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                log::warn!("WARNING: Flushing system-wide workqueues will be prohibited in near future.")
            });
        }
        core.flush_once();
        Ok(())
    }

    /// Waits until the queue is empty (`drain_workqueue`). Meanwhile only the
    /// queue's own items may queue onto it (chained work); any other queueing gets
    /// [`ErrorKind::Draining`] and the caller keeps the work.
    ///
    /// Unlike [`flush`](Self::flush), it waits for chained work too: here an item
    /// that queues itself again until it has run five times.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("chain").build()?;
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let (r, q) = (runs.clone(), wq.clone());
    /// let w = Work::new(move |w| {
    ///     if r.fetch_add(1, Ordering::Relaxed) + 1 < 5 {
    ///         q.queue(w).expect("an item of a draining queue may requeue itself");
    ///     }
    /// });
    /// wq.queue(&w)?;
    /// wq.drain()?;
    /// assert_eq!(runs.load(Ordering::Relaxed), 5);
    /// assert!(wq.queue(&w)?); // drained, not destroyed: usable again
    /// wq.drain()?;
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// From one of the queue's own items ([`ErrorKind::WouldDeadlock`]), or on a
    /// system workqueue.
    pub fn drain(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_may_close("drain()", "drain() of a workqueue from one of its own items")?;
        core.check_flush_dependency();
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
    /// ```
    /// use cmwq::{ErrorKind, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("session").build()?;
    /// let w = Work::new(|_| {});
    /// wq.queue(&w)?;
    /// wq.destroy()?; // `w` ran before this returned
    /// assert!(!w.busy().pending && !w.busy().running);
    ///
    /// let err = wq.queue(&w).unwrap_err();
    /// assert_eq!(err.kind(), &ErrorKind::Destroyed);
    /// assert_eq!(err.workqueue(), "session");
    /// wq.destroy()?; // again: nothing to do
    ///
    /// let err = cmwq::system::percpu().destroy().unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::SystemWorkqueue(_)));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// From one of the queue's own items ([`ErrorKind::WouldDeadlock`]), or on a
    /// system workqueue.
    pub fn destroy(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_may_close("destroy()", "destroy() of a workqueue from one of its own items")?;
        // Relaxed: the swap alone picks who destroys (see `WqCore`).
        if core.destroyed.load(Ordering::Relaxed) || core.destroying.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        // Timers armed for this queue would fire after it is gone: fire them now,
        // so their items run before it stops (the kernel requires callers to
        // cancel them first; here nothing is lost either way).
        let early = core.registry.timers.fire_all_if(|a| a.wq.same_queue(self));
        if early > 0 {
            log::warn!(
                workqueue = &*core.name,
                items = early,
                "workqueue: destroy() fired armed delayed items early; cancel them first if they must not run"
            );
        }
        core.drain_inner();
        core.destroyed.store(true, Ordering::Relaxed);
        core.release_pwqs();
        // Drained: nothing is left to rescue. Its rescuer ends before we return.
        if let Some(r) = &core.rescuer {
            r.stop(true);
        }
        Ok(())
    }

    /// The attributes of an unbound queue (`wq->unbound_attrs`), as last
    /// given; `None` for a per-CPU queue.
    ///
    /// ```
    /// use cmwq::{AffinityScope, Attrs, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("default").build()?; // unbound, the default
    /// assert_eq!(wq.attrs().unwrap().affinity_scope, AffinityScope::Default);
    /// assert_eq!(Workqueue::builder("bound").flags(WqFlags::PERCPU).build()?.attrs(), None);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    pub fn attrs(&self) -> Option<crate::workqueue::Attrs> {
        self.core().table().map(|t| t.attrs.clone())
    }

    /// Changes the attributes of an unbound queue (`apply_workqueue_attrs`).
    /// Once it returns, new items go to the pools of `attrs`; items already
    /// queued or running finish where they are. An ordered queue keeps its
    /// order across the change: its new pwq starts only when the old one has
    /// drained. It never waits for items, so it may be called from one.
    ///
    /// ```
    /// use cmwq::{AffinityScope, Attrs, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("retuned").build()?;
    /// let w = Work::new(|_| {});
    /// wq.queue(&w)?;
    /// wq.apply_attrs(Attrs { affinity_scope: AffinityScope::Cpu, affinity_strict: true, ..Attrs::default() })?;
    /// wq.queue(&w)?; // may still be pending: then `false`, and it runs once
    /// wq.flush()?;
    /// assert!(wq.attrs().unwrap().affinity_strict);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidAttrs`] for a per-CPU queue or values out of range;
    /// [`ErrorKind::Destroyed`].
    pub fn apply_attrs(&self, attrs: crate::workqueue::Attrs) -> Result<(), Error> {
        self.core().check_forked()?;
        self.core().apply_attrs(attrs)
    }

    /// Changes `max_active` (`workqueue_set_max_active`), clamped to 1..=2048.
    /// Raising it activates waiting items at once; lowering it never preempts
    /// items already active.
    ///
    /// Here `max_active` 1 holds `second` back while `first` waits (announced,
    /// so its CPU is free), until `max_active` is raised:
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{ErrorKind, Work, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("tunable").flags(WqFlags::PERCPU).max_active(1).build()?;
    /// let cpu = cmwq::allowed_cpus()[0];
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let first = Work::new(move |_| { cmwq::blocking(|| g.wait()); });
    /// let second = Work::new(|_| {});
    /// wq.queue_on(cpu, &first)?;
    /// wq.queue_on(cpu, &second)?; // waits for `max_active`
    /// wq.set_max_active(2)?; // activates `second` at once
    /// second.flush()?; // it ran while `first` still waits at the barrier
    /// gate.wait();
    /// wq.flush()?;
    /// assert_eq!(wq.max_active(), 2);
    ///
    /// let ordered = Workqueue::ordered("strict").build()?;
    /// let err = ordered.set_max_active(2).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::Ordered(_)));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Ordered`] for an ordered queue; [`ErrorKind::InvalidFlags`]
    /// for a [`WqFlags::BH`] queue (its items are never held back).
    pub fn set_max_active(&self, n: usize) -> Result<(), Error> {
        let core = self.core();
        core.check_forked()?;
        if core.ordered {
            return Err(core.err(ErrorKind::Ordered("set_max_active()")));
        }
        if core.flags.contains(WqFlags::BH) {
            // `workqueue_set_max_active` WARNs and does nothing for BH.
            return Err(core.err(ErrorKind::InvalidFlags(
                "set_max_active() on a BH workqueue, whose items are never held back".into(),
            )));
        }
        let n = if n == 0 || n > WQ_MAX_ACTIVE {
            let c = n.clamp(1, WQ_MAX_ACTIVE);
            log::warn!(
                workqueue = &*core.name,
                max_active = n,
                limit = WQ_MAX_ACTIVE,
                "workqueue: max_active requested is out of range, clamping between 1 and the limit"
            );
            c
        } else {
            n
        };
        // The flush lock serialises with pwq creation, freeze and thaw.
        let _fg = core.flush.lock();
        // Relaxed: under the flush lock, as every reader that acts on it.
        core.max_active.store(n as u32, Ordering::Relaxed);
        // `saved_min_active` never above `max_active`.
        let min = core.min_active.load(Ordering::Relaxed).min(n as u32);
        core.min_active.store(min, Ordering::Relaxed);
        core.adjust_max_active();
        Ok(())
    }

    /// The per-node floor of an unbound queue's `max_active` (`min_active`):
    /// [`WQ_DFL_MIN_ACTIVE`](crate::WQ_DFL_MIN_ACTIVE) (8) or `max_active` if
    /// lower, unless set. `None` for per-CPU and ordered queues.
    pub fn min_active(&self) -> Option<usize> {
        let core = self.core();
        (!core.nna.is_empty()).then(|| core.min_active.load(Ordering::Relaxed) as usize)
    }

    /// Sets `min_active` (`workqueue_set_min_active`), clamped to `max_active`.
    /// An unbound queue's `max_active` is split between the NUMA nodes of its
    /// CPUs in proportion to their CPUs, each node getting at least
    /// `min_active`, so that items that depend on each other can always run
    /// on every node; the sum over the nodes may exceed `max_active`.
    ///
    /// ```
    /// use cmwq::{ErrorKind, Workqueue, WqFlags};
    ///
    /// let wq = Workqueue::builder("split").max_active(64).build()?;
    /// assert_eq!(wq.min_active(), Some(8));
    /// wq.set_min_active(16)?;
    /// assert_eq!(wq.min_active(), Some(16));
    /// wq.set_min_active(1000)?;
    /// assert_eq!(wq.min_active(), Some(64)); // at most max_active
    ///
    /// let bound = Workqueue::builder("bound").flags(WqFlags::PERCPU).build()?;
    /// assert!(matches!(bound.set_min_active(4).unwrap_err().kind(), ErrorKind::InvalidFlags(_)));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidFlags`] for a per-CPU queue, [`ErrorKind::Ordered`]
    /// for an ordered one (`min_active` has no meaning there).
    pub fn set_min_active(&self, n: usize) -> Result<(), Error> {
        let core = self.core();
        core.check_forked()?;
        if core.ordered {
            return Err(core.err(ErrorKind::Ordered("set_min_active()")));
        }
        if core.nna.is_empty() {
            return Err(
                core.err(ErrorKind::InvalidFlags("set_min_active() needs an unbound workqueue".into()))
            );
        }
        let _fg = core.flush.lock();
        let max = core.max_active.load(Ordering::Relaxed);
        core.min_active.store((n as u32).min(max), Ordering::Relaxed);
        core.adjust_max_active();
        Ok(())
    }

    /// Queues `work` on a CPU of NUMA node `node` (`queue_work_node`): the
    /// caller's CPU if it is on that node, else the node's first allowed CPU
    /// (the caller's if the node has none). The item starts in that CPU's pod
    /// and, as any item of a non-strict queue, may go to another pod when that
    /// one is busy.
    ///
    /// ```
    /// use cmwq::{ErrorKind, Work, Workqueue};
    ///
    /// let wq = Workqueue::builder("near-the-nic").build()?;
    /// let w = Work::new(|_| {});
    /// assert!(wq.queue_node(0, &w)?);
    /// w.flush()?;
    /// let err = wq.queue_node(cmwq::nr_numa_nodes(), &w).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InvalidNode { .. }));
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`queue`](Self::queue); [`ErrorKind::InvalidNode`];
    /// [`ErrorKind::InvalidFlags`] for a per-CPU queue (the kernel warns).
    pub fn queue_node(&self, node: usize, work: &Work) -> Result<bool, Error> {
        self.core().check_forked()?;
        let core = self.core();
        if core.unbound.is_none() {
            return Err(core.err(ErrorKind::InvalidFlags("queue_node() needs an unbound workqueue".into())));
        }
        let topo = &core.registry.ctx.topo;
        if node >= topo.nr_nodes() {
            return Err(core.err(ErrorKind::InvalidNode { node, nr_nodes: topo.nr_nodes() }));
        }
        // `select_numa_node_cpu`.
        let local = topo.local_cpu();
        let cpu = if topo.cpu_node(local) == node {
            local
        } else {
            topo.allowed.iter().copied().find(|&c| topo.cpu_node(c) == node).unwrap_or(local)
        };
        core.queue(Some(cpu), work)
    }

    /// Whether `cpu`'s pwq has items waiting for `max_active` (`workqueue_congested`).
    /// Advisory. For unbound queues the CPU only has to be valid.
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    /// use cmwq::{Work, Workqueue};
    ///
    /// let wq = Workqueue::ordered("congested").build()?; // max_active 1
    /// let cpu = cmwq::allowed_cpus()[0];
    /// let gate = Arc::new(Barrier::new(2));
    /// let g = gate.clone();
    /// let first = Work::new(move |_| { g.wait(); });
    /// let second = Work::new(|_| {});
    /// wq.queue(&first)?;
    /// assert!(!wq.is_congested(cpu)?); // `first` is active, nothing waits
    /// wq.queue(&second)?;
    /// assert!(wq.is_congested(cpu)?); // `second` waits for `max_active`
    /// gate.wait();
    /// wq.flush()?;
    /// assert!(!wq.is_congested(cpu)?);
    /// # Ok::<(), cmwq::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidCpu`].
    pub fn is_congested(&self, cpu: usize) -> Result<bool, Error> {
        let core = self.core();
        core.check_forked()?;
        core.check_cpu(cpu)?;
        Ok(core.created_pwq_of_cpu(cpu).is_some_and(|r| {
            let mut g = r.pool.lock();
            core.pwq_in(&mut g, &r).is_some_and(|p| !p.inactive.is_empty())
        }))
    }
}
