//! The `cmwq` command.

mod bench;
mod demo;
mod obs;

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// cmwq: the Linux kernel's Concurrency Managed Workqueue, in userspace.
#[derive(Debug, Parser)]
#[command(
    name = "cmwq",
    version,
    about = "The Linux kernel's Concurrency Managed Workqueue, in userspace: measured demos",
    long_about = "cmwq: the Linux kernel's Concurrency Managed Workqueue, in userspace.\n\n\
                  Many workqueues share a small, self-regulating set of worker pools: one per \
                  pod of CPUs for the default queue (unbound), one per CPU for WqFlags::PERCPU \
                  queues. A pool runs as many items at once as it has CPUs; when a running item \
                  blocks, another one starts in its place.",
    after_help = "Log output (from the library) goes to stderr; set RUST_LOG to choose it, \
                  e.g. RUST_LOG=cmwq=debug. The default is warn.",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the kernel documentation's execution scenarios, show live pool state, and
    /// compare the default queue with a per-CPU one
    ///
    /// Part 1 runs the "Example Execution Scenarios" of the kernel's
    /// Documentation/core-api/workqueue.rst on one CPU (w0, w1, w2 burning CPU and
    /// sleeping) under five configurations, and prints each measured timeline beside
    /// the documented one. Part 2 runs a short mixed CPU-and-blocking workload over
    /// per-CPU, highpri, CPU-intensive and unbound workqueues and prints the worker
    /// pools' live state while it runs. Part 3 has one thread nobody pinned queue the
    /// same items (1 ms of CPU, then 4 ms of announced sleep) on the default queue and
    /// on a WqFlags::PERCPU queue, and prints each one's wall time against the ideal,
    /// the threads and the CPUs that ran them: the default queue (unbound, concurrency
    /// managed) uses every CPU, the per-CPU queue only the producer's. Part 4 queues
    /// items on a WqFlags::BH queue and a WqFlags::PERCPU one, in turn, on a CPU kept
    /// busy by a spinning item, and prints the order they ran in and each one's start
    /// latency (one line saying it is skipped where the library refuses WqFlags::BH).
    #[command(after_help = "Examples:\n  cmwq demo\n  cmwq demo --cpu 1 --scenarios-only\n  \
                            cmwq demo --mixed-only --mixed-secs 5 --mixed-rate 500\n  cmwq demo --spread-only\n  \
                            cmwq demo --bh-only --cpu 1")]
    Demo(demo::DemoArgs),
    /// Compare cmwq with the executors users would pick instead, on the same work
    ///
    /// Runs the noop, wake, mixed (burn then block, announced and plain),
    /// many-queues (threads, memory and pools per idle queue; the default queues
    /// are built with four different attributes and used once each), timers and
    /// detect workloads on cmwq (the default queue, which is unbound and
    /// concurrency managed, a WqFlags::PERCPU queue and a WqFlags::UNBOUND one),
    /// rayon::spawn, tokio's spawn_blocking, a fixed one-thread-per-CPU pool,
    /// thread-per-item and an emulation of the pre-cmwq "MT wq", each with its
    /// default settings. noop and mixed run twice: from producers pinned one per
    /// CPU, and from one producer nobody pinned. After each workload it lists
    /// cmwq's pools that ran its items. Writes markdown tables, JSON and SVG/PNG
    /// plots; progress goes to stderr. The bh workload is cmwq's alone: queue-to-start
    /// latency of BH, BH|HIGHPRI, PERCPU and PERCPU|HIGHPRI queues beside a bare
    /// pinned thread on an idle and a busy CPU, from a producer pinned there and from
    /// one nobody pinned, and a CPU-bound thread's longest gap beside a storm of
    /// items on its CPU (n/a where the library refuses WqFlags::BH).
    /// Needs the `bench` cargo feature (on by default); a build without it says so
    /// and exits with an error.
    #[command(after_help = "Examples:\n  cmwq bench --quick\n  cmwq bench --only mixed --out /tmp/r\n  \
                            cmwq bench --only mixed,unpinned\n  cmwq bench --only noop,mixed,cmwq-default,cmwq-bound\n  \
                            cmwq bench --quick --only bh --out /tmp/bh")]
    Bench(bench::BenchArgs),
    /// Watch a running program's workqueues (the kernel's wq_monitor.py)
    ///
    /// Reads the stats endpoint of a process that uses cmwq and was started with
    /// CMWQ_STATS=1 in its environment (or called cmwq::stats::serve()). Columns, as in
    /// wq_monitor.py: total (items started), infl (in flight), CPUtime (seconds of CPU
    /// its items used since the first look), CPUitsv (items that hogged a CPU past the
    /// CPU-intensive threshold), CMW/RPR (concurrency-management wake-ups; a process
    /// cannot repatriate threads, so every queue shows CMW), mayday and rescued
    /// (MEM_RECLAIM queues only, '-' otherwise); then cmwq's own: panics, and blocked
    /// (blocks nobody announced, found by the sleep monitor). A line above the table
    /// gives the worker threads and the monitor's counters. On a terminal it is a live
    /// view (q quits, space pauses, s changes the order); otherwise, or with -i 0, plain
    /// rows. -j prints JSON lines with wq_monitor.py -j's keys (cpu_time in
    /// microseconds), one per workqueue and sample, then one with the threads and the
    /// monitor.
    #[command(after_help = "Examples:\n  CMWQ_STATS=1 ./my-program &\n  cmwq top\n  \
                            cmwq top --pid 1234 -i 0 'mixed-.*'\n  cmwq top -j -i 5 > stats.jsonl\n  \
                            cmwq demo --serve & cmwq top")]
    Top(obs::top::TopArgs),
    /// Show a running program's workqueue configuration (the kernel's wq_dump.py)
    ///
    /// From the same endpoint as `cmwq top`: the affinity scopes and their pods, the
    /// worker pools, which pool each workqueue uses on each CPU, the rescuers, the
    /// unbound queues' per-node max_active; then the busy workqueues and pools with
    /// their running items, as the kernel's show_all_workqueues() prints them.
    #[command(after_help = "Examples:\n  cmwq dump\n  cmwq dump --pid 1234")]
    Dump(obs::dump::DumpArgs),
}

fn init_tracing() {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(f) => f,
        Err(e) => {
            if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
                eprintln!("cmwq: ignoring RUST_LOG ({e}); logging warnings only");
            }
            EnvFilter::new("warn")
        }
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Whether the error is stdout going away (`cmwq demo | head`): not worth a message.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let mut stdout = std::io::stdout().lock();
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args, &mut stdout),
        Command::Bench(args) => bench::run(args, &mut stdout),
        Command::Top(args) => obs::top::run(args, &mut stdout),
        Command::Dump(args) => obs::dump::run(args, &mut stdout),
    };
    let result = result.and_then(|()| stdout.flush().map_err(Into::into));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(e.as_ref()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cmwq: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_options_are_refused_by_clap() {
        assert!(Cli::try_parse_from(["cmwq", "demo", "--mixed-secs", "-1"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--scenarios-only", "--mixed-only"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--scenarios-only", "--spread-only"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--mixed-only", "--spread-only"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--spread-only"]).is_ok());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--bh-only", "--cpu", "1"]).is_ok());
        for other in ["--scenarios-only", "--mixed-only", "--spread-only", "--serve"] {
            assert!(Cli::try_parse_from(["cmwq", "demo", "--bh-only", other]).is_err(), "{other}");
        }
        assert!(Cli::try_parse_from(["cmwq", "demo", "--cpu", "x"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--cpu", "1", "--mixed-rate", "50"]).is_ok());
    }

    #[test]
    fn top_and_dump_take_wq_monitor_options() {
        let cli = Cli::try_parse_from(["cmwq", "top", "--pid", "12", "-i", "0", "-j", "a.*", "b"]).unwrap();
        let Command::Top(t) = cli.command else { panic!("not top") };
        assert_eq!((t.pid, t.interval, t.json), (Some(12), 0.0, true));
        assert_eq!(t.patterns, ["a.*", "b"]);
        let Command::Top(t) = Cli::try_parse_from(["cmwq", "top"]).unwrap().command else { panic!() };
        assert_eq!((t.pid, t.interval, t.json, t.patterns.len()), (None, 1.0, false, 0));
        assert!(Cli::try_parse_from(["cmwq", "top", "--interval", "2.5", "--json"]).is_ok());
        assert!(Cli::try_parse_from(["cmwq", "top", "-i", "-1"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "top", "--pid", "x"]).is_err());
        let Command::Dump(d) = Cli::try_parse_from(["cmwq", "dump", "--pid", "7"]).unwrap().command else {
            panic!()
        };
        assert_eq!(d.pid, Some(7));
        assert!(Cli::try_parse_from(["cmwq", "dump", "-j"]).is_err());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--serve"]).is_ok());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--serve", "--serve-secs", "3"]).is_ok());
        assert!(Cli::try_parse_from(["cmwq", "demo", "--serve", "--scenarios-only"]).is_err());
    }
}
