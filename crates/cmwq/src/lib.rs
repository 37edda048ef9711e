//! # cmwq — the Linux kernel's Concurrency Managed Workqueue for Rust programs
//!
//! Many independent workqueues, each with its own semantics (ordering,
//! `max_active`, priority, CPU affinity), all served by small, self-regulating
//! sets of worker threads: one pool per *pod* of CPUs (a cache shard by
//! default, see [Affinity scopes](#affinity-scopes)) for the default, unbound
//! queues, one pool per CPU for [`WqFlags::PERCPU`] queues. When a running work
//! item blocks, another one starts; when nothing blocks, as many run as the pool
//! has CPUs (one on a per-CPU pool).
//!
//! `Workqueue::builder(name).build()` with neither `PERCPU` nor `UNBOUND` gives
//! an unbound, concurrency-managed queue, the default the kernel is moving to
//! (the README's "Which queue should I use" compares the kinds). Per-CPU queues
//! ask for [`WqFlags::PERCPU`]; [`schedule_work`] and the per-CPU
//! [`system`] queues keep the kernel's per-CPU meaning.
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
//! unless a row names another file. *Provided*: cmwq has it; *beyond the
//! kernel* where cmwq does more than the kernel does, and the row says what.
//! *Not yet*: planned, each an open issue; a flag of
//! that kind is refused, never silently ignored. *No meaning in a process*:
//! nothing to provide, and the row says what to use instead.
//!
//! | kernel | cmwq | status |
//! |---|---|---|
//! | `alloc_workqueue(name, flags, max_active)` | [`Workqueue::builder`]`(name).flags(..).max_active(n).build()`; with neither `PERCPU` nor `UNBOUND` the queue is unbound (the kernel warns and adds `WQ_PERCPU` today, and is moving to unbound) | provided; the default differs: unbound |
//! | `WQ_PERCPU` | [`WqFlags::PERCPU`]: needed for a per-CPU queue | provided |
//! | `WQ_UNBOUND` | [`WqFlags::UNBOUND`] (or no flag): pools per pod, concurrency managed, each letting as many items run at once as its pod has CPUs. The kernel's unbound workers carry `WORKER_UNBOUND` and are never counted; a process has no scheduler hook to keep unmanaged workers in check, so cmwq manages them. `UNBOUND \| CPU_INTENSIVE` behaves like the kernel's unmanaged unbound queue | provided, beyond the kernel |
//! | `alloc_ordered_workqueue` | [`Workqueue::ordered`]`(name).build()` | provided |
//! | `INIT_WORK` | [`Work::new`]`(\|w\| ..)` | provided |
//! | `queue_work` / `queue_work_on` | [`Workqueue::queue`], [`Workqueue::queue_on`] | provided |
//! | (none) | [`Workqueue::spawn`]: a one-shot closure | provided |
//! | `schedule_work`, `system_*_wq` | [`schedule_work`], [`system`]`::{percpu, highpri, long, dfl, freezable, power_efficient}`; all per-CPU but `dfl` (and `power_efficient` when [`set_power_efficient`] is on) | provided |
//! | `system_dfl_wq` (formerly `system_unbound_wq`, "events_unbound") | [`system::dfl`]: unbound, and here concurrency managed | provided, beyond the kernel |
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
//! | `show_all_workqueues` (`show_one_workqueue`, `show_pwq`, `show_one_worker_pool`), the list of workqueues (`workqueues`) | [`debug::dump`] → [`debug::Dump`]: the same as data, with a `Display` in the kernel's layout; a destroyed queue leaves the list; `hung` uses the [`watchdog`]'s threshold | provided |
//! | per-pwq statistics (`enum pool_workqueue_stats`: `PWQ_STAT_STARTED`, `_COMPLETED`, `_CPU_TIME`, `_CPU_INTENSIVE`, `_CM_WAKEUP`, `_REPATRIATED`), shown by `tools/workqueue/wq_monitor.py` | [`Workqueue::stats`] → [`WqStats`], plus `panicked` and `monitor_blocks`; CPU time is read from the thread's CPU clock while items are timed ([`debug::set_accounting`], on from the first dump), not sampled per tick; `repatriated` stays 0 (no wake CPU to choose in a process) | provided |
//! | `tools/workqueue/wq_dump.py`, `wq_monitor.py` as programs attached to the live kernel (drgn) | `CMWQ_STATS=1` or [`stats::serve`] in the program, then `cmwq top` / `cmwq dump` from the same user (feature `stats-server`) | provided |
//! | `WQ_MEM_RECLAIM`, the rescuer (`init_rescuer`, `rescuer_thread`, `assign_rescuer_work`, `RESCUER_BATCH`), the mayday (`send_mayday`, `pool_mayday_timeout`, `MAYDAY_INITIAL_TIMEOUT` 10 ms, `MAYDAY_INTERVAL` 100 ms) | [`WqFlags::MEM_RECLAIM`]: a rescuer thread per queue (`cmwq/R-<name>`), started by `build`, not counted against the thread ceilings, gone with [`Workqueue::destroy`]. What stands for memory pressure is a refused worker creation (a ceiling, a failed or cooling-down `pthread_create`); the pool's mayday timer runs on the sleep monitor's thread. [`WqStats::mayday`], [`WqStats::rescued`] | provided |
//! | `create_workqueue` / `create_singlethread_workqueue` / `create_freezable_workqueue` (legacy: they imply `WQ_MEM_RECLAIM`) | [`Workqueue::builder`]`(name).flags(`[`WqFlags::PERCPU`]` \| `[`WqFlags::MEM_RECLAIM`]`).max_active(1)`; [`Workqueue::ordered`]`(name).flags(`[`WqFlags::MEM_RECLAIM`]`)`; add [`WqFlags::FREEZABLE`] for the freezable one | provided, spelled out |
//! | `alloc_ordered_workqueue(name, WQ_MEM_RECLAIM)` | [`Workqueue::ordered`]`(name).flags(`[`WqFlags::MEM_RECLAIM`]`)` | provided |
//! | `current_is_workqueue_rescuer` | [`current_is_workqueue_rescuer`] | provided |
//! | `check_flush_dependency` (a `WQ_MEM_RECLAIM` item flushing a queue without it) | [`Workqueue::flush`], [`Workqueue::drain`] and [`Work::flush`] (of an item queued on or running for such a queue) from such an item (run by a worker or by the rescuer) log one warning per flushed queue, naming both queues; the flush goes on | provided |
//! | `WQ_BH`, `system_bh_wq`, `system_bh_highpri_wq`, `bh_worker_pools`, `bh_worker`, `kick_bh_pool`, `BH_WORKER_JIFFIES` (2 ms), `BH_WORKER_RESTARTS` (10) | [`WqFlags::BH`], [`system::bh`] ("events_bh"), [`system::bh_highpri`] ("events_bh_highpri"): per CPU a normal and a highpri BH pool, each served by one context thread pinned to the CPU (`cmwq/bh<cpu>`, `cmwq/bh<cpu>H`) instead of a softirq; items in queueing order, one at a time, never concurrency managed; at most 10 items or 2 ms per run, then the CPU is given up. Only `HIGHPRI` and `PERCPU` beside it (`__WQ_BH_ALLOWS`), `max_active` 0, refused otherwise with [`ErrorKind::InvalidFlags`]. A blocking BH item is warned about and counted ([`WqStats::bh_blocked`]) | provided, as threads |
//! | `struct workqueue_attrs` (`nice`, `cpumask`, `affn_scope`, `affn_strict`) | [`Attrs`], [`Builder::attrs`], [`Workqueue::attrs`]; out of range: [`ErrorKind::InvalidAttrs`] | provided |
//! | `apply_workqueue_attrs` | [`Workqueue::apply_attrs`] | provided |
//! | affinity scopes (`enum wq_affn_scope`: `WQ_AFFN_DFL`, `WQ_AFFN_CPU`, `_SMT`, `_CACHE`, `_CACHE_SHARD`, `_NUMA`, `_SYSTEM`), read from sysfs like `workqueue_init_topology` | [`AffinityScope`]`::{Default, Cpu, Smt, Cache, CacheShard, Numa, System}` | provided |
//! | `wq_unbound_cpumask` (`workqueue.unbound_cpus`, `/sys/devices/virtual/workqueue/cpumask`) | the allowed CPUs ([`allowed_cpus`]): the process's affinity mask at start, which a cgroup cpuset narrows; set it with `taskset` or the cpuset. A queue's [`Attrs::cpumask`] is intersected with it | provided, as the affinity mask |
//! | `workqueue.default_affinity_scope` (`wq_affn_dfl`, `wq_affn_dfl_set`) | [`set_default_affinity_scope`], [`default_affinity_scope`], `CMWQ_AFFINITY_SCOPE`; default `cache_shard`, as the newest kernel | provided |
//! | `workqueue.cache_shard_size` (`wq_cache_shard_size`) | `CMWQ_CACHE_SHARD_SIZE` (cores per shard, default 8; read at start) | provided |
//! | per-node `max_active` of unbound queues (`wq_node_nr_active`, `wq_update_node_max_active`), `min_active`, `WQ_DFL_MIN_ACTIVE`, `workqueue_set_min_active`, `queue_work_node` | counted per node; [`Workqueue::min_active`], [`Workqueue::set_min_active`], [`WQ_DFL_MIN_ACTIVE`], [`Workqueue::queue_node`], [`nr_numa_nodes`] | provided |
//! | the watchdog (`wq_watchdog_timer_fn`, `wq_watchdog_touch`, `workqueue.watchdog_thresh`, `workqueue.panic_on_stall`) | [`watchdog`]`::{set_thresh, thresh, touch, stalls, set_panic_on_stall}`, `CMWQ_WATCHDOG_THRESH`; checks every quarter of the threshold, reports each stall once (with what runs and what waits) and its end; parked while every pool is idle; driven by [`timer::pause`]/[`timer::advance`] in tests | provided |
//! | tracepoints (`include/trace/events/workqueue.h`: `workqueue_queue_work`, `workqueue_activate_work`, `workqueue_execute_start`, `workqueue_execute_end`) | `tracing` events of the same names, target `cmwq`, level TRACE, with the workqueue, the item's id ([`Work::id`]), the requested and actual CPU or pod and the pool in fields ([`debug`](debug#events)); nothing without the `tracing` feature | provided |
//! | `flush_scheduled_work` (deprecated in the kernel: `__warn_flushing_systemwide_wq`) | (none); `system::percpu().flush()` works, with a one-time warning, but flush the items you queued instead ([`Work::flush`]) | no meaning in a process |
//! | `WQ_SYSFS` (`/sys/devices/virtual/workqueue/NAME/`: `per_cpu`, `max_active`, `nice`, `cpumask`, `affinity_scope`, `affinity_strict`) | no sysfs for a process: [`Workqueue::flags`], [`Workqueue::max_active`], [`Workqueue::set_max_active`], [`Workqueue::attrs`], [`Workqueue::apply_attrs`] | no meaning in a process |
//! | `WQ_HIGHPRI` on a `WQ_BH` queue (`kick_bh_pool` raises `HI_SOFTIRQ` instead of `TASKLET_SOFTIRQ`) | the highpri BH context runs at `SCHED_FIFO` (real-time priority 1) where the process may, else nice −20; the normal one at nice −20 where permitted, else the process's nice | provided, as thread priorities |
//! | `workqueue_softirq_dead` (draining a dead CPU's BH pools), BH cancel from hard IRQ context (busy-wait) | the CPU set is read once (no hotplug); no interrupt context in a process: [`Work::cancel_sync`] on a BH item sleeps like any other | no meaning in a process |
//! | CPU hotplug (`workqueue_prepare_cpu`, `workqueue_online_cpu`, `workqueue_offline_cpu`, `wq_update_pod`) | the process's CPU set and the topology (pods) are read once when cmwq starts: [`allowed_cpus`] | no meaning in a process |
//! | `delayed_work` timers on the arming CPU's timer base (`add_timer_on` in `__queue_delayed_work`) | one timer thread serves the process; the arming CPU is remembered and the item is queued there | no meaning in a process |
//!
//! ## Where userspace differs from the kernel
//!
//! - **Blocking is announced, or detected.** A process gets no scheduler callback
//!   when a thread sleeps. A work item that may block can say so with
//!   [`blocking`] or [`sleep`]: another item starts in its pool at once (p50
//!   ~15 µs here). Blocking nobody announced (a plain syscall, a foreign mutex, a
//!   page fault) is found by the *sleep monitor* (Linux), parked at no cost
//!   unless a pool, per-CPU or unbound, has work waiting behind its running
//!   workers. Then an idle sentinel of the pool's CPUs (a `SCHED_IDLE` thread
//!   per CPU, which runs only when its CPU would idle) sees the block the
//!   moment the worker sleeps, confirms it
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
//!   [`ErrorKind::WouldDeadlock`] (the kernel deadlocks; only lockdep notices);
//!   so does a BH item that flushes, drains or destroys a queue with items queued
//!   on its own BH context, behind it (the kernel forbids sleeping in BH at all).
//! - **Panics are contained.** A panicking item is caught, logged with its
//!   workqueue's name and counted ([`Workqueue::stats`], [`debug::panics`]); its
//!   worker goes on and flush waiters are released.
//! - **Pools start empty and may shrink to zero.** A pool is created on its
//!   first use; after the idle timeout (300 s, [`set_idle_timeout`]) a completely
//!   idle pool lets all its workers exit, so a process on a 256-CPU machine does
//!   not keep 500 idle threads. An unbound pool whose last workqueue is gone
//!   lets its idle workers exit at once. A pool's first worker is spawned by a creator
//!   thread (the kernel's kthreadd), so it never inherits the queuing thread's
//!   priority and the queuing thread pays no thread creation.
//! - **Idle spin.** A worker that runs out of work yields a few rounds before it
//!   sleeps, still counted as running, so a thread queueing on the worker's own CPU
//!   batches instead of being preempted once per item. It switches itself off for
//!   a second when the CPU turns out to be contended (see `pool/README.md`).
//! - **Spawned closures run in batches.** In an unbound pool of several CPUs, a
//!   worker takes up to 8 closures from [`Workqueue::spawn`] of one queue in one
//!   hold of the pool lock while the pool's items are short, and one more worker
//!   is woken only for a backlog it will not soon take itself. The rest of a
//!   batch goes back to the worklist when its worker blocks or a closure runs
//!   long (counted in [`WqStats::batched`]; `pool/README.md`, "Batches").
//! - **Unbound is the default, and unbound pools are concurrency managed.**
//!   A queue built with neither [`WqFlags::PERCPU`] nor [`WqFlags::UNBOUND`] is
//!   unbound. Each pod's pool lets as many items run at once as the pod has
//!   CPUs, and starts another when one blocks; the kernel leaves unbound
//!   workers to its scheduler. `CPU_INTENSIVE` items do not count, so an
//!   `UNBOUND | CPU_INTENSIVE` queue is the kernel's unmanaged unbound queue:
//!   up to `max_active` of its items run at once, each on its own worker.
//! - **Busy pods hand work on.** An item goes to the pool of the queueing
//!   CPU's pod, as in the kernel; when that pool is busy and the queue is not
//!   [`affinity_strict`](Attrs::affinity_strict), it goes to the least busy pod
//!   of the queue's cpumask instead (chosen once, at queue time; no work
//!   stealing after). One producer thread thus reaches every CPU.
//! - **`max_active` of an unbound queue is counted per NUMA node**
//!   (`wq_node_nr_active`): each node gets a share in proportion to its CPUs
//!   and at least [`min_active`](Workqueue::min_active) (8 by default), so the
//!   sum over several nodes may exceed `max_active`; a pwq that finds its node
//!   full waits on the node's pending list and gets the next slot freed there
//!   (round robin between pods).
//! - **Thread ceilings.** At most 512 worker threads exist at once (environment
//!   `CMWQ_MAX_WORKERS`), and at most max(64, 5 × [`available_parallelism`]) of them in
//!   per-CPU pools (`CMWQ_MAX_CM_WORKERS`, [`set_max_cm_workers`]; unbound pools'
//!   workers count against the first ceiling only); the allowed
//!   CPUs honour the affinity mask and the cgroup CPU quota. At a ceiling work
//!   waits for a worker, it is never dropped; [`debug::nr_throttled`] counts the
//!   refusals. A failed thread creation (`EAGAIN`) lowers the ceiling to the
//!   current count and backs off for 1 s like the kernel, then retries.
//!   This is the process's memory pressure: a [`WqFlags::MEM_RECLAIM`] queue's
//!   items still progress there, run by its rescuer thread once the pool has
//!   waited 10 ms for a worker (the kernel's mayday), one item at a time.
//! - **Delayed work.** Timers fire from one process-wide timer thread, not on the
//!   arming CPU; [`Workqueue::queue_delayed`] on a per-CPU queue remembers the
//!   arming CPU and queues there. Deadlines are exact to the nanosecond (no
//!   jiffies rounding); a timer fires no earlier than asked. An armed timer
//!   keeps its workqueue attached after the last handle is dropped, and
//!   [`Workqueue::destroy`] queues the armed items at once and runs them (the
//!   kernel requires callers to cancel them first and would lose them).
//!   `cancel`/`disable` on the inner [`Work`] of a delayed item also handle
//!   its timer (the kernel asks for the `_delayed_` variants).
//! - **A stall watchdog that sleeps while idle.** [`watchdog`] reports a pool
//!   with work waiting that started nothing for 30 s, once per stall, with what
//!   runs and what waits there, and the stall's end. Its thread parks while
//!   every pool is idle, and it keeps time by the [`timer`] clock, so tests
//!   drive it with [`timer::advance`].
//! - **Non-reentrancy** follows the kernel's conditions: an item never runs
//!   concurrently with itself while it is queued on one workqueue. Queueing the
//!   same item on two different workqueues may run it concurrently.
//!
//! ## Affinity scopes
//!
//! An unbound queue's CPUs (its [`Attrs::cpumask`], all allowed CPUs by
//! default) are grouped into *pods* by its [`AffinityScope`], from what sysfs
//! says when cmwq starts (where it says nothing: each CPU its own core, one
//! last-level cache, one node):
//!
//! | scope | one pod per |
//! |---|---|
//! | `cpu` | CPU |
//! | `smt` | physical core, with its hardware threads |
//! | `cache` | last-level cache |
//! | `cache_shard` (the default) | shard of a last-level cache: about 8 cores (`CMWQ_CACHE_SHARD_SIZE`), a core's threads never split |
//! | `numa` | NUMA node |
//! | `system` | process: one pod of every CPU |
//!
//! Each pod of a queue has a pool, shared with every queue whose attributes
//! give the same pool: the same nice value, the same pod CPUs, the same
//! strictness and, when not strict, the same cpumask (the kernel's
//! `wqattrs_equal`). A pool lets as many items run at once as its pod has CPUs
//! of the queue's cpumask; when one blocks, another starts. Its workers are
//! named `cmwq/u<pool id>:<n>`; [`debug::pools`] shows each pool's `pod`,
//! `nice` and `concurrency`. Without [`Builder::attrs`] a queue gets the nice
//! value the process started with (−20 for [`WqFlags::HIGHPRI`]), the default
//! scope, every allowed CPU, not strict.
//!
//! - **Where an item runs.** On the pool of the queueing CPU's pod
//!   ([`Workqueue::queue_on`] names the CPU). A queue that is not
//!   [`affinity_strict`](Attrs::affinity_strict) sends an item to the least
//!   busy pod of its cpumask instead when its own pod's pool is busy (as many
//!   items running or waiting as it has CPUs); its workers start in their pod
//!   and may then run on any CPU of the cpumask. A strict queue keeps every
//!   item in the queueing CPU's pod and its workers on that pod's CPUs. An
//!   ordered queue has one pool over its whole cpumask.
//! - **The default scope.** [`AffinityScope::Default`] follows the process-wide
//!   default: `cache_shard`, or `CMWQ_AFFINITY_SCOPE` at start, or
//!   [`set_default_affinity_scope`], which re-maps every queue whose attributes
//!   ask for `Default`.
//! - **Changing attributes.** Once [`Workqueue::apply_attrs`] returns, new
//!   items go to the new pools; items already queued or running finish where
//!   they are, and an ordered queue keeps its order across the change.
//! - **`max_active`** bounds the whole queue, counted per NUMA node (see
//!   above). CPU hotplug is not followed: the pods are those of the start.
//!
//! A queue with one pod per CPU, its workers confined to it (on a machine with
//! several CPUs, each CPU's items run there, one at a time, like a per-CPU
//! queue's), then the same queue moved to one pod of every CPU:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use cmwq::{AffinityScope, Attrs, ErrorKind, Work, Workqueue};
//!
//! let attrs = Attrs { affinity_scope: AffinityScope::Cpu, affinity_strict: true, ..Attrs::default() };
//! let wq = Workqueue::builder("per-cpu-pods").attrs(attrs).build()?;
//! let cpu = *cmwq::allowed_cpus().last().unwrap();
//! let ran_on = Arc::new(Mutex::new(None));
//! let r = ran_on.clone();
//! let w = Work::new(move |_| *r.lock().unwrap() = cmwq::debug::current_cpu());
//! wq.queue_on(cpu, &w)?; // the pool of `cpu`'s pod
//! w.flush()?;
//! assert_eq!(*ran_on.lock().unwrap(), Some(cpu)); // strict: its workers stay in the pod
//! let pool = cmwq::debug::pools().into_iter().find(|p| p.cpu.is_none() && p.pod == [cpu]).unwrap();
//! assert_eq!(pool.concurrency, 1); // a pod of one CPU runs one item at a time
//!
//! // New items go to the new pools; queued and running ones finish where they are.
//! wq.apply_attrs(Attrs { affinity_scope: AffinityScope::System, ..Attrs::default() })?;
//! assert_eq!(wq.attrs().unwrap().affinity_scope, AffinityScope::System);
//! wq.queue(&w)?;
//! w.flush()?;
//!
//! let err = wq.apply_attrs(Attrs::default().with_nice(20)).unwrap_err(); // nice is -20..=19
//! assert!(matches!(err.kind(), ErrorKind::InvalidAttrs(_)));
//! # Ok::<(), cmwq::Error>(())
//! ```
//!
//! ## The kernel's execution scenarios
//!
//! From `Documentation/core-api/workqueue.rst`: w0, w1 and w2 are queued on one
//! CPU of a per-CPU queue ([`WqFlags::PERCPU`]; on an unbound queue, read "one
//! CPU" as "a pod of one CPU"). w0 burns CPU for 5 ms, sleeps 10 ms, burns 5 ms; w1 and w2 burn 5 ms and
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
// monitor: finds blocking nobody announced, CPU hogs, and stalled pools.
mod monitor;
// facade: the public API.
mod config;
pub mod debug;
pub mod freezer;
mod global;
mod hooks;
mod oncpu;
#[cfg(all(feature = "stats-server", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "stats-server")))]
pub mod stats;
pub mod system;
pub mod timer;
pub mod watchdog;

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
pub use pool::current_is_workqueue_rescuer;
pub use system::{schedule_delayed_work, schedule_delayed_work_on, schedule_work, schedule_work_on};
pub use work::{Busy, DelayedWork, Work};
pub use workqueue::{
    Attrs, Builder, Workqueue, WqFlags, WqStats, MAX_NICE, MIN_NICE, WQ_DFL_ACTIVE, WQ_DFL_MIN_ACTIVE,
    WQ_MAX_ACTIVE,
};
