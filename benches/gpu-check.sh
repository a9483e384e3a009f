#!/usr/bin/env bash
# GPU check for the kernels crate: the GPU-vs-CPU checker tests, then the kernel benchmarks,
# with every figure written to ONE file. Budget: under 8 minutes on an H200.
#
#   bash benches/gpu-check.sh            build and run here (a machine with a GPU and Rust)
#   bash benches/gpu-check.sh prepare    build only, into target/gpu-check/ (a machine with Rust,
#                                        no GPU needed): the test and bench binaries, stripped
#   bash benches/gpu-check.sh run        run the binaries in target/gpu-check/ (a GPU machine with no
#                                        Rust toolchain: carry target/gpu-check there)
#
# Output: $OUT/gpu-check.txt when OUT is set, else target/gpu-check.txt. The file holds the
# device, the checker tests' output (each names what it compared) and one `figure:` line per
# benchmark case: median ms, TFLOP/s or GB/s, share of the H200 roofline, GEMM vs cuBLAS.
#
# NVRTC: found through NEGOPT_CUDA_INCLUDE / LD_LIBRARY_PATH if set, else in the CUDA toolkit
# (/usr/local/cuda) or NVIDIA's Python wheels (nvidia/cu13), else fetched with
# kernels/ci/fetch-nvrtc.sh (needs PyPI). The bench binary is built with the dev profile: the
# host code's speed does not enter the figures (CUDA events time the device, and the L2-flush
# memset queued before each start event covers the launch's host overhead), and it avoids a
# release build of the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
stage=target/gpu-check
out_file="${OUT:-target}/gpu-check.txt"

prepare() {
  mkdir -p "$stage"
  local json
  json=$(cargo test -p negopt-kernels --release --lib --no-run --message-format=json 2>/dev/null)
  cp "$(grep -o '"executable":"[^"]*"' <<<"$json" | tail -1 | cut -d'"' -f4)" "$stage/kernels-tests"
  json=$(cargo bench -p negopt-benches --bench kernels --profile dev --no-run --message-format=json 2>/dev/null)
  cp "$(grep -o '"executable":"[^"]*"' <<<"$json" | tail -1 | cut -d'"' -f4)" "$stage/kernels-bench"
  strip "$stage/kernels-tests" "$stage/kernels-bench" 2>/dev/null || true
  ls -la "$stage"
}

find_nvrtc() {
  if [[ -n "${NEGOPT_CUDA_INCLUDE:-}" ]]; then return; fi
  local site
  site=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))' 2>/dev/null || true)
  for root in /usr/local/cuda /usr/local/cuda-13.0 "$site"; do
    [[ -n "$root" && -f "$root/include/cuda_bf16.h" ]] || continue
    for lib in "$root/lib64" "$root/lib" "$root/targets/x86_64-linux/lib"; do
      if [[ -e "$lib/libnvrtc.so.13" ]]; then
        export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export NEGOPT_CUDA_INCLUDE="$root/include:$root/include/cccl"
        return
      fi
    done
  done
  eval "$(bash kernels/ci/fetch-nvrtc.sh)"
}

run() {
  find_nvrtc
  # On a machine with an NVIDIA driver, a test or bench that skips is a failure.
  if command -v nvidia-smi >/dev/null 2>&1; then export NEGOPT_REQUIRE_GPU=1; fi
  mkdir -p "$(dirname "$out_file")"
  : >"$out_file"
  {
    echo "# negopt gpu-check, $(date -u +%Y-%m-%dT%H:%MZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null ||
      echo "no nvidia-smi: no GPU on this machine"
    echo "NVRTC headers: $NEGOPT_CUDA_INCLUDE"
    echo "## checker tests (GPU vs CPU reference)"
  } >>"$out_file"
  local status=0
  # One thread: the tests share the GPU, and their printed comparisons stay in order.
  timeout 240 "$stage/kernels-tests" --test-threads=1 --nocapture 2>&1 | tee -a "$out_file" || status=1
  echo "## benchmarks" >>"$out_file"
  NEGOPT_BENCH_FIGURES="$out_file" timeout 300 "$stage/kernels-bench" --bench 2>&1 | grep -v '^$' || status=1
  echo "gpu-check: figures in $out_file (status $status)"
  return $status
}

case "$mode" in
  prepare) prepare ;;
  run) run ;;
  all) prepare && run ;;
  *) echo "usage: $0 [prepare|run]" >&2; exit 2 ;;
esac
