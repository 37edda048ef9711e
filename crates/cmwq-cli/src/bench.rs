//! `cmwq bench`: the side-by-side comparison with peer executors
//! (the harness lives in `cmwq-bench`; this is its only front end).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::demo::Result;

/// Options of `cmwq bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The quick mode: small sizes, under a minute on two CPUs (for CI smoke runs).
    #[arg(long)]
    quick: bool,
    /// Where the markdown table, JSON and SVG/PNG plots go (created if missing).
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    out: PathBuf,
    /// Run only these workloads, executors and/or producer modes, comma-separated.
    /// Workloads: noop, wake, mixed, many-queues, timers, detect, bh. Executors:
    /// cmwq-default, cmwq-default-plain (the queue `Workqueue::builder(..).build()`
    /// gives), cmwq-bound, cmwq-bound-plain (WqFlags::PERCPU), cmwq-unbound, rayon,
    /// tokio-blocking, fixed-pool, thread-per-item, mt-wq (bh has its own queues and
    /// ignores them). Producer modes (noop, mixed, bh): pinned (one producer pinned per CPU), unpinned (one producer nobody
    /// pinned). A kind left out means all of it: `--only mixed,cmwq-default,unpinned`.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    only: Option<Vec<String>>,
}

#[cfg(feature = "bench")]
pub(crate) fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<()> {
    let opts =
        cmwq_bench::BenchOpts { quick: args.quick, out_dir: args.out.clone(), only: args.only.clone() };
    let mode = if args.quick { "quick" } else { "full" };
    writeln!(
        out,
        "cmwq bench ({mode} mode): cmwq beside rayon, tokio's blocking pool, a fixed pool, thread-per-item \
         and an MT-wq emulation; results go to {}",
        args.out.display()
    )?;
    out.flush()?;
    // Progress goes to stderr so stdout keeps just the summary.
    let report = cmwq_bench::run(&opts, &mut |line| eprintln!("  {line}"))?;
    writeln!(out, "\nHeadline:")?;
    for line in report.headline() {
        writeln!(out, "  - {line}")?;
    }
    let (md, json, ratio, threads) = cmwq_bench::output_paths(&args.out, mode);
    writeln!(out, "wrote {} and {}", md.display(), json.display())?;
    // The mixed plots, per producer mode that ran.
    let ran = |m: cmwq_bench::ProducerMode| report.mixed.iter().any(|r| r.producer_mode == m.name());
    if ran(cmwq_bench::ProducerMode::Pinned) {
        writeln!(
            out,
            "plots {}.{{svg,png}} and {}.{{svg,png}} (pinned producers)",
            ratio.display(),
            threads.display()
        )?;
    }
    if ran(cmwq_bench::ProducerMode::Unpinned) {
        let (ratio, threads) = cmwq_bench::unpinned_plot_paths(&args.out, mode);
        writeln!(
            out,
            "plots {}.{{svg,png}} and {}.{{svg,png}} (1 unpinned producer)",
            ratio.display(),
            threads.display()
        )?;
    }
    Ok(())
}

#[cfg(not(feature = "bench"))]
pub(crate) fn run(_args: &BenchArgs, _out: &mut dyn Write) -> Result<()> {
    Err("this cmwq was built without the `bench` feature; build it with `--features bench` \
         (on by default) to compare cmwq with its peers"
        .into())
}
