//! The workqueue itself, as its pwqs and running items share it (the kernel's
//! `struct workqueue_struct`): queueing, the pwq of a CPU, flushing, draining
//! and detaching.
//!
//! Field legend (`pool/README.md` has the whole table): `I:` set at creation,
//! read-only after; `A:` an atomic read anywhere; `F:` under the flush lock
//! (`Flush::inner`); `L:` under a pool lock.

use std::sync::{Arc, OnceLock};

use super::attrs::Attrs;
use super::flags::WqFlags;
use super::flush::Flush;
use super::nr_active::{node_maxima, NodeNrActive};
use super::unbound::PwqTable;
use crate::platform::bug::abort_on_bug;
use crate::platform::error::{Error, ErrorKind, Name};
use crate::platform::log;
use crate::platform::loom::{AtomicBool, AtomicU32, Mutex, Ordering, RwLock};
use crate::platform::topology::AffinityScope;
use crate::pool::{PoolGuard, PoolLocked, Rescuer};
use crate::pwq::{self, PwqRef, PwqState, PwqStats, Task};
use crate::registry::Registry;
use crate::work::{Claim, Snapshot, Spawned, Work, POOL_NONE};

/// The pwqs of an unbound workqueue: the current table, and the earlier ones
/// whose pwqs still hold items (after `apply_attrs`).
#[derive(Debug)]
pub(crate) struct Unbound {
    /// The current generation. Read briefly to look a pwq up; never held while
    /// another lock is taken. Written by `apply_attrs` under the flush lock.
    pub(super) table: RwLock<Arc<PwqTable>>,
    /// Earlier generations, until their pwqs are freed. A leaf lock but for pool
    /// locks taken under it (flush walks them); never taken under a pool lock.
    pub(super) retired: Mutex<Vec<Arc<PwqTable>>>,
}

impl Unbound {
    pub(super) fn new(table: PwqTable) -> Unbound {
        Unbound { table: RwLock::new(Arc::new(table)), retired: Mutex::new(Vec::new()) }
    }
}

/// The workqueue state shared with its pwqs and with running items.
///
/// `destroying`, `destroyed` and `nr_drainers` are hints, read without a lock to
/// refuse queueing early with the right error; all their accesses are relaxed.
/// What decides is the pwq's `released` flag, set and read under the pool lock
/// (`link`, `spawn`), and, for timers, the timer base lock (`is_destroying`).
#[derive(Debug)]
pub(crate) struct WqCore {
    /// I.
    pub(crate) name: Box<str>,
    /// I.
    pub(crate) flags: WqFlags,
    /// I.
    pub(crate) ordered: bool,
    /// I: a system workqueue (`system.rs`): never drained or destroyed.
    pub(super) system: bool,
    /// I.
    pub(super) registry: &'static Registry,
    /// A, written under F: `saved_max_active`.
    pub(super) max_active: AtomicU32,
    /// A: threads in `drain` (relaxed hint, see above).
    pub(super) nr_drainers: AtomicU32,
    /// A: `destroy` has begun (relaxed hint, see above).
    pub(super) destroying: AtomicBool,
    /// A: destroyed, or its last handle dropped (relaxed hint, see above).
    pub(super) destroyed: AtomicBool,
    /// I once set: per-CPU queues: one slot per CPU id, created on first use
    /// (under F). Empty for unbound queues.
    pub(super) pwqs: Box<[OnceLock<PwqRef>]>,
    /// Unbound queues: their pwq tables.
    pub(super) unbound: Option<Unbound>,
    /// Unbound, not ordered: `max_active` counted per node, one count per node
    /// id and a last one for pools whose pod spans nodes (`node_nr_active`).
    /// Empty otherwise.
    pub(crate) nna: Box<[NodeNrActive]>,
    /// A, written under F: `min_active`, the per-node floor.
    pub(super) min_active: AtomicU32,
    pub(crate) flush: Flush,
    /// Counters of pwqs already freed (after `destroy` or the last handle's drop).
    /// A leaf lock, taken under a pool lock.
    pub(super) retired: Mutex<PwqStats>,
    /// I: a `MEM_RECLAIM` queue's rescuer (`wq->rescuer`); dropped with the
    /// queue, which tells its thread to end.
    pub(crate) rescuer: Option<Rescuer>,
    /// A: the flush-dependency warning about this queue was given (relaxed:
    /// the swap alone picks who warns).
    pub(super) flush_dep_warned: AtomicBool,
    /// A: a BH item of this queue was reported blocking (`pool/bh.rs`; relaxed:
    /// the swap alone picks who warns).
    pub(crate) bh_block_warned: AtomicBool,
}

impl WqCore {
    /// Keeps a freed pwq's counters. Called under a pool lock (a leaf lock here).
    pub(crate) fn retire_stats(&self, s: &PwqStats) {
        self.retired.lock().add(s);
    }

    pub(super) fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.name, kind)
    }

    /// Refuses in the child of a `fork()` (`platform/fork.rs`): one relaxed
    /// load, before any lock.
    #[inline]
    pub(super) fn check_forked(&self) -> Result<(), Error> {
        if crate::platform::fork::is_forked_child() {
            return Err(self.forked());
        }
        Ok(())
    }

    #[cold]
    fn forked(&self) -> Error {
        self.err(ErrorKind::Forked)
    }

    /// The `max_active` its pwqs use now: 0 while a freezable queue is frozen.
    /// Caller holds `flush.lock()`, which orders it against freeze and thaw.
    pub(super) fn effective_max_active(&self) -> u32 {
        if self.flags.contains(WqFlags::FREEZABLE) && self.registry.ctx.is_freezing() {
            0
        } else {
            // Relaxed: written under the flush lock, which the caller holds.
            self.max_active.load(Ordering::Relaxed)
        }
    }

    /// The node maxima from `max_active`, `min_active` and the current table's
    /// cpumask (`wq_update_node_max_active`). Caller holds `flush.lock()`.
    pub(super) fn update_node_max(&self) {
        if self.nna.is_empty() {
            return;
        }
        let Some(t) = self.table() else { return };
        let max = self.effective_max_active();
        // Frozen: nothing at all (`wq_adjust_max_active`).
        let min = if max == 0 { 0 } else { self.min_active.load(Ordering::Relaxed).min(max) };
        for (nna, m) in self.nna.iter().zip(node_maxima(max, min, &t.cpus_per_node)) {
            nna.set_max(m);
        }
    }

    /// A slot of node count `i` was freed for a pending pwq of another pool:
    /// hand it over (`node_activate_pending_pwq`). Called with no lock held.
    pub(crate) fn node_activate_pending(&self, i: u16) {
        let nna = &self.nna[i as usize];
        // A pwq found freed is forgotten and the next one tried: each turn
        // takes one pwq off the list. `hand_over` skips those with nothing
        // waiting.
        loop {
            let Some(p) = nna.first_pending() else { return };
            let mut g = p.pool.lock();
            let Some(q) = self.pwq_in(&mut g, &p) else {
                drop(g);
                nna.forget(p);
                continue;
            };
            let wq = q.wq.clone();
            pwq::hand_over(p.pool, &mut g, wq, i, p);
            return;
        }
    }

    /// The `max_active` of each pwq now: the effective one, at most 1 for an
    /// ordered queue. Caller holds `flush.lock()`.
    pub(super) fn pwq_max_active(&self) -> u32 {
        let n = self.effective_max_active();
        if self.ordered {
            n.min(1)
        } else {
            n
        }
    }

    /// Applies the effective `max_active` to every pwq, activating what it allows
    /// (`wq_adjust_max_active`). Caller holds `flush.lock()`.
    pub(crate) fn adjust_max_active(&self) {
        self.update_node_max();
        let n = self.pwq_max_active();
        self.for_each_pwq(|r| {
            let mut g = r.pool.lock();
            if let Some(p) = self.pwq_in(&mut g, r) {
                p.max_active = if p.plugged { 0 } else { n };
                pwq::activate_inactive(r.pool, &mut g, r.slot);
            }
        });
    }

    /// Whether a pwq of this queue has active items (`freeze_workqueues_busy`).
    pub(crate) fn has_active(&self) -> bool {
        self.any_pwq(|r| {
            let mut g = r.pool.lock();
            self.pwq_in(&mut g, r).is_some_and(|p| p.nr_active > 0)
        })
    }

    /// This workqueue's pwq state on `r`'s pool, if the slot still belongs to it.
    pub(super) fn pwq_in<'a>(&self, g: &'a mut PoolLocked, r: &PwqRef) -> Option<&'a mut PwqState> {
        g.pwqs
            .try_get_mut(r.slot as usize)
            .filter(|p| std::ptr::eq(Arc::as_ptr(&p.wq), self) && p.epoch == r.epoch)
    }

    /// Whether this workqueue's pwq on `r` has items queued, inactive or running
    /// (takes `r`'s pool lock).
    fn has_in_flight(&self, r: &PwqRef) -> bool {
        let mut g = r.pool.lock();
        self.pwq_in(&mut g, r).is_some_and(|p| p.total_in_flight() > 0)
    }

    /// Calls `f` for every pwq created so far, of every table generation still
    /// alive. No lock of the queue is held while `f` runs but the retired list's.
    pub(super) fn for_each_pwq(&self, mut f: impl FnMut(&PwqRef)) {
        match &self.unbound {
            None => self.pwqs.iter().filter_map(OnceLock::get).for_each(f),
            Some(u) => {
                let cur = u.table.read().clone();
                cur.created().for_each(&mut f);
                // Copied out, so that `f` may free a pwq (and `pwq_freed` take
                // the lock); allocates only while an `apply_attrs` drains.
                let retired = {
                    let r = u.retired.lock();
                    if r.is_empty() {
                        return;
                    }
                    r.clone()
                };
                for t in &retired {
                    t.created().for_each(&mut f);
                }
            }
        }
    }

    /// Whether any pwq satisfies `pred` (stops at the first).
    fn any_pwq(&self, mut pred: impl FnMut(&PwqRef) -> bool) -> bool {
        let mut found = false;
        self.for_each_pwq(|r| found = found || pred(r));
        found
    }

    /// The pwq that serves `cpu` (its pod's, for an unbound queue; no
    /// placement), if it was created.
    pub(super) fn created_pwq_of_cpu(&self, cpu: usize) -> Option<PwqRef> {
        match &self.unbound {
            None => self.pwqs[cpu].get().copied(),
            Some(u) => {
                let t = u.table.read();
                t.get(t.pool_of_cpu(cpu))
            }
        }
    }

    /// `apply_workqueue_attrs`: new items go to the pools of `attrs` once this
    /// returns; items already queued or running finish where they are. An
    /// ordered queue's new pwq is plugged until the old ones have drained, so
    /// that its order holds across the change.
    pub(super) fn apply_attrs(self: &Arc<Self>, attrs: Attrs) -> Result<(), Error> {
        let Some(u) = &self.unbound else {
            return Err(self.err(ErrorKind::InvalidAttrs(
                "attributes apply to unbound workqueues, not PERCPU ones".into(),
            )));
        };
        attrs.check(&self.name, &self.registry.ctx.topo)?;
        if self.destroyed.load(Ordering::Relaxed) || self.destroying.load(Ordering::Relaxed) {
            return Err(self.err(ErrorKind::Destroyed));
        }
        let fg = self.flush.lock();
        let scope = self.registry.ctx.config.resolve_scope(attrs.affinity_scope);
        let mut retired = u.retired.lock();
        let old = u.table.read().clone();
        let new =
            Arc::new(PwqTable::new(self.registry, attrs, scope, self.ordered, old.epoch.wrapping_add(1)));
        if self.ordered {
            // Plugged whatever the earlier generations hold, as the kernel does
            // (`apply_wqattrs_prepare`): a closure may reach the old pwq until
            // the table is replaced below, after any look at it here. The
            // `pwq_freed` after the release unplugs it once no earlier pwq is
            // left (at once, if none held anything).
            let color = Flush::color_of(&fg);
            new.get_or_make(new.dfl_index(), |pool, node| {
                self.make_unbound_pwq(pool, new.epoch, node, color, true)
            });
        }
        *u.table.write() = new;
        retired.push(old.clone());
        // The cpumask may have moved between nodes.
        self.update_node_max();
        drop(retired);
        drop(fg);
        old.created().for_each(|r| self.release_pwq(r));
        self.pwq_freed();
        Ok(())
    }

    /// A pwq of this queue on the unbound `pool` for the table generation
    /// `epoch` (`alloc_unbound_pwq`), counting on node count `node`, starting
    /// with flush color `color` (the caller holds the flush lock). A plugged
    /// pwq activates nothing until [`pwq_freed`](Self::pwq_freed) unplugs it.
    fn make_unbound_pwq(
        self: &Arc<Self>,
        pool: &'static crate::pool::WorkerPool,
        epoch: u32,
        node: u16,
        color: u8,
        plugged: bool,
    ) -> PwqRef {
        let mut g = pool.lock();
        let max_active = if plugged { 0 } else { self.pwq_max_active() };
        let mut st = PwqState::new(self.clone(), max_active, color);
        st.epoch = epoch;
        st.plugged = plugged;
        if !self.nna.is_empty() {
            st.nna = Some(node);
        }
        let slot = g.pwqs.insert(st);
        PwqRef { pool, slot: u32::try_from(slot).expect("pwq slots exhausted"), epoch }
    }

    /// The process-wide default scope changed: a queue whose attributes ask
    /// for the default gets the new pods (`wq_affn_dfl_set`).
    pub(crate) fn default_scope_changed(self: &Arc<Self>) {
        let Some(t) = self.table() else { return };
        if t.attrs.affinity_scope == AffinityScope::Default
            && t.scope != self.registry.ctx.config.default_scope()
        {
            // A queue being destroyed keeps its pools: nothing new runs on it.
            let _ = self.apply_attrs(t.attrs.clone());
        }
    }

    /// A pwq of this queue was freed (called with no lock held): retired
    /// tables whose pwqs are all gone are dropped, and an ordered queue's
    /// plugged pwq is unplugged once none is left (`unplug_oldest_pwq`).
    pub(crate) fn pwq_freed(&self) {
        let Some(u) = &self.unbound else { return };
        let mut retired = u.retired.lock();
        if retired.is_empty() {
            return;
        }
        retired.retain(|t| {
            t.created().any(|r| {
                let mut g = r.pool.lock();
                self.pwq_in(&mut g, r).is_some()
            })
        });
        if !self.ordered {
            return;
        }
        // The oldest generation that still has its pwq goes next
        // (`unplug_oldest_pwq`): each `apply_attrs` plugged its own, and a plugged
        // pwq that was retired in turn must still run what it holds before the
        // newer ones.
        let oldest = match retired.first() {
            Some(t) => t.dfl(),
            None => u.table.read().dfl(),
        };
        let Some(r) = oldest else { return };
        // The flush lock comes before the retired lock (`apply_attrs`). A newer
        // `apply_attrs` in between plugs its own pwq behind this one.
        drop(retired);
        let _fg = self.flush.lock();
        let mut g = r.pool.lock();
        let n = self.pwq_max_active();
        if let Some(p) = self.pwq_in(&mut g, &r).filter(|p| p.plugged) {
            p.plugged = false;
            p.max_active = n;
            pwq::activate_inactive(r.pool, &mut g, r.slot);
        }
    }

    /// The current pwq table of an unbound queue.
    pub(crate) fn table(&self) -> Option<Arc<PwqTable>> {
        self.unbound.as_ref().map(|u| u.table.read().clone())
    }

    /// Refuses queueing from outside while draining or destroying (the kernel's
    /// `__queue_work` check with `is_chained_work`).
    pub(super) fn check_open(&self) -> Result<(), Error> {
        self.check_forked()?;
        if self.destroyed.load(Ordering::Relaxed) {
            return Err(self.err(ErrorKind::Destroyed));
        }
        let closing = self.nr_drainers.load(Ordering::Relaxed) > 0 || self.destroying.load(Ordering::Relaxed);
        if closing && !crate::current::runs_item_of(self) {
            return Err(self.err(if self.destroying.load(Ordering::Relaxed) {
                ErrorKind::Destroyed
            } else {
                ErrorKind::Draining
            }));
        }
        Ok(())
    }

    /// `check_flush_dependency`: flushing this queue, which has no rescuer,
    /// from an item of a `MEM_RECLAIM` queue (run by a worker or by its
    /// rescuer) may wait for a worker that cannot be created, which is what
    /// the flusher's rescuer was meant to rule out. Warned once per flushed
    /// queue, naming both. Called by [`Workqueue::flush`](crate::Workqueue::flush),
    /// `drain`, and [`Work::flush`] for the queue of the instance it waits for.
    pub(crate) fn check_flush_dependency(&self) {
        if self.flags.contains(WqFlags::MEM_RECLAIM) {
            return;
        }
        let Some(me) = crate::current::worker() else { return };
        let flusher = {
            let g = me.pool.lock();
            let Some(cur) = g.workers.try_get(me.idx).and_then(|w| w.current) else { return };
            let wq = &g.pwqs.get(cur.pwq as usize).wq;
            if !wq.flags.contains(WqFlags::MEM_RECLAIM) {
                return;
            }
            wq.name.clone()
        };
        if !self.flush_dep_warned.swap(true, Ordering::Relaxed) {
            self.registry.ctx.counters.count_flush_dependency();
            log::warn!(
                flusher = log::display(Name(&flusher)),
                workqueue = log::display(Name(&self.name)),
                "workqueue: WQ_MEM_RECLAIM flusher is flushing !WQ_MEM_RECLAIM workqueue; it may wait for a \
                 worker that cannot be created"
            );
        }
    }

    /// Waiting for this queue from one of its own items would wait for itself;
    /// so would waiting for it from a BH item while it has items queued on
    /// that item's BH pool (see [`check_not_behind_bh`](Self::check_not_behind_bh)).
    pub(super) fn check_not_own_item(&self, what: &'static str) -> Result<(), Error> {
        self.check_forked()?;
        if crate::current::runs_item_of(self) {
            return Err(self.err(ErrorKind::WouldDeadlock(what)));
        }
        self.check_not_behind_bh()
    }

    /// A BH pool has one context, which runs its items one after the other: a
    /// BH item that waits for this queue while the queue has items on the same
    /// BH pool (necessarily queued behind the caller) would wait for ever. The
    /// kernel has no such case to catch: a BH item may not sleep at all
    /// (`might_sleep` in `__flush_workqueue`).
    fn check_not_behind_bh(&self) -> Result<(), Error> {
        let Some(me) = crate::current::worker().filter(|w| w.pool.bh) else { return Ok(()) };
        if self.any_pwq(|r| r.pool.id == me.pool.id && self.has_in_flight(r)) {
            return Err(self.err(ErrorKind::WouldDeadlock(
                "waiting from a BH item for a workqueue with items queued behind it on its BH context",
            )));
        }
        Ok(())
    }

    /// Drain and destroy: not on a system queue, not from an own item.
    pub(super) fn check_may_close(&self, op: &'static str, own: &'static str) -> Result<(), Error> {
        if self.system {
            return Err(self.err(ErrorKind::SystemWorkqueue(op)));
        }
        self.check_not_own_item(own)
    }

    pub(super) fn check_cpu(&self, cpu: usize) -> Result<(), Error> {
        let topo = &self.registry.ctx.topo;
        if cpu < topo.nr_cpu_ids && topo.is_allowed(cpu) {
            Ok(())
        } else {
            Err(self.err(ErrorKind::InvalidCpu { cpu, allowed: topo.allowed.clone() }))
        }
    }

    /// The pwq that serves `cpu` (the caller's CPU if `None`), created on first use
    /// under the flush lock, so that it starts with the current flush color.
    /// For an unbound queue, the pwq of `cpu`'s pod, or of a less busy pod
    /// (`unbound.rs`, placement).
    #[inline]
    pub(super) fn pwq_for(self: &Arc<Self>, cpu: Option<usize>) -> PwqRef {
        let cpu = cpu.unwrap_or_else(|| self.registry.ctx.topo.local_cpu());
        if let Some(u) = &self.unbound {
            let t = u.table.read();
            let i = t.place(cpu);
            if let Some(r) = t.get(i) {
                return r;
            }
            // Created under the flush lock, which is never taken with the table
            // read (`apply_attrs` takes it, then the table's write lock).
            let table = Arc::clone(&t);
            drop(t);
            return table.get_or_make(i, |pool, node| {
                let fg = self.flush.lock();
                self.make_unbound_pwq(pool, table.epoch, node, Flush::color_of(&fg), false)
            });
        }
        *self.pwqs[cpu].get_or_init(|| {
            let highpri = self.flags.contains(WqFlags::HIGHPRI);
            // A BH queue is served by the CPU's BH pool (`pool/bh.rs`).
            let pool = if self.flags.contains(WqFlags::BH) {
                self.registry.bh_pool(cpu, highpri)
            } else {
                self.registry.cpu_pool(cpu, highpri)
            };
            let fg = self.flush.lock();
            let mut g = pool.lock();
            let slot =
                g.pwqs.insert(PwqState::new(self.clone(), self.effective_max_active(), Flush::color_of(&fg)));
            PwqRef { pool, slot: u32::try_from(slot).expect("pwq slots exhausted"), epoch: 0 }
        })
    }

    pub(super) fn queue(self: &Arc<Self>, cpu: Option<usize>, work: &Work) -> Result<bool, Error> {
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
    pub(super) fn spawn(self: &Arc<Self>, task: Spawned) -> Result<(), (Error, Spawned)> {
        let Some((r, mut g)) = self.live_pwq(None, self.pwq_for(None)) else {
            return Err((self.err(ErrorKind::Destroyed), task));
        };
        match pwq::insert(r.pool, &mut g, r.slot, Task::Spawned(task), None) {
            Ok(()) => Ok(()),
            Err(_) => abort_on_bug("a live pwq refused a spawned closure"),
        }
    }

    /// The pwq `r` serving `cpu`, locked, if it is still this queue's and not
    /// released; else, when `apply_attrs` replaced the table after `r` was looked
    /// up, the new table's pwq. `None` once the queue is destroyed.
    #[inline]
    fn live_pwq(self: &Arc<Self>, cpu: Option<usize>, mut r: PwqRef) -> Option<(PwqRef, PoolGuard<'static>)> {
        loop {
            let mut g = r.pool.lock();
            if self.pwq_in(&mut g, &r).is_some_and(|p| !p.released) {
                return Some((r, g));
            }
            drop(g);
            if self.unbound.is_none() || self.destroyed.load(Ordering::Relaxed) {
                return None;
            }
            r = self.pwq_for(cpu);
        }
    }

    /// Links an item whose `PENDING` we own into the pool that should run it.
    /// False if the pwq was released with the workqueue meanwhile.
    pub(super) fn link(self: &Arc<Self>, cpu: Option<usize>, work: &Work, prev: Snapshot) -> bool {
        let r = self.pwq_for(cpu);
        // Non-reentrancy (`__queue_work`, "last_pool"): if the item still runs on the pool it last ran on,
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
                    // The running instance keeps its pwq alive, even one that
                    // `apply_attrs` retired.
                    return pwq::insert_work(lp, &mut g, cur.pwq, work, true, cpu);
                }
            }
        }
        match self.live_pwq(cpu, r) {
            Some((r, mut g)) => pwq::insert_work(r.pool, &mut g, r.slot, work, false, cpu),
            None => false,
        }
    }

    /// Runs one flush: every item queued before the call has finished on return.
    /// All of it may block (a free color, the flush lock, the items), so from a
    /// work item it runs announced, and the item's CPU runs other items meanwhile.
    pub(super) fn flush_once(&self) {
        crate::pool::blocking_until(None, || self.flush_once_inner())
    }

    fn flush_once_inner(&self) {
        let fg = self.flush.lock();
        let (fg, epoch) = self.flush.begin(fg);
        let color = (epoch % pwq::NR_COLORS as u64) as usize;
        let next = Flush::color_of(&fg);
        self.for_each_pwq(|r| {
            let mut g = r.pool.lock();
            if let Some(p) = self.pwq_in(&mut g, r) {
                p.work_color = next;
                if p.nr_in_flight[color] > 0 {
                    p.flush_colors |= 1 << color;
                    self.flush.register(color);
                }
            }
        });
        drop(fg);
        self.flush.wait(epoch);
    }

    /// Whether no item is queued, inactive or running on any pwq.
    fn is_idle(&self) -> bool {
        !self.any_pwq(|r| self.has_in_flight(r))
    }

    /// `drain_workqueue`: flush until empty; only chained queueing is allowed meanwhile.
    pub(super) fn drain_inner(&self) {
        self.nr_drainers.fetch_add(1, Ordering::Relaxed);
        let mut tries = 0u32;
        loop {
            self.flush_once();
            if self.is_idle() {
                break;
            }
            tries += 1;
            if tries == 10 || (tries % 100 == 0 && tries <= 1000) {
                log::warn!(
                    workqueue = &*self.name,
                    tries = tries,
                    "workqueue: drain_workqueue() isn't complete after this many tries"
                );
            }
        }
        self.nr_drainers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Detaches every pwq, once (after `destroy`, or when the last handle is
    /// dropped): each is freed when its last item completes.
    pub(super) fn release_pwqs(&self) {
        self.for_each_pwq(|r| Self::release_pwq(self, r));
    }

    /// Detaches one pwq: freed now if idle, else when its last item completes.
    pub(super) fn release_pwq(&self, r: &PwqRef) {
        let mut g = r.pool.lock();
        let free = match self.pwq_in(&mut g, r) {
            Some(p) => {
                p.released = true;
                p.total_in_flight() == 0
            }
            None => false,
        };
        if free {
            pwq::free(r.pool, &mut g, r.slot);
        }
    }
}
