#!/bin/bash
# Session 17, second call: int8_raster_probe (the persistent int8 wgmma kernel's tile order: M-fastest against
# bands of 16 / 8 / 4 M tiles), twice around the build without the i32 epilogue's stores (what they cost).
#   run(command="bash bench/probe/device_s17b.sh", carry=["build-s17"])
DEADLINE=${DEADLINE:-400} DIRS="build-s17"
source bench/probe/device_lib.sh
B=build-s17
timeout $(left 120) $B/int8_raster_probe > $L/raster_a.log 2>&1; st "raster probe rc=$?"; cat $L/raster_a.log
timeout $(left 120) $B/int8_raster_probe_nostore > $L/raster_nostore.log 2>&1; st "raster probe, no stores rc=$?"; cat $L/raster_nostore.log
timeout $(left 120) $B/int8_raster_probe > $L/raster_b.log 2>&1; st "raster probe again rc=$?"; cat $L/raster_b.log
st done
