#!/usr/bin/env bash
# The paper-setting NB201 search (one seed, CPU) in a fresh store: wall time and peak memory.
# Usage: bench/cpu.sh [experiment] [extra `tenas run` args...]
set -euo pipefail
cd "$(dirname "$0")/.."
experiment=${1:-experiments/nb201-cifar10.toml}
shift || true
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
start=$(date +%s.%N)
# GNU time's -v would need the `time` package; read the peak from /proc instead.
./target/release/tenas run "$experiment" --store "$store" --device cpu "$@" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.5
done
wait "$pid"
end=$(date +%s.%N)
awk -v e="$experiment" -v s="$start" -v f="$end" -v p="$peak" -v m="$(uname -m)" -v n="$(nproc)" \
    'BEGIN { printf "bench: %s  wall %.1f s  peak RSS %.0f MiB  (%s, %s cores)\n", e, f - s, p / 1024, m, n }'
