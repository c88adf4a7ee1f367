#!/bin/bash
# Session 17, first call: (1) the three benchmarks whose interleaved timers rotate their order each round
# (bench_util interleaved_slot; not run on a GPU in session 16), (2) ncu's view of the int8 wgmma TMA kernel
# at large M, to see whether its L2 -> SM traffic (each 128 x 256 tile reads its A and W boxes from L2) is
# the limit on 8192 x 28672 (0.90x cuBLASLt at M = 4096) against 8192^2 (1.00x).
# Binaries prebuilt in the git-ignored build-s17/:
#   run(command="bash bench/probe/device_s17a.sh", carry=["build-s17"])
DEADLINE=${DEADLINE:-560} DIRS="build-s17"
source bench/probe/device_lib.sh
B=build-s17
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
timeout $(left 150) $B/bench_int8 $O/int8_${DEV}_${D}_s17.json > $L/bench_int8.log 2>&1; st "bench_int8 rc=$?"
timeout $(left 150) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s17.json > $L/bench_gemm.log 2>&1; st "bench_gemm rc=$?"
timeout $(left 100) $B/bench_dequant_gemm $O/dequant_gemm_${DEV}_${D}_s17.json > $L/bench_dq.log 2>&1; st "bench_dequant_gemm rc=$?"
M="dram__bytes_read.sum,lts__t_bytes.sum,lts__t_sector_hit_rate.pct"
for cfg in "8192 8192 4096" "8192 28672 4096" "28672 8192 4096" "8192 28672 256" "8192 28672 1024"; do
  set -- $cfg
  timeout $(left 90) ncu --clock-control none -k regex:gemm_s8_wgmma_ws --launch-skip 2 --launch-count 1 --section SpeedOfLight --metrics $M --csv \
    $B/probe_kernels int8 $1 $2 $3 8 1 > $L/ncu_$1_$2_$3.csv 2>&1
  st "ncu K=$1 N=$2 M=$3 rc=$?"
  grep -E '^"' $L/ncu_$1_$2_$3.csv | awk -F'","' '{m=$(NF-2); v=$NF; gsub(/[",]/,"",v); print "  " m, $(NF-1), v}' | tail -16
done
st done
