#!/usr/bin/env bash
# The Slurm executor against the local executor on this machine's single-node cluster
# (tools/slurm-local.sh start): the same experiment in two fresh stores, then wall times,
# Slurm's own timings of every job (submission to start, run time), and `tenas parity` of the
# two runs (identical scores, decisions and cells, wall-time columns aside).
# Usage: bash bench/slurm.sh [EXPERIMENT] [tenas run args...]   (default: experiments/sweep-tiny.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-experiments/sweep-tiny.toml}
shift || true
bin=./target/release/tenas
cargo build --release --bin tenas -q
tools/slurm-local.sh status >/dev/null || { echo "no Slurm answers: tools/slurm-local.sh start" >&2; exit 1; }
work=$(mktemp -d /tmp/tenas-bench-slurm.XXXXXX)
experiment=$("$bin" status "$file" --store "$work/probe" "$@" 2>/dev/null | sed -n "s/^experiment \`\(.*\)\`:$/\1/p")
now() { date +%s.%N; }
submitted() { sdiag | awk '/Jobs submitted:/ {print $3}'; }

start=$(now)
"$bin" -q run "$file" --executor local --store "$work/local" "$@"
local_s=$(echo "$(now) - $start" | bc)

before=$(submitted)
start=$(now)
"$bin" -q run "$file" --executor slurm --store "$work/slurm" "$@"
slurm_s=$(echo "$(now) - $start" | bc)
jobs=$(( $(submitted) - before ))

# Slurm's record of each job: SubmitTime, StartTime, EndTime (MinJobAge keeps them an hour).
epoch() { date -d "$1" +%s; }
waits=(); runs=()
for log in "$work"/slurm/slurm/jobs/*/logs/*.log; do
    id=$(basename "$log" .log)
    info=$(scontrol show job -o "$id" 2>/dev/null) || continue
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$info"; }
    waits+=( $(( $(epoch "$(field StartTime)") - $(epoch "$(field SubmitTime)") )) )
    runs+=( $(( $(epoch "$(field EndTime)") - $(epoch "$(field StartTime)") )) )
done
stats() { printf '%s\n' "$@" | awk '{s+=$1; if($1>m)m=$1} END {printf "mean %.1f s, max %d s over %d jobs", s/NR, m, NR}'; }

echo
echo "experiment:             $file ($experiment) $*"
echo "machine:                $(nproc) cores, $(sinfo -h -o '%c CPUs, %m MiB per node') on Slurm $(sinfo -V | awk '{print $2}')"
echo "local executor:         ${local_s} s wall"
echo "slurm executor:         ${slurm_s} s wall, ${jobs} array tasks submitted"
echo "submission to start:    $(stats "${waits[@]}")  (whole seconds, as Slurm records them)"
echo "job run time:           $(stats "${runs[@]}")"
echo "slurm minus local:      $(echo "$slurm_s - $local_s" | bc) s, $(echo "scale=2; ($slurm_s - $local_s) / $jobs" | bc) s per job"
echo
"$bin" parity "$work/local/results/$experiment/latest" "$work/slurm/results/$experiment/latest" --kappa-rtol 0 --store "$work/local"
echo "stores: $work"
