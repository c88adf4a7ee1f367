#!/bin/bash
# Session 23, branch wip/fused-olist with the register-path rows as a template parameter (2 rows at M <= 2,
# 4 at M = 3, 4): the A/B benches (base = main ad44361 in build-s21b), every int8 GPU test, memcheck and
# racecheck on the fused stream tests, then the bench over the M for the record.
#   run(command="bash bench/probe/device_s23a.sh", carry=["build-s21b", "build-s23"])
DEADLINE=${DEADLINE:-570} DIRS="build-s21b build-s23"
source bench/probe/device_lib.sh
B=build-s23
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
timeout $(left 40) $B/bench_int8 $L/ab_new.json --ms=1,2,3,4 > $L/bench_new.log 2>&1; st "bench new rc=$?"
timeout $(left 40) build-s21b/bench_int8_base $L/ab_base.json --ms=3,4 > $L/bench_base.log 2>&1; st "bench base rc=$?"
grep -hE "^K=.*out= 8 \|" $L/bench_new.log $L/bench_base.log
grep -hE "M=4 out=8: stream layer with the activation" $L/bench_new.log $L/bench_base.log
tests test_all 250 $B/test_int8_gpu
san memcheck fused 60 $B/test_int8_gpu "*stream path with the activation*"
san racecheck fused 80 $B/test_int8_gpu "*stream path with the activation*"
timeout $(left 160) $B/bench_int8 $O/int8_${DEV}_${D}_s23.json --ms=1,2,3,4,8,16,64,256,1024,4096 > $L/bench_full.log 2>&1
st "bench full rc=$?"; cp $L/bench_full.log $O/int8_${DEV}_${D}_s23.log
st done
