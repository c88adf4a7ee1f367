#!/bin/bash
# Small-M LLM.int8() layer timeline (branch wip/int8-trace), one device call, ~1 min. Prebuild here for
# sm_90a: `cmake --build build-next --target trace_int8`, copy build-next/bench/probe/trace_int8 into a
# git-ignored folder (e.g. build-trace/), then
#   run(command="B=build-trace bash bench/probe/device_trace_int8.sh", carry=["build-trace"])
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=${B:-build-trace}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/summary.txt"
timeout 300 $B/trace_int8 100 > "$OUT/trace_int8.log" 2>&1
echo "trace_int8 rc=$?" | tee -a "$OUT/summary.txt"
cat "$OUT/trace_int8.log"
