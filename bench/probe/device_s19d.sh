#!/bin/bash
# The stream kernel with the activation pass inside it (LinearOptions::ring_act 3 with force_path 6, M <= 4),
# written in session 19 without a GPU left to run it. Build test_int8_gpu and bench_int8 of this commit into
# the git-ignored build-s19d/ (cmake --build build-pack --target test_int8_gpu bench_int8, copy both, write
# COMMIT), then
#   run(command="bash bench/probe/device_s19d.sh", carry=["build-s19d"])
# Order: the int8 GPU tests (the fused stream cases, the chain and non-finite cases with it); bench_int8 at
# M = 1, 4 (the fused stream layer against the separate-pass stream layer and the ring, interleaved);
# memcheck and racecheck on the stream tests.
DEADLINE=${DEADLINE:-420} DIRS="build-s19d"
source bench/probe/device_lib.sh
B=build-s19d
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests test_int8_gpu 200 $B/test_int8_gpu
timeout $(left 60) $B/bench_int8 $O/int8_${DEV}_${D}_fused_stream.json --ms=1,4 > $L/bench_fused.log 2>&1; st "bench rc=$?"
cp $L/bench_fused.log $O/int8_${DEV}_${D}_fused_stream.log
grep -E "stream layer" $L/bench_fused.log | head -40
san memcheck stream 70 $B/test_int8_gpu "*stream*"
san racecheck stream 70 $B/test_int8_gpu "*stream path with the activation*,*stream path (side*"
st done
