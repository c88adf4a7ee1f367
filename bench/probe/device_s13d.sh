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
  tests $t 90 $B/$t
done
timeout $(left 60) $B/bench_gemm_kernels $O/kernels_tune_final.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$?"
tail -1 $L/kernels_tune.log
for tool in memcheck racecheck; do san $tool kernels 100 $B/test_kernels_sanitize; done
st done
