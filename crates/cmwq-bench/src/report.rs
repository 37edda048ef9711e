//! The report: what every workload measured, as JSON and as markdown.

use serde::Serialize;

use crate::config::Config;
use crate::executors::ExecutorInfo;
use crate::fmt::section;
use crate::pools::{self, PoolUse};
use crate::workloads::bh::{self, BhLatencyRow, BhStormRow};
use crate::workloads::detect::{self, DetectLatencyRow, DetectOverheadRow};
use crate::workloads::many_queues::{self, ManyQueuesRow};
use crate::workloads::mixed::{self, MixedRow};
use crate::workloads::noop::{self, NoopRow};
use crate::workloads::timers::{self, TimerFireRow, TimerOpsRow};
use crate::workloads::wake::{self, WakeRow};

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
    pub timer_ops: Vec<TimerOpsRow>,
    /// timers: fire lateness rows.
    pub timer_fire: Vec<TimerFireRow>,
    /// detect: block-to-next-item latency rows (plain and announced).
    pub detect_latency: Vec<DetectLatencyRow>,
    /// detect: the sleep monitor's CPU time (idle and saturated).
    pub detect_overhead: Vec<DetectOverheadRow>,
    /// bh: queue-to-start latency of BH and per-CPU queues, idle and busy CPU.
    pub bh_latency: Vec<BhLatencyRow>,
    /// bh: a CPU-bound thread's longest gap beside a storm of items on its CPU.
    pub bh_storm: Vec<BhStormRow>,
    /// cmwq's pools that completed items, per workload (and per producers for
    /// noop and mixed).
    pub pools: Vec<PoolUse>,
    /// Items that ran other than exactly once, if any.
    pub notes: Vec<String>,
}

impl Report {
    /// The report as pretty JSON, with the [`headline`](Self::headline) lines.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct WithHeadline<'a> {
            #[serde(flatten)]
            report: &'a Report,
            headline: Vec<String>,
        }
        let r = WithHeadline { report: self, headline: self.headline() };
        serde_json::to_string_pretty(&r).expect("the report serialises")
    }

    /// Headline lines: cmwq against its targets and the best peers.
    pub fn headline(&self) -> Vec<String> {
        let mut v = mixed::headline(&self.mixed);
        v.extend(noop::headline(&self.noop));
        v.extend(wake::headline(&self.wake));
        v.extend(timers::headline(&self.timer_ops, &self.timer_fire));
        v.extend(detect::headline(&self.detect_latency, &self.detect_overhead));
        v.extend(many_queues::headline(&self.many_queues));
        v.extend(bh::headline(&self.bh_latency, &self.bh_storm));
        v
    }

    /// Whether every item of every workload ran exactly once.
    pub fn all_exactly_once(&self) -> bool {
        self.noop.iter().all(|r| r.exactly_once)
            && self.wake.iter().all(|r| r.exactly_once)
            && self.mixed.iter().all(|r| r.exactly_once)
            && self.many_queues.iter().all(|r| r.exactly_once)
            && self.timer_ops.iter().all(|r| r.exactly_once)
            && self.timer_fire.iter().all(|r| r.exactly_once)
            && self.detect_latency.iter().all(|r| r.exactly_once)
            && self.detect_overhead.iter().all(|r| r.exactly_once)
            && self.bh_latency.iter().all(|r| r.exactly_once)
            && self.bh_storm.iter().all(|r| r.exactly_once)
    }

    /// The report as markdown: the run, the headline, then a table per workload.
    pub fn to_markdown(&self) -> String {
        let e = &self.env;
        let mut s = format!(
            "# cmwq benchmark ({} mode)\n\n{} CPUs {:?}; load average before {} / after {}; {:.0} s; {} build; \
             medians of {} interleaved rounds (the executors' order rotated by one each round), each executor fresh and warmed first.\n\n",
            self.config.mode,
            e.cores,
            e.cpus,
            e.loadavg_before.as_deref().unwrap_or("?"),
            e.loadavg_after.as_deref().unwrap_or("?"),
            e.duration_s,
            if e.debug_build { "**debug** (timings are not meaningful)" } else { "release" },
            self.config.runs,
        );
        let list = |title: &str, lines: Vec<String>| {
            if lines.is_empty() {
                String::new()
            } else {
                format!(
                    "## {title}\n\n{}\n\n",
                    lines.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
                )
            }
        };
        s += &list("Headline", self.headline());
        let rows: Vec<Vec<String>> =
            self.executors.iter().map(|x| vec![format!("`{}`", x.name), x.settings.clone()]).collect();
        s += &section("Executors", &["executor", "settings (all peer defaults)"], &rows, "");
        // Each workload's tables, then the pools it used.
        let p = |w: &str| pools::markdown(&self.pools, w);
        s += &noop::markdown(&self.noop);
        s += &p("noop");
        s += &wake::markdown(&self.wake, self.config.wake_gap);
        s += &p("wake");
        s += &mixed::markdown(&self.mixed);
        s += &p("mixed");
        s += &many_queues::markdown(&self.many_queues);
        s += &p("many-queues");
        s += &timers::markdown(&self.timer_ops, &self.timer_fire);
        s += &p("timers");
        s += &detect::markdown(&self.detect_latency, &self.detect_overhead);
        s += &p("detect");
        s += &bh::markdown(&self.bh_latency, &self.bh_storm, self.config.wake_gap);
        s += &p("bh");
        s += &list("Invariants broken", self.notes.clone());
        s
    }
}
