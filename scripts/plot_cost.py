#!/usr/bin/env python3
"""Plots instructions per I/O against path count (log2 x, log10 y) as SVG.

usage: plot_cost.py COST.csv OUT.svg   (CSV: policy,paths,instructions)
"""
import csv
import math
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
series = {}
for r in rows:
    series.setdefault(r["policy"], []).append((int(r["paths"]), max(float(r["instructions"]), 1.0)))

W, H, L, R, T, B = 900, 560, 70, 230, 40, 60
pw, ph = W - L - R, H - T - B
xs = [p for s in series.values() for p, _ in s]
ys = [v for s in series.values() for _, v in s]
x0, x1 = math.log2(min(xs)), math.log2(max(xs))
y0, y1 = 0.0, math.ceil(math.log10(max(ys)))
X = lambda p: L + (math.log2(p) - x0) / (x1 - x0 or 1) * pw
Y = lambda v: T + ph - (math.log10(v) - y0) / (y1 - y0 or 1) * ph
colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aa0000"]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="22" font-size="15">Instructions per I/O (select+start+complete, qd32, 1 thread, net of null) vs paths</text>']
for e in range(int(y0), int(y1) + 1):
    y = Y(10 ** e)
    out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{10 ** e}</text>')
for p in sorted(set(xs)):
    x = X(p)
    out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + ph}" stroke="#eee"/>')
    out.append(f'<text x="{x:.1f}" y="{T + ph + 18}" text-anchor="middle">{p}</text>')
out.append(f'<text x="{L + pw / 2}" y="{H - 15}" text-anchor="middle">paths (log scale)</text>')
out.append(f'<text x="18" y="{T + ph / 2}" transform="rotate(-90 18 {T + ph / 2})" text-anchor="middle">instructions per I/O (log scale)</text>')
out.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
for i, (name, pts) in enumerate(series.items()):
    c = colors[i % len(colors)]
    dash = ' stroke-dasharray="5,3"' if name.startswith("baseline") else ""
    pts.sort()
    path = " ".join(f"{X(p):.1f},{Y(v):.1f}" for p, v in pts)
    out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
    for p, v in pts:
        out.append(f'<circle cx="{X(p):.1f}" cy="{Y(v):.1f}" r="2.5" fill="{c}"/>')
    ly = T + 10 + i * 20
    out.append(f'<line x1="{L + pw + 15}" y1="{ly}" x2="{L + pw + 40}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
    out.append(f'<text x="{L + pw + 45}" y="{ly + 4}">{name}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
