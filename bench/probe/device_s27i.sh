#!/bin/bash
# Session 27, H200 record: the 4-bit f16 gemm tests and the full bench_gemm of the final code on an H200
# (issue 4: "On an H100 (and H200 where available)"). Binaries: call 7's build-s27h (f746e40; later commits touched
# scripts and notes only).
#   run(command="bash bench/probe/device_s27i.sh", carry=["build-s27h"], kind="nvidia-h200")
DEADLINE=${DEADLINE:-200} DIRS="build-s27h"
source bench/probe/device_lib.sh
B=build-s27h
unpack $B
tests gemm_b4_f16 60 $B/test_kernels_gemm_b4_f16
timeout $(left 120) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s27.json > $L/bench_gemm.log 2>&1
st "bench_gemm rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s27.log
st done
