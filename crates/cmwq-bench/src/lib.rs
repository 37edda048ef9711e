//! The `cmwq` comparison benchmarks: a harness that runs the same workloads on
//! cmwq and on peer executors and writes markdown, JSON and plots (the engine
//! of `cmwq bench`), plus the helpers the micro-benchmarks share.
//!
//! ```no_run
//! let opts = cmwq_bench::BenchOpts {
//!     quick: true,
//!     out_dir: "bench-results".into(),
//!     only: Some(vec!["mixed".into(), "cmwq-default".into(), "tokio-blocking".into(), "unpinned".into()]),
//! };
//! let report = cmwq_bench::run(&opts, &mut |line| eprintln!("{line}"))?;
//! println!("{}", report.to_markdown());
//! # Ok::<(), cmwq_bench::Error>(())
//! ```
//!
//! Executors ([`ExecutorKind`]): `cmwq-default` (`Workqueue::builder(..).build()`
//! with no flags: whatever the library's default queue is; blocking announced
//! with `cmwq::sleep`), `cmwq-default-plain` (the same, blocking with a plain
//! `std::thread::sleep`), `cmwq-bound` and `cmwq-bound-plain` (the same two on a
//! per-CPU workqueue, `WqFlags::PERCPU`), `cmwq-unbound` (`WqFlags::UNBOUND`),
//! `rayon` (global pool),
//! `tokio-blocking` (`spawn_blocking`), `fixed-pool` (one thread per CPU on a
//! crossbeam channel), `thread-per-item`, and `mt-wq` (the pre-cmwq kernel
//! multi-threaded workqueue: dedicated threads per queue per CPU).
//!
//! Workloads ([`WORKLOADS`]): `noop` (throughput), `wake` (queue-to-start
//! latency on an idle executor), `mixed` (items burn X then block Y: makespan
//! and peak threads), `many-queues` (threads, memory and pools per idle
//! queue; the default queues are built with four different `Attrs` and used
//! once each),
//! `timers` (delayed work beside `tokio::time`), `detect` (the sleep monitor's
//! latency on a per-CPU pool and on an unbound one-CPU pod, and its own CPU
//! time), `bh` (queue-to-start latency of `BH` and `BH | HIGHPRI` queues beside
//! `PERCPU` and `PERCPU | HIGHPRI` ones and a bare pinned thread, on an idle
//! and a busy CPU, from a pinned and an unpinned producer; and a CPU-bound
//! thread's longest gap beside a storm of items on its CPU; `n/a` rows where
//! the library refuses `WqFlags::BH`).
//!
//! Producer modes ([`ProducerMode`], for noop, mixed and bh): `pinned` (harness
//! threads pinned one per CPU, each queueing its share; noop also runs the
//! first alone) and `unpinned` (one harness thread nobody pinned queues every
//! item, as most programs do). After each workload the report lists cmwq's
//! pools that completed its items: pod, nice, items let run at once, peak workers.
//!
//! Modules, bottom to top: formatting, statistics, the time base and latch, CPU
//! placement, `/proc`, sizes, executors, producers, the pool report, the run context; each
//! workload with its rows and markdown; the report; the plots; the harness.
//! `benches/queue.rs` (criterion) measures queue + execute throughput beside
//! `rayon::spawn`; `examples/hotpath.rs` drives the hot path for profilers.

#![deny(unsafe_code)]

mod config;
mod cpu;
mod ctx;
mod error;
mod executors;
mod fmt;
mod harness;
mod plot;
mod pools;
mod procfs;
mod producers;
mod report;
mod stats;
mod sync;
mod workloads;

pub use config::Config;
pub use cpu::{allowed_cpus, burn, pin_current_thread, set_current_affinity};
pub use error::Error;
pub use executors::{ExecutorInfo, ExecutorKind, MtWq};
pub use harness::{output_paths, run, run_with_config, select, unpinned_plot_paths, BenchOpts, Selection};
pub use pools::PoolUse;
pub use procfs::CpuSplit;
pub use producers::ProducerMode;
pub use report::{Env, Report};
pub use stats::Latency;
pub use sync::{now_ns, CountLatch};
pub use workloads::bh::{BhLatencyRow, BhStormRow, StormFigures};
pub use workloads::detect::{DetectLatencyRow, DetectOverheadRow};
pub use workloads::many_queues::ManyQueuesRow;
pub use workloads::mixed::{Bounds, MixedRow};
pub use workloads::noop::NoopRow;
pub use workloads::timers::{TimerFireRow, TimerOpsRow};
pub use workloads::wake::WakeRow;
pub use workloads::WORKLOADS;
