#!/bin/bash
# Session 30, call 1: session 29's call 4 (test_linear built with the wgmma kernels: WeightOnlyLinear runs the large-M
# kernel at M = 300; clocks and power sampled beside large_probe and bench_gemm --quick; ncu on one large-M launch)
# plus the large-M kernel with two k-tiles of wgmmas in flight (LargeWgmmaConfig's D = 2, "large256d2" in large_probe)
# and two diagnostic builds of the probe (LOWBIT_PROBE_LARGE_DIAG: 1 = no dequantization, 2 = no wgmmas);
# 2-CTA clusters sharing the activation loads through TMA multicast (CN = 2, "large256mc", "large256d2mc");
# test_kernels_large covers D = 2 and CN = 2 (and memcheck its 4-bit case).
#   run(command="bash bench/probe/device_s30a.sh", carry=["build-s29c", "build-s29d", "build-s30a"])
DEADLINE=${DEADLINE:-540} DIRS="build-s29c build-s29d build-s30a"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
tests large 100 build-s30a/test_kernels_large
grep -q "All tests passed" $L/large.log || { export LARGE_PROBE_NO_MC=1; st "cluster variants skipped"; }
tests linear 90 build-s29d/test_linear
grep -B2 -A3 "warning" $L/linear.log | head -8
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -lms 100 > $L/smi.csv 2>&1 &
SMI=$!
probe() {  # probe NAME BIN MODE...
  local name=$1 bin=$2; shift 2
  st "$name start"; timeout $(left 90) $bin "$@" > $L/$name.log 2>&1; st "$name rc=$?"
  cp $L/$name.log $O/large_probe_${DEV}_${D}_s30a_$name.log
}
probe large4_r1 build-s30a/large_probe large4
probe diag1 build-s30a/large_probe_diag1 large4
probe diag2 build-s30a/large_probe_diag2 large4
ncu_one() {  # ncu_one NAME ARGS...: one launch of the 256 x 128 kernel, 4-bit 8192^2 M = 4096
  local name=$1; shift
  timeout $(left 120) ncu --clock-control none -k regex:large_wgmma --launch-skip 1 --launch-count 1 --section SpeedOfLight \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
    --section Occupancy --section SourceCounters --import-source no -o /tmp/$name -f build-s30a/large_probe one "$@" > $L/ncu_$name.log 2>&1
  st "ncu $name rc=$?"
  ncu -i /tmp/$name.ncu-rep --page details > $O/ncu_${name}_s30a.txt 2>&1
  ncu -i /tmp/$name.ncu-rep --page source --csv --print-source sass > $L/ncu_sass_$name.csv 2>&1
  st "ncu $name exported ($(wc -l < $O/ncu_${name}_s30a.txt) detail lines)"
}
ncu_one large256
probe large4_r2 build-s30a/large_probe large4
st "bench_gemm --quick start"
timeout $(left 120) build-s29c/bench_gemm_kernels $O/kernels_${DEV}_${D}_s30a_quick.json --quick > $L/bench_gemm.log 2>&1
st "bench_gemm --quick rc=$?"; cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s30a_quick.log
kill $SMI; cp $L/smi.csv $O/smi_s30a.csv
[ -z "${LARGE_PROBE_NO_MC:-}" ] && ncu_one large256mc mc
ncu_one large256d2 2
san memcheck large 120 build-s30a/test_kernels_large "large-M kernel 4-bit*"
st done
