#!/bin/bash
# Session 14, fifth call: the LLM.int8() layer at M = 64 and 256 (slower than cuBLAS fp16 on 8192^2 in the
# session-7 runs): every kernel's duration in one layer call, to see what the 16 us between the core GEMM
# and the whole layer are. Binaries in git-ignored build-s14/:
#   run(command="bash bench/probe/device_s14e.sh", carry=["build-s14"])
DEADLINE=${DEADLINE:-240} DIRS="build-s14"
source bench/probe/device_lib.sh
P=build-s14/probe_kernels
for cfg in "8192 8192 64" "8192 8192 256" "8192 28672 64"; do
  set -- $cfg
  timeout $(left 60) ncu --clock-control none --metrics gpu__time_duration.sum --csv $P int8 $1 $2 $3 8 1 > $L/dur_$1_$2_$3.csv 2>&1
  st "durations K=$1 N=$2 M=$3 rc=$?"
  # the last call's kernels (probe: 2 warm-up calls + 1)
  grep -E '"gpu__time_duration' $L/dur_$1_$2_$3.csv | awk -F'","' '{n=$5; sub(/\(.*/,"",n); v=$NF; gsub(/[",]/,"",v); print n, v}' | tail -6
done
# (nsys is not installed on the lent machines: a timeline needs LOWBIT_INT8_TRACE-style marks instead)
st done
