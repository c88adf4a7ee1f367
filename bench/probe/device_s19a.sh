#!/bin/bash
# Session 19's first device call: the small-M LLM.int8() stream kernel (int8_stream.cuh, per-warp cp.async
# rings), built into the git-ignored build-s19/ (COMMIT says which code).
# Order of need: the int8 GPU tests (the stream sweep, its PDL chain and refusal cases); bench_int8 at
# M = 1, 4, 16 (stream layer against the ring layer in interleaved replays, each GEMM alone, and the layer
# against cuBLAS fp16); memcheck and racecheck on the int8 [sanitize] set; the demo.
#   run(command="bash bench/probe/device_s19a.sh", carry=["build-s19"])
DEADLINE=${DEADLINE:-540} DIRS="build-s19"
source bench/probe/device_lib.sh
B=build-s19
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
tests test_int8_gpu 170 $B/test_int8_gpu
timeout $(left 150) $B/bench_int8 $O/int8_${DEV}_${D}_s19_small.json --ms=1,4,16 > $L/bench_int8_small.log 2>&1; st "bench_int8 small rc=$?"
cp $L/bench_int8_small.log $O/int8_${DEV}_${D}_s19_small.log
grep -E "^K=|stream layer|read-only" $L/bench_int8_small.log | head -60
san memcheck int8 90 $B/test_int8_gpu "[sanitize]"
san racecheck int8 100 $B/test_int8_gpu "[sanitize]"
timeout $(left 20) $B/lowbit demo > $L/demo.log 2>&1; st "demo rc=$?"; tail -8 $L/demo.log
st done
