#!/bin/bash
# Session 20's device call: build-s20b = the fused-pass stream probe with a provisional default (the stream
# kernel with the activation pass inside where the ring runs by default and M*K <= 8192); build-s20a = main
# 1a03d42 (session 19's final code, which never ran as a test binary).
#   run(command="bash bench/probe/device_s20b.sh", carry=["build-s20a","build-s20b"])
DEADLINE=${DEADLINE:-540} DIRS="build-s20b build-s20a"
source bench/probe/device_lib.sh
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
timeout $(left 90) build-s20b/bench_int8 $O/int8_${DEV}_${D}_s20_fused.json --ms=1,4,16 > $L/bench_fused.log 2>&1; st "bench fused rc=$?"
cp $L/bench_fused.log $O/int8_${DEV}_${D}_s20_fused.log
grep -E "stream layer|ring layer" $L/bench_fused.log | head -60
tests test_s20b 150 build-s20b/test_int8_gpu
san racecheck fused 60 build-s20b/test_int8_gpu "*stream path with the activation*"
san memcheck fused 60 build-s20b/test_int8_gpu "*stream path with the activation*"
tests test_main 150 build-s20a/test_int8_gpu
san memcheck main_stream 50 build-s20a/test_int8_gpu "*stream path (side*"
st done
