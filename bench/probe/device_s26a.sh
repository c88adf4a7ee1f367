#!/bin/bash
# Session 26: the act-order pre-gather launched with PDL in front of the decode and wgmma mid-M kernels
# (gather_columns_kernel: trigger at once, permutation before griddepcontrol.wait, A and Ag after it). The gemm
# tests through the planner (sweeps with act-order, the PDL chains with the pre-gather in them), the mid-M 4-bit
# tests (act-order on every policy), the new negative control (the gather's wait compiled out: its "[pdl]" cases
# must fail), memcheck and racecheck on the PDL and mid-M sanitizer sets, then bench_gemm for the record (act-order
# rows at M = 1 / 16 / 64 / 1024 next to the plain asym rows of the same run).
# Build (workstation, build-pack = sm_90a Release), then pack (the carry limit is 64 MiB):
#   for t in test_kernels_gemm_b4_f16 test_kernels_gemm_b4_bf16 test_kernels_gemm_b8_bf16 test_kernels_gemm_b2_f16 \
#            test_kernels_midm_b4 test_kernels_sanitize test_kernels_pdl_negative_gather bench_gemm_kernels bench_dequant_gemm; do
#     cmake --build build-pack --target $t -j2; cp $(find build-pack -type f -name $t -perm -u+x) /tmp/b26/; done
#   strip /tmp/b26/*; mkdir -p build-s26; tar cJf build-s26/bins.tar.xz -C /tmp/b26 .
#   run(command="bash bench/probe/device_s26a.sh", carry=["build-s26"])
DEADLINE=${DEADLINE:-570} DIRS="build-s26"
source bench/probe/device_lib.sh
B=build-s26
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests gemm_b4_f16 150 $B/test_kernels_gemm_b4_f16
timeout $(left 60) $B/test_kernels_pdl_negative_gather "[pdl]" > $L/pdl_negative_gather.log 2>&1
st "gather PDL negative control rc=$? (must be nonzero) $(last $L/pdl_negative_gather.log)"
st "  failed assertions' context lines naming act-order weights: $(grep -c ' act 1' $L/pdl_negative_gather.log), others: $(grep -c ' act 0' $L/pdl_negative_gather.log)"
# --quick: M = 1 / 16 / 64 / 1024, every variant (act-order next to asym at each M)
timeout $(left 150) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s26_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s26_quick.log
san memcheck pdl 90 $B/test_kernels_sanitize "[pdl]"
san racecheck pdl 120 $B/test_kernels_sanitize "[pdl]"
san memcheck midm 90 $B/test_kernels_sanitize "[midm]"
tests midm_b4 100 $B/test_kernels_midm_b4
tests gemm_b4_bf16 120 $B/test_kernels_gemm_b4_bf16
tests gemm_b8_bf16 120 $B/test_kernels_gemm_b8_bf16
tests gemm_b2_f16 120 $B/test_kernels_gemm_b2_f16
san racecheck midm 120 $B/test_kernels_sanitize "[midm]"
timeout $(left 200) $B/bench_dequant_gemm $O/dequant_gemm_${DEV}_${D}_s26.json > $L/bench_dequant_gemm.log 2>&1
st "bench_dequant_gemm rc=$?"; cp $L/bench_dequant_gemm.log $O/dequant_gemm_${DEV}_${D}_s26.log
st done
