#!/bin/bash
# Session 15: the int8 mid-M layer (two column-block activation kernels with the outlier list written at
# each column's rank, a batched gather of the outlier slabs, programmatic dependent launch into the
# wgmma TMA kernel and the split path's epilogue; later the split-K fused epilogue and a batched
# prepare_outliers gather). All three were measured and not kept (bench/int8/NOTES.md, session 15). Binaries
# prebuilt for sm_90a in git-ignored build-s15/ (bench_int8_base: the same bench at the session's base):
#   run(command="bash bench/probe/device_s15a.sh", carry=["build-s15"])
# env: TAG (result names), MS (bench M list), BASE_MS (M list of the base binary; empty: not run), SAN (0: no
# sanitizers), TESTS (0: no tests).
DEADLINE=${DEADLINE:-560} DIRS="build-s15"
source bench/probe/device_lib.sh
B=build-s15
TAG=${TAG:-s15}
DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')
if [[ ${TESTS:-1} == 1 ]]; then tests int8_gpu 150 $B/test_int8_gpu; fi
bench() {  # NAME BIN MS
  timeout $(left 220) stdbuf -oL $2 $O/int8_${DEV}_2026-12-06_$1.json --ms=$3 > $L/$1.log 2>&1; st "bench $1 rc=$?"
  cp $L/$1.log $O/int8_${DEV}_2026-12-06_$1.log
  grep -E "^K=|layer tiles" $L/$1.log | cut -c1-200
}
bench $TAG $B/bench_int8 ${MS:-64,256,1024,4096}
BASE_MS=${BASE_MS-64,256}  # (set but empty: no base run)
if [[ -n $BASE_MS && -x $B/bench_int8_base ]]; then bench ${TAG}_base $B/bench_int8_base $BASE_MS; fi
if [[ ${SAN:-1} == 1 ]]; then for tool in memcheck racecheck; do san $tool int8 90 $B/test_int8_gpu "[sanitize]"; done; fi
st done
