//! `max_active` of an unbound workqueue, counted per NUMA node (the kernel's
//! `struct wq_node_nr_active`, `pwq_tryinc_nr_active`, `pwq_dec_nr_active`,
//! `node_activate_pending_pwq`, `wq_update_node_max_active`).
//!
//! An unbound queue has one pwq per pod, and pods of one node share a count:
//! an item becomes active only if its node's count is below the node's
//! maximum. A pwq that finds no room puts itself on the node's pending list;
//! each time an active item of the node ends, the first pending pwq gets the
//! freed slot (round robin), so no pod starves another.
//!
//! ## Why no slot is lost
//!
//! The count and a `PENDING` bit share one word. A pwq that finds no room
//! sets the bit in the same compare-and-swap that sees the count at the
//! maximum (under the pending lock, after putting itself on the list); an
//! ending item's decrement returns the word it changed. The two are
//! read-modify-writes of one word, so they are ordered: either the decrement
//! comes first and the compare-and-swap sees the lower count (the pwq takes the
//! slot), or it comes after and sees the bit (it hands the slot to the first
//! pending pwq). The bit is cleared only under the pending lock, when the list
//! empties, so "the list has a pwq" implies "the bit is set". The loom model
//! `pending_pwq_gets_the_freed_slot` (`workqueue/tests.rs`) checks this; its
//! mutant, which reads the count and sets the bit in two steps, strands the
//! pending item.
//!
//! A pwq found first on the list with nothing waiting (its waiting items
//! were cancelled) leaves it and the next one gets the slot
//! (`pwq::hand_over`, for a pwq on the ending item's pool and, through
//! `WqCore::node_activate_pending`, on another), as in the kernel.
//!
//! ## Passing a slot within a pwq (cmwq's own)
//!
//! While a pwq is the only one on the list and the count is within the
//! maximum, an item of it that ends gives its slot to the pwq's next waiting
//! item directly ([`NodeNrActive::keeps_slot`], `pwq::pass_slot`): the word is
//! not touched, neither the count nor `PENDING`, so the protocol above is
//! unchanged. What the pass decides is only which waiting item gets a slot,
//! and a pwq joining the list meanwhile gets the next one a decrement frees
//! (the pass stops once the joiner shows in `nr_pending`).
//!
//! Lock order: a pool lock, then a node's `pending` lock (a leaf). Handing a
//! slot to a pwq of another pool happens after the caller's pool lock is
//! released (`PoolLocked::to_activate`).

use std::collections::VecDeque;

use crate::platform::loom::{AtomicU32, Mutex, Ordering};
use crate::pwq::PwqRef;

/// `WQ_DFL_MIN_ACTIVE`: the per-node floor of an unbound queue's `max_active`.
pub const WQ_DFL_MIN_ACTIVE: usize = 8;

/// The `PENDING` bit of the word (module docs).
const PENDING: u32 = 1 << 31;

/// One node's share of an unbound queue's `max_active` (`wq_node_nr_active`).
#[derive(Debug)]
pub(crate) struct NodeNrActive {
    /// A: items of the node's pwqs that are active, and `PENDING` (module
    /// docs). Every change is a read-modify-write; `AcqRel` orders nothing
    /// else (the list is behind its lock), so `Relaxed` would do, but the word
    /// is a hand-over point and reads better strong.
    word: AtomicU32,
    /// A: the node's maximum; written under the queue's flush lock.
    max: AtomicU32,
    /// pwqs waiting for a slot, in the order they asked.
    pending: Mutex<VecDeque<PwqRef>>,
    /// A: the length of `pending`, stored under its lock at each change and
    /// read without it (relaxed) by [`keeps_slot`](Self::keeps_slot).
    nr_pending: AtomicU32,
}

impl NodeNrActive {
    pub(crate) fn new(max: u32) -> NodeNrActive {
        NodeNrActive {
            word: AtomicU32::new(0),
            max: AtomicU32::new(max),
            pending: Mutex::new(VecDeque::new()),
            nr_pending: AtomicU32::new(0),
        }
    }

    /// Takes a slot if the count is below the maximum; with `mark`, sets
    /// `PENDING` instead if it is not, in the same step (`tryinc_node_nr_active`).
    #[inline]
    fn take_or_mark(&self, mark: bool) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        #[cfg(all(loom, cmwq_loom_mutant))]
        if mark {
            // Mutant: the count is read, then the bit set, in two steps.
            if self.word.load(Ordering::Acquire) & !PENDING < max {
                self.word.fetch_add(1, Ordering::AcqRel);
                return true;
            }
            self.word.fetch_or(PENDING, Ordering::AcqRel);
            return false;
        }
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let new = if cur & !PENDING < max {
                cur + 1
            } else if mark && cur & PENDING == 0 {
                cur | PENDING
            } else {
                return false;
            };
            match self.word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return new & !PENDING > cur & !PENDING,
                Err(now) => cur = now,
            }
        }
    }

    /// After a change of the list: clears `PENDING` if it is empty, and
    /// stores its length. Caller holds the pending lock.
    fn sync_bit(&self, pend: &VecDeque<PwqRef>) {
        self.nr_pending.store(pend.len() as u32, Ordering::Relaxed);
        if pend.is_empty() {
            self.word.fetch_and(!PENDING, Ordering::AcqRel);
        }
    }

    /// `pwq_tryinc_nr_active` for the pwq `r`, whose pool lock the caller
    /// holds: a slot for one of its items, or `r` is put on the pending list
    /// (`*on_pending` says whether it is there). A pwq on the list does not
    /// jump it unless `fill` (a slot handed over, or `max_active` raised).
    pub(crate) fn tryinc(&self, r: PwqRef, on_pending: &mut bool, fill: bool) -> bool {
        if *on_pending && !fill {
            return false;
        }
        if self.take_or_mark(false) {
            return true;
        }
        let mut pend = self.pending.lock();
        if !*on_pending {
            pend.push_back(r);
            *on_pending = true;
            self.nr_pending.store(pend.len() as u32, Ordering::Relaxed);
        }
        // On the list before the bit: an ending item that sees the bit finds us.
        if self.take_or_mark(true) {
            if let Some(i) = pend.iter().position(|p| p.same(&r)) {
                pend.remove(i);
            }
            *on_pending = false;
            self.sync_bit(&pend);
            return true;
        }
        false
    }

    /// Whether an active item of the pwq that is on the pending list
    /// (`on_pending`) and ends now may pass its slot to that pwq's next
    /// waiting item, leaving the count as it is: the pwq is the only one
    /// waiting, and the count is within the maximum, so [`dec`](Self::dec)
    /// would hand the freed slot straight back to it. cmwq's own: the kernel's
    /// `pwq_dec_nr_active` decrements and `node_activate_pending_pwq`
    /// increments again, taking the pending lock, for every item that ends
    /// while items wait, which from one fast producer is most of them.
    ///
    /// No slot is lost: the count does not move, and `PENDING` stays set (the
    /// pwq is on the list). A pwq of another pool that joins the list meanwhile
    /// (the read of `nr_pending` is a relaxed hint) waits for the next
    /// decrement, which sees `PENDING` and hands the slot to the first of the
    /// list, as before; once this pwq sees two waiting, it takes that path too.
    #[inline]
    pub(crate) fn keeps_slot(&self, on_pending: bool) -> bool {
        on_pending
            && self.nr_pending.load(Ordering::Relaxed) == 1
            && self.word.load(Ordering::Relaxed) & !PENDING <= self.max.load(Ordering::Relaxed)
    }

    /// `pwq_dec_nr_active`'s node part: an active item ended. Returns the pwq
    /// that should get the freed slot, if one waits (the caller hands it over).
    pub(crate) fn dec(&self) -> Option<PwqRef> {
        let was = self.word.fetch_sub(1, Ordering::AcqRel);
        if was & PENDING == 0 || (was & !PENDING) > self.max.load(Ordering::Relaxed) {
            return None;
        }
        self.pending.lock().front().copied()
    }

    /// After a hand-over attempt on `r`: `r` leaves the list if it has no
    /// item left waiting, else goes to its tail (round robin). Caller holds
    /// `r`'s pool lock.
    pub(crate) fn requeue(&self, r: PwqRef, on_pending: &mut bool, still_waiting: bool) {
        let mut pend = self.pending.lock();
        if let Some(i) = pend.iter().position(|p| p.same(&r)) {
            pend.remove(i);
        }
        if still_waiting {
            pend.push_back(r);
            *on_pending = true;
        } else {
            *on_pending = false;
        }
        self.sync_bit(&pend);
    }

    /// The first pwq waiting, if any.
    pub(crate) fn first_pending(&self) -> Option<PwqRef> {
        if self.word.load(Ordering::Acquire) & PENDING == 0 {
            return None;
        }
        self.pending.lock().front().copied()
    }

    /// A pwq is freed: off the list.
    pub(crate) fn forget(&self, r: PwqRef) {
        let mut pend = self.pending.lock();
        if let Some(i) = pend.iter().position(|p| p.same(&r)) {
            pend.remove(i);
        }
        self.sync_bit(&pend);
    }

    /// For `debug::dump`: active items, the maximum, and how many pwqs wait
    /// for a slot (the counts `wq_dump.py` shows), read without ordering.
    pub(crate) fn snapshot(&self) -> (u32, u32, usize) {
        let active = self.word.load(Ordering::Relaxed) & !PENDING;
        (active, self.max.load(Ordering::Relaxed), self.pending.lock().len())
    }

    pub(crate) fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Active items now (the loom model checks it).
    #[cfg(all(test, loom))]
    pub(crate) fn nr(&self) -> u32 {
        self.word.load(Ordering::Relaxed) & !PENDING
    }
}

/// The per-node maxima (`wq_update_node_max_active`): node `n` gets
/// `clamp(ceil(max_active × its CPUs / all CPUs), min_active, max_active)` of
/// the queue's effective cpumask; the last slot (pools whose pod spans nodes,
/// `NUMA_NO_NODE`) gets `max_active`.
pub(crate) fn node_maxima(max_active: u32, min_active: u32, cpus_per_node: &[usize]) -> Vec<u32> {
    let total: usize = cpus_per_node.iter().sum();
    let mut v: Vec<u32> = cpus_per_node
        .iter()
        .map(|&n| {
            if total == 0 {
                return min_active;
            }
            let share = (max_active as usize * n).div_ceil(total) as u32;
            share.clamp(min_active.min(max_active), max_active)
        })
        .collect();
    v.push(max_active);
    v
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// `wq_update_node_max_active`'s arithmetic: shares in proportion to CPUs,
    /// rounded up, with `min_active` as a floor and `max_active` as a ceiling;
    /// the last slot (no node) gets `max_active`.
    #[test]
    fn node_maxima_split_by_cpus_with_a_floor() {
        // Two equal nodes.
        assert_eq!(node_maxima(1024, 8, &[64, 64]), [512, 512, 1024]);
        // Uneven nodes: 100 × 1/4 = 25, 100 × 3/4 = 75.
        assert_eq!(node_maxima(100, 8, &[16, 48]), [25, 75, 100]);
        // The floor: a node with few CPUs still gets min_active, so the sum
        // may exceed max_active.
        assert_eq!(node_maxima(16, 8, &[1, 63]), [8, 16, 16]);
        // Rounded up, not down.
        assert_eq!(node_maxima(3, 1, &[1, 1]), [2, 2, 3]);
        // A node with none of the queue's CPUs still gets min_active.
        assert_eq!(node_maxima(64, 8, &[0, 4]), [8, 64, 64]);
        // min_active above max_active is capped (set_min_active clamps too).
        assert_eq!(node_maxima(4, 8, &[2, 2]), [4, 4, 4]);
        // Frozen: nothing anywhere but the no-node slot follows max_active (0).
        assert_eq!(node_maxima(0, 0, &[2, 2]), [0, 0, 0]);
        // No CPUs at all: every node min_active.
        assert_eq!(node_maxima(64, 8, &[0, 0]), [8, 8, 64]);
    }
}
