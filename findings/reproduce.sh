#!/usr/bin/env bash
# Reruns the ablation behind FINDINGS.md, the same files and seeds, and regenerates its tables,
# report and plots under findings/cifar10 and findings/cifar100.
#
# CIFAR-10 runs need a data root holding all five training batches: the official download
# (what `tenas run` fetches into the user cache) or, as the findings used, the JPEG-derived
# copy that ../shared/data/cifar10/tools/jpeg_to_cifar_bin.py writes (its first batch is
# byte-identical to ../shared/data/cifar-10-batches-bin/data_batch_1.bin). The default pool is
# the first 10,000 images (`dataset.limit`), i.e. data_batch_1. CIFAR-100 runs need
# cifar-100-binary/train.bin; the findings used the 10,000-image one of ../shared/data.
#
# Usage: bash findings/reproduce.sh CIFAR10_ROOT CIFAR100_ROOT [STORE]
# About 8 hours on 2 cores, 4.5 of them the full NTK. The findings were made at commit 1312a44;
# later commits find the same cells under other artifact keys (FINDINGS.md, "Commit and determinism").
set -euo pipefail
cd "$(dirname "$0")/.."
c10=${1:?a data root with cifar-10-batches-bin/data_batch_1..5.bin}
c100=${2:?a data root with cifar-100-binary/train.bin}
store=${3:-artifacts}
cargo build --release --bin tenas -q
tenas() { ./target/release/tenas "$@"; }
run() {  # data-root file seeds
    TENAS_DATA=$1 tenas -q run "experiments/ablation/$2" --store "$store" --seeds "$3"
}
run "$c10" cifar10-init.toml 0..10
run "$c10" cifar10-augment.toml 0..10
run "$c10" cifar10-pool.toml 0..10
run "$c10" cifar10-sampling.toml 0..10
run "$c10" cifar10-ntk.toml 0..10
run "$c100" cifar100.toml 0..10
report() {  # experiment-file out-folder
    rm -rf "$2" && mkdir -p "$2"
    tenas -q compare "$1" --store "$store" --plot --out "$2" > "$2/report.txt"
}
report experiments/ablation/cifar10-init.toml findings/cifar10
report experiments/ablation/cifar100.toml findings/cifar100
