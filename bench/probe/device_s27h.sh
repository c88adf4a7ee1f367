#!/bin/bash
# Session 27, last call: the review mends (the row gather's shared-memory limit from the device, the policy from
# createpolicy below sm_90, tests of uneven K splits and of a PDL chain through the row gather, bench_gemm's L2 A/B
# at M <= 16 only): the 4-bit f16 and 3-bit bf16 gemm tests, the gather's negative control, memcheck on every
# sanitizer case, racecheck on the PDL set, then the full bench_gemm for the record.
# Pack: the binaries below (stripped) -> build-s27h/bins.tar.xz;  run(command="bash bench/probe/device_s27h.sh", carry=["build-s27h"])
DEADLINE=${DEADLINE:-420} DIRS="build-s27h"
source bench/probe/device_lib.sh
B=build-s27h
unpack $B
tests gemm_b4_f16 60 $B/test_kernels_gemm_b4_f16
tests gemm_b3_bf16 60 $B/test_kernels_gemm_b3_bf16
neg_gather 40 $B/test_kernels_pdl_negative_gather
san memcheck all 90 $B/test_kernels_sanitize
san racecheck pdl 60 $B/test_kernels_sanitize "[pdl]"
timeout $(left 240) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s27.json > $L/bench_gemm.log 2>&1
st "bench_gemm rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s27.log
st done
