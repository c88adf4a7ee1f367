#!/bin/bash
# Session 27, call 3: device_s27b.sh on rebuilt binaries (call 2 hit "illegal instruction" in the mma.sync and
# lock-step wgmma mid-M kernels; here the policies came from constants instead of createpolicy: the same failure).
#   run(command="bash bench/probe/device_s27c.sh", carry=["build-s27b"])
TAG=s27c exec bash "$(dirname "$0")/device_s27b.sh"
