#!/bin/bash
# One device call for the mid-M kernel (midm.cuh): GPU tests (its sweeps, the gemm sweeps that now route
# 16 < M <= 256 to it, planner, sanitizer binary), compute-sanitizer memcheck + racecheck on
# test_kernels_sanitize, and bench_midm_kernels (JSON). Logs and JSON go to $OUT.
# usage (GPU machine, repo root): bench/kernels/device_run_midm.sh [--no-tests] [--no-bench] [--quick]
# With a carried build-midmpack/bins.tar.xz (tests/kernels/* and bench/kernels/bench_midm_kernels built
# on the workstation for sm_90a) nothing is compiled on the device.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
TESTS=1; BENCH=1; Q=""
for a in "$@"; do case $a in --no-tests) TESTS=0;; --no-bench) BENCH=0;; --quick) Q=--quick;; esac; done
exec > >(tee "$OUT/device_run_midm.log") 2>&1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
T0=$(date +%s)
B=build-midm
# binaries built on the workstation travel as one xz tarball (carry=["build-midmpack", ".deps"])
if [ -f build-midmpack/bins.tar.xz ]; then mkdir -p $B && tar xJf build-midmpack/bins.tar.xz -C $B; fi
if [ ! -x $B/tests/kernels/test_kernels_midm_b4 ]; then
  G=""; command -v ninja >/dev/null && G="-G Ninja"
  cmake $G -S . -B $B -DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  T="bench_midm_kernels test_kernels_plan test_kernels_sanitize"
  for b in 2 3 4 8; do T="$T test_kernels_midm_b$b"; for t in f16 bf16; do T="$T test_kernels_gemm_b${b}_${t}"; done; done
  timeout 400 cmake --build $B --target $T -j16 > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
fi
echo "build: $(( $(date +%s) - T0 )) s"
TB=$B/tests/kernels
if [ $TESTS = 1 ]; then
  L=/tmp/klogs; rm -rf $L; mkdir -p $L; pids=""
  for t in $TB/test_kernels_midm_b* $TB/test_kernels_gemm_b* $TB/test_kernels_plan $TB/test_kernels_sanitize; do [ -x "$t" ] || continue
    ( n=$(basename $t); timeout 200 $t > "$L/$n.log" 2>&1; echo "$n rc=$?" ) & pids="$pids $!"; done
  ( timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $TB/test_kernels_sanitize > "$L/memcheck.log" 2>&1; echo "memcheck rc=$?" ) & pids="$pids $!"
  ( timeout 240 compute-sanitizer --tool racecheck --error-exitcode 9 $TB/test_kernels_sanitize > "$L/racecheck.log" 2>&1; echo "racecheck rc=$?" ) & pids="$pids $!"
  wait $pids
  for f in $L/test_kernels_*.log; do echo "===== $f"; head -c 200000 "$f"; done > "$OUT/tests.log"
  for f in $L/test_kernels_*.log; do grep -E "All tests passed|test cases:" "$f" | sed "s|^|$(basename $f): |"; done
  grep -h -B3 -A16 "FAILED" $L/test_kernels_*.log | head -80
  cp $L/memcheck.log $L/racecheck.log "$OUT/"; tail -3 $L/memcheck.log; tail -3 $L/racecheck.log
  echo "tests + sanitizers: $(( $(date +%s) - T0 )) s"
fi
if [ $BENCH = 1 ]; then
  DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
  timeout ${BENCH_TIMEOUT:-300} $B/bench/kernels/bench_midm_kernels "$OUT/kernels_midm_${DEV}.json" $Q > "$OUT/bench_midm.log" 2>&1
  echo "bench rc=$?"; cat "$OUT/bench_midm.log"
fi
echo "total: $(( $(date +%s) - T0 )) s"
