#!/bin/bash
# Session 14, third call: where the decode kernel's warps stall at 8192^2, M = 1 (2- and 4-bit), with the
# weights in the L2 (--cache-control none: the previous launch left them there) and from DRAM (all).
# Binaries prebuilt in git-ignored build-s14/:  run(command="bash bench/probe/device_s14c.sh", carry=["build-s14"])
DEADLINE=${DEADLINE:-300} DIRS="build-s14"
source bench/probe/device_lib.sh
P=build-s14/probe_kernels
for b in 2 4; do
  for cc in none all; do
    timeout $(left 60) ncu --clock-control none --cache-control $cc -k regex:decode_gemm --launch-skip 3 --launch-count 1 \
      --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__issue_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum \
      --csv $P w $b 8192 8192 1 4 > $L/stall_w${b}_$cc.csv 2>&1
    st "stalls w$b cache=$cc rc=$?"
    grep decode_gemm $L/stall_w${b}_$cc.csv | awk -F'","' '{v=$NF; gsub(/"/,"",v); if (v+0 > 0.05 || $(NF-2) ~ /duration|issue_active/) print $(NF-2), v}' | \
      sed 's/smsp__average_warps_issue_stalled_//; s/_per_issue_active.ratio//' | sort -k2 -nr | head -14
  done
done
timeout $(left 120) ncu --clock-control none --cache-control none -k regex:decode_gemm --launch-skip 3 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --import-source no -o /tmp/w2src -f $P w 2 8192 8192 1 4 > $L/w2src.log 2>&1
st "w2 source counters rc=$?"
ncu -i /tmp/w2src.ncu-rep --page source --csv --print-source sass > $O/w2_sass.csv 2>&1
st "exported $(wc -l < $O/w2_sass.csv) sass lines"
st done
