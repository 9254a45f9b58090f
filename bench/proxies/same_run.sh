#!/usr/bin/env bash
# Times the published proxies (torch, reference.py) and ours (the proxy_agreement example) on
# the same cells, one after the other in one run, both on THREADS threads, and prints our
# agreement table with both sides' seconds per cell. Needs the venv and bench/published/ of
# README.md, and a data root (TENAS_DATA or ../shared/data).
#
# Usage: bash bench/proxies/same_run.sh CELLS_FILE OUT_DIR [PROXIES] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
cells=${1:?a file with one NB201 arch string per line}
out=${2:?an output folder}
proxies=${3:-az_nas,zico,naswot,synflow,snip,grad_norm,zen,jacov,fisher,params,flops}
threads=${4:-1}
export TENAS_DATA=${TENAS_DATA:-../shared/data}
mkdir -p "$out"
cargo build --release -q -p tenas-core --example proxy_agreement
start=$(date +%s)
.venv-bench/bin/python bench/proxies/reference.py --cells "$cells" --seed 0 \
    --proxies "$proxies" --threads "$threads" --out "$out/published.csv"
middle=$(date +%s)
RAYON_NUM_THREADS=$threads ./target/release/examples/proxy_agreement \
    "$out/published.csv" "$out/tenas.csv" "$proxies" | tee "$out/agreement.md"
end=$(date +%s)
echo "wall seconds: published $((middle - start)), tenas $((end - middle)) ($threads threads)"
