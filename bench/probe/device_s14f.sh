#!/bin/bash
# Session 14, sixth and seventh calls: the decode kernel's two-tiles-per-step loop (2 and 3 bits, M <= 8).
# Binaries in git-ignored build-s14/ (bench_gemm_kernels_base: the commit before, for an A/B in the same call):
#   run(command="bash bench/probe/device_s14f.sh", carry=["build-s14"])                  (first version: pair1)
#   run(command="TAG=pair2 TESTS='test_kernels_sanitize test_kernels_gemm_b3_f16 test_kernels_gemm_b2_bf16' \
#                bash bench/probe/device_s14f.sh", carry=["build-s14"])  (the next pair issued before the wait)
#   run(command="TAG=pair4 WIDTHS=4 TESTS='test_kernels_sanitize test_kernels_gemm_b4_f16 test_kernels_gemm_b4_bf16' \
#                bash bench/probe/device_s14f.sh", carry=["build-s14"])  (4 bits paired too, at M <= 4)
# (1) tests: the sanitize set (paired and unpaired warp ranges), the 2/3-bit GEMM suites in f16 and bf16,
# forced shapes and tuner; (2) bench_gemm_kernels --tune, the commit before and this one (planned 2/3-bit
# times against cuBLAS fp16, same run); (3) memcheck and racecheck on the sanitize set.
DEADLINE=${DEADLINE:-480} DIRS="build-s14"
source bench/probe/device_lib.sh
B=build-s14
TAG=${TAG:-pair}
tests_list 90 $B ${TESTS:-test_kernels_sanitize test_kernels_gemm_b2_f16 test_kernels_gemm_b3_f16 test_kernels_gemm_b2_bf16 test_kernels_gemm_b3_bf16 test_kernels_tune}
for v in base new; do
  bin=$B/bench_gemm_kernels; [[ $v == base ]] && bin=$B/bench_gemm_kernels_base
  timeout $(left 80) $bin $O/kernels_tune_s14_${TAG}_$v.json --tune > $L/tune_$v.log 2>&1; st "--tune $v rc=$?"
  cp $L/tune_$v.log $O/kernels_tune_s14_${TAG}_$v.log
done
paste -d'\n' <(grep -E "^tune [${WIDTHS:-23}]-bit" $L/tune_base.log | cut -c1-64 | sed 's/^/base /') <(grep -E "^tune [${WIDTHS:-23}]-bit" $L/tune_new.log | cut -c1-64 | sed 's/^/new  /') | head -120
for tool in memcheck racecheck; do san $tool kernels 120 $B/test_kernels_sanitize; done
st done
