#!/bin/bash
# Session 19's second device call: the stream kernel's weight copies with an L2 prefetch size (cp.async
# .L2::128B / .L2::256B) against none, M = 1 and 16 on the three shapes (stream against ring, interleaved),
# then racecheck on the stream tests, the int8 GPU tests (stream default: 256) and memcheck on the [sanitize] set.
#   run(command="bash bench/probe/device_s19b.sh", carry=["build-s19b"])
DEADLINE=${DEADLINE:-500} DIRS="build-s19b"
source bench/probe/device_lib.sh
B=build-s19b
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
for pf in 256 128 0; do
  timeout $(left 100) $B/bench_int8_p$pf $O/int8_${DEV}_${D}_s19_pf$pf.json --ms=1,16 > $L/bench_pf$pf.log 2>&1; st "bench pf$pf rc=$?"
  cp $L/bench_pf$pf.log $O/int8_${DEV}_${D}_s19_pf$pf.log
  grep -E "stream layer .* ring layer" $L/bench_pf$pf.log
done
san racecheck stream 90 $B/test_int8_gpu "*stream path (side*,*chained*"
tests test_int8_gpu 120 $B/test_int8_gpu
san memcheck int8 90 $B/test_int8_gpu "[sanitize]"
st done
