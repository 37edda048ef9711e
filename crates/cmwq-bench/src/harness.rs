//! The entry point: option handling, the shared context of the workloads, thread
//! accounting, and writing the outputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::Error;
use crate::executors::{rayon_global_threads, Executor, ExecutorKind};
use crate::procfs::{self, Peaks, Sampler};
use crate::producers::Producers;
use crate::report::{Env, ExecutorInfo, Report};
use crate::workloads;

/// The workloads, in run order.
pub const WORKLOADS: [&str; 6] = ["noop", "wake", "mixed", "many-queues", "timers", "detect"];

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOpts {
    /// The quick mode (under a minute on 2 CPUs) instead of the full one.
    pub quick: bool,
    /// Where the markdown, JSON and plots go (created if missing).
    pub out_dir: PathBuf,
    /// Restrict to these workloads and/or executors (names as in the output;
    /// see [`WORKLOADS`] and [`ExecutorKind::name`]). `None`: everything.
    pub only: Option<Vec<String>>,
}

/// What `only` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Workloads to run.
    pub workloads: Vec<&'static str>,
    /// Executors to run them on.
    pub executors: Vec<ExecutorKind>,
}

/// Resolves `only` into workloads and executors: a name that is a workload
/// selects it, one that is an executor selects that; a list without workloads
/// means all workloads, one without executors all executors.
///
/// # Errors
/// [`Error::Usage`] for a name that is neither.
pub fn select(only: Option<&[String]>) -> Result<Selection, Error> {
    let mut workloads: Vec<&'static str> = Vec::new();
    let mut executors = Vec::new();
    for name in only.unwrap_or_default() {
        let name = name.trim();
        if let Some(w) = WORKLOADS.iter().find(|w| **w == name) {
            if !workloads.contains(w) {
                workloads.push(w);
            }
        } else if let Some(k) = ExecutorKind::from_name(name) {
            if !executors.contains(&k) {
                executors.push(k);
            }
        } else if !name.is_empty() {
            let known: Vec<&str> =
                WORKLOADS.iter().copied().chain(ExecutorKind::ALL.map(|k| k.name())).collect();
            return Err(Error::Usage(format!(
                "unknown workload or executor {name:?}; known: {}",
                known.join(", ")
            )));
        }
    }
    if workloads.is_empty() {
        workloads = WORKLOADS.to_vec();
    } else {
        workloads.sort_by_key(|w| WORKLOADS.iter().position(|x| x == w));
    }
    if executors.is_empty() {
        executors = ExecutorKind::ALL.to_vec();
    } else {
        executors.sort_by_key(|k| ExecutorKind::ALL.iter().position(|x| x == k));
    }
    Ok(Selection { workloads, executors })
}

/// How an executor's threads are told apart from the others in `Threads:`.
///
/// `other` is the count of threads that belong to no executor (harness, host),
/// taken before the executor was created; cmwq's workers and rayon's global pool
/// live for the process and are subtracted live when they are not the executor
/// under test. Everything else an executor starts dies with its adapter.
pub fn executor_threads(kind: ExecutorKind, peaks: Peaks, other: usize, rayon_now: usize) -> usize {
    match kind {
        k if k.is_cmwq() => peaks.all.saturating_sub(other + rayon_now),
        ExecutorKind::Rayon => peaks.non_cmwq.saturating_sub(other),
        _ => peaks.non_cmwq.saturating_sub(other + rayon_now),
    }
}

/// Lets cmwq's idle workers exit (idle timeout lowered to 1 ms until none is
/// left, at most 5 s, then restored), so that every executor starts without
/// threads left by the one before.
pub fn retire_cmwq_workers() {
    if cmwq::debug::nr_workers() == 0 {
        return;
    }
    let prev = cmwq::idle_timeout();
    cmwq::set_idle_timeout(Duration::from_millis(1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while cmwq::debug::nr_workers() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    cmwq::set_idle_timeout(prev);
}

/// State shared by the workloads.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) cpus: Vec<usize>,
    pub(crate) producers: Producers,
    pub(crate) sampler: Sampler,
    pub(crate) kinds: Vec<ExecutorKind>,
    pub(crate) infos: Vec<ExecutorInfo>,
    pub(crate) notes: Vec<String>,
    started: Instant,
    progress: &'a mut dyn FnMut(&str),
}

impl Ctx<'_> {
    pub(crate) fn say(&mut self, msg: &str) {
        let line = format!("[{:6.1}s] {msg}", self.started.elapsed().as_secs_f64());
        (self.progress)(&line);
    }

    pub(crate) fn cores(&self) -> usize {
        self.cpus.len()
    }

    /// Before an executor's batch: cmwq's idle workers retired, the thread count
    /// settled. Returns the threads that belong to no executor.
    pub(crate) fn prepare(&self) -> usize {
        retire_cmwq_workers();
        let t = procfs::settled_threads(Duration::from_millis(300));
        t.saturating_sub(cmwq::debug::nr_workers() + rayon_global_threads())
    }

    /// The executor's threads at the peaks of a sampling window.
    pub(crate) fn threads_of(&self, kind: ExecutorKind, peaks: Peaks, other: usize) -> usize {
        executor_threads(kind, peaks, other, rayon_global_threads())
    }

    /// Creates an executor and records its settings.
    pub(crate) fn build(&mut self, kind: ExecutorKind) -> Result<Arc<dyn Executor>, Error> {
        let e: Arc<dyn Executor> = Arc::from(kind.build(&self.cpus)?);
        if !self.infos.iter().any(|i| i.name == e.name()) {
            self.infos.push(ExecutorInfo { name: e.name().to_string(), settings: e.settings() });
        }
        Ok(e)
    }

    /// Drops an executor's adapter, waiting for the threads it owns.
    pub(crate) fn finish(&self, exec: Arc<dyn Executor>) {
        // Producers and jobs have let go of their clones by now; if one has not,
        // the adapter's threads die when it does.
        drop(exec);
    }

    /// The measured rounds: every executor gets one run per round, so that slow
    /// phases of a shared machine hit all of them alike.
    pub(crate) fn rounds(&self) -> usize {
        self.cfg.runs.max(1)
    }
}

/// Items of the warm-up run that precedes each measured run (a quarter of the
/// run, at least one; none if `cfg.warmup` is off).
pub fn warmup_items(cfg: &Config, items: usize) -> usize {
    if cfg.warmup {
        (items / 4).max(1)
    } else {
        0
    }
}

/// Runs the benchmark with the sizes of `opts.quick` (see [`Config`]), writes
/// `bench-<mode>.md`, `bench-<mode>.json` and the plots into `opts.out_dir`,
/// and returns the report. `progress` gets one line per step.
///
/// # Errors
/// A bad `only`, an executor failure or timeout, an output that cannot be
/// written, or (after the outputs were written) an item that ran other than once.
pub fn run(opts: &BenchOpts, progress: &mut dyn FnMut(&str)) -> Result<Report, Error> {
    let cfg = if opts.quick { Config::quick() } else { Config::full() };
    run_with_config(&cfg, opts, progress)
}

/// [`run`] with explicit sizes (`opts.quick` is ignored).
///
/// # Errors
/// As [`run`].
pub fn run_with_config(
    cfg: &Config,
    opts: &BenchOpts,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, Error> {
    let sel = select(opts.only.as_deref())?;
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::Io(opts.out_dir.clone(), e))?;
    let cpus = match cmwq::online_cpus() {
        v if v.is_empty() => vec![0],
        v => v,
    };
    let started = Instant::now();
    let started_unix_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let loadavg_before = procfs::loadavg();
    let producers = Producers::new(&cpus);
    let sampler = Sampler::start(cfg.sample_interval);
    let harness_threads = procfs::settled_threads(Duration::from_millis(100));
    let mut ctx = Ctx {
        cfg,
        cpus: cpus.clone(),
        producers,
        sampler,
        kinds: sel.executors.clone(),
        infos: Vec::new(),
        notes: Vec::new(),
        started,
        progress,
    };
    ctx.say(&format!(
        "cmwq-bench {} mode: workloads {:?} on {} CPUs {:?}; executors {:?}; load average {}",
        cfg.mode,
        sel.workloads,
        cpus.len(),
        cpus,
        sel.executors.iter().map(|k| k.name()).collect::<Vec<_>>(),
        loadavg_before.as_deref().unwrap_or("?")
    ));
    if cfg!(debug_assertions) {
        ctx.say("note: debug build; timings are not meaningful (use --release)");
    }
    let mut noop = Vec::new();
    let mut wake = Vec::new();
    let mut mixed = Vec::new();
    let mut many_queues = Vec::new();
    let (mut timer_ops, mut timer_fire) = (Vec::new(), Vec::new());
    let (mut detect_latency, mut detect_overhead) = (Vec::new(), Vec::new());
    for w in &sel.workloads {
        match *w {
            "noop" => noop = workloads::noop(&mut ctx)?,
            "wake" => wake = workloads::wake(&mut ctx)?,
            "mixed" => mixed = workloads::mixed(&mut ctx)?,
            "many-queues" => many_queues = workloads::many_queues(&mut ctx)?,
            "timers" => (timer_ops, timer_fire) = crate::timers::timers(&mut ctx)?,
            "detect" => (detect_latency, detect_overhead) = crate::detect::detect(&mut ctx)?,
            _ => unreachable!("select() only returns known workloads"),
        }
    }
    for m in crate::detect::mixed_plain_vs_announced(&mixed) {
        ctx.say(&format!(
            "[mixed {}] makespan cmwq-bound-plain / cmwq-bound (unannotated / announced): {:.1} / {:.1} ms = {:.2}x",
            m.ratio, m.plain_ms, m.announced_ms, m.plain_over_announced
        ));
    }
    retire_cmwq_workers();
    let mut notes = general_notes(cfg, &cpus);
    notes.append(&mut ctx.notes);
    let report = Report {
        config: cfg.clone(),
        env: Env {
            cores: cpus.len(),
            cpus,
            loadavg_before,
            loadavg_after: procfs::loadavg(),
            started_unix_s,
            duration_s: started.elapsed().as_secs_f64(),
            debug_build: cfg!(debug_assertions),
            harness_threads,
        },
        executors: std::mem::take(&mut ctx.infos),
        noop,
        wake,
        mixed,
        many_queues,
        timer_ops,
        timer_fire,
        detect_latency,
        detect_overhead,
        notes,
        skipped: Vec::new(),
    };
    let files = write_outputs(&report, &opts.out_dir, cfg.plots)?;
    for f in &files {
        ctx.say(&format!("wrote {}", f.display()));
    }
    let broken = report.noop.iter().filter(|r| !r.exactly_once).count()
        + report.wake.iter().filter(|r| !r.exactly_once).count()
        + report.mixed.iter().filter(|r| !r.exactly_once).count()
        + report.many_queues.iter().filter(|r| !r.exactly_once).count()
        + report.timer_ops.iter().filter(|r| !r.exactly_once).count()
        + report.timer_fire.iter().filter(|r| !r.exactly_once).count()
        + report.detect_latency.iter().filter(|r| !r.exactly_once).count()
        + report.detect_overhead.iter().filter(|r| !r.exactly_once).count();
    if broken > 0 {
        return Err(Error::Invariant(format!(
            "{broken} result rows had items that ran other than exactly once (see the report)"
        )));
    }
    Ok(report)
}

/// The output files for a mode: markdown, JSON, and the stems of the plots.
pub fn output_paths(dir: &Path, mode: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("bench-{mode}.md")),
        dir.join(format!("bench-{mode}.json")),
        dir.join(format!("bench-{mode}-mixed-ratio")),
        dir.join(format!("bench-{mode}-peak-threads")),
    )
}

fn write_outputs(report: &Report, dir: &Path, plots: bool) -> Result<Vec<PathBuf>, Error> {
    let (md, json, ratio, threads) = output_paths(dir, report.config.mode);
    let write = |p: &Path, s: String| std::fs::write(p, s).map_err(|e| Error::Io(p.to_path_buf(), e));
    write(&md, report.to_markdown())?;
    write(&json, report.to_json())?;
    let mut files = vec![md, json];
    if plots {
        if let Some((r, t)) = crate::plot::mixed_charts(report) {
            files.extend(crate::plot::render(&r, &ratio)?);
            files.extend(crate::plot::render(&t, &threads)?);
        }
    }
    Ok(files)
}

fn general_notes(cfg: &Config, cpus: &[usize]) -> Vec<String> {
    let cores = cpus.len();
    vec![
        format!(
            "Executors are interleaved: in each of {} rounds, every executor in turn is created fresh{}, then \
             measured once; medians are over the rounds, so a slow phase of a shared machine hits all executors \
             alike. wake splits its samples over the rounds; many-queues runs once. Every executor uses its own \
             defaults (table above).",
            cfg.runs.max(1),
            if cfg.warmup { " and warmed with an unmeasured run of a quarter of the items" } else { "" }
        ),
        "The machine may be shared (see the load average): CPU-bound figures include time stolen by other \
         processes. Medians damp this; they do not remove it."
            .into(),
        format!(
            "Producers: {cores} harness threads, one pinned to each CPU, exist for the whole benchmark. noop uses \
             producer 0 alone or all of them; mixed and many-queues use all of them (each submits its share); \
             wake uses producer 0 (CPU {}). cmwq-bound and mt-wq run an item on the submitting CPU, as the \
             kernel's queue_work does.",
            cpus.first().copied().unwrap_or(0)
        ),
        "Threads: /proc/self/status `Threads:` sampled every ~1 ms by a background thread during each run. \
         The baseline subtracted is the count present before the executor was created, less cmwq's live \
         workers and rayon's global pool (those two live for the whole process; when they are not the \
         executor under test, their live count is subtracted at each sample). Before each executor, cmwq's \
         idle workers are retired (idle timeout lowered to 1 ms until none is left, then restored to the \
         default), and per-adapter executors (tokio runtime, fixed pool, mt-wq, thread-per-item) are created \
         fresh and joined after; rayon's global pool cannot be reset. Peak threads therefore include idle \
         threads the executor kept from its warm-up run."
            .into(),
        "noop: time from the first submission until the last item finished (stamped by that item). Items are \
         boxed closures handed to each executor's own spawn call (cmwq: Workqueue::spawn)."
            .into(),
        format!(
            "wake: t0 right before the spawn call, t1 as the item's first action; {} µs idle gap before each \
             sample. park-unpark rows are a bare thread handoff (thread pinned to the producer's CPU or the next \
             one, woken with Thread::unpark).",
            cfg.wake_gap.as_micros()
        ),
        "mixed: each item spins on cmwq::debug::thread_cpu_time until it used X of CPU, then blocks Y \
         (`announced`: cmwq::sleep; `plain`: std::thread::sleep). ideal = max(N·X / cores, X + Y) (the \
         issue's bound); tight = max(N·X / cores + Y, X + Y): the last burst ends no earlier than N·X / cores \
         and its item then blocks Y, so no schedule beats it. `peak blocked` is the most items inside their \
         block at once (from the start of the block until the item has the CPU again), over the unmeasured \
         warm-up and the run together, since threads kept from the warm-up count in the run's peak; \
         `cores+blocked+2` is the thread count a concurrency-managed pool needs for that. `Σ per-CPU peak \
         blocked` adds up each CPU's own peak (by the CPU an item blocked on), reached at different moments: \
         per-CPU pools that keep idle workers each grow to their own high-water mark, so a pool that starts \
         a second item beside a sleeper waiting for its CPU follows cores + this sum + 2 (cmwq did, before \
         its runnable-sleeper rule: crates/cmwq/src/pool/README.md)."
            .into(),
        "mixed, CPU % ours/others/idle/steal: where the CPUs' time went during the measured runs, summed: this \
         process (CLOCK_PROCESS_CPUTIME_ID), other processes (busy jiffies in /proc/stat less ours), idle, and \
         stolen by the hypervisor (the steal column). Jiffies are 10 ms, so short runs are coarse. On a VM, idle and steal overlap when the host is slow to \
         run a vCPU that is waking up (a timer or wake-up of ours waits, counted as both), so they can sum \
         past 100 %. /avail = \
         makespan / max(N·X / (cores × (1 - others - steal)), X + Y): the ideal on the CPU share the rest of the \
         machine left, an estimate of the executor's own overhead; on a dedicated machine it equals /ideal. \
         Other processes also take CPU time an executor leaves idle, so /avail flatters executors that leave \
         CPUs idle (fixed pools while items sleep); read it only for executors that keep the CPUs busy."
            .into(),
        "mixed, `our CPU beyond X`: this process's CPU time per run, less the thread sampler's own CPU time, \
         less N·X, per item: what scheduling, context switches, pool management, submission (the producers) \
         and timers cost. Each blocking item sleeps and wakes once, so executors that run blocked items on \
         threads of their own pay two context switches per item here."
            .into(),
        "mixed, cmwq-bound-plain: blocking that is not announced is detected by cmwq's sleep monitor (a \
         thread that, while a per-CPU pool has work waiting, samples its running workers' scheduler state and \
         CPU clocks and lets another worker start once one is seen blocked), so the pool keeps its CPU busy, \
         but later than with an announced block (see detect for the delay and the monitor's own cost)."
            .into(),
        format!(
            "many-queues: cmwq creates {} workqueues; families that give each queue its own threads (mt-wq: one \
             pinned thread per CPU per queue; fixed-pool: a one-thread-per-CPU pool per queue) are capped at {} \
             threads, i.e. {} queues on this machine. Each producer queues {} item(s) on every queue. RSS is \
             VmRSS after malloc_trim(0), with every queue idle after its items, minus VmRSS before the queues \
             were created; it includes the stacks the threads touched. Shared pools (rayon, tokio, \
             thread-per-item) have no per-queue objects and are not measured here.",
            cfg.mq_queues,
            cfg.mq_thread_cap,
            (cfg.mq_thread_cap / cores.max(1)).clamp(1, cfg.mq_queues.max(1)),
            cfg.mq_items_per_cpu
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        let all = select(None).unwrap();
        assert_eq!(all.workloads, WORKLOADS.to_vec());
        assert_eq!(all.executors, ExecutorKind::ALL.to_vec());
        let s = select(Some(&["mixed".into(), "rayon".into(), "noop".into(), "cmwq-bound".into()])).unwrap();
        assert_eq!(s.workloads, vec!["noop", "mixed"]);
        assert_eq!(s.executors, vec![ExecutorKind::CmwqBound, ExecutorKind::Rayon]);
        let s = select(Some(&["mt-wq".into()])).unwrap();
        assert_eq!(s.workloads, WORKLOADS.to_vec());
        assert_eq!(s.executors, vec![ExecutorKind::MtWq]);
        assert!(matches!(select(Some(&["nope".into()])), Err(Error::Usage(_))));
    }

    #[test]
    fn thread_accounting() {
        let p = Peaks { all: 20, non_cmwq: 12, sampler_cpu: Duration::ZERO };
        // cmwq: everything but the others and rayon's pool.
        assert_eq!(executor_threads(ExecutorKind::CmwqBound, p, 5, 2), 13);
        // rayon: its own pool counts, cmwq's live workers do not.
        assert_eq!(executor_threads(ExecutorKind::Rayon, p, 5, 2), 7);
        // others: neither.
        assert_eq!(executor_threads(ExecutorKind::TokioBlocking, p, 5, 2), 5);
        assert_eq!(executor_threads(ExecutorKind::MtWq, p, 50, 2), 0);
    }

    #[test]
    fn warmups_and_paths() {
        assert_eq!(warmup_items(&Config::full(), 600), 150);
        assert_eq!(warmup_items(&Config::full(), 2), 1);
        assert_eq!(warmup_items(&Config::tiny(), 600), 0);
        let (md, json, r, t) = output_paths(Path::new("/x"), "quick");
        assert_eq!(md, Path::new("/x/bench-quick.md"));
        assert_eq!(json, Path::new("/x/bench-quick.json"));
        assert_eq!(r, Path::new("/x/bench-quick-mixed-ratio"));
        assert_eq!(t, Path::new("/x/bench-quick-peak-threads"));
    }
}
