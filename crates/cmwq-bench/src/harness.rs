//! The entry point: option handling, the run, and writing the outputs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::ctx::{retire_cmwq_workers, Ctx};
use crate::error::Error;
use crate::executors::ExecutorKind;
use crate::pools::PoolTally;
use crate::procfs::{self, Sampler};
use crate::producers::{ProducerMode, Producers};
use crate::report::{Env, Report};
use crate::workloads::{bh, detect, many_queues, mixed, noop, timers, wake, WORKLOADS};

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOpts {
    /// The quick mode (under a minute on 2 CPUs) instead of the full one.
    pub quick: bool,
    /// Where the markdown, JSON and plots go (created if missing).
    pub out_dir: PathBuf,
    /// Restrict to these workloads, executors and/or producer modes (names as
    /// in the output; see [`WORKLOADS`], [`ExecutorKind::name`] and
    /// [`ProducerMode::name`]). `None`: everything.
    pub only: Option<Vec<String>>,
}

/// What `only` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Workloads to run.
    pub workloads: Vec<&'static str>,
    /// Executors to run them on.
    pub executors: Vec<ExecutorKind>,
    /// Producer modes of the workloads that have them (noop, mixed, bh).
    pub modes: Vec<ProducerMode>,
}

/// Resolves `only` into workloads, executors and producer modes: a name that is
/// a workload selects it, one that is an executor selects that, `pinned` or
/// `unpinned` selects that producer mode; a list without workloads means all
/// workloads, one without executors all executors, one without modes both modes.
///
/// # Errors
/// [`Error::Usage`] for a name that is none of these.
pub fn select(only: Option<&[String]>) -> Result<Selection, Error> {
    let mut workloads: Vec<&'static str> = Vec::new();
    let mut executors = Vec::new();
    let mut modes = Vec::new();
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
        } else if let Some(m) = ProducerMode::from_name(name) {
            if !modes.contains(&m) {
                modes.push(m);
            }
        } else if !name.is_empty() {
            let known: Vec<&str> = WORKLOADS
                .iter()
                .copied()
                .chain(ExecutorKind::ALL.map(|k| k.name()))
                .chain(ProducerMode::ALL.map(|m| m.name()))
                .collect();
            return Err(Error::Usage(format!(
                "unknown workload, executor or producer mode {name:?}; known: {}",
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
    if modes.is_empty() {
        modes = ProducerMode::ALL.to_vec();
    } else {
        modes.sort_by_key(|m| ProducerMode::ALL.iter().position(|x| x == m));
    }
    Ok(Selection { workloads, executors, modes })
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
    let cpus = match cmwq::allowed_cpus() {
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
        modes: sel.modes.clone(),
        infos: Vec::new(),
        pools: Vec::new(),
        notes: Vec::new(),
        started,
        progress,
    };
    ctx.say(&format!(
        "cmwq bench {} mode: workloads {:?} on {} CPUs {:?}; executors {:?}; producers {:?}; load average {}",
        cfg.mode,
        sel.workloads,
        cpus.len(),
        cpus,
        sel.executors.iter().map(|k| k.name()).collect::<Vec<_>>(),
        sel.modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
        loadavg_before.as_deref().unwrap_or("?")
    ));
    if cfg!(debug_assertions) {
        ctx.say("note: debug build; timings are not meaningful (use --release)");
    }
    let mut r = Report {
        config: cfg.clone(),
        env: Env {
            cores: cpus.len(),
            cpus,
            loadavg_before,
            loadavg_after: None,
            started_unix_s,
            duration_s: 0.0,
            debug_build: cfg!(debug_assertions),
            harness_threads,
        },
        executors: Vec::new(),
        noop: Vec::new(),
        wake: Vec::new(),
        mixed: Vec::new(),
        many_queues: Vec::new(),
        timer_ops: Vec::new(),
        timer_fire: Vec::new(),
        detect_latency: Vec::new(),
        detect_overhead: Vec::new(),
        bh_latency: Vec::new(),
        bh_storm: Vec::new(),
        pools: Vec::new(),
        notes: Vec::new(),
    };
    for w in &sel.workloads {
        // noop and mixed tally their pools per producer mode themselves.
        let tally = (!matches!(*w, "noop" | "mixed")).then(PoolTally::start);
        match *w {
            "noop" => r.noop = noop::run(&mut ctx)?,
            "wake" => r.wake = wake::run(&mut ctx)?,
            "mixed" => r.mixed = mixed::run(&mut ctx)?,
            "many-queues" => r.many_queues = many_queues::run(&mut ctx)?,
            "timers" => (r.timer_ops, r.timer_fire) = timers::run(&mut ctx)?,
            "detect" => (r.detect_latency, r.detect_overhead) = detect::run(&mut ctx)?,
            "bh" => (r.bh_latency, r.bh_storm) = bh::run(&mut ctx)?,
            _ => unreachable!("select() only returns known workloads"),
        }
        if let Some(t) = tally {
            ctx.pools_done(t, w, None);
        }
    }
    retire_cmwq_workers();
    r.env.loadavg_after = procfs::loadavg();
    r.env.duration_s = started.elapsed().as_secs_f64();
    r.executors = std::mem::take(&mut ctx.infos);
    r.executors.sort_by_key(|i| ExecutorKind::ALL.iter().position(|k| k.name() == i.name));
    r.pools = std::mem::take(&mut ctx.pools);
    r.notes = std::mem::take(&mut ctx.notes);
    for f in write_outputs(&r, &opts.out_dir, cfg.plots)? {
        ctx.say(&format!("wrote {}", f.display()));
    }
    if !r.all_exactly_once() {
        return Err(Error::Invariant(format!("items ran other than exactly once: {}", r.notes.join("; "))));
    }
    Ok(r)
}

/// The output files for a mode: markdown, JSON, and the stems of the plots of
/// the pinned producers (see [`unpinned_plot_paths`] for the unpinned one).
pub fn output_paths(dir: &Path, mode: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("bench-{mode}.md")),
        dir.join(format!("bench-{mode}.json")),
        dir.join(format!("bench-{mode}-mixed-ratio")),
        dir.join(format!("bench-{mode}-peak-threads")),
    )
}

/// The stems of the mixed plots of the single unpinned producer.
pub fn unpinned_plot_paths(dir: &Path, mode: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("bench-{mode}-unpinned-mixed-ratio")),
        dir.join(format!("bench-{mode}-unpinned-peak-threads")),
    )
}

fn write_outputs(report: &Report, dir: &Path, plots: bool) -> Result<Vec<PathBuf>, Error> {
    let (md, json, ratio, threads) = output_paths(dir, report.config.mode);
    let write = |p: &Path, s: String| std::fs::write(p, s).map_err(|e| Error::Io(p.to_path_buf(), e));
    write(&md, report.to_markdown())?;
    write(&json, report.to_json())?;
    let mut files = vec![md, json];
    if plots {
        let (u_ratio, u_threads) = unpinned_plot_paths(dir, report.config.mode);
        for (mode, ratio, threads) in
            [(ProducerMode::Pinned, ratio, threads), (ProducerMode::Unpinned, u_ratio, u_threads)]
        {
            if let Some((r, t)) = crate::plot::mixed_charts(&report.mixed, report.env.cores, mode) {
                files.extend(crate::plot::render(&r, &ratio)?);
                files.extend(crate::plot::render(&t, &threads)?);
            }
        }
    }
    Ok(files)
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
        assert_eq!(all.modes, [ProducerMode::Pinned, ProducerMode::Unpinned], "no mode named: both");
    }

    #[test]
    fn selection_of_producer_modes() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s = select(Some(&names(&["mixed", "cmwq-default", "unpinned"]))).unwrap();
        assert_eq!(s.workloads, ["mixed"]);
        assert_eq!(s.executors, [ExecutorKind::CmwqDefault]);
        assert_eq!(s.modes, [ProducerMode::Unpinned]);
        let s = select(Some(&names(&["unpinned", "noop", "pinned", " pinned"]))).unwrap();
        assert_eq!(
            (s.workloads, s.modes),
            (vec!["noop"], vec![ProducerMode::Pinned, ProducerMode::Unpinned])
        );
        // A mode alone: every workload and executor, that mode.
        let s = select(Some(&names(&["pinned"]))).unwrap();
        assert_eq!((s.workloads.len(), s.executors.len()), (WORKLOADS.len(), ExecutorKind::ALL.len()));
        assert_eq!(s.modes, [ProducerMode::Pinned]);
        match select(Some(&names(&["unpined"]))) {
            Err(Error::Usage(m)) => assert!(m.contains("pinned, unpinned"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        let (md, json, r, t) = output_paths(Path::new("/x"), "quick");
        assert_eq!(md, Path::new("/x/bench-quick.md"));
        assert_eq!(json, Path::new("/x/bench-quick.json"));
        assert_eq!(r, Path::new("/x/bench-quick-mixed-ratio"));
        assert_eq!(t, Path::new("/x/bench-quick-peak-threads"));
        let (r, t) = unpinned_plot_paths(Path::new("/x"), "full");
        assert_eq!(r, Path::new("/x/bench-full-unpinned-mixed-ratio"));
        assert_eq!(t, Path::new("/x/bench-full-unpinned-peak-threads"));
    }
}
