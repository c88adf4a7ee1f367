#!/bin/bash
# Session 25, call 3: what bounds the warp-specialized mid-M kernel's consumers. Two probe builds of large_probe
# (LOWBIT_TESTING_MIDM_WS_DIAG bits, midm_wgmma.cuh; wrong results by design): 5 = no copies after the first S
# stages and no dequantization (the consumers issue only their wgmmas and barrier work), 9 = no copies after S
# and no wgmmas (only the dequantization). Compare with diag 1 (both; call 1's
# large_probe_*_s25_ws_diag1.log). Then ncu's stall reasons and tensor-pipe activity on the W64 kernel as gemm
# dispatches it (8192^2, M = 64, 4 bits).
# Build: large_probe in build-diag1 / build-diag2 configured with -DCMAKE_CUDA_FLAGS=-DLOWBIT_TESTING_MIDM_WS_DIAG=5 / 9,
# probe_kernels in build-pack; strip, pack as build-s25b/bins.tar.xz (large_probe_d5, large_probe_d9, probe_kernels).
#   run(command="bash bench/probe/device_s25b.sh", carry=["build-s25b"])
DEADLINE=${DEADLINE:-300} DIRS="build-s25b"
source bench/probe/device_lib.sh
B=build-s25b
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
for d in 5 9; do
  timeout $(left 90) $B/large_probe_d$d ws4 > $L/probe_ws_d$d.log 2>&1; st "large_probe_d$d ws4 rc=$?"
  cp $L/probe_ws_d$d.log $O/large_probe_${DEV}_${D}_s25_ws_diag$d.log
done
timeout $(left 90) ncu --clock-control none -k regex:midm_wgmma_ws --launch-skip 2 --launch-count 1 --section WarpStateStats \
  --print-details all --metrics regex:sm__pipe_tensor.*cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed.sum,smsp__cycles_active.avg \
  $B/probe_kernels w 4 8192 8192 64 > $L/ncu_ws_stalls.txt 2>&1; st "ncu rc=$?"
cp $L/ncu_ws_stalls.txt $O/ncu_ws_stalls_${DEV}_${D}_s25.txt
grep -iE "stall|tensor|inst_executed|cycles_active|Duration" $L/ncu_ws_stalls.txt | head -40
st done
