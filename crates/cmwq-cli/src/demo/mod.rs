//! `cmwq demo`: the kernel documentation's execution scenarios, measured, then a
//! mixed workload with the pools' live state, then one unpinned producer's items
//! on the default queue and on a per-CPU one, then a BH queue beside a per-CPU
//! one on a busy CPU.

mod bh;
mod mixed;
mod scenarios;
mod spread;
mod timeline;

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;

pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Options of `cmwq demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// CPU for the execution scenarios (default: the first CPU this process may use)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    cpu: Option<usize>,

    /// Run only the execution scenarios (part 1)
    #[arg(long, conflicts_with_all = ["mixed_only", "spread_only"])]
    scenarios_only: bool,

    /// Serve stats (CMWQ_STATS) and keep the mixed workload running, to try `cmwq top` and
    /// `cmwq dump` against; runs until interrupted
    #[arg(long, conflicts_with_all = ["scenarios_only", "mixed_only", "spread_only", "bh_only"])]
    serve: bool,

    /// With --serve: stop after this many seconds (0.1 to 86400)
    #[arg(long, value_name = "S", requires = "serve", value_parser = parse_serve_secs, allow_negative_numbers = true)]
    serve_secs: Option<f64>,

    /// Run only the mixed workload (part 2)
    #[arg(long, conflicts_with = "spread_only")]
    mixed_only: bool,

    /// Run only the default queue against a per-CPU one, from one unpinned producer (part 3)
    #[arg(long, conflicts_with = "bh_only")]
    spread_only: bool,

    /// Run only a BH queue beside a per-CPU one on a busy CPU (part 4, on the --cpu CPU)
    #[arg(long, conflicts_with_all = ["scenarios_only", "mixed_only"])]
    bh_only: bool,

    /// How long to keep queueing items in the mixed workload, in seconds (0.1 to 60)
    #[arg(
        long,
        value_name = "S",
        default_value = "2.5",
        value_parser = parse_secs,
        allow_negative_numbers = true
    )]
    mixed_secs: f64,

    /// Items queued per second in the mixed workload
    #[arg(
        long,
        value_name = "N",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    mixed_rate: u32,
}

fn parse_secs(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if (0.1..=60.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is out of range: give between 0.1 and 60 seconds"))
    }
}

fn parse_serve_secs(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if (0.1..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is out of range: give between 0.1 and 86400 seconds"))
    }
}

/// Picks the scenario CPU: the one asked for if this process may use it.
fn scenario_cpu(asked: Option<usize>, online: &[usize]) -> Result<usize> {
    match (asked, online.first()) {
        (_, None) => Err("cmwq reports no usable CPU (empty affinity mask?)".into()),
        (None, Some(&first)) => Ok(first),
        (Some(cpu), _) if online.contains(&cpu) => Ok(cpu),
        (Some(cpu), _) => Err(format!(
            "--cpu {cpu}: not a CPU this process may run on; usable CPUs: {}",
            online.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        )
        .into()),
    }
}

/// Runs `cmwq demo`, printing to `out`.
pub(crate) fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    let online = cmwq::allowed_cpus();
    if args.serve {
        let until = args.serve_secs.map(Duration::from_secs_f64);
        return mixed::serve(out, &online, args.mixed_rate, until);
    }
    let cpu = scenario_cpu(args.cpu, &online)?;
    writeln!(
        out,
        "cmwq demo: {} usable CPU(s) ({})",
        online.len(),
        online.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    )?;
    if let Some(load) = load_average() {
        writeln!(out, "   load average (1 min): {load:.2} (other busy processes stretch the timings)")?;
    }
    writeln!(out)?;
    let all = !(args.scenarios_only || args.mixed_only || args.spread_only || args.bh_only);
    if all || args.scenarios_only {
        scenarios::run(out, cpu)?;
    }
    if all || args.mixed_only {
        let cfg = mixed::Config { secs: args.mixed_secs, rate: args.mixed_rate };
        mixed::run(out, &online, &cfg)?;
        writeln!(out)?;
    }
    if all || args.spread_only {
        spread::run(out, &online)?;
    }
    if all || args.bh_only {
        bh::run(out, cpu)?;
    }
    Ok(())
}

/// The 1-minute load average, where `/proc/loadavg` exists.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Spins until the calling thread's CPU clock has advanced by `d`: CPU time, not
/// wall time, so time-slicing with other threads shows up honestly. Gives up after
/// a generous wall-clock bound in case the thread clock is unavailable.
pub(crate) fn burn_cpu(d: Duration) {
    let start = cmwq::debug::thread_cpu_time();
    let give_up = Instant::now() + d * 200 + Duration::from_secs(1);
    while cmwq::debug::thread_cpu_time().saturating_sub(start) < d {
        if Instant::now() > give_up {
            return;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_cpu_is_validated() {
        assert_eq!(scenario_cpu(None, &[2, 3]).unwrap(), 2);
        assert_eq!(scenario_cpu(Some(3), &[2, 3]).unwrap(), 3);
        let e = scenario_cpu(Some(7), &[0, 1]).unwrap_err().to_string();
        assert_eq!(e, "--cpu 7: not a CPU this process may run on; usable CPUs: 0, 1");
        assert!(scenario_cpu(None, &[]).is_err());
    }

    #[test]
    fn secs_are_validated() {
        assert_eq!(parse_secs("2.5"), Ok(2.5));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("abc").is_err());
    }
}
