#!/bin/bash
# Session 13, last call: the review's mends (int8 ring scratch only in the fused kernel's shared memory,
# no activation tensor map for the fused plan, a shared warp prefix sum in the gemv kernel, tests past a
# CTA's 64-entry outlier table with split K). Binaries in git-ignored build-s13/:
#   run(command="bash bench/probe/device_s13f.sh", carry=["build-s13"])
DEADLINE=400 DIRS="build-s13"
source bench/probe/device_lib.sh
B=build-s13
tests int8_tests 150 $B/test_int8_gpu
timeout $(left 40) stdbuf -oL $B/bench_int8 $O/int8_final.json --ms=1,4,16 > $L/int8_final.log 2>&1; st "bench rc=$?"
grep -E "^K=" $L/int8_final.log | cut -c1-90
for tool in memcheck racecheck; do san $tool int8 80 $B/test_int8_gpu "[sanitize]"; done
timeout $(left 40) $B/ring_access $O/ring_access_final.json > $L/ring_access.log 2>&1; st "ring_access rc=$?"
grep -E "plain|main|dynamic units of 2" $L/ring_access.log
st done
