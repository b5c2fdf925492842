#!/usr/bin/env bash
# What this measures: system calls per request of whole echo servers under
# the same load, counted by `strace -f -c` on the server: green (1 worker),
# tokio (current_thread) and an OS thread per connection (echo_threads),
# each under `echo_load` with 1 and with 100 connections sending 64-byte
# messages in a closed loop. Calls are divided by the requests the client
# counted, so the table reads "calls per request".
#
# strace slows every system call, so the requests per second under it mean
# nothing; the counts per request do not depend on speed, except where a
# server polls more often because it is idle more often (the 1-connection
# rows), which is what they show.
#
# Usage: bash benches/scripts/echo_syscalls.sh [--duration SECS]
#   --duration SECS  seconds per run (default 3)
# Builds the examples in release mode (CARGO_TARGET_DIR is respected).
# Installs nothing; exits 2 if strace or taskset is missing.
set -euo pipefail

duration=3
while (($#)); do
    case $1 in
    --duration)
        [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "echo_syscalls.sh: --duration needs whole seconds" >&2; exit 2; }
        duration=$2
        shift 2
        ;;
    *) echo "echo_syscalls.sh: unknown argument '$1' (try --duration SECS)" >&2; exit 2 ;;
    esac
done
for tool in strace taskset; do
    command -v "$tool" >/dev/null || { echo "echo_syscalls.sh: needs $tool" >&2; exit 2; }
done

cd "$(dirname "$0")/../.."
cargo build --release --quiet -p green-examples --example echo --example echo_tokio --example echo_threads \
    --example echo_load
dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=$dir/release/examples
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

port=17500
# run NAME CONNECTIONS SERVER-COMMAND...: one row.
run() {
    local name=$1 connections=$2
    shift 2
    port=$((port + 1))
    taskset -c 0 strace -f -c -o "$out/counts" "$@" --port "$port" >/dev/null 2>&1 &
    local server=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    local line requests
    line=$(taskset -c 1 "$bin/echo_load" --addr "127.0.0.1:$port" --connections "$connections" \
        --duration "$duration")
    requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
    # strace writes its summary when the server exits; it blocks fatal
    # signals itself (it was given -o and a command), so signal the server,
    # found by its command line (it is strace's child), with SIGTERM: a
    # command started with & in a script ignores SIGINT.
    pkill -TERM -f "^$1 .*--port $port\$" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    awk -v name="$name" -v c="$connections" -v r="$requests" '
        $1 ~ /^[0-9.]+$/ && $NF != "total" { calls[$NF] = $4 }
        END {
            total = 0
            for (s in calls) total += calls[s]
            line = ""
            for (s in calls) if (calls[s] / r >= 0.01) line = line sprintf(" %s %.2f,", s, calls[s] / r)
            printf "| %s | %d | %d | %.2f |%s\n", name, c, r, total / r, line
        }' "$out/counts"
}

echo "$(strace --version | head -n 1), Linux $(uname -r), $(nproc) CPUs; $duration s per run"
echo
echo "| server | connections | requests | calls per request | of which (per request) |"
echo "|---|--:|--:|--:|---|"
for connections in 1 100; do
    run green "$connections" "$bin/echo" --quiet
    run tokio "$connections" "$bin/echo_tokio" --quiet
    run threads "$connections" "$bin/echo_threads" --quiet
done
