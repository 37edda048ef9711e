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
    let pinned_configs = if cores > 1 { 2 } else { 1 };
    // noop: the pinned configurations and the unpinned producer.
    assert_eq!(report.noop.len(), non_blocking * (pinned_configs + 1));
    assert_eq!(report.wake.len(), non_blocking + pinned_configs);
    // mixed: pinned producers (one per CPU) and the unpinned one.
    assert_eq!(report.mixed.len(), executors.len() * cfg.mixed_block_ratios.len() * 2);
    for (mode, label) in [("pinned", "1 pinned producer per CPU"), ("unpinned", "1 unpinned producer")] {
        let rows: Vec<_> = report.mixed.iter().filter(|r| r.producer_mode == mode).collect();
        assert_eq!(rows.len(), report.mixed.len() / 2, "{mode}");
        assert!(rows.iter().all(|r| r.producers_label == label), "{mode}");
        let noop = report.noop.iter().filter(|r| r.producer_mode == mode).count();
        assert_eq!(noop, non_blocking * if mode == "pinned" { pinned_configs } else { 1 });
    }
    // The pools: some served the cmwq rows of noop and mixed in each mode, and
    // each names its executors.
    for (w, p) in [
        ("noop", "1 unpinned producer"),
        ("mixed", "1 unpinned producer"),
        ("mixed", "1 pinned producer per CPU"),
    ] {
        let used: Vec<_> =
            report.pools.iter().filter(|u| u.workload == w && u.producers.as_deref() == Some(p)).collect();
        assert!(!used.is_empty(), "no pools for {w}, {p}");
        assert!(used.iter().all(|u| u.completed > 0 && u.peak_workers > 0 && !u.executors.is_empty()));
        assert!(used.iter().any(|u| u.executors.iter().any(|e| e == "cmwq-default")), "{w}, {p}");
    }
    assert!(report.pools.iter().any(|u| u.workload == "detect" && u.producers.is_none()));
    let families: Vec<&str> = report.many_queues.iter().map(|r| r.executor.as_str()).collect();
    assert_eq!(
        families,
        ["cmwq-default (4 attrs)", "cmwq-bound", "cmwq-unbound", "mt-wq", "fixed-pool (one per queue)"]
    );
    // Default queues with 4 attributes share a handful of pools, whatever the
    // queue count: one per pod of each attribute set.
    let dflt = &report.many_queues[0];
    assert_eq!((dflt.attrs.len(), dflt.items_per_queue), (4, 1));
    assert!(dflt.pools.is_some_and(|n| (1..=4 * cores).contains(&n)), "{dflt:?}");
    assert!(report.many_queues.iter().all(|r| r.pools.is_some() == r.executor.starts_with("cmwq")));
    assert!(report.noop.iter().all(|r| r.exactly_once && r.items_per_s > 0.0));
    assert!(report.wake.iter().all(|r| r.exactly_once && r.samples == cfg.wake_samples));
    assert!(report.mixed.iter().all(|r| r.exactly_once && r.makespan_ms > 0.0));
    assert!(report.many_queues.iter().all(|r| r.exactly_once && r.queues > 0));
    let ops: Vec<&str> = report.timer_ops.iter().map(|r| r.executor.as_str()).collect();
    assert_eq!(ops, ["cmwq", "tokio-delayqueue", "tokio-sleep"]);
    assert!(report.timer_ops.iter().all(|r| r.exactly_once && r.arm_ns > 0.0 && r.cancel_ns > 0.0));
    assert_eq!(report.timer_fire.len(), 4, "cmwq and tokio, idle and busy");
    assert!(report.timer_fire.iter().all(|r| r.exactly_once && r.early == 0 && r.timers == cfg.timer_fire));
    // detect: both blocking styles on the per-CPU and the unbound one-CPU pool, every
    // round measured; idle and saturated monitor rows.
    let labels: Vec<String> = report.detect_latency.iter().map(|r| r.label()).collect();
    let styles = ["plain, back to back", "announced, back to back", "plain, monitor parked"];
    let want: Vec<String> = ["per-CPU", "unbound pod of 1 CPU"]
        .iter()
        .flat_map(|p| styles.map(|s| format!("{p}: {s}")))
        .collect();
    assert_eq!(labels, want);
    assert!(report.detect_latency.iter().all(|r| r.exactly_once && r.cpu == report.detect_latency[0].cpu));
    for rows in report.detect_latency.chunks(3) {
        assert!(rows[..2].iter().all(|r| r.rounds == cfg.detect_rounds));
        assert_eq!(rows[2].rounds, cfg.detect_parked_rounds);
    }
    let loads: Vec<&str> = report.detect_overhead.iter().map(|r| r.load.as_str()).collect();
    assert_eq!(loads, ["idle", "saturated"]);
    let per_cpu = (cfg.detect_window.as_nanos() / cfg.detect_burn.as_nanos()) as usize;
    assert!(report.detect_overhead.iter().all(|r| r.exactly_once && r.runs == cfg.runs));
    assert_eq!(report.detect_overhead[1].items, per_cpu * cores);
    for pool in ["per-CPU", "unbound pod of 1 CPU"] {
        assert!(lines
            .iter()
            .any(|l| l.contains(&format!("[detect] latency {pool}: plain, back to back: p50"))));
    }
    // bh: every queue at both loads from both producers, and the storm; BH
    // queues are n/a (with the library's reason) or measured, the others measured.
    assert_eq!(report.bh_latency.len(), 5 * 2 * 2);
    let storm: Vec<&str> = report.bh_storm.iter().map(|r| r.queue.as_str()).collect();
    assert_eq!(storm, ["BH", "PERCPU | HIGHPRI"]);
    for r in &report.bh_latency {
        let bh = r.queue.starts_with("BH");
        match (&r.latency, &r.na) {
            // The ratio to the bare thread is given for a pinned producer only.
            (Some(_), None) => assert!(
                r.exactly_once && r.samples >= 1 && r.p50_vs_bare.is_some() == (r.producer_mode == "pinned"),
                "{r:?}"
            ),
            (None, Some(why)) => assert!(bh && why.contains("BH"), "{r:?}"),
            _ => panic!("{r:?}"),
        }
    }
    for r in &report.bh_storm {
        assert!(r.exactly_once && (r.figures.is_some() || r.queue == "BH"), "{r:?}");
        assert!(r.figures.is_none() || r.runs == cfg.runs, "{r:?}");
    }
    // Announced and plain blocking are both there for cmwq.
    assert!(report.mixed.iter().any(|r| r.executor == "cmwq-bound" && r.blocking == "announced"));
    assert!(report.mixed.iter().any(|r| r.executor == "cmwq-bound-plain" && r.blocking == "plain"));
    assert!(lines
        .iter()
        .any(|l| l.contains("[mixed 1:4, 1 pinned producer per CPU] cmwq-bound (announced): run 1/1")));
    assert!(lines
        .iter()
        .any(|l| l.contains("[mixed 1:4, 1 unpinned producer] cmwq-default-plain (plain): run 1/1")));
    assert!(lines.iter().any(|l| l.starts_with("[") && l.contains("[pools] mixed, 1 unpinned producer: ")));

    let (md, json, ratio, threads) = cmwq_bench::output_paths(&dir, "tiny");
    let (u_ratio, u_threads) = cmwq_bench::unpinned_plot_paths(&dir, "tiny");
    for p in [
        &md,
        &json,
        &ratio.with_extension("svg"),
        &ratio.with_extension("png"),
        &threads.with_extension("png"),
        &u_ratio.with_extension("png"),
        &u_threads.with_extension("svg"),
    ] {
        assert!(std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false), "{} missing", p.display());
    }
    // Every table, and the keys bench-results/readme.py reads.
    let md = std::fs::read_to_string(md).unwrap();
    for section in [
        "noop",
        "wake",
        "mixed",
        "many-queues",
        "timers/ops",
        "timers/fire",
        "detect/latency",
        "bh",
        "bh/storm",
    ] {
        assert!(md.contains(&format!("## {section}:")), "no {section} table");
    }
    assert!(md.contains("## mixed: unannotated against announced"));
    assert!(md.contains("## mixed: items burn X then block Y, 1 unpinned producer"));
    assert!(md.contains("## mixed: /ideal and peak threads by producers"));
    assert!(md.contains("### mixed: cmwq's pools") && md.contains("### noop: cmwq's pools"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    for (list, keys) in [
        ("mixed", &["ratio", "executor", "blocking", "makespan_ms", "ratio_to_ideal", "peak_threads"][..]),
        ("mixed", &["thread_reference", "peak_blocked_per_cpu_sum", "producer_mode", "producers_label"]),
        ("noop", &["producers", "producer_mode", "producers_label"]),
        ("pools", &["workload", "producers", "pool", "cpu", "pod", "nice", "concurrency", "completed"]),
        ("pools", &["peak_workers", "peak_workers_before", "executors"]),
        ("detect_latency", &["pool", "blocking", "monitor_start", "rounds", "p50_us", "p90_us", "p99_us"]),
        ("detect_overhead", &["load", "cpu_pct_of_core", "ticks_per_s", "blocked", "cpu_hogs"]),
        ("detect_overhead", &["sentinel_cpu_pct_of_core"]),
        ("timer_ops", &["executor", "arm_ns", "cancel_ns", "bytes_per_timer"]),
        ("timer_fire", &["executor", "load", "p50_us", "p90_us", "p99_us"]),
        ("bh_latency", &["queue", "load", "producer_mode", "cpu", "samples", "na", "exactly_once"]),
        ("bh_storm", &["queue", "cpu", "items", "runs", "na", "exactly_once"]),
    ] {
        for k in keys {
            assert!(v[list][0].get(k).is_some(), "{list} has no {k}");
        }
    }
    assert!(v["mixed"][0]["bounds"]["ideal_ms"].is_number());
    let headline: Vec<&str> = v["headline"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    for start in [
        "mixed 1:4, 1 pinned producer per CPU: cmwq-default",
        "mixed 1:4, 1 unpinned producer: cmwq-default",
        "mixed, makespan cmwq-bound-plain / cmwq-bound (unannotated / announced), 1 pinned producer per CPU",
        "mixed, makespan cmwq-default-plain / cmwq-default (unannotated / announced), 1 unpinned producer",
        "noop, 1 pinned producer",
        "noop, 1 unpinned producer: cmwq-default",
    ] {
        assert!(headline.iter().any(|l| l.starts_with(start)), "no headline {start:?}");
    }
    for start in [
        "wake: cmwq-bound p50",
        "timers (busy)",
        "detect: monitor CPU",
        "detect: unbound pod of 1 CPU against per-CPU",
        "many-queues: mt-wq",
        "bh: queue-to-start on a busy CPU, pinned producer: BH",
        "bh: a thread on the CPU of a 200-item storm: BH",
    ] {
        assert!(headline.iter().any(|l| l.starts_with(start)), "no headline {start:?}");
    }
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(0));
    for k in ["loadavg_before", "loadavg_after", "duration_s", "cores"] {
        assert!(v["env"].get(k).is_some(), "env has no {k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
