//! The atomic state word of a work item and its `Copy` snapshot.
//!
//! Modelled on the kernel's `work_struct::data` (§1.1 of the spec). The word has two
//! layouts, told apart by `QUEUED`:
//!
//! | bits   | queued layout (`QUEUED` = 1)         | off-queue layout (`QUEUED` = 0)       |
//! |--------|--------------------------------------|---------------------------------------|
//! | 0      | `PENDING` (always 1)                 | `PENDING`                             |
//! | 1      | 0                                    | 0                                     |
//! | 2      | `QUEUED` = 1                         | `QUEUED` = 0                          |
//! | 8..32  | pwq slot inside the pool             | disable depth (16 bits, 8..24)        |
//! | 32..64 | id of the pool that holds it         | id of the pool it last ran on, or NONE |
//!
//! Unlike the kernel's word, this one has no `INACTIVE` bit: whether a queued item
//! waits on its pwq's inactive list or on the worklist is known from the list that
//! holds it, under the pool lock. Activating an item then moves only its list entry
//! and never touches the item itself, which a long inactive list has let go cold
//! in the cache (`pwq::activate_inactive`).
//!
//! Ownership (the kernel's rule above `set_work_data`): whoever sets `PENDING` owns
//! the item and alone may write the word, until the item is linked into a pool's
//! list with [`WorkState::set_queued`]. From then on the word is written only under
//! that pool's lock. The disable depth changes only while `PENDING` is owned, which
//! is why a queued item always has depth 0.
//!
//! **Every write is a read-modify-write.** A `queue()` that finds `PENDING` set does
//! `fetch_or(PENDING, AcqRel)` and returns `false`; the worker that later clears
//! `PENDING` does so with `swap(AcqRel)`. Because all writes in between are RMWs,
//! they extend the release sequence of that failed `fetch_or`, so the worker's swap
//! synchronises with it: every store the failed queuer made before calling `queue()`
//! is visible to the callback. This is the kernel's `set_work_pool_and_clear_pending`
//! guarantee (its trailing `smp_mb()`), checked by the loom model in `work_state/tests.rs`.

use crate::platform::loom::{fence, AtomicU64, Ordering};

#[cfg(all(test, loom))]
mod tests;

/// Set while the item is queued or claimed by a queuer/canceller.
pub(crate) const PENDING: u64 = 1 << 0;
/// The word holds the queued layout (the kernel's `WORK_STRUCT_PWQ`).
pub(crate) const QUEUED: u64 = 1 << 2;
const DATA_SHIFT: u32 = 8;
const DATA_MASK: u64 = 0x00FF_FFFF;
const DEPTH_MASK: u64 = 0xFFFF;
const POOL_SHIFT: u32 = 32;
/// No pool yet (`WORK_OFFQ_POOL_NONE`).
pub(crate) const POOL_NONE: u32 = u32::MAX;
/// The largest disable depth (`WORK_OFFQ_DISABLE_BITS` = 16).
pub(crate) const DISABLE_MAX: u32 = DEPTH_MASK as u32;

/// A `Copy` snapshot of a [`WorkState`] word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    pub(crate) fn pending(self) -> bool {
        self.0 & PENDING != 0
    }
    pub(crate) fn queued(self) -> bool {
        self.0 & QUEUED != 0
    }
    pub(crate) fn pool_id(self) -> u32 {
        (self.0 >> POOL_SHIFT) as u32
    }
    /// Queued layout only.
    pub(crate) fn pwq_slot(self) -> u32 {
        debug_assert!(self.queued());
        ((self.0 >> DATA_SHIFT) & DATA_MASK) as u32
    }
    /// Off-queue layout only (a queued item always has depth 0).
    pub(crate) fn disable_depth(self) -> u32 {
        if self.queued() {
            0
        } else {
            ((self.0 >> DATA_SHIFT) & DEPTH_MASK) as u32
        }
    }
    fn offq(pool: u32, depth: u32, pending: bool) -> u64 {
        ((pool as u64) << POOL_SHIFT)
            | (((depth as u64) & DEPTH_MASK) << DATA_SHIFT)
            | if pending { PENDING } else { 0 }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Snapshot");
        d.field("pending", &self.pending()).field("queued", &self.queued());
        if self.queued() {
            d.field("pwq_slot", &self.pwq_slot());
        } else {
            d.field("disable_depth", &self.disable_depth());
        }
        d.field("pool", &self.pool_id()).finish()
    }
}

/// What [`WorkState::claim_pending`] found.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// `PENDING` was clear and is now ours; the snapshot is the word before.
    Claimed(Snapshot),
    /// Already pending: one instance stays, in its place; `queue()` returns false.
    AlreadyPending,
    /// The item is disabled; `PENDING` was released again; `queue()` returns false.
    Disabled,
}

/// The atomic state word.
#[derive(Debug)]
pub(crate) struct WorkState(AtomicU64);

impl WorkState {
    pub(crate) fn new() -> Self {
        WorkState(AtomicU64::new(Snapshot::offq(POOL_NONE, 0, false)))
    }

    /// The word now. Acquire: pairs with the Release half of the RMW that wrote
    /// the value read (every write below is one), so a reader that acts on what
    /// it sees (a canceller finding `PENDING` clear, a flusher finding the item
    /// queued) also sees what the writer did before writing it.
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// `test_and_set_bit(PENDING)` followed by `clear_pending_if_disabled()`.
    ///
    /// Always an RMW with Release, even when it fails, so that the worker's clearing
    /// swap synchronises with it (see the module docs).
    #[inline]
    pub(crate) fn claim_pending(&self) -> Claim {
        // Release: pairs with the worker's Acquire swap in
        // `clear_pending_for_execution` (module docs), also when the claim fails.
        // Acquire: pairs with the Release of the write that cleared `PENDING`, so
        // the new owner sees what the last owner did.
        let prev = Snapshot(self.0.fetch_or(PENDING, Ordering::AcqRel));
        if prev.pending() {
            return Claim::AlreadyPending;
        }
        if prev.disable_depth() > 0 {
            // We own PENDING, so nobody else writes the word; give it back.
            // Release: pairs with the Acquire of the next claim.
            self.0.fetch_and(!PENDING, Ordering::Release);
            return Claim::Disabled;
        }
        Claim::Claimed(prev)
    }

    /// Sets `PENDING` for an owner-grab (cancel, disable, enable). Returns the word
    /// before; if it was already pending, nothing changed and the caller does not own it.
    pub(crate) fn test_and_set_pending(&self) -> Snapshot {
        // AcqRel: as in `claim_pending`.
        Snapshot(self.0.fetch_or(PENDING, Ordering::AcqRel))
    }

    /// Links the owned item into a pool list (the kernel's `set_work_pwq`).
    /// Caller: the `PENDING` owner, holding the pool's lock.
    pub(crate) fn set_queued(&self, pool: u32, slot: u32) {
        debug_assert!(slot as u64 <= DATA_MASK);
        let w = ((pool as u64) << POOL_SHIFT) | ((slot as u64) << DATA_SHIFT) | QUEUED | PENDING;
        // Release: pairs with `load`'s Acquire (a reader that sees the item queued
        // sees it linked); an RMW, so it extends the release sequence of a failed
        // claim to the worker's swap (module docs). Acquire: pairs with the
        // Release of that failed claim, harmlessly.
        let prev = Snapshot(self.0.swap(w, Ordering::AcqRel));
        debug_assert!(prev.pending() && !prev.queued(), "set_queued on {prev:?}");
    }

    /// Dequeued for execution: record the pool and release `PENDING`
    /// (`set_work_pool_and_clear_pending`), then a full fence, which the kernel
    /// needs against a concurrent queuer's lost wake-up. Caller holds the pool lock.
    #[inline]
    pub(crate) fn clear_pending_for_execution(&self, pool: u32) {
        // Acquire: synchronises with the Release of every claim in the word's
        // release sequence, a failed one included, so the callback sees what the
        // failed queuer stored before it called `queue()` (module docs). Release:
        // pairs with the Acquire of the next claim.
        let prev = Snapshot(self.0.swap(Snapshot::offq(pool, 0, false), Ordering::AcqRel));
        debug_assert!(prev.queued() && prev.pending(), "execute on {prev:?}");
        // The kernel's `smp_mb()` after `set_work_pool_and_clear_pending`: pairs
        // with the full barrier of a queuer's test-and-set of `PENDING` (here its
        // AcqRel `fetch_or`), so the callback's accesses cannot move before the
        // clear and an instance queued meanwhile is never missed.
        fence(Ordering::SeqCst);
    }

    /// The header of a spawned closure (`work/spawned.rs`) starts disabled for good, as
    /// if it had been queued once and retired: it can never be queued again.
    pub(crate) fn retire(&self, pool: u32) {
        // Relaxed: the header is not shared yet; whatever shares it later (the
        // item's `OnceCell`, then a channel or a spawn of the user's) orders this.
        self.0.store(Snapshot::offq(pool, DISABLE_MAX, false), Ordering::Relaxed);
    }

    /// Stolen from a list while `PENDING` stays owned by the stealer
    /// (`set_work_pool_and_keep_pending`). Caller holds the pool lock.
    pub(crate) fn set_offq_keep_pending(&self, pool: u32) {
        // AcqRel: as in `set_queued`; the stealer, which owns `PENDING`, passes
        // it on with `release_pending`.
        self.0.swap(Snapshot::offq(pool, 0, true), Ordering::AcqRel);
    }

    /// Releases an owned `PENDING`, writing the disable depth. Caller owns `PENDING`.
    pub(crate) fn release_pending(&self, depth: u32) {
        // Relaxed: we own `PENDING`, so nobody else writes the word.
        let prev = Snapshot(self.0.load(Ordering::Relaxed));
        debug_assert!(prev.pending() && !prev.queued(), "release_pending on {prev:?}");
        // Release: pairs with the Acquire of the next claim, which sees the depth
        // and what we did as owner. Acquire: pairs with the Release of claims
        // that failed meanwhile, harmlessly.
        self.0.swap(Snapshot::offq(prev.pool_id(), depth, false), Ordering::AcqRel);
    }
}
