#!/usr/bin/env bash
# What this measures: Go's goroutines on four workloads that mirror green's
# criterion groups (benches/go/main.go says exactly how):
#
#   yield_many         200 goroutines x 1,000 runtime.Gosched(), all waited for
#   spawn_many         10,000 empty goroutines spawned, then waited for
#   chained_spawn      a chain of 1,000 goroutines, each spawning the next
#   channel_ping_pong  1,000 round trips over two channels of capacity 1
#
# It builds benches/go into a temporary directory and runs it twice: with
# GOMAXPROCS 2 (comparable with green_2w and tokio_mt) and with GOMAXPROCS 1
# (comparable with green and tokio current_thread). Each line gives the
# median, minimum and maximum time of one iteration over the iterations run
# (at least 30, about 2.5 s per workload after one untimed warm-up), and the
# median per element: a yield, a goroutine, a round trip, like the "per
# element" column of medians.sh. Times on a shared machine are noisy: read
# the medians, and compare with Rust figures taken at about the same time.
#
# Usage: bash benches/scripts/go.sh [-only NAME]   (extra arguments go to both runs)
# Installs golang-go with apt-get if `go` is missing (needs root; exits 2
# otherwise).
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "go.sh: go is not installed and this is not root; install it (Debian/Ubuntu: apt-get install -y golang-go) and run again" >&2
        exit 2
    fi
    echo "go.sh: go is not installed; installing golang-go with apt-get" >&2
    apt-get update -qq >&2
    apt-get install -y -qq golang-go >&2
fi

cd "$(dirname "$0")/../go"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/greenbench" .

echo "$(go version), $(nproc) CPUs, Linux $(uname -r)"
for procs in 2 1; do
    "$out/greenbench" -procs "$procs" "$@"
done
