#!/bin/bash
# One device call does everything for the kernels module: configure + build, GPU tests (ctest -L gpu),
# compute-sanitizer (memcheck, racecheck) on a reduced set, the benchmark (JSON) and the plot (PNG).
# usage (on the GPU machine, repo root): bench/kernels/device_run.sh [--quick|--decode|--full] [--no-tests] [--no-bench]
# writes logs, JSON and PNG to $OUT. With a carried build-kbin/ (binaries built on the workstation for
# sm_90: `run(..., carry=["build-kbin"])`) nothing is compiled on the device (a device build of every
# kernels target took ~6 min of the call). KBIN=dir names another flat folder of prebuilt binaries; a
# bench_gemm_kernels_before binary there (the previous commit's kernels) is benchmarked in the same call.
set -u
KBIN=${KBIN:-build-kbin}
DATE=$(date -u +%F)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
MODE="--decode"; TESTS=1; BENCH=1
for a in "$@"; do case $a in --quick) MODE=--quick;; --decode) MODE=--decode;; --full) MODE="";; --no-tests) TESTS=0;; --no-bench) BENCH=0;; esac; done
exec > >(tee "$OUT/device_run.log") 2>&1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
T0=$(date +%s)
if [ -d "$KBIN" ]; then
  TB=$KBIN; BB=$KBIN; EX=$KBIN/example_fused_gate_up
else
  cmake -S . -B build-dev -DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  TARGETS=""
  [ $BENCH = 1 ] && TARGETS="bench_gemm_kernels"
  if [ $TESTS = 1 ]; then
    TARGETS="$TARGETS test_kernels_layout_host test_kernels_plan test_kernels_convert test_kernels_sanitize example_fused_gate_up"
    for b in 2 3 4 8; do for t in f16 bf16; do TARGETS="$TARGETS test_kernels_gemm_b${b}_${t}"; done; done
  fi
  cmake --build build-dev --target $TARGETS -j16 > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
  TB=build-dev/tests/kernels; BB=build-dev/bench/kernels; EX=build-dev/examples/fused_gate_up/example_fused_gate_up
fi
echo "build: $(( $(date +%s) - T0 )) s"
if [ $TESTS = 1 ]; then
  L=/tmp/klogs; rm -rf $L; mkdir -p $L; pids=""
  for t in $TB/test_kernels_*; do [ -x "$t" ] || continue
    ( n=$(basename $t); timeout 150 $t > "$L/$n.log" 2>&1; echo "$n rc=$?" ) & pids="$pids $!"; done
  wait $pids  # not a bare wait: it would also wait for the tee
  for f in $L/test_kernels_*.log; do echo "===== $f"; cat "$f"; done > "$OUT/tests.log"
  for f in $L/test_kernels_*.log; do grep -E "All tests passed|test cases:" "$f" | sed "s|^|$(basename $f): |"; done
  grep -h -B3 -A14 "FAILED" $L/test_kernels_*.log | head -60
  echo "tests done: $(( $(date +%s) - T0 )) s"
  [ -x "$EX" ] && { timeout 30 $EX 16 4096 14336; echo "example rc=$?"; } > "$OUT/example.log" 2>&1; tail -3 "$OUT/example.log"
  timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 $TB/test_kernels_sanitize > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?"; tail -4 "$OUT/memcheck.log"
  timeout 100 compute-sanitizer --tool racecheck --error-exitcode 9 $TB/test_kernels_sanitize > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?"; tail -4 "$OUT/racecheck.log"
  echo "sanitizers done: $(( $(date +%s) - T0 )) s"
fi
if [ $BENCH = 1 ]; then
  DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
  if [ -x $BB/bench_gemm_kernels_before ]; then
    timeout ${BENCH_TIMEOUT:-240} $BB/bench_gemm_kernels_before "$OUT/kernels_before_${DEV}_${DATE}.json" $MODE > "$OUT/bench_before.log" 2>&1
    echo "bench (before) rc=$?"; grep -v "^sweep" "$OUT/bench_before.log"
  fi
  timeout ${BENCH_TIMEOUT:-240} $BB/bench_gemm_kernels "$OUT/kernels_${DEV}_${DATE}.json" $MODE > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"; cat "$OUT/bench.log"
  python3 bench/kernels/plot_speedup.py "$OUT/kernels_${DEV}_${DATE}.json" "$OUT/kernels_${DEV}_${DATE}.png" || true
fi
echo "total: $(( $(date +%s) - T0 )) s"
