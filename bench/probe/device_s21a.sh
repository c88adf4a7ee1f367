#!/bin/bash
# Probe for the session after 20 (branch wip/fused-regs, not run on a GPU when written): two changes to the
# fused stream kernel's activation pass, as compile-time switches of int8_stream.cuh:
#  - LOWBIT_INT8_STREAM_FUSED_REGS (1, default): without a K split, at M <= 2 and at most 8 tiles a warp
#    (8192^2 at M = 1, 2) each warp reads only its own range of A and quantizes it from registers, so A is
#    read once; 0: every CTA reads all of A, each warp its range again (session 20's kernel);
#  - LOWBIT_INT8_STREAM_FUSED_EARLY (2, default): weight tiles a warp issues before the pass (0 or 1: the
#    rest after it), since the pass's loads of A queue behind the weight copies in flight.
# Binaries in the git-ignored build-s21/: test_int8_gpu (CMake, defaults), test_int8_gpu_e{0,1} and
# bench_int8_regs0, bench_int8_regs1, bench_int8_regs1_e{0,1} (nvcc with the CMake flags and the switches;
# tests linked with build-pack/tests/liblowbit_catch_main.a). Then
#   run(command="bash bench/probe/device_s21a.sh", carry=["build-s21"])
# Goal: 8192^2, M = 1, 8 outlier columns under 27.5 us (1.7x cuBLAS fp16; session 20: 28.0 us). Each bench
# row times the fused layer interleaved with the ring; compare the fused/ring ratio across binaries.
DEADLINE=${DEADLINE:-480} DIRS="build-s21"
source bench/probe/device_lib.sh
B=build-s21
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
for round in 1 2; do
  for v in regs1 regs0 regs1_e1 regs1_e0; do
    timeout $(left 30) $B/bench_int8_$v $O/int8_${DEV}_${D}_${v}_r$round.json --ms=1,2 > $L/bench_${v}_r$round.log 2>&1
    st "bench $v round $round rc=$?"
  done
done
cp $L/bench_*.log $O/
grep -H -E "activation pass inside|ring layer [0-9]" $L/bench_*_r2.log | grep -E "M=1 out=8|M=2 out=8" | head -40
tests test_fused 120 $B/test_int8_gpu "*stream path with the activation*,*non-finite*,*PDL*"
tests test_fused_e0 90 $B/test_int8_gpu_e0 "*stream path with the activation*,*non-finite*"
tests test_fused_e1 90 $B/test_int8_gpu_e1 "*stream path with the activation*,*non-finite*"
san memcheck fused 70 $B/test_int8_gpu "*stream path with the activation*"
san racecheck fused 100 $B/test_int8_gpu "*stream path with the activation*"
tests test_all 150 $B/test_int8_gpu
st done
