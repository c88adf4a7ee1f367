#!/bin/bash
# Session 27, call 4: device_s27b.sh on rebuilt binaries (the mma.sync and lock-step wgmma mid-M kernels copy without
# an L2 policy again; the decode and warp-specialized mid-M kernels keep evict-first; the gather picks the column
# kernel at M <= 8, the row kernel above).
#   run(command="bash bench/probe/device_s27d.sh", carry=["build-s27b"])
TAG=s27d exec bash "$(dirname "$0")/device_s27b.sh"
