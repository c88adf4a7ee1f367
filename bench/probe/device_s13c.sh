#!/bin/bash
# Session 13, third call (binaries prebuilt in git-ignored build-s13/):
#   run(command="bash bench/probe/device_s13c.sh", carry=["build-s13"])
# (1) int8 tests after the one-kernel activation pass loads rows 4 at a time (scan_act_rows), memcheck on
# the [sanitize] set; (2) bench_int8 at M = 1, 4, 16 (compare with int8_..._s13_small: 8192^2 M = 4
# 35.2 us, 8 outliers); (3) the ring_access probe with the dynamic (work-counter) variant; (4) the decode
# planner with the per-CTA term (kCtaWarps): bench_gemm_kernels --tune, planned against tuned.
DEADLINE=330 DIRS="build-s13"
source bench/probe/device_lib.sh
B=build-s13
tests int8_tests 90 $B/test_int8_gpu
timeout $(left 70) stdbuf -oL $B/bench_int8 $O/int8_s13_rows.json --ms=1,4,16 > $L/int8_rows.log 2>&1; st "int8 bench rc=$?"
grep -E "^K=|fused" $L/int8_rows.log
timeout $(left 60) $B/ring_access $O/ring_access_dyn.json > $L/ring_access.log 2>&1; st "ring_access rc=$?"
grep -E "plain|main|dynamic" $L/ring_access.log
san memcheck int8 80 $B/test_int8_gpu "[sanitize]"
timeout $(left 60) $B/bench_gemm_kernels $O/kernels_tune_cta.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$?"
grep -E "^tune .*(8192|28672|3584)" $L/kernels_tune.log | head -80; tail -1 $L/kernels_tune.log
st done
