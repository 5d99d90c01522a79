#!/usr/bin/env bash
# Builds the PTX the CUDA backend ships, from cuda/src/main/cuda/*.cu, with nvcc 13.0:
#   - virtual architecture compute_75 (the oldest nvcc 13 supports; runs on every GPU Kiln targets, H100 included,
#     through the driver's JIT);
#   - the ".version" line rewritten to 8.0, the PTX ISA of CUDA 12.0, so drivers for CUDA 12.0+ load it
#     (nvcc 13 writes 9.0, which a CUDA 12 driver refuses); ptxas --gpu-name sm_75 then checks that the kernels use
#     nothing newer than ISA 8.0;
#   - -fmad=false: no fused multiply-adds, so element-wise results match the Java CPU backend bit for bit.
# Usage: tools/build-ptx.sh [output-dir]   (default: cuda/src/main/resources/dev/kiln/cuda)
# The test PtxResourcesTest runs this into a temporary directory and compares with the shipped files.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/cuda/src/main/cuda"
out="${1:-$root/cuda/src/main/resources/dev/kiln/cuda}"
NVCC="${NVCC:-nvcc}"
PTXAS="${PTXAS:-ptxas}"
PTX_ISA=8.0
command -v "$NVCC" >/dev/null || { echo "build-ptx: nvcc not found (set NVCC)" >&2; exit 2; }
want="release 13.0"
if ! "$NVCC" --version | grep -q "$want"; then
  echo "build-ptx: expected nvcc $want, found: $("$NVCC" --version | tail -2 | head -1)" >&2
  exit 2
fi
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for cu in "$src"/*.cu; do
  name="$(basename "$cu" .cu)"
  "$NVCC" -ptx -arch=compute_75 -O3 -fmad=false -std=c++17 -o "$tmp/$name.ptx" "$cu"
  # PTX ISA of CUDA 12.0; ptxas below proves nothing newer is used.
  sed -i -E "s/^\.version [0-9]+\.[0-9]+$/.version $PTX_ISA/" "$tmp/$name.ptx"
  grep -q "^\.version $PTX_ISA$" "$tmp/$name.ptx" || { echo "build-ptx: no .version line in $name.ptx" >&2; exit 1; }
  grep -q "^\.target sm_75$" "$tmp/$name.ptx" || { echo "build-ptx: $name.ptx does not target sm_75" >&2; exit 1; }
  if command -v "$PTXAS" >/dev/null; then
    "$PTXAS" --gpu-name sm_75 -o "$tmp/$name.cubin" "$tmp/$name.ptx"
  else
    echo "build-ptx: ptxas not found, $name.ptx not checked" >&2
  fi
  cp "$tmp/$name.ptx" "$out/$name.ptx"
  echo "build-ptx: $out/$name.ptx"
done
