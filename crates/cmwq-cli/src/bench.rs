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
    /// Run only these workloads and/or executors, comma-separated. Workloads: noop,
    /// wake, mixed, many-queues, timers, detect. Executors: cmwq-bound,
    /// cmwq-bound-plain, cmwq-unbound, rayon, tokio-blocking, fixed-pool,
    /// thread-per-item, mt-wq.
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
    writeln!(out, "plots {}.{{svg,png}} and {}.{{svg,png}}", ratio.display(), threads.display())?;
    Ok(())
}

#[cfg(not(feature = "bench"))]
pub(crate) fn run(_args: &BenchArgs, _out: &mut dyn Write) -> Result<()> {
    Err("this cmwq was built without the `bench` feature; build it with `--features bench` \
         (on by default) to compare cmwq with its peers"
        .into())
}
