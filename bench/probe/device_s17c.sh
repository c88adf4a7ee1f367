#!/bin/bash
# Session 17, third call: the int8 wgmma TMA kernel's epilogue through tensor stores (wgmma_store_tma): the
# int8 GPU tests, memcheck and racecheck on their [sanitize] set, then bench_int8 (core against cuBLASLt,
# layer against cuBLAS fp16, interleaved) of the new kernel twice around the old one's. Binaries prebuilt in the git-ignored build-s17/:
#   run(command="bash bench/probe/device_s17c.sh", carry=["build-s17"])
DEADLINE=${DEADLINE:-420} DIRS="build-s17"
source bench/probe/device_lib.sh
B=build-s17
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests test_int8_gpu 150 $B/test_int8_gpu
san memcheck int8 120 $B/test_int8_gpu "[sanitize]"
san racecheck int8 150 $B/test_int8_gpu "[sanitize]"
# the new kernel's bench twice around the old one's (bench_int8_old: HEAD before the change), M >= 64 only
for v in new old new2; do
  b=$B/bench_int8; [ $v = old ] && b=$B/bench_int8_old
  timeout $(left 120) $b $O/int8_${DEV}_${D}_s17c_$v.json --ms=64,256,1024,4096 > $L/bench_int8_$v.log 2>&1; st "bench_int8 $v rc=$?"
  grep -E "^K=.*out= 8" $L/bench_int8_$v.log
done
st done
