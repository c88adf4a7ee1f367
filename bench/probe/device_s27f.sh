#!/bin/bash
# Session 27, call 6: call 5's 3-bit mid-M tests hit "illegal instruction" in the warp-specialized wgmma mid-M kernel
# with hinted copies, so only the decode kernel keeps the L2 evict-first policy. The mid-M tests of every width, the
# 4-bit f16 and 8-bit bf16 gemm tests, memcheck on every sanitizer case, racecheck on the mid-M set, then
# bench_gemm --quick for the record of the merged state.
# Pack: the binaries below (stripped) -> build-s27f/bins.tar.xz;  run(command="bash bench/probe/device_s27f.sh", carry=["build-s27f"])
DEADLINE=${DEADLINE:-400} DIRS="build-s27f"
source bench/probe/device_lib.sh
B=build-s27f
unpack $B
for t in midm_b3 midm_b2 midm_b4 midm_b8 gemm_b4_f16 gemm_b8_bf16; do tests $t 60 $B/test_kernels_$t; done
san memcheck all 90 $B/test_kernels_sanitize
san racecheck midm 60 $B/test_kernels_sanitize "[midm]"
timeout $(left 100) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s27f_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s27f_quick.log
st done
