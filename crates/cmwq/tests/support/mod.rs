//! The toolkit of the integration tests (`tests/wq_*.rs`); each test binary takes
//! it in with `mod support;` and uses what it needs.
//!
//! - [`wait`](self::wait): the one deadline ([`DEADLINE`]) and the bounded waits
//!   built on it, and [`SETTLE`], how long a *forbidden* event gets to show itself.
//! - [`events`](self::events): a [`Gate`] that work items wait on, an event [`Log`],
//!   an item that logs ([`logging`]) and counters ([`Concurrency`], [`DropGuard`]).
//! - [`pools`](self::pools): the lock that serialises tests sharing the per-CPU
//!   pools ([`exclusive`], [`shared`]), switching the sleep monitor off
//!   ([`hints_only`]), CPUs and pool snapshots, the unbound pool running an
//!   item ([`current_unbound_pool`]) and waiting for pools to settle
//!   ([`assert_pools_settle`]).
//! - [`probes`](self::probes): running a call in a work item or a thread and
//!   knowing, without timing, that it has reached its wait.
//! - [`monitor`](self::monitor): unannounced blockers that only the sleep monitor
//!   can get the next item past.
//!
//! Every wait here is bounded: by the caller's bound where it takes one, by
//! [`DEADLINE`] otherwise. A deadline turns a hang into a failure; it is never
//! what a test asserts on. Assertions are about the order of events and counts.
#![allow(dead_code, unused_imports, reason = "each test binary uses a different subset of the toolkit")]

mod events;
mod monitor;
mod pools;
mod probes;
pub(crate) mod traces;
mod wait;

pub(crate) use events::{logging, Concurrency, DropGuard, Gate, Log, OpenOnDrop};
pub(crate) use monitor::{
    assert_exact_after_plain_sleepers, assert_second_ran_while_first_blocked, blocked_then_second,
    plain_sleeper_then_second, plain_sleeper_with_one_behind,
};
pub(crate) use pools::{
    assert_monitor_blocked_nobody, assert_pools_settle, cpu0, cpu1, current_unbound_pool, distinct_cpus,
    exclusive, hints_only, pin_current_thread, pool_by_id, pool_of, set_thread_affinity, settle_pool, shared,
    stacked_spinners, thread_affinity, two_cpus, unbound_pool, unbound_pool_of, warm_queue,
    yields_come_straight_back, Exclusive,
};
pub(crate) use probes::{blocked_in, blocked_in_item, parked_in_thread, InItem, InThread};
pub(crate) use wait::{
    bounded, burn, burn_cpu, current_tid, join_bounded, poll_until, spin_until, wait_for, wait_parked,
    Bounded, BoundedQueue, BoundedWork, DEADLINE, SETTLE,
};
