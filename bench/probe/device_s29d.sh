#!/bin/bash
# Session 29, call 4: test_linear built with the wgmma kernels (its new case: WeightOnlyLinear runs the large-M kernel
# at M = 300 on a weight whose grid fills the GPU); large_probe large4 and bench_gemm --quick in the same call with
# nvidia-smi sampling clocks and power beside them (call 3's bench_gemm, 20-launch graphs interleaved with cuBLAS,
# timed the large-M kernel 16-26 % slower than large_probe's short bursts); then ncu on one launch of the 256 x 128
# kernel (4-bit 8192^2 M = 4096): tensor-pipe and shared-memory utilization, warp stalls.
#   run(command="bash bench/probe/device_s29d.sh", carry=["build-s29c", "build-s29d"])
DEADLINE=${DEADLINE:-300} DIRS="build-s29c build-s29d"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
tests linear 90 build-s29d/test_linear
grep -B2 -A3 "warning" $L/linear.log | head -8
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 100 > $L/smi.csv 2>&1 &
SMI=$!
st "large_probe large4 start"
timeout $(left 60) build-s29d/large_probe large4 > $L/large4.log 2>&1; st "large_probe large4 rc=$?"
cp $L/large4.log $O/large_probe_${DEV}_${D}_s29d_large4.log
timeout $(left 60) build-s29c/bench_gemm_kernels $O/kernels_${DEV}_${D}_s29d_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s29d_quick.log
kill $SMI; cp $L/smi.csv $O/smi_s29d.csv
timeout $(left 120) ncu --clock-control none -k regex:large_wgmma --launch-skip 1 --launch-count 1 --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
  --section Occupancy --section SourceCounters --import-source no -o /tmp/one -f build-s29d/large_probe one > $L/ncu.log 2>&1
st "ncu rc=$?"
ncu -i /tmp/one.ncu-rep --page details > $O/ncu_large256_s29d.txt 2>&1
ncu -i /tmp/one.ncu-rep --page source --csv --print-source sass > $L/ncu_sass.csv 2>&1
st "ncu exported ($(wc -l < $O/ncu_large256_s29d.txt) detail lines)"
st done
