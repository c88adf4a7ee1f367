#!/bin/bash
# Session 14, fourth call: the decode planner with the 8-bit constants (kBusiestWeight 0.4, kCtaWarps 0.6 for
# the memory-bound width) and persistent CTAs as a forced / tuned variant. Binaries prebuilt in git-ignored
# build-s14/:  run(command="bash bench/probe/device_s14d.sh", carry=["build-s14"])
# (1) the planner host test, forced shapes and the tuner, the sanitize set, the 8-bit GEMM suites through
# gemm's default path (its plans changed) and the 4-bit one; (2) bench_gemm_kernels --tune (planned against
# tuned and cuBLAS fp16 in the same run).
DEADLINE=${DEADLINE:-400} DIRS="build-s14"
source bench/probe/device_lib.sh
B=build-s14
for t in test_kernels_plan test_kernels_tune test_kernels_sanitize test_kernels_gemm_b8_f16 test_kernels_gemm_b8_bf16 \
         test_kernels_gemm_b4_f16; do
  [[ -x $B/$t ]] && tests $t 90 $B/$t
done
timeout $(left 90) $B/bench_gemm_kernels $O/kernels_tune_s14d.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$?"
cp $L/kernels_tune.log $O/kernels_tune_s14d.log
grep -E "^tune 8-bit" $L/kernels_tune.log | sed -E 's/\(([0-9]+) shapes timed, tuning took [0-9.]+ s for all M; //' | cut -c1-200
grep -E "^tune 4-bit .*M  1:" $L/kernels_tune.log | cut -c1-160
tail -1 $L/kernels_tune.log
st done
