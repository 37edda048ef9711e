//! `fork()`: cmwq in the child of a process that has used it.
//!
//! A child starts with one thread, a copy of the one that called `fork`. The
//! process state it inherits names workers, a monitor and a timer thread that do
//! not exist in it, and locks that some of those threads may have held at the
//! moment of the fork, held for ever now. Queueing there would return
//! `Ok(true)` and run nothing, `flush()` would hang, and any call could block on
//! such a lock.
//!
//! **The decision: refuse, with a typed error.** Re-creating the process state
//! in the child cannot be done safely: the inherited items, pools and handles
//! (held by user code, possibly mid-update under those locks) cannot be told
//! apart from consistent ones. So every cmwq call that returns a `Result` —
//! queueing, spawning, flushing, draining, destroying, building a queue,
//! `cancel_sync`, changing a queue's settings — returns
//! [`ErrorKind::Forked`](crate::ErrorKind::Forked) in the child, before it
//! takes any lock. A child that needs workqueues `exec`s a program that builds
//! its own; the parent is unaffected. (The kernel has nothing to compare: a
//! forked process does not share the kernel's workqueues' state, it shares the
//! kernel.)
//!
//! **How it is detected.** When the process first uses cmwq (the process state
//! is created), a `pthread_atfork` child handler is registered; in a child it
//! sets [`FORKED`]. The checks are one relaxed load of that flag, the cheapest
//! test there is (no `getpid()` call on the queue path). A child of a process
//! that never used cmwq registered nothing and uses cmwq normally.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use super::log;

/// Set in the child of a `fork()` once the handler is registered. A plain std
/// atomic, not a `loom` one: a static, and a fork is outside every model.
static FORKED: AtomicBool = AtomicBool::new(false);

/// The `pthread_atfork` child handler: runs in the child, single-threaded,
/// right after the fork, so only async-signal-safe work (one store).
extern "C" fn in_child() {
    // Relaxed: the child has one thread, which runs this before it returns
    // from fork(); program order makes the store visible to its later loads.
    FORKED.store(true, Ordering::Relaxed);
}

/// Registers the child handler, once per process. Called when the process
/// state is created.
pub(crate) fn watch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = super::sys::at_fork_child(in_child) {
            log::warn!(
                error = log::display(&e),
                "cmwq: cannot watch for fork(); a forked child's calls are not refused"
            );
        }
    });
}

/// Whether this process is the child of a `fork()` of a process that had
/// used cmwq.
#[inline]
pub(crate) fn is_forked_child() -> bool {
    // Relaxed: see `in_child`.
    FORKED.load(Ordering::Relaxed)
}
