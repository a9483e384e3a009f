#!/usr/bin/env bash
# Fetch NVIDIA's CUDA 13.0 NVRTC (+ the headers it needs) from PyPI wheels, so the kernels crate
# can compile every .cu file for compute_80 / sm_90a on a machine with no GPU and no CUDA toolkit.
#
# Usage:   eval "$(bash kernels/ci/fetch-nvrtc.sh [CACHE_DIR])"
# Default CACHE_DIR is .cache/nvrtc (relative to the current directory). Re-running is cheap: the
# wheels are downloaded and unpacked once. Progress goes to stderr; stdout carries only the
# `export` lines (LD_LIBRARY_PATH for libnvrtc.so.13, NEGOPT_CUDA_INCLUDE for the headers).
set -euo pipefail

cache="${1:-.cache/nvrtc}"
mkdir -p "$cache/wheels" "$cache/root"
cache="$(cd "$cache" && pwd)"

# Pinned versions: the CUDA 13.0 toolchain that matches cudarc's `cuda-13000` feature.
wheels=(
  "nvidia-cuda-nvrtc==13.0.88"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-cccl==13.0.85"
  "nvidia-cuda-crt==13.0.88"
)

stamp="$cache/root/.unpacked-$(printf '%s\n' "${wheels[@]}" | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --python-version 3.11 --dest "$cache/wheels" "${wheels[@]}" >&2
  for whl in "$cache"/wheels/*.whl; do
    python3 -m zipfile -e "$whl" "$cache/root" >&2
  done
  touch "$stamp"
fi

# The wheels unpack under nvidia/cu13 (13.x layout) or nvidia/cuda_nvrtc (older layout); find
# the real folders instead of guessing.
lib="$(dirname "$(find "$cache/root" -name 'libnvrtc.so.13*' -print -quit)")"
if [[ -z "$lib" || "$lib" == "." ]]; then
  echo "fetch-nvrtc: libnvrtc.so.13 not found under $cache/root" >&2
  exit 2
fi
# libnvrtc is dlopened by cudarc under the plain soname; make sure that name exists.
if [[ ! -e "$lib/libnvrtc.so.13" ]]; then
  ln -sf "$(basename "$(find "$lib" -name 'libnvrtc.so.13*' -print -quit)")" "$lib/libnvrtc.so.13"
fi
if [[ ! -e "$lib/libnvrtc.so" ]]; then
  ln -sf libnvrtc.so.13 "$lib/libnvrtc.so"
fi

# The headers sit beside lib/: include/ (cuda_bf16.h, crt/, cooperative_groups/) and
# include/cccl (cuda/std, used by the bf16 headers under NVRTC).
inc="$(dirname "$lib")/include"
if [[ ! -f "$inc/cuda_bf16.h" ]]; then
  echo "fetch-nvrtc: cuda_bf16.h not found in $inc" >&2
  exit 2
fi
inc="$inc:$inc/cccl"

echo "export LD_LIBRARY_PATH=\"$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
echo "export NEGOPT_CUDA_INCLUDE=\"$inc\""
