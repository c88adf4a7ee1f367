#!/bin/bash
# Builds, on the workstation (no GPU needed), the sm_90a binaries that bench/device_run_wip.sh runs first
# on a lent GPU, and packs them as PACK/bins.tar.xz with PACK/COMMIT naming the code they were built from,
# so the device call spends its minutes running, not compiling (the device unpacks the tarball when the
# binaries start there, else it builds).
# usage: [ALL=1] bench/make_pack.sh [BUILD_DIR] [PACK_DIR] [JOBS]     (defaults: build-pack, build-nextpack, 2)
# BUILD_DIR and PACK_DIR should be git-ignored (build-*); carry PACK_DIR and .deps in the device call.
set -eu
BUILD=${1:-build-pack}
PACK=${2:-build-nextpack}
JOBS=${3:-2}
# ALL=1: every binary bench/device_run_pack.sh runs (the whole project's GPU tests, lowbit, the benches)
ALL_TARGETS="test_kernels_convert test_kernels_sanitize test_linear test_dequant_gemm test_gptq_gpu lowbit_cli
  test_kernels_gemm_b2_f16 test_kernels_gemm_b2_bf16 test_kernels_gemm_b3_f16 test_kernels_gemm_b3_bf16
  test_kernels_gemm_b4_f16 test_kernels_gemm_b4_bf16 test_kernels_gemm_b8_f16 test_kernels_gemm_b8_bf16
  test_kernels_midm_b2 test_kernels_midm_b3 test_kernels_midm_b4 test_kernels_midm_b8 test_int8_gpu
  test_kernels_pdl_negative test_kernels_pdl_negative_gather bench_midm_kernels bench_int8 bench_dequant_gemm bench_gemm_kernels"
TARGETS="test_kernels_plan test_int8_plan test_kernels_sanitize test_kernels_midm_b4 test_kernels_midm_b8
         test_kernels_gemm_b4_f16 test_int8_gpu test_kernels_pdl_negative test_kernels_pdl_negative_gather bench_midm_kernels
         bench_int8 bench_gemm_kernels"
[ "${ALL:-0}" = 1 ] && TARGETS=$ALL_TARGETS
cmake -S . -B "$BUILD" -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_DOCS=OFF > /dev/null
# one target at a time: CMake's Makefiles serialize several --target goals anyway
for t in $TARGETS; do nice cmake --build "$BUILD" --target "$t" -j"$JOBS" > "$BUILD/pack_$t.log" 2>&1 ||
  { tail -20 "$BUILD/pack_$t.log"; exit 1; }; done
mkdir -p "$PACK"
files=""
for t in $TARGETS; do
  name=$t; [ "$t" = lowbit_cli ] && name=lowbit  # the CLI target's executable
  f=$(cd "$BUILD" && find . -type f -name "$name" -perm -u+x | head -1)
  [ -n "$f" ] || { echo "missing binary $t"; exit 1; }
  files="$files ${f#./}"
done
tar cJf "$PACK/bins.tar.xz" -C "$BUILD" $files
{ echo "binaries built from $(git rev-parse --abbrev-ref HEAD) $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' + uncommitted changes')";
  echo "on $(date -u +%FT%TZ), $(nvcc --version | tail -1)"; } > "$PACK/COMMIT"
cat "$PACK/COMMIT"; du -sh "$PACK"
