#!/usr/bin/env bash
# What this measures: whole servers under real clients, each server pinned
# to its own CPU and the client to the other, so that the server's cost per
# request can be read off its own CPU time.
#
#   echo   the echo server on green (1 worker; 2 workers, one accept loop;
#          2 workers, SO_REUSEPORT), on tokio (current_thread; multi_thread,
#          2 workers) and with an OS thread per connection (echo_threads),
#          under echo_load: 1, 100 and 1000 connections, each sending a
#          64-byte message and waiting for its whole echo before the next
#          (a closed loop), every byte checked.
#   http   http_hello on green and on tokio, 1 worker and 2, under
#          `wrk -t1 -c100 --latency` (keep-alive, no pipelining), after a
#          curl check that it answers.
#
# For each run: requests per second and the p50 and p99 latency as the
# client saw them, and the server's CPU time per request: its utime + stime
# (fields 14 and 15 of /proc/PID/stat, in clock ticks of `getconf CLK_TCK`)
# sampled right before and right after the client's run, divided by the
# requests the client counted. The window includes opening and closing the
# connections; with 10 ms ticks, a run of a few seconds resolves it to a
# fraction of a percent.
#
# Placement: a 1-worker server runs on CPU 0 (`taskset -c 0`), the client on
# CPU 1. A 2-worker server gets CPUs 0 and 1 and so shares CPU 1 with the
# client: on a 2-core machine its rows show what a second worker buys when
# the client competes with it, and its CPU per request is the figure to
# compare. echo_threads runs on CPU 0 alone like the 1-worker servers.
#
# Usage: bash benches/scripts/servers.sh [--duration SECS] [--out FILE]
#   --duration SECS  seconds per run, a whole number (default 5, or $DURATION)
#   --out FILE       also write the tables to FILE
# Builds the examples in release mode (CARGO_TARGET_DIR is respected).
# Needs 2 CPUs. Installs wrk and curl with apt-get if they are missing
# (needs root; exits 2 otherwise). Servers are killed when it exits.
set -euo pipefail

script=servers.sh
duration=${DURATION:-5}
out_file=

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case $1 in
        --duration) [ $# -ge 2 ] || { echo "$script: --duration needs a value" >&2; exit 2; }; duration=$2; shift 2 ;;
        --duration=*) duration=${1#*=}; shift ;;
        --out) [ $# -ge 2 ] || { echo "$script: --out needs a file" >&2; exit 2; }; out_file=$2; shift 2 ;;
        --out=*) out_file=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "$script: unknown argument '$1' (accepted: --duration SECS, --out FILE, --help)" >&2; exit 2 ;;
    esac
done
case $duration in
    '' | *[!0-9]* | 0*)
        echo "$script: the duration must be a whole number of seconds above 0, not '$duration'" >&2
        exit 2
        ;;
esac
if [ "$(nproc)" -lt 2 ]; then
    echo "$script: needs 2 CPUs (server on CPU 0, client on CPU 1); this machine has $(nproc)" >&2
    exit 2
fi

# Installs the Debian/Ubuntu package $1 if its command is missing.
require() {
    command -v "$1" >/dev/null 2>&1 && return
    if [ "$(id -u)" -ne 0 ]; then
        echo "$script: $1 is not installed and this is not root; install it (Debian/Ubuntu: apt-get install -y $1) and run again" >&2
        exit 2
    fi
    echo "$script: $1 is not installed; installing it with apt-get" >&2
    apt-get update -qq >&2
    apt-get install -y -qq "$1" >&2
}
require wrk
require curl

cd "$(dirname "$0")/../.."
echo "$script: building the examples (release)" >&2
cargo build --quiet --release -p green-examples --examples
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/examples"

# 1000 connections need 1000 descriptors on each side.
ulimit -n "$(ulimit -Hn)"
clk_tck=$(getconf CLK_TCK)

tmp=$(mktemp -d)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Starts a server on CPUs $1 (the rest is its command line), waits for its
# `listening on ADDR` line and sets server_pid and addr.
start_server() {
    local cpus=$1
    shift
    # Emptied here, not only by the redirection in the background child,
    # which may run after the first look for the line below: the last
    # server's address must not be read for this one's.
    : >"$tmp/server.out"
    taskset -c "$cpus" "$@" >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    addr=
    for _ in $(seq 100); do
        addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$tmp/server.out" | head -n 1)
        [ -n "$addr" ] && return
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "$script: $* exited before it listened: $(cat "$tmp/server.err")" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$script: $* did not say it was listening within 10 s" >&2
    exit 1
}

# The CPU time of process $1 so far (all its threads, and those that
# ended), in clock ticks.
cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat")
    # The command name, in parentheses, may hold spaces: fields are counted
    # after its closing parenthesis, which is followed by field 3.
    rest=${stat##*) }
    read -ra fields <<<"$rest"
    echo $((fields[11] + fields[12]))
}

# Microseconds of CPU per request: ticks $1, requests $2.
per_request() {
    awk -v ticks="$1" -v hz="$clk_tck" -v n="$2" \
        'BEGIN { if (n > 0) printf "%.2f", ticks * 1e6 / hz / n; else print "-" }'
}

# The value of key $2 in the echo_load line $1.
field() {
    tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}

# Microseconds from a wrk duration such as 812.00us, 1.23ms or 2.01s.
micros() {
    awk -v t="$1" 'BEGIN {
        if (t ~ /us$/) { sub(/us$/, "", t); v = t }
        else if (t ~ /ms$/) { sub(/ms$/, "", t); v = t * 1000 }
        else if (t ~ /m$/) { sub(/m$/, "", t); v = t * 60e6 }
        else if (t ~ /s$/) { sub(/s$/, "", t); v = t * 1e6 }
        else v = "?"
        if (v == "?") print v; else printf "%.0f", v
    }'
}

failed=0
echo_rows=()
http_rows=()

# One echo run: label $1, CPUs $2, connections $3, then the server's
# command line.
run_echo() {
    local label=$1 cpus=$2 connections=$3 line before after
    shift 3
    echo "$script: echo: $label, $connections connections, ${duration}s" >&2
    start_server "$cpus" "$@"
    before=$(cpu_ticks "$server_pid")
    if ! line=$(taskset -c 1 "$bin/echo_load" --addr "$addr" --connections "$connections" --duration "$duration"); then
        echo "$script: echo_load failed against $label: $line" >&2
        failed=1
    fi
    [ -n "$line" ] || line="errors=failed"
    after=$(cpu_ticks "$server_pid")
    stop_server
    local requests
    requests=$(field "$line" requests)
    echo_rows+=("| $label | $cpus | $connections | $(field "$line" rps) | $(field "$line" p50_us) | $(field "$line" p99_us) | $(per_request $((after - before)) "${requests:-0}") | $(field "$line" errors) |")
}

# One HTTP run: label $1, CPUs $2, then the server's command line.
run_http() {
    local label=$1 cpus=$2 report before after body
    shift 2
    echo "$script: http: $label, wrk -t1 -c100 ${duration}s" >&2
    start_server "$cpus" "$@"
    if ! body=$(curl -fsS --max-time 5 "http://$addr/") || [ "$body" != "Hello, world!" ]; then
        echo "$script: curl could not fetch Hello, world! from $label at $addr (got '$body')" >&2
        exit 1
    fi
    before=$(cpu_ticks "$server_pid")
    report=$(taskset -c 1 wrk -t1 -c100 -d"${duration}s" --latency "http://$addr/")
    after=$(cpu_ticks "$server_pid")
    stop_server
    local rps requests p50 p99 errors
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$report")
    requests=$(awk '/ requests in / { print $1 }' <<<"$report")
    p50=$(micros "$(awk '$1 == "50%" { print $2 }' <<<"$report")")
    p99=$(micros "$(awk '$1 == "99%" { print $2 }' <<<"$report")")
    # wrk reports socket errors and non-2xx answers only when there are any.
    errors=$(awk '/Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } /Non-2xx/ { n += $NF } END { print n + 0 }' <<<"$report")
    [ "$errors" -eq 0 ] || failed=1
    http_rows+=("| $label | $cpus | $rps | $p50 | $p99 | $(per_request $((after - before)) "${requests:-0}") | $errors |")
}

for connections in 1 100 1000; do
    run_echo "green, 1 worker" 0 "$connections" "$bin/echo" --port 0 --quiet
    run_echo "green, 2 workers" 0,1 "$connections" "$bin/echo" --port 0 --quiet --workers 2
    run_echo "green, 2 workers, reuseport" 0,1 "$connections" "$bin/echo" --port 0 --quiet --workers 2 --reuseport
    run_echo "tokio current_thread" 0 "$connections" "$bin/echo_tokio" --port 0 --quiet
    run_echo "tokio multi_thread, 2 workers" 0,1 "$connections" "$bin/echo_tokio" --port 0 --quiet --workers 2
    run_echo "threads (echo_threads)" 0 "$connections" "$bin/echo_threads" --port 0 --quiet
done

for workers in 1 2; do
    cpus=0
    [ "$workers" -eq 1 ] || cpus=0,1
    for runtime in green tokio; do
        run_http "$runtime, $workers worker$([ "$workers" -eq 1 ] || echo s)" "$cpus" \
            "$bin/http_hello" --runtime "$runtime" --workers "$workers" --addr 127.0.0.1:0
    done
done

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
    echo "Servers under real clients: $(nproc) CPUs (${cpu_model:-unknown CPU}), Linux $(uname -r), ${duration} s per run, $(date -u '+%Y-%m-%d')."
    echo
    echo "Echo, 64-byte messages, closed loop (echo_load on CPU 1):"
    echo
    echo "| server | server CPUs | connections | req/s | p50 µs | p99 µs | server CPU µs/req | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${echo_rows[@]}"
    echo
    echo "HTTP, http_hello under wrk -t1 -c100 --latency (wrk on CPU 1):"
    echo
    echo "| server | server CPUs | req/s | p50 µs | p99 µs | server CPU µs/req | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${http_rows[@]}"
} >"$tmp/tables.md"
cat "$tmp/tables.md"
if [ -n "$out_file" ]; then
    cp "$tmp/tables.md" "$out_file"
fi
if [ "$failed" -ne 0 ]; then
    echo "$script: some runs had errors (see above)" >&2
    exit 1
fi
