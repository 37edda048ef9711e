//! Sizes of the workloads for each mode.

use std::time::Duration;

/// Workload sizes and repetition counts. [`Config::quick`] and [`Config::full`]
/// are what `--quick` and the default select; [`Config::tiny`] is for tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    /// `"quick"`, `"full"` or `"tiny"`.
    pub mode: &'static str,
    /// Measured runs per (workload, executor); medians are over these.
    pub runs: usize,
    /// One unmeasured run first (pools start threads, caches warm up).
    pub warmup: bool,
    /// noop: items per run.
    pub noop_items: usize,
    /// noop: items per run for `thread-per-item` (a thread each).
    pub noop_thread_items: usize,
    /// wake: samples per executor.
    pub wake_samples: usize,
    /// wake: idle gap before each sample, so that the executor is asleep again.
    #[serde(serialize_with = "ser_us")]
    pub wake_gap: Duration,
    /// mixed: items per run.
    pub mixed_items: usize,
    /// mixed: CPU burnt by each item (thread CPU time).
    #[serde(serialize_with = "ser_us")]
    pub mixed_burn: Duration,
    /// mixed: block time of each item as a multiple of the burn (X:Y = 1:m).
    pub mixed_block_ratios: Vec<u32>,
    /// many-queues: workqueues for cmwq.
    pub mq_queues: usize,
    /// many-queues: items per queue from each CPU's producer (the per-CPU and
    /// unbound families; the default family queues one item per queue).
    pub mq_items_per_cpu: usize,
    /// many-queues: ceiling on the threads of the families that give each queue
    /// its own threads (MT wq emulation, pool per queue); their queue count is
    /// `min(mq_queues, mq_thread_cap / cores)`.
    pub mq_thread_cap: usize,
    /// timers/ops: timers kept armed while arm and cancel are measured.
    pub timer_background: usize,
    /// timers/ops: arms (then cancels) per measured run.
    pub timer_ops: usize,
    /// timers/fire: timers per run.
    pub timer_fire: usize,
    /// timers/fire: the interval their deadlines are spread over.
    #[serde(serialize_with = "ser_us")]
    pub timer_spread: Duration,
    /// detect/latency: measured rounds per blocking style (plain, announced)
    /// and pool (per-CPU, unbound pod).
    pub detect_rounds: usize,
    /// detect/latency: extra plain rounds per pool, each started once the monitor parked.
    pub detect_parked_rounds: usize,
    /// detect/latency: how long the first item of a round blocks.
    #[serde(serialize_with = "ser_us")]
    pub detect_block: Duration,
    /// detect/overhead: the length of each idle and saturated window.
    #[serde(serialize_with = "ser_us")]
    pub detect_window: Duration,
    /// detect/overhead: CPU burnt by each item of the saturated window.
    #[serde(serialize_with = "ser_us")]
    pub detect_burn: Duration,
    /// bh: queue-to-start samples per row (all rounds together).
    pub bh_samples: usize,
    /// bh: the most time a row's samples may take (all rounds together), so
    /// that a slow row (a worker behind busy threads) stays bounded.
    #[serde(serialize_with = "ser_us")]
    pub bh_budget: Duration,
    /// bh: threads that keep the target CPU busy in the busy rows.
    pub bh_spinners: usize,
    /// bh/storm: items queued at once.
    pub bh_storm_items: usize,
    /// bh/storm: CPU each item spins (thread CPU time).
    #[serde(serialize_with = "ser_us")]
    pub bh_storm_spin: Duration,
    /// Thread-count sampling interval.
    #[serde(serialize_with = "ser_us")]
    pub sample_interval: Duration,
    /// Render SVG/PNG plots.
    pub plots: bool,
}

fn ser_us<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl Config {
    /// The full run: a few minutes on a 2-CPU machine.
    pub fn full() -> Config {
        Config {
            mode: "full",
            runs: 5,
            warmup: true,
            noop_items: 200_000,
            noop_thread_items: 5_000,
            wake_samples: 1_000,
            wake_gap: Duration::from_micros(300),
            mixed_items: 600,
            mixed_burn: Duration::from_micros(300),
            mixed_block_ratios: vec![0, 1, 4, 16],
            mq_queues: 10_000,
            mq_items_per_cpu: 2,
            mq_thread_cap: 1_024,
            timer_background: 1_000_000,
            timer_ops: 100_000,
            timer_fire: 10_000,
            timer_spread: Duration::from_secs(1),
            detect_rounds: 1_000,
            detect_parked_rounds: 50,
            detect_block: Duration::from_millis(20),
            detect_window: Duration::from_secs(1),
            detect_burn: Duration::from_millis(1),
            bh_samples: 2_000,
            bh_budget: Duration::from_secs(1),
            bh_spinners: 2,
            bh_storm_items: 10_000,
            bh_storm_spin: Duration::from_micros(20),
            sample_interval: Duration::from_millis(1),
            plots: true,
        }
    }

    /// `--quick`: under a minute on a 2-CPU machine (CI smoke).
    pub fn quick() -> Config {
        Config {
            mode: "quick",
            runs: 3,
            noop_items: 20_000,
            noop_thread_items: 1_000,
            wake_samples: 200,
            mixed_items: 120,
            mq_queues: 1_000,
            mq_thread_cap: 256,
            timer_background: 100_000,
            timer_ops: 20_000,
            timer_fire: 2_000,
            timer_spread: Duration::from_millis(300),
            detect_rounds: 100,
            detect_parked_rounds: 10,
            detect_window: Duration::from_millis(300),
            bh_samples: 500,
            bh_budget: Duration::from_millis(250),
            ..Config::full()
        }
    }

    /// A few milliseconds per workload and executor: for the smoke test.
    pub fn tiny() -> Config {
        Config {
            mode: "tiny",
            runs: 1,
            warmup: false,
            noop_items: 200,
            noop_thread_items: 20,
            wake_samples: 5,
            wake_gap: Duration::from_micros(100),
            mixed_items: 8,
            mixed_burn: Duration::from_micros(50),
            mixed_block_ratios: vec![0, 1, 4],
            mq_queues: 20,
            mq_items_per_cpu: 1,
            mq_thread_cap: 16,
            timer_background: 1_000,
            timer_ops: 200,
            timer_fire: 50,
            timer_spread: Duration::from_millis(20),
            detect_rounds: 5,
            detect_parked_rounds: 2,
            detect_block: Duration::from_millis(5),
            detect_window: Duration::from_millis(20),
            bh_samples: 10,
            bh_budget: Duration::from_millis(50),
            bh_storm_items: 200,
            ..Config::full()
        }
    }

    /// The time a batch may take before the run fails: ten times the time its
    /// items would take one after another, plus 10 s.
    pub fn batch_timeout(&self, items: usize, per_item: Duration) -> Duration {
        per_item.saturating_mul(items as u32).saturating_mul(10) + Duration::from_secs(10)
    }
}
