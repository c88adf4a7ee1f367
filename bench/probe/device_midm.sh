#!/bin/bash
# One device call for a change to the weight-only mid-M kernel (midm_wgmma.cuh), from binaries prebuilt
# for sm_90a on the workstation and carried in build-mdc/ (test_kernels_midm_b{2,3,4,8},
# test_kernels_sanitize, probe_kernels, probe_old = the probe of the code before the change,
# bench_midm_kernels):
#   run(command="SAN=1 AB=1 BENCH=1 bash bench/probe/device_midm.sh", carry=["build-mdc"])
# env: TESTS=0 skips the mid-M tests; SAN=1 memcheck + racecheck on test_kernels_sanitize; AB=1 ncu durations (4-bit g128, M = 64 and
# 128, three shapes) of probe_old, probe_$AB_MID (if set) and probe_kernels; BENCH=1 bench_midm_kernels;
# GEMM=1 bench_gemm_kernels (all M, as dispatched); PROFILE=1 the "midm"
# set of profile.sh (ncu details + source counters) into $OUT/profile.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=build-mdc
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
cat $B/COMMIT 2>/dev/null | tee -a "$OUT/summary.txt"
for t in test_kernels_midm_b4 test_kernels_midm_b8 test_kernels_midm_b2 test_kernels_midm_b3; do
  [ -x $B/$t ] && [ "${TESTS:-1}" = 1 ] || continue
  timeout 240 $B/$t > "$OUT/$t.log" 2>&1; rc=$?
  stamp "$t rc=$rc $(grep -E 'test cases' "$OUT/$t.log" | tail -1)"
  [ $rc = 0 ] || grep -B5 -A25 FAILED "$OUT/$t.log" | head -60
done
if [ "${SAN:-0}" = 1 ]; then
  for tool in memcheck racecheck; do
    timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 $B/test_kernels_sanitize > "$OUT/${tool}_kernels.log" 2>&1
    stamp "$tool test_kernels_sanitize rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_kernels.log" | tail -1)"
  done
  grep -hE "Race|Error|by thread|Invalid" "$OUT"/*check_kernels.log | sed 's/0x[0-9a-f]*/0x./g' | sort | uniq -c | sort -rn | head -12
fi
if [ "${AB:-0}" = 1 ]; then
  NCU="ncu --clock-control none --metrics gpu__time_duration.sum --csv"
  for shape in "8192 8192" "8192 28672" "28672 8192"; do
    for m in 64 128; do
      line="K,N=${shape/ /,} M=$m:"
      for v in old ${AB_MID:-} new; do
        P=$B/probe_kernels; [ $v != new ] && P=$B/probe_$v
        timeout 60 $NCU $P w 4 $shape $m 3 > "$OUT/dur_${v}_${shape/ /x}_m$m.csv" 2>&1
        line="$line $v $(grep -E 'midm|gemm|decode' "$OUT/dur_${v}_${shape/ /x}_m$m.csv" | tail -3 |
          awk -F'","' '{printf "%s ", $NF}' | tr -d '"')"
      done
      stamp "$line"
    done
  done
fi
if [ "${BENCH:-0}" = 1 ]; then
  timeout 300 $B/bench_midm_kernels "$OUT/kernels_midm.json" > "$OUT/bench_midm.log" 2>&1
  stamp "bench_midm_kernels rc=$?"
  tail -40 "$OUT/bench_midm.log" | cut -c1-170
fi
if [ "${GEMM:-0}" = 1 ]; then  # every M as gemm dispatches it (decode, mid-M, tile kernels) vs cuBLAS fp16
  timeout 300 $B/bench_gemm_kernels "$OUT/kernels.json" > "$OUT/bench_gemm.log" 2>&1
  stamp "bench_gemm_kernels rc=$?"
fi
if [ "${PROFILE:-0}" = 1 ]; then
  mkdir -p /tmp/prof build-probe && cp $B/probe_kernels build-probe/probe_kernels  # profile.sh runs build-probe/
  OUT=/tmp/prof SET=midm timeout 200 bash bench/probe/profile.sh > /tmp/prof/stdout.txt 2>&1
  tar czf "$OUT/profile.tgz" -C /tmp/prof .
  stamp "profile: $(tail -1 /tmp/prof/summary.txt)"
fi
stamp done
# only a few files come back from a device call: the logs and CSVs travel as one archive
tar czf /tmp/logs.tgz -C "$OUT" --exclude=logs.tgz --exclude=summary.txt --exclude=profile.tgz --exclude=kernels_midm.json --exclude=kernels.json . &&
  find "$OUT" -type f ! -name summary.txt ! -name profile.tgz ! -name kernels_midm.json ! -name bench_midm.log ! -name kernels.json ! -name bench_gemm.log -delete &&
  mv /tmp/logs.tgz "$OUT/logs.tgz"
