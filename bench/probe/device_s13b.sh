#!/bin/bash
# Session 13, second call (binaries of main prebuilt in git-ignored build-s13/):
#   run(command="bash bench/probe/device_s13b.sh", carry=["build-s13"])
# (1) racecheck on the int8 [sanitize] set (the fused activation pass included); (2) bench_int8 at
# M = 1, 4, 16 with the landed default rule (the record of the small-M targets); (3) bench_gemm_kernels
# --tune: main's decode planner (two-slab rule) against the tuner and cuBLAS fp16, same run.
DEADLINE=330 DIRS="build-s13"
source bench/probe/device_lib.sh
B=build-s13
timeout $(left 70) stdbuf -oL $B/bench_int8 $O/int8_s13_small.json --ms=1,4,16 > $L/int8_small.log 2>&1; st "int8 bench rc=$?"
grep -E "^K=" $L/int8_small.log
timeout $(left 100) $B/bench_gemm_kernels $O/kernels_tune_s13.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$?"
tail -40 $L/kernels_tune.log
san racecheck int8 120 $B/test_int8_gpu "[sanitize]"
st done
