#!/bin/bash
# Session 28, call 1: the first large-M kernel (large_wgmma.cuh) on a GPU: large_probe (4 bits) against cuBLAS fp16 and
# dequantize + cuBLAS, its direct GPU tests and memcheck, the gemm tests of the build that dispatched M >= 257 to it,
# test_linear of the current rule; session 27's gather PDL negative control (its review mend, 8eb1a42, is in every
# binary here); then large_probe's 2- and 8-bit rows.
#   run(command="bash bench/probe/device_s28a.sh", carry=["build-s27j", "build-s28a", "build-s28b", "build-s28c"])
DEADLINE=${DEADLINE:-400} DIRS="build-s27j build-s28a build-s28b build-s28c"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
timeout $(left 90) build-s28a/large_probe large4 > $L/large4.log 2>&1; st "large_probe large4 rc=$?"
cp $L/large4.log $O/large_probe_${DEV}_${D}_s28a_large4.log
tests large 150 build-s28a/test_kernels_large
san memcheck large4 90 build-s28a/test_kernels_large "large-M kernel 4-bit*"
tests gemm_b4_f16_large 60 build-s28b/test_kernels_gemm_b4_f16
tests gemm_b3_bf16_large 60 build-s28b/test_kernels_gemm_b3_bf16
tests linear 60 build-s28c/test_linear
neg_gather 40 build-s27j/test_kernels_pdl_negative_gather
timeout $(left 200) build-s28a/large_probe large > $L/large.log 2>&1; st "large_probe large rc=$?"
cp $L/large.log $O/large_probe_${DEV}_${D}_s28a_large.log
st done
