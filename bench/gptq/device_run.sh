#!/usr/bin/env bash
# One device call for the GPTQ module: GPU tests, compute-sanitizer memcheck (+ racecheck on the
# triangular inverse) on the small GPU tests, the benchmark (lowbit GPU solver vs the PyTorch
# transcription, and one K = 53248 solve with its device memory) -> $OUT.
#   run from the repository root:  bash bench/gptq/device_run.sh
# Uses prebuilt binaries from build-gptq-cuda/ when they were carried and run here; else builds them.
set -uo pipefail
OUT="${OUT:-/tmp/gptq-out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/device_run.log") 2>&1
T0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true

TEST=build-gptq-cuda/tests/gptq/test_gptq_gpu
BENCH=build-gptq-cuda/bench/gptq/bench_gptq_gpu
# (Catch2 v2 --list-tests exits with the number of tests, so test for "not killed / not a loader error")
if [ -x "$TEST" ] && [ -x "$BENCH" ]; then "$TEST" --list-tests >/dev/null 2>&1; PREBUILT_RC=$?; else PREBUILT_RC=127; fi
if [ "$PREBUILT_RC" -ge 126 ]; then
  stamp "building on the device"
  cmake -S . -B build-dev -DCMAKE_PREFIX_PATH="$PWD/.deps/root/usr" -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build build-dev --target test_gptq_gpu bench_gptq_gpu -j16 > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
  TEST=build-dev/tests/gptq/test_gptq_gpu
  BENCH=build-dev/bench/gptq/bench_gptq_gpu
fi

stamp "GPU tests"
timeout 90 "$TEST" --durations yes > "$OUT/test_gptq_gpu.log" 2>&1
echo "test_gptq_gpu rc=$?" | tee -a "$OUT/summary.txt"
tail -40 "$OUT/test_gptq_gpu.log"

CLI="${GPTQ_CLI:-}"  # only when a CLI built from this tree is given (GPTQ_CLI=path)
if [ -n "$CLI" ] && [ -x "$CLI" ]; then
  stamp "CLI: lowbit quantize --method gptq on cuda and cpu"
  mkdir -p /tmp/gptq-cli
  timeout 60 python3 bench/gptq/cli_check.py "$CLI" /tmp/gptq-cli > "$OUT/cli_check.log" 2>&1
  echo "cli_check rc=$?" | tee -a "$OUT/summary.txt"
  tail -20 "$OUT/cli_check.log"
fi

stamp "benchmark (lowbit)"
DUMP=/tmp/gptq-dump
mkdir -p "$DUMP"
# PyTorch figures for K = 28672 are reused from the previous run (identical inputs): no need to dump them
export GPTQ_DUMP_MAX_K="${GPTQ_DUMP_MAX_K-8192}"
# device-level memory sampled beside the in-process cudaMemGetInfo figures
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/smi_memory_used_mib.log" 2>/dev/null &
SMI=$!
timeout 170 "$BENCH" "$DUMP" ${GPTQ_SHAPES:-4096:4096 8192:8192 8192:28672 large0:8192:53248 large1:8192:53248} > "$OUT/ours.jsonl" 2> "$OUT/bench_stderr.log"
echo "bench_gptq_gpu rc=$?" | tee -a "$OUT/summary.txt"
kill "$SMI" 2>/dev/null; wait "$SMI" 2>/dev/null
echo "nvidia-smi max memory.used MiB: $(sort -n "$OUT/smi_memory_used_mib.log" | tail -1)" | tee -a "$OUT/summary.txt"
cat "$OUT/ours.jsonl"; tail -5 "$OUT/bench_stderr.log"

stamp "benchmark (PyTorch transcription)"
[ -f bench/results/gptq_h100_2026-11-22.json ] && export GPTQ_REF_REUSE=bench/results/gptq_h100_2026-11-22.json
export GPTQ_REF_REUSE_K="${GPTQ_REF_REUSE_K-28672}"
timeout 90 python3 bench/gptq/reference_gptq.py "$DUMP" "$OUT/ours.jsonl" "$OUT/gptq_h100_2026-11-22.json" \
  > "$OUT/reference.log" 2>&1
echo "reference_gptq rc=$?" | tee -a "$OUT/summary.txt"
tail -12 "$OUT/reference.log"
rm -rf "$DUMP"

stamp "compute-sanitizer memcheck (small GPU tests)"
timeout 70 compute-sanitizer --tool memcheck --error-exitcode 9 "$TEST" \
  "GPU solver: escalation*,GPU solver status*,GPU Hessian*,GPU triangular inverse*" \
  > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$OUT/summary.txt"
tail -15 "$OUT/memcheck.log"
stamp "compute-sanitizer racecheck (triangular inverse: leaf kernel shared memory)"
timeout 40 compute-sanitizer --tool racecheck --error-exitcode 9 "$TEST" "GPU triangular inverse*" \
  > "$OUT/racecheck.log" 2>&1
echo "racecheck rc=$?" | tee -a "$OUT/summary.txt"
tail -8 "$OUT/racecheck.log"
stamp "done"
cat "$OUT/summary.txt"
