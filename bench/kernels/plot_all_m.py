#!/usr/bin/env python3
"""Speedup over cuBLAS fp16 vs M across the whole M range, from several benchmark JSONs of one device.

What `WeightOnlyLinear` runs for 4-bit g128 asymmetric weights: gemm (decode kernel for M <= 16, mid-M
kernels above) below the dequantize + cuBLAS threshold, dequantize + cuBLAS from it on. Accepted inputs:
  - bench_gemm_kernels JSON ("results" rows without "kernel": gemm as dispatched),
  - bench_midm_kernels JSON ("results" rows; only kernel == "gemm", i.e. gemm as dispatched),
  - bench_dequant_gemm JSON ("points": speedup_dequant_cublas).
Later files override earlier ones for the same (K, N, M) and path. Every ratio is against the cuBLAS fp16
time measured in the same run as the lowbit time it divides.
usage: plot_all_m.py OUT.png [--threshold 256] IN.json [IN.json ...]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(paths):
    gemm, dq, meta = {}, {}, []
    for p in paths:
        d = json.load(open(p))
        meta.append(f"{p.split('/')[-1]}")
        if "points" in d:  # dequant_gemm
            for r in d["points"]:
                if "speedup_dequant_cublas" in r:
                    dq[(r["K"], r["N"], r["M"])] = r["speedup_dequant_cublas"]
            continue
        for r in d.get("results", []):
            if r.get("bits") != 4 or r.get("group") != 128 or r.get("variant") != "asym":
                continue
            if "kernel" in r and r["kernel"] != "gemm":
                continue
            gemm[(r["K"], r["N"], r["M"])] = r["speedup"]
    return gemm, dq, meta, json.load(open(paths[0]))["device"] if "device" in json.load(open(paths[0])) else "?"


def main(argv):
    out = argv[1]
    threshold = 256
    paths = []
    i = 2
    while i < len(argv):
        if argv[i] == "--threshold":
            threshold = int(argv[i + 1])
            i += 2
        else:
            paths.append(argv[i])
            i += 1
    if not paths:
        sys.exit(__doc__)
    gemm, dq, meta, device = load(paths)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    shapes = sorted({(k, n) for (k, n, _) in list(gemm) + list(dq)})
    for K, N in shapes:
        pts = {}
        for (k, n, m), s in gemm.items():
            if (k, n) == (K, N) and m < threshold:
                pts[m] = s
        for (k, n, m), s in dq.items():
            if (k, n) == (K, N) and m >= threshold:
                pts[m] = s
        if not pts:
            continue
        ms = sorted(pts)
        ax.plot(ms, [pts[m] for m in ms], marker="o", label=f"K={K} N={N}")
    # the targets: M = 1-16 >= 3.5x, M = 64 >= 2.5x, M = 128 >= 1.5x, M >= 1024 >= 0.95x
    ax.plot([1, 16], [3.5, 3.5], "k--", alpha=0.6, label="issue targets")
    ax.plot([64, 128], [2.5, 1.5], "k_", markersize=14, mew=2, alpha=0.6)
    ax.plot([1024, 4096], [0.95, 0.95], "k--", alpha=0.6)
    ideal = 2.0 / (0.5 + 2.0 / 128 * 1.5)  # bytes: fp16 vs 4-bit + fp16 scale + uint8 zero per 128 weights
    ax.axhline(ideal, color="gray", ls=":", label=f"memory-bound ideal {ideal:.2f}x")
    ax.axhline(1.0, color="red", lw=0.8)
    ax.axvline(threshold, color="gray", lw=0.6, alpha=0.6)
    ax.text(threshold * 1.05, ax.get_ylim()[1] * 0.92, "dequantize + cuBLAS from here", fontsize=7, color="gray")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel("speedup over cuBLAS fp16 (same run)")
    ax.set_title(f"lowbit 4-bit g128 (WeightOnlyLinear's path) vs cuBLAS fp16, {device}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.005, "data: " + ", ".join(meta), fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(out, dpi=120)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv)
