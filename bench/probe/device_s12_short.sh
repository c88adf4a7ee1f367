#!/bin/bash
# Session 12, the short call (the device budget after failed starts): wip/int8-fused-act's int8 tests,
# bench (fused and unfused layer, same run), memcheck; the ring_access probe; main's 4-bit GEMM suite
# (the two-slab rule's default path). From binaries in git-ignored build-fused/, build-probe/, build-tune/:
#   run(command="bash bench/probe/device_s12_short.sh", carry=["build-fused", "build-probe", "build-tune"])
# Deadline 230 s.
DEADLINE=230 DIRS="build-fused build-probe build-tune"
source bench/probe/device_lib.sh
F=build-fused
timeout $(left 70) $F/test_int8_gpu > $L/fused_tests.log 2>&1; st "fused int8 tests rc=$? $(last $L/fused_tests.log)"
grep -B5 -A15 "FAILED" $L/fused_tests.log | head -40
timeout $(left 65) stdbuf -oL $F/bench_int8 $O/int8_fused.json --ms=1,4 > $L/int8_fused.log 2>&1; st "fused bench rc=$?"
grep -E "^K=|layer|M=" $L/int8_fused.log | head -40
timeout $(left 30) stdbuf -oL build-probe/ring_access $O/ring_access.json > $L/ring_access.log 2>&1; st "ring_access rc=$?"
cat $L/ring_access.log
timeout $(left 40) build-tune/test_kernels_gemm_b4_f16 > $L/gemm_b4.log 2>&1; st "gemm_b4_f16 rc=$? $(last $L/gemm_b4.log)"
timeout $(left 80) compute-sanitizer --tool memcheck --error-exitcode 9 $F/test_int8_gpu "[sanitize]" > $L/memcheck.log 2>&1
st "memcheck fused rc=$? $(grep -E 'ERROR SUMMARY|test cases' $L/memcheck.log | tail -2 | tr '\n' ' ')"
st done
