#!/bin/bash
# Session 15, second call: ncu duration of every kernel of one LLM.int8() layer call (8 outlier columns),
# the two-kernel activation pass (midm_act 1) against one block per row (2), at the shapes where the first
# call measured the new pass slower (K = 28672) and equal (8192^2). Isolated launches (ncu serializes).
# (LinearOptions::midm_act and probe_kernels' MIDM_ACT argument existed in bae5e44-63af634, since reverted.)
#   run(command="bash bench/probe/device_s15b.sh", carry=["build-s15"])
DEADLINE=${DEADLINE:-300} DIRS="build-s15"
source bench/probe/device_lib.sh
P=build-s15/probe_kernels
for cfg in ${CFGS:-"28672 8192 64 1" "28672 8192 64 2" "8192 8192 64 1" "8192 8192 64 2" "28672 8192 1024 1" "28672 8192 1024 2" "8192 8192 256 1" "8192 8192 256 2"}; do
  set -- $cfg
  timeout $(left 60) ncu --clock-control none --metrics gpu__time_duration.sum --csv $P int8 $1 $2 $3 8 1 $4 > $L/dur_$1_$2_$3_$4.csv 2>&1
  st "durations K=$1 N=$2 M=$3 midm_act=$4 rc=$?"
  grep -E '"gpu__time_duration' $L/dur_$1_$2_$3_$4.csv | awk -F'","' '{n=$5; sub(/\(.*/,"",n); v=$NF; gsub(/[",]/,"",v); print n, v}' | tail -6
done
st done
