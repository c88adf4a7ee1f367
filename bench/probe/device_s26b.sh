#!/bin/bash
# Session 26, second call: the act-order pre-gather with kGatherBatch = 4 chunks a thread (a grid of 16 CTAs at
# M = 16, K = 8192, where the first call's 64 CTAs did not fit on the SMs the decode kernel leaves idle and the PDL
# overlap was lost: act-order 25.0 against 19.1 us). The 4-bit f16 gemm tests (sweeps, PDL chains, act-order
# back-to-back), the gather's negative control, then bench_gemm --quick.
# Pack: test_kernels_gemm_b4_f16 test_kernels_pdl_negative_gather bench_gemm_kernels -> build-s26b/bins.tar.xz
#   run(command="bash bench/probe/device_s26b.sh", carry=["build-s26b"])
DEADLINE=${DEADLINE:-200} DIRS="build-s26b"
source bench/probe/device_lib.sh
B=build-s26b
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests gemm_b4_f16 60 $B/test_kernels_gemm_b4_f16
timeout $(left 40) $B/test_kernels_pdl_negative_gather "[pdl]" > $L/pdl_negative_gather.log 2>&1
st "gather PDL negative control rc=$? (must be nonzero) $(last $L/pdl_negative_gather.log)"
st "  failed assertions' context lines naming act-order weights: $(grep -c ' act 1' $L/pdl_negative_gather.log), others: $(grep -c ' act 0' $L/pdl_negative_gather.log)"
timeout $(left 90) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s26b_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s26b_quick.log
st done
