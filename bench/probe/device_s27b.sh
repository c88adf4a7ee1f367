#!/bin/bash
# Session 27, call 2: L2 evict-first policy on the weight streams (decode cp.async and bulk rings, the mid-M
# kernels; GemmOptions::l2_evict_first, default on) and the row-wise act-order pre-gather (gather_rows_kernel:
# each row of A through shared memory). The 4-bit f16 gemm tests (with the normal-policy and the column-gather
# cases), the mid-M 4/8-bit tests (the 8-bit ones copy weights by bulk copy), the 8-bit bf16 gemm tests, the
# gather's negative control (must fail, on act-order weights only), memcheck on every sanitizer case and racecheck
# on the PDL and mid-M sets, then bench_gemm --gather-sweep and --quick (the L2 policy A/B and the 16 MB reader).
# Pack: test_kernels_gemm_b4_f16 test_kernels_pdl_negative_gather test_kernels_sanitize test_kernels_midm_b4
#   test_kernels_midm_b8 bench_gemm_kernels test_kernels_gemm_b8_bf16 (stripped) -> build-s27b/bins.tar.xz
#   run(command="bash bench/probe/device_s27b.sh", carry=["build-s27b"])
# Calls 3 and 4 ran this script again on rebuilt binaries in the same folder (TAG names their result files:
# device_s27c.sh, device_s27d.sh).
DEADLINE=${DEADLINE:-420} DIRS="build-s27b" TAG=${TAG:-s27b}
source bench/probe/device_lib.sh
B=build-s27b
unpack $B
tests gemm_b4_f16 90 $B/test_kernels_gemm_b4_f16
neg_gather 40 $B/test_kernels_pdl_negative_gather
timeout $(left 60) $B/bench_gemm_kernels $O/gather_sweep_${DEV}_${D}_${TAG}.json --gather-sweep > $L/gather_sweep.log 2>&1
st "bench_gemm --gather-sweep rc=$?"; cp $L/gather_sweep.log $O/gather_sweep_${DEV}_${D}_${TAG}.log
timeout $(left 100) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_${TAG}_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_${TAG}_quick.log
tests midm_b4 60 $B/test_kernels_midm_b4
tests midm_b8 60 $B/test_kernels_midm_b8
tests gemm_b8_bf16 90 $B/test_kernels_gemm_b8_bf16
san memcheck all 120 $B/test_kernels_sanitize
san racecheck pdl 60 $B/test_kernels_sanitize "[pdl]"
san racecheck midm 90 $B/test_kernels_sanitize "[midm]"
st done
