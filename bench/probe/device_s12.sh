#!/bin/bash
# Session 12, one device call from binaries prebuilt in git-ignored folders:
#   run(command="bash bench/probe/device_s12.sh", carry=["build-tune", "build-ring", "build-i8", "build-probe", "build-fused"])
# (1) ring_access probe (build-probe); (2) main's two-slab decode rule: tests + --tune (build-tune);
# (3) wip/int8-fused-act: int8 GPU tests, memcheck [sanitize], bench M = 1, 4, 16 (fused vs unfused in the
# same run), racecheck (build-fused); (4) session 11's waiting branches: wip/int8-act-rows (build-i8)
# and wip/int8-warp (build-ring): tests + bench. Deadline 380 s (budget).
DEADLINE=380 DIRS="build-tune build-fused build-i8 build-ring"
source bench/probe/device_lib.sh
timeout $(left 40) build-probe/ring_access $O/ring_access.json > $L/ring_access.log 2>&1; st "ring_access rc=$?"
cat $L/ring_access.log
F=build-fused
timeout $(left 90) $F/test_int8_gpu > $L/fused_tests.log 2>&1; st "fused int8 tests rc=$? $(last $L/fused_tests.log)"
grep -B5 -A15 "FAILED" $L/fused_tests.log | head -60
timeout $(left 80) $F/bench_int8 $O/int8_fused.json --ms=1,4 > $L/int8_fused.log 2>&1; st "fused bench rc=$?"
grep -E "^K=|layer|M=" $L/int8_fused.log | head -60
san() {
  timeout $(left $3) compute-sanitizer --tool $1 --error-exitcode 9 $2/test_int8_gpu "[sanitize]" > $L/$1_$(basename $2).log 2>&1
  st "$1 $2 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|test cases' $L/$1_$(basename $2).log | tail -2 | tr '\n' ' ')"
}
san memcheck $F 80
B=build-tune
timeout $(left 30) $B/test_kernels_plan > $L/plan.log 2>&1; st "plan rc=$? $(last $L/plan.log)"
timeout $(left 60) $B/test_kernels_gemm_b4_f16 > $L/gemm_b4.log 2>&1; st "gemm_b4_f16 rc=$? $(last $L/gemm_b4.log)"
timeout $(left 50) $B/bench_gemm_kernels $O/kernels_tune.json --tune > $L/kernels_tune.log 2>&1; st "--tune rc=$? $(tail -1 $L/kernels_tune.log)"
san racecheck $F 80
timeout $(left 60) build-i8/bench_int8 $O/int8_actrows.json --ms=1,4,16 > $L/int8_actrows.log 2>&1; st "act-rows bench rc=$?"
timeout $(left 60) build-ring/bench_int8 $O/int8_warp.json --ms=1,4,16 > $L/int8_warp.log 2>&1; st "warp-ring bench rc=$?"
tar czf $O/logs.tgz -C $L .
st done
