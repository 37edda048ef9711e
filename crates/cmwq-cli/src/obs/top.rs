//! `cmwq top`: the kernel's `wq_monitor.py` for a running program. The same
//! columns, flags and JSON keys; a live terminal view when stdout is a
//! terminal, plain rows otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;
use regex::Regex;

use super::rows::{json_lines, table};
use super::wire::Stats;
use crate::demo::Result;

/// Options of `cmwq top` (those of `wq_monitor.py`, and `--pid`).
#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// The process to watch (default: the only one that serves cmwq stats to this user)
    #[arg(long, value_name = "PID")]
    pub(crate) pid: Option<u32>,

    /// Seconds between samples; 0 prints once and exits
    #[arg(short, long, value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    pub(crate) interval: f64,

    /// Print JSON lines with wq_monitor.py -j's keys instead of a table
    #[arg(short, long)]
    pub(crate) json: bool,

    /// Show only workqueues whose name matches one of these regular expressions
    #[arg(value_name = "REGEX")]
    pub(crate) patterns: Vec<String>,
}

fn parse_interval(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v == 0.0 || (0.1..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is out of range: give 0 (print once) or 0.1 to 3600 seconds"))
    }
}

/// The name filter: the patterns OR'd together, as `wq_monitor.py` does.
pub(crate) fn filter(patterns: &[String]) -> Result<Option<Regex>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let joined = patterns.join("|");
    Regex::new(&joined).map(Some).map_err(|e| format!("bad REGEX {joined:?}: {e}").into())
}

/// Runs `cmwq top`.
pub(crate) fn run(args: &TopArgs, out: &mut dyn Write) -> Result<()> {
    let re = filter(&args.patterns)?;
    let ep = super::pick(args.pid)?;
    if !args.json && args.interval > 0.0 && std::io::stdout().is_terminal() {
        return super::tui::run(&ep, args.interval, re.as_ref());
    }
    let every = Duration::from_secs_f64(args.interval);
    let mut next = Instant::now();
    loop {
        let s: Stats = super::fetch(&ep, "stats")?;
        let text = if args.json { json_lines(&s, re.as_ref()) } else { table(&s, re.as_ref()) };
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if args.interval == 0.0 {
            return Ok(());
        }
        next += every;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::rows::{header, row};
    use crate::obs::wire::WqRow;

    fn wq(name: &str, unbound: bool) -> WqRow {
        WqRow {
            name: name.into(),
            unbound,
            started: 1234,
            completed: 1230,
            cpu_time: Some(2_345_678),
            cpu_intensive: 3,
            cm_wakeup: 17,
            repatriated: None,
            ..WqRow::default()
        }
    }

    #[test]
    fn rows_line_up_with_the_header() {
        let h = header();
        for w in [wq("mixed-percpu", false), wq("a-very-long-workqueue-name-indeed", true)] {
            assert_eq!(row(&w).len(), h.len(), "{}\n{h}", row(&w));
        }
    }

    #[test]
    fn rows_follow_wq_monitor() {
        let r = row(&wq("mixed-percpu", false));
        let cells: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(cells, ["mixed-percpu", "1234", "4", "2.3", "3", "17", "-", "-", "0", "-"]);
        // Unbound: concurrency managed too, so CMW/RPR shows wake-ups.
        let r = row(&wq("mixed-unbound", true));
        assert_eq!(r.split_whitespace().nth(5), Some("17"));
        let mut w = wq("reclaim", true);
        (w.mem_reclaim, w.mayday, w.rescued, w.blocked) = (true, Some(2), Some(5), Some(9));
        let cells: Vec<String> = row(&w).split_whitespace().map(String::from).collect();
        assert_eq!(cells[5..], ["17", "2", "5", "0", "9"]);
        // The last 24 characters of a long name, as wq_monitor.py shows it.
        assert!(row(&wq("a-very-long-workqueue-name-indeed", false)).starts_with("ng-workqueue-name-indeed "));
    }

    #[test]
    fn json_lines_have_wq_monitor_keys() {
        let s = Stats {
            timestamp: 1.5,
            pid: 7,
            workqueues: vec![wq("x", false), wq("y", true)],
            ..Stats::default()
        };
        let text = json_lines(&s, None);
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        for k in [
            "timestamp",
            "name",
            "unbound",
            "mem_reclaim",
            "started",
            "completed",
            "cpu_time",
            "cpu_intensive",
            "cm_wakeup",
            "repatriated",
            "mayday",
            "rescued",
        ] {
            assert!(lines[0].get(k).is_some(), "{k} missing from {}", lines[0]);
        }
        assert_eq!(lines[0]["cpu_time"], 2_345_678);
        assert!(text.starts_with(
            r#"{"timestamp":1.5,"name":"x","unbound":false,"mem_reclaim":false,"started":1234,"#
        ));
        assert_eq!(lines[1]["unbound"], true);
        assert!(lines[2]["threads"].is_object() && lines[2]["monitor"].is_object());
        let re = filter(&["^y$".into()]).unwrap();
        assert_eq!(json_lines(&s, re.as_ref()).lines().count(), 2);
    }

    #[test]
    fn patterns_are_ored() {
        let re = filter(&["^mixed-p".into(), "unbound$".into()]).unwrap().unwrap();
        assert!(re.is_match("mixed-percpu") && re.is_match("mixed-unbound") && !re.is_match("events"));
        assert!(filter(&["(".into()]).is_err());
        assert!(filter(&[]).unwrap().is_none());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("0"), Ok(0.0));
        assert_eq!(parse_interval("2.5"), Ok(2.5));
        assert!(parse_interval("0.01").is_err());
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("x").is_err());
    }
}
