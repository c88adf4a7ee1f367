#!/bin/bash
# Session 12, the last call the device budget allowed (~150 s): wip/int8-fused-act's int8 GPU tests and
# the 8192^2 bench at M = 1, 4 (fused and unfused layer in the same run), from git-ignored build-fused/:
#   run(command="bash bench/probe/device_s12_micro.sh", carry=["build-fused"])
set -u
O=$OUT; L=/tmp/l; mkdir -p $L; T0=$(date +%s)
st() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a $O/summary.txt; tar czf $O/logs.tgz -C $L . 2>/dev/null; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/summary.txt
cat build-fused/COMMIT >> $O/summary.txt
timeout 75 build-fused/test_int8_gpu > $L/fused_tests.log 2>&1; st "fused int8 tests rc=$? $(grep -E 'test cases|All tests' $L/fused_tests.log | tail -1)"
grep -B5 -A15 "FAILED" $L/fused_tests.log | head -40
timeout 60 stdbuf -oL build-fused/bench_int8 $O/int8_fused_quick.json --quick --ms=1,4 > $L/int8_fused.log 2>&1; st "fused bench rc=$?"
grep -E "^K=|layer|M=" $L/int8_fused.log | head -30
st done
