#!/bin/bash
# Session 14, first call: persistent decode CTAs (DecodeChoice::persist = 2; the planner does not choose
# them yet). Binaries prebuilt for sm_90a in git-ignored build-s14/:
#   run(command="bash bench/probe/device_s14a.sh", carry=["build-s14"])
# The fourth call (the 8-bit planner constants) ran it as
#   TAG=s14d SAN=0 GREP="^tune 8-bit|^tune 4-bit .*M  1:" TESTS="test_kernels_plan test_kernels_tune
#   test_kernels_sanitize test_kernels_gemm_b8_f16 test_kernels_gemm_b8_bf16 test_kernels_gemm_b4_f16" bash ...
# and the eleventh (the final state) as TAG=s14_final GREP="M  1:" TESTS="test_kernels_plan test_kernels_sanitize
#   test_kernels_tune test_kernels_gemm_b2_f16 test_kernels_gemm_b3_bf16 test_kernels_gemm_b4_f16" bash ...
# (1) tests: the planner host test, forced shapes (every runnable one, persistent included) and tuner,
# persistent hand-made grids (sanitize set), GEMM suites through gemm's default path (the decode epilogue
# was refactored for the persistent variant); (2) bench_gemm_kernels --tune: the tuner's best persistent
# shape against its best other shapes and the planned one, cuBLAS fp16 in the same run; (3) memcheck and
# racecheck on the kernels' sanitize set.
DEADLINE=${DEADLINE:-420} DIRS="build-s14"
source bench/probe/device_lib.sh
B=build-s14
TAG=${TAG:-s14}
tests_list 90 $B ${TESTS:-test_kernels_plan test_kernels_sanitize test_kernels_tune test_kernels_gemm_b4_f16 test_kernels_gemm_b2_f16 test_kernels_gemm_b8_bf16}
timeout $(left 90) $B/bench_gemm_kernels $O/kernels_tune_$TAG.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$?"
cp $L/kernels_tune.log $O/kernels_tune_$TAG.log
grep -E "${GREP:-^tune .* M  [148]:}" $L/kernels_tune.log | sed -E 's/\(([0-9]+) shapes timed, tuning took [0-9.]+ s for all M; //' | cut -c1-260
tail -1 $L/kernels_tune.log
if [[ ${SAN:-1} == 1 ]]; then for tool in memcheck racecheck; do san $tool kernels 100 $B/test_kernels_sanitize; done; fi
st done
