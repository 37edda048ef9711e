//! Timers: a clock, a hierarchical timing wheel and one timer thread, generic
//! over what a timer fires (`base::Timed`). Delayed work (`workqueue/delayed.rs`)
//! is their one user; the public clock control is `cmwq::timer` (`src/timer.rs`).
//!
//! ## Parts
//!
//! - `clock`: the monotonic time source.
//! - `wheel`: a hierarchical timing wheel, a plain data structure (no locks, no
//!   atomics).
//! - `base`: the wheel behind its lock, the timer thread, the pausable clock and
//!   the arm/fire/steal protocol with delayed items (see its docs).
//!
//! ## Structure
//!
//! Time is cut into ticks (1 ms by default). The wheel has `wheel::LEVELS`
//! levels of 64 slots; a slot of level `k` spans `64^k` ticks, so the levels
//! together span `64^6 = 2^36` ticks (about 2.2 years at 1 ms). A timer is filed
//! at the level of the highest 6-bit digit in which its tick differs from the
//! wheel's current tick, like the kernel's timer wheel and tokio's. Deadlines
//! further away than the top level go to an overflow list. As time passes, a
//! higher-level slot whose range is reached is emptied and its timers are
//! re-filed ("cascaded") at lower levels, until they reach level 0, where a slot
//! holds the timers of exactly one tick and fires them.
//!
//! Timers live in a slab (`Vec` plus free list); every slot (and the overflow
//! list) is a doubly linked list of slab indices, with the links stored in the
//! entries, so there is no `unsafe` and no per-timer allocation once the slab
//! has grown.
//!
//! ## Complexity
//!
//! - `arm`, `cancel`, `len`: O(1) (amortized for `arm`, which may grow the slab).
//! - `advance`: O(fired + cascaded + levels × occupied slots visited); each timer
//!   is cascaded at most once per level, so at most `LEVELS` times in its life.
//!   A jump far ahead in one call costs the same as many small steps, not the
//!   number of ticks skipped: empty slots are skipped with per-level bitmaps.
//! - `next_deadline`: O(levels) plus a scan of one level-0 slot; O(overflow)
//!   when only overflow timers remain.
//!
//! ## Guarantees
//!
//! - `advance(now)` fires exactly the pending timers whose deadline is `<= now`
//!   (in nanoseconds, not rounded to ticks): never one early, none left behind.
//!   A deadline in the past, or equal to the current time, fires on the next
//!   `advance`.
//! - Within one `advance` call, timers are delivered in non-decreasing tick
//!   order, where a timer's tick is `deadline / tick`, or the wheel's current
//!   tick if the deadline had already passed when it was armed. Timers of the
//!   same tick come in no particular order.
//! - `next_deadline` is a lower bound of the earliest pending deadline: exact
//!   when that timer sits in level 0 (due within the current 64-tick window) or
//!   in the overflow list, otherwise the start of the slot that holds it (at most
//!   one slot width early; advancing to it cascades and tightens the bound).
//! - A `wheel::TimerId` carries a generation: a stale id (its timer fired or
//!   was cancelled) never cancels a timer that reuses its slab slot.

pub(crate) mod base;
pub(crate) mod clock;
pub(crate) mod wheel;

pub(crate) use base::{Timed, TimerBase, TimerSlot};
