#!/bin/bash
# Session 14, eighth call: the two-tiles-per-step loop as landed (2 bits at M <= 8, 3 bits at M <= 4).
# Binaries in git-ignored build-s14/:  run(command="bash bench/probe/device_s14h.sh", carry=["build-s14"]); the
# tenth call, after the review mends: TESTS="test_kernels_sanitize test_kernels_tune test_kernels_gemm_b2_f16"
# The sanitize set (paired and one-tile warp ranges at 2 and 3 bits), the 2/3/4/8-bit GEMM suites (the
# accumulator loops became one helper), forced shapes and the tuner (two slabs, persistent), memcheck and
# racecheck on the sanitize set.
DEADLINE=${DEADLINE:-360} DIRS="build-s14"
source bench/probe/device_lib.sh
B=build-s14
tests_list 90 $B ${TESTS:-test_kernels_sanitize test_kernels_gemm_b2_f16 test_kernels_gemm_b3_f16 test_kernels_gemm_b3_bf16 test_kernels_gemm_b4_f16 test_kernels_gemm_b8_bf16 test_kernels_tune}
for tool in memcheck racecheck; do san $tool kernels 120 $B/test_kernels_sanitize; done
st done
