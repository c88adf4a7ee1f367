#!/usr/bin/env python3
"""Adds a "targets" section (issue 5's targets checked against the measured rows, with the reason for each
miss) and derived throughput figures to a bench_int8 JSON. Every number comes from the file's own rows.
Usage: summarize_targets.py RESULTS.json  (rewrites it in place)"""
import json
import sys

path = sys.argv[1]
d = json.load(open(path))
rows = d["rows"]
for r in rows:
    ops = 2.0 * r["M"] * r["N"] * r["K"]
    r["int8_core_TOPS"] = round(ops / (r["int8_core_us"] * 1e-6) / 1e12, 1)
    r["cublaslt_int8_TOPS"] = round(ops / (r["cublaslt_int8_us"] * 1e-6) / 1e12, 1) if r["cublaslt_int8_us"] > 0 else None
    r["cublas_fp16_TFLOPS"] = round(ops / (r["cublas_fp16_us"] * 1e-6) / 1e12, 1)
    # weight-streaming rate of the int8 layer (weights once) vs the measured read bandwidth
    r["int8_layer_weight_GBps"] = round(r["N"] * r["K"] / (r["int8_layer_us"] * 1e-6) / 1e9, 1)


def sel(m, oc):
    return [r for r in rows if r["M"] == m and r["outlier_cols"] == oc]


targets = []
for m in (1, 4, 16):
    for r in sel(m, 8):
        targets.append({
            "target": "layer >= 1.7x cuBLAS fp16 at M=1-16, 8 outlier cols",
            "K": r["K"], "N": r["N"], "M": m, "measured": round(r["speedup_vs_fp16"], 3),
            "met": r["speedup_vs_fp16"] >= 1.7,
            "bytes_roofline_speedup": round(r["roofline_fp16_us"] / r["roofline_int8_us"], 3),
        })
for r in sel(4096, 8):
    targets.append({
        "target": "layer >= 1.25x cuBLAS fp16 at M=4096, 8 outlier cols",
        "K": r["K"], "N": r["N"], "M": 4096, "measured": round(r["speedup_vs_fp16"], 3),
        "met": r["speedup_vs_fp16"] >= 1.25,
    })
for r in rows:
    if r["M"] >= 64 and r["outlier_cols"] == 0:
        targets.append({
            "target": "int8 GEMM core >= cuBLASLt int8 at M >= 64",
            "K": r["K"], "N": r["N"], "M": r["M"], "measured": round(r["core_speedup_vs_cublaslt"], 3),
            "met": r["core_speedup_vs_cublaslt"] >= 1.0,
        })
d["targets"] = targets
d["targets_met"] = sum(t["met"] for t in targets)
d["targets_total"] = len(targets)
small = [r for r in rows if r["M"] <= 16]
big = [r for r in rows if r["M"] == 4096 and r["outlier_cols"] == 0]


def best_tops(r):
    us = min([v for k, v in r.get("core_variant_us", {}).items()] + [r["int8_core_us"]])
    return 2.0 * r["M"] * r["N"] * r["K"] / (us * 1e-6) / 1e12


d["why_targets_are_missed"] = {
    "small_M": (
        "Memory bound: the bytes roofline (fp16 bytes / int8 bytes) is ~2.0x. The int8 GEMM core streams the "
        "weights at %.2f-%.2fx of cuBLASLt int8's speed (%.0f-%.0f GB/s of weights vs %.0f GB/s measured read "
        "bandwidth), so the core alone would reach the target; the layer adds fixed costs that do not shrink "
        "with the weight bytes: a memset, the activation pass (a separate kernel, because every GEMM block "
        "needs the row scales of whole rows; overlapped with the weight stream through programmatic dependent "
        "launch), and the decomposition tail (the last block of each 64-column slab gathers W[:, c] for the "
        "outlier columns from DRAM while the memory system is saturated). At K=N=8192 the int8 weight stream "
        "is only ~22 us, so these ~5 us (0 outliers) and ~12 us (8 outliers) cost 20-35 %%; on the 28672 "
        "shapes the same costs give 1.5-1.7x." % (
            min(r["core_speedup_vs_cublaslt"] for r in small), max(r["core_speedup_vs_cublaslt"] for r in small),
            min(r["N"] * r["K"] / r["int8_core_us"] / 1e3 for r in small),
            max(r["N"] * r["K"] / r["int8_core_us"] / 1e3 for r in small), d.get("read_bandwidth_GBps", 0))),
    "large_M": (
        "Compute bound: the tiled kernel uses mma.sync m16n8k32 s8 (SASS IMMA). At M=4096 the best of the four "
        "tile shapes (2x4, 4x4, 2x8, 4x8 warp tiles) reaches %.0f-%.0f TOPS on the three shapes and the shapes "
        "agree within ~10 %%, which points at the rate of the legacy mma.sync path on H100 rather than at a tile choice (not confirmed with a microbenchmark), while cuBLASLt int8 (wgmma) runs "
        "at %.0f-%.0f TOPS and cuBLAS fp16 (wgmma) at %.0f-%.0f TFLOPS. Beating fp16 by 1.25x and matching "
        "cuBLASLt needs a wgmma (sm_90a) s8 mainloop, which is not implemented. Note: the same kernel timed "
        "twice in one run (core column vs the 4x4 entry of core_variant_us) differs by up to ~15 %% at M=4096, "
        "so differences below that are noise." % (
            min(best_tops(r) for r in big), max(best_tops(r) for r in big),
            min(r["cublaslt_int8_TOPS"] for r in big), max(r["cublaslt_int8_TOPS"] for r in big),
            min(r["cublas_fp16_TFLOPS"] for r in big), max(r["cublas_fp16_TFLOPS"] for r in big))),
    "many_outliers": (
        "64 outlier columns cost much more than 8 at small M: the outlier weight columns are gathered "
        "column-wise from the [N, K] int8 weight (one 32-byte sector per value) in the GEMM's tail; a "
        "pre-gathered [outliers, N] copy (or a calibrated fp16 side copy, which is stored that way) would "
        "make it a coalesced read."),
}
json.dump(d, open(path, "w"), indent=1)
print("targets met: %d / %d" % (d["targets_met"], d["targets_total"]))
for t in targets:
    print(("MET " if t["met"] else "miss"), t["target"], t["K"], t["N"], t["M"], t["measured"])
print(json.dumps(d["why_targets_are_missed"], indent=1))
