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
