#!/bin/bash
# Session 18, third call: the final int8 GPU tests of main (b204c11), and a probe of where the small-M ring
# kernel lets the next layer launch: at its start (main) or after its main loop (bench_int8_late, built with
# -DLOWBIT_INT8_RING_LATE_TRIGGER=1, not committed as a default). Each bench times its ring layer with and
# without PDL in interleaved replays (M = 1, 4, 16).
#   run(command="bash bench/probe/device_s18c.sh", carry=["build-s18c"])
DEADLINE=${DEADLINE:-150} DIRS="build-s18c"
source bench/probe/device_lib.sh
B=build-s18c
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests test_int8_gpu 80 $B/test_int8_gpu
for v in base late; do
  b=$B/bench_int8; [ $v = late ] && b=$B/bench_int8_late
  timeout $(left 40) $b $O/int8_${DEV}_${D}_s18trig_$v.json --ms=1,4,16 > $L/bench_$v.log 2>&1; st "bench_int8 $v rc=$?"
  cp $L/bench_$v.log $O/int8_${DEV}_${D}_s18trig_$v.log
  grep -E "with PDL" $L/bench_$v.log | sed -E 's/split-K gemv layer [0-9.]+ us, //; s/ring GEMM alone.*//'
done
st done
