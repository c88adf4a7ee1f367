#!/bin/bash
# Probe for the session after 21 (branch wip/fused-olist, not run on a GPU when written):
#  - the fused stream kernel keeps the activation values of each warp's first outlier columns (and the
#    slab's weight scales) in shared memory, so the main loop's outlier products make no L2 round trip;
#  - LOWBIT_INT8_STREAM_FUSED_REG_ROWS=4 (the rows build): the register path of the fused pass for M <= 4
#    (8192^2 at M = 3 then reads A once).
# build-s21b (git-ignored; see its COMMIT): bench_int8 / test_int8_gpu = the branch (CMake, sm_90a Release),
# bench_int8_rows4 / test_int8_gpu_rows4 = the same with REG_ROWS=4 (nvcc, the CMake flags),
# bench_int8_base = main without either change (build-s21b/COMMIT names the commit). Then, from a checkout of the branch,
#   run(command="bash bench/probe/device_s21b.sh", carry=["build-s21b"]), then the same with "PART=2 bash ..."
# Goal: 8192^2, M = 1, 8 outlier columns at or under 26.5 us (1.7x); base 27.0 in session 21.
# Also records main's int8 bench at M = 1, 4, 16 (the base binary): session 21's two planner changes
# (8192 x 28672 M = 1: the ring with the separate pass; 28672 x 8192 M <= 2: two activation kernels)
# never ran as defaults.
DEADLINE=${DEADLINE:-540} DIRS="build-s21b"
source bench/probe/device_lib.sh
B=build-s21b
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
if [[ ${PART:-1} == 1 ]]; then for round in 1 2; do  # PART=3: tests only (part 1 without the benches)
  for v in base new rows4; do
    bin=$B/bench_int8; [[ $v == base ]] && bin=$B/bench_int8_base; [[ $v == rows4 ]] && bin=$B/bench_int8_rows4
    timeout $(left 40) $bin $L/int8_${DEV}_${D}_${v}_r$round.json --ms=1,2,3 > $L/bench_${v}_r$round.log 2>&1
    st "bench $v round $round rc=$?"
  done
done
for v in base new rows4; do cp $L/bench_${v}_r2.log $O/int8_${DEV}_${D}_${v}_r2.log; done
grep -H -E "activation pass inside" $L/bench_*.log | grep -E "out=(0|8):" | head -60
fi
if [[ ( ${PART:-1} == 1 && -z ${BENCH_ONLY:-} ) || ${PART:-1} == 3 ]]; then  # part 1 (about 400 s; BENCH_ONLY=1: the A/B benches only): the A/B above, every int8 GPU test (the branch also
  # changes the shared activation scan, scan_vec8: ring and one-kernel paths too), the rows-4 fused tests
  tests test_all 240 $B/test_int8_gpu
  tests test_fused_rows4 120 $B/test_int8_gpu_rows4 "*stream path with the activation*,*non-finite*"
elif [[ ${PART:-1} == 2 ]]; then  # part 2 (PART=2, about 250 s): sanitizers, main's bench at M = 1, 4, 16
  san memcheck fused 90 $B/test_int8_gpu "*stream path with the activation*,*ring path*"
  san racecheck fused 130 $B/test_int8_gpu "*stream path with the activation*"
  timeout $(left 120) $B/bench_int8_base $O/int8_${DEV}_${D}_main_m1_4_16.json --ms=1,4,16 > $L/bench_main.log 2>&1
  st "bench main rc=$?"; cp $L/bench_main.log $O/int8_${DEV}_${D}_main_m1_4_16.log
fi
st done
