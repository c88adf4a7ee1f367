#!/bin/bash
# Session 9's batched device call (binaries prebuilt for sm_90a in build-ring/):
#   1. the int8 GPU tests, memcheck + racecheck on [sanitize], bench_int8 at M = 1, 4, 16;
#   2. the [pdl] chain cases of the 2/3/8-bit and bf16 gemm test binaries (mid-M chains included);
#   3. bench_gemm_kernels --decode-sweep (every decode plan at M = 1 and 16).
#   run(command="bash bench/probe/device_s9.sh", carry=["build-ring"])
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=build-ring
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
if [ "${INT8:-1}" = 1 ]; then
  B=$B SAN=1 MS=1,4,16 OUT=$OUT bash bench/probe/device_int8.sh > "$OUT/int8_stdout.txt" 2>&1
  stamp "int8: $(grep -E '^\[' "$OUT/int8_stdout.txt" | tr '\n' ' ')"
fi
for t in $B/test_kernels_gemm_*; do
  n=$(basename $t)
  timeout 120 $t "[pdl]" > "$OUT/pdl_$n.log" 2>&1
  stamp "$n [pdl] rc=$? $(grep -E 'test cases|All tests' "$OUT/pdl_$n.log" | tail -1)"
done
timeout 240 $B/bench_gemm_kernels "$OUT/decode_sweep.json" --decode-sweep > "$OUT/decode_sweep.log" 2>&1
stamp "decode sweep rc=$?"
grep -E "<- planner" "$OUT/decode_sweep.log" | cut -c1-150
stamp done
