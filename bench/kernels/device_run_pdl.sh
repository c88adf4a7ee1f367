#!/bin/bash
# One device call for the decode kernel's programmatic dependent launch (branch wip/decode-pdl):
# build for sm_90a, the kernels GPU tests (gemm sweeps + the PDL chained/back-to-back checks, planner,
# sanitize cases), compute-sanitizer memcheck + racecheck on test_kernels_sanitize, and the M <= 16
# benchmark (decode kernel with and without PDL next to cuBLAS fp16, same run). Logs and JSON go to
# $OUT; every step runs under `timeout`; the whole call should take 4-8 minutes.
#
# usage (device machine, repo root; Catch2 comes from the carried .deps):
#   run(command="bench/kernels/device_run_pdl.sh", carry=[".deps"], kind="nvidia-h200")
# order: build, tests (+ negative control), benchmark, sanitizers (each gets half of what is left of a
# 590 s budget; skipped if that is under 40 s: rerun them with --no-tests --no-bench). Use timeout_s=600.
# options: --no-tests, --no-bench, --no-sanitize, --tests-only, BENCH_MODE=--decode (default) | --quick | ""
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
TESTS_ON=1; BENCH=1; SAN=1
for a in "$@"; do case $a in --no-tests) TESTS_ON=0;; --no-bench) BENCH=0;; --no-sanitize) SAN=0;; --tests-only) BENCH=0; SAN=0;; esac; done
BENCH_MODE=${BENCH_MODE---decode}
exec > >(tee "$OUT/device_run_pdl.log") 2>&1
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
git log --oneline -1 2>/dev/null || true

B=build-pdl-dev
TESTS="test_kernels_plan test_kernels_sanitize"
for b in 2 3 4 8; do for t in f16 bf16; do TESTS="$TESTS test_kernels_gemm_b${b}_${t}"; done; done
TARGETS="$TESTS test_kernels_pdl_negative"; [ $BENCH = 1 ] && TARGETS="$TARGETS bench_gemm_kernels"

# Build. CMake's top-level Makefile is .NOTPARALLEL (several --target goals build one after the other,
# ~6 min for the kernels targets): with Ninja one `cmake --build` builds all targets in parallel; without
# it the goals go to CMakeFiles/Makefile2, which has no such line and orders the shared Catch2 main first.
GEN=""; command -v ninja > /dev/null && GEN="-G Ninja"
timeout 90 cmake -S . -B $B $GEN -DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > "$OUT/cmake.log" 2>&1 || { echo "configure failed"; tail -30 "$OUT/cmake.log"; exit 1; }
if [ -n "$GEN" ]; then
  timeout 360 cmake --build $B --target $TARGETS -j16 > "$OUT/build.log" 2>&1
else
  GOALS=""
  for t in $TARGETS; do d=$(cd $B && find . -type d -name "$t.dir" | head -1); GOALS="$GOALS ${d#./}/all"; done
  (cd $B && timeout 360 make -f CMakeFiles/Makefile2 -j16 $GOALS) > "$OUT/build.log" 2>&1
fi
rc=$?; stamp "build rc=$rc"
[ $rc = 0 ] || { grep -E "error|Error" "$OUT/build.log" | head -40; }
TB=$B/tests/kernels; BB=$B/bench/kernels

# GPU tests: one binary at a time (the PDL checks want the GPU to themselves: a concurrent process
# would hide the overlap they provoke). The [pdl] cases first, so their result is in even if a sweep hangs.
for t in $TESTS; do
  [ $TESTS_ON = 1 ] || break
  [ -x "$TB/$t" ] || { echo "$t: NOT BUILT"; continue; }
  case $t in test_kernels_gemm_*)
    timeout 60 $TB/$t "[pdl]" -d yes > "$OUT/$t.pdl.log" 2>&1; echo "$t [pdl] rc=$?"
    grep -E "test cases|FAILED|with expansion|PDL|relative error|steps off" "$OUT/$t.pdl.log" | head -20
    timeout 90 $TB/$t "~[pdl]" > "$OUT/$t.log" 2>&1; echo "$t (sweep) rc=$?"
    grep -E "test cases|FAILED" "$OUT/$t.log" | head -5;;
  *)
    timeout 150 $TB/$t > "$OUT/$t.log" 2>&1; echo "$t rc=$?"; grep -E "test cases|FAILED" "$OUT/$t.log" | head -5;;
  esac
done
# Negative control: the same [pdl] cases with griddepcontrol.wait compiled out of the decode kernel must
# FAIL here (sm_90: the GEMM starts while the kernel producing its activations still runs).
if [ $TESTS_ON = 1 ] && [ -x "$TB/test_kernels_pdl_negative" ]; then
  timeout 60 $TB/test_kernels_pdl_negative "[pdl]" > "$OUT/test_kernels_pdl_negative.log" 2>&1; rc=$?
  if [ $rc = 0 ]; then echo "NEGATIVE CONTROL DID NOT FAIL (rc=0): the [pdl] tests would not catch a missing wait";
  else echo "negative control failed as it must (rc=$rc)"; fi
  grep -E "test cases|steps off" "$OUT/test_kernels_pdl_negative.log" | head -8
fi
stamp "tests done"

if [ $BENCH = 1 ] && [ -x $BB/bench_gemm_kernels ]; then
  DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
  J="$OUT/kernels_pdl_${DEV}_$(date -u +%F).json"
  timeout 240 $BB/bench_gemm_kernels "$J" $BENCH_MODE > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"; grep -v "^sweep" "$OUT/bench.log"
  stamp "bench done"
fi
# each sanitizer gets half of what is left of a 590 s budget (at most 150 s), none if under 40 s
TS=$(( (590 - ($(date +%s) - T0)) / 2 )); [ $TS -gt 150 ] && TS=150
if [ $SAN = 1 ] && [ $TS -lt 40 ]; then
  echo "sanitizers SKIPPED (elapsed $(( $(date +%s) - T0 )) s): rerun with --no-tests --no-bench"
elif [ $SAN = 1 ] && [ -x $TB/test_kernels_sanitize ]; then
  timeout $TS compute-sanitizer --tool memcheck --error-exitcode 9 $TB/test_kernels_sanitize > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$? (limit $TS s)"; tail -4 "$OUT/memcheck.log"
  timeout $TS compute-sanitizer --tool racecheck --error-exitcode 9 $TB/test_kernels_sanitize > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$? (limit $TS s)"; tail -4 "$OUT/racecheck.log"
  stamp "sanitizers done"
fi

stamp "total"
