#!/usr/bin/env python3
"""Criterion medians of benches/per_io.rs as ratios to baseline-rr.

usage: criterion_table.py [target/criterion]   -> Markdown on stdout
One table per group (qd0/1t, qd0/2t, qd32/1t, qd32/2t): each cell is the
median ns per I/O (per thread) and, in brackets, its ratio to baseline-rr's
median at the same path count in the same group.
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
order = ["null", "baseline-rr", "baseline-mutex-lqd", "baseline-stats", "failover", "round-robin", "round-robin-subset",
         "weighted-paths", "weighted-round-robin", "least-queue-depth", "least-blocks", "service-time",
         "adaptive-latency"]
paths = [1, 2, 4, 8, 16, 32, 64]
for group in ["qd0_1t", "qd0_2t", "qd32_1t", "qd32_2t"]:
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        continue
    med = {}
    for name in order:
        for p in paths:
            f = os.path.join(gdir, name, str(p), "new", "estimates.json")
            if os.path.exists(f):
                med[(name, p)] = json.load(open(f))["median"]["point_estimate"]
    print(f"\n#### {group.replace('_', ', ')}: median ns per I/O per thread (× baseline-rr)\n")
    print("| policy | " + " | ".join(f"{p}" for p in paths) + " |")
    print("|---|" + "---|" * len(paths))
    for name in order:
        cells = []
        for p in paths:
            v, b = med.get((name, p)), med.get(("baseline-rr", p))
            cells.append("—" if v is None else f"{v:.1f} ({v / b:.1f}×)" if b else f"{v:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
