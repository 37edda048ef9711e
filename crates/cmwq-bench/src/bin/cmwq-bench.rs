//! `cmwq-bench`: runs the comparison benchmark and writes `bench-<mode>.md`,
//! `bench-<mode>.json` and plots into the output directory.
//!
//! ```text
//! cargo run --release -p cmwq-bench --bin cmwq-bench -- --quick
//! cargo run --release -p cmwq-bench --bin cmwq-bench -- --out bench-results --only mixed,cmwq-bound,rayon
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cmwq-bench [--quick | --full] [--out DIR] [--only NAME[,NAME...]]

  --quick        small sizes: under a minute on 2 CPUs (CI smoke)
  --full         the full run (default): a few minutes
  --out DIR      output directory (default: bench-results)
  --only NAMES   workloads and/or executors, comma-separated:
                 workloads: noop, wake, mixed, many-queues, timers, detect
                 executors: cmwq-bound, cmwq-bound-plain, cmwq-unbound, rayon,
                            tokio-blocking, fixed-pool, thread-per-item, mt-wq";

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<cmwq_bench::BenchOpts>, String> {
    let mut opts =
        cmwq_bench::BenchOpts { quick: false, out_dir: PathBuf::from("bench-results"), only: None };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value =
            |name: &str| inline.clone().or_else(|| it.next()).ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--quick" => opts.quick = true,
            "--full" => opts.quick = false,
            "--out" => opts.out_dir = PathBuf::from(value("--out")?),
            "--only" => {
                let v = value("--only")?;
                opts.only =
                    Some(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cmwq-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cmwq_bench::run(&opts, &mut |line| eprintln!("{line}")) {
        Ok(report) => {
            println!("{}", report.to_markdown());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cmwq-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<cmwq_bench::BenchOpts>, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let o = p(&[]).unwrap().unwrap();
        assert!(!o.quick);
        assert_eq!(o.out_dir, PathBuf::from("bench-results"));
        assert_eq!(o.only, None);
        let o = p(&["--quick", "--out", "/tmp/x", "--only=mixed, rayon"]).unwrap().unwrap();
        assert!(o.quick);
        assert_eq!(o.out_dir, PathBuf::from("/tmp/x"));
        assert_eq!(o.only, Some(vec!["mixed".to_string(), "rayon".to_string()]));
        assert!(p(&["--help"]).unwrap().is_none());
        assert!(p(&["--out"]).is_err());
        assert!(p(&["--bogus"]).is_err());
    }
}
