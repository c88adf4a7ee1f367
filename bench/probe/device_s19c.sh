#!/bin/bash
# Session 19's last device call: the final int8 code (ring default again, the stream path opt-in with a
# 128-byte L2 prefetch): the int8 GPU tests, then memcheck and racecheck on the stream tests.
#   run(command="bash bench/probe/device_s19c.sh", carry=["build-s19c"])
DEADLINE=${DEADLINE:-270} DIRS="build-s19c"
source bench/probe/device_lib.sh
B=build-s19c
tests test_int8_gpu 140 $B/test_int8_gpu
san memcheck stream 60 $B/test_int8_gpu "*stream*"
san racecheck stream 60 $B/test_int8_gpu "*stream path (side*"
st done
