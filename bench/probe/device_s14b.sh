#!/bin/bash
# Session 14, second call. Binaries prebuilt for sm_90a in git-ignored build-s14/:
#   run(command="bash bench/probe/device_s14b.sh", carry=["build-s14"])
# (1) tests: the planner host test, persistent CTAs forced on the device's own grid (3584 x 18944: 264 CTAs
# for 296 slabs), the sanitize set;
# (2) is the 2/3-bit decode kernel at 8192^2, M = 1 bound by memory or by the SM? ncu durations of the same
#     launch with the L2 flushed before it (weights from DRAM) and without (2-bit 18 MB and 3-bit 27 MB stay
#     in the 50 MB L2 from the previous call), plus issue-slot and warp-stall sections for 2-bit.
DEADLINE=${DEADLINE:-420} DIRS="build-s14"
source bench/probe/device_lib.sh
B=build-s14
for t in test_kernels_plan test_kernels_tune test_kernels_sanitize; do [[ -x $B/$t ]] && tests $t 90 $B/$t; done
P=$B/probe_kernels
if [[ -x $P ]]; then
  for b in 2 3 4; do
    for cc in all none; do
      timeout $(left 60) ncu --clock-control none --cache-control $cc --metrics gpu__time_duration.sum,dram__bytes_read.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active \
        --csv $P w $b 8192 8192 1 4 > $L/ncu_w${b}_$cc.csv 2>&1
      st "ncu w$b cache=$cc rc=$?"
      grep decode_gemm $L/ncu_w${b}_$cc.csv | awk -F'","' '{print $(NF-2), $NF}' | tail -8
    done
  done
  timeout $(left 120) ncu --clock-control none -k regex:decode_gemm --launch-skip 3 --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section SchedulerStats --section Occupancy $P w 2 8192 8192 1 4 > $L/ncu_w2_detail.txt 2>&1
  st "ncu w2 detail rc=$?"
  grep -E "Duration|Throughput|Issue Slots|Issued Warp|No Eligible|Active Warps|Eligible Warps|Stall|Warp Cycles" $L/ncu_w2_detail.txt | head -40
  cp $L/ncu_w2_detail.txt $O/
fi
st done
