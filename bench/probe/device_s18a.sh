#!/bin/bash
# Session 18's device call (one, as starts keep failing): verifies two int8 changes together, built into the
# git-ignored build-s18/ (COMMIT says which code):
#  (1) the tensor-store epilogue of the wgmma TMA kernel (96d77a5, cherry-picked; session 17 wrote it, never
#      ran it);
#  (2) the small-M ring layer's first kernel under programmatic dependent launch (a chain of layers overlaps
#      each layer's start with the previous layer's tail).
# Order of need: the int8 GPU tests (the new chain test included); the full bench_int8 of the new build (its
# in-run "ring_no_pdl" figure is the A/B of (2)); memcheck and racecheck on the int8 [sanitize] set; main's
# bench_int8 at M >= 64 (the A/B of (1), each build against cuBLASLt in its own run); the demo.
#   run(command="bash bench/probe/device_s18a.sh", carry=["build-s18"])
DEADLINE=${DEADLINE:-470} DIRS="build-s18"
source bench/probe/device_lib.sh
B=build-s18
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests test_int8_gpu 100 $B/test_int8_gpu
timeout $(left 150) $B/bench_int8 $O/int8_${DEV}_${D}_s18.json > $L/bench_int8_full.log 2>&1; st "bench_int8 full rc=$?"
cp $L/bench_int8_full.log $O/int8_${DEV}_${D}_s18.log
grep -E "ring no PDL" $L/bench_int8_full.log | head -30
san memcheck int8 70 $B/test_int8_gpu "[sanitize]"
san racecheck int8 90 $B/test_int8_gpu "[sanitize]"
timeout $(left 50) $B/bench_int8_old $O/int8_${DEV}_${D}_s18ab_old.json --ms=64,256,1024,4096 > $L/bench_int8_old.log 2>&1; st "bench_int8 old rc=$?"
grep -E "^K=.*out= 8" $L/bench_int8_old.log
timeout $(left 20) $B/lowbit demo > $L/demo.log 2>&1; st "demo rc=$?"; tail -15 $L/demo.log
st done
