# tenas: reproducible training-free NAS. `just --list` shows the recipes.

# Build the release binary and run an experiment (extra args go to `tenas run`).
run FILE *ARGS: build
    ./target/release/tenas run {{FILE}} {{ARGS}}

# Release build of the CLI.
build:
    cargo build --release --bin tenas

# The CUDA binary (target/cuda/), built with no GPU or CUDA install (tools/build-cuda.sh).
build-cuda:
    bash tools/build-cuda.sh

# What bench/gpu.sh needs on a GPU machine (CUDA binary, CIFAR-10, NB201 table) in target/gpu-carry.
gpu-carry: build-cuda
    rm -rf target/gpu-carry && mkdir -p target/gpu-carry/data/nb201 target/gpu-carry/data/cifar-10-batches-bin
    cp target/cuda/tenas-cuda.xz target/gpu-carry/
    cp ${TENAS_DATA:-../shared/data}/cifar-10-batches-bin/*.bin target/gpu-carry/data/cifar-10-batches-bin/
    cp ${TENAS_DATA:-../shared/data}/nb201/nb201_accuracy.csv target/gpu-carry/data/nb201/
    du -sh target/gpu-carry

# The whole test suite (CPU, no network), on the real data in ../shared/data (absolute: test
# binaries run in their crate's folder).
test:
    TENAS_DATA="{{justfile_directory()}}/../shared/data" cargo test --workspace

# One paper-setting search (default NB201) in a fresh store: wall time, peak memory.
bench FILE="experiments/nb201-cifar10.toml" *ARGS: build
    bash bench/cpu.sh {{FILE}} {{ARGS}}

# The Slurm executor against the local one on this machine's cluster (tools/slurm-local.sh start).
bench-slurm FILE="experiments/sweep-tiny.toml" *ARGS:
    bash bench/slurm.sh {{FILE}} {{ARGS}}

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Compare runs: experiment files, run ids or results folders (add --plot for SVG/PNG plots).
compare +SOURCES: build
    ./target/release/tenas compare {{SOURCES}}

# What is cached and what would run.
status FILE: build
    ./target/release/tenas status {{FILE}}

# Why stages would rerun.
explain FILE: build
    ./target/release/tenas explain {{FILE}}
