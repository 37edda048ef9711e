//! Finding a queued item in its pool's lists: to take it off them
//! (`try_to_grab_pending`), or to tell that waiting for it would wait for the
//! calling item itself.

use std::collections::VecDeque;
use std::sync::Arc;

use super::by_id;
use crate::context::work_state::Snapshot;
use crate::platform::bug::abort_on_bug;
use crate::pwq::{dec_nr_in_flight, Entry};
use crate::work::Work;
use crate::workqueue::WqCore;

/// Takes a queued item off whatever list of `snap`'s pool holds it, keeping
/// `PENDING` for the caller (`try_to_grab_pending`). False if it moved meanwhile.
pub(crate) fn steal(work: &Work, snap: Snapshot) -> bool {
    let Some(pool) = by_id(snap.pool_id()) else { return false };
    let mut g = pool.lock();
    let cur = work.state().load();
    if !(cur.queued() && cur.pool_id() == pool.id) {
        return false;
    }
    let key = work.key();
    let slot = cur.pwq_slot();
    let take = |q: &mut VecDeque<Entry>| q.iter().position(|e| e.is_work(key)).and_then(|i| q.remove(i));
    // Active items are on the worklist or a worker's scheduled list; the others
    // wait on their pwq's inactive list (the word does not say which).
    let active =
        take(&mut g.worklist).or_else(|| g.workers.iter_mut().find_map(|(_, w)| take(&mut w.scheduled)));
    let (entry, active) = match active {
        Some(e) => (Some(e), true),
        None => (take(&mut g.pwqs.get_mut(slot as usize).inactive), false),
    };
    pool.note_queued(&g);
    let Some(entry) = entry else {
        // The word says queued on this pool, under its lock: a broken invariant.
        abort_on_bug("queued work item missing from its pool's lists");
    };
    work.state().set_offq_keep_pending(pool.id);
    dec_nr_in_flight(pool, &mut g, slot, entry.color, active);
    drop(g);
    drop(entry);
    true
}

/// If the calling thread executes an item of a pwq with `max_active <= 1` and `work`
/// is queued inactive behind it on that pwq, or executes a BH item and `work` is
/// queued on the same BH pool (its one context runs it only after the calling
/// item), the name of `work`'s workqueue and why: waiting for `work` would wait
/// for ourselves.
pub(crate) fn blocked_behind_current(work: &Work, snap: Snapshot) -> Option<(String, &'static str)> {
    let me = crate::current::worker()?;
    if me.pool.id != snap.pool_id() {
        return None;
    }
    let g = me.pool.lock();
    let cur = work.state().load();
    if !(cur.queued() && cur.pool_id() == me.pool.id) {
        return None;
    }
    let running = g.workers.get(me.idx).current?;
    if me.pool.bh {
        let wq = &g.pwqs.get(cur.pwq_slot() as usize).wq;
        return Some((
            wq.name.to_string(),
            "flush() from a BH item of an item queued behind it on its BH context",
        ));
    }
    let pwq = g.pwqs.get(running.pwq as usize);
    let key = work.key();
    (running.pwq == cur.pwq_slot() && pwq.max_active <= 1 && pwq.inactive.iter().any(|e| e.is_work(key)))
        .then(|| {
            (pwq.wq.name.to_string(), "flush() of an item queued behind the calling item (max_active 1)")
        })
}

/// The workqueue of `work`'s instance that a flush would wait for: the pwq it
/// is queued on, or else the one it runs for on its last pool (the kernel's
/// `get_work_pwq`, then `find_worker_executing_work`, in `start_flush_work`).
/// `None` if it is neither queued nor running.
pub(crate) fn flushed_wq(work: &Work, snap: Snapshot) -> Option<Arc<WqCore>> {
    let pool = by_id(snap.pool_id())?;
    let g = pool.lock();
    let cur = work.state().load();
    if cur.pool_id() != pool.id {
        return None;
    }
    let slot = if cur.queued() {
        cur.pwq_slot()
    } else {
        g.workers.try_get(work.running_on(pool.id)?)?.current?.pwq
    };
    g.pwqs.try_get(slot as usize).map(|p| p.wq.clone())
}
