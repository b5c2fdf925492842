#!/usr/bin/env bash
# What this measures: instructions per operation of the green runtime, counted
# by valgrind's callgrind, for five operations (see benches/src/bin/probe.rs):
#
#   switch    one resume/suspend pair of a bare corosensei coroutine
#   yield     one green::yield_now() by a task alone in its runtime
#   yield-many  one green::yield_now() by one of 200 tasks taking turns
#   spawn     one empty task spawned and joined (10,000 spawned, then joined)
#   channel   one round trip over two bounded(1) channels
#
# Each operation runs N times and 2N times in a release build of the probe;
# (instructions(2N) - instructions(N)) / N cancels start-up, the first
# mapping of stacks and shutdown. Instruction counts do not depend on the
# load of a shared machine, so they compare builds where wall-clock times
# cannot; they do not see cache misses or the cost of atomic instructions.
#
# Usage: bash benches/scripts/callgrind.sh [N]     (N defaults to 100000)
# Installs nothing. Exits 2 if valgrind is missing.
set -euo pipefail

# The checks, the build of the probe, and `n`, `probe`, `out`.
source "$(dirname "$0")/probe.sh" callgrind.sh valgrind 100000 "$@"

# Instructions a whole run of `probe OP COUNT` executes.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$probe" "$1" "$2" 2>"$out/log" \
        || { cat "$out/log" >&2; echo "callgrind.sh: probe $1 $2 failed under valgrind" >&2; exit 1; }
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$out/log"
}

echo "$(valgrind --version), $(uname -m), Linux $(uname -r); N = $n"
printf '%-10s %16s %16s %18s\n' operation "instr(N)" "instr(2N)" "instructions/op"
for op in switch yield yield-many spawn channel; do
    one=$(instructions "$op" "$n")
    two=$(instructions "$op" $((2 * n)))
    printf '%-10s %16d %16d %18s\n' "$op" "$one" "$two" "$(awk -v a="$one" -v b="$two" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')"
done
