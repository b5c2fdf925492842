#!/usr/bin/env bash
# What this measures: system calls per operation, counted by `strace -c`, for
# the operations of benches/src/bin/probe.rs:
#
#   io           one round trip of a byte over a Unix socket pair between two
#                green tasks; each side waits for readiness once per trip
#   yield        one green::yield_now() by a task alone in its runtime
#   channel      one round trip over two green bounded(1) channels
#   tokio-yield  one tokio::task::yield_now() by a task alone in a
#                current_thread runtime with timers and I/O on
#
# Each runs N times and 2N times; the difference divided by N cancels
# start-up and shutdown. For `io` it also prints the calls of one round trip
# in order (what one poll of the reactor costs), and what the same round trip
# would cost if descriptors were registered one-shot (EPOLLONESHOT), which
# needs an epoll_ctl to re-arm before every wait: one per socket read that
# returned EAGAIN.
#
# Usage: bash benches/scripts/syscalls.sh [N]     (N defaults to 10000)
# Installs nothing. Exits 2 if strace is missing.
set -euo pipefail

# The checks, the build of the probe, and `n`, `probe`, `out`.
source "$(dirname "$0")/probe.sh" syscalls.sh strace 10000 "$@"

# `syscall calls errors` lines of `strace -c` for a run of `probe OP COUNT`.
counts() {
    strace -f -c -o "$out/summary" "$probe" "$1" "$2" >/dev/null
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4, (NF == 6 ? $5 : 0) }' "$out/summary" | sort
}

echo "$(strace --version | head -n 1), $(uname -m), Linux $(uname -r); N = $n"
for op in io yield channel tokio-yield; do
    counts "$op" "$n" >"$out/one"
    counts "$op" $((2 * n)) >"$out/two"
    echo
    echo "$op: system calls per operation (calls, of which failed)"
    join -a 2 -e 0 -o 0,1.2,1.3,2.2,2.3 "$out/one" "$out/two" | awk -v n="$n" -v op="$op" '
        {
            calls = ($4 - $2) / n; errors = ($5 - $3) / n
            if (calls >= 0.005) { printf "  %-18s %8.2f %8.2f\n", $1, calls, errors; total += calls }
            # The sockets are read with recvfrom; a failed `read` is the
            # poller emptying its own eventfd, not a wait.
            if ($1 ~ /^(recvfrom|recvmsg)$/) { waits += errors }
        }
        END {
            printf "  %-18s %8.2f\n", "total", total
            if (op == "io") {
                printf "  waits for readiness (socket reads that failed with EAGAIN): %.2f\n", waits
                printf "  with one-shot registration, one epoll_ctl more per wait: %.2f in total\n", total + waits
            }
        }'
done

# One io round trip in steady state, call by call: from the third poll of the
# reactor (each poll starts with timerfd_settime) to the fifth.
strace -f -o "$out/trace" "$probe" io 8 >/dev/null
echo
echo "io: the calls of one round trip, in order (two polls of the reactor)"
sed -E 's/^[0-9]+ +//; s/\(.*\) += (-?[0-9]+).*/ = \1/' "$out/trace" \
    | awk '/^timerfd_settime/ { polls++ } polls >= 3 && polls < 5 { print "  " $0 }'
