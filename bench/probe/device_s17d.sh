#!/bin/bash
# Session 17, the combined call (the lent machines came rarely this session): the whole-project GPU check of the
# pack with the int8 tensor-store epilogue (bench/device_run_pack.sh: every gpu test, memcheck + racecheck,
# the demo, bench_midm / bench_int8 / bench_dequant_gemm), then bench_int8 of the code before the change
# (build-s17d/bench_int8_old) and of the pack again at M >= 64: the A/B of the epilogue, each against
# cuBLASLt in its own run.
#   run(command="bash bench/probe/device_s17d.sh", carry=["build-allpack", "build-s17d"], timeout_s=600)
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
WALL=430 bash bench/device_run_pack.sh
T0=$(date +%s)
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
NEW=$(find /tmp/packbin -type f -name bench_int8 -perm -u+x | head -1)
for v in old new2; do
  b=$NEW; [ $v = old ] && b=build-s17d/bench_int8_old
  timeout 60 $b $OUT/int8_${DEV}_${D}_s17d_$v.json --ms=64,256,1024,4096 > $OUT/bench_int8_$v.log 2>&1
  echo "[+$(( $(date +%s) - T0 )) s] bench_int8 $v rc=$?" | tee -a $OUT/summary.txt
  grep -E "^K=.*out= 8" $OUT/bench_int8_$v.log
done
