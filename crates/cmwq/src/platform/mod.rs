//! The platform layer: what cmwq needs from Linux and from the standard
//! library, with no knowledge of workqueues. Nothing here imports from a layer
//! above (`context`, the core, `monitor`, the facade).
//!
//! - [`log`]: logging through `tracing`, or nothing without the feature;
//! - [`loom`]: the std/loom switch every synchronisation type comes from;
//! - [`sys`]: every `unsafe` platform call, and the probe that reads another
//!   thread's scheduler state and CPU clock;
//! - [`topology`]: the CPUs the process may use, the cgroup CPU quota;
//! - [`error`]: the typed errors of the public API;
//! - [`fork`]: noticing that the process is the child of a `fork()`;
//! - [`slab`]: stable indices for workers and pwqs;
//! - [`bug`]: aborting on a broken internal invariant;
//! - [`timer`]: a clock, a timing wheel, and one timer thread, generic over
//!   what a timer fires.

pub(crate) mod bug;
pub(crate) mod error;
pub(crate) mod fork;
pub(crate) mod log;
pub(crate) mod loom;
pub(crate) mod slab;
pub(crate) mod sys;
pub(crate) mod timer;
pub(crate) mod topology;
