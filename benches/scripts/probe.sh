# Shared by callgrind.sh and syscalls.sh (sourced, not run): checks that the
# tool is installed and N is valid, builds the probe program
# (benches/src/bin/probe.rs) in release mode, and sets:
#   n      the operation count, the script's first argument or the default
#   probe  the path of the probe binary
#   out    a temporary directory, removed when the script exits
#
# Usage, after `set -euo pipefail`:
#   source "$(dirname "$0")/probe.sh" SCRIPT TOOL DEFAULT_N "$@"

script=$1
tool=$2
default_n=$3
shift 3

if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$script: $tool is not installed; install it (Debian/Ubuntu: apt-get install -y $tool) and run again" >&2
    exit 2
fi

n=${1:-$default_n}
case $n in
    '' | *[!0-9]* | 0)
        echo "$script: N must be a whole number above 0, not '$n'" >&2
        exit 2
        ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --quiet --release -p green-benches --bin probe
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
probe="$target_dir/release/probe"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
