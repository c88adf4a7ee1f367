#!/bin/bash
# Session 25: the mid-M dispatch with both wgmma kernels (plan_midm_wgmma: warp-specialized W64 / W128 where they
# were faster in session 25's first call, lock-step W64ls / W128ls elsewhere). The mid-M GPU tests of every width
# (both kinds of policy), the gemm tests through the planner at 2, 4 and 8 bits, the mid-M PDL negative control,
# memcheck and racecheck on the mid-M sanitizer set, then bench_gemm for the record.
# Build (workstation, build-pack configured as bench/make_pack.sh does), then pack (the carry limit is 64 MiB):
#   for t in test_kernels_midm_b2 test_kernels_midm_b3 test_kernels_midm_b4 test_kernels_midm_b8 test_kernels_sanitize \
#            test_kernels_gemm_b4_f16 test_kernels_gemm_b8_bf16 test_kernels_gemm_b2_f16 test_kernels_pdl_negative_midm \
#            bench_gemm_kernels large_probe; do
#     cmake --build build-pack --target $t -j2; cp $(find build-pack -type f -name $t -perm -u+x) /tmp/b25/; done
#   strip /tmp/b25/*; mkdir -p build-s25; tar cJf build-s25/bins.tar.xz -C /tmp/b25 .
#   run(command="bash bench/probe/device_s25a.sh", carry=["build-s25"])
DEADLINE=${DEADLINE:-570} DIRS="build-s25"
source bench/probe/device_lib.sh
B=build-s25
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests midm_b4 120 $B/test_kernels_midm_b4
tests midm_b8 120 $B/test_kernels_midm_b8
tests midm_b2 120 $B/test_kernels_midm_b2
tests midm_b3 120 $B/test_kernels_midm_b3
tests gemm_b4_f16 150 $B/test_kernels_gemm_b4_f16
tests gemm_b8_bf16 150 $B/test_kernels_gemm_b8_bf16
tests gemm_b2_f16 150 $B/test_kernels_gemm_b2_f16
timeout $(left 60) $B/test_kernels_pdl_negative_midm "[pdl]" > $L/pdl_negative_midm.log 2>&1
st "mid-M PDL negative control rc=$? (must be nonzero) $(last $L/pdl_negative_midm.log)"
san memcheck midm 90 $B/test_kernels_sanitize "[midm]"
san racecheck midm 150 $B/test_kernels_sanitize "[midm]"
timeout $(left 200) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s25.json > $L/bench_gemm.log 2>&1; st "bench_gemm rc=$?"
cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s25.log
st done
