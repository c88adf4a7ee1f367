#!/usr/bin/env bash
# One device call for the int8 module: build (nvcc directly, sm_90a), host + GPU tests, compute-sanitizer
# memcheck + racecheck on the [sanitize] subset (after the benchmark), SASS check for IMMA/IGMMA, benchmark JSON + plot.
# Everything lands in $OUT; a short summary is printed last.  Usage: bench/int8/device_run.sh [all|tests|bench]
set -u
MODE=${1:-all}
OUT=${OUT:-/tmp/int8_out}
mkdir -p "$OUT" build-int8
DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
NVCC="nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -DLOWBIT_INT8_WGMMA=1 --expt-relaxed-constexpr -Iinclude -I.deps/root/usr/include"
T0=$(date +%s)
( [ -f build-int8/catch_main.o ] || $NVCC -x cu -c tests/catch_main.cpp -o build-int8/catch_main.o ) > "$OUT/build_catch.log" 2>&1 &
$NVCC -Xptxas -v -lineinfo tests/int8/test_int8_gpu.cu -c -o build-int8/test_int8_gpu.o > "$OUT/build_test.log" 2>&1 &
$NVCC -lineinfo bench/int8/bench_int8.cu -o build-int8/bench_int8 -lcublas -lcublasLt > "$OUT/build_bench.log" 2>&1 &
g++ -std=c++20 -O2 -Iinclude -I.deps/root/usr/include tests/int8/test_int8_host.cpp tests/catch_main.cpp -o build-int8/test_int8_host > "$OUT/build_host.log" 2>&1 &
wait
$NVCC build-int8/test_int8_gpu.o build-int8/catch_main.o -o build-int8/test_int8_gpu >> "$OUT/build_test.log" 2>&1
echo "build: $(( $(date +%s) - T0 )) s" | tee "$OUT/summary.txt"
for f in build_catch build_test build_bench build_host; do grep -E "error" "$OUT/$f.log" | head -5; done
cuobjdump -sass build-int8/bench_int8 > "$OUT/bench.sass" 2>/dev/null
echo "SASS: IMMA $(grep -c IMMA "$OUT/bench.sass"), IGMMA $(grep -c GMMA "$OUT/bench.sass"), LDSM $(grep -c LDSM "$OUT/bench.sass"), LDG.E.128 $(grep -c 'LDG.E.*128' "$OUT/bench.sass"), LDL $(grep -c 'LDL' "$OUT/bench.sass")" | tee -a "$OUT/summary.txt"
gzip -f "$OUT/bench.sass"

if [ "$MODE" != bench ]; then
  timeout 60 build-int8/test_int8_host > "$OUT/test_host.log" 2>&1; echo "host tests rc=$? $(tail -2 "$OUT/test_host.log" | head -1)" | tee -a "$OUT/summary.txt"
  timeout ${GPU_TEST_TIMEOUT:-120} build-int8/test_int8_gpu > "$OUT/test_gpu.log" 2>&1; echo "gpu tests rc=$? $(grep -E 'test cases|All tests' "$OUT/test_gpu.log" | tail -1)" | tee -a "$OUT/summary.txt"
  grep -B3 -A12 -E "FAILED|failed" "$OUT/test_gpu.log" | head -60
fi
if [ "$MODE" != tests ]; then
  JSON="$OUT/int8_${DEV}_2026-12-05.json"
  timeout ${BENCH_TIMEOUT:-150} build-int8/bench_int8 "$JSON" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1; echo "bench rc=$?" | tee -a "$OUT/summary.txt"
  python3 bench/int8/plot_int8.py "$JSON" "$OUT/int8_${DEV}_2026-12-05.png" >> "$OUT/bench.log" 2>&1 || echo "plot failed" | tee -a "$OUT/summary.txt"
  cut -c1-175 "$OUT/bench.log" | tail -80
fi
if [ "$MODE" != bench ]; then
  timeout ${SAN_TIMEOUT:-90} compute-sanitizer --tool memcheck --error-exitcode 9 build-int8/test_int8_gpu "[sanitize]" > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)" | tee -a "$OUT/summary.txt"
  timeout ${SAN_TIMEOUT:-90} compute-sanitizer --tool racecheck --error-exitcode 9 build-int8/test_int8_gpu "[sanitize]" > "$OUT/racecheck.log" 2>&1; echo "racecheck rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/racecheck.log" | tail -1)" | tee -a "$OUT/summary.txt"
  grep -m8 -A3 -E "Invalid|Race reported|Hazard" "$OUT/memcheck.log" "$OUT/racecheck.log" | cut -c1-220 | head -40
fi
cat "$OUT/summary.txt"
# few files come back from a device call: pack the logs (JSON, PNG and bench.log stay separate)
( cd "$OUT" && tar czf logs.tgz $(ls | grep -vE '\.(json|png|tgz)$|^bench\.log$') 2>/dev/null && \
  ls | grep -vE '\.(json|png|tgz)$|^bench\.log$' | xargs rm -f )
