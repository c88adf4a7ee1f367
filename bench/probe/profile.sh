#!/bin/bash
# Profiles single configurations with ncu on the device (Firecracker machines: counters readable with
# --clock-control none). Needs the probe binary prebuilt for sm_90a and carried:
#   mkdir -p build-probe && cp build-next/bench/probe/probe_kernels build-probe/
#   run(command="bash bench/probe/profile.sh", carry=["build-probe"])
# Outputs under $OUT: per-kernel durations (durations_*.csv), details pages (*.txt) and per-SASS-line
# source counters (*_sass.csv) of the kernels named below. SET picks the groups (default "int8 decode";
# "midm": the weight-only mid-M kernel at M = 64 and 128).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; P=build-probe/probe_kernels
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/summary.txt"
NCU="ncu --clock-control none"
dur() {  # dur NAME ARGS...: every kernel's duration in the probe's last call (2 warm-up calls profiled too)
  local name=$1; shift
  timeout 120 $NCU --metrics gpu__time_duration.sum --csv $P "$@" > "$OUT/durations_$name.csv" 2> "$OUT/durations_$name.err"
  stamp "durations $name rc=$?"
}
detail() {  # detail NAME KERNEL_REGEX SKIP ARGS...: full sections + source counters of one launch
  local name=$1 k=$2 skip=$3; shift 3
  timeout 150 $NCU -k "regex:$k" --launch-skip $skip --launch-count 1 --section SpeedOfLight \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section SourceCounters --section LaunchStats --section Occupancy --import-source no \
    -o /tmp/$name -f $P "$@" > "$OUT/$name.log" 2>&1
  stamp "detail $name rc=$?"
  ncu -i /tmp/$name.ncu-rep --page details > "$OUT/$name.txt" 2>&1
  ncu -i /tmp/$name.ncu-rep --page source --csv --print-source sass > "$OUT/${name}_sass.csv" 2>&1
  stamp "  exported $name ($(wc -l < "$OUT/${name}_sass.csv") sass lines)"
}
$P int8 256 256 4 8 1 > /dev/null 2>&1  # load check
stamp "probe ok rc=$?"
SET=" ${SET:-int8 decode} "
if [[ $SET == *" int8 "* ]]; then
# LLM.int8() layer: kernel breakdown, 8192^2 (the shape below target), M = 4096 / 1 / 16
dur i8_8192_m4096_o0 int8 8192 8192 4096 0 1
dur i8_8192_m4096_o8 int8 8192 8192 4096 8 1
dur i8_8192_m1_o8 int8 8192 8192 1 8 1
dur i8_8192_m16_o8 int8 8192 8192 16 8 1
dur i8_8192x28672_m1_o8 int8 8192 28672 1 8 1
detail i8ws_m4096_o8 "gemm_s8_wgmma_ws" 2 int8 8192 8192 4096 8 1
detail i8ws_m4096_o0 "gemm_s8_wgmma_ws" 2 int8 8192 8192 4096 0 1
fi
if [[ $SET == *" decode "* ]]; then
# weight-only 4-bit g128 decode: M = 1 vs M = 16 (2.4x against 3.5x at M = 1), and the 28672-column shape
dur w4_8192_m1 w 4 8192 8192 1 1
dur w4_8192_m16 w 4 8192 8192 16 1
dur w4_8192x28672_m1 w 4 8192 28672 1 1
dur w4_8192x28672_m16 w 4 8192 28672 16 1
detail w4_m1 "decode_gemm" 2 w 4 8192 8192 1 1
detail w4_m16 "decode_gemm" 2 w 4 8192 8192 16 1
detail w4_28672_m16 "decode_gemm" 2 w 4 8192 28672 16 1
detail i8_m1_o8 "gemv_s8|ring" 2 int8 8192 8192 1 8 1
fi
if [[ $SET == *" midm "* ]]; then
# weight-only 4-bit g128 mid-M (lock-step wgmma kernel): 1.0x cuBLAS fp16 at M = 64, 0.7x at 128
dur w4_8192_m64 w 4 8192 8192 64 1
dur w4_8192_m128 w 4 8192 8192 128 1
dur w4_8192x28672_m64 w 4 8192 28672 64 1
detail w4_m64 "midm" 2 w 4 8192 8192 64 1
detail w4_m128 "midm" 2 w 4 8192 8192 128 1
fi
stamp done
