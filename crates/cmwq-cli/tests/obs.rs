//! `cmwq top` and `cmwq dump` against a live `cmwq demo --serve`, and a
//! program started with `CMWQ_STATS=1`: the plain rows, the JSON lines and the
//! dump name the same workqueues and agree on their counters; a process that
//! serves nothing gets a message naming `CMWQ_STATS=1`.
//!
//! Every child is bounded (`--serve-secs`, `--mixed-secs`) and killed at the
//! end; every wait has a deadline.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cmwq");
const DEADLINE: Duration = Duration::from_secs(60);

/// Kills the child when dropped.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cmwq(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("cmwq runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits until `pid` serves stats (`cmwq top --pid PID -i 0` succeeds).
fn wait_serving(pid: u32) {
    let t0 = Instant::now();
    while !cmwq(&["top", "--pid", &pid.to_string(), "-i", "0"]).status.success() {
        assert!(t0.elapsed() < DEADLINE, "process {pid} did not start serving");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The workqueue rows of a plain `cmwq top` sample: name and `total`.
fn plain_rows(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .skip_while(|l| !l.trim_start().starts_with("total"))
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_owned(), c[1].parse().unwrap())
        })
        .collect()
}

#[test]
fn top_and_dump_agree_on_a_live_demo() {
    let demo = Command::new(BIN)
        .args(["demo", "--serve", "--serve-secs", "60", "--mixed-rate", "100"])
        .stdout(Stdio::null())
        .spawn()
        .expect("demo starts");
    let demo = Reaper(demo);
    let pid = demo.0.id();
    let p = pid.to_string();
    wait_serving(pid);

    // Plain rows, JSON lines, and the dump, taken one after the other: the
    // same queues, in the same order, and counters that only grow.
    let plain = cmwq(&["top", "--pid", &p, "-i", "0"]);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let plain = text(&plain);
    let json = text(&cmwq(&["top", "--pid", &p, "-i", "0", "-j"]));
    let dump = cmwq(&["dump", "--pid", &p]);
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = text(&dump);

    let rows = plain_rows(&plain);
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["mixed-percpu", "mixed-highpri", "mixed-cpu-intensive", "mixed-unbound", "mixed-reclaim"],
        "{plain}"
    );
    assert!(plain.contains(&format!("pid {pid} (cmwq): workers ")), "{plain}");

    let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let wq_lines: Vec<&serde_json::Value> = lines.iter().filter(|v| v.get("name").is_some()).collect();
    assert_eq!(wq_lines.iter().map(|v| v["name"].as_str().unwrap()).collect::<Vec<_>>(), names);
    for (v, (name, total)) in wq_lines.iter().zip(&rows) {
        assert!(v["started"].as_u64().unwrap() >= *total, "{name}: JSON after plain");
        assert_eq!(v["unbound"], name == "mixed-unbound" || name == "mixed-reclaim");
        assert_eq!(v["mem_reclaim"], name == "mixed-reclaim");
        assert!(v["mayday"].is_u64() && v["rescued"].is_u64());
        assert!(v["cpu_time"].is_u64() && v["timestamp"].is_f64());
    }
    assert!(lines.last().unwrap()["threads"]["workers"].as_u64().unwrap() >= 1);

    for section in [
        "Affinity Scopes",
        "Worker Pools",
        "Workqueue CPU -> pool",
        "Workqueue -> rescuer",
        "Unbound workqueue -> node_nr/max_active",
    ] {
        assert!(dump.contains(&format!("\n{section}\n")), "{section} missing:\n{dump}");
    }
    let types: Vec<(&str, &str)> = names
        .iter()
        .map(|n| {
            let line = dump.lines().find(|l| l.starts_with(&format!("{n} "))).expect("a CPU -> pool row");
            (*n, line.split_whitespace().nth(1).unwrap())
        })
        .collect();
    assert_eq!(
        types,
        [
            ("mixed-percpu", "percpu"),
            ("mixed-highpri", "percpu"),
            ("mixed-cpu-intensive", "percpu"),
            ("mixed-unbound", "unbound"),
            ("mixed-reclaim", "unbound"),
        ]
    );
    // The dump's show_all_workqueues part has counters no smaller than top's.
    for (name, total) in &rows {
        let line = dump.lines().find(|l| l.starts_with(&format!("workqueue {name}:"))).expect("listed");
        let started: u64 =
            line.split("started=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
        assert!(started >= *total, "{name}: {started} < {total}");
    }

    // The rescuer of the MEM_RECLAIM queue, with its thread id; `-` for the
    // rescuer columns of the others.
    let rescuers = &dump[dump.find("Workqueue -> rescuer").unwrap()..];
    let line = rescuers.lines().find(|l| l.starts_with("mixed-reclaim ")).expect("a rescuer row");
    let tid: i32 = line.split_whitespace().nth(2).unwrap().parse().expect("a thread id");
    assert!(std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists());
    let row = plain.lines().find(|l| l.starts_with("mixed-reclaim ")).unwrap();
    assert!(row.split_whitespace().nth(6).unwrap().parse::<u64>().is_ok(), "mayday is a number: {row}");
    let row = plain.lines().find(|l| l.starts_with("mixed-percpu ")).unwrap();
    assert_eq!(row.split_whitespace().nth(6), Some("-"), "{row}");

    // A regex keeps the matching queues only.
    let some = text(&cmwq(&["top", "--pid", &p, "-i", "0", "unbound$", "^mixed-high"]));
    let names: Vec<String> = plain_rows(&some).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["mixed-highpri", "mixed-unbound"]);
}

#[test]
fn cmwq_stats_1_serves_and_a_process_without_it_is_told_how() {
    // Any program using cmwq: the demo's mixed part, with the variable set.
    let child = Command::new(BIN)
        .args(["demo", "--mixed-only", "--mixed-secs", "30", "--mixed-rate", "20"])
        .env("CMWQ_STATS", "1")
        .stdout(Stdio::null())
        .spawn()
        .expect("demo starts");
    let child = Reaper(child);
    wait_serving(child.0.id());
    let hello = cmwq(&["dump", "--pid", &child.0.id().to_string()]);
    assert!(text(&hello).contains("mixed-percpu"));

    // The same without it: no endpoint, and a message that says what to do.
    let plain = Command::new(BIN)
        .args(["demo", "--mixed-only", "--mixed-secs", "30", "--mixed-rate", "20"])
        .env_remove("CMWQ_STATS")
        .stdout(Stdio::null())
        .spawn()
        .expect("demo starts");
    let plain = Reaper(plain);
    std::thread::sleep(Duration::from_millis(500));
    let out = cmwq(&["top", "--pid", &plain.0.id().to_string(), "-i", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serves no cmwq stats") && err.contains("CMWQ_STATS=1"), "{err}");

    let out = cmwq(&["dump", "--pid", "999999999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process 999999999"));
}
