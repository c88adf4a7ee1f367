#!/bin/bash
# One device call for a change to the int8 wgmma epilogue: the int8 GPU tests and their sanitizer subset on
# the new binaries, per-kernel durations of the layer before/after (ncu, old and new probe binaries), the
# int8 benchmark at the M the change touches, then the ncu profile of probe configurations (profile.sh).
# carry: .deps (Catch2 runtime is header-only; nothing needed) and build-probe with
#   probe_old (binaries of the code before), probe_kernels, bench_int8, test_int8_gpu (code after).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=build-probe
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
WALL=${WALL:-540}; left() { echo $(( WALL - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
timeout 200 $B/test_int8_gpu > "$OUT/test_int8_gpu.log" 2>&1; rc=$?
stamp "test_int8_gpu rc=$rc $(grep -E 'test cases' "$OUT/test_int8_gpu.log" | tail -1)"
[ $rc = 0 ] || grep -B5 -A20 FAILED "$OUT/test_int8_gpu.log" | head -60
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 $B/test_int8_gpu "[sanitize]" > "$OUT/${tool}_int8.log" 2>&1
  stamp "$tool int8 [sanitize] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_int8.log" | tail -1)"
done
NCU="ncu --clock-control none --metrics gpu__time_duration.sum --csv"
for v in old new; do
  P=$B/probe_kernels; [ $v = old ] && P=$B/probe_old
  for o in 0 8 64; do
    timeout 60 $NCU $P int8 8192 8192 4096 $o 1 > "$OUT/dur_${v}_m4096_o$o.csv" 2>&1
    stamp "durations $v o=$o: $(grep -E 'gemm_s8|prepare|act_|activation|zero_work' "$OUT/dur_${v}_m4096_o$o.csv" | tail -4 |
      awk -F'","' '{n=$5; sub(/\(.*/,"",n); printf "%s=%s ", substr(n,1,28), $NF}' | tr -d '"')"
  done
done
[ $(left) -gt 120 ] && { timeout $(( $(left) - 90 )) $B/bench_int8 "$OUT/int8_bench.json" --ms=4096,64 > "$OUT/bench_int8.log" 2>&1;
  stamp "bench_int8 rc=$?"; grep -E "^K=|out= ?8|layer" "$OUT/bench_int8.log" | head -30; }
[ $(left) -gt 80 ] && OUT=$OUT/profile timeout $(( $(left) - 5 )) bash bench/probe/profile.sh > "$OUT/profile_stdout.txt" 2>&1
stamp "done"
