#!/bin/bash
# Session 27, call 5: the rest of the weight-only GPU tests with the L2 evict-first weight streams and the row-wise
# act-order pre-gather (2/3/8-bit and bf16 gemm sweeps and PDL checks, 2/3-bit mid-M, tune_decode), the 4-bit f16
# gemm tests again (the row gather now splits K into up to 16 parts), and bench_gemm --gather-sweep with a 256-CTA
# target.
# Pack: the binaries below (stripped) -> build-s27e/bins.tar.xz;  run(command="bash bench/probe/device_s27e.sh", carry=["build-s27e"])
DEADLINE=${DEADLINE:-400} DIRS="build-s27e"
source bench/probe/device_lib.sh
B=build-s27e
unpack $B
tests gemm_b4_f16 60 $B/test_kernels_gemm_b4_f16
timeout $(left 60) $B/bench_gemm_kernels $O/gather_sweep_${DEV}_${D}_s27e.json --gather-sweep > $L/gather_sweep.log 2>&1
st "bench_gemm --gather-sweep rc=$?"; cp $L/gather_sweep.log $O/gather_sweep_${DEV}_${D}_s27e.log
for t in gemm_b2_f16 gemm_b2_bf16 gemm_b3_f16 gemm_b3_bf16 gemm_b4_bf16 gemm_b8_f16 midm_b2 midm_b3 tune; do
  [ -x $B/test_kernels_$t ] && tests $t 60 $B/test_kernels_$t
done
st done
