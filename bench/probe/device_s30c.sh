#!/bin/bash
# Session 30, call 3: the final tree (gemm's large-M kernel in 2-CTA clusters by default, the D knob removed):
# test_linear (WeightOnlyLinear's M = 300 case now runs the clustered kernel), bench_gemm --quick (gemm's M = 1024 rows),
# test_kernels_large (both CTA shapes, alone and clustered) and memcheck of its 4-bit case.
#   run(command="bash bench/probe/device_s30c.sh", carry=["build-s30c"])
DEADLINE=${DEADLINE:-120} DIRS="build-s30c"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
tests linear 30 build-s30c/test_linear
timeout $(left 30) build-s30c/bench_gemm_kernels $O/kernels_${DEV}_${D}_s30c_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s30c_quick.log
tests large 80 build-s30c/test_kernels_large
san memcheck large 30 build-s30c/test_kernels_large "large-M kernel 4-bit*"
st done
