#!/bin/bash
# Session 9, after the decode planner change (binaries prebuilt for sm_90a in build-ring/):
# every gemm test binary's [pdl] chains (the one-slab back-to-back shape is now K = 16384), the full
# 2- and 4-bit fp16 gemm suites (the plans they now run), both PDL negative controls (must FAIL), and
# bench_gemm_kernels --decode (M <= 16, every width, with cuBLAS fp16 in the same run).
#   run(command="bash bench/probe/device_s9_planner.sh", carry=["build-ring"])
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=build-ring
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT | tee -a "$OUT/summary.txt"
mkdir -p /tmp/logs
for t in $B/test_kernels_gemm_*; do
  n=$(basename $t)
  timeout 120 $t "[pdl]" > /tmp/logs/pdl_$n.log 2>&1
  stamp "$n [pdl] rc=$? $(grep -E 'test cases|All tests' /tmp/logs/pdl_$n.log | tail -1)"
done
for n in test_kernels_gemm_b4_f16 test_kernels_gemm_b2_f16; do
  timeout 200 $B/$n > /tmp/logs/full_$n.log 2>&1
  stamp "$n (all cases) rc=$? $(grep -E 'test cases|All tests' /tmp/logs/full_$n.log | tail -1)"
done
for n in test_kernels_pdl_negative test_kernels_pdl_negative_midm; do
  timeout 120 $B/$n "[pdl]" > /tmp/logs/$n.log 2>&1
  stamp "$n [pdl] (must fail) rc=$? $(grep -E 'test cases|assertions' /tmp/logs/$n.log | tail -1)"
done
timeout 240 $B/bench_gemm_kernels "$OUT/kernels_decode.json" --decode > "$OUT/kernels_decode.log" 2>&1
stamp "bench_gemm_kernels --decode rc=$?"
tar czf "$OUT/logs.tgz" -C /tmp/logs .
grep -E "^ *(4|2|3|8)-bit|M= *1 |speedup" "$OUT/kernels_decode.log" | head -5
stamp done
