//! One tiny run of every workload on every executor: the invariant checked is
//! that every item ran exactly once (no timing assertions).

use cmwq_bench::{run_with_config, BenchOpts, Config};

#[test]
fn every_workload_on_every_executor_runs_each_item_exactly_once() {
    let dir = std::env::temp_dir().join(format!("cmwq-bench-smoke-{}", std::process::id()));
    let opts = BenchOpts { quick: true, out_dir: dir.clone(), only: None };
    let cfg = Config::tiny();
    let mut lines = Vec::new();
    let report = run_with_config(&cfg, &opts, &mut |l| lines.push(l.to_string()))
        .unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));

    let executors = cmwq_bench::ExecutorKind::ALL;
    let non_blocking = executors.iter().filter(|k| !k.only_differs_in_blocking()).count();
    let cores = report.env.cores;
    let producer_configs = if cores > 1 { 2 } else { 1 };
    assert_eq!(report.noop.len(), non_blocking * producer_configs);
    assert_eq!(report.wake.len(), non_blocking + producer_configs);
    assert_eq!(report.mixed.len(), executors.len() * cfg.mixed_block_ratios.len());
    assert_eq!(report.many_queues.len(), 4);
    assert!(report.noop.iter().all(|r| r.exactly_once && r.items_per_s > 0.0));
    assert!(report.wake.iter().all(|r| r.exactly_once && r.samples == cfg.wake_samples));
    assert!(report.mixed.iter().all(|r| r.exactly_once && r.makespan_ms > 0.0));
    assert!(report.many_queues.iter().all(|r| r.exactly_once && r.queues > 0));
    let ops: Vec<&str> = report.timer_ops.iter().map(|r| r.executor.as_str()).collect();
    assert_eq!(ops, ["cmwq", "tokio-delayqueue", "tokio-sleep"]);
    assert!(report.timer_ops.iter().all(|r| r.exactly_once && r.arm_ns > 0.0 && r.cancel_ns > 0.0));
    assert_eq!(report.timer_fire.len(), 4, "cmwq and tokio, idle and busy");
    assert!(report.timer_fire.iter().all(|r| r.exactly_once && r.early == 0 && r.timers == cfg.timer_fire));
    // detect: both blocking styles, every round measured; idle and saturated monitor rows.
    let styles: Vec<(&str, &str)> =
        report.detect_latency.iter().map(|r| (r.blocking.as_str(), r.monitor_start.as_str())).collect();
    assert_eq!(styles, [("plain", "back-to-back"), ("announced", "back-to-back"), ("plain", "parked")]);
    assert!(report.detect_latency.iter().all(|r| r.exactly_once));
    assert!(report.detect_latency[..2].iter().all(|r| r.rounds == cfg.detect_rounds));
    assert_eq!(report.detect_latency[2].rounds, cfg.detect_parked_rounds);
    let loads: Vec<&str> = report.detect_overhead.iter().map(|r| r.load.as_str()).collect();
    assert_eq!(loads, ["idle", "saturated"]);
    let per_cpu = (cfg.detect_window.as_nanos() / cfg.detect_burn.as_nanos()) as usize;
    assert!(report.detect_overhead.iter().all(|r| r.exactly_once && r.runs == cfg.runs));
    assert_eq!(report.detect_overhead[1].items, per_cpu * cores);
    assert!(lines.iter().any(|l| l.contains("[detect] latency plain (back-to-back): p50")));
    // Announced and plain blocking are both there for cmwq.
    assert!(report.mixed.iter().any(|r| r.executor == "cmwq-bound" && r.blocking == "announced"));
    assert!(report.mixed.iter().any(|r| r.executor == "cmwq-bound-plain" && r.blocking == "plain"));
    assert!(lines.iter().any(|l| l.contains("[mixed 1:4] cmwq-bound (announced): run 1/1")));

    let (md, json, ratio, threads) = cmwq_bench::output_paths(&dir, "tiny");
    for p in [
        &md,
        &json,
        &ratio.with_extension("svg"),
        &ratio.with_extension("png"),
        &threads.with_extension("png"),
    ] {
        assert!(std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false), "{} missing", p.display());
    }
    // Every table, and the keys bench-results/readme.py reads.
    let md = std::fs::read_to_string(md).unwrap();
    for section in ["noop", "wake", "mixed", "many-queues", "timers/ops", "timers/fire", "detect/latency"] {
        assert!(md.contains(&format!("## {section}:")), "no {section} table");
    }
    assert!(md.contains("## mixed: unannotated against announced"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    for (list, keys) in [
        ("mixed", &["ratio", "executor", "blocking", "makespan_ms", "ratio_to_ideal", "peak_threads"][..]),
        ("mixed", &["thread_reference", "peak_blocked_per_cpu_sum"]),
        ("detect_latency", &["blocking", "monitor_start", "rounds", "p50_us", "p90_us", "p99_us"]),
        ("detect_overhead", &["load", "cpu_pct_of_core", "ticks_per_s", "blocked", "cpu_hogs"]),
        ("detect_overhead", &["sentinel_cpu_pct_of_core"]),
        ("timer_ops", &["executor", "arm_ns", "cancel_ns", "bytes_per_timer"]),
        ("timer_fire", &["executor", "load", "p50_us", "p90_us", "p99_us"]),
    ] {
        for k in keys {
            assert!(v[list][0].get(k).is_some(), "{list} has no {k}");
        }
    }
    assert!(v["mixed"][0]["bounds"]["ideal_ms"].is_number());
    let headline: Vec<&str> = v["headline"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    for start in
        ["mixed 1:4: cmwq-bound", "mixed, makespan cmwq-bound-plain / cmwq-bound", "noop, 1 producer(s)"]
    {
        assert!(headline.iter().any(|l| l.starts_with(start)), "no headline {start:?}");
    }
    for start in ["wake: cmwq-bound p50", "timers (busy)", "detect: monitor CPU", "many-queues: mt-wq"] {
        assert!(headline.iter().any(|l| l.starts_with(start)), "no headline {start:?}");
    }
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(0));
    for k in ["loadavg_before", "loadavg_after", "duration_s", "cores"] {
        assert!(v["env"].get(k).is_some(), "env has no {k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
