//! Workqueues: the user-facing queues, each with its own semantics (ordering,
//! `max_active`, priority, CPU affinity), all served by the shared pools.
//!
//! - `flags`: `WqFlags` and the `max_active` limits;
//! - `builder`: `Builder` (`alloc_workqueue`'s checks);
//! - `core`: `WqCore`, the queue as its pwqs share it (queueing, the pwq of a
//!   CPU, flush, drain, detach);
//! - `handle`: the public `Workqueue` handle;
//! - `stats`: `WqStats`;
//! - `flush`: flush colors;
//! - `delayed`: delayed queueing, and what a fired timer does (`Armed`).

mod attrs;
mod builder;
mod core;
mod delayed;
mod flags;
mod flush;
mod handle;
mod nr_active;
mod stats;
#[cfg(all(test, loom))]
mod tests;
mod unbound;

pub(crate) use attrs::PoolKey;
pub use attrs::{Attrs, MAX_NICE, MIN_NICE};
pub use builder::Builder;
pub(crate) use core::WqCore;
pub(crate) use delayed::Armed;
pub use flags::{WqFlags, WQ_DFL_ACTIVE, WQ_MAX_ACTIVE};
pub use handle::Workqueue;
pub use nr_active::WQ_DFL_MIN_ACTIVE;
pub use stats::WqStats;
