#!/bin/bash
# (Session 6: ran once, on the H100, as the first device call of wip/next; its log is
# bench/results/device_run_wip_NVIDIA_H100_80GB_HBM3_2026-12-05.log. For whole-project checks from a
# prebuilt pack use bench/device_run_pack.sh; the warp-specialized weight-only kernels it names now live on
# branch wip/ws-kernels.)
# First device call for branch wip/next, every unverified kernel change stacked on main: the decode
# kernel's PDL, the warp-specialized mid-M kernel (midm_ws.cuh), the warp-specialized TMA int8 core +
# per-warp ring arrivals, the large-M kernel (large_ws.cuh), the int8 WS epilogue's named barrier, the
# setmaxnreg register check. Unpacks $PACK/bins.tar.xz (sm_90a binaries built on the workstation by
# bench/make_pack.sh from the commit $PACK/COMMIT names) or, when those do not run here, builds them.
# Runs the tests that exercise the new kernels first (each under `timeout`: a hang shows as rc=124 and
# points at an mbarrier protocol), the PDL negative control (must FAIL), compute-sanitizer on the new
# kernels' small cases, then the benchmarks (cuBLAS in the same run). Logs and JSON go to $OUT.
# The whole-project tests/gpu_verify.sh is the second call.
#
# usage (device machine, repo root, branch wip/next checked out):
#   run(command="bash bench/device_run_wip.sh", carry=[".deps", "build-nextpack"], timeout_s=600)
# (older packs: PACK=build-wippack for wip/all, PACK=build-wippack-large for wip/large-ss)
# options: --no-bench, --bench-only
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
TESTS_ON=1; BENCH=1
for a in "$@"; do case $a in --no-bench) BENCH=0;; --bench-only) TESTS_ON=0;; esac; done
exec > >(tee "$OUT/device_run_wip.log") 2>&1
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
left() { echo $(( 590 - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
git log --oneline -1 2>/dev/null || true

B=build-wip
PACK=${PACK:-build-nextpack}
TESTS="test_kernels_plan test_int8_plan test_kernels_midm_b4 test_kernels_midm_b8 test_kernels_sanitize test_kernels_gemm_b4_f16 test_int8_gpu"
BENCHES="bench_midm_kernels bench_int8 bench_gemm_kernels"
TARGETS="$TESTS test_kernels_pdl_negative $BENCHES"
find_bin() { find $B -type f -name "$1" -perm -u+x 2>/dev/null | head -1; }

if [ -f $PACK/bins.tar.xz ]; then
  mkdir -p $B && tar xJf $PACK/bins.tar.xz -C $B && stamp "unpacked prebuilt binaries of $(head -c 300 $PACK/COMMIT 2>/dev/null)"
fi
# a pack built on another machine may not run here (C library version): then build on the device
if [ -f $PACK/bins.tar.xz ]; then
  pl=$(find_bin test_kernels_plan)
  if [ -z "$pl" ] || ! timeout 60 $pl > "$OUT/pack_check.log" 2>&1; then
    stamp "prebuilt binaries do not run here ($(tail -c 300 "$OUT/pack_check.log" 2>/dev/null)): building instead"
    rm -rf $B
  fi
fi
missing=0; for t in $TARGETS; do [ -n "$(find_bin $t)" ] || missing=1; done
if [ $missing = 1 ]; then
  GEN=""; command -v ninja > /dev/null && GEN="-G Ninja"
  timeout 90 cmake -S . -B $B $GEN -DCMAKE_PREFIX_PATH=$PWD/.deps/root/usr -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  if [ -n "$GEN" ]; then
    timeout 330 cmake --build $B --target $TARGETS -j16 > "$OUT/build.log" 2>&1
  else  # the top-level Makefile builds several --target goals one after the other: use Makefile2
    GOALS=""; for t in $TARGETS; do d=$(cd $B && find . -type d -name "$t.dir" | head -1); GOALS="$GOALS ${d#./}/all"; done
    (cd $B && timeout 330 make -f CMakeFiles/Makefile2 -j16 $GOALS) > "$OUT/build.log" 2>&1
  fi
  stamp "build rc=$?"; grep -E "error" "$OUT/build.log" | head -30
fi

if [ $TESTS_ON = 1 ]; then
  for t in $TESTS; do
    bin=$(find_bin $t); [ -n "$bin" ] || { echo "$t: NOT BUILT"; continue; }
    case $t in
      test_kernels_gemm_b4_f16)  # PDL chains first, then the sweep (M 17-256 now routes to the WS kernel)
        timeout 60 $bin "[pdl]" > "$OUT/$t.pdl.log" 2>&1; stamp "$t [pdl] rc=$?"
        grep -E "test cases|FAILED" "$OUT/$t.pdl.log" | head -5
        timeout 120 $bin "~[pdl]" > "$OUT/$t.log" 2>&1; stamp "$t rc=$?";;
      *) timeout 150 $bin > "$OUT/$t.log" 2>&1; stamp "$t rc=$?";;
    esac
    grep -E "test cases|FAILED" "$OUT/$t.log" 2>/dev/null | head -5
    grep -h -B2 -A12 "FAILED" "$OUT/$t.log" 2>/dev/null | head -40
  done
  neg=$(find_bin test_kernels_pdl_negative)
  if [ -n "$neg" ]; then  # griddepcontrol.wait compiled out: the [pdl] chains must catch it
    timeout 60 $neg "[pdl]" > "$OUT/pdl_negative.log" 2>&1; rc=$?
    stamp "PDL negative control rc=$rc ($( [ $rc != 0 ] && echo 'fails as it must' || echo 'PASSED: the PDL tests prove nothing'))"
  fi
  san=$(find_bin test_kernels_sanitize); i8=$(find_bin test_int8_gpu)
  for tool in memcheck racecheck; do
    [ $(left) -gt 200 ] || { stamp "skipping $tool (time)"; continue; }
    timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 $san "[midm]" > "$OUT/${tool}_midm.log" 2>&1
    stamp "$tool midm rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_midm.log" | tail -1)"
    timeout 90 compute-sanitizer --tool $tool --error-exitcode 9 $i8 "[sanitize]" > "$OUT/${tool}_int8.log" 2>&1
    stamp "$tool int8 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${tool}_int8.log" | tail -1)"
  done
fi

if [ $BENCH = 1 ]; then
  DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
  D=$(date -u +%F)
  bm=$(find_bin bench_midm_kernels); bi=$(find_bin bench_int8); bg=$(find_bin bench_gemm_kernels)
  # mid-M first (the largest expected change), quick sweep if time is short; rows print as they run
  q=""; [ $(left) -lt 330 ] && q=--quick
  timeout $(( $(left) / 2 )) $bm "$OUT/kernels_midm_${DEV}_$D.json" $q > "$OUT/bench_midm.log" 2>&1
  stamp "bench_midm rc=$?"
  timeout $(( $(left) / 2 )) $bi "$OUT/int8_${DEV}_$D.json" --ms=1,16,64,4096 > "$OUT/bench_int8.log" 2>&1
  stamp "bench_int8 rc=$?"
  [ $(left) -gt 40 ] && { timeout $(( $(left) - 10 )) $bg "$OUT/kernels_${DEV}_$D.json" --decode > "$OUT/bench_gemm.log" 2>&1; stamp "bench_gemm --decode rc=$?"; }
  grep -E " ws|wgmma|gemm " "$OUT/bench_midm.log" | head -60
  grep -E "core tiles|ring" "$OUT/bench_int8.log" | head -30
fi
stamp "done"
