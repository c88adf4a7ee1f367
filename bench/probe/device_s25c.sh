#!/bin/bash
# Session 25, call 4: does the register A operand keep the wgmmas from overlapping the dequantization? Four probe
# builds of large_probe (LOWBIT_TESTING_MIDM_WS_DIAG bits; wrong results by design; only the 64-row fp16 policies
# take bit 16), all without copies after the first S stages: 1 = dequantization + register-A wgmmas (the kernel's
# consumers), 5 = register-A wgmmas only, 17 = dequantization + shared-memory-A wgmmas (same count and shape),
# 21 = shared-memory-A wgmmas only. If 17 comes near max(21, dequantization alone) where 1 is near their sum, the
# operand-swapped shared-memory design (bench/kernels/NOTES.md, "Session 25") is the way.
# Build: large_probe in build-diag1 / build-diag2 configured with -DCMAKE_CUDA_FLAGS=-DLOWBIT_TESTING_MIDM_WS_DIAG=17 / 21
# (d1 and d5 from calls 1 and 3); strip, pack as build-s25c/bins.tar.xz.
#   run(command="bash bench/probe/device_s25c.sh", carry=["build-s25c"])
DEADLINE=${DEADLINE:-200} DIRS="build-s25c"
source bench/probe/device_lib.sh
B=build-s25c
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
for d in 1 5 17 21 1 17; do
  timeout $(left 60) $B/large_probe_d$d ws4 > $L/probe_ws_d$d.log 2>&1; st "large_probe_d$d ws4 rc=$?"
  { echo "### LOWBIT_TESTING_MIDM_WS_DIAG=$d"; cat $L/probe_ws_d$d.log; } >> $O/large_probe_${DEV}_${D}_s25_ws_ss_probe.log
  grep -E "^K|W64ws8" $L/probe_ws_d$d.log | head -8
done
st done
