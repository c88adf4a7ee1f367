#!/bin/bash
# Session 13, one call from binaries prebuilt in git-ignored build-s13/ (COMMIT names their commit):
#   run(command="bash bench/probe/device_s13a.sh", carry=["build-s13"])
# (1) the fused int8 activation pass: its tests, then bench_int8 at M = 1, 4 (fused and separate layer in
# the same run); (2) the ring_access probe; (3) all int8 GPU tests, memcheck on the [sanitize] set;
# (4) main's 4-bit GEMM tests (the two-slab decode rule through gemm's default path), where built.
DEADLINE=420 DIRS="build-s13"
source bench/probe/device_lib.sh
B=build-s13
tests fused_tests 60 $B/test_int8_gpu "*inside the ring kernel*,*non-finite activations in every*"
timeout $(left 110) stdbuf -oL $B/bench_int8 $O/int8_s13.json --ms=1,4 > $L/int8_bench.log 2>&1; st "int8 bench rc=$?"
grep -E "^K=|layer|M=|fused" $L/int8_bench.log | head -60
timeout $(left 45) $B/ring_access $O/ring_access.json > $L/ring_access.log 2>&1; st "ring_access rc=$?"
cat $L/ring_access.log
tests int8_tests 90 $B/test_int8_gpu
san memcheck int8 80 $B/test_int8_gpu "[sanitize]"
[ -x $B/test_kernels_gemm_b4_f16 ] && tests gemm_b4 50 $B/test_kernels_gemm_b4_f16
st done
