#!/usr/bin/env bash
# Instructions per I/O (callgrind, qd32, one thread, net of `null`) of every
# policy and baseline at 1, 2, 4, 8, 16, 32 and 64 paths: writes
# docs/per-io-cost.csv and plots it as docs/per-io-cost.svg.
#
#   scripts/cost_plot.sh [IOS]     (default 50000 I/Os per run)
set -euo pipefail
cd "$(dirname "$0")/.."
IOS="${1:-50000}"
cargo build -q --release -p rsdsm-engine --example per_io
BIN=target/release/examples/per_io
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() {
    valgrind --tool=callgrind --toggle-collect='*harness*measure*' \
        --callgrind-out-file="$tmp/cg" "$BIN" "$1" "$2" 32 "$IOS" >/dev/null 2>&1
    awk -v n="$IOS" '/^(summary|totals):/ {printf "%.1f", $2 / n; exit}' "$tmp/cg"
}
csv=docs/per-io-cost.csv
echo "policy,paths,instructions" >"$csv"
for paths in 1 2 4 8 16 32 64; do
    null=$(count null "$paths")
    for policy in failover round-robin round-robin-subset weighted-paths weighted-round-robin \
        least-queue-depth least-blocks service-time adaptive-latency baseline-rr baseline-mutex-lqd \
        baseline-stats; do
        c=$(count "$policy" "$paths")
        echo "$policy,$paths,$(awk -v a="$c" -v b="$null" 'BEGIN {printf "%.1f", a - b}')" >>"$csv"
    done
done
python3 scripts/plot_cost.py "$csv" docs/per-io-cost.svg
echo "wrote $csv and docs/per-io-cost.svg"
