#!/bin/bash
# Session 30, call 2: test_linear with the workspace fix (WeightOnlyLinear::workspace_size adds the dense slab only where
# some M takes the dense path; the bounded-slab case gets only what the dense path needs) and the 2-CTA cluster
# variant with CTA-scope remote arrivals (call 1's `.release.cluster` arrivals compiled to ERRBAR and halved the speed):
# test_kernels_large (every variant), large_probe large4, memcheck of the 4-bit large-M tests.
#   run(command="bash bench/probe/device_s30b.sh", carry=["build-s30b"])
DEADLINE=${DEADLINE:-200} DIRS="build-s30b"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
tests linear 60 build-s30b/test_linear
tests large 80 build-s30b/test_kernels_large
grep -q "All tests passed" $L/large.log || { export LARGE_PROBE_NO_MC=1; st "cluster variants skipped"; }
st "large4 start"; timeout $(left 40) build-s30b/large_probe large4 > $L/large4.log 2>&1; st "large4 rc=$?"
cp $L/large4.log $O/large_probe_${DEV}_${D}_s30b_large4.log
san memcheck large 40 build-s30b/test_kernels_large "large-M kernel 4-bit*"
st done
