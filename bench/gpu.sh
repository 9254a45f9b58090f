#!/usr/bin/env bash
# The device check, in one call on the GPU machine (no Rust there; `just gpu-carry` prepares
# what it needs under target/gpu-carry: the xz'd CUDA binary and the data):
#   1. parity: the tiny NB201 search (seeds 0, 1) on CPU and on CUDA, compared by `tenas parity`
#      (κ within 1e-3 relative, identical region counts and pruning decisions);
#   2. the paper-setting NB201 search (seed 0) timed on CUDA, then the same on the CPU for its
#      decisions (bounded by CPU_LIMIT seconds);
#   3. a table printed last: card, parity verdicts, seconds per seed.
# Outputs land in $OUT (the device tool's folder) or a temp dir. CUDA_LIBS adds library folders
# in front of the ones found (the driver's, and PyTorch's CUDA 13 wheels).
set -uo pipefail
cd "$(dirname "$0")/.."
carry=${CARRY:-target/gpu-carry}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
bin=$out/tenas-cuda
xz -dc "$carry/tenas-cuda.xz" >"$bin" && chmod +x "$bin"

# The driver from the system, CUDA 13 user-space libraries from PyTorch's wheels.
driver=$(ldconfig -p | awk '/libcuda\.so\.1 / {print $NF; exit}')
cu13=$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH="${CUDA_LIBS:+$CUDA_LIBS:}${driver:+$(dirname "$driver"):}${cu13:+$cu13:}${LD_LIBRARY_PATH:-}"
if ldd "$bin" | grep "not found"; then
    echo "missing libraries (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)" >&2
    exit 1
fi
export TENAS_DATA=$PWD/$carry/data TENAS_NB201=$PWD/$carry/data/nb201/nb201_accuracy.csv
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
card=${card:-"no GPU answered nvidia-smi"}

seconds() { # label, then a command; appends "label seconds status" to $out/times.txt
    local label=$1 start end status
    shift
    start=$(date +%s.%N)
    "$@" >"$out/$label.log" 2>&1
    status=$?
    end=$(date +%s.%N)
    awk -v l="$label" -v s="$start" -v e="$end" -v st="$status" \
        'BEGIN { printf "%s %.1f %s\n", l, e - s, st }' | tee -a "$out/times.txt"
}

tiny=experiments/nb201-tiny.toml
paper=experiments/nb201-cifar10.toml
seconds tiny-cpu "$bin" run $tiny --store "$out/cpu" --device cpu --seeds 0,1
seconds tiny-cuda "$bin" run $tiny --store "$out/cuda" --device cuda --seeds 0,1
seconds parity-tiny "$bin" parity "$out/cpu/results/nb201-tiny/latest" \
    "$out/cuda/results/nb201-tiny/latest" --store "$out/cpu"
seconds paper-cuda "$bin" run $paper --store "$out/cuda" --device cuda --seeds 0
seconds paper-cpu timeout "${CPU_LIMIT:-240}" "$bin" run $paper --store "$out/cpu" --device cpu --seeds 0
seconds parity-paper "$bin" parity "$out/cpu/results/nb201-cifar10/latest" \
    "$out/cuda/results/nb201-cifar10/latest" --store "$out/cpu"

echo
echo "== tenas on $card =="
for f in parity-tiny parity-paper; do
    echo "-- $f"
    cat "$out/$f.log"
done
echo "-- found cells (CUDA paper run)"
grep -A3 "found cell" "$out/paper-cuda.log" | head -4
echo "-- search stage seconds (from the run logs)"
grep -h "prune\[seed=[0-9]*\]: done" "$out"/*.log
echo "-- wall seconds per step (label, seconds, exit status)"
cat "$out/times.txt"
while read -r label _ status; do
    if [ "$status" != 0 ]; then
        echo "-- $label failed ($status):"
        grep -v '^ *[0-9]*: \|^ *at ' "$out/$label.log" | tail -3
    fi
done <"$out/times.txt"
