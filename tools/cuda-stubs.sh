#!/usr/bin/env bash
# Link-time stand-ins for the CUDA driver and libraries cudarc links by name: shared objects
# with the real sonames that define every function cudarc's bindings declare. The binary then
# loads the real libraries on the GPU machine. Usage: tools/cuda-stubs.sh CUDARC_SRC OUT_DIR
set -euo pipefail
src=$1
out=$2
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stub() { # cudarc module, soname, file name
    local names="$work/$1.txt"
    grep -ohE 'pub (unsafe )?fn [A-Za-z0-9_]+' "$src/src/$1/sys/mod.rs" \
        | awk '{print $NF}' | sort -u >"$names"
    if [ ! -s "$names" ]; then
        echo "no functions found in $src/src/$1/sys/mod.rs" >&2
        exit 1
    fi
    awk '{print "int " $1 "(void) { return 999; }"}' "$names" >"$work/$1.c"
    cc -shared -fPIC -Wl,-soname,"$2" -o "$out/$3" "$work/$1.c"
}
stub driver libcuda.so.1 libcuda.so
stub cublas libcublas.so.13 libcublas.so
stub cublaslt libcublasLt.so.13 libcublasLt.so
stub curand libcurand.so.10 libcurand.so
stub nvrtc libnvrtc.so.13 libnvrtc.so
