#!/bin/bash
# Session 28, call 2: racecheck on the large-M kernel's 4-bit tests, the planner test on an sm_90 device (the large-M
# rule asks the device), then bench_gemm --quick (M = 1, 16, 64, 1024) with gemm dispatching large M to the large-M kernel.
#   run(command="bash bench/probe/device_s28b.sh", carry=["build-s28a", "build-s28d"])
DEADLINE=${DEADLINE:-360} DIRS="build-s28a build-s28d"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
tests plan 30 build-s28d/test_kernels_plan
san racecheck large4 120 build-s28a/test_kernels_large "large-M kernel 4-bit*"
timeout $(left 300) build-s28d/bench_gemm_kernels $O/kernels_${DEV}_${D}_s28_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s28_quick.log
st done
