#!/bin/bash
# Verification of the int8 tensor-store epilogue (96d77a5, reverted until it runs on a GPU; written in session 17,
# whose device time went on failed starts): its int8 GPU tests, its A/B against the code before it (bench_int8,
# M >= 64, each against cuBLASLt in its own run), then memcheck and racecheck on the int8 [sanitize] set, in that
# order of need. Binaries in git-ignored build-s17/ (bench/int8/NOTES.md, "Session 17", says how to build them):
# test_int8_gpu and bench_int8 with 96d77a5, bench_int8_old without.
#   run(command="bash bench/probe/device_s17e.sh", carry=["build-s17"])
DEADLINE=${DEADLINE:-225} DIRS="build-s17"
source bench/probe/device_lib.sh
B=build-s17
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests test_int8_gpu 90 $B/test_int8_gpu
for v in new old; do
  b=$B/bench_int8; [ $v = old ] && b=$B/bench_int8_old
  timeout $(left 40) $b $O/int8_${DEV}_${D}_s17e_$v.json --ms=64,256,1024,4096 > $L/bench_int8_$v.log 2>&1; st "bench_int8 $v rc=$?"
  grep -E "^K=.*out= 8" $L/bench_int8_$v.log
done
san memcheck int8 40 $B/test_int8_gpu "[sanitize]"
san racecheck int8 60 $B/test_int8_gpu "[sanitize]"
st done
