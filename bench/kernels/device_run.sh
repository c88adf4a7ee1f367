#!/bin/bash
# One device call does everything for the kernels module: configure + build, host + GPU tests,
# compute-sanitizer (memcheck, racecheck) on a reduced set, the benchmark (JSON) and the plot (PNG).
# usage (on the GPU machine, repo root): bench/kernels/device_run.sh [--quick] [--no-tests]; writes to $OUT.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
QUICK=""; TESTS=1
for a in "$@"; do case $a in --quick) QUICK=--quick;; --no-tests) TESTS=0;; esac; done
exec > >(tee "$OUT/device_run.log") 2>&1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
T0=$(date +%s)
if [ -d build-kbin ]; then  # binaries prebuilt on the workstation for sm_90 (carried in): no build here
  BIN=build-kbin; TB=build-kbin; BB=build-kbin
else
cmake -S . -B build-dev -DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
TARGETS="bench_gemm_kernels"
if [ $TESTS = 1 ]; then
  TARGETS="$TARGETS test_kernels_layout_host test_kernels_convert test_kernels_sanitize"
  for b in 2 3 4 8; do for t in f16 bf16; do TARGETS="$TARGETS test_kernels_gemm_b${b}_${t}"; done; done
fi
cmake --build build-dev --target $TARGETS -j16 > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
TB=build-dev/tests/kernels; BB=build-dev/bench/kernels
fi
echo "build: $(( $(date +%s) - T0 )) s"
if [ $TESTS = 1 ]; then
  pids=""
  L=/tmp/klogs; rm -rf $L; mkdir -p $L
  for t in $TB/test_kernels_*; do [ -x "$t" ] || continue; ( n=$(basename $t); timeout 70 $t > "$L/$n.log" 2>&1; rc=$?; echo "$n rc=$rc" ) & pids="$pids $!"; done; wait $pids  # not a bare wait: it would also wait for the tee
  for f in $L/test_kernels_*.log; do echo "===== $f"; cat "$f"; done > "$OUT/tests.log"
  for f in $L/test_kernels_*.log; do grep -E "All tests passed|test cases:" "$f" | sed "s|^|$(basename $f): |"; done
  grep -h -B3 -A12 "FAILED" $L/test_kernels_*.log | head -60
  echo "tests done: $(( $(date +%s) - T0 )) s"
fi
EX=$( [ -x build-kbin/example_fused_gate_up ] && echo build-kbin/example_fused_gate_up || echo build-dev/examples/fused_gate_up/example_fused_gate_up )
[ -x "$EX" ] && { $EX; $EX 16 4096 14336; echo "example rc=$?"; } 2>&1 | tee "$OUT/example.log"
DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
$BB/bench_gemm_kernels "$OUT/kernels_${DEV}_2026-11-22.json" $QUICK > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; cat "$OUT/bench.log"
python3 bench/kernels/plot_speedup.py "$OUT/kernels_${DEV}_2026-11-22.json" "$OUT/kernels_${DEV}_2026-11-22.png" || true
if [ $TESTS = 1 ]; then
  timeout 30 compute-sanitizer --tool memcheck --error-exitcode 9 $TB/test_kernels_sanitize > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?"; tail -3 "$OUT/memcheck.log"
  timeout 30 compute-sanitizer --tool racecheck --error-exitcode 9 $TB/test_kernels_sanitize > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?"; tail -3 "$OUT/racecheck.log"
fi
echo "total: $(( $(date +%s) - T0 )) s"
