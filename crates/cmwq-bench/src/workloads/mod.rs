//! The workloads, one module each: its rows, how it runs, its headline lines
//! and its markdown.

pub(crate) mod bh;
pub(crate) mod detect;
pub(crate) mod many_queues;
pub(crate) mod mixed;
pub(crate) mod noop;
pub(crate) mod timers;
pub(crate) mod wake;

/// The workloads, in run order.
pub const WORKLOADS: [&str; 7] = ["noop", "wake", "mixed", "many-queues", "timers", "detect", "bh"];
