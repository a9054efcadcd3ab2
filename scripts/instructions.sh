#!/usr/bin/env bash
# Instructions per I/O (select + start + complete) of every policy, counted by
# callgrind over examples/per_io's measured loop: 8 and 32 paths, queue depth
# 32, one thread, statistics on. Printed net of `null` (the loop's own cost),
# beside the targets of issue 7 and the baselines. `baseline-stats` is path 0
# plus DESIGN §2's statistics in one plain block of atomics: the floor that
# statistics alone put under every policy.
#
#   scripts/instructions.sh [IOS]        (default 100000 I/Os per run)
#
# Needs valgrind. Output: a Markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
IOS="${1:-100000}"
QD=32

cargo build -q --release -p rsdsm-engine --example per_io
BIN=target/release/examples/per_io
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Total Ir inside harness::measure divided by the I/O count.
per_io() {
    local policy=$1 paths=$2 out="$tmp/cg.$1.$2"
    valgrind --tool=callgrind --toggle-collect='*harness*measure*' \
        --callgrind-out-file="$out" "$BIN" "$policy" "$paths" "$QD" "$IOS" >/dev/null 2>"$out.log"
    local ir
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
    awk -v ir="$ir" -v n="$IOS" 'BEGIN {printf "%.1f", ir / n}'
}

# policy | target at 8 | target at 32 | dm-multipath at 32 (net of its harness)
targets() {
    case $1 in
        failover) echo "25 25 —" ;;
        round-robin) echo "30 30 33" ;;
        round-robin-subset) echo "30 30 33" ;;
        weighted-paths|weighted-round-robin) echo "40 40 —" ;;
        least-queue-depth) echo "60 150 500" ;;
        least-blocks|service-time) echo "70 160 438" ;;
        adaptive-latency) echo "100 250 2357" ;;
        *) echo "— — —" ;;
    esac
}

null8=$(per_io null 8)
null32=$(per_io null 32)
echo "null (the loop's own cost): $null8 instructions/I/O at 8 paths, $null32 at 32 (qd$QD, $IOS I/Os, callgrind)"
echo
echo "| policy | 8 paths | target | 32 paths | target | dm-multipath at 32 | met |"
echo "|---|---|---|---|---|---|---|"
for policy in failover round-robin round-robin-subset weighted-paths weighted-round-robin \
    least-queue-depth least-blocks service-time adaptive-latency baseline-rr baseline-mutex-lqd baseline-stats; do
    read -r t8 t32 dm <<<"$(targets "$policy")"
    n8=$(awk -v a="$(per_io "$policy" 8)" -v b="$null8" 'BEGIN {printf "%.1f", a - b}')
    n32=$(awk -v a="$(per_io "$policy" 32)" -v b="$null32" 'BEGIN {printf "%.1f", a - b}')
    met=$(awk -v a="$n8" -v b="$n32" -v x="$t8" -v y="$t32" 'BEGIN {
        if (x == "—") { print "—"; exit }
        m = ""
        if (a > x) m = m sprintf("8 paths +%.1f ", a - x)
        if (b > y) m = m sprintf("32 paths +%.1f", b - y)
        print (m == "" ? "yes" : "no: " m) }')
    echo "| $policy | $n8 | ≤ $t8 | $n32 | ≤ $t32 | $dm | $met |"
done
