#!/bin/bash
# Session 13, fourth call: the decode planner with the per-CTA term on one-slab plans (kCtaWarps), from
# binaries prebuilt in git-ignored build-s13/:
#   run(command="bash bench/probe/device_s13d.sh", carry=["build-s13"])
# (1) the GEMM suites through gemm's default path (every width, f16; 4-bit bf16), the tuner and the
# layer tests; (2) bench_gemm_kernels --tune (planned against tuned, cuBLAS fp16, same run);
# (3) memcheck and racecheck on the kernels' sanitize set.
DEADLINE=420 DIRS="build-s13"
source bench/probe/device_lib.sh
B=build-s13
for t in test_kernels_gemm_b4_f16 test_kernels_gemm_b4_bf16 test_kernels_gemm_b2_f16 test_kernels_gemm_b3_f16 \
         test_kernels_gemm_b8_f16 test_kernels_tune test_linear; do
  timeout $(left 90) $B/$t > $L/$t.log 2>&1; st "$t rc=$? $(last $L/$t.log)"
  grep -B3 -A12 "FAILED" $L/$t.log | head -30
done
timeout $(left 60) $B/bench_gemm_kernels $O/kernels_tune_final.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$?"
tail -1 $L/kernels_tune.log
for tool in memcheck racecheck; do
  timeout $(left 100) compute-sanitizer --tool $tool --error-exitcode 9 $B/test_kernels_sanitize > $L/${tool}.log 2>&1
  st "$tool kernels rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|test cases' $L/${tool}.log | tail -2 | tr '\n' ' ')"
done
st done
