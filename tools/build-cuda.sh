#!/usr/bin/env bash
# Builds the CUDA binary on a machine with neither a GPU nor a CUDA install:
#   target/cuda/release/tenas  and  target/cuda/tenas-cuda.xz (to carry to the GPU machine).
# nvcc, its headers and cudart come from NVIDIA's PyPI wheels, pinned to CUDA 13.0 (PTX from a
# newer nvcc does not load on a 13.0 driver); the driver and the math libraries are link-time
# stubs (tools/cuda-stubs.sh). At run time the binary needs the real libcuda.so.1, libcudart,
# libcublas(Lt), libcurand and libnvrtc (CUDA 13) on LD_LIBRARY_PATH.
# CUDA_COMPUTE_CAP picks the GPU generation (default 90: H100/H200).
set -euo pipefail
cd "$(dirname "$0")/.."
sdk=${TENAS_CUDA_SDK:-$PWD/target/cuda-sdk}
cuda=$sdk/nvidia/cu13
if [ ! -x "$cuda/bin/nvcc" ]; then
    echo "fetching nvcc and headers (CUDA 13.0 wheels from PyPI) into $sdk"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$sdk" \
        nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
fi
# The wheels ship versioned sonames only; the linker looks for the plain names.
ln -sf libcudart.so.13 "$cuda/lib/libcudart.so"

cargo fetch --locked --quiet
version=$(awk '/^name = "cudarc"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
cudarc=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "cudarc-$version" | head -1)
[ -n "$cudarc" ] || { echo "cudarc $version sources not found after cargo fetch" >&2; exit 1; }
bash tools/cuda-stubs.sh "$cudarc" "$cuda/lib/stubs"

export CUDA_HOME=$cuda NVCC=$cuda/bin/nvcc PATH=$cuda/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
CARGO_TARGET_DIR=target/cuda cargo build --release --locked --features cuda --bin tenas
xz -T0 -6 -c target/cuda/release/tenas >target/cuda/tenas-cuda.xz
ls -l target/cuda/release/tenas target/cuda/tenas-cuda.xz
