#!/bin/bash
# Session 25, call 7: the gemm tests through the planner after plan_midm_wgmma learned the tensor-map fallback
# (96a1091; host-only change, the kernels are call 2's), 4-bit fp16 and 8-bit bf16.
#   run(command="bash bench/probe/device_s25f.sh", carry=["build-s25f"])
DEADLINE=${DEADLINE:-200} DIRS="build-s25f"
source bench/probe/device_lib.sh
B=build-s25f
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
tests gemm_b4_f16 150 $B/test_kernels_gemm_b4_f16
[ -x $B/test_kernels_gemm_b8_bf16 ] && tests gemm_b8_bf16 150 $B/test_kernels_gemm_b8_bf16
st done
