#!/bin/bash
# Session 21's second probe: the fused stream kernel keeps the activation values of each warp's first
# outlier columns (and the slab's weight scales) in shared memory, so the main loop's outlier products
# make no L2 round trip. build-s21b: test_int8_gpu and bench_int8 of that build (CMake, sm_90a Release);
# bench_int8_base = main 56bcc95, the same build without the change (see build-s21b/COMMIT).
#   run(command="bash bench/probe/device_s21b.sh", carry=["build-s21b"])
DEADLINE=${DEADLINE:-330} DIRS="build-s21b"
source bench/probe/device_lib.sh
B=build-s21b
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
for round in 1 2; do
  for v in base new; do
    bin=$B/bench_int8; [[ $v == base ]] && bin=$B/bench_int8_base
    timeout $(left 30) $bin $L/int8_${DEV}_${D}_s21_${v}_r$round.json --ms=1,2 > $L/bench_${v}_r$round.log 2>&1
    st "bench $v round $round rc=$?"
  done
done
for v in base new; do
  cp $L/int8_${DEV}_${D}_s21_${v}_r2.json $O/; cp $L/bench_${v}_r2.log $O/int8_${DEV}_${D}_s21_${v}_r2.log
done
grep -H -E "activation pass inside|^K=" $L/bench_*.log | grep -E "out=(0|8|64)" | grep -v "M=   2" | head -60
tests test_fused 120 $B/test_int8_gpu "*stream path with the activation*,*non-finite*,*PDL*"
san memcheck fused 90 $B/test_int8_gpu "*stream path with the activation*"
san racecheck fused 130 $B/test_int8_gpu "*stream path with the activation*"
(( $(left 999) > 200 )) && tests test_all 200 $B/test_int8_gpu  # (the non-fused kernels' PTX is unchanged)
st done
