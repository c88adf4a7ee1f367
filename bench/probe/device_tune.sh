#!/bin/bash
# Decode tuner (branch wip/decode-tune), one device call. Binaries prebuilt for sm_90a here and copied to
# a git-ignored folder, e.g. build-tune/ (test_kernels_tune, test_linear, test_kernels_plan,
# test_kernels_gemm_b4_f16, bench_gemm_kernels, COMMIT):
#   run(command="B=build-tune bash bench/probe/device_tune.sh", carry=["build-tune"])
# Steps in order of value, each given what is left of a 570 s deadline (STEPS=tests,bench,san picks some):
# 1. tests: forced decode shapes (every runnable shape, one and two slabs per CTA, vs the host reference),
#    refusals, tune_decode, the layer's tune / set_decode_tuning; the planner host test; the 4-bit f16 gemm
#    suite (default path unchanged);
# 2. bench: bench_gemm_kernels --tune (tuned vs planned shapes and cuBLAS fp16, same run, JSON in $OUT); then
#    the 4-bit plan sweep with one and two slabs per CTA;
# 3. san: compute-sanitizer memcheck + racecheck on the forced-shape (two-slab kernels included) and tuner cases.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=${B:-build-tune}; STEPS=${STEPS:-tests,bench,san}
DEADLINE=${DEADLINE:-570}
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
left() { local l=$(( DEADLINE - ($(date +%s) - T0) )); (( l > $1 )) && l=$1; (( l < 1 )) && l=1; echo $l; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
mkdir -p /tmp/logs
trap 'tar czf "$OUT/logs.tgz" -C /tmp/logs . 2>/dev/null' EXIT
last() { grep -E 'test cases|All tests' "$1" | tail -1; }
if [[ $STEPS == *tests* ]]; then
timeout $(left 60) $B/test_kernels_plan > /tmp/logs/plan.log 2>&1; stamp "test_kernels_plan rc=$? $(last /tmp/logs/plan.log)"
timeout $(left 200) $B/test_kernels_tune > /tmp/logs/tune.log 2>&1; stamp "test_kernels_tune rc=$? $(last /tmp/logs/tune.log)"
timeout $(left 120) $B/test_linear "[tune]" > /tmp/logs/linear_tune.log 2>&1; stamp "test_linear [tune] rc=$? $(last /tmp/logs/linear_tune.log)"
timeout $(left 120) $B/test_kernels_gemm_b4_f16 > /tmp/logs/gemm_b4.log 2>&1; stamp "test_kernels_gemm_b4_f16 rc=$? $(last /tmp/logs/gemm_b4.log)"
fi
if [[ $STEPS == *bench* ]]; then
timeout $(left 200) $B/bench_gemm_kernels "$OUT/kernels_tune.json" --tune > "$OUT/kernels_tune.log" 2>&1
stamp "bench_gemm_kernels --tune rc=$? $(tail -1 $OUT/kernels_tune.log)"
# every plan, one and two slabs, 4-bit on the three large shapes at M = 1 and 16, with and without PDL
timeout $(left 200) $B/bench_gemm_kernels "$OUT/decode_sweep_slabs.json" --decode-sweep > "$OUT/decode_sweep_slabs.log" 2>&1
stamp "bench_gemm_kernels --decode-sweep rc=$?"
fi
if [[ $STEPS == *san* ]]; then
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
san() {  # tool, log name, test case
  timeout $(left 240) $CS --tool $1 --error-exitcode 9 $B/test_kernels_tune "$3" > /tmp/logs/san_$1_$2.log 2>&1
  stamp "$1 $2 rc=$? $(grep -E 'ERROR SUMMARY' /tmp/logs/san_$1_$2.log | tail -1)"
}
for tool in memcheck racecheck; do  # every shape, the two-slab kernels included
  san $tool shapes "gemm with a forced decode shape: every runnable shape matches the host reference"
done
for tool in memcheck racecheck; do
  san $tool refusals "gemm with a forced decode shape: refusals name the problem"
  san $tool tune_bad "tune_decode refuses bad requests"
done
fi
stamp done
