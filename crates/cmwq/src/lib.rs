//! # cmwq — the Linux kernel's Concurrency Managed Workqueue for Rust programs
//!
//! Many independent workqueues, each with its own semantics (ordering,
//! `max_active`, priority, CPU affinity), all served by one small,
//! self-regulating set of worker threads per CPU. When a running work item
//! blocks, another one starts; when nothing blocks, exactly one runs per CPU.
//!
//! ```
//! use cmwq::{Work, Workqueue};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//!
//! let wq = Workqueue::builder("example").build()?;
//! let n = Arc::new(AtomicU32::new(0));
//! let n2 = n.clone();
//! let work = Work::new(move |_| {
//!     cmwq::sleep(std::time::Duration::from_millis(1)); // another item may start meanwhile
//!     n2.fetch_add(1, Ordering::Relaxed);
//! });
//! work.disable(); // hold it back, to show the PENDING rule deterministically
//! assert!(!wq.queue(&work)?); // disabled: refused
//! work.enable();
//! assert!(wq.queue(&work)?); // queued (or already running: then it runs again)
//! wq.flush()?;
//! assert!(n.load(Ordering::Relaxed) >= 1);
//! # Ok::<(), cmwq::Error>(())
//! ```
//!
//! ## Kernel → Rust
//!
//! Kernel names are from `include/linux/workqueue.h` and `kernel/workqueue.c`
//! unless a row names another file. *Provided*: cmwq has it. *Not yet*: planned, each an open issue; a flag of
//! that kind is refused, never silently ignored. *No meaning in a process*:
//! nothing to provide, and the row says what to use instead.
//!
//! | kernel | cmwq | status |
//! |---|---|---|
//! | `alloc_workqueue(name, flags, max_active)` | [`Workqueue::builder`]`(name).flags(..).max_active(n).build()` | provided |
//! | `alloc_ordered_workqueue` | [`Workqueue::ordered`]`(name).build()` | provided |
//! | `INIT_WORK` | [`Work::new`]`(\|w\| ..)` | provided |
//! | `queue_work` / `queue_work_on` | [`Workqueue::queue`], [`Workqueue::queue_on`] | provided |
//! | (none) | [`Workqueue::spawn`]: a one-shot closure | provided |
//! | `schedule_work`, `system_*_wq` | [`schedule_work`], [`system`]`::{percpu, highpri, long, dfl, freezable, power_efficient}` | provided |
//! | `INIT_DELAYED_WORK` / `queue_delayed_work(_on)` / `mod_delayed_work(_on)` | [`DelayedWork::new`], [`Workqueue::queue_delayed`], [`Workqueue::queue_delayed_on`], [`Workqueue::mod_delayed`], [`Workqueue::mod_delayed_on`] | provided |
//! | `schedule_delayed_work(_on)` | [`schedule_delayed_work`], [`schedule_delayed_work_on`] | provided |
//! | `cancel_delayed_work(_sync)` / `flush_delayed_work` / `disable_delayed_work(_sync)` / `enable_delayed_work` / `delayed_work_pending` | [`DelayedWork::cancel`], [`DelayedWork::cancel_sync`], [`DelayedWork::flush`], [`DelayedWork::disable`], [`DelayedWork::disable_sync`], [`DelayedWork::enable`], [`DelayedWork::is_pending`] | provided |
//! | `timer_base`, jiffies (testing: none) | one process timer thread; [`timer::pause`], [`timer::advance`], [`timer::resume`] for deterministic tests | provided |
//! | `work_on_cpu` / `schedule_on_each_cpu` | [`work_on_cpu`], [`schedule_on_each_cpu`] | provided |
//! | `freeze_workqueues_begin` / `_busy` / `thaw_workqueues` | [`freezer::freeze`], [`freezer::is_busy`], [`freezer::thaw`] | provided |
//! | `flush_work` / `flush_workqueue` / `drain_workqueue` / `destroy_workqueue` | [`Work::flush`], [`Workqueue::flush`], [`Workqueue::drain`], [`Workqueue::destroy`] | provided |
//! | `cancel_work(_sync)` | [`Work::cancel`], [`Work::cancel_sync`] | provided |
//! | `disable_work(_sync)` / `enable_work` / `enable_and_queue_work` | [`Work::disable`], [`Work::disable_sync`], [`Work::enable`], [`Workqueue::enable_and_queue`] | provided |
//! | `work_pending` / `work_busy` / `current_work` | [`Work::is_pending`], [`Work::busy`], [`current_work`] | provided |
//! | `workqueue_congested` / `workqueue_set_max_active` | [`Workqueue::is_congested`], [`Workqueue::set_max_active`] | provided |
//! | `wq_worker_sleeping` / `wq_worker_running` (scheduler hooks) | [`blocking`], [`sleep`] | provided |
//! | `show_all_workqueues`, `tools/workqueue/wq_dump.py`, `tools/workqueue/wq_monitor.py` | [`debug::pools`], [`Workqueue::stats`] | partly: only these two; the rest not yet |
//! | `WQ_MEM_RECLAIM`, the rescuer (`rescuer_thread`, `send_mayday`, `pool_mayday_timeout`) | [`WqFlags::MEM_RECLAIM`] is refused with [`ErrorKind::UnsupportedFlag`] | not yet |
//! | `current_is_workqueue_rescuer` | (none: no rescuers) | not yet |
//! | `WQ_BH`, `system_bh_wq`, `system_bh_highpri_wq` | [`WqFlags::BH`] is refused with [`ErrorKind::UnsupportedFlag`]; no BH system queues | not yet |
//! | `struct workqueue_attrs`, `apply_workqueue_attrs`, affinity scopes (`enum wq_affn_scope`: `WQ_AFFN_CPU`, `_SMT`, `_CACHE`, `_NUMA`, `_SYSTEM`), `wq_unbound_cpumask` | (none: every unbound queue uses one process-wide unbound pool, see below) | not yet |
//! | `workqueue_set_min_active`, `queue_work_node` | (none) | not yet |
//! | the watchdog (`wq_watchdog_timer_fn`, `wq_watchdog_touch`, `workqueue.watchdog_thresh`) | (none) | not yet |
//! | tracepoints (`include/trace/events/workqueue.h`: `workqueue_queue_work`, `workqueue_activate_work`, `workqueue_execute_start`, `workqueue_execute_end`) | (none; [`Workqueue::stats`] counts) | not yet |
//! | `flush_scheduled_work` (deprecated in the kernel: `__warn_flushing_systemwide_wq`) | (none); `system::percpu().flush()` works, with a one-time warning, but flush the items you queued instead ([`Work::flush`]) | no meaning in a process |
//! | `WQ_SYSFS` (`/sys/devices/virtual/workqueue/NAME/`: `per_cpu`, `max_active`, `nice`, `cpumask`, `affinity_scope`, `affinity_strict`) | no sysfs for a process: [`Workqueue::flags`], [`Workqueue::max_active`], [`Workqueue::set_max_active`]; the unbound attributes wait for `apply_workqueue_attrs` | no meaning in a process |
//! | `WQ_HIGHPRI` on a `WQ_BH` queue (`kick_bh_pool` raises `HI_SOFTIRQ` instead of `TASKLET_SOFTIRQ`) | a process has no softirqs; [`WqFlags::HIGHPRI`] on a thread-backed queue is provided | no meaning in a process |
//! | CPU hotplug (`workqueue_prepare_cpu`, `workqueue_online_cpu`, `workqueue_offline_cpu`) | the process's CPU set is fixed when cmwq starts: [`allowed_cpus`] | no meaning in a process |
//! | `delayed_work` timers on the arming CPU's timer base (`add_timer_on` in `__queue_delayed_work`) | one timer thread serves the process; the arming CPU is remembered and the item is queued there | no meaning in a process |
//!
//! ## Where userspace differs from the kernel
//!
//! - **Blocking is announced, or detected.** A process gets no scheduler callback
//!   when a thread sleeps. A work item that may block can say so with
//!   [`blocking`] or [`sleep`]: another item starts on its CPU at once (p50
//!   ~15 µs here). Blocking nobody announced (a plain syscall, a foreign mutex, a
//!   page fault) is found by the *sleep monitor* (Linux), parked at no cost
//!   unless a per-CPU pool has work waiting behind a running worker. Then an
//!   idle sentinel of that CPU (a `SCHED_IDLE` thread, which runs only when the
//!   CPU would idle) sees the block the moment the worker sleeps, confirms it
//!   from the worker's scheduler state (`/proc/self/task/TID/stat`) and CPU
//!   clock, and takes it out of concurrency management (p50 ~30–50 µs from the
//!   block to the next item starting); a monitor thread sampling every 50 µs or
//!   more covers what the sentinel cannot (a CPU kept busy by others). New
//!   threads for it wait a stall window (200 µs, [`set_stall_window`]) unless the
//!   pool's blocks lately outlasted it. The same monitor applies the kernel's
//!   CPU-hog rule: an item on the CPU for 10 ms ([`set_cpu_intensive_thresh`])
//!   stops counting toward concurrency. `CMWQ_MONITOR=0` or
//!   [`set_sleep_monitor`]`(false)` turns it off; without `/proc` only the hints
//!   work. See `monitor/README.md`.
//! - **Errors instead of warnings.** Queueing onto a draining or destroyed queue from
//!   outside returns an error and leaves the item untouched (the kernel WARNs and
//!   drops it). A work item that flushes or cancels itself synchronously, or that
//!   flushes, drains or destroys its own workqueue, gets
//!   [`ErrorKind::WouldDeadlock`] (the kernel deadlocks; only lockdep notices).
//! - **Panics are contained.** A panicking item is caught, logged with its
//!   workqueue's name and counted ([`Workqueue::stats`], [`debug::panics`]); its
//!   worker goes on and flush waiters are released.
//! - **Pools start empty and may shrink to zero.** A per-CPU pool is created on its
//!   first use; after the idle timeout (300 s, [`set_idle_timeout`]) a completely
//!   idle pool lets all its workers exit, so a process on a 256-CPU machine does
//!   not keep 500 idle threads. A pool's first worker is spawned by a creator
//!   thread (the kernel's kthreadd), so it never inherits the queuing thread's
//!   priority and the queuing thread pays no thread creation.
//! - **Idle spin.** A worker that runs out of work yields a few rounds before it
//!   sleeps, still counted as running, so a thread queueing on the worker's own CPU
//!   batches instead of being preempted once per item. It switches itself off for
//!   a second when the CPU turns out to be contended (see `pool/README.md`).
//! - **Unbound queues use one pod.** Affinity scopes are not built yet: an unbound
//!   queue has a single pwq on a process-wide unbound pool, so its `max_active`
//!   is process-wide and activation is FIFO.
//! - **Thread ceilings.** At most 512 worker threads exist at once (environment
//!   `CMWQ_MAX_WORKERS`), and at most max(64, 5 × [`available_parallelism`]) of them in
//!   per-CPU pools (`CMWQ_MAX_CM_WORKERS`, [`set_max_cm_workers`]); the allowed
//!   CPUs honour the affinity mask and the cgroup CPU quota. At a ceiling work
//!   waits for a worker, it is never dropped; [`debug::nr_throttled`] counts the
//!   refusals. A failed thread creation (`EAGAIN`) lowers the ceiling to the
//!   current count and backs off for 1 s like the kernel, then retries.
//! - **Delayed work.** Timers fire from one process-wide timer thread, not on the
//!   arming CPU; [`Workqueue::queue_delayed`] on a per-CPU queue remembers the
//!   arming CPU and queues there. Deadlines are exact to the nanosecond (no
//!   jiffies rounding); a timer fires no earlier than asked. An armed timer
//!   keeps its workqueue attached after the last handle is dropped, and
//!   [`Workqueue::destroy`] queues the armed items at once and runs them (the
//!   kernel requires callers to cancel them first and would lose them).
//!   `cancel`/`disable` on the inner [`Work`] of a delayed item also handle
//!   its timer (the kernel asks for the `_delayed_` variants).
//! - **Non-reentrancy** follows the kernel's conditions: an item never runs
//!   concurrently with itself while it is queued on one workqueue. Queueing the
//!   same item on two different workqueues may run it concurrently.
//!
//! ## The kernel's execution scenarios
//!
//! From `Documentation/core-api/workqueue.rst`: w0, w1 and w2 are queued on one
//! CPU. w0 burns CPU for 5 ms, sleeps 10 ms, burns 5 ms; w1 and w2 burn 5 ms and
//! sleep 10 ms. With a single worker (the original wq) they run back to back and
//! finish at 50 ms. With cmwq and `max_active >= 3`:
//!
//! ```text
//!  TIME IN MSECS  EVENT
//!  0              w0 starts and burns CPU
//!  5              w0 sleeps
//!  5              w1 starts and burns CPU
//!  10             w1 sleeps
//!  10             w2 starts and burns CPU
//!  15             w2 sleeps
//!  15             w0 wakes up and burns CPU
//!  20             w0 finishes
//!  20             w1 wakes up and finishes
//!  25             w2 wakes up and finishes
//! ```
//!
//! With `max_active == 2`, w2 starts only when w0 finishes (20 ms) and ends at
//! 35 ms. With w1 and w2 on a [`WqFlags::CPU_INTENSIVE`] queue, they start at
//! 5 ms together instead of waiting for each other. `cargo run --release -- demo`
//! measures all four on this machine and prints them beside the documented ones.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "cmwq needs Linux: its pools pin workers with sched_setaffinity, and its sleep monitor reads \
     /proc/self/task and thread CPU clocks; no other target is supported"
);

// The layers, bottom to top; a module imports only from its own layer and those
// below it (`tests/layers.rs` checks this).
//
// platform: what cmwq needs from Linux and std, knowing nothing of workqueues.
mod platform;
// context: what the pools of one instance share (settings, thread accounting,
// counters, the work state word, the doorbell to the monitor).
mod context;
// core: the kernel's workqueue.c, one cycle on purpose: pools, pwqs, work items,
// workqueues, the running item, the instance.
mod current;
mod pool;
mod pwq;
mod registry;
mod work;
mod workqueue;
// monitor: finds blocking nobody announced, and CPU hogs.
mod monitor;
// facade: the public API.
mod config;
pub mod debug;
pub mod freezer;
mod global;
mod hooks;
mod oncpu;
pub mod system;
pub mod timer;

pub use config::{
    allowed_cpus, available_parallelism, default_affinity_scope, idle_timeout, max_workers, nr_numa_nodes,
    set_cpu_intensive_thresh, set_default_affinity_scope, set_idle_timeout, set_max_cm_workers,
    set_max_workers, set_power_efficient, set_sleep_monitor, set_stall_window,
};
pub use current::current_work;
pub use hooks::{blocking, sleep};
pub use oncpu::{schedule_on_each_cpu, work_on_cpu};
pub use platform::error::{Error, ErrorKind, SpawnError};
pub use platform::topology::{AffinityScope, ParseAffinityScopeError};
pub use system::{schedule_delayed_work, schedule_delayed_work_on, schedule_work, schedule_work_on};
pub use work::{Busy, DelayedWork, Work};
pub use workqueue::{
    Attrs, Builder, Workqueue, WqFlags, WqStats, MAX_NICE, MIN_NICE, WQ_DFL_ACTIVE, WQ_DFL_MIN_ACTIVE,
    WQ_MAX_ACTIVE,
};
