#!/bin/bash
# Second device call for wip/next (2026-12-05, session 6): after the first call showed the warp-specialized
# kernels slower than the lock-step ones, gemm no longer dispatches them. This call builds the whole project
# for sm_90a, runs tests/gpu_verify.sh (every gpu ctest + memcheck/racecheck), pulls the racecheck hazard
# reports' kernel names and source lines out of the logs, then the benchmarks whose dispatch changed
# (bench_midm, M = 32-1024) and the full LLM.int8() sweep. Everything bulky goes into one logs.tgz.
# usage: run(command="bash bench/device_run_next2.sh", carry=[".deps"], timeout_s=600)
set -u
OUT=${OUT:-/tmp/out}; L=/tmp/next2-logs; mkdir -p "$OUT" "$L"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
left() { echo $(( 585 - ($(date +%s) - T0) )); }
git log --oneline -1 2>/dev/null | cut -c1-100
OUT=$L/verify timeout 420 bash tests/gpu_verify.sh build-gpu 90a > $L/verify.out 2>&1
stamp "gpu_verify rc=$?"
cat $L/verify/summary.txt 2>/dev/null | head -45; cp $L/verify/summary.txt "$OUT/" 2>/dev/null
for f in $L/verify/racecheck_*.log; do
  grep -q "hazards displayed (0 errors" "$f" && continue
  echo "== $f"; grep -E "Race|Error:|Warning:|at .* in |by thread" "$f" | sed 's/0x[0-9a-f]*/0x./g' | sort | uniq -c | sort -rn | head -25
done
[ -f $L/verify/build.log ] && grep -E "error" $L/verify/build.log | head -20
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
bm=$(find build-gpu -type f -name bench_midm_kernels -perm -u+x | head -1)
bi=$(find build-gpu -type f -name bench_int8 -perm -u+x | head -1)
bd=$(find build-gpu -type f -name bench_dequant_gemm -perm -u+x | head -1)
[ -n "$bm" ] && [ $(left) -gt 60 ] && { timeout $(( $(left) - 30 )) $bm "$OUT/kernels_midm_${DEV}_$D.json" > $L/bench_midm.log 2>&1; stamp "bench_midm rc=$?"; }
[ -n "$bi" ] && [ $(left) -gt 60 ] && { timeout $(( $(left) - 15 )) $bi "$OUT/int8_${DEV}_$D.json" > $L/bench_int8.log 2>&1; stamp "bench_int8 rc=$?"; }
[ -n "$bd" ] && [ $(left) -gt 40 ] && { timeout $(( $(left) - 5 )) $bd "$OUT/dequant_gemm_${DEV}_$D.json" > $L/bench_dq.log 2>&1; stamp "bench_dequant_gemm rc=$?"; }
grep -E "gemm |wgmma-W|large-L128" $L/bench_midm.log 2>/dev/null | grep -E "^4 +128 +asym" | head -40
grep -E "^K=.*out= 8" $L/bench_int8.log 2>/dev/null | head -30
tar czf "$OUT/logs.tgz" -C $L . 2>/dev/null
stamp done
