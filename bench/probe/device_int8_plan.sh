#!/bin/bash
# Device check of an int8 plan (dispatch) change: the int8 GPU tests, then bench_int8 at the M whose plan
# changed (layer and core against cuBLAS fp16 / cuBLASLt in the same run, every variant timed).
# carry: build-probe with bench_int8 and test_int8_gpu built from the change.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=build-probe
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
timeout 200 $B/test_int8_gpu > "$OUT/test_int8_gpu.log" 2>&1; rc=$?
stamp "test_int8_gpu rc=$rc $(grep -E 'test cases' "$OUT/test_int8_gpu.log" | tail -1)"
[ $rc = 0 ] || grep -B5 -A20 FAILED "$OUT/test_int8_gpu.log" | head -60
timeout 300 $B/bench_int8 "$OUT/int8_plan.json" --ms=64,128,256,1024 > "$OUT/bench_int8.log" 2>&1
stamp "bench_int8 rc=$?"
grep -E "^K=|layer tiles|core tiles" "$OUT/bench_int8.log" | cut -c1-160
stamp done
