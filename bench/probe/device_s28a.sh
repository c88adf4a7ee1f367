#!/bin/bash
# Session 28, call 1: session 27's unverified review mend (4-bit f16 gemm tests, the gather's negative control), then
# the first large-M kernel (large_wgmma.cuh) in large_probe against cuBLAS fp16 and dequantize + cuBLAS.
#   run(command="bash bench/probe/device_s28a.sh", carry=["build-s27j", "build-s28a", "build-s28b"])
DEADLINE=${DEADLINE:-540} DIRS="build-s27j build-s28a build-s28b"
source bench/probe/device_lib.sh
unpack build-s27j; unpack build-s28a; unpack build-s28b
tests gemm_b4_f16 60 build-s27j/test_kernels_gemm_b4_f16
neg_gather 40 build-s27j/test_kernels_pdl_negative_gather
timeout $(left 90) build-s28a/large_probe large4 > $L/large4.log 2>&1; st "large_probe large4 rc=$?"
cp $L/large4.log $O/large_probe_${DEV}_${D}_s28a_large4.log
tests large 150 build-s28a/test_kernels_large
tests gemm_b4_f16_large 60 build-s28b/test_kernels_gemm_b4_f16
tests gemm_b3_bf16_large 60 build-s28b/test_kernels_gemm_b3_bf16
timeout $(left 200) build-s28a/large_probe large > $L/large.log 2>&1; st "large_probe large rc=$?"
cp $L/large.log $O/large_probe_${DEV}_${D}_s28a_large.log
st done
