//! pool_workqueue: the link between a workqueue and a pool. Its state lives in the
//! pool's locked state (the kernel protects pwq fields with `pool->lock` too):
//! `nr_active`, the inactive list, the per-color in-flight counts and statistics.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::platform::log;
use crate::platform::topology::CpuList;
use crate::pool::{kick_pool, PoolLocked, WorkerPool};
use crate::work::{Spawned, Work};
use crate::workqueue::WqCore;

/// Where a workqueue's items go on one pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PwqRef {
    pub(crate) pool: &'static WorkerPool,
    pub(crate) slot: u32,
    /// The pwq table generation (`PwqState::epoch`).
    pub(crate) epoch: u32,
}

impl PwqRef {
    /// The same pwq: pool, slot and generation.
    #[inline]
    pub(crate) fn same(&self, o: &PwqRef) -> bool {
        self.pool.id == o.pool.id && self.slot == o.slot && self.epoch == o.epoch
    }
}

/// Flush colors (`WORK_NR_COLORS`).
pub(crate) const NR_COLORS: usize = 16;

/// A queued item: what runs, its pwq slot in the pool, and the flush color it was
/// queued with. Lists hold entries, so queueing never allocates once warm.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) task: Task,
    pub(crate) pwq: u32,
    pub(crate) color: u8,
}

/// What an entry runs.
#[derive(Debug)]
pub(crate) enum Task {
    /// A work item, with its state word, flush sequence and busy record.
    Work(Work),
    /// A closure from `Workqueue::spawn`, without a header (`work/spawned.rs`).
    Spawned(Spawned),
}

impl Entry {
    /// The work item this entry queues, if it is one (`work.key()`).
    #[inline]
    pub(crate) fn is_work(&self, key: usize) -> bool {
        matches!(&self.task, Task::Work(w) if w.key() == key)
    }

    /// The item's id in events and dumps: the work item's address (the kernel's
    /// `work struct %p`), or a spawned closure's.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        match &self.task {
            Task::Work(w) => w.key(),
            Task::Spawned(s) => s.data_ptr() as usize,
        }
    }

    /// Starts loading what running this entry will touch first (`sys::prefetch`).
    #[inline]
    pub(crate) fn prefetch(&self) {
        match &self.task {
            Task::Work(w) => w.prefetch(),
            Task::Spawned(s) => crate::platform::sys::prefetch(s.data_ptr()),
        }
    }
}

/// Per-pwq counters (`enum pool_workqueue_stats` in `kernel/workqueue.c`),
/// updated under the pool lock; `WqStats` documents each.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PwqStats {
    pub(crate) started: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cm_wakeup: u64,
    /// `PWQ_STAT_CPU_INTENSIVE`: items found on the CPU past the threshold.
    pub(crate) cpu_intensive: u64,
    /// `PWQ_STAT_CPU_TIME`, in ns, while items are timed (`context::counters::accounting`).
    pub(crate) cpu_time_ns: u64,
    /// Blocks the sleep monitor or an idle sentinel found (not the hints').
    pub(crate) monitor_blocks: u64,
    /// Times the pwq was sent to its rescuer (`PWQ_STAT_MAYDAY`).
    pub(crate) mayday: u64,
    /// Items its rescuer ran (`PWQ_STAT_RESCUED`).
    pub(crate) rescued: u64,
    /// BH items found blocking (a hint inside one, or the sleep monitor).
    pub(crate) bh_blocked: u64,
    /// Spawned closures run in a batch behind its first (`pool/batch.rs`).
    pub(crate) batched: u64,
}

/// One pool_workqueue's state. Every field is `L:`: it lives in the pool's
/// `PoolLocked.pwqs`, so it is reached only through the pool lock (as the kernel
/// protects `pool_workqueue` fields with `pool->lock`); `wq` is `I:`.
#[derive(Debug)]
pub(crate) struct PwqState {
    pub(crate) wq: Arc<WqCore>,
    pub(crate) max_active: u32,
    /// Items on the worklist, on a scheduled list or running.
    pub(crate) nr_active: u32,
    /// Items waiting for an active slot, FIFO.
    pub(crate) inactive: VecDeque<Entry>,
    /// Queued or running items per flush color.
    pub(crate) nr_in_flight: [u32; NR_COLORS],
    /// The color new items get.
    pub(crate) work_color: u8,
    /// Colors a flusher waits for on this pwq (bit per color).
    pub(crate) flush_colors: u16,
    /// The workqueue is gone; free the slot once nothing is in flight.
    pub(crate) released: bool,
    pub(crate) stats: PwqStats,
    /// `I`: the generation of an unbound queue's pwq table it belongs to (0 for
    /// per-CPU queues), so that a slot reused by a later generation is told apart.
    pub(crate) epoch: u32,
    /// An ordered queue's new pwq after `apply_attrs`: `max_active` stays 0
    /// until the old pwqs have drained (`pwq->plugged`). L.
    pub(crate) plugged: bool,
    /// `I`: the node count it shares (`WqCore::nna`), for an unbound queue's
    /// pwq; `None`: its own `max_active` is the only limit.
    pub(crate) nna: Option<u16>,
    /// On its node's pending list (`pwq->pending_node`). L.
    pub(crate) on_pending: bool,
}

impl PwqState {
    pub(crate) fn new(wq: Arc<WqCore>, max_active: u32, work_color: u8) -> Self {
        PwqState {
            wq,
            max_active,
            nr_active: 0,
            inactive: VecDeque::new(),
            nr_in_flight: [0; NR_COLORS],
            work_color,
            flush_colors: 0,
            released: false,
            stats: PwqStats::default(),
            epoch: 0,
            plugged: false,
            nna: None,
            on_pending: false,
        }
    }

    pub(crate) fn total_in_flight(&self) -> u32 {
        self.nr_in_flight.iter().sum()
    }

    /// `pwq_tryinc_nr_active`: room for one more active item, counted on the
    /// node if the pwq shares one (`fill`: may jump the pending list).
    #[inline]
    fn tryinc(&mut self, pool: &'static WorkerPool, slot: u32, fill: bool) -> bool {
        let Some(i) = self.nna else { return self.nr_active < self.max_active };
        // Sharing a node count, the pwq's own `max_active` only says whether it
        // is plugged or frozen (0); the node count is the limit.
        if self.max_active == 0 {
            return false;
        }
        let r = PwqRef { pool, slot, epoch: self.epoch };
        self.wq.nna[i as usize].tryinc(r, &mut self.on_pending, fill)
    }
}

/// `insert_work` for a work item whose `PENDING` the caller owns: see [`insert`].
/// Returns false (nothing changed) if the pwq was released with its workqueue.
/// `behind_running`: the pwq holds the item's running instance, which keeps it
/// alive even if released by `apply_attrs`.
#[inline]
pub(crate) fn insert_work(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    slot: u32,
    work: &Work,
    behind_running: bool,
    req_cpu: Option<usize>,
) -> bool {
    insert_in(pool, g, slot, Task::Work(work.clone()), behind_running, req_cpu).is_ok()
}

/// `insert_work` plus the activation decision of `__queue_work`: the item becomes
/// active only if no item waits before it and a slot is free; otherwise it joins
/// the tail of the inactive list. Caller holds the pool lock (and owns `PENDING`
/// of a work item). Gives the task back, nothing changed, if the pwq was released
/// with its workqueue. `req_cpu`: the CPU the caller asked for, if any (for
/// the `workqueue_queue_work` event).
#[inline]
pub(crate) fn insert(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    slot: u32,
    task: Task,
    req_cpu: Option<usize>,
) -> Result<(), Task> {
    insert_in(pool, g, slot, task, false, req_cpu)
}

#[inline]
fn insert_in(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    slot: u32,
    task: Task,
    even_released: bool,
    req_cpu: Option<usize>,
) -> Result<(), Task> {
    let pwq = g.pwqs.get_mut(slot as usize);
    if pwq.released && !even_released {
        return Err(task);
    }
    let color = pwq.work_color;
    pwq.nr_in_flight[color as usize] += 1;
    if let Task::Work(work) = &task {
        work.seq_queue();
        work.state().set_queued(pool.id, slot);
    }
    let entry = Entry { task, pwq: slot, color };
    // `trace_workqueue_queue_work` (`__queue_work`), under the pool lock as in
    // the kernel, so that it precedes the item's other events.
    log::event!(
        "workqueue_queue_work",
        workqueue = &*pwq.wq.name,
        work = entry.id(),
        req_cpu = req_cpu,
        cpu = pool.cpu,
        pod = log::display(CpuList(&pool.pod)),
        pool = pool.id
    );
    if pwq.inactive.is_empty() && pwq.tryinc(pool, slot, false) {
        // `trace_workqueue_activate_work`.
        log::event!("workqueue_activate_work", workqueue = &*pwq.wq.name, work = entry.id(), pool = pool.id);
        pwq.nr_active += 1;
        g.worklist.push_back(entry);
        pool.note_pushed(g, g.worklist.len() == 1);
        kick_pool(pool, g);
    } else {
        pwq.inactive.push_back(entry);
    }
    Ok(())
}

/// Activates inactive items of `slot` while it has free active slots
/// (`pwq_activate_first_inactive` with `fill`). Returns whether any moved.
/// Only list entries move: the items themselves are not touched (see `work::state`).
pub(crate) fn activate_inactive(pool: &'static WorkerPool, g: &mut PoolLocked, slot: u32) -> bool {
    let mut moved = false;
    let was_empty = g.worklist.is_empty();
    loop {
        let pwq = g.pwqs.get_mut(slot as usize);
        if pwq.inactive.is_empty() || !pwq.tryinc(pool, slot, true) {
            break;
        }
        let e = pwq.inactive.pop_front().expect("checked non-empty");
        // `trace_workqueue_activate_work` (`__pwq_activate_work`).
        log::event!("workqueue_activate_work", workqueue = &*pwq.wq.name, work = e.id(), pool = pool.id);
        pwq.nr_active += 1;
        g.worklist.push_back(e);
        moved = true;
    }
    // Off its node's pending list once it has nothing waiting; to its tail if
    // it still has (the next freed slot goes to the next pwq: round robin).
    let pwq = g.pwqs.get_mut(slot as usize);
    if let (Some(i), true) = (pwq.nna, pwq.on_pending) {
        let r = PwqRef { pool, slot, epoch: pwq.epoch };
        let waiting = !pwq.inactive.is_empty();
        pwq.wq.clone().nna[i as usize].requeue(r, &mut pwq.on_pending, waiting);
    }
    if moved {
        pool.note_pushed(g, was_empty);
        kick_pool(pool, g);
    }
    moved
}

/// An item left the pwq: it completed, or was cancelled while queued
/// (`pwq_dec_nr_in_flight`). `active` says whether it held an active slot.
pub(crate) fn dec_nr_in_flight(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    slot: u32,
    color: u8,
    active: bool,
) {
    if active {
        dec_nr_active(pool, g, slot);
    }
    let pwq = g.pwqs.get_mut(slot as usize);
    let c = color as usize;
    pwq.nr_in_flight[c] -= 1;
    // A flusher woken by this completion may read the queue's statistics at
    // once: it is told after the pwq, if this was its last item, has been freed
    // and its counts moved to the queue's (below), never in between.
    let flushed = (pwq.nr_in_flight[c] == 0 && pwq.flush_colors & (1 << c) != 0).then(|| {
        pwq.flush_colors &= !(1 << c);
        pwq.wq.clone()
    });
    let pwq = g.pwqs.get(slot as usize);
    if pwq.released && pwq.total_in_flight() == 0 {
        free(pool, g, slot);
    }
    if let Some(wq) = flushed {
        wq.flush.color_done(c);
    }
}

/// `pwq_dec_nr_active`: an active item of `slot` ended, and its slot goes to
/// the next item waiting for one. Caller holds the pool lock.
fn dec_nr_active(pool: &'static WorkerPool, g: &mut PoolLocked, slot: u32) {
    let pwq = g.pwqs.get_mut(slot as usize);
    let Some(i) = pwq.nna else {
        pwq.nr_active -= 1;
        if !pwq.inactive.is_empty() {
            activate_inactive(pool, g, slot);
        }
        return;
    };
    let nna = &pwq.wq.nna[i as usize];
    if pwq.max_active != 0 && !pwq.inactive.is_empty() && nna.keeps_slot(pwq.on_pending) {
        pass_slot(pool, g, slot, i);
        return;
    }
    pwq.nr_active -= 1;
    // Shared node count: the freed slot goes to the node's first pending pwq.
    if let Some(first) = nna.dec() {
        let wq = pwq.wq.clone();
        hand_over(pool, g, wq, i, first);
    }
}

/// The slot of an item of `slot` that ended goes to the pwq's first inactive
/// item, the pwq being the only one waiting on node count `i`
/// (`NodeNrActive::keeps_slot`): `nr_active` and the node's count stay as
/// they are. A pwq left with nothing waiting leaves the pending list. Caller
/// holds the pool lock.
fn pass_slot(pool: &'static WorkerPool, g: &mut PoolLocked, slot: u32, i: u16) {
    let was_empty = g.worklist.is_empty();
    let pwq = g.pwqs.get_mut(slot as usize);
    let e = pwq.inactive.pop_front().expect("checked non-empty");
    // `trace_workqueue_activate_work` (`__pwq_activate_work`).
    log::event!("workqueue_activate_work", workqueue = &*pwq.wq.name, work = e.id(), pool = pool.id);
    if pwq.inactive.is_empty() {
        let r = PwqRef { pool, slot, epoch: pwq.epoch };
        pwq.wq.clone().nna[i as usize].requeue(r, &mut pwq.on_pending, false);
    }
    g.worklist.push_back(e);
    pool.note_pushed(g, was_empty);
    kick_pool(pool, g);
}

/// A slot freed on node count `i` of `wq` goes to the node's first pending
/// pwq `p` (`node_activate_pending_pwq`): now if `p` is on this pool (whose
/// lock the caller holds); after the lock is released if it is on another, or
/// was freed meanwhile (`PoolLocked::to_activate`, which calls
/// `WqCore::node_activate_pending`, which comes back here under `p`'s pool
/// lock). A pwq found with nothing waiting (its waiting items were cancelled)
/// leaves the list and the next one is tried, as in the kernel: the slot would
/// otherwise be free while pwqs wait for one.
pub(crate) fn hand_over(
    pool: &'static WorkerPool,
    g: &mut PoolLocked,
    wq: Arc<WqCore>,
    i: u16,
    mut p: PwqRef,
) {
    loop {
        let here = p.pool.id == pool.id
            && g.pwqs.try_get(p.slot as usize).is_some_and(|q| q.epoch == p.epoch && Arc::ptr_eq(&q.wq, &wq));
        if !here {
            g.to_activate.push((wq, i));
            return;
        }
        let waiting = !g.pwqs.get(p.slot as usize).inactive.is_empty();
        // With nothing waiting, this only takes `p` off the list.
        activate_inactive(pool, g, p.slot);
        if waiting {
            return;
        }
        match wq.nna[i as usize].first_pending() {
            Some(next) => p = next,
            None => return,
        }
    }
}

/// Frees a released, idle pwq slot; its counters stay with the workqueue.
pub(crate) fn free(pool: &'static WorkerPool, g: &mut PoolLocked, slot: u32) {
    if let Some(p) = g.pwqs.remove(slot as usize) {
        p.wq.retire_stats(&p.stats);
        if let (Some(i), true) = (p.nna, p.on_pending) {
            p.wq.nna[i as usize].forget(PwqRef { pool, slot, epoch: p.epoch });
        }
        // Dropped after the lock (`PoolLocked::to_free`).
        g.to_free.push(p);
    }
}

impl PwqStats {
    pub(crate) fn add(&mut self, o: &PwqStats) {
        self.started += o.started;
        self.completed += o.completed;
        self.panicked += o.panicked;
        self.cm_wakeup += o.cm_wakeup;
        self.cpu_intensive += o.cpu_intensive;
        self.cpu_time_ns += o.cpu_time_ns;
        self.monitor_blocks += o.monitor_blocks;
        self.mayday += o.mayday;
        self.rescued += o.rescued;
        self.bh_blocked += o.bh_blocked;
        self.batched += o.batched;
    }
}
