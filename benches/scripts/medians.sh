#!/usr/bin/env bash
# What this prints: the criterion medians of the last `cargo bench -p
# green-benches` run, one line per group and variant (green, green_2w, tokio,
# tokio_mt, threads, and the `switch` group's corosensei variants), as time
# per iteration, time per element (a yield, a task, a round trip: the
# variant's own Throughput, since a variant may do fewer elements than the
# others, as `sleep_many`'s threads do) and the ratios DESIGN.md and PERF.md
# quote, per element: green / tokio, green_2w / tokio_mt, threads / green,
# and for the `switch` group green / corosensei and corosensei_nested /
# corosensei. It reads <target>/criterion/<group>/<runtime>/new/
# {estimates,benchmark}.json and measures nothing itself.
#
# Usage: bash benches/scripts/medians.sh [GROUP...]   (default: every group)
# Installs nothing. Exits 2 if jq is missing or there are no results.
set -euo pipefail

if ! command -v jq >/dev/null 2>&1; then
    echo "medians.sh: jq is not installed; install it (Debian/Ubuntu: apt-get install -y jq) and run again" >&2
    exit 2
fi

cd "$(dirname "$0")/../.."
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
results="$target_dir/criterion"
if [ ! -d "$results" ]; then
    echo "medians.sh: no criterion results in $results; run cargo bench -p green-benches first" >&2
    exit 2
fi

groups=("$@")
if [ ${#groups[@]} -eq 0 ]; then
    for dir in "$results"/*/; do
        [ -d "$dir/green/new" ] && groups+=("$(basename "$dir")")
    done
fi

# Median nanoseconds per iteration of GROUP/RUNTIME, or nothing.
median() {
    local file="$results/$1/$2/new/estimates.json"
    [ -f "$file" ] && jq '.median.point_estimate' "$file"
}

# Elements per iteration of GROUP/RUNTIME (1 if it has no Throughput), or
# nothing.
elements() {
    local file="$results/$1/$2/new/benchmark.json"
    [ -f "$file" ] && jq '.throughput.Elements // 1' "$file"
}

# Median nanoseconds per element of GROUP/RUNTIME, or nothing.
per_element() {
    local ns e
    ns=$(median "$1" "$2") || return 1
    e=$(elements "$1" "$2") || return 1
    awk -v ns="$ns" -v e="$e" 'BEGIN { printf "%.6f\n", ns / e }'
}

printf '%-24s %-18s %14s %14s\n' group runtime "median/iter" "per element"
for group in "${groups[@]}"; do
    if [ ! -f "$results/$group/green/new/benchmark.json" ]; then
        echo "medians.sh: no results for group $group in $results" >&2
        continue
    fi
    for runtime in corosensei corosensei_nested green green_2w tokio tokio_mt threads; do
        ns=$(median "$group" "$runtime") || continue
        e=$(elements "$group" "$runtime") || continue
        awk -v g="$group" -v r="$runtime" -v ns="$ns" -v e="$e" 'BEGIN {
            split("ns µs ms s", unit, " ")
            t = ns; u = 1; while (t >= 1000 && u < 4) { t /= 1000; u++ }
            p = ns / e; v = 1; while (p >= 1000 && v < 4) { p /= 1000; v++ }
            printf "%-24s %-18s %11.3f %-2s %11.3f %-2s\n", g, r, t, unit[u], p, unit[v]
        }'
    done
    green=$(per_element "$group" green)
    green_2w=$(per_element "$group" green_2w || true)
    tokio=$(per_element "$group" tokio || true)
    tokio_mt=$(per_element "$group" tokio_mt || true)
    threads=$(per_element "$group" threads || true)
    corosensei=$(per_element "$group" corosensei || true)
    nested=$(per_element "$group" corosensei_nested || true)
    awk -v g="$group" -v green="$green" -v green_2w="$green_2w" -v tokio="$tokio" -v tokio_mt="$tokio_mt" \
        -v threads="$threads" -v co="$corosensei" -v nested="$nested" 'BEGIN {
        line = sprintf("%-24s ratios:", g)
        if (tokio != "") line = line sprintf("  green/tokio %.2f", green / tokio)
        if (green_2w != "" && tokio_mt != "") line = line sprintf("  green_2w/tokio_mt %.2f", green_2w / tokio_mt)
        if (threads != "") line = line sprintf("  threads/green %.1f", threads / green)
        if (co != "") line = line sprintf("  green/corosensei %.1f", green / co)
        if (co != "" && nested != "") line = line sprintf("  corosensei_nested/corosensei %.1f", nested / co)
        print line
    }'
done
