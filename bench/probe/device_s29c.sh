#!/bin/bash
# Session 29, call 3: gemm with the large-M kernel's 256 x 128 CTAs as its default (kLargeWgmmaBlockM = 256): the mid-M
# tests at 4 and 8 bits (midm_wgmma_fragments gained a k16-step range, their default the whole k-tile), the 4-bit f16
# gemm tests, test_linear (WeightOnlyLinear now runs the large-M kernel below M = 1024 where it fills the GPU), then
# the full bench_gemm (JSON with the targets' rows).
#   run(command="bash bench/probe/device_s29c.sh", carry=["build-s29c"])
DEADLINE=${DEADLINE:-420} DIRS="build-s29c"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
tests midm_b4 90 build-s29c/test_kernels_midm_b4
tests midm_b8 90 build-s29c/test_kernels_midm_b8
tests gemm_b4_f16 60 build-s29c/test_kernels_gemm_b4_f16
tests linear 90 build-s29c/test_linear
timeout $(left 300) build-s29c/bench_gemm_kernels $O/kernels_${DEV}_${D}_s29c.json > $L/bench_gemm.log 2>&1
st "bench_gemm rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s29c.log
st done
