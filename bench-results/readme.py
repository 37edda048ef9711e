#!/usr/bin/env python3
"""Refreshes the figures of README.md's "Benchmarks" section from the latest full run.

    cargo run --release -- bench          # writes bench-results/bench-full.{md,json}
    python3 bench-results/readme.py       # rewrites the tables and figures in README.md
    python3 bench-results/readme.py RUN.json OTHER-README.md   # another run, another file

Only the generated parts change: the run line, the mixed table (pinned producers, one
per CPU), the mixed table of the single unpinned producer (/ideal and peak threads;
inserted after the first one if the README has none yet), the plain/announced ratios,
the detect table and CPU figures, the timers tables, the bh tables (from a run with the
bh workload; inserted before "Other workloads" if the README has none yet, left alone by
a run without it) and the "Other workloads" list. The
prose around them, including "Where cmwq is behind", is kept as written. Everything
comes from the JSON: env, mixed, detect_latency, detect_overhead, timer_ops, timer_fire,
bh_latency, bh_storm and headline. A run from before the producer modes (no `producer_mode` in its rows) is
all pinned.
"""
import json
import os
import re
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
json_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench-results", "bench-full.json")
readme_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "README.md")
d = json.load(open(json_path))
if "headline" not in d:
    sys.exit(f"readme.py: {json_path} has no headline: it predates this script; run cmwq bench again")
readme = open(readme_path).read()


def sub(pattern, repl, text, flags=re.S):
    new, n = re.subn(pattern, lambda _m: repl, text, count=1, flags=flags)
    if n != 1:
        sys.exit(f"readme.py: no match for {pattern[:60]!r}")
    return new


def f1(x):
    return f"{x:.1f}"


env = d["env"]
la_b = env["loadavg_before"].split()[0]
la_a = env["loadavg_after"].split()[0]
readme = sub(
    r"JSON beside it; \d+ s\), on\nthis project's development machine: a 2-vCPU VM, otherwise quiet \(load average [\d.]+ before,\n[\d.]+ after\)",
    f"JSON beside it; {env['duration_s']:.0f} s), on\nthis project's development machine: a 2-vCPU VM, otherwise quiet (load average {la_b} before,\n"
    f"{la_a} after)",
    readme,
)

# mixed: the pinned producers' full table, then the unpinned producer's /ideal and threads
def mode(r):
    return r.get("producer_mode", "pinned")


pinned = [r for r in d["mixed"] if mode(r) == "pinned"]
unpinned = [r for r in d["mixed"] if mode(r) == "unpinned"]
rows = ["| X:Y | executor | blocking | makespan ms | ideal ms | /ideal | peak threads | cores+blocked+2 | cores+Σ per-CPU blocked+2 |",
        "|---|---|---|---|---|---|---|---|---|"]
cores = env["cores"]
for r in pinned:
    ideal = r["bounds"]["ideal_ms"]
    rows.append(
        f"| {r['ratio']} | `{r['executor']}` | {r['blocking']} | {f1(r['makespan_ms'])} | {f1(ideal)} | "
        f"{r['ratio_to_ideal']:.2f} | {r['peak_threads']} | {r['thread_reference']} | "
        f"{cores + r['peak_blocked_per_cpu_sum'] + 2} |"
    )
UNPINNED_INTRO = "The same items from 1 unpinned producer (one thread that nobody pinned queues every item),"
unpinned_block = ""
if unpinned:
    ratios_u = []
    for r in unpinned:
        if r["ratio"] not in ratios_u:
            ratios_u.append(r["ratio"])
    execs = []
    for r in unpinned:
        if (r["executor"], r["blocking"]) not in execs:
            execs.append((r["executor"], r["blocking"]))
    by = {(r["executor"], r["ratio"]): r for r in unpinned}
    lines = [
        f"{UNPINNED_INTRO} makespan / ideal and peak threads:",
        "",
        "| executor (1 unpinned producer) | blocking | " + " | ".join(ratios_u) + " |",
        "|---|---|" + "---|" * len(ratios_u),
    ]
    for ex, bl in execs:
        cells = [f"{by[(ex, q)]['ratio_to_ideal']:.2f} / {by[(ex, q)]['peak_threads']}" if (ex, q) in by else "–"
                 for q in ratios_u]
        lines.append(f"| `{ex}` | {bl} | " + " | ".join(cells) + " |")
    unpinned_block = "\n".join(lines) + "\n\n"
# The unpinned block, if the README has one, is regenerated (or dropped for a run without it).
readme = re.sub(re.escape(UNPINNED_INTRO) + r".*?\n\n\| executor \(1 unpinned producer\).*?\n\n", "", readme, count=1, flags=re.S)
readme = sub(r"\| X:Y \| executor \| blocking \| makespan ms.*?\n\n", "\n".join(rows) + "\n\n" + unpinned_block, readme)

announced_ms = {r["ratio"]: r["makespan_ms"] for r in pinned if r["executor"] == "cmwq-bound"}
ratios = ", ".join(
    f"{r['ratio']} {r['makespan_ms'] / max(announced_ms[r['ratio']], 1e-9):.2f}×"
    for r in pinned
    if r["executor"] == "cmwq-bound-plain" and r["ratio"] in announced_ms
)
readme = sub(
    r"`cmwq-bound-plain` / `cmwq-bound`: [^(]*\(target 1\.3×\)",
    f"`cmwq-bound-plain` / `cmwq-bound`: {ratios} (target 1.3×)",
    readme,
)

# detect
lat = {(r["blocking"], r["monitor_start"]): r for r in d["detect_latency"] if r.get("pool", "per-CPU") == "per-CPU"}


def lrow(label, r):
    return f"| {label} | {r['p50_us']:.0f} | {r['p90_us']:.0f} | {r['p99_us']:.0f} |"


plain_b2b = next(r for (b, s), r in lat.items() if b == "plain" and "parked" not in s)
plain_parked = next(r for (b, s), r in lat.items() if b == "plain" and "parked" in s)
announced = next(r for (b, s), r in lat.items() if b == "announced")
det = "\n".join([
    "| from a block to the next item starting on that CPU, µs | p50 | p90 | p99 |",
    "|---|---|---|---|",
    lrow("plain `std::thread::sleep`, rounds back to back", plain_b2b),
    lrow("plain, each round starting with the monitor parked", plain_parked),
    lrow("announced `cmwq::sleep`", announced),
])
readme = sub(r"\| from a block to the next item starting on that CPU, µs.*?\n\n", det + "\n\n", readme)
sat = next(r for r in d["detect_overhead"] if r["load"] != "idle")
readme = sub(r"the monitor thread [\d.]+% of one core\n\([\d.]+ ticks/s, \d+ false detections",
             f"the monitor thread {sat['cpu_pct_of_core']:.3f}% of one core\n({sat['ticks_per_s']:.0f} ticks/s, "
             f"{sat['blocked'] + sat['cpu_hogs']} false detections", readme)
readme = sub(r"the idle sentinels [\d.]+%: they", f"the idle sentinels {sat['sentinel_cpu_pct_of_core']:.3f}%: they", readme)

# timers
ops = {r["executor"]: r for r in d["timer_ops"]}
fire = {(r["executor"], r["load"]): r for r in d["timer_fire"]}


def op(name):
    r = next(v for k, v in ops.items() if k.startswith(name))
    return r


c, dq, sl = op("cmwq"), op("tokio-delayqueue"), op("tokio-sleep")
readme = sub(r"\| cmwq `queue_delayed` / `cancel` \(thread-safe\) \| \d+ \| \d+ \| \d+",
             f"| cmwq `queue_delayed` / `cancel` (thread-safe) | {c['arm_ns']:.0f} | {c['cancel_ns']:.0f} | {c['bytes_per_timer']:.0f}", readme)
readme = sub(r"\| tokio-util `DelayQueue` insert / remove \(single owner, no locking\) \| \d+ \| \d+ \| \d+",
             f"| tokio-util `DelayQueue` insert / remove (single owner, no locking) | {dq['arm_ns']:.0f} | {dq['cancel_ns']:.0f} | {dq['bytes_per_timer']:.0f}", readme)
readme = sub(r"\| tokio `sleep` future polled once / dropped \(thread-safe\) \| \d+ \| \d+ \| \d+",
             f"| tokio `sleep` future polled once / dropped (thread-safe) | {sl['arm_ns']:.0f} | {sl['cancel_ns']:.0f} | {sl['bytes_per_timer']:.0f}", readme)
for (ex, load), label in [(("cmwq", "idle"), "cmwq, idle"), (("cmwq", "busy"), "cmwq, both CPUs busy"),
                          (("tokio", "idle"), "tokio, idle"), (("tokio", "busy"), "tokio, both CPUs busy")]:
    r = next(v for (e, l), v in fire.items() if e.startswith(ex) and l.startswith(load))
    readme = sub(rf"\| {re.escape(label)} \| \d+ \| \d+ \| \d+ \|",
                 f"| {label} | {r['p50_us']:.0f} | {r['p90_us']:.0f} | {r['p99_us']:.0f} |", readme)

# bh: BH queues beside per-CPU ones (only from a run that has the workload; a README
# without the block gets it before "Other workloads", a run without bh rows leaves it alone)
BH_INTRO = "**bh** (same run): queue-to-start latency of one item at a time on CPU"
bh_lat = d.get("bh_latency") or []
bh_storm = d.get("bh_storm") or []
if bh_lat:
    def lat(q, mode, load):
        return next((r for r in bh_lat if r["queue"] == q and r["producer_mode"] == mode and r["load"] == load), None)

    def cells(r, ratio=False):
        if r is None:
            return ["–", "–"] if not ratio else ["–"]
        if r.get("na"):
            return ["n/a", "n/a"] if not ratio else ["n/a"]
        if ratio:
            # An unpinned producer's items run on whichever CPU it is on, mostly not
            # the busy one the bare thread is pinned to: no floor to divide by.
            if r["producer_mode"] != "pinned" or r.get("p99_vs_bare") is None:
                return ["–"]
            return [f"{r['p99_vs_bare']:.1f}×"]
        return [f1(r["p50_us"]), f1(r["p99_us"])]

    queues = []
    for r in bh_lat:
        if r["queue"] not in queues:
            queues.append(r["queue"])
    modes = [m for m in ("pinned", "unpinned") if any(r["producer_mode"] == m for r in bh_lat)]
    first = bh_lat[0]
    spinners = max(r["spinners"] for r in bh_lat)
    intro = (
        f"{BH_INTRO} {first['cpu']}, idle and kept busy by {spinners} spinning threads of the process (normal "
        "priority), beside a bare pinned thread woken with `unpark` (the floor); `pinned`: the producer is pinned to "
        "that CPU and queues with `queue_on`, `unpinned`: nobody pinned it and it queues with `queue` (its items run on "
        "the CPU it is on, so the ratio to the bare thread on the busy CPU is left out). n/a: the library "
        "refused the queue. The storm: a CPU-bound thread pinned to the CPU beside items queued there all at once."
    )
    lines = [
        # The intro starts with BH_INTRO on its first line, where the next run finds it.
        textwrap.fill(intro, width=92, break_long_words=False, break_on_hyphens=False),
        "",
        "| queue-to-start, µs | producer | idle p50 | idle p99 | busy p50 | busy p99 | busy p99 / bare |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in queues:
        for m in modes:
            idle, busy = lat(q, m, "idle"), lat(q, m, "busy")
            name = q.replace("|", "\\|")
            lines.append(f"| `{name}` | {m} | " + " | ".join(cells(idle) + cells(busy) + cells(busy, True)) + " |")
    if bh_storm:
        s0 = bh_storm[0]
        lines += [
            "",
            f"| a CPU-bound thread beside {s0['items']} items of {s0['item_spin_us']:.0f} µs on its CPU | "
            "longest gap µs | quiet gap µs | storm ms | thread's CPU share |",
            "|---|---|---|---|---|",
        ]
        for r in bh_storm:
            name = r["queue"].replace("|", "\\|")
            if r.get("na"):
                lines.append(f"| `{name}` | n/a | n/a | n/a | n/a |")
            else:
                lines.append(f"| `{name}` | {r['longest_gap_us']:.0f} | {r['quiet_gap_us']:.0f} | "
                             f"{r['storm_ms']:.1f} | {r['observer_cpu_pct']:.1f}% |")
    bh_block = "\n".join(lines) + "\n\n"
    readme, n = re.subn(re.escape(BH_INTRO) + r".*?\n\n\|.*?\n\n(?:\|.*?\n\n)?", lambda _m: bh_block, readme, count=1, flags=re.S)
    if n == 0:
        readme = sub(r"Other workloads \(same run\):\n", bh_block + "Other workloads (same run):\n", readme)

# other workloads: the headline lines of the run
bullets = ["- " + l for l in d["headline"] if re.match(r"(noop, |wake: |many-queues: )", l)]
readme = sub(r"Other workloads \(same run\):\n\n(?:- [^\n]*\n)+", "Other workloads (same run):\n\n" + "\n".join(bullets) + "\n", readme)

open(readme_path, "w").write(readme)
print(f"{readme_path} updated from {json_path}")
