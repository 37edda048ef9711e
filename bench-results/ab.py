#!/usr/bin/env python3
"""Interleaved before/after runs of `cmwq bench`, for changes to the hot path.

Runs each build's `cmwq bench --only ONLY` in turn, ROUNDS times, so that a
machine that speeds up or slows down during the comparison does so for every
build alike, and prints, per build, executor and producer mode, the quartiles
of every measured run: noop in ns per item, mixed as makespan over the ideal.

    cargo build --release && cp target/release/cmwq /tmp/cmwq-after
    git stash && cargo build --release && cp target/release/cmwq /tmp/cmwq-before && git stash pop
    python3 bench-results/ab.py --rounds 10 --only noop,cmwq-default,fixed-pool,unpinned \\
        before=/tmp/cmwq-before after=/tmp/cmwq-after

A build is LABEL=COMMAND: the command is run through the shell with `bench
--only ... --out DIR` appended, so `slow=SOME_ENV=1 /tmp/cmwq` works. Each run's
results go to a fresh temporary directory; bench-results/ is not touched.
"""

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile


def quartiles(v):
    v = sorted(v)
    n = len(v)
    return v[n // 4], statistics.median(v), v[(3 * n) // 4]


def collect(d, label, acc):
    for r in d.get("noop", []):
        key = (label, "noop", r["executor"], r["producer_mode"], "")
        acc[key].extend(1e9 / x for x in r["items_per_s_runs"] if x > 0)
    for r in d.get("mixed", []):
        key = (label, "mixed", r["executor"], r["producer_mode"], r["ratio"])
        ideal = r["bounds"]["ideal_ms"]
        acc[key].extend(m / ideal for m in r["makespans_ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", required=True, help="passed to `cmwq bench --only`")
    ap.add_argument("builds", nargs="+", metavar="LABEL=COMMAND")
    a = ap.parse_args()
    builds = []
    for b in a.builds:
        label, sep, cmd = b.partition("=")
        if not sep or not label or not cmd:
            sys.exit(f"ab.py: {b!r} is not LABEL=COMMAND")
        builds.append((label, cmd))
    acc = collections.defaultdict(list)
    for i in range(1, a.rounds + 1):
        for label, cmd in builds:
            with tempfile.TemporaryDirectory() as out:
                run = f"{cmd} bench --only {a.only} --out {out}"
                p = subprocess.run(run, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if p.returncode != 0:
                    sys.exit(f"ab.py: `{run}` failed ({p.returncode}):\n{p.stderr[-2000:]}")
                with open(f"{out}/bench-full.json") as f:
                    collect(json.load(f), label, acc)
        print(f"round {i}/{a.rounds} done", file=sys.stderr)
    order = {label: n for n, (label, _) in enumerate(builds)}
    rows = sorted(acc.items(), key=lambda kv: (kv[0][1:], order[kv[0][0]]))
    for (label, workload, ex, mode, ratio), v in rows:
        q1, med, q3 = quartiles(v)
        unit = "ns/item" if workload == "noop" else "x ideal"
        fmt = "{:.0f}" if workload == "noop" else "{:.3f}"
        what = f"{workload} {ratio}".strip()
        print(
            f"{what:12} {ex:20} {mode:9} {label:12} n={len(v):<4} "
            f"median {fmt.format(med)} (quartiles {fmt.format(q1)}-{fmt.format(q3)}) {unit}"
        )


if __name__ == "__main__":
    main()
