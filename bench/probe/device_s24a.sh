#!/bin/bash
# Session 24 (first call: the one-warp producer; second: the producer warpgroup, bulk or cp.async weights): the warp-specialized wgmma mid-M kernel (midm_wgmma_ws_kernel, now the W64 / W128
# policies) against the lock-step one (W64ls / W128ls) in large_probe (every output checked against
# dequantize + cuBLAS), the mid-M GPU tests of every width (they run W64 / W128, so the new kernel), the PDL
# negative control, memcheck and racecheck on the mid-M sanitizer set, then bench_gemm for the record.
# Build (workstation, sm_90a build dir as bench/make_pack.sh configures it), then pack (the carry limit is 64 MiB):
#   for t in large_probe test_kernels_midm_b2 test_kernels_midm_b3 test_kernels_midm_b4 test_kernels_midm_b8 \
#            test_kernels_sanitize test_kernels_pdl_negative bench_gemm_kernels probe_kernels; do
#     cmake --build build-pack --target $t -j2; cp $(find build-pack -type f -name $t -perm -u+x) /tmp/b24/; done
#   strip /tmp/b24/*; mkdir -p build-s24; tar cJf build-s24/bins.tar.xz -C /tmp/b24 .
#   run(command="TAG=_wg bash bench/probe/device_s24a.sh", carry=["build-s24"])
# Session 25 adds two optional packs beside bins.tar.xz: nf.tar.xz (large_probe_nf: large_probe of 04647b9, WS = 3
# without the consumers' proxy fence) and diag.tar.xz (large_probe_d1 / _d2: large_probe built in build-diag1/2,
# configured like build-pack plus -DCMAKE_CUDA_FLAGS=-DLOWBIT_TESTING_MIDM_WS_DIAG=1 or 2).
DEADLINE=${DEADLINE:-570} DIRS="build-s24"
source bench/probe/device_lib.sh
B=build-s24
[ -f $B/bins.tar.xz ] && tar xJf $B/bins.tar.xz -C $B
D=$(date -u +%F); DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
timeout $(left 150) $B/large_probe ws > $L/probe_ws.log 2>&1; st "large_probe ws rc=$?"
cp $L/probe_ws.log $O/large_probe_${DEV}_${D}_s24_ws${TAG:-}.log
grep -E "^K |^==|MISMATCH" $L/probe_ws.log | head -5
grep -c MISMATCH $L/probe_ws.log
timeout $(left 60) ncu --clock-control none -k regex:midm_wgmma_ws --launch-skip 2 --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section SchedulerStats $B/probe_kernels w 4 8192 8192 64 > $L/ncu_ws_m64.txt 2>&1; st "ncu rc=$?"
grep -E "Duration|Throughput|Issue Slots|Issued Warp|Eligible|Stall|Warp Cycles" $L/ncu_ws_m64.txt | head -30
# session 25: the same probe built with the consumers' proxy fence skipped under WS = 3 (build-s24/nf.tar.xz, if packed)
if [ -f $B/nf.tar.xz ]; then
  tar xJf $B/nf.tar.xz -C $B
  timeout $(left 150) $B/large_probe_nf ws > $L/probe_ws_nf.log 2>&1; st "large_probe_nf ws rc=$?"
  cp $L/probe_ws_nf.log $O/large_probe_${DEV}_${D}_s25_ws_nofence.log
  grep -c MISMATCH $L/probe_ws_nf.log
fi
# session 25: where the warp-specialized kernel's time goes (build-s24/diag.tar.xz, if packed): large_probe_d1 has the
# producer stop copying after the first S stages (the consumers' rate alone), large_probe_d2 has the consumers only
# wait for and release the stages (the producer's rate alone); both are wrong by design (MISMATCH lines expected)
if [ -f $B/diag.tar.xz ]; then
  tar xJf $B/diag.tar.xz -C $B
  for d in 1 2; do
    timeout $(left 90) $B/large_probe_d$d ws4 > $L/probe_ws_d$d.log 2>&1; st "large_probe_d$d ws4 rc=$?"
    cp $L/probe_ws_d$d.log $O/large_probe_${DEV}_${D}_s25_ws_diag$d.log
  done
fi
tests midm_b4 120 $B/test_kernels_midm_b4
tests midm_b8 120 $B/test_kernels_midm_b8
tests midm_b2 120 $B/test_kernels_midm_b2
tests midm_b3 120 $B/test_kernels_midm_b3
timeout $(left 60) $B/test_kernels_pdl_negative "[pdl]" > $L/pdl_negative.log 2>&1
st "PDL negative control rc=$? (must be nonzero) $(last $L/pdl_negative.log)"
san memcheck midm 90 $B/test_kernels_sanitize "[midm]"
san racecheck midm 120 $B/test_kernels_sanitize "[midm]"
timeout $(left 200) $B/bench_gemm_kernels $O/kernels_${DEV}_${D}_s24${TAG:-}.json > $L/bench_gemm.log 2>&1; st "bench_gemm rc=$?"
cp $L/bench_gemm.log $O/kernels_${DEV}_${D}_s24${TAG:-}.log
st done
