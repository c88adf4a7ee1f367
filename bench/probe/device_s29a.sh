#!/bin/bash
# Session 29, call 1 = session 28's unrun call 2 (device_s28b.sh of wip/large-wgmma-split): the large-M kernel's split
# variant (a transform warpgroup dequantizes; consumers only issue wgmmas) against the first one in large_probe (4 bits),
# both variants' tests and memcheck, racecheck on the 4-bit cases, the planner test on an sm_90 device; with BENCH=1 also
# bench_gemm --quick (M = 1, 16, 64, 1024) of 92a272b (gemm's large-M rule as landed).  Binaries prebuilt in session 28.
#   run(command="BENCH=1 bash bench/probe/device_s29a.sh", carry=["build-s28d", "build-s28e"])
DEADLINE=${DEADLINE:-420} DIRS="build-s28d build-s28e"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
timeout $(left 60) build-s28e/large_probe large4 > $L/probe_large4.log 2>&1; st "large_probe large4 rc=$?"
cp $L/probe_large4.log $O/large_probe_${DEV}_${D}_s29a_large4.log
tests large 90 build-s28e/test_kernels_large
san memcheck large4 60 build-s28e/test_kernels_large "large-M kernel 4-bit*"
tests plan 30 build-s28d/test_kernels_plan
san racecheck large4 90 build-s28e/test_kernels_large "large-M kernel 4-bit*"
if [ "${BENCH:-0}" = 1 ]; then  # the quick bench_gemm, when device time allows
  timeout $(left 200) build-s28d/bench_gemm_kernels $O/kernels_${DEV}_${D}_s29a_quick.json --quick > $L/bench_gemm.log 2>&1
  st "bench_gemm rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s29a_quick.log
fi
st done
