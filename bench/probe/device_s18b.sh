#!/bin/bash
# Session 18, second call: the small-M int8 layer with and without programmatic dependent launch timed with
# interleaved replays (bench_int8 --ms=1,4,16; the first call's comparison was sequential and read -1.8 to
# +1.7 us), and the PNG plots of this session's and session 17's JSONs (matplotlib is on the device only).
#   run(command="bash bench/probe/device_s18b.sh", carry=["build-s18"])
DEADLINE=${DEADLINE:-150} DIRS="build-s18"
source bench/probe/device_lib.sh
B=build-s18
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
timeout $(left 90) $B/bench_int8 $O/int8_${DEV}_${D}_s18pdl.json --ms=1,4,16 > $L/bench_int8_pdl.log 2>&1; st "bench_int8 M<=16 rc=$?"
cp $L/bench_int8_pdl.log $O/int8_${DEV}_${D}_s18pdl.log
grep -E "with PDL|^K=.*out= 8" $L/bench_int8_pdl.log
R=bench/results
python3 bench/int8/plot_int8.py $R/int8_NVIDIA_H100_80GB_HBM3_2026-12-06_s18.json $O/int8_NVIDIA_H100_80GB_HBM3_2026-12-06_s18.png; st "plot int8 rc=$?"
python3 bench/kernels/plot_speedup.py $R/kernels_NVIDIA_H100_80GB_HBM3_2026-12-06_s17.json $O/kernels_NVIDIA_H100_80GB_HBM3_2026-12-06_s17.png; st "plot kernels rc=$?"
st done
