#!/bin/bash
# One device call for a change to the int8 kernels or plan, from binaries prebuilt for sm_90a on the
# workstation and carried in build-probe/ (test_int8_gpu, bench_int8; probe_kernels and probe_old for AB):
# the int8 GPU tests, optionally compute-sanitizer on their [sanitize] subset, optionally per-kernel ncu
# durations of the 8192^2 M = 4096 layer before (probe_old) and after (probe_kernels), bench_int8 at the
# chosen M, and optionally the ncu profile of profile.sh.
#   run(command="SAN=1 MS=256,1024,4096 bash bench/probe/device_int8.sh", carry=["build-probe"])
# env: B=folder of the binaries (default build-probe); SAN=1 memcheck + racecheck; AB=1 old/new durations; MS=list for bench_int8 (ascending; empty: no
# bench); PROFILE=1 bench/probe/profile.sh into $OUT/profile.
# Session 7 used it as: SAN=1 AB=1 PROFILE=1 MS=64,4096 (outlier epilogue), MS=64,128,256,1024 (plan),
# SAN=1 MS=256,1024,4096 (persistent kernel).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=${B:-build-probe}
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
timeout 200 $B/test_int8_gpu > "$OUT/test_int8_gpu.log" 2>&1; rc=$?
stamp "test_int8_gpu rc=$rc $(grep -E 'test cases' "$OUT/test_int8_gpu.log" | tail -1)"
[ $rc = 0 ] || grep -B5 -A25 FAILED "$OUT/test_int8_gpu.log" | head -80
if [ "${SAN:-0}" = 1 ]; then
  for tool in memcheck racecheck; do
    timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 $B/test_int8_gpu "[sanitize]" > "$OUT/${tool}_int8.log" 2>&1
    stamp "$tool int8 [sanitize] rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_int8.log" | tail -1)"
  done
  grep -hE "Race|Error|by thread|Invalid" "$OUT"/*check_int8.log | sed 's/0x[0-9a-f]*/0x./g' | sort | uniq -c | sort -rn | head -12
fi
if [ -x "$B/test_kernels_pdl_negative_midm" ]; then  # negative control: must FAIL (griddepcontrol.wait compiled out)
  timeout 120 $B/test_kernels_pdl_negative_midm "[pdl]" > "$OUT/pdl_negative_midm.log" 2>&1
  stamp "pdl negative control (mid-M, must fail) rc=$? $(grep -E 'test cases|assertions' "$OUT/pdl_negative_midm.log" | tail -1)"
fi
if [ "${AB:-0}" = 1 ]; then
  NCU="ncu --clock-control none --metrics gpu__time_duration.sum --csv"
  for v in old new; do
    P=$B/probe_kernels; [ $v = old ] && P=$B/probe_old
    for o in 0 8 64; do
      timeout 60 $NCU $P int8 8192 8192 4096 $o 1 > "$OUT/dur_${v}_m4096_o$o.csv" 2>&1
      stamp "durations $v o=$o: $(grep -E 'gemm_s8|prepare|act_|activation|zero_work' "$OUT/dur_${v}_m4096_o$o.csv" | tail -4 |
        awk -F'","' '{n=$5; sub(/\(.*/,"",n); printf "%s=%s ", substr(n,1,28), $NF}' | tr -d '"')"
    done
  done
fi
if [ -n "${MS:-}" ]; then
  timeout 300 $B/bench_int8 "$OUT/int8_bench.json" --ms=$MS > "$OUT/bench_int8.log" 2>&1
  stamp "bench_int8 rc=$?"
  grep -E "^K=|layer tiles|core tiles|gemv layer|ring layer|read-only" "$OUT/bench_int8.log" | cut -c1-175
fi
if [ "${PROFILE:-0}" = 1 ]; then  # many small files: packed into one archive
  mkdir -p /tmp/prof && OUT=/tmp/prof timeout 300 bash bench/probe/profile.sh > /tmp/prof/stdout.txt 2>&1
  tar czf "$OUT/profile.tgz" -C /tmp/prof .
  stamp "profile: $(tail -1 /tmp/prof/summary.txt)"
fi
stamp done
