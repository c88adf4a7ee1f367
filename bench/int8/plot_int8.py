#!/usr/bin/env python3
"""Plots bench_int8 JSON: LLM.int8() layer speedup over cuBLAS fp16 vs M (0/8/64 outlier columns) and
the int8 GEMM core vs cuBLASLt int8, one panel per (K, N). Usage: plot_int8.py IN.json OUT.png"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

data = json.load(open(sys.argv[1]))
rows = data["rows"]
shapes = sorted({(r["K"], r["N"]) for r in rows}, key=lambda s: (s[0], s[1]))
fig, axes = plt.subplots(1, len(shapes), figsize=(5.2 * len(shapes), 4.2), squeeze=False)
for ax, (K, N) in zip(axes[0], shapes):
    sel = [r for r in rows if r["K"] == K and r["N"] == N]
    for oc, style in ((0, "o-"), (8, "s-"), (64, "^-")):
        pts = sorted((r["M"], r["speedup_vs_fp16"]) for r in sel if r["outlier_cols"] == oc)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"int8 layer, {oc} outlier cols")
    for key, style, name in (("ring_speedup_vs_fp16", "x:", "ring layer (M<=16), 8 outlier cols"),
                             ("splitk_gemv_speedup_vs_fp16", "+:", "split-K layer (M<=16), 8 outlier cols")):
        pts = sorted((r["M"], r[key]) for r in sel if r["outlier_cols"] == 8 and key in r)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name)
    core = sorted({(r["M"], r["core_speedup_vs_cublaslt"]) for r in sel if r["cublaslt_int8_us"] > 0})
    if core:
        ax.plot([p[0] for p in core], [p[1] for p in core], "k--", label="int8 core / cuBLASLt int8")
    roof = sorted({(r["M"], r["roofline_fp16_us"] / r["roofline_int8_us"]) for r in sel})
    ax.plot([p[0] for p in roof], [p[1] for p in roof], ":", color="gray", label="bytes roofline (fp16/int8)")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel("speedup (x)")
    ax.set_title(f"K={K}, N={N}")
    ax.grid(alpha=0.3)
axes[0][0].legend(fontsize=7)
fig.suptitle(f"lowbit LLM.int8() on {data['device']} ({data['date']}) vs cuBLAS fp16 / cuBLASLt int8")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=120)
print("wrote", sys.argv[2])
