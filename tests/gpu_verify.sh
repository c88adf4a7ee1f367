#!/bin/bash
# Whole-project check on a GPU machine: build everything for the local GPU, run every ctest labelled
# `gpu`, then compute-sanitizer (memcheck + racecheck) over each module's reduced GPU test set and a
# small `lowbit demo`. CI has no GPU, so this is what proves the CUDA code after a kernel change.
#
# usage (repo root, on a machine with a GPU, Catch2 + nlohmann/json findable through CMAKE_PREFIX_PATH):
#   tests/gpu_verify.sh [BUILD_DIR] [CUDA_ARCH]     (defaults: build-gpu, 90a)
# PHASE=tests runs only the build and the tests, PHASE=sanitize only compute-sanitizer on an existing
# build (for machines whose calls are time-limited); default: both.
# Logs and summary.txt go to $OUT (default /tmp/lowbit-gpu-verify). Exit status: 0 only if all passed.
set -u
OUT=${OUT:-/tmp/lowbit-gpu-verify}
BUILD=${1:-build-gpu}
ARCH=${2:-90a}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
T0=$(date +%s)
failures=0
note() { echo "$*" | tee -a "$SUMMARY"; }
check() {  # check NAME RC
  if [ "$2" -eq 0 ]; then note "PASS $1"; else note "FAIL $1 (rc=$2)"; failures=$((failures + 1)); fi
}

PHASE=${PHASE:-all}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$SUMMARY"
if [ "$PHASE" != sanitize ]; then
PREFIX=""
[ -d .deps/root/usr ] && PREFIX="-DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr"
cmake -S . -B "$BUILD" $PREFIX -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_BUILD_TYPE=Release \
  -DLOWBIT_BUILD_DOCS=OFF > "$OUT/configure.log" 2>&1
check configure $?
cmake --build "$BUILD" -j"$(nproc)" > "$OUT/build.log" 2>&1
rc=$?
check build $rc
[ $rc -eq 0 ] || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
note "build: $(( $(date +%s) - T0 )) s"

(cd "$BUILD" && ctest -L gpu --output-on-failure -j2 > "$OUT/ctest_gpu.log" 2>&1)
check "ctest -L gpu: $(grep -E 'tests passed' "$OUT/ctest_gpu.log")" $?
grep -E "\(Failed\)|\(Timeout\)|\*\*\*" "$OUT/ctest_gpu.log" | tee -a "$SUMMARY"
note "gpu tests: $(( $(date +%s) - T0 )) s"
fi

# compute-sanitizer: each module's reduced set (small shapes, every code path).
san() {  # san TOOL NAME BINARY [ARGS...]
  local tool=$1 name=$2; shift 2
  timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 9 "$@" > "$OUT/${tool}_${name}.log" 2>&1
  local rc=$?
  check "$tool $name: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_${name}.log" | tail -1)" $rc
}
B=$BUILD/tests
[ "$PHASE" = tests ] && { note "total: $(( $(date +%s) - T0 )) s, failures: $failures"; [ $failures -eq 0 ]; exit; }
for tool in memcheck racecheck; do
  san $tool kernels "$B/kernels/test_kernels_sanitize"
  san $tool int8 "$B/int8/test_int8_gpu" "[sanitize]"
  san $tool gptq "$B/gptq/test_gptq_gpu" "GPU solver: escalation*,GPU solver status*,GPU Hessian*,GPU triangular inverse*"
  san $tool dequant_gemm "$B/dequant_gemm/test_dequant_gemm" "[sanitize]"
  san $tool linear "$B/linear/test_linear" "[sanitize]"
done
san memcheck demo "$BUILD/examples/lowbit/lowbit" demo --n 256 --k 512 --m 64
note "total: $(( $(date +%s) - T0 )) s, failures: $failures"
[ $failures -eq 0 ]
