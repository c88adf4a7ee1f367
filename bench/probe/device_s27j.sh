#!/bin/bash
# Session 27, after the last review mend (the pre-gathers' launch helper, the device queries moved): the 4-bit f16
# gemm tests (both pre-gathers, PDL chains) and the gather's negative control.
#   run(command="bash bench/probe/device_s27j.sh", carry=["build-s27j"])
DEADLINE=${DEADLINE:-120} DIRS="build-s27j"
source bench/probe/device_lib.sh
B=build-s27j
unpack $B
tests gemm_b4_f16 60 $B/test_kernels_gemm_b4_f16
neg_gather 40 $B/test_kernels_pdl_negative_gather
st done
