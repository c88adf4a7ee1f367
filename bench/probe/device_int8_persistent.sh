#!/bin/bash
# Device check of the persistent wgmma TMA int8 kernel: int8 GPU tests, memcheck and racecheck on the
# [sanitize] subset (which has the several-tiles-per-block cases), then bench_int8 at M = 256, 1024, 4096
# (core and layer: persistent default vs one block per tile, same run). carry: build-probe.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=build-probe
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
timeout 200 $B/test_int8_gpu > "$OUT/test_int8_gpu.log" 2>&1; rc=$?
stamp "test_int8_gpu rc=$rc $(grep -E 'test cases' "$OUT/test_int8_gpu.log" | tail -1)"
[ $rc = 0 ] || grep -B5 -A25 FAILED "$OUT/test_int8_gpu.log" | head -80
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 $B/test_int8_gpu "[sanitize]" > "$OUT/${tool}_int8.log" 2>&1
  stamp "$tool int8 [sanitize] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_int8.log" | tail -1)"
done
grep -E "Race|Error|by thread|Invalid" "$OUT/racecheck_int8.log" "$OUT/memcheck_int8.log" | sed 's/0x[0-9a-f]*/0x./g' | sort | uniq -c | sort -rn | head -12
timeout 250 $B/bench_int8 "$OUT/int8_persistent.json" --ms=256,1024,4096 > "$OUT/bench_int8.log" 2>&1
stamp "bench_int8 rc=$?"
grep -E "^K=|layer tiles|core tiles" "$OUT/bench_int8.log" | cut -c1-175
stamp done
