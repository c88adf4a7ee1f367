#!/usr/bin/env python3
"""Checks issue 5's targets against a bench_int8 JSON's measured rows, with the reason for each miss, and
derives throughput figures. Every number comes from the file's own rows.
Usage: summarize_targets.py RESULTS.json [--write]
Prints the targets and the analysis; with --write it also adds them to RESULTS.json (a "targets" section and
per-row figures), written to a temporary file and renamed over the original, so a failure leaves it intact."""
import json
import os
import sys

args = [a for a in sys.argv[1:] if a != "--write"]
if len(args) != 1:
    sys.exit(__doc__)
path = args[0]
write = "--write" in sys.argv[1:]
with open(path) as f:
    d = json.load(f)
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


def layer(k, n, m, oc):
    return [r for r in rows if r["K"] == k and r["N"] == n and r["M"] == m and r["outlier_cols"] == oc][0]


def l2_tbps(r):  # L2 -> SM bytes of the 128x256x128 wgmma tiles at the best measured core time
    us = min([v for kk, v in r.get("core_variant_us", {}).items() if kk.startswith("wgmma")] or [r["int8_core_us"]])
    tiles = -(-r["M"] // 128) * -(-r["N"] // 256)
    return tiles * r["K"] * (128 + 256) / (us * 1e-6) / 1e12


sq1 = layer(8192, 8192, 1, 0)


def lv(r, key):
    return r.get("layer_variant_us", {}).get(key)


if "ring_layer_us" in sq1:  # results with the ring path (2026-12-05 and later)
    w1 = layer(8192, 28672, 1, 0)
    sq8 = layer(8192, 8192, 1, 8)
    small_text = (
        "Memory bound: the bytes roofline (fp16 bytes / int8 bytes) is ~2.0x. At K=N=8192 the 1.7x target "
        "means a %.1f us layer, but a plain 16-byte read kernel over the same 64 MB of int8 weights takes "
        "%.1f us, the split-K int8 core %.1f us and cuBLASLt int8 %.1f us, so the target needs the weight "
        "stream within a few percent of the read kernel plus ~3 us for the activation pass and launches. The "
        "split-K small-M layer (default there) is at %.1f us; the ring layer with one CTA per SM (N=8192: "
        "128 CTAs) is consumer-bound: its GEMM alone (8 outliers) takes %.1f / %.1f / %.1f us with the "
        "planned / half / 2 stages, so depth beyond ~6 stages does not help (%.1f us with 0 outliers). On 8192x28672 the ring (3-4 CTAs per SM, default there) streams the 235 MB in %.1f us "
        "alone (%.0f%% of the read kernel's %.1f us) and the whole layer takes %.1f us without outliers "
        "(activation kernel + launch %.1f us over the GEMM alone), %.1f us with 8 outlier columns: "
        "%.2f-%.2fx at M=1-16 with 8 outliers. Missing to 1.7x: the stream at ~82%% instead of >= 90%% "
        "of the read kernel. 64 outlier columns cost the ring more than 8 (each outlier column makes every "
        "consumer warp fetch the weight scales from global memory inside the main loop: the likely cause, not "
        "profiled)." % (
            sq1["cublas_fp16_us"] / 1.7, lv(sq1, "weight_bytes_read_kernel") or 0, sq1["int8_core_us"],
            sq1["cublaslt_int8_us"], sq1["splitk_gemv_layer_us"], lv(sq8, "ring_gemm_only") or 0,
            lv(sq8, "ring_gemm_half_stages") or 0, lv(sq8, "ring_gemm_2stages") or 0,
            lv(sq1, "ring_gemm_only") or 0,
            lv(w1, "ring_gemm_only") or 0,
            100.0 * (lv(w1, "weight_bytes_read_kernel") or 0) / (lv(w1, "ring_gemm_only") or 1),
            lv(w1, "weight_bytes_read_kernel") or 0, w1["ring_layer_us"],
            w1["ring_layer_us"] - (lv(w1, "ring_gemm_only") or 0), layer(8192, 28672, 1, 8)["ring_layer_us"],
            min(layer(8192, 28672, m, 8)["ring_speedup_vs_fp16"] for m in (1, 4, 16)),
            max(layer(8192, 28672, m, 8)["ring_speedup_vs_fp16"] for m in (1, 4, 16))))
else:
    sq_ms = sorted({r["M"] for r in rows if r["K"] == 8192 and r["N"] == 8192 and r["M"] <= 16})
    sq_rows = [layer(8192, 8192, m, 8) for m in sq_ms]
    read_us = lv(sq_rows[0], "weight_bytes_read_kernel")
    small_text = (
        "Memory bound: the bytes roofline (fp16 bytes / int8 bytes) is ~2.0x. At K=N=8192 the 1.7x target "
        "means a layer of about %.1f us (cuBLAS fp16 / 1.7 at M=1)%s. The layer with 8 outlier columns takes %s "
        "(path / activation pass: %s). The time over the weight stream grows with M: inside the stream "
        "kernel the pass reads all of A in every CTA once a warp cannot keep its range in registers, and "
        "where the plan is the ring its GEMM alone takes %s and its activation kernels come on top. The "
        "28672 shapes spread the same fixed costs over 3.5x the weight bytes. (int8_core_us is the generic "
        "split-K core, not the layer's kernel: %.2f-%.2fx of cuBLASLt int8 at M <= 16.)" % (
            sq_rows[0]["cublas_fp16_us"] / 1.7,
            "; the weights alone stream in %.1f us" % read_us if read_us else "",
            ", ".join("%.1f us at M=%d (%.2fx)" % (r["int8_layer_us"], r["M"], r["speedup_vs_fp16"]) for r in sq_rows),
            ", ".join("%s / %s" % (r["path"], r.get("activation_pass", "?")) for r in sq_rows),
            ", ".join("%.1f us at M=%d" % (lv(r, "ring_gemm_only"), r["M"]) for r in sq_rows
                      if lv(r, "ring_gemm_only")) or "n/a",
            min(r["core_speedup_vs_cublaslt"] for r in small), max(r["core_speedup_vs_cublaslt"] for r in small)))
d["why_targets_are_missed"] = {
    "small_M": small_text,
    "large_M": (
        "From M=64 the core is the sm_90a wgmma kernel (m64n256k32 s8, 128x256x128 block tiles, 4-stage "
        "ring filled by tensor TMA from a producer warpgroup, 2 consumer warpgroups): %.0f-%.0f TOPS at M=4096 (best timing of the same kernel) "
        "vs cuBLASLt int8 %.0f-%.0f TOPS and cuBLAS fp16 %.0f-%.0f TFLOPS. Each 128x256 tile reads "
        "(128+256) bytes of operands per k from L2 for 2*128*256 ops, i.e. 170 ops/byte; at the measured rate "
        "that is %.1f-%.1f TB/s of L2-to-SM traffic, about the H100's L2 bandwidth, so one CTA per SM with this "
        "tile cannot go faster (128x256 is the largest tile whose int32 accumulators fit the register file). "
        "cuBLASLt's 1.3-1.5 POPS needs less L2 traffic per op: 2-CTA clusters sharing operand tiles through TMA "
        "multicast, not implemented here. Without outliers the layer takes ~%.0f us more than the best core "
        "timing at 4096x8192: the activation pass (64 MB fp16 read + 32 MB int8 written, >= 31 us at the read "
        "bandwidth), the outlier preparation kernel, the fused epilogue, and the clock state noted next. Note: "
        "at M=4096 the clocks depend on what ran just before (power-bound GEMMs), so the benchmark times each "
        "comparison with interleaved replays: the core against cuBLASLt, the layer against cuBLAS fp16, and "
        "the variants of core_variant_us / layer_variant_us among themselves. Times from different groups are "
        "not comparable (session 15's sequential timings read one kernel 20 %% apart within a run)." % (
            min(best_tops(r) for r in big), max(best_tops(r) for r in big),
            min(r["cublaslt_int8_TOPS"] for r in big), max(r["cublaslt_int8_TOPS"] for r in big),
            min(r["cublas_fp16_TFLOPS"] for r in big), max(r["cublas_fp16_TFLOPS"] for r in big),
            min(l2_tbps(r) for r in big), max(l2_tbps(r) for r in big),
            layer(8192, 8192, 4096, 0)["int8_layer_us"] - min(layer(8192, 8192, 4096, 0)["core_variant_us"].values()))),
    "many_outliers": (
        "On the tiled / wgmma paths the outlier columns' weights and activation values are gathered once per "
        "call into [outliers, N] and [outliers, M] fp32 slabs, so the epilogue reads them coalesced; it still "
        "stages them per tile in chunks of 16 columns after the main loop (batched loads, a shared-memory layout "
        "shaped after the accumulator fragment; not overlapped with the main loop), which is what 64 columns "
        "cost at large M. On the small-M path each split handles the columns "
        "in its own K range (see small_M)."),
}
if write:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
    os.replace(tmp, path)
print("targets met: %d / %d" % (d["targets_met"], d["targets_total"]))
for t in targets:
    print(("MET " if t["met"] else "miss"), t["target"], t["K"], t["N"], t["M"], t["measured"])
print(json.dumps(d["why_targets_are_missed"], indent=1))
