#!/bin/bash
# Session 27, call 1: the act-order pre-gather with kGatherBatch = 4 chunks a thread (branch wip/gather-batch's
# kernel on top of main: 16 CTAs at M = 16, K = 8192 instead of 64, which did not fit on the SMs the 8192^2 decode
# grid leaves idle) and main's test refactor (check_outputs / check_counters_zero). The 4-bit f16 gemm tests, the
# gather's negative control (must fail, on act-order weights only), memcheck on the PDL sanitizer set, then
# bench_gemm --quick (act-order next to plain weights at M = 1 / 16 / 64 / 1024).
# Pack: test_kernels_gemm_b4_f16 test_kernels_pdl_negative_gather test_kernels_sanitize bench_gemm_kernels
#   (stripped) -> build-s27a/bins.tar.xz;  run(command="bash bench/probe/device_s27a.sh", carry=["build-s27a"])
DEADLINE=${DEADLINE:-300} DIRS="build-s27a"
source bench/probe/device_lib.sh
B=build-s27a
unpack $B
tests gemm_b4_f16 90 $B/test_kernels_gemm_b4_f16
neg_gather 40 $B/test_kernels_pdl_negative_gather
timeout $(left 100) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s27a_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s27a_quick.log
san memcheck pdl 80 $B/test_kernels_sanitize "[pdl]"
st done
