#!/bin/bash
# Decode tuner (branch wip/decode-tune), one device call. Binaries prebuilt for sm_90a here and copied to
# a git-ignored folder, e.g. build-tune/ (test_kernels_tune, test_linear, test_kernels_plan,
# test_kernels_gemm_b4_f16, bench_gemm_kernels, COMMIT):
#   run(command="B=build-tune bash bench/probe/device_tune.sh", carry=["build-tune"])
# 1. forced decode shapes (every runnable shape, one and two slabs per CTA, vs the host reference), refusals, tune_decode, the layer's
#    tune / set_decode_tuning; the planner host test; the 4-bit f16 gemm suite (default path unchanged);
# 2. compute-sanitizer memcheck + racecheck on the forced-shape (two-slab kernels included) and tuner cases;
# 3. bench_gemm_kernels --tune: tuned vs planned shapes and cuBLAS fp16, same run (JSON in $OUT); then the
#    4-bit plan sweep with one and two slabs per CTA.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=${B:-build-tune}
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
mkdir -p /tmp/logs
last() { grep -E 'test cases|All tests' "$1" | tail -1; }
timeout 60 $B/test_kernels_plan > /tmp/logs/plan.log 2>&1; stamp "test_kernels_plan rc=$? $(last /tmp/logs/plan.log)"
timeout 300 $B/test_kernels_tune > /tmp/logs/tune.log 2>&1; stamp "test_kernels_tune rc=$? $(last /tmp/logs/tune.log)"
timeout 200 $B/test_linear "[tune]" > /tmp/logs/linear_tune.log 2>&1; stamp "test_linear [tune] rc=$? $(last /tmp/logs/linear_tune.log)"
timeout 200 $B/test_kernels_gemm_b4_f16 > /tmp/logs/gemm_b4.log 2>&1; stamp "test_kernels_gemm_b4_f16 rc=$? $(last /tmp/logs/gemm_b4.log)"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  timeout 240 $CS --tool $tool --error-exitcode 9 $B/test_kernels_tune "gemm with a forced decode shape: refusals name the problem" \
    > /tmp/logs/san_${tool}_refusals.log 2>&1
  stamp "$tool refusals rc=$? $(grep -E 'ERROR SUMMARY' /tmp/logs/san_${tool}_refusals.log | tail -1)"
  timeout 240 $CS --tool $tool --error-exitcode 9 $B/test_kernels_tune "tune_decode refuses bad requests" \
    > /tmp/logs/san_${tool}_tune_bad.log 2>&1
  stamp "$tool tune_decode refusals rc=$? $(grep -E 'ERROR SUMMARY' /tmp/logs/san_${tool}_tune_bad.log | tail -1)"
done
for tool in memcheck racecheck; do  # every shape, the two-slab kernels included
  timeout 300 $CS --tool $tool --error-exitcode 9 $B/test_kernels_tune "gemm with a forced decode shape: every runnable shape matches the host reference" \
    > /tmp/logs/san_${tool}_shapes.log 2>&1
  stamp "$tool every shape rc=$? $(grep -E 'ERROR SUMMARY' /tmp/logs/san_${tool}_shapes.log | tail -1)"
done
timeout 300 $B/bench_gemm_kernels "$OUT/kernels_tune.json" --tune > "$OUT/kernels_tune.log" 2>&1
stamp "bench_gemm_kernels --tune rc=$? $(tail -1 $OUT/kernels_tune.log)"
# every plan, one and two slabs, 4-bit on the three large shapes at M = 1 and 16, with and without PDL
timeout 240 $B/bench_gemm_kernels "$OUT/decode_sweep_slabs.json" --decode-sweep > "$OUT/decode_sweep_slabs.log" 2>&1
stamp "bench_gemm_kernels --decode-sweep rc=$?"
tar czf "$OUT/logs.tgz" -C /tmp/logs .
stamp done
