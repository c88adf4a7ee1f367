#!/bin/bash
# Session 13, fifth call: the ring path without the outlier column list (act_quant's block 0 no longer
# compacts the mask; each ring CTA lists its own range from the mask). Binaries in git-ignored build-s13/
# (bench_int8_base: the commit before, for an A/B in the same call):
#   run(command="bash bench/probe/device_s13e.sh", carry=["build-s13"])
DEADLINE=420 DIRS="build-s13"
source bench/probe/device_lib.sh
B=build-s13
tests int8_tests 90 $B/test_int8_gpu
timeout $(left 70) stdbuf -oL $B/bench_int8 $O/int8_nolist.json --ms=1,4,16 > $L/int8_nolist.log 2>&1; st "bench rc=$?"
timeout $(left 70) stdbuf -oL $B/bench_int8_base $O/int8_base.json --ms=1,4,16 > $L/int8_base.log 2>&1; st "bench base rc=$?"
paste -d'\n' <(grep -E "^K=" $L/int8_base.log | sed 's/^/base  /') <(grep -E "^K=" $L/int8_nolist.log | sed 's/^/new   /') | cut -c1-90
timeout $(left 60) $B/trace_int8 > $L/trace.log 2>&1; st "trace rc=$?"
grep -A12 "M 16" $L/trace.log | head -60
for tool in memcheck racecheck; do san $tool int8 80 $B/test_int8_gpu "[sanitize]"; done
st done
