#!/bin/bash
# Session 12, the last call the device budget allowed (~150 s): wip/int8-fused-act's int8 GPU tests and
# the 8192^2 bench at M = 1, 4 (fused and unfused layer in the same run), from git-ignored build-fused/:
#   run(command="bash bench/probe/device_s12_micro.sh", carry=["build-fused"])
DEADLINE=240 DIRS="build-fused"
source bench/probe/device_lib.sh
timeout 75 build-fused/test_int8_gpu > $L/fused_tests.log 2>&1; st "fused int8 tests rc=$? $(last $L/fused_tests.log)"
grep -B5 -A15 "FAILED" $L/fused_tests.log | head -40
timeout 60 stdbuf -oL build-fused/bench_int8 $O/int8_fused_quick.json --quick --ms=1,4 > $L/int8_fused.log 2>&1; st "fused bench rc=$?"
grep -E "^K=|layer|M=" $L/int8_fused.log | head -30
st done
