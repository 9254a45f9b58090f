# tenas: reproducible training-free NAS. `just --list` shows the recipes.

# Build the release binary and run an experiment (extra args go to `tenas run`).
run FILE *ARGS: build
    ./target/release/tenas run {{FILE}} {{ARGS}}

# Release build of the CLI.
build:
    cargo build --release --bin tenas

# The CUDA binary (target/cuda/release/tenas, and an .xz to carry), built without a GPU or a
# CUDA install: fetches nvcc from PyPI, links against stubs (see tools/build-cuda.sh).
build-cuda:
    bash tools/build-cuda.sh

# What bench/gpu.sh needs on the GPU machine, in one git-ignored folder to carry: the xz'd
# CUDA binary, CIFAR-10 and the NB201 table from the data root (TENAS_DATA, else ../shared/data).
gpu-carry: build-cuda
    rm -rf target/gpu-carry && mkdir -p target/gpu-carry/data/nb201 target/gpu-carry/data/cifar-10-batches-bin
    cp target/cuda/tenas-cuda.xz target/gpu-carry/
    cp ${TENAS_DATA:-../shared/data}/cifar-10-batches-bin/*.bin target/gpu-carry/data/cifar-10-batches-bin/
    cp ${TENAS_DATA:-../shared/data}/nb201/nb201_accuracy.csv target/gpu-carry/data/nb201/
    du -sh target/gpu-carry

# The whole test suite (CPU, no network; reads ../shared/data where a test needs real data).
test:
    cargo test --workspace

# Paper-setting benchmarks: times the searches and records peak memory (see BENCHMARKS.md).
bench: build
    bash bench/cpu.sh

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
