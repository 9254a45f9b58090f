#!/usr/bin/env bash
# Reruns the ablation behind FINDINGS.md and regenerates its tables and plots.
#
# CIFAR-10 runs need a data root holding all five training batches: the official download
# (what `tenas run` fetches into the user cache) or, as the findings used, the JPEG-derived
# copy that ../shared/data/cifar10/tools/jpeg_to_cifar_bin.py writes (its first batch is
# byte-identical to ../shared/data/cifar-10-batches-bin/data_batch_1.bin). The default pool is
# the first 10,000 images (`dataset.limit`), i.e. data_batch_1.
#
# Usage: bash findings/reproduce.sh CIFAR10_ROOT CIFAR100_ROOT [STORE]
# About 8 CPU-hours on 2 cores without the full-Jacobian NTK file, which alone takes longer.
set -euo pipefail
cd "$(dirname "$0")/.."
c10=${1:?a data root with cifar-10-batches-bin/data_batch_1..5.bin}
c100=${2:?a data root with cifar-100-binary/train.bin}
store=${3:-artifacts}
cargo build --release --bin tenas -q
tenas() { ./target/release/tenas "$@"; }
for factor in init augment pool sampling; do
    TENAS_DATA=$c10 tenas -q run "experiments/ablation/cifar10-$factor.toml" --store "$store"
done
TENAS_DATA=$c10 tenas -q run experiments/ablation/cifar10-best.toml --store "$store"
TENAS_DATA=$c100 tenas -q run experiments/ablation/cifar100.toml --store "$store"
TENAS_DATA=$c100 tenas -q run experiments/ablation/cifar100-best.toml --store "$store"
TENAS_DATA=$c10 tenas -q run experiments/ablation/cifar10-ntk.toml --store "$store"
tenas compare experiments/ablation/cifar10-init.toml --store "$store" --plot --out findings/cifar10
tenas compare experiments/ablation/cifar100.toml --store "$store" --plot --out findings/cifar100
