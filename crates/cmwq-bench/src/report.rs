//! The report: what every workload measured, as JSON and as markdown tables.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::procfs::CpuSplit;

/// Lower bounds on the makespan of the mixed workload: `n` items, each burning
/// `burn` of CPU and then blocking `block`, on `cores` CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    /// The ideal: `max(total CPU / cores, longest chain)`, in ms.
    pub ideal_ms: f64,
    /// A tighter bound for burn-then-block items: the last burst ends no earlier
    /// than `total CPU / cores`, and its item then blocks `block`:
    /// `max(total CPU / cores + block, burn + block)`, in ms.
    pub tight_ms: f64,
    /// `total CPU / cores` alone, in ms.
    pub cpu_per_core_ms: f64,
    /// The longest chain `burn + block`, in ms.
    pub chain_ms: f64,
}

impl Bounds {
    /// The ideal when only a fraction `avail` of the CPUs' time was ours to take
    /// (the rest went to other processes or the hypervisor):
    /// `max(total CPU / (cores × avail), chain)`. `avail` is clamped to 0.05..=1.
    pub fn ideal_given(&self, avail: f64) -> f64 {
        let avail = if avail.is_nan() { 1.0 } else { avail.clamp(0.05, 1.0) };
        (self.cpu_per_core_ms / avail).max(self.chain_ms)
    }
}

/// The lower bounds of the mixed workload (see [`Bounds`]).
pub fn bounds(n: usize, burn: Duration, block: Duration, cores: usize) -> Bounds {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let cpu_per_core = ms(burn) * n as f64 / cores.max(1) as f64;
    let chain = if n == 0 { 0.0 } else { ms(burn) + ms(block) };
    let tail = if n == 0 { 0.0 } else { ms(block) };
    Bounds {
        ideal_ms: cpu_per_core.max(chain),
        tight_ms: (cpu_per_core + tail).max(chain),
        cpu_per_core_ms: cpu_per_core,
        chain_ms: chain,
    }
}

/// The executor's settings as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutorInfo {
    /// Name.
    pub name: String,
    /// Settings in words.
    pub settings: String,
}

/// Where and how the benchmark ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Env {
    /// CPUs used (the process affinity mask).
    pub cpus: Vec<usize>,
    /// Their number.
    pub cores: usize,
    /// `/proc/loadavg` before and after (other processes compete for the CPUs).
    pub loadavg_before: Option<String>,
    /// See `loadavg_before`.
    pub loadavg_after: Option<String>,
    /// Seconds since the Unix epoch at the start.
    pub started_unix_s: u64,
    /// Wall time of the whole benchmark.
    pub duration_s: f64,
    /// Whether this was a debug build (timings then mean little).
    pub debug_build: bool,
    /// Threads of the process before any executor started (harness threads).
    pub harness_threads: usize,
}

/// noop: throughput of no-op items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoopRow {
    /// Executor.
    pub executor: String,
    /// Producer threads (1, or one pinned per CPU).
    pub producers: usize,
    /// Items per run.
    pub items: usize,
    /// Measured runs.
    pub runs: usize,
    /// Median items per second.
    pub items_per_s: f64,
    /// Median ns per item.
    pub ns_per_item: f64,
    /// Slowest and fastest run, items per second.
    pub items_per_s_min: f64,
    /// See `items_per_s_min`.
    pub items_per_s_max: f64,
    /// Every measured run, in order.
    pub items_per_s_runs: Vec<f64>,
    /// Every item of every run ran exactly once.
    pub exactly_once: bool,
}

/// wake: queue-to-start latency on an idle executor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WakeRow {
    /// Executor, or a bare handoff (`park-unpark ...`).
    pub executor: String,
    /// Samples.
    pub samples: usize,
    /// Latency percentiles in µs.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p90_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// See `p50_us`.
    pub max_us: f64,
    /// Every item ran exactly once.
    pub exactly_once: bool,
}

/// mixed: burn X, block Y.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixedRow {
    /// Executor.
    pub executor: String,
    /// How items block (`announced`: `cmwq::sleep`; `plain`: `std::thread::sleep`).
    pub blocking: String,
    /// `X:Y` as `1:m`.
    pub ratio: String,
    /// `m` of `1:m`.
    pub block_mult: u32,
    /// X in µs.
    pub burn_us: u64,
    /// Y in µs.
    pub block_us: u64,
    /// Items per run.
    pub items: usize,
    /// Measured runs.
    pub runs: usize,
    /// Median makespan, and the fastest and slowest run (ms).
    pub makespan_ms: f64,
    /// See `makespan_ms`.
    pub makespan_min_ms: f64,
    /// See `makespan_ms`.
    pub makespan_max_ms: f64,
    /// Every measured run, in order.
    pub makespans_ms: Vec<f64>,
    /// The lower bounds.
    pub bounds: Bounds,
    /// Median makespan / `bounds.ideal_ms`.
    pub ratio_to_ideal: f64,
    /// Median makespan / `bounds.tight_ms`.
    pub ratio_to_tight: f64,
    /// Median makespan / [`Bounds::ideal_given`] the share of the CPUs that other
    /// processes and the hypervisor left (`1 - cpu.others - cpu.steal`): an
    /// estimate (jiffy resolution) of how far the executor itself is from ideal.
    pub ratio_to_available: f64,
    /// Median over runs of the executor's peak thread count (see the notes).
    pub peak_threads: usize,
    /// The largest peak of any run.
    pub peak_threads_max: usize,
    /// The peak of every measured run, in order.
    pub peak_threads_runs: Vec<usize>,
    /// Median over runs of the peak number of items blocked at the same time.
    pub peak_blocked: usize,
    /// The sum over CPUs of each CPU's own peak of blocked items (median of runs):
    /// per-CPU pools that keep their idle workers reach each CPU's peak at its own
    /// time, so their threads follow this sum rather than `peak_blocked`.
    pub peak_blocked_per_cpu_sum: usize,
    /// `cores + peak_blocked + 2`: the threads a concurrency-managed pool needs.
    pub thread_reference: usize,
    /// Where the CPUs' time went during the measured runs (summed).
    pub cpu: CpuSplit,
    /// CPU time this process used per item beyond the item's burn X, averaged
    /// over the measured runs (µs): scheduling, context switches, pool
    /// management, submission, and the harness's own threads.
    pub overhead_cpu_us_per_item: f64,
    /// Every item of every run ran exactly once.
    pub exactly_once: bool,
}

/// many-queues: many workqueues with a few items each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManyQueuesRow {
    /// Executor family.
    pub executor: String,
    /// Queues created.
    pub queues: usize,
    /// Items per queue.
    pub items_per_queue: usize,
    /// The executor's threads once all queues are idle after their items.
    pub threads_idle: usize,
    /// Peak threads from creation to destruction.
    pub threads_peak: usize,
    /// VmRSS with all queues idle minus VmRSS before creating them (bytes).
    pub rss_delta_bytes: i64,
    /// `rss_delta_bytes / queues`.
    pub bytes_per_queue: f64,
    /// Creating all queues.
    pub create_ms: f64,
    /// Destroying all queues (draining, joining threads).
    pub destroy_ms: f64,
    /// Per queue.
    pub create_us_per_queue: f64,
    /// Per queue.
    pub destroy_us_per_queue: f64,
    /// Why fewer queues than asked, if so.
    pub note: Option<String>,
    /// Every item ran exactly once.
    pub exactly_once: bool,
}

/// Everything one benchmark run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The sizes used.
    pub config: Config,
    /// The machine and the run.
    pub env: Env,
    /// The executors and their settings.
    pub executors: Vec<ExecutorInfo>,
    /// noop rows.
    pub noop: Vec<NoopRow>,
    /// wake rows.
    pub wake: Vec<WakeRow>,
    /// mixed rows.
    pub mixed: Vec<MixedRow>,
    /// many-queues rows.
    pub many_queues: Vec<ManyQueuesRow>,
    /// timers: arm/cancel rows.
    pub timer_ops: Vec<crate::timers::TimerOpsRow>,
    /// timers: fire lateness rows.
    pub timer_fire: Vec<crate::timers::TimerFireRow>,
    /// detect: block-to-next-item latency rows (plain and announced).
    pub detect_latency: Vec<crate::detect::DetectLatencyRow>,
    /// detect: the sleep monitor's CPU time (idle and saturated).
    pub detect_overhead: Vec<crate::detect::DetectOverheadRow>,
    /// How figures were taken.
    pub notes: Vec<String>,
    /// Workloads not run, and why.
    pub skipped: Vec<String>,
}

fn f1(x: f64) -> String {
    format!("{x:.1}")
}

fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// Items per second in a readable unit.
pub fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k/s", x / 1e3)
    } else {
        format!("{x:.0} /s")
    }
}

/// Bytes in a readable unit (binary prefixes).
pub fn bytes(x: f64) -> String {
    let a = x.abs();
    if a >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", x / (1024.0 * 1024.0))
    } else if a >= 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "**NO**"
    }
}

/// A markdown table from a header and rows.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(s, "|{}", header.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises")
    }

    /// The best (highest) noop throughput among executors other than cmwq's, per
    /// producer count: `(executor, items/s)`.
    pub fn best_noop_peer(&self, producers: usize) -> Option<(&str, f64)> {
        self.noop
            .iter()
            .filter(|r| r.producers == producers && !r.executor.starts_with("cmwq"))
            .max_by(|a, b| a.items_per_s.total_cmp(&b.items_per_s))
            .map(|r| (r.executor.as_str(), r.items_per_s))
    }

    /// The best (lowest p50) wake latency among executors other than cmwq's and
    /// the bare handoffs: `(executor, p50 µs)`.
    pub fn best_wake_peer(&self) -> Option<(&str, f64)> {
        self.wake
            .iter()
            .filter(|r| !r.executor.starts_with("cmwq") && !r.executor.starts_with("park"))
            .min_by(|a, b| a.p50_us.total_cmp(&b.p50_us))
            .map(|r| (r.executor.as_str(), r.p50_us))
    }

    /// Headline lines: cmwq against its targets and the best peers.
    pub fn headline(&self) -> Vec<String> {
        let mut v = Vec::new();
        for r in self.mixed.iter().filter(|r| r.executor == "cmwq-bound") {
            v.push(format!(
                "mixed {} (X={} µs, Y={} µs, {} items): cmwq-bound ({}) makespan {:.1} ms = {:.2}x ideal \
                 ({:.2}x the burn-then-block bound, {:.2}x the ideal on the CPU share others left; target \
                 1.15x); peak threads {} vs cores+blocked+2 = {}; CPUs {:.0}% ours ({:.1} µs/item beyond X), \
                 {:.0}% others, {:.0}% idle, {:.0}% steal",
                r.ratio,
                r.burn_us,
                r.block_us,
                r.items,
                r.blocking,
                r.makespan_ms,
                r.ratio_to_ideal,
                r.ratio_to_tight,
                r.ratio_to_available,
                r.peak_threads,
                r.thread_reference,
                r.cpu.ours * 100.0,
                r.overhead_cpu_us_per_item,
                r.cpu.others * 100.0,
                r.cpu.idle * 100.0,
                r.cpu.steal * 100.0
            ));
        }
        for p in [1usize, self.env.cores] {
            let cmwq = self.noop.iter().find(|r| r.executor == "cmwq-bound" && r.producers == p);
            if let (Some(c), Some((name, best))) = (cmwq, self.best_noop_peer(p)) {
                v.push(format!(
                    "noop, {p} producer(s): cmwq-bound {} vs best peer {name} {} ({:.2}x)",
                    rate(c.items_per_s),
                    rate(best),
                    c.items_per_s / best
                ));
            }
            if p == self.env.cores && p == 1 {
                break;
            }
        }
        if let (Some(c), Some((name, best))) =
            (self.wake.iter().find(|r| r.executor == "cmwq-bound"), self.best_wake_peer())
        {
            v.push(format!(
                "wake: cmwq-bound p50 {:.1} µs / p99 {:.1} µs vs best peer {name} p50 {best:.1} µs",
                c.p50_us, c.p99_us
            ));
        }
        let fire = |e: &str, l: &str| self.timer_fire.iter().find(|r| r.executor == e && r.load == l);
        for load in ["idle", "busy"] {
            if let (Some(c), Some(t)) = (fire("cmwq", load), fire("tokio", load)) {
                v.push(format!(
                    "timers ({load}): cmwq lateness p50 {:.0} µs / p99 {:.0} µs vs tokio {:.0} / {:.0} µs",
                    c.p50_us, c.p99_us, t.p50_us, t.p99_us
                ));
            }
        }
        if let Some(c) = self.timer_ops.iter().find(|r| r.executor == "cmwq") {
            let peers: Vec<String> = self
                .timer_ops
                .iter()
                .filter(|r| r.executor != "cmwq")
                .map(|r| format!("{} {:.0}/{:.0} ns", r.executor, r.arm_ns, r.cancel_ns))
                .collect();
            v.push(format!(
                "timers with {} armed: cmwq arm/cancel {:.0}/{:.0} ns vs {}",
                c.background_armed,
                c.arm_ns,
                c.cancel_ns,
                peers.join(", ")
            ));
        }
        v.extend(crate::detect::headline(&self.detect_latency, &self.detect_overhead, &self.mixed));
        for r in &self.many_queues {
            v.push(format!(
                "many-queues: {} with {} queues: {} threads idle, {} per idle queue",
                r.executor,
                r.queues,
                r.threads_idle,
                bytes(r.bytes_per_queue)
            ));
        }
        v
    }

    /// The report as markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let e = &self.env;
        let _ = writeln!(s, "# cmwq benchmark ({} mode)\n", self.config.mode);
        let _ = writeln!(
            s,
            "{} CPUs {:?}; load average before {} / after {}; {:.0} s; {} build.\n",
            e.cores,
            e.cpus,
            e.loadavg_before.as_deref().unwrap_or("?"),
            e.loadavg_after.as_deref().unwrap_or("?"),
            e.duration_s,
            if e.debug_build { "**debug** (timings are not meaningful)" } else { "release" }
        );
        let head = self.headline();
        if !head.is_empty() {
            let _ = writeln!(s, "## Headline\n");
            for l in head {
                let _ = writeln!(s, "- {l}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Executors\n");
        let rows: Vec<Vec<String>> =
            self.executors.iter().map(|x| vec![format!("`{}`", x.name), x.settings.clone()]).collect();
        s += &table(&["executor", "settings (all peer defaults)"], &rows);
        s.push('\n');

        if !self.noop.is_empty() {
            let _ = writeln!(s, "## noop: throughput of no-op items (median of runs)\n");
            let rows: Vec<Vec<String>> = self
                .noop
                .iter()
                .map(|r| {
                    vec![
                        format!("`{}`", r.executor),
                        r.producers.to_string(),
                        r.items.to_string(),
                        rate(r.items_per_s),
                        f1(r.ns_per_item),
                        format!("{} – {}", rate(r.items_per_s_min), rate(r.items_per_s_max)),
                        yes(r.exactly_once).into(),
                    ]
                })
                .collect();
            s += &table(
                &["executor", "producers", "items/run", "median", "ns/item", "range", "exactly once"],
                &rows,
            );
            s.push('\n');
        }
        if !self.wake.is_empty() {
            let _ = writeln!(s, "## wake: queue-to-start latency on an idle executor (µs)\n");
            let rows: Vec<Vec<String>> = self
                .wake
                .iter()
                .map(|r| {
                    vec![
                        format!("`{}`", r.executor),
                        r.samples.to_string(),
                        f1(r.p50_us),
                        f1(r.p90_us),
                        f1(r.p99_us),
                        f1(r.max_us),
                        yes(r.exactly_once).into(),
                    ]
                })
                .collect();
            s += &table(&["executor", "samples", "p50", "p90", "p99", "max", "exactly once"], &rows);
            s.push('\n');
        }
        if !self.mixed.is_empty() {
            let _ = writeln!(s, "## mixed: items burn X then block Y (median of runs)\n");
            let rows: Vec<Vec<String>> = self
                .mixed
                .iter()
                .map(|r| {
                    vec![
                        r.ratio.clone(),
                        format!("`{}`", r.executor),
                        r.blocking.clone(),
                        r.items.to_string(),
                        f1(r.makespan_ms),
                        f1(r.bounds.ideal_ms),
                        f2(r.ratio_to_ideal),
                        f2(r.ratio_to_tight),
                        f2(r.ratio_to_available),
                        r.peak_threads.to_string(),
                        r.peak_blocked.to_string(),
                        r.thread_reference.to_string(),
                        r.peak_blocked_per_cpu_sum.to_string(),
                        f1(r.overhead_cpu_us_per_item),
                        format!(
                            "{:.0}/{:.0}/{:.0}/{:.0}",
                            r.cpu.ours * 100.0,
                            r.cpu.others * 100.0,
                            r.cpu.idle * 100.0,
                            r.cpu.steal * 100.0
                        ),
                        yes(r.exactly_once).into(),
                    ]
                })
                .collect();
            s += &table(
                &[
                    "X:Y",
                    "executor",
                    "blocking",
                    "items",
                    "makespan ms",
                    "ideal ms",
                    "/ideal",
                    "/tight",
                    "/avail",
                    "peak threads",
                    "peak blocked",
                    "cores+blocked+2",
                    "Σ per-CPU peak blocked",
                    "our CPU beyond X, µs/item",
                    "CPU % ours/others/idle/steal",
                    "exactly once",
                ],
                &rows,
            );
            s.push('\n');
        }
        if !self.many_queues.is_empty() {
            let _ = writeln!(s, "## many-queues: many workqueues, a few items each\n");
            let rows: Vec<Vec<String>> = self
                .many_queues
                .iter()
                .map(|r| {
                    vec![
                        format!("`{}`", r.executor),
                        r.queues.to_string(),
                        r.items_per_queue.to_string(),
                        r.threads_idle.to_string(),
                        r.threads_peak.to_string(),
                        bytes(r.rss_delta_bytes as f64),
                        bytes(r.bytes_per_queue),
                        f1(r.create_ms),
                        f1(r.destroy_ms),
                        f2(r.create_us_per_queue),
                        f2(r.destroy_us_per_queue),
                        yes(r.exactly_once).into(),
                        r.note.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            s += &table(
                &[
                    "executor",
                    "queues",
                    "items/queue",
                    "threads idle",
                    "threads peak",
                    "RSS delta",
                    "per idle queue",
                    "create ms",
                    "destroy ms",
                    "create µs/q",
                    "destroy µs/q",
                    "exactly once",
                    "note",
                ],
                &rows,
            );
            s.push('\n');
        }
        s += &crate::timers::markdown(&self.timer_ops, &self.timer_fire);
        s += &crate::detect::markdown(&self.detect_latency, &self.detect_overhead, &self.mixed);
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "## Not run\n");
            for l in &self.skipped {
                let _ = writeln!(s, "- {l}");
            }
            s.push('\n');
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "## How the figures were taken\n");
            for l in &self.notes {
                let _ = writeln!(s, "- {l}");
            }
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn us(x: u64) -> Duration {
        Duration::from_micros(x)
    }

    #[test]
    fn bounds_cpu_bound_and_chain_bound() {
        // 600 items of 300 µs on 2 CPUs: 90 ms of CPU per core.
        let b = bounds(600, us(300), us(0), 2);
        assert!((b.ideal_ms - 90.0).abs() < 1e-9);
        assert!((b.tight_ms - 90.0).abs() < 1e-9);
        // Blocking 4.8 ms: the ideal stays CPU bound; the tight one adds the tail.
        let b = bounds(600, us(300), us(4_800), 2);
        assert!((b.ideal_ms - 90.0).abs() < 1e-9);
        assert!((b.tight_ms - 94.8).abs() < 1e-9);
        // One item: the chain dominates both.
        let b = bounds(1, us(300), us(1_200), 4);
        assert!((b.ideal_ms - 1.5).abs() < 1e-9);
        assert!((b.tight_ms - 1.5).abs() < 1e-9);
        // Few items with long blocks: chain-bound ideal.
        let b = bounds(4, us(100), us(10_000), 2);
        assert!((b.ideal_ms - 10.1).abs() < 1e-9);
        assert!((b.tight_ms - 10.2).abs() < 1e-9);
        let z = bounds(0, us(100), us(100), 2);
        assert_eq!((z.ideal_ms, z.tight_ms), (0.0, 0.0));
        // Half the CPU time taken by others: the CPU part doubles, the chain stays.
        let b = bounds(600, us(300), us(4_800), 2);
        assert!((b.ideal_given(0.5) - 180.0).abs() < 1e-9);
        assert!((b.ideal_given(1.0) - b.ideal_ms).abs() < 1e-9);
        assert!((b.ideal_given(0.0) - 1800.0).abs() < 1e-9); // clamped at 5 %
        assert!((b.ideal_given(f64::NAN) - 90.0).abs() < 1e-9);
        assert!((bounds(2, us(300), us(4_800), 2).ideal_given(0.5) - 5.1).abs() < 1e-9);
        // Zero cores is treated as one.
        assert!((bounds(10, us(100), us(0), 0).ideal_ms - 1.0).abs() < 1e-9);
    }

    #[test]
    fn units() {
        assert_eq!(rate(2_500_000.0), "2.50 M/s");
        assert_eq!(rate(2_500.0), "2.5 k/s");
        assert_eq!(rate(25.0), "25 /s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(2048.0), "2.0 KiB");
        assert_eq!(bytes(-3.0 * 1024.0 * 1024.0), "-3.0 MiB");
    }

    #[test]
    fn markdown_table_shape() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n");
    }

    pub(crate) fn sample_report() -> Report {
        let b = bounds(100, us(300), us(300), 2);
        Report {
            config: Config::tiny(),
            env: Env {
                cpus: vec![0, 1],
                cores: 2,
                loadavg_before: Some("0.1 0.2 0.3".into()),
                loadavg_after: None,
                started_unix_s: 0,
                duration_s: 1.0,
                debug_build: false,
                harness_threads: 4,
            },
            executors: vec![ExecutorInfo { name: "cmwq-bound".into(), settings: "defaults".into() }],
            noop: vec![
                NoopRow {
                    executor: "cmwq-bound".into(),
                    producers: 1,
                    items: 10,
                    runs: 1,
                    items_per_s: 2e6,
                    ns_per_item: 500.0,
                    items_per_s_min: 1e6,
                    items_per_s_max: 3e6,
                    items_per_s_runs: vec![2e6],
                    exactly_once: true,
                },
                NoopRow {
                    executor: "rayon".into(),
                    producers: 1,
                    items: 10,
                    runs: 1,
                    items_per_s: 4e6,
                    ns_per_item: 250.0,
                    items_per_s_min: 4e6,
                    items_per_s_max: 4e6,
                    items_per_s_runs: vec![4e6],
                    exactly_once: true,
                },
                NoopRow {
                    executor: "fixed-pool".into(),
                    producers: 1,
                    items: 10,
                    runs: 1,
                    items_per_s: 1e6,
                    ns_per_item: 1000.0,
                    items_per_s_min: 1e6,
                    items_per_s_max: 1e6,
                    items_per_s_runs: vec![1e6],
                    exactly_once: false,
                },
            ],
            wake: vec![WakeRow {
                executor: "park-unpark (same CPU)".into(),
                samples: 5,
                p50_us: 3.0,
                p90_us: 4.0,
                p99_us: 5.0,
                max_us: 6.0,
                exactly_once: true,
            }],
            mixed: vec![MixedRow {
                executor: "cmwq-bound".into(),
                blocking: "announced".into(),
                ratio: "1:1".into(),
                block_mult: 1,
                burn_us: 300,
                block_us: 300,
                items: 100,
                runs: 1,
                makespan_ms: 16.5,
                makespan_min_ms: 16.0,
                makespan_max_ms: 17.0,
                makespans_ms: vec![16.5],
                bounds: b,
                ratio_to_ideal: 16.5 / b.ideal_ms,
                ratio_to_tight: 16.5 / b.tight_ms,
                ratio_to_available: 16.5 / b.ideal_ms,
                peak_threads: 6,
                peak_threads_max: 7,
                peak_threads_runs: vec![6],
                peak_blocked: 2,
                peak_blocked_per_cpu_sum: 2,
                thread_reference: 6,
                cpu: CpuSplit::default(),
                overhead_cpu_us_per_item: 12.5,
                exactly_once: true,
            }],
            many_queues: vec![],
            timer_ops: vec![],
            timer_fire: vec![],
            detect_latency: vec![],
            detect_overhead: vec![],
            notes: vec!["a note".into()],
            skipped: vec!["timers: not landed".into()],
        }
    }

    #[test]
    fn markdown_and_json_render() {
        let r = sample_report();
        let md = r.to_markdown();
        assert!(md.starts_with("# cmwq benchmark (tiny mode)"));
        assert!(md.contains("| `rayon` | 1 | 10 | 4.00 M/s | 250.0 | 4.00 M/s – 4.00 M/s | yes |"));
        assert!(md.contains("| `fixed-pool` | 1 | 10 | 1.00 M/s | 1000.0 | 1.00 M/s – 1.00 M/s | **NO** |"));
        assert!(md.contains("| 1:1 | `cmwq-bound` | announced | 100 | 16.5 | 15.0 | 1.10 |"));
        assert!(md.contains("| 6 | 2 | 6 | 2 | 12.5 | 0/0/0/0 | yes |"));
        assert!(md.contains("- timers: not landed"));
        assert!(!md.contains("## many-queues"));
        assert!(md.contains("noop, 1 producer(s): cmwq-bound 2.00 M/s vs best peer rayon 4.00 M/s (0.50x)"));
        assert!(md.contains("1.10x ideal"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["mixed"][0]["bounds"]["ideal_ms"], 15.0);
        assert_eq!(v["config"]["mode"], "tiny");
        assert_eq!(v["config"]["mixed_burn"], 50);
        assert_eq!(r.best_noop_peer(1), Some(("rayon", 4e6)));
        assert_eq!(r.best_wake_peer(), None);
    }
}
