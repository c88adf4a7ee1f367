#!/bin/bash
# Session 29, call 2: the large-M kernel's second CTA shape (256 rows x 128 columns, four m64n128 consumer warpgroups
# each dequantizing half a slab) against the first (128 x 256) in large_probe, both shapes' direct tests, memcheck and
# racecheck (the consumers now __syncwarp before lane 0 releases a stage; call 1's racecheck of the first shape
# reported 3322 hazards; racecheck_bulk asks whether racecheck models a bulk-copy ring at all), the SASS of the 4-bit
# kernels (to place any hazard), then large_probe's 2- and 8-bit rows.
#   run(command="bash bench/probe/device_s29b.sh", carry=["build-s29b"])
DEADLINE=${DEADLINE:-420} DIRS="build-s29b"
source bench/probe/device_lib.sh
for d in $DIRS; do unpack $d; done
for r in 0 1; do  # racecheck on a minimal bulk-copy ring: 0 correct (must be clean), 1 racy control (must report)
  timeout 30 compute-sanitizer --tool racecheck --error-exitcode 9 build-s29b/racecheck_bulk $r > $L/racecheck_bulk_$r.log 2>&1
  st "racecheck_bulk $r rc=$? $(grep -E 'RACECHECK SUMMARY|racecheck_bulk' $L/racecheck_bulk_$r.log | tr '\n' ' ')"
done
timeout $(left 90) build-s29b/large_probe large4 > $L/large4.log 2>&1; st "large_probe large4 rc=$?"
cp $L/large4.log $O/large_probe_${DEV}_${D}_s29b_large4.log
tests large 150 build-s29b/test_kernels_large
san memcheck large4 60 build-s29b/test_kernels_large "large-M kernel 4-bit*"
san racecheck large4 150 build-s29b/test_kernels_large "large-M kernel 4-bit*"
grep -m12 -A3 "Error: Race" $L/racecheck_large4.log | cut -c1-220
cuobjdump -sass build-s29b/test_kernels_large 2>/dev/null | awk '/Function : .*large_wgmma_kernelILi4ENS_6half_tELi1E/{p=1} /Function : /&&!/large_wgmma_kernelILi4ENS_6half_tELi1E/{p=0} p' > $L/large_sass.txt
st "sass lines $(wc -l < $L/large_sass.txt)"
timeout $(left 200) build-s29b/large_probe large > $L/large.log 2>&1; st "large_probe large rc=$?"
cp $L/large.log $O/large_probe_${DEV}_${D}_s29b_large.log
st done
