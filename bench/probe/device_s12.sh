#!/bin/bash
# session 12: ring access probe (build-probe/ring_access), then session 11's act-rows call (device_act_rows.sh on
# wip/int8-act-rows), one device call, from binaries prebuilt in git-ignored build-tune/, build-i8/, build-ring/:
#   run(command="bash bench/probe/device_s12.sh", carry=["build-tune", "build-ring", "build-i8", "build-probe"])
# (1) two-slab planner rule: tests + --tune (build-tune); (2) int8 one-kernel activation pass
# with grouped row loads: tests, memcheck/racecheck [sanitize], bench (build-i8); (3) A/B: bench of the previous act
# kernel + the 256-byte warp-tile path (build-ring); (4) bench --decode record (build-tune). Deadline 520 s.
set -u
O=$OUT; L=/tmp/l; mkdir -p $L; T0=$(date +%s)
st() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a $O/summary.txt; }
left() { local l=$(( 520 - ($(date +%s) - T0) )); (( l > $1 )) && l=$1; (( l < 1 )) && l=1; echo $l; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/summary.txt
cat build-tune/COMMIT build-i8/COMMIT build-ring/COMMIT >> $O/summary.txt
last() { grep -E 'test cases|All tests' "$1" | tail -1; }
timeout 90 build-probe/ring_access $O/ring_access.json > $O/ring_access.log 2>&1; st "ring_access rc=$?"
cat $O/ring_access.log
B=build-tune
timeout $(left 30) $B/test_kernels_plan > $L/plan.log 2>&1; st "plan rc=$? $(last $L/plan.log)"
timeout $(left 90) $B/test_kernels_tune > $L/tune.log 2>&1; st "tune rc=$? $(last $L/tune.log)"
timeout $(left 60) $B/test_linear "[tune]" > $L/linear.log 2>&1; st "linear [tune] rc=$? $(last $L/linear.log)"
timeout $(left 60) $B/test_kernels_gemm_b4_f16 > $L/gemm_b4.log 2>&1; st "gemm_b4_f16 rc=$? $(last $L/gemm_b4.log)"
timeout $(left 60) $B/bench_gemm_kernels $O/kernels_tune.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$? $(tail -1 $L/kernels_tune.log)"
timeout $(left 120) build-i8/test_int8_gpu > $L/int8_tests.log 2>&1; st "int8 tests rc=$? $(last $L/int8_tests.log)"
san() {
  timeout $(left 100) compute-sanitizer --tool $1 --error-exitcode 9 build-i8/test_int8_gpu "[sanitize]" > $L/$1_int8.log 2>&1
  st "$1 int8 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $L/$1_int8.log | tail -1)"
}
san memcheck
timeout $(left 100) build-i8/bench_int8 $O/int8_new.json --ms=1,4,16 > $L/int8_new.log 2>&1; st "int8 bench new rc=$?"
timeout $(left 100) build-ring/bench_int8 $O/int8_old.json --ms=1,4,16 > $L/int8_old.log 2>&1; st "int8 bench old+warp rc=$?"
san racecheck
timeout $(left 120) $B/bench_gemm_kernels $O/kernels_decode.json --decode > $L/kernels_decode.log 2>&1; st "--decode rc=$?"
grep -E "^K=|ring layer|gemv layer|per-warp" $L/int8_new.log | head -40
echo ---- old; grep -E "^K=|ring layer|gemv layer|per-warp" $L/int8_old.log | head -40
tar czf $O/logs.tgz -C $L .
st done
